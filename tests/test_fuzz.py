"""Fuzz: random input to every registered cogrl environment, every agent's ``predict`` and
the data loaders (human eye-movement folders, bAbI files).

Each input either works or is a clear error:

- works: the environment resets and steps, its observations lie in the observation space,
  its rewards are finite and its flags booleans (an agent's actions lie in the action
  space); and an input that the test's own oracle knows to be bad (an action outside the
  space, of the wrong shape or kind) never works -- a silent clamp or cast fails the test;
- or a clear error: a ``ValueError`` or ``TypeError`` (``OSError`` for a path that does
  not exist) whose message names the argument or the bad value -- never an IndexError,
  AttributeError or RuntimeError from deep inside torch, and never a hang (each input has
  a time limit) or an allocation beyond a few GiB (each input runs under an address-space
  limit, so a size that the code does not check first fails here instead of swapping).

The inputs: constructor arguments inside and outside their domains (wrong types, zero,
negative and huge ints, floats with NaN and infinities, wrong strings, unknown names) for
the cores (:func:`cogrl.envs.make_core`), ``gym.make`` and ``gym.make_vec``; action
batches of any shape, dtype (integer, unsigned, floating, bool, complex, object) and
container (numpy, torch, lists, scalars), with NaN and infinities; observations,
recurrent states, episode starts and ``deterministic`` values for ``predict``; and data
folders: ``fixations.jsonl`` records (image names that climb out of ``stimuli/`` or are
absolute, sizes of any type and size, observers and fixations of any shape, images that
are text, of another size or decompression bombs) and bAbI files (broken numbering,
empty and runaway sentences and questions, bad answers and supporting IDs, stories past
the bound), each loading to what the format promises or a ValueError naming the file.

Reproducibility: ``derandomize=True``, so CI tries the same inputs on every run (a fuzz
failure is then a deterministic test failure, not one that comes and goes); every example
is drawn from the test's own code, so changing a strategy changes the inputs. To explore
further, raise the budget: ``FUZZ_EXAMPLES=10 pytest tests/test_fuzz.py`` tries ten
times as many inputs (another derandomised sequence, longer). The counts of inputs tried
are printed at the end of the test report.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import math
import os
import re
import resource
import signal
from collections.abc import Iterator, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cogrl.agents
import cogrl.core
from cogrl.envs import cogrl_env_ids, core_spec, make_core

SCALE = float(os.environ.get("FUZZ_EXAMPLES", "1"))
# Seconds one input may take (construction included) before it counts as a hang.
TIME_LIMIT = 30
# Address space one input may add, and the memory cores are told the machine has (a core that
# allocates more without checking first fails).
MEMORY_LIMIT = 3 * 2**30

ENV_IDS = [i for i in cogrl_env_ids() if i.startswith("cogrl/")]
# Arguments every fuzzed core starts from. Scanpath's default saliency model takes seconds
# per image set; spectral residual gives the same core in a fraction of that.
BASE_KWARGS: dict[str, dict[str, Any]] = {"cogrl/Scanpath-v0": {"saliency": "spectral_residual"}}
CLEAR_ERRORS = (ValueError, TypeError)

COUNTS: collections.Counter[str] = collections.Counter()


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.fixture(scope="module", autouse=True)
def small_machine():
    """Cores check their size against the device's memory before allocating; here the CPU
    has MEMORY_LIMIT bytes, which is also what an input may map (:func:`guarded`). So a
    size the checks let through but that does not fit is an allocation failure: a bug."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cogrl.core, "device_memory", lambda device: MEMORY_LIMIT)
        yield


@pytest.fixture(scope="module", autouse=True)
def report_counts(report_lines):
    yield
    lines = report_lines.setdefault("fuzz: inputs tried", [])
    tests = sorted({key.split(":")[0] for key in COUNTS})
    for test in tests:
        worked, errors = COUNTS[f"{test}:worked"], COUNTS[f"{test}:error"]
        lines.append(f"{test}: {worked + errors} inputs ({worked} worked, {errors} clear errors)")
    total = sum(COUNTS.values())
    lines.append(f"total: {total} inputs")


# --- guards -----------------------------------------------------------------------------------


class Hang(Exception):
    pass


@contextlib.contextmanager
def guarded(seconds: float = TIME_LIMIT, extra_memory: int = MEMORY_LIMIT) -> Iterator[None]:
    """Fail an input that runs longer than ``seconds`` or maps ``extra_memory`` more bytes."""

    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no answer after {seconds} s")

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = mapped + extra_memory
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def clear_error(test: str, error: BaseException, names: list[str], values: list[Any]) -> None:
    """``error`` must be a clear error naming one of ``names`` or one of ``values``."""
    message = str(error)
    if isinstance(error, (Hang, MemoryError)) or not isinstance(error, CLEAR_ERRORS + (OSError,)):
        raise AssertionError(
            f"{type(error).__name__} instead of a clear error for {names} = {values}: {message}"
        ) from error
    if isinstance(error, OSError) and not any(isinstance(v, str) for v in values):
        raise AssertionError(f"OSError for {names} = {values}: {message}") from error
    shown = [n for n in names if n in message] + [v for v in values if _named(v, message)]
    assert shown, f"the error names none of {names} or their values {values}: {message!r}"
    COUNTS[f"{test}:error"] += 1


def _named(value: Any, message: str) -> bool:
    if isinstance(value, str):
        return value in message
    text = repr(value)
    if text in message or str(value) in message:
        return True
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value)) in message
    return False


# --- observations and steps -------------------------------------------------------------------


def check_rows(space: spaces.Space, obs: Any, n: int) -> None:
    """Every row of a batch of observations lies in ``space``."""
    obs = _numpy(obs)
    for i in range(n):
        row = {k: v[i] for k, v in obs.items()} if isinstance(obs, Mapping) else obs[i]
        assert space.contains(row), f"observation {i} is outside {space}: {row}"


def _numpy(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, Mapping):
        return {k: _numpy(v) for k, v in x.items()}
    return x


def check_core_steps(core: Any, steps: int = 3, seed: int = 0) -> None:
    obs, _ = core.reset(seed=seed)
    check_rows(core.single_observation_space, obs, core.num_envs)
    space = core.single_action_space
    space.seed(seed)
    for _ in range(steps):
        action = np.stack([np.asarray(space.sample()) for _ in range(core.num_envs)])
        obs, reward, terminated, truncated, _ = core.step(action)
        check_rows(core.single_observation_space, obs, core.num_envs)
        assert torch.isfinite(reward).all(), reward
        assert terminated.dtype == torch.bool and truncated.dtype == torch.bool


# --- constructor arguments --------------------------------------------------------------------

WORDS = [
    "", "train", "test", "digits", "mnist", "discrete", "continuous", "sequence", "sum",
    "skimage", "information", "saliency", "spectral_residual", "itti_koch", "none", "cpu",
    "cuda", "auto", "rgb_array", "human", "bogus", "/nonexistent/cogrl-fuzz",
]  # fmt: skip
HUGE = [2**31, 10**12, 2**63, -(2**63)]
FLOATS = [math.nan, math.inf, -math.inf, -0.0, 0.5, 1e300, -1e-300, 2.0, 0.9]


def values(default: Any) -> st.SearchStrategy[Any]:
    """Any value, often one near the argument's default (so that many constructions work)."""
    near: list[Any] = [default]
    if isinstance(default, int) and not isinstance(default, bool):
        near += [default + 1, max(default - 1, 0), default * 2, 1]
    elif isinstance(default, float):
        near += [default / 2, min(default * 1.5, 0.99)]
    elif isinstance(default, (tuple, list)):
        near += [tuple(v + 2 for v in default), [v * 2 for v in default]]
    scalars = st.one_of(
        st.integers(-3, 40),
        st.sampled_from(HUGE),
        st.sampled_from(FLOATS),
        st.floats(-50, 50),
        st.booleans(),
        st.none(),
        st.sampled_from(WORDS),
        st.builds(np.int64, st.integers(-2, 30)),
        st.builds(np.float32, st.sampled_from(FLOATS)),
    )
    containers = st.one_of(
        st.lists(st.integers(-2, 70), max_size=3).map(tuple),
        st.lists(st.integers(-2, 70), max_size=3),
        st.just({"a": 1}),
        st.just(object()),
        st.just(np.zeros((2, 2))),
    )
    return st.one_of(st.sampled_from(near), st.sampled_from(near), scalars, scalars, containers)


def constructor_defaults(env_id: str) -> dict[str, Any]:
    """The core's constructor arguments (but ``autoreset``) and their defaults."""
    cls, registered = core_spec(env_id)
    params = inspect.signature(cls.__init__).parameters
    defaults = {p: v.default for p, v in params.items() if p not in ("self", "autoreset")}
    return {**defaults, **registered, **BASE_KWARGS.get(env_id, {})}


def constructor_names(env_id: str) -> list[str]:
    return list(constructor_defaults(env_id))


@st.composite
def constructions(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    env_id = draw(st.sampled_from(ENV_IDS))
    how = draw(st.sampled_from(["core", "core", "make", "make_vec"]))
    defaults = constructor_defaults(env_id)
    chosen = draw(st.lists(st.sampled_from(sorted(defaults)), min_size=1, max_size=2, unique=True))
    kwargs = {name: draw(values(defaults[name])) for name in chosen}
    if how != "core" and not isinstance(kwargs.get("render_mode", ""), str):
        del kwargs["render_mode"]  # gym.make reads render_mode itself (Gymnasium's checks)
    if not kwargs:
        kwargs["num_envs"] = draw(values(2))
    if draw(st.integers(0, 9)) == 0:
        kwargs[draw(st.sampled_from(["bogus", "num_env", "seed", "action"]))] = 1
    return env_id, how, kwargs


def build(env_id: str, how: str, kwargs: dict[str, Any]) -> Any:
    kwargs = {**BASE_KWARGS.get(env_id, {}), **kwargs}
    if how == "core":
        return make_core(env_id, **kwargs)
    if how == "make":
        return gym.make(env_id, **{k: v for k, v in kwargs.items() if k != "num_envs"})
    num_envs = kwargs.pop("num_envs", 2)
    return gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    )


def check_built(env: Any, how: str) -> None:
    if how == "core":
        check_core_steps(env)
        return
    obs, _ = env.reset(seed=0)
    single = how == "make"
    obs_space = env.observation_space
    assert obs_space.contains(obs), f"reset's observation is outside {obs_space}"
    env.action_space.seed(0)
    for _ in range(3):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert obs_space.contains(obs), f"the observation is outside {obs_space}"
        assert np.all(np.isfinite(reward)), reward
        if single and (terminated or truncated):
            obs, _ = env.reset()


@fuzz_settings(240)
@given(constructions())
def test_constructor_arguments_work_or_are_clear_errors(case):
    env_id, how, kwargs = case
    try:
        with guarded():
            env = build(env_id, how, kwargs)
            check_built(env, how)
            env.close()
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001 (the test judges every error)
        clear_error("constructor", e, list(kwargs), list(kwargs.values()))
    else:
        COUNTS["constructor:worked"] += 1


# --- actions ----------------------------------------------------------------------------------

# (id, action_mode) pairs: the glimpse, search and scanpath tasks have two action modes.
MODES = [
    (env_id, mode)
    for env_id in ENV_IDS
    for mode in (
        ("continuous", "discrete") if "action_mode" in constructor_names(env_id) else (None,)
    )
]
_CORES: dict[tuple[str, str | None, int], Any] = {}


def core_for(env_id: str, mode: str | None, num_envs: int) -> Any:
    key = (env_id, mode, num_envs)
    if key not in _CORES:
        kwargs = dict(BASE_KWARGS.get(env_id, {}))
        if mode is not None:
            kwargs["action_mode"] = mode
        _CORES[key] = make_core(env_id, num_envs=num_envs, **kwargs)
        _CORES[key].reset(seed=0)
    return _CORES[key]


NUMPY_DTYPES = [
    np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64, np.bool_, np.complex64, np.object_,
]  # fmt: skip
TORCH_DTYPES = {
    np.int8: torch.int8, np.int16: torch.int16, np.int32: torch.int32, np.int64: torch.int64,
    np.uint8: torch.uint8, np.float16: torch.float16, np.float32: torch.float32,
    np.float64: torch.float64, np.bool_: torch.bool, np.complex64: torch.complex64,
}  # fmt: skip


@st.composite
def action_values(draw: st.DrawFn, space: spaces.Space, shape: tuple[int, ...]) -> np.ndarray:
    """Values in the space mostly, sometimes outside it, NaN or infinite."""
    size = int(np.prod(shape, dtype=np.int64))
    if isinstance(space, spaces.Box):
        inside = st.floats(-1.0, 1.0)
    elif isinstance(space, spaces.Discrete):
        inside = st.integers(int(space.start), int(space.start + space.n - 1))
    else:
        inside = st.integers(0, 1)
    outside = st.sampled_from([-1, 2, 300, -1.5, 1.5, 1e30, math.nan, math.inf, -math.inf, 70])
    element = st.one_of(inside, inside, inside, outside) if draw(st.booleans()) else inside
    flat = draw(st.lists(element, min_size=size, max_size=size))
    return np.array(flat, dtype=object).reshape(shape)


@st.composite
def actions(draw: st.DrawFn, space: spaces.Space, n: int | None) -> tuple[Any, bool]:
    """An action batch for ``n`` environments (``None``: one action) and whether it is valid."""
    right = tuple(space.shape) if n is None else (n, *space.shape)
    shape = draw(
        st.one_of(
            st.just(right),
            st.just(right),
            st.just(right),
            st.lists(st.integers(0, 4), max_size=3).map(tuple),
            st.just(right + (1,)),
            st.just(right[1:]),
            st.just((right[0] + 1, *right[1:]) if right else (1,)),
        )
    )
    dtype = draw(st.sampled_from(NUMPY_DTYPES))
    raw = draw(action_values(space, shape))
    with np.errstate(all="ignore"):
        if dtype is np.object_:
            array = raw
        elif np.issubdtype(dtype, np.integer) or dtype is np.bool_:
            floats = raw.astype(np.float64)
            finite = np.where(np.isfinite(floats), floats, 0.0)
            array = finite.astype(np.int64).astype(dtype)
        else:
            array = raw.astype(np.float64).astype(dtype)
    container = draw(st.sampled_from(["numpy", "torch", "list", "scalar"]))
    if container == "torch" and dtype in TORCH_DTYPES:
        action: Any = torch.from_numpy(np.ascontiguousarray(array))
    elif container == "list":
        action = array.tolist()
    elif container == "scalar" and array.size == 1:
        action = array.reshape(()).item()
    else:
        action = array
    return action, is_valid(space, action, right)


def is_valid(space: spaces.Space, action: Any, shape: tuple[int, ...]) -> bool:
    """The oracle: whether ``action`` is a batch of ``shape`` of ``space``'s actions, of a
    dtype of the same kind (no casts between floats, ints and bools) and values inside."""
    a = action.numpy() if isinstance(action, torch.Tensor) else np.asarray(action)
    if a.shape != shape:
        return False
    kind = a.dtype.kind
    if isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.floating):
        if kind != "f":
            return False
        with np.errstate(all="ignore"):
            v = a.astype(np.float64)
        return bool(np.isfinite(v).all() and (v >= space.low).all() and (v <= space.high).all())
    allowed = "iub" if isinstance(space, spaces.MultiBinary) else "iu"
    if kind not in allowed:
        return False
    v = a.astype(np.int64) if a.dtype != np.uint64 else a.astype(np.float64)
    if isinstance(space, spaces.Discrete):
        low, high = int(space.start), int(space.start + space.n - 1)
    elif isinstance(space, spaces.MultiBinary):
        low, high = 0, 1
    else:
        low, high = space.low, space.high
    return bool((v >= low).all() and (v <= high).all())


@st.composite
def action_cases(draw: st.DrawFn) -> tuple[str, str | None, str, int, Any, bool]:
    env_id, mode = draw(st.sampled_from(MODES))
    how = draw(st.sampled_from(["core", "make", "make_vec"]))
    n = draw(st.sampled_from([1, 3]))
    space = core_for(env_id, mode, 1).single_action_space
    action, valid = draw(actions(space, None if how == "make" else n))
    return env_id, mode, how, n, action, valid


_ENVS: dict[tuple[str, str | None, str, int], Any] = {}


def env_for(env_id: str, mode: str | None, how: str, n: int) -> Any:
    if how == "core":
        return core_for(env_id, mode, n)
    key = (env_id, mode, how, n)
    if key not in _ENVS:
        kwargs = dict(BASE_KWARGS.get(env_id, {}))
        if mode is not None:
            kwargs["action_mode"] = mode
        if how == "make":
            _ENVS[key] = gym.make(env_id, **kwargs)
        else:
            _ENVS[key] = gym.make_vec(
                env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs
            )
        _ENVS[key].reset(seed=0)
    return _ENVS[key]


@fuzz_settings(900)
@given(action_cases())
def test_actions_work_or_are_clear_errors(case):
    env_id, mode, how, n, action, valid = case
    env = env_for(env_id, mode, how, n)
    try:
        with guarded():
            obs, reward, terminated, truncated, _ = env.step(action)
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001
        assert not valid, f"{env_id} ({mode}, {how}) refused a valid action {action!r}: {e!r}"
        clear_error("actions", e, ["action"], [])
        return
    assert valid, f"{env_id} ({mode}, {how}) took an invalid action {action!r}"
    COUNTS["actions:worked"] += 1
    if how == "core":
        check_rows(env.single_observation_space, obs, n)
        assert torch.isfinite(reward).all()
    else:
        assert env.observation_space.contains(obs)
        assert np.all(np.isfinite(reward))
        if how == "make" and (terminated or truncated):
            env.reset()


# --- predict ----------------------------------------------------------------------------------

TINY = {"hidden_sizes": [8], "core_size": 8}
# Each agent on a small task it supports, with tiny networks; the recurrent ones and a
# feedforward one, discrete and continuous actions, flat and dict observations.
AGENT_CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "ppo-gru": ("ppo", "cogrl/DelayedRecall-v0", {"policy": {**TINY, "core": "gru"}}),
    "a2c": ("a2c", "cogrl/GlimpseDigits-v0", {"policy": TINY}),
    "dqn": ("dqn", "cogrl/DelayedRecall-v0", {"policy": TINY}),
    "reinforce": ("reinforce", "cogrl/Copy-v0", {"policy": {**TINY, "core": "lstm"}}),
    "ram": ("ram", "cogrl/GlimpseDigits-v0", {}),
    "dram": ("dram", "cogrl/MultiDigits-v0", {}),
    "classifier": ("classifier", "cogrl/GlimpseDigits-v0", {}),
}
_AGENTS: dict[str, Any] = {}


def test_every_agent_is_fuzzed():
    assert {name for name, _, _ in AGENT_CASES.values()} == set(cogrl.agents.AGENTS)


def agent_for(case: str) -> Any:
    if case not in _AGENTS:
        name, env_id, kwargs = AGENT_CASES[case]
        _AGENTS[case] = cogrl.agents.make(name, env_id, device="cpu", seed=0, **kwargs)
    return _AGENTS[case]


def sample_obs(space: spaces.Space, n: int | None, seed: int) -> Any:
    space.seed(seed)
    if n is None:
        return space.sample()
    rows = [space.sample() for _ in range(n)]
    if isinstance(space, spaces.Dict):
        return {k: np.stack([r[k] for r in rows]) for k in space.spaces}
    return np.stack(rows)


def spoil(draw: st.DrawFn, x: np.ndarray) -> tuple[Any, bool]:
    """``x`` as given, or spoilt (shape, dtype, NaN, container); whether it is still valid."""
    how = draw(
        st.sampled_from(
            ["as-is", "torch", "list", "float64", "bool", "int", "nan", "inf", "shape",
             "extra-dim", "complex", "object", "string"]
        )
    )  # fmt: skip
    if how == "as-is":
        return x, True
    if how == "torch":
        return torch.as_tensor(x), True
    if how == "list":
        return x.tolist(), True
    if how == "float64":
        return x.astype(np.float64), True
    if how in ("nan", "inf"):
        y = x.astype(np.float32)
        if y.size:
            y.flat[draw(st.integers(0, y.size - 1))] = math.nan if how == "nan" else math.inf
        return y, y.size == 0
    if how == "shape":
        return np.zeros((*x.shape[:-1], x.shape[-1] + 1) if x.ndim else (2,), np.float32), False
    if how == "extra-dim":
        return x[None, None], False
    if how == "complex":
        return x.astype(np.complex64), False
    if how == "object":
        return x.astype(object), False
    if how == "string":
        return "obs", False
    if how == "bool":
        return x.astype(bool), True
    return x.astype(np.int64), True


PREDICT_ARGS = {
    # argument: (values that fit, values that do not)
    "state": (["none", "own"], ["other-batch", "garbage", "tensor"]),
    "episode_start": (["none", "own", "bools", "scalar"], ["long", "float", "string"]),
    "deterministic": ([True, False, np.bool_(True)], ["yes", None, 2]),
}


@st.composite
def predict_cases(draw: st.DrawFn) -> tuple[str, Any, bool, int | None, dict[str, Any], str]:
    """An agent, its ``predict`` arguments, whether they are valid, the batch size (None:
    one observation) and the argument that is spoilt (at most one per case)."""
    case = draw(st.sampled_from(sorted(AGENT_CASES)))
    agent = agent_for(case)
    space = agent.observation_space
    n = draw(st.sampled_from([None, 1, 4]))
    batch = 1 if n is None else n
    bad = draw(st.sampled_from(["none", "none", "observation", *PREDICT_ARGS]))
    obs = sample_obs(space, n, draw(st.integers(0, 2**16)))
    valid = True
    if bad == "observation":
        if isinstance(space, spaces.Dict):
            key = draw(st.sampled_from(sorted(obs)))
            obs = dict(obs)
            obs[key], valid = spoil(draw, np.asarray(obs[key]))
            if draw(st.integers(0, 9)) == 0:
                del obs[key]
                valid = False
        else:
            obs, valid = spoil(draw, np.asarray(obs))
    choice = {
        name: draw(st.sampled_from(bad_values if name == bad else good))
        for name, (good, bad_values) in PREDICT_ARGS.items()
    }
    if bad in PREDICT_ARGS:
        valid = False
    kwargs: dict[str, Any] = {"deterministic": choice["deterministic"]}
    state = choice["state"]
    if state != "none":
        kwargs["state"] = {
            "own": lambda: agent.initial_state(batch),
            "other-batch": lambda: agent.initial_state(batch + 1),
            "garbage": lambda: draw(st.sampled_from([3, "state", (1, 2), [None]])),
            "tensor": lambda: torch.zeros(batch, 3),
        }[state]()
    start = choice["episode_start"]
    if start != "none":
        kwargs["episode_start"] = {
            "own": np.ones(batch, bool),
            "bools": torch.zeros(batch, dtype=torch.bool),
            "long": np.ones(batch + 2, bool),
            "scalar": True,
            "float": np.full(batch, 0.5),
            "string": "yes",
        }[start]
    return case, obs, valid, n, kwargs, bad


@fuzz_settings(500)
@given(predict_cases())
def test_predict_works_or_is_a_clear_error(case):
    name, obs, valid, n, kwargs, bad = case
    agent = agent_for(name)
    try:
        with guarded():
            action, state = agent.predict(obs, **kwargs)
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001
        assert not valid, f"{name}: predict refused valid input ({kwargs}): {e!r}"
        clear_error("predict", e, ["observation", "state", "episode_start", "deterministic"], [])
        return
    assert valid, f"{name}: predict took a bad {bad} ({kwargs}, obs {obs!r})"
    COUNTS["predict:worked"] += 1
    action = _numpy(action)
    rows = [action] if n is None else list(action)
    assert len(rows) == (1 if n is None else n)
    for row in rows:
        assert agent.action_space.contains(np.asarray(row, dtype=agent.action_space.dtype)), row


def test_the_guard_catches_hangs_and_large_allocations():
    with pytest.raises(Hang), guarded(seconds=0.2):
        while True:
            pass
    with pytest.raises((MemoryError, RuntimeError), match=re.compile("memory|alloc", re.I)):
        with guarded(extra_memory=2**28):
            torch.empty(2**30, dtype=torch.uint8)


# --- data files: human eye movements and bAbI --------------------------------------------------

_NAMES = st.sampled_from(
    ["a.png", "b.png", "/etc/passwd", "../a.png", "sub/../../a.png", "", "~/a.png", "a..png"]
)
_SIDES = st.one_of(
    st.sampled_from([8, 6, 1, 0, -3, 10**7, 8192, 8193]),
    st.sampled_from([8.0, float("nan"), "8", True, None, [8]]),
)
_COORD = st.one_of(
    st.floats(-2, 10, allow_nan=False),
    st.sampled_from([float("nan"), float("inf"), -1e300, 1e300, "1", None, True]),
)
_FIXATION = st.one_of(
    st.lists(_COORD, min_size=3, max_size=3),
    st.lists(_COORD, min_size=0, max_size=5),
    st.sampled_from([5, "x", None, {"x": 1}]),
)
_SUBJECTS = st.one_of(
    st.lists(st.lists(_FIXATION, min_size=0, max_size=4), min_size=0, max_size=3),
    st.sampled_from([5, [], [[]], "abc", None, {"a": 1}]),
)
# The image file of a record: as the record says, of another size, not an image, missing.
_IMAGE_FILES = st.sampled_from(["fits", "other size", "text", "missing", "huge header"])


_GOOD_FIXATION = st.tuples(st.floats(0, 7.9), st.floats(0, 5.9), st.integers(0, 500)).map(
    list
)  # on an 8 x 6 image
_GOOD_RECORD = st.fixed_dictionaries(
    {
        "image": st.sampled_from([f"{i}.png" for i in range(6)]),
        "width": st.just(8),
        "height": st.just(6),
        "subjects": st.lists(st.lists(_GOOD_FIXATION, min_size=1, max_size=4), min_size=1),
    }
)
_ANY_RECORD = st.fixed_dictionaries(
    {"image": _NAMES, "width": _SIDES, "height": _SIDES, "subjects": _SUBJECTS}
)


@st.composite
def human_folders(draw: st.DrawFn) -> tuple[list[Any], list[str]]:
    # Mostly good records (so that loading is exercised too), some of any kind.
    good = draw(st.integers(0, 3)) > 0
    records = draw(st.lists(_GOOD_RECORD if good else _ANY_RECORD, min_size=1, max_size=4))
    # Now and then a record loses a key or is not an object.
    for record in records:
        if not good and draw(st.booleans()) and draw(st.booleans()):
            record.pop(draw(st.sampled_from(sorted(record))))
    if draw(st.integers(0, 9)) == 0:
        records.append(draw(st.sampled_from([[1, 2], "text", None, 5])))
    files = [draw(_IMAGE_FILES) if not good or draw(st.integers(0, 5)) == 0 else "fits"
             for _ in records]  # fmt: skip
    return records, files


def _write_human_folder(root: Any, records: list[Any], files: list[str]) -> None:
    import json
    import zlib

    from PIL import Image

    (root / "stimuli").mkdir()
    for record, file in zip(records, files, strict=True):
        if not isinstance(record, dict) or not isinstance(record.get("image"), str):
            continue
        name = record["image"]
        if not name or "/" in name or name.startswith("~"):
            continue  # never written outside stimuli/ (the loader must refuse the name)
        path = root / "stimuli" / name
        w, h = record.get("width"), record.get("height")
        fits = all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 64 for v in (w, h))
        if file == "fits" and fits:
            Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path, format="PNG")
        elif file in ("other size", "fits"):
            Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(path, format="PNG")
        elif file == "text":
            path.write_text("not an image")
        elif file == "huge header":
            ihdr = (20000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
            crc = zlib.crc32(b"IHDR" + ihdr).to_bytes(4, "big")
            path.write_bytes(bytes.fromhex("89504e470d0a1a0a0000000d49484452") + ihdr + crc)
    text = "".join(json.dumps(r) + "\n" for r in records)
    (root / "fixations.jsonl").write_text(text)


@fuzz_settings(200)
@given(human_folders())
def test_human_data_folders_load_or_are_clear_errors(case):
    import tempfile
    from pathlib import Path

    from cogrl.datasets import image_split, load_fixations

    records, files = case
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _write_human_folder(root, records, files)
        loaded = []
        try:
            with guarded():
                loaded.append(load_fixations(root, "train"))
                # The file is read whole for either split: the test split can only lack images.
                with contextlib.suppress(ValueError):
                    loaded.append(load_fixations(root, "test"))
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001
            file_error("human data", e, "fixations.jsonl", records)
            return
    # What loads is what the format promises: images inside stimuli/, fixations on them.
    for data in loaded:
        for i, name in enumerate(data.names):
            assert "/" not in name and ".." not in Path(name).parts
            assert image_split(name) == data.split
            width, height = data.sizes[i]
            for path in data.scanpaths[i]:
                assert len(path) > 0 and path.shape[1] == 3
                assert ((path[:, 0] >= 0) & (path[:, 0] < width)).all()
                assert ((path[:, 1] >= 0) & (path[:, 1] < height)).all()
    COUNTS["human data:worked"] += 1


def file_error(test: str, error: BaseException, file: str, given: Any) -> None:
    """A data loader's error must be a ValueError that names the file."""
    assert isinstance(error, ValueError), f"{type(error).__name__} for {given!r}: {error}"
    assert file in str(error), f"the error names no file: {error}"
    COUNTS[f"{test}:error"] += 1


_WORDS = st.sampled_from(["Mary", "went", "to", "the", "kitchen.", "Where", "is", "?", "!", ""])


@st.composite
def babi_texts(draw: st.DrawFn) -> str:
    # Mostly well-formed stories with one thing perhaps wrong (so that loading is exercised
    # too), some lines of any kind.
    rare = lambda: draw(st.integers(0, 15)) == 0  # noqa: E731
    lines, number, sentences = [], 0, []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["sentence", "sentence", "question", "new story"]))
        if kind == "new story":
            number, sentences = 0, []
            kind = "sentence"
        number += 1 if not rare() else draw(st.sampled_from([0, 2, -1]))
        words = " ".join(draw(st.lists(_WORDS, min_size=1, max_size=6)))
        if rare():
            words = draw(st.sampled_from(["", "?", "word " * draw(st.sampled_from([100, 101]))]))
        if kind == "question":
            answer = "kitchen" if not rare() else draw(st.sampled_from(["", " ", "two words"]))
            support = [draw(st.sampled_from(sentences))] if sentences else []
            if rare():
                support = [draw(st.integers(-1, number + 1))]
            tail = "\textra" if rare() else ""
            lines.append(f"{number} {words}\t{answer}\t{' '.join(map(str, support))}{tail}")
        else:
            sentences.append(number)
            lines.append(f"{number} {words}")
        if rare():
            lines.append(draw(st.sampled_from(["x A b.", " ", "1", "\t\t", "3.5 a"])))
    if sentences and not rare():  # a question to end on
        lines.append(f"{number + 1} Where is Mary?\tkitchen\t{sentences[-1]}")
    if draw(st.integers(0, 19)) == 0:  # a story longer than the bound
        lines = [f"{i} A b." for i in range(1, 1002)]
    return "\n".join(lines) + "\n"


@fuzz_settings(200)
@given(babi_texts())
def test_babi_files_load_or_are_clear_errors(text):
    import tempfile
    from pathlib import Path

    from cogrl.datasets import MAX_BABI_SENTENCES, MAX_BABI_WORDS, load_babi

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "en"
        root.mkdir()
        (root / "qa1_fuzz_train.txt").write_text(text, encoding="utf-8")
        try:
            with guarded():
                data = load_babi(Path(folder), 1, "train")
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001
            file_error("babi", e, "qa1_fuzz_train.txt", text)
            return
    # What loads is bounded and consistent: every example's story and support in range.
    assert len(data) > 0
    for q in range(len(data)):
        assert 0 < len(data.questions[q]) <= MAX_BABI_WORDS
        assert 0 <= data.story_length[q] <= MAX_BABI_SENTENCES
        assert all(0 <= i < data.story_length[q] for i in data.supporting[q])
        assert data.answers[q] and " " not in data.answers[q]
    assert all(0 < len(s) <= MAX_BABI_WORDS for s in data.sentences)
    COUNTS["babi:worked"] += 1
