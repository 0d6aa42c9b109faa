"""Tests of the batched-core contract every cogrl environment shares (cogrl.core.BatchedEnv):
where the adapters live, metadata, autoreset=False, reset options, the sync-free step,
snapshots and memory estimates."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import cogrl
import cogrl.core
from cogrl.core import BatchedEnv, Info, device_memory, force_sync_free, sync_free
from cogrl.envs import GymVectorCore, env_metadata, make_core, register_core
from cogrl.envs.adapters import CoreEnv, CoreVectorEnv
from cogrl.envs.attention import ClutteredDigits, GlimpseDigits, TranslatedDigits

GLIMPSE, TRANSLATED, CLUTTERED = (
    "cogrl/GlimpseDigits-v0",
    "cogrl/TranslatedDigits-v0",
    "cogrl/ClutteredDigits-v0",
)
TASKS = (GLIMPSE, TRANSLATED, CLUTTERED)
MODES = ("continuous", "discrete")
COUNTDOWN = "cogrl_test/Countdown-v0"


class Countdown(BatchedEnv):
    """A user's core as the README describes one: episodes of a random length in
    [1, max_length]; the observation is the number of steps left, the reward the action.

    It implements ``_reset_envs(index)`` only (the base's ``_reset_where`` serves the
    sync-free path), checks actions with the base's check, and honours the reset option
    ``max_length``.
    """

    reset_options = ("max_length",)
    state_attributes = ("remaining",)

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        render_mode: str | None = None,
        autoreset: bool = True,
        max_length: int = 4,
    ) -> None:
        super().__init__(num_envs, device, render_mode, autoreset)
        self.max_length = max_length
        self.single_observation_space = spaces.Box(0.0, 100.0, (1,), np.float32)
        self.single_action_space = spaces.Discrete(2)
        self.remaining = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def _apply_options(self, options: Mapping[str, Any]) -> None:
        self.max_length = int(options.get("max_length", self.max_length))

    def _reset_envs(self, index: torch.Tensor) -> None:
        self.remaining[index] = self.rng.integers(index, 1, self.max_length)[:, 0] + 1

    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        self.remaining -= 1
        terminated = self.remaining == 0
        info = {"left": self.remaining.clone(), "_left": terminated}
        return action.float(), terminated, torch.zeros_like(terminated), info

    def _observe(self, index: torch.Tensor | None = None) -> torch.Tensor:
        remaining = self.remaining if index is None else self.remaining[index]
        return remaining[:, None].float()


if COUNTDOWN not in gym.registry:
    register_core(COUNTDOWN, Countdown)


def random_actions(core: BatchedEnv, steps: int, seed: int = 0) -> list[torch.Tensor]:
    """Valid action batches for ``core``, drawn with torch (no host reads)."""
    g = torch.Generator().manual_seed(seed)
    space, n = core.single_action_space, core.num_envs
    if isinstance(space, spaces.Discrete):
        return [torch.randint(0, int(space.n), (n,), generator=g) for _ in range(steps)]
    return [torch.rand(n, *space.shape, generator=g) * 2 - 1 for _ in range(steps)]


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Equal tensors (bit for bit; NaN equal to NaN: a metric undefined for an episode),
    dicts, sequences and plain values."""
    if isinstance(a, Mapping):
        assert isinstance(b, Mapping) and set(a) == set(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert a.shape == b.shape, where
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=where)
    else:
        assert a == b or (a != a and b != b), where  # NaN == NaN here


def step_outputs(
    core: BatchedEnv, actions: list[torch.Tensor], always_final: bool = False
) -> Iterator[tuple]:
    """Each step's outputs, with final_obs kept only in its valid rows (the others are
    unspecified) so that the default and sync-free paths compare; ``always_final``: every
    step must report final_obs (the sync-free path)."""
    for action in actions:
        obs, reward, terminated, truncated, info = core.step(action)
        info = dict(info)
        done = terminated | truncated
        final = info.pop("final_obs", None)
        mask = info.pop("_final_obs", None)
        assert final is not None or not always_final
        if final is not None:
            assert torch.equal(mask, done)
            final = (
                {k: v[done] for k, v in final.items()} if isinstance(final, dict) else final[done]
            )
        if final is None or not bool(done.any()):
            final = None  # the default path reports final_obs only when something ended
        yield obs, reward, terminated, truncated, info, final


# --- layout: families as folders, adapters in cogrl.envs.adapters ------------------------------


def test_ids_point_at_the_adapters_and_the_attention_family() -> None:
    for env_id, cls in zip(TASKS, (GlimpseDigits, TranslatedDigits, ClutteredDigits), strict=True):
        spec = gym.spec(env_id)
        assert spec.entry_point == "cogrl.envs.adapters:CoreEnv"
        assert spec.vector_entry_point == "cogrl.envs.adapters:CoreVectorEnv"
        assert spec.kwargs["core"] == f"cogrl.envs.attention.glimpse:{cls.__name__}"
        assert type(make_core(env_id, 1)) is cls
    assert isinstance(gym.make(COUNTDOWN).unwrapped, CoreEnv)
    vec = gym.make_vec(COUNTDOWN, num_envs=2, vectorization_mode="vector_entry_point")
    assert isinstance(vec, CoreVectorEnv)
    assert cogrl.CoreEnv is CoreEnv and cogrl.CoreVectorEnv is CoreVectorEnv
    assert not hasattr(cogrl.core, "CoreEnv")  # moved, no alias left behind


# --- metadata ----------------------------------------------------------------------------------


#: The glimpse tasks' episode metrics: the accuracy, and where the agent looked.
GLIMPSE_METRICS = {"accuracy": "correct", "on_digit": "on_digit"}


def test_tasks_declare_their_episode_metrics_and_splits() -> None:
    for env_id in TASKS:
        metadata = make_core(env_id, 1).metadata
        assert metadata["episode_metrics"] == GLIMPSE_METRICS
        assert metadata["splits"] == ("train", "test")
    assert BatchedEnv.metadata["episode_metrics"] == {} and BatchedEnv.metadata["splits"] == ()
    core = make_core("CartPole-v1", 1)
    assert core.metadata["episode_metrics"] == {} and core.metadata["splits"] == ()


def test_env_metadata_needs_no_core(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("env_metadata built a core")

    monkeypatch.setattr(GlimpseDigits, "__init__", refuse)
    for env_id in TASKS:
        metadata = env_metadata(env_id)
        assert metadata["episode_metrics"] == GLIMPSE_METRICS
        assert metadata["splits"] == ("train", "test")
        assert metadata["render_modes"] == ["rgb_array"]
    for env_id in (COUNTDOWN, "CartPole-v1"):
        metadata = env_metadata(env_id)
        assert metadata["episode_metrics"] == {} and metadata["splits"] == ()
    assert "human" in env_metadata("CartPole-v1")["render_modes"]
    env_metadata(GLIMPSE)["episode_metrics"]["x"] = "y"  # a copy: the class keeps its own
    assert env_metadata(GLIMPSE)["episode_metrics"] == GLIMPSE_METRICS
    with pytest.raises(ValueError, match="NoSuchEnv"):
        env_metadata("NoSuchEnv-v0")


# --- stepping a finished environment without autoreset --------------------------------------


@pytest.mark.parametrize("env_id", [*TASKS, COUNTDOWN, "CartPole-v1"])
def test_stepping_finished_envs_without_autoreset_names_them(env_id: str) -> None:
    kwargs = {"n_glimpses": 2, "action_mode": "discrete"} if env_id in TASKS else {}
    core = make_core(env_id, 3, autoreset=False, **kwargs)
    core.reset(seed=1)
    look = torch.zeros(3, dtype=torch.int64)  # glimpses: look at cell 0, never answer
    finished = torch.zeros(3, dtype=torch.bool)
    for _ in range(500):
        *_, terminated, truncated, _ = core.step(look)
        finished |= terminated | truncated
        if bool(finished.any()):
            break
    expected = finished.nonzero().squeeze(1).tolist()
    with pytest.raises(RuntimeError) as err:
        core.step(look)
    assert f"environment(s) {expected} finished" in str(err.value)
    assert "reset()" in str(err.value)
    core.reset()
    core.step(look)  # fine again


def test_glimpse_t_never_passes_the_path() -> None:
    core = make_core(GLIMPSE, 2, autoreset=False, n_glimpses=3)
    core.reset(seed=0)
    for _ in range(3):
        core.step(torch.zeros(2, 12))
    assert core.t.tolist() == [3, 3]
    with pytest.raises(RuntimeError, match=r"\[0, 1\]"):
        core.step(torch.zeros(2, 12))
    assert core.t.tolist() == [3, 3]  # the refused step changed nothing


# --- reset options -----------------------------------------------------------------------------


def test_reset_options_a_core_declares_are_honoured_and_others_refused() -> None:
    core = make_core(COUNTDOWN, 64, max_length=9)
    obs, _ = core.reset(seed=0)
    assert obs.max() > 1
    obs, _ = core.reset(seed=0, options={"max_length": 1})
    assert torch.equal(obs, torch.ones(64, 1))
    with pytest.raises(ValueError) as err:
        core.reset(options={"max_length": 2, "colour": "red", "level": 3})
    message = str(err.value)
    assert "['colour', 'level']" in message and "max_length" in message
    with pytest.raises(ValueError, match="mapping"):
        core.reset(options=["max_length"])


@pytest.mark.parametrize("env_id", TASKS)
def test_glimpse_tasks_take_only_the_item_option(env_id: str) -> None:
    core = make_core(env_id, 2)
    core.reset(seed=0, options={})
    with pytest.raises(ValueError, match=r"\['level'\].*supported: \['item'\]"):
        core.reset(seed=0, options={"level": 2})
    env = gym.make(env_id)
    with pytest.raises(ValueError, match="level"):
        env.reset(seed=0, options={"level": 2})


def test_gym_vector_core_passes_options_through() -> None:
    core = make_core("CartPole-v1", 3)
    assert core.reset_options is None
    obs, _ = core.reset(seed=0, options={"low": 0.0, "high": 0.0})
    assert torch.equal(obs, torch.zeros(3, 4))


# --- the sync-free step ------------------------------------------------------------------------


def test_sync_free_is_for_devices_other_than_the_cpu() -> None:
    cpu = torch.device("cpu")
    assert not sync_free(cpu)
    assert sync_free(torch.device("cuda")) and sync_free(torch.device("meta"))
    with force_sync_free():
        assert sync_free(cpu)
        with force_sync_free():
            assert sync_free(cpu)
        assert sync_free(cpu)
    assert not sync_free(cpu)


@pytest.mark.parametrize(
    ("env_id", "mode"), [(i, m) for i in TASKS for m in MODES] + [(COUNTDOWN, None)]
)
def test_sync_free_path_steps_exactly_as_the_default_path(env_id: str, mode: str | None) -> None:
    kwargs = {} if mode is None else {"action_mode": mode, "n_glimpses": 3}
    default, masked = make_core(env_id, 16, **kwargs), make_core(env_id, 16, **kwargs)
    actions = random_actions(default, 40)
    assert_same(default.reset(seed=5), masked.reset(seed=5))
    expected = list(step_outputs(default, actions))
    with force_sync_free():
        got = list(step_outputs(masked, actions, always_final=True))
    ended = 0
    for i, (a, b) in enumerate(zip(expected, got, strict=True)):
        assert_same(a[:5], b[:5], f"step {i}")
        if a[5] is not None or b[5] is not None:
            ended += 1
            assert_same(a[5], b[5], f"step {i} final_obs")
    assert ended >= 5
    assert_same(default.state_dict(), masked.state_dict())


def test_sync_free_steps_always_report_final_obs_and_the_vector_env_hides_it() -> None:
    core = make_core(GLIMPSE, 4)
    core.reset(seed=0)
    with force_sync_free():
        _, _, terminated, _, info = core.step(torch.zeros(4, 12))
    assert not bool(terminated.any())
    assert "final_obs" in info and not bool(info["_final_obs"].any())
    vec = gym.make_vec(GLIMPSE, num_envs=4, vectorization_mode="vector_entry_point")
    vec.reset(seed=0)
    with force_sync_free():
        *_, info = vec.step(np.zeros((4, 12), np.float32))
    assert "final_obs" not in info and "_final_obs" not in info  # as SyncVectorEnv


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("env_id", TASKS)
def test_sync_free_glimpse_steps_read_nothing_on_the_host(
    env_id: str, mode: str, host_reads: list[str]
) -> None:
    counts = {}
    for steps in (10, 40):
        core = make_core(env_id, 8, action_mode=mode, n_glimpses=3)
        core.check_action_values = False
        actions = random_actions(core, steps)
        core.reset(seed=0)
        host_reads.clear()
        with force_sync_free():
            for action in actions:
                core.step(action)
        counts[steps] = len(host_reads)
    assert counts == {10: 0, 40: 0}, host_reads


def test_checking_action_values_costs_one_host_read_a_step(host_reads: list[str]) -> None:
    counts = {}
    for steps in (10, 40):
        core = make_core(TRANSLATED, 8)
        actions = random_actions(core, steps)
        core.reset(seed=0)
        host_reads.clear()
        with force_sync_free():
            for action in actions:
                core.step(action)
        counts[steps] = len(host_reads)
    assert counts == {10: 10, 40: 40}


@pytest.mark.parametrize("mode", MODES)
def test_without_value_checks_only_shape_and_dtype_are_checked(mode: str) -> None:
    core = make_core(GLIMPSE, 2, action_mode=mode)
    core.reset(seed=0)
    bad = torch.full((2, 12), 3.0) if mode == "continuous" else torch.tensor([0, 1000])
    with pytest.raises(ValueError, match="outside"):
        core.step(bad)
    core.check_action_values = False
    core.step(bad)  # not looked at
    wrong_shape = torch.zeros(3, 12) if mode == "continuous" else torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"\(3"):
        core.step(wrong_shape)
    wrong_dtype = torch.zeros(2, 12, dtype=torch.int64) if mode == "continuous" else torch.zeros(2)
    with pytest.raises(ValueError, match="dtype"):
        core.step(wrong_dtype)


# --- snapshots -----------------------------------------------------------------------------


def plain(value: Any) -> bool:
    """Whether a state holds only CPU tensors, ints, bools, strs and dicts of them."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, torch.Tensor):
        return value.device.type == "cpu"
    return isinstance(value, (bool, int, str))


@pytest.mark.parametrize(
    ("env_id", "mode"), [(i, m) for i in TASKS for m in MODES] + [(COUNTDOWN, None)]
)
def test_a_loaded_snapshot_continues_bit_for_bit(env_id: str, mode: str | None) -> None:
    kwargs = {} if mode is None else {"action_mode": mode, "n_glimpses": 4}
    n, k, m = 6, 7, 15
    original = make_core(env_id, n, **kwargs)
    actions = random_actions(original, k + m, seed=3)
    original.reset(seed=11)
    for action in actions[:k]:
        original.step(action)
    state = original.state_dict()
    assert plain(state)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    expected = [original.step(a) for a in actions[k:]]

    fresh = make_core(env_id, n, **kwargs)
    fresh.load_state_dict(loaded)
    for i, action in enumerate(actions[k:]):
        assert_same(fresh.step(action), expected[i], f"step {k + i}")
    # ... and the next episodes after an unseeded reset are the same too.
    assert_same(fresh.reset(), original.reset())


@pytest.mark.parametrize("env_id", [GLIMPSE, COUNTDOWN])
def test_a_snapshot_keeps_which_environments_finished(env_id: str) -> None:
    kwargs = {"n_glimpses": 3} if env_id == GLIMPSE else {}
    original = make_core(env_id, 4, autoreset=False, **kwargs)
    original.reset(seed=2)
    for action in random_actions(original, 10):
        *_, terminated, truncated, _ = original.step(action)
        if bool((terminated | truncated).any()):
            break
    fresh = make_core(env_id, 4, autoreset=False, **kwargs)
    fresh.load_state_dict(original.state_dict())
    errors = []
    for core in (original, fresh):
        with pytest.raises(RuntimeError, match="finished") as err:
            core.step(random_actions(core, 1)[0])
        errors.append(str(err.value))
    assert errors[0] == errors[1]
    assert_same(fresh.reset(), original.reset())


def test_snapshots_are_copies() -> None:
    core = make_core(GLIMPSE, 2)
    core.reset(seed=0)
    state = core.state_dict()
    before = {k: v.clone() for k, v in state["attributes"].items()}
    core.step(torch.zeros(2, 12))
    assert_same(state["attributes"], before)


def test_bad_snapshots_are_refused_before_anything_changes() -> None:
    core = make_core(GLIMPSE, 3)
    core.reset(seed=0)
    good = core.state_dict()
    other = make_core(GLIMPSE, 3)
    other.reset(seed=1)
    before = other.state_dict()

    def edited(**changes: Any) -> dict[str, Any]:
        state = {**good, "attributes": dict(good["attributes"]), "rng": dict(good["rng"])}
        for path, value in changes.items():
            *parents, key = path.split("__")
            target = state
            for parent in parents:
                target = target[parent]
            if value is None:
                del target[key]
            else:
                target[key] = value
        return state

    cases = [
        (edited(finished=None), ["missing", "finished"]),
        (edited(extra=1), ["unexpected", "extra"]),
        (edited(attributes__canvas=None), ["missing", "canvas"]),
        (
            edited(attributes__canvas=torch.zeros(3, 27, 28)),
            ["canvas", "(3, 27, 28)", "(3, 28, 28)"],
        ),
        (edited(attributes__t=torch.zeros(3)), ["attributes.t", "float32", "int64"]),
        (edited(rng__seeds=torch.zeros(4, dtype=torch.int64)), ["rng.seeds", "(4,)", "(3,)"]),
        (edited(rng__seeded=1), ["seeded"]),
        (make_core(TRANSLATED, 3).state_dict(), ["TranslatedDigits", "GlimpseDigits"]),
        (make_core(GLIMPSE, 4).state_dict(), ["num_envs=4", "num_envs=3"]),
        ([1, 2], ["dict"]),
    ]
    for state, words in cases:
        with pytest.raises(ValueError) as err:
            other.load_state_dict(state)
        for word in words:
            assert word in str(err.value), (word, str(err.value))
        assert_same(other.state_dict(), before)


def test_gym_vector_cores_cannot_snapshot() -> None:
    core = make_core("CartPole-v1", 2)
    assert core.supports_snapshot is False and GlimpseDigits.supports_snapshot is True
    assert isinstance(core, GymVectorCore)
    with pytest.raises(NotImplementedError, match="supports_snapshot"):
        core.state_dict()
    with pytest.raises(NotImplementedError, match="CartPole"):
        core.load_state_dict({})


# --- memory estimates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"num_envs": 10**9}, "num_envs=1000000000"),
        ({"num_envs": 4, "glimpse_size": 10**5}, "glimpse_size=100000"),
        ({"num_envs": 4, "n_glimpses": 10**12}, "n_glimpses=1000000000000"),
        ({"num_envs": 4, "n_scales": 10**9, "glimpse_size": 100}, "n_scales=1000000000"),
        ({"num_envs": 1, "grid_size": 10**6, "action_mode": "discrete"}, "grid_size=1000000"),
    ],
)
@pytest.mark.parametrize("env_id", [GLIMPSE, CLUTTERED])
def test_sizes_beyond_the_machine_are_refused_before_allocating(
    env_id: str, kwargs: dict[str, Any], named: str
) -> None:
    kwargs = dict(kwargs)
    with pytest.raises(ValueError) as err:
        make_core(env_id, kwargs.pop("num_envs"), **kwargs)
    message = str(err.value)
    available = device_memory(torch.device("cpu"))
    assert named in message and "bytes" in message and f"{available:,}" in message


def test_the_base_refuses_batches_beyond_the_machine() -> None:
    with pytest.raises(ValueError, match=r"num_envs=1000000000000 would need about [\d,]+ bytes"):
        make_core(COUNTDOWN, 10**12)


def test_default_sizes_are_estimated_well_within_the_machine() -> None:
    core = make_core(CLUTTERED, 4)
    estimate = core.memory_estimate(1024)
    assert 10 * 2**20 < estimate < 2**30  # tens of MiB for 1024 environments


@pytest.mark.parametrize("render_mode", ["human", np.zeros((2, 2)), 3, ["rgb_array"]])
def test_a_render_mode_that_is_not_one_of_the_cores_is_a_clear_error(render_mode: Any) -> None:
    # found by tests/test_fuzz.py: an array was an "ambiguous truth value" error
    with pytest.raises(ValueError, match=r"render_mode must be one of \['rgb_array'\] or None"):
        make_core("cogrl/DelayedRecall-v0", render_mode=render_mode)
