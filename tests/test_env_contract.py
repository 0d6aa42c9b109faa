"""The contract every cogrl task keeps, checked generically for each entry of ``CONTRACT``.

What a user of ``gym.make``, ``gym.make_vec`` and the batched core relies on, whatever the
task: Gymnasium's and Stable-Baselines3's checkers pass; a core of N environments reset with
seed s runs environment i exactly as a single environment reset with seed s + i (and the
vector env as ``SyncVectorEnv`` over singles); seeds determine episodes; observations lie in
their space; bad actions, stepping finished episodes and unknown arguments are clear
errors; snapshots continue bit for bit; the sync-free path (GPUs) steps as the default path
and reads nothing on the host; ``render`` draws a uint8 RGB frame.

To put a task under contract, append ``(env_id, kwargs)`` to ``CONTRACT``: small sizes, so
that its episodes are short and every test here stays fast.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import batch_space
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from cogrl.core import BatchedEnv, force_sync_free
from cogrl.envs import cogrl_env_ids, core_spec, make_core
from cogrl.envs.adapters import CoreVectorEnv

# (env_id, constructor kwargs): one entry per task. Keep sizes small (episodes of a few to a
# few dozen steps), so that several episodes per environment run in well under a second.
CONTRACT: list[tuple[str, dict[str, Any]]] = [
    # NTM copy: lengths 1..4 of 3-bit vectors (episodes of 3 to 9 steps).
    ("cogrl/Copy-v0", {"bits": 3, "min_length": 1, "max_length": 4}),
    # NTM repeat copy: lengths 1..3, repeats 1..3 (episodes of 5 to 15 steps).
    ("cogrl/RepeatCopy-v0", {"bits": 3, "max_length": 3, "max_repeats": 3}),
    # NTM associative recall: 2..4 items of two 3-bit vectors (episodes of 12 to 18 steps).
    ("cogrl/AssociativeRecall-v0", {"bits": 3, "item_length": 2, "max_items": 4}),
    # Delayed recall: a cue, 2 blank steps, the query (episodes of 4 steps).
    ("cogrl/DelayedRecall-v0", {"delay": 2}),
    # Three choices and no delay (episodes of 2 steps).
    ("cogrl/DelayedRecall-v0", {"delay": 0, "n_choices": 3}),
    # bAbI task 1 from the generated world, the last 3 sentences shown (episodes of 3 or 4).
    ("cogrl/StoryQA-v0", {"task": 1, "max_sentences": 3}),
    # Scanpaths on scikit-image's photographs at 36 x 48 (SB3's CNN needs 36 x 36),
    # spectral-residual information, 3 fixations.
    (
        "cogrl/Scanpath-v0",
        {"saliency": "spectral_residual", "n_fixations": 3, "image_size": (36, 48)},
    ),
    # Discrete fixations on a 2 x 3 grid, 2 per episode.
    (
        "cogrl/Scanpath-v0",
        {
            "action_mode": "discrete",
            "saliency": "center_bias",
            "n_fixations": 2,
            "image_size": (36, 36),
            "grid_size": (2, 3),
        },
    ),
    # Visual search for a large target: episodes end when a fixation finds it (1 to 4).
    (
        "cogrl/Scanpath-v0",
        {"reward": "search", "n_fixations": 4, "image_size": (36, 48), "target_size": 0.15},
    ),
    # Two digits in reading order on a 60 x 60 canvas, small retina, 4 steps (1 to 4).
    (
        "cogrl/MultiDigits-v0",
        {"canvas_size": 60, "glimpse_size": 6, "n_scales": 1, "n_glimpses": 4},
    ),
    # Their sum, discrete actions, clutter and the context view (1 to 3 steps).
    (
        "cogrl/MultiDigits-v0",
        {
            "target": "sum",
            "action_mode": "discrete",
            "canvas_size": 60,
            "n_clutter": 2,
            "glimpse_size": 6,
            "n_scales": 1,
            "n_glimpses": 3,
            "grid_size": 2,
            "context_size": 6,
        },
    ),
    # Visual search: the target and 2 distractors on a 60 x 60 canvas, 4 steps (1 to 4).
    (
        "cogrl/VisualSearch-v0",
        {"canvas_size": 60, "n_distractors": 2, "n_glimpses": 4, "n_scales": 2},
    ),
    # Discrete cells of a 3 x 3 grid, with the context view.
    (
        "cogrl/VisualSearch-v0",
        {
            "action_mode": "discrete",
            "canvas_size": 60,
            "n_distractors": 2,
            "n_glimpses": 4,
            "grid_size": 3,
            "glimpse_size": 6,
            "n_scales": 2,
            "context_size": 6,
        },
    ),
]


def test_every_registered_task_is_under_a_contract() -> None:
    """A new cogrl task gets the contract: its id is in CONTRACT here, or it is one of the
    glimpse tasks that tests/test_envs.py checks in both action modes."""
    glimpse = "cogrl.envs.attention.glimpse"
    covered = {env_id for env_id, _ in CONTRACT}
    missing = [
        i
        for i in cogrl_env_ids()
        if i.startswith("cogrl/") and i not in covered and core_spec(i)[0].__module__ != glimpse
    ]  # (ids that other tests register, outside the cogrl namespace, are theirs)
    assert missing == [], f"add {missing} to CONTRACT"


def _name(entry: Any) -> str:
    if isinstance(entry, str):
        return entry.split("/")[-1]
    return "-".join(f"{k}={v}" for k, v in entry.items()) or "defaults"


each_entry = pytest.mark.parametrize(("env_id", "kwargs"), CONTRACT, ids=_name)


# --- helpers ------------------------------------------------------------------------------------


def quiet(fn: Callable[[], Any]) -> list[str]:
    """Run fn and return the messages of the warnings it raised (deprecations left out)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)]


def seeded(space: spaces.Space, seed: int) -> spaces.Space:
    """``space`` (a copy) seeded, so that its samples are random actions repeatable by seed."""
    space = copy.deepcopy(space)
    space.seed(seed)
    return space


def row(x: Any, i: int) -> Any:
    """Row ``i`` of a batch (an array, a tensor, or a dict of them) as numpy."""
    if isinstance(x, Mapping):
        return {k: row(v, i) for k, v in x.items()}
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x[i])


def to_numpy(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: to_numpy(v) for k, v in x.items()}
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def assert_equal(a: Any, b: Any, where: str = "") -> None:
    """Equal observations, actions or infos: arrays bit for bit (NaN equal to NaN: a
    metric undefined for an episode), dicts key by key."""
    if isinstance(a, Mapping):
        assert isinstance(b, Mapping) and set(a) == set(b), (where, a, b)
        for key in a:
            assert_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype, where
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=where)
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=where)


def valid_info(info: Mapping[str, Any], i: int) -> dict[str, Any]:
    """Environment ``i``'s entries of a batched info (its ``_key`` mask set), as plain values:
    what a single environment reports (without ``final_obs`` and ``episode``)."""
    out = {}
    for key, value in info.items():
        if key.startswith("_") or key in ("final_obs", "episode"):
            continue
        mask = info.get("_" + key)
        if mask is None or bool(mask[i]):
            v = row(value, i)
            out[key] = v.item() if v.ndim == 0 else v
    return out


def rollout(env: gym.Env, seed: int, actions: list[Any]) -> list[tuple]:
    """(obs, reward, terminated, truncated, info) of each step; reset by hand at episode ends
    (an unseeded reset, which goes on to the next episode)."""
    obs, info = env.reset(seed=seed)
    out: list[tuple] = [(obs, info)]
    for a in actions:
        obs, reward, term, trunc, info = env.step(a)
        out.append((obs, reward, term, trunc, info))
        if term or trunc:
            out.append(env.reset())
    return out


def episodes_in(steps: list[tuple]) -> int:
    return sum(len(s) == 5 and (s[2] or s[3]) for s in steps)


def bad_actions(space: spaces.Space) -> list[tuple[str, Any]]:
    """Actions that are not in ``space``: a wrong shape, a wrong dtype, a value out of the
    space, NaN; each must be a ValueError."""
    good = space.sample()
    if isinstance(space, spaces.Discrete):
        n = int(space.start + space.n)
        return [
            ("shape", np.array([0, 0])),
            ("dtype", np.float32(0.0)),
            ("outside", np.int64(n)),
            ("below", np.int64(space.start - 1)),
            ("nan", np.float32("nan")),
        ]
    good = np.asarray(good)
    wrong_shape = np.zeros((*good.shape, 2), good.dtype)
    if isinstance(space, spaces.MultiBinary):
        return [
            ("shape", wrong_shape),
            ("dtype", good.astype(np.float32)),
            ("outside", np.full(good.shape, 2, np.int8)),
            ("negative", np.full(good.shape, -1, np.int64)),
            ("nan", np.full(good.shape, np.nan, np.float32)),
        ]
    if isinstance(space, spaces.Box):
        floating = np.issubdtype(space.dtype, np.floating)
        return [
            ("shape", wrong_shape),
            ("dtype", good.astype(np.int64 if floating else np.float32)),
            ("outside", (np.asarray(space.high) + 1).astype(space.dtype)),
            ("nan", np.full(good.shape, np.nan, np.float32)),
        ]
    raise NotImplementedError(f"no bad actions defined for {space}")


# --- checkers and metadata ------------------------------------------------------------------------


@each_entry
def test_gymnasium_and_sb3_checkers_pass(env_id: str, kwargs: dict[str, Any]) -> None:
    env = gym.make(env_id, **kwargs)
    assert quiet(lambda: gym_check_env(env.unwrapped)) == []
    assert quiet(lambda: sb3_check_env(env)) == []
    rendering = gym.make(env_id, render_mode="rgb_array", **kwargs)
    assert quiet(lambda: gym_check_env(rendering.unwrapped)) == []


@each_entry
def test_episode_metrics_are_reported_at_every_episode_end(
    env_id: str, kwargs: dict[str, Any]
) -> None:
    """The info keys ``metadata["episode_metrics"]`` names are valid exactly where an episode
    ends, and no episode outlasts ``max_episode_steps``."""
    core = make_core(env_id, num_envs=8, **kwargs)
    metrics = core.metadata["episode_metrics"]
    assert metrics, "a task declares what it measures"
    assert isinstance(core.metadata["splits"], tuple)
    bound = core.max_episode_steps
    assert isinstance(bound, int) and bound >= 1
    core.reset(seed=0)
    space = seeded(batch_space(core.single_action_space, 8), 0)
    ended = 0
    for _ in range(6 * bound):
        *_, terminated, truncated, info = core.step(space.sample())
        done = terminated | truncated
        for key in metrics.values():
            assert torch.equal(info["_" + key], done), key
            assert info[key].shape == (8,)
        assert bool((info["episode"]["l"] <= bound).all())
        ended += int(done.sum())
    assert ended >= 8


@each_entry
def test_answer_contract_keys_are_reported_where_declared(
    env_id: str, kwargs: dict[str, Any]
) -> None:
    """``metadata["reward_parts"]``, ``["ignored_key"]`` and ``["answer_key"]`` (see
    tests/test_answer_contract.py) declare info keys reported at every step, in their
    formats; a task that does not declare one does not report it."""
    n = 6
    core = make_core(env_id, num_envs=n, **kwargs)
    meta = core.metadata
    parts, ignored, answer = (meta.get(k) for k in ("reward_parts", "ignored_key", "answer_key"))
    assert ignored in (None, "action_ignored") and answer in (None, "answer")
    core.reset(seed=0)
    space = seeded(batch_space(core.single_action_space, n), 0)
    batched = batch_space(core.single_action_space, n)
    for _ in range(2 * core.max_episode_steps):
        action = space.sample()
        _, reward, *_, info = core.step(action)
        assert ("reward_parts" in info) == (parts is not None)
        if parts is not None:
            assert info["reward_parts"].dtype == torch.float32
            assert info["reward_parts"].shape == (n, parts)
            torch.testing.assert_close(info["reward_parts"].sum(1), reward, rtol=0, atol=1e-6)
        assert ("action_ignored" in info) == (ignored is not None)
        if ignored is not None:
            assert info[ignored].dtype == torch.bool and info[ignored].shape == (n,)
        assert ("answer" in info and "_answer" in info) == (answer is not None)
        if answer is not None:
            assert info["_answer"].dtype == torch.bool and info["_answer"].shape == (n,)
            assert info[answer].dtype == torch.as_tensor(action).dtype
            assert batched.contains(to_numpy(info[answer]))


# --- seeding ------------------------------------------------------------------------------


@each_entry
def test_reset_with_a_seed_is_deterministic_and_seeds_differ(
    env_id: str, kwargs: dict[str, Any]
) -> None:
    a, b = gym.make(env_id, **kwargs), gym.make(env_id, **kwargs)
    space = seeded(a.action_space, 1)
    actions = [space.sample() for _ in range(4 * a.unwrapped.core.max_episode_steps)]
    first = rollout(a, 123, actions)
    assert episodes_in(first) >= 2
    for other in (rollout(b, 123, actions), rollout(a, 123, actions)):  # another env; reseeded
        assert len(other) == len(first)
        for i, (x, y) in enumerate(zip(first, other, strict=True)):
            assert_equal(list(x), list(y), f"step {i}")
    # Different seeds give different episodes ...
    observations = []
    for seed in range(8):
        steps = rollout(a, seed, actions[:40])
        observations.append(np.concatenate([np.ravel(s[0]) for s in steps]).tobytes())
    assert len(set(observations)) == 8
    # ... and unseeded resets go on to new episodes rather than repeating the seeded one.
    steps = rollout(a, 5, actions * 5)
    episodes, current = set(), []
    for step in steps:
        current.append(np.ravel(step[0]))
        if len(step) == 5 and (step[2] or step[3]):
            episodes.add(np.concatenate(current).tobytes())
            current = []
    assert episodes_in(steps) >= 8 and len(episodes) > 1


def test_episodes_do_not_depend_on_the_batch_size() -> None:
    for env_id, kwargs in CONTRACT:
        big, small = make_core(env_id, 64, **kwargs), make_core(env_id, 3, **kwargs)
        assert_equal(row(big.reset(seed=100)[0], slice(60, 63)), to_numpy(small.reset(seed=160)[0]))
        for name in big.state_attributes:
            assert_equal(getattr(big, name)[60:63], getattr(small, name), f"{env_id} {name}")


# --- single env == batched core == vector env -----------------------------------------------


@each_entry
@pytest.mark.parametrize("seed", [0, 2**40 + 17])
def test_single_envs_match_the_batched_core(env_id: str, kwargs: dict[str, Any], seed: int) -> None:
    n = 4
    core = make_core(env_id, num_envs=n, **kwargs)
    singles = [gym.make(env_id, **kwargs) for _ in range(n)]
    obs, info = core.reset(seed=seed)
    assert info == {}
    for i, env in enumerate(singles):
        assert_equal(row(obs, i), env.reset(seed=seed + i)[0], f"reset {i}")
    space = seeded(batch_space(core.single_action_space, n), seed % 2**32)
    finished = np.zeros(n, dtype=int)
    returns = np.zeros(n)  # of the single environments' episodes in progress
    steps = 0
    while finished.min() < 3:  # several autoresets in every environment
        steps += 1
        assert steps < 20 * core.max_episode_steps
        actions = space.sample()
        obs, reward, terminated, truncated, info = core.step(actions)
        for i, env in enumerate(singles):
            s_obs, s_reward, s_term, s_trunc, s_info = env.step(row(actions, i))
            assert (float(reward[i]), bool(terminated[i]), bool(truncated[i])) == (
                s_reward,
                s_term,
                s_trunc,
            )
            assert_equal(valid_info(info, i), s_info, f"info of env {i} at step {steps}")
            returns[i] += s_reward
            if s_term or s_trunc:
                finished[i] += 1
                assert bool(info["_final_obs"][i]) and bool(info["_episode"][i])
                assert_equal(row(info["final_obs"], i), s_obs, "final obs")
                assert float(info["episode"]["r"][i]) == pytest.approx(returns[i])
                returns[i] = 0.0
                s_obs, _ = env.reset()
            else:
                assert not bool(info["_episode"][i])
                if "_final_obs" in info:
                    assert not bool(info["_final_obs"][i])
            assert_equal(row(obs, i), s_obs, f"obs of env {i} at step {steps}")
    # reset() without a seed starts the next episode of every environment, in both.
    obs, _ = core.reset()
    for i, env in enumerate(singles):
        assert_equal(row(obs, i), env.reset()[0])


@each_entry
def test_make_vec_matches_sync_vector_env(env_id: str, kwargs: dict[str, Any]) -> None:
    n, seed = 3, 7
    vec = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    assert isinstance(vec, CoreVectorEnv)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    sync = SyncVectorEnv(
        [lambda: gym.make(env_id, **kwargs) for _ in range(n)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    assert vec.single_observation_space == sync.single_observation_space
    assert vec.single_action_space == sync.single_action_space
    assert vec.observation_space == sync.observation_space
    assert vec.action_space == sync.action_space
    obs, _ = vec.reset(seed=seed)
    assert_equal(obs, sync.reset(seed=seed)[0])
    space = seeded(vec.action_space, 3)
    episodes = 0
    for step in range(4 * vec.unwrapped.core.max_episode_steps):
        actions = space.sample()
        obs, reward, term, trunc, info = vec.step(actions)
        s_obs, s_reward, s_term, s_trunc, s_info = sync.step(actions)
        assert vec.observation_space.contains(obs)
        for x, y in ((obs, s_obs), (reward, s_reward), (term, s_term), (trunc, s_trunc)):
            assert_equal(x, y, f"step {step}")
        done = term | trunc
        assert ("final_obs" in info) == ("final_obs" in s_info) == done.any()
        if not done.any():
            continue
        episodes += int(done.sum())
        assert_equal(info["_final_obs"], s_info["_final_obs"])
        for i in np.flatnonzero(done):
            assert_equal(info["final_obs"][i], s_info["final_obs"][i])
        final, s_final = info["final_info"], s_info["final_info"]
        for key in s_final:
            if key.startswith("_") or key == "episode":
                continue
            assert_equal(final["_" + key], s_final["_" + key], key)
            assert_equal(final[key][done], s_final[key][done], key)
    assert episodes >= n
    vec.close()
    sync.close()


# --- observations lie in the observation space ----------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entry=st.sampled_from(CONTRACT),
    seed=st.integers(0, 2**62 - 1),
    action_seed=st.integers(0, 2**32 - 1),
    steps=st.integers(1, 60),
)
def test_observations_lie_in_the_observation_space(
    entry: tuple[str, dict[str, Any]], seed: int, action_seed: int, steps: int
) -> None:
    env_id, kwargs = entry
    env = gym.make(env_id, **kwargs)
    space = seeded(env.action_space, action_seed)
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs), obs
    for _ in range(steps):
        obs, reward, term, trunc, _ = env.step(space.sample())
        assert env.observation_space.contains(obs), obs
        assert isinstance(reward, float) and np.isfinite(reward)
        if term or trunc:
            obs, _ = env.reset()
            assert env.observation_space.contains(obs), obs


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entry=st.sampled_from(CONTRACT),
    seed=st.integers(0, 2**32),
    action_seed=st.integers(0, 2**32 - 1),
)
def test_batched_observations_lie_in_the_batched_space(
    entry: tuple[str, dict[str, Any]], seed: int, action_seed: int
) -> None:
    env_id, kwargs = entry
    n = 16
    core = make_core(env_id, num_envs=n, **kwargs)
    space = batch_space(core.single_observation_space, n)
    actions = seeded(batch_space(core.single_action_space, n), action_seed)
    obs, _ = core.reset(seed=seed)
    for _ in range(2 * core.max_episode_steps):
        assert space.contains(to_numpy(obs))
        obs, _, _, _, info = core.step(actions.sample())
        if "final_obs" in info:
            assert space.contains(to_numpy(info["final_obs"]))


# --- bad input ------------------------------------------------------------------------------------


@each_entry
def test_bad_actions_are_value_errors(env_id: str, kwargs: dict[str, Any]) -> None:
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    n = 3
    core = make_core(env_id, num_envs=n, **kwargs)
    core.reset(seed=0)
    for what, action in bad_actions(env.action_space):
        with pytest.raises(ValueError, match="invalid action") as err:
            env.step(action)
        assert str(env.action_space) in str(err.value), what  # says what it expects
        with pytest.raises(ValueError, match="invalid action"):
            core.step(np.stack([action] * n))
    # Nothing was stepped by the refused actions: both go on as freshly reset ones.
    fresh = gym.make(env_id, **kwargs)
    fresh.reset(seed=0)
    action = env.action_space.sample()
    assert_equal(list(env.step(action)), list(fresh.step(action)))


@each_entry
def test_stepping_a_finished_episode_is_a_runtime_error(
    env_id: str, kwargs: dict[str, Any]
) -> None:
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    space = seeded(env.action_space, 0)
    done = False
    while not done:
        _, _, term, trunc, _ = env.step(space.sample())
        done = term or trunc
    with pytest.raises(RuntimeError, match="reset"):
        env.step(space.sample())
    env.reset()
    env.step(space.sample())  # fine again

    core = make_core(env_id, num_envs=2, autoreset=False, **kwargs)
    batch = seeded(batch_space(core.single_action_space, 2), 0)
    with pytest.raises(RuntimeError, match="reset"):
        core.step(batch.sample())  # never reset
    core.reset(seed=0)
    for _ in range(core.max_episode_steps):
        *_, terminated, truncated, _ = core.step(batch.sample())
        if bool((terminated | truncated).any()):
            break
    with pytest.raises(RuntimeError, match=r"environment\(s\) \[\d"):
        core.step(batch.sample())


@each_entry
def test_unknown_kwargs_list_the_known_ones(env_id: str, kwargs: dict[str, Any]) -> None:
    cls, _ = core_spec(env_id)
    known = [k for k in kwargs]
    for make in (
        lambda: gym.make(env_id, colour=1, **kwargs),
        lambda: make_core(env_id, num_envs=2, colour=1, **kwargs),
        lambda: gym.make_vec(env_id, 2, vectorization_mode="vector_entry_point", colour=1),
    ):
        with pytest.raises(ValueError) as err:
            make()
        message = str(err.value)
        assert "colour" in message and cls.__name__ in message
        for name in [*known, "render_mode"]:
            assert name in message, (name, message)


# --- snapshots ---------------------------------------------------------------------------------


@each_entry
def test_a_loaded_snapshot_continues_bit_for_bit(env_id: str, kwargs: dict[str, Any]) -> None:
    n, k, m = 5, 7, 25
    original = make_core(env_id, n, **kwargs)
    space = seeded(batch_space(original.single_action_space, n), 3)
    actions = [space.sample() for _ in range(k + m)]
    original.reset(seed=11)
    for action in actions[:k]:
        original.step(action)
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    expected = [original.step(a) for a in actions[k:]]

    fresh = make_core(env_id, n, **kwargs)
    fresh.load_state_dict(loaded)
    for i, action in enumerate(actions[k:]):
        assert_equal(list(fresh.step(action)), list(expected[i]), f"step {k + i}")
    # ... and the next episodes after an unseeded reset are the same too.
    assert_equal(list(fresh.reset()), list(original.reset()))


# --- the sync-free path (GPUs) ------------------------------------------------------------------


def step_outputs(core: BatchedEnv, actions: list[Any]) -> list[tuple]:
    """Each step's outputs, with final_obs kept only in its valid rows (the others are
    unspecified) so that the default and sync-free paths compare."""
    out = []
    for action in actions:
        obs, reward, terminated, truncated, info = core.step(action)
        info = dict(info)
        done = terminated | truncated
        final, mask = info.pop("final_obs", None), info.pop("_final_obs", None)
        if final is not None:
            assert torch.equal(mask, done)
            final = None if not bool(done.any()) else row(final, done.numpy())
        out.append((obs, reward, terminated, truncated, info, final))
    return out


@each_entry
def test_sync_free_path_steps_exactly_as_the_default_path(
    env_id: str, kwargs: dict[str, Any]
) -> None:
    default, masked = make_core(env_id, 8, **kwargs), make_core(env_id, 8, **kwargs)
    space = seeded(batch_space(default.single_action_space, 8), 5)
    actions = [space.sample() for _ in range(4 * default.max_episode_steps)]
    assert_equal(list(default.reset(seed=5)), list(masked.reset(seed=5)))
    expected = step_outputs(default, actions)
    with force_sync_free():
        got = step_outputs(masked, actions)
    ended = 0
    for i, (a, b) in enumerate(zip(expected, got, strict=True)):
        assert_equal(list(a[:5]), list(b[:5]), f"step {i}")
        if a[5] is not None:
            ended += 1
            assert_equal(a[5], b[5], f"step {i} final_obs")
    assert ended >= 3
    assert_equal(default.state_dict(), masked.state_dict())


@each_entry
def test_sync_free_steps_read_nothing_on_the_host(
    env_id: str, kwargs: dict[str, Any], host_reads: list[str]
) -> None:
    core = make_core(env_id, 8, **kwargs)
    core.check_action_values = False
    space = seeded(batch_space(core.single_action_space, 8), 0)
    actions = [torch.as_tensor(space.sample()) for _ in range(3 * core.max_episode_steps)]
    core.reset(seed=0)
    host_reads.clear()
    with force_sync_free():
        for action in actions:
            core.step(action)
    assert host_reads == []


# --- rendering --------------------------------------------------------------------------------


@each_entry
def test_render_draws_an_rgb_frame_of_the_episode(env_id: str, kwargs: dict[str, Any]) -> None:
    env = gym.make(env_id, render_mode="rgb_array", **kwargs)
    env.reset(seed=0)
    first = env.render()
    assert isinstance(first, np.ndarray) and first.dtype == np.uint8
    assert first.ndim == 3 and first.shape[2] == 3 and min(first.shape[:2]) >= 16
    assert np.array_equal(first, env.render())  # rendering changes nothing
    space = seeded(env.action_space, 0)
    frames = [first]
    done = False
    while not done:
        _, _, term, trunc, _ = env.step(space.sample())
        done = term or trunc
        frames.append(env.render())
    # One frame size for the whole episode (a video's frames agree); each step shows more.
    assert all(f.shape == first.shape and f.dtype == np.uint8 for f in frames)
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:], strict=False))
    vec = gym.make_vec(
        env_id,
        num_envs=2,
        vectorization_mode="vector_entry_point",
        render_mode="rgb_array",
        **kwargs,
    )
    vec.reset(seed=0)
    assert all(f.dtype == np.uint8 and f.ndim == 3 for f in vec.render())
    with pytest.raises(ValueError, match="index"):
        vec.unwrapped.core.render(2)
