"""Tests for cogrl's environments: the behaviour a user of ``gym.make``, ``gym.make_vec`` and
the batched core relies on, for every registered cogrl id and both action modes."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import cogrl
from cogrl.datasets import load_digits
from cogrl.envs import cogrl_env_ids, core_spec, make_core
from cogrl.envs.adapters import CoreVectorEnv
from cogrl.retina import Retina

IDS = [i for i in cogrl_env_ids() if core_spec(i)[0].__module__ == "cogrl.envs.attention.glimpse"]
MODES = ("continuous", "discrete")
GLIMPSE, TRANSLATED, CLUTTERED = (
    "cogrl/GlimpseDigits-v0",
    "cogrl/TranslatedDigits-v0",
    "cogrl/ClutteredDigits-v0",
)
N_CLASSES = 10

id_and_mode = pytest.mark.parametrize(
    ("env_id", "mode"), [(i, m) for i in IDS for m in MODES], ids=lambda x: x.split("/")[-1]
)
each_id = pytest.mark.parametrize("env_id", IDS, ids=lambda x: x.split("/")[-1])


# --- helpers ---------------------------------------------------------------------------------


def random_action(space: gym.Space, rng: np.random.Generator, n: int | None = None) -> Any:
    """A valid action of ``space`` (a batch of ``n`` when n is given), drawn from ``rng``."""
    shape = () if n is None else (n,)
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, space.n, size=shape)
    return rng.uniform(-1.0, 1.0, size=shape + space.shape).astype(np.float32)


def assert_obs_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def row(obs: dict[str, Any], i: int) -> dict[str, np.ndarray]:
    return {k: np.asarray(v[i]) for k, v in obs.items()}


def numpy_obs(obs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.cpu().numpy() for k, v in obs.items()}


def rollout(env: gym.Env, seed: int, actions: list[Any]) -> list[tuple]:
    """(obs, reward, terminated, truncated, label) of each step; reset by hand at episode ends."""
    obs, _ = env.reset(seed=seed)
    out = [(obs, None, None, None, None)]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs, r, term, trunc, info.get("label")))
        if term or trunc:
            obs, _ = env.reset()
            out.append((obs, None, None, None, None))
    return out


def assert_rollouts_equal(x: list[tuple], y: list[tuple]) -> None:
    assert len(x) == len(y)
    for (o1, *rest1), (o2, *rest2) in zip(x, y, strict=True):
        assert_obs_equal(o1, o2)
        assert rest1 == rest2


def ink_box(canvas: np.ndarray) -> tuple[int, int]:
    """Height and width of the bounding box of the non-zero pixels."""
    rows, cols = np.nonzero(canvas)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def canvas_of(env: gym.Env) -> np.ndarray:
    return env.unwrapped.core.canvas_images()[0].numpy().copy()


def quiet(fn: Callable[[], Any]) -> list[str]:
    """Run fn and return the messages of the warnings it raised (deprecations left out)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)]


# --- registration and checkers -----------------------------------------------------------------


def test_every_task_is_registered_as_a_core() -> None:
    assert {GLIMPSE, TRANSLATED, CLUTTERED} <= set(IDS)
    for env_id in IDS:
        env = gym.make(env_id)
        assert isinstance(env.unwrapped, cogrl.CoreEnv)
        assert env.spec is not None and env.spec.id == env_id


@id_and_mode
def test_gymnasium_and_sb3_checkers_pass(env_id: str, mode: str) -> None:
    env = gym.make(env_id, action_mode=mode)
    assert quiet(lambda: gym_check_env(env.unwrapped)) == []
    assert quiet(lambda: sb3_check_env(env)) == []
    rendering = gym.make(env_id, action_mode=mode, render_mode="rgb_array")
    assert quiet(lambda: gym_check_env(rendering.unwrapped)) == []


@id_and_mode
def test_spaces_are_sb3_friendly(env_id: str, mode: str) -> None:
    env = gym.make(env_id, action_mode=mode)
    obs_space = env.observation_space
    assert isinstance(obs_space, gym.spaces.Dict)
    assert set(obs_space.spaces) == {"glimpse", "location"}
    for box in obs_space.spaces.values():
        assert isinstance(box, gym.spaces.Box) and box.dtype == np.float32 and len(box.shape) == 1
    retina = env.unwrapped.core.retina
    assert obs_space["glimpse"].shape == (retina.k * retina.g * retina.g,)
    if mode == "continuous":
        assert env.action_space == gym.spaces.Box(-1.0, 1.0, (2 + N_CLASSES,), np.float32)
    else:
        grid = env.unwrapped.core.grid_size
        assert env.action_space == gym.spaces.Discrete(grid * grid + N_CLASSES)


# --- seeding ------------------------------------------------------------------------------------


@id_and_mode
def test_reset_with_a_seed_is_deterministic(env_id: str, mode: str) -> None:
    a, b = gym.make(env_id, action_mode=mode), gym.make(env_id, action_mode=mode)
    rng = np.random.default_rng(0)
    actions = [random_action(a.action_space, rng) for _ in range(25)]
    first = rollout(a, 123, actions)
    assert_rollouts_equal(first, rollout(b, 123, actions))
    assert_rollouts_equal(first, rollout(a, 123, actions))  # the same env, reseeded
    assert sum(step[1] is not None and (step[2] or step[3]) for step in first) >= 2


@each_id
def test_different_seeds_and_episodes_differ(env_id: str) -> None:
    env = gym.make(env_id)
    canvases = []
    for seed in range(8):
        env.reset(seed=seed)
        canvases.append(canvas_of(env).tobytes())
    assert len(set(canvases)) == 8
    # reset() without a seed goes on to new episodes rather than repeating the seeded one.
    env.reset(seed=0)
    episodes = [canvas_of(env).tobytes()]
    for _ in range(7):
        env.reset()
        episodes.append(canvas_of(env).tobytes())
    assert len(set(episodes)) == 8
    # ... and does so deterministically.
    env.reset(seed=0)
    for expected in episodes[1:]:
        env.reset()
        assert canvas_of(env).tobytes() == expected


# --- single env == batched core == vector env ---------------------------------------------------


@id_and_mode
@pytest.mark.parametrize("seed", [0, 2**40 + 17])
def test_single_env_matches_batched_core(env_id: str, mode: str, seed: int) -> None:
    n = 5
    core = make_core(env_id, num_envs=n, action_mode=mode)
    singles = [gym.make(env_id, action_mode=mode) for _ in range(n)]
    obs, info = core.reset(seed=seed)
    assert info == {}
    obs = numpy_obs(obs)
    for i, env in enumerate(singles):
        single_obs, _ = env.reset(seed=seed + i)
        assert_obs_equal(row(obs, i), single_obs)

    rng = np.random.default_rng(seed % 2**32)
    finished = np.zeros(n, dtype=int)
    steps = 0
    while finished.min() < 3:  # at least three episodes in every environment
        steps += 1
        assert steps < 200
        actions = random_action(core.single_action_space, rng, n)
        obs, reward, term, trunc, info = core.step(torch.as_tensor(actions))
        obs = numpy_obs(obs)
        for i, env in enumerate(singles):
            s_obs, s_reward, s_term, s_trunc, s_info = env.step(actions[i])
            assert (float(reward[i]), bool(term[i]), bool(trunc[i])) == (s_reward, s_term, s_trunc)
            if s_term or s_trunc:
                finished[i] += 1
                assert bool(info["_final_obs"][i]) and bool(info["_episode"][i])
                assert_obs_equal(row(numpy_obs(info["final_obs"]), i), s_obs)
                for key in ("label", "prediction", "correct"):
                    assert bool(info["_" + key][i])
                    assert info[key][i].item() == s_info[key]
                assert info["episode"]["r"][i].item() == pytest.approx(s_reward)
                s_obs, _ = env.reset()
            else:
                assert s_info == {}
                assert not bool(info["_episode"][i]) and not bool(info["_label"][i])
                if "_final_obs" in info:
                    assert not bool(info["_final_obs"][i])
            assert_obs_equal(row(obs, i), s_obs)

    # reset() without a seed starts the next episode of every environment, in both.
    obs, _ = core.reset()
    for i, env in enumerate(singles):
        assert_obs_equal(row(numpy_obs(obs), i), env.reset()[0])


def test_episodes_do_not_depend_on_the_batch_size() -> None:
    big = make_core(TRANSLATED, num_envs=64)
    small = make_core(TRANSLATED, num_envs=3)
    big.reset(seed=100)
    small.reset(seed=160)
    np.testing.assert_array_equal(big.canvas_images()[60:63].numpy(), small.canvas_images().numpy())


@id_and_mode
def test_make_vec_is_a_vector_env_matching_sync_vector_env(env_id: str, mode: str) -> None:
    n, seed = 4, 7
    vec = gym.make_vec(
        env_id, num_envs=n, vectorization_mode="vector_entry_point", action_mode=mode
    )
    assert isinstance(vec, gym.vector.VectorEnv) and isinstance(vec, CoreVectorEnv)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    sync = SyncVectorEnv(
        [lambda: gym.make(env_id, action_mode=mode) for _ in range(n)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    assert vec.single_observation_space == sync.single_observation_space
    assert vec.single_action_space == sync.single_action_space
    assert vec.observation_space == sync.observation_space
    assert vec.action_space == sync.action_space

    obs, _ = vec.reset(seed=seed)
    s_obs, _ = sync.reset(seed=seed)
    assert_obs_equal(obs, s_obs)
    assert vec.observation_space.contains(obs)
    rng = np.random.default_rng(1)
    episodes = 0
    for _ in range(30):
        actions = random_action(vec.single_action_space, rng, n)
        obs, reward, term, trunc, info = vec.step(actions)
        s_obs, s_reward, s_term, s_trunc, s_info = sync.step(actions)
        assert vec.observation_space.contains(obs)
        assert_obs_equal(obs, s_obs)
        np.testing.assert_array_equal(reward, s_reward)
        np.testing.assert_array_equal(term, s_term)
        np.testing.assert_array_equal(trunc, s_trunc)
        done = term | trunc
        assert ("final_obs" in info) == ("final_obs" in s_info) == done.any()
        if not done.any():
            continue
        episodes += int(done.sum())
        # final_obs: an object array, the last observation where _final_obs is set.
        np.testing.assert_array_equal(info["_final_obs"], s_info["_final_obs"])
        for i in range(n):
            if done[i]:
                assert_obs_equal(info["final_obs"][i], s_info["final_obs"][i])
            else:
                assert info["final_obs"][i] is None
        # final_info: a dict of batches with "_key" masks, as SyncVectorEnv gives it.
        np.testing.assert_array_equal(info["_final_info"], s_info["_final_info"])
        final, s_final = info["final_info"], s_info["final_info"]
        assert isinstance(final, dict)
        for key in ("label", "prediction", "correct"):
            np.testing.assert_array_equal(final["_" + key], s_final["_" + key])
            np.testing.assert_array_equal(final[key][done], s_final[key][done])
        np.testing.assert_array_equal(final["_episode"], done)
    assert episodes >= n
    vec.close()
    sync.close()


def test_make_vec_takes_kwargs_and_rejects_seed_lists() -> None:
    vec = gym.make_vec(
        GLIMPSE, num_envs=3, vectorization_mode="vector_entry_point", n_glimpses=2, split="test"
    )
    assert vec.unwrapped.core.n_glimpses == 2 and vec.unwrapped.core.split == "test"
    with pytest.raises(ValueError, match="one int seed"):
        vec.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match="unknown argument"):
        gym.make_vec(GLIMPSE, num_envs=2, vectorization_mode="vector_entry_point", colour=1)


# --- observations lie in the observation space ----------------------------------------------------

ENV_KWARGS = [
    {},
    {"n_glimpses": 3, "grid_size": 4},
    {"glimpse_size": 5, "n_scales": 3, "scale": 1.5},
    {"glimpse_size": 4, "n_scales": 2, "scale": 3.0, "split": "test"},
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    env_id=st.sampled_from(IDS),
    mode=st.sampled_from(MODES),
    kwargs=st.sampled_from(ENV_KWARGS),
    seed=st.integers(0, 2**62 - 1),
    data=st.data(),
)
def test_observations_lie_in_the_observation_space(
    env_id: str, mode: str, kwargs: dict, seed: int, data: st.DataObject
) -> None:
    env = gym.make(env_id, action_mode=mode, **kwargs)
    space = env.action_space
    if mode == "continuous":
        element = st.floats(-1.0, 1.0, width=32)
        action = st.lists(element, min_size=space.shape[0], max_size=space.shape[0]).map(
            lambda v: np.array(v, dtype=np.float32)
        )
    else:
        action = st.integers(0, space.n - 1)
    actions = data.draw(st.lists(action, min_size=1, max_size=20), label="actions")
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    for a in actions:
        obs, reward, term, trunc, info = env.step(a)
        assert env.observation_space.contains(obs), obs
        assert reward in (0.0, 1.0)
        if term or trunc:
            assert info["label"] in range(N_CLASSES)
            obs, _ = env.reset()
            assert env.observation_space.contains(obs)


@settings(max_examples=6, deadline=None)
@given(
    env_id=st.sampled_from(IDS),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**32),
    rng_seed=st.integers(0, 2**32),
)
def test_batched_observations_lie_in_the_batched_space(
    env_id: str, mode: str, seed: int, rng_seed: int
) -> None:
    n = 16
    core = make_core(env_id, num_envs=n, action_mode=mode)
    space = gym.vector.utils.batch_space(core.single_observation_space, n)
    obs, _ = core.reset(seed=seed)
    rng = np.random.default_rng(rng_seed)
    for _ in range(12):
        assert space.contains(numpy_obs(obs))
        obs, *_ = core.step(torch.as_tensor(random_action(core.single_action_space, rng, n)))


# --- bad inputs -----------------------------------------------------------------------------


def stepped(env_id: str, mode: str) -> gym.Env:
    env = gym.make(env_id, action_mode=mode)
    env.reset(seed=0)
    return env


@each_id
@pytest.mark.parametrize(
    ("action", "words"),
    [
        (np.zeros(3, np.float32), ["(12,)", "(3,)"]),
        (np.zeros((1, 12), np.float32), ["(12,)", "(1, 12)"]),
        (np.zeros(12, np.int64), ["int64", "float"]),
        (np.full(12, 1.5, np.float32), ["1.5", "[-1, 1]"]),
        (np.full(12, -1.25, np.float32), ["-1.25", "[-1, 1]"]),
        (np.array([0.0] * 11 + [np.nan], np.float32), ["nan", "finite"]),
        (np.array([np.inf] + [0.0] * 11, np.float32), ["inf", "finite"]),
    ],
    ids=["short", "batched", "int", "above", "below", "nan", "inf"],
)
def test_bad_continuous_actions_raise(env_id: str, action: np.ndarray, words: list[str]) -> None:
    env = stepped(env_id, "continuous")
    with pytest.raises(ValueError) as err:
        env.step(action)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


@each_id
def test_bad_discrete_actions_raise(env_id: str) -> None:
    env = stepped(env_id, "discrete")
    n = env.action_space.n
    cases = [
        (np.float32(1.0), ["float32", "int"]),
        (1.0, ["float", "int"]),
        (np.array([1, 2]), ["()", "(2,)"]),
        (np.int64(n), [str(n), f"[0, {n})"]),
        (-1, ["-1", f"[0, {n})"]),
    ]
    for action, words in cases:
        with pytest.raises(ValueError) as err:
            env.step(action)
        for word in words:
            assert word in str(err.value), (action, word, str(err.value))
    # A plain Python or numpy int is a valid action.
    env.step(0)
    env.step(np.int32(1))


@id_and_mode
def test_bad_batched_actions_raise(env_id: str, mode: str) -> None:
    core = make_core(env_id, num_envs=4, action_mode=mode)
    core.reset(seed=0)
    if mode == "continuous":
        good = torch.zeros(4, 12)
        bad = [
            (torch.zeros(3, 12), ["(4, 12)", "(3, 12)"]),
            (torch.zeros(4, 12, dtype=torch.int64), ["int64", "float"]),
            (torch.full((4, 12), float("nan")), ["nan"]),
            (np.full((4, 12), 2.0, np.float32), ["2.0", "[-1, 1]"]),
            (5.0, ["float"]),
        ]
    else:
        n = core.single_action_space.n
        good = torch.zeros(4, dtype=torch.int64)
        bad = [
            (torch.zeros(4, 1, dtype=torch.int64), ["(4,)", "(4, 1)"]),
            (torch.zeros(4), ["float32", "int"]),
            (torch.tensor([0, 1, n, 2]), [str(n), f"[0, {n})"]),
            (np.array([True, False, True, False]), ["bool", "int"]),
        ]
    for action, words in bad:
        with pytest.raises(ValueError) as err:
            core.step(action)
        for word in words:
            assert word in str(err.value), (word, str(err.value))
    core.step(good)
    core.step(good.numpy())


def test_unknown_kwargs_list_the_known_ones() -> None:
    for make in (
        lambda: gym.make(GLIMPSE, n_glimpse=4),
        lambda: make_core(GLIMPSE, num_envs=2, n_glimpse=4),
    ):
        with pytest.raises(ValueError) as err:
            make()
        message = str(err.value)
        assert "n_glimpse'" in message
        for known in ("n_glimpses", "split", "dataset", "action_mode", "glimpse_size", "root"):
            assert known in message


@pytest.mark.parametrize(
    "kwargs",
    [
        {"split": "validation"},
        {"dataset": "cifar"},
        {"action_mode": "hybrid"},
        {"n_glimpses": 0},
        {"n_glimpses": -2},
        {"n_glimpses": 2.5},
        {"n_glimpses": True},
        {"grid_size": 0},
        {"glimpse_size": 0},
        {"n_scales": 0},
        {"scale": 0.5},
        {"dataset": "mnist"},  # needs root
        {"root": "/tmp"},  # root is for mnist only
        {"render_mode": "ansi"},
    ],
    ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()),
)
@each_id
@pytest.mark.filterwarnings("ignore:.*not in the possible render_modes")
def test_bad_constructor_arguments_raise(env_id: str, kwargs: dict) -> None:
    key, value = next(iter(kwargs.items()))
    with pytest.raises(ValueError, match=re.escape(repr(value))):
        gym.make(env_id, **kwargs)


def test_missing_mnist_folder_is_named(tmp_path: Path) -> None:
    missing = (tmp_path / "no-such-folder").resolve()
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        gym.make(GLIMPSE, dataset="mnist", root=str(missing))
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        make_core(CLUTTERED, num_envs=2, dataset="mnist", root=missing)


@id_and_mode
def test_stepping_a_finished_episode_raises(env_id: str, mode: str) -> None:
    env = gym.make(env_id, action_mode=mode, n_glimpses=2)
    env.reset(seed=0)
    look = np.zeros(12, np.float32) if mode == "continuous" else 0
    done = False
    while not done:
        _, _, term, trunc, _ = env.step(look)
        done = term or trunc
    with pytest.raises(RuntimeError, match="reset"):
        env.step(look)
    env.reset()
    env.step(look)  # fine again
    core = make_core(env_id, num_envs=2, action_mode=mode)
    with pytest.raises(RuntimeError, match="reset"):
        core.step(np.stack([look, look]))


# --- task semantics -----------------------------------------------------------------------------


def test_glimpse_digits_digit_is_centred_and_first_glimpse_at_centre() -> None:
    data = load_digits(split="train")
    by_bytes = {img.tobytes(): label for img, label in zip(data.images, data.labels, strict=True)}
    env = gym.make(GLIMPSE, n_glimpses=1)
    retina = env.unwrapped.core.retina
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        canvas = canvas_of(env)
        assert canvas.shape == (28, 28)
        assert canvas.tobytes() in by_bytes  # the training image itself, untranslated
        rows, cols = np.nonzero(canvas)
        assert rows.min() >= 4 and rows.max() <= 23 and cols.min() >= 4 and cols.max() <= 23
        np.testing.assert_array_equal(obs["location"], [0.0, 0.0])
        np.testing.assert_array_equal(obs["glimpse"], canvas[10:18, 10:18].ravel())
        centre = retina(torch.from_numpy(canvas)[None], torch.zeros(1, 2))
        np.testing.assert_allclose(obs["glimpse"], centre.flatten().numpy(), atol=1e-6)
        _, _, _, _, info = env.step(np.zeros(12, np.float32))
        assert info["label"] == by_bytes[canvas.tobytes()]


@pytest.mark.parametrize("env_id", ["cogrl/GlimpseDigits-v0", "cogrl/TranslatedDigits-v0"])
def test_first_glimpse_random_starts_anywhere_on_the_same_episodes(env_id: str) -> None:
    """first_glimpse="random": the first glimpse at a uniform location drawn with the
    episode (again at each autoreset), what it shows is the retina there, and the episodes
    themselves (canvas, label) are those of the centre start with the same seed."""
    n = 64
    centre = make_core(env_id, num_envs=n)
    moved = make_core(env_id, num_envs=n, first_glimpse="random")
    firsts = []
    obs_c, _ = centre.reset(seed=3)
    obs_r, _ = moved.reset(seed=3)
    for _ in range(2):  # the reset's episodes, then the autoreset's
        assert torch.equal(moved.canvas, centre.canvas)
        assert torch.equal(moved.label, centre.label)
        torch.testing.assert_close(obs_c["location"], torch.zeros(n, 2))
        first = obs_r["location"]
        assert bool(((first >= -1) & (first < 1)).all())
        seen = moved.retina(moved.canvas, first).flatten(1)
        torch.testing.assert_close(obs_r["glimpse"], seen, atol=1e-6, rtol=0)
        firsts.append(first)
        action = torch.zeros(n, 12)
        for _ in range(moved.n_glimpses):
            obs_c, *_ = centre.step(action)
            obs_r, *_ = moved.step(action)
    # spread over the canvas, and new at each episode
    assert float(firsts[0].std()) > 0.4 and float(firsts[0].abs().max()) > 0.8
    assert not torch.allclose(firsts[0], firsts[1])
    again = make_core(env_id, num_envs=n, first_glimpse="random")
    torch.testing.assert_close(again.reset(seed=3)[0]["location"], firsts[0], atol=0, rtol=0)
    with pytest.raises(ValueError, match="first_glimpse.*'middle'"):
        make_core(env_id, num_envs=1, first_glimpse="middle")


def test_train_shift_moves_training_digits_and_never_test_digits() -> None:
    """train_shift=s: each training canvas is the centred canvas of the same episode moved
    by a whole offset in [-s, s] per axis (the ink box with it, for on_digit), the glimpse
    is read from the moved canvas, and the test split shows its digits centred."""
    n, s = 256, 3
    centred = make_core(GLIMPSE, num_envs=n)
    shifted = make_core(GLIMPSE, num_envs=n, train_shift=s)
    centred.reset(seed=4)
    obs, _ = shifted.reset(seed=4)
    assert torch.equal(shifted.label, centred.label)
    moves = set()
    for i in range(n):
        matches = [
            (dy, dx)
            for dy in range(-s, s + 1)
            for dx in range(-s, s + 1)
            # the default digits keep 4 blank pixels to each edge (test above): a roll by
            # up to 3 wraps no ink, so it equals the move with its edges cut
            if torch.equal(centred.canvas[i].roll((dy, dx), (0, 1)), shifted.canvas[i])
        ]
        assert len(matches) == 1, (i, matches)
        dy, dx = matches[0]
        moves.add((dy, dx))
        box = centred.digit_boxes[i, 0] + torch.tensor([dy, dx, dy, dx])
        assert torch.equal(shifted.digit_boxes[i, 0], box)
    assert len(moves) > 30  # of the 49 offsets, drawn uniformly
    seen = shifted.retina(shifted.canvas, obs["location"]).flatten(1)
    torch.testing.assert_close(obs["glimpse"], seen, atol=1e-6, rtol=0)
    test = make_core(GLIMPSE, num_envs=n, split="test", train_shift=s)
    test_centred = make_core(GLIMPSE, num_envs=n, split="test")
    test.reset(seed=4)
    test_centred.reset(seed=4)
    assert torch.equal(test.canvas, test_centred.canvas)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train_shift": -1}, r"train_shift must lie in \[0, 13\] pixels, got -1"),
        ({"train_shift": 14}, r"got 14"),
        ({"train_shift": 1.5}, r"train_shift must be an int, got 1.5"),
        ({"train_shift": True}, r"train_shift must be an int, got True"),
    ],
)
def test_train_shift_bad_values_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_core(GLIMPSE, num_envs=1, **kwargs)


def test_train_shift_is_refused_where_digits_are_placed_at_random() -> None:
    with pytest.raises(ValueError, match="not to TranslatedDigits.*got 2"):
        make_core(TRANSLATED, num_envs=1, train_shift=2)


def windows_holding(canvas: np.ndarray, images: np.ndarray) -> list[tuple[int, int, int]]:
    """(row, col, j): 28 x 28 windows of ``canvas`` that show image j, maybe under clutter.

    Clutter is drawn with max(), so the window is >= the image everywhere and equal to it on
    the ink that no fragment covers (asked here: on at least half of it)."""
    windows = np.lib.stride_tricks.sliding_window_view(canvas, (28, 28))
    span = windows.shape[0]
    flat = windows.reshape(-1, 28 * 28)
    found = []
    for j, image in enumerate(images.reshape(len(images), -1)):
        covers = (flat >= image).all(axis=1)
        ink = image > 0
        for w in np.flatnonzero(covers):
            if (flat[w][ink] == image[ink]).mean() >= 0.5:
                found.append((int(w // span), int(w % span), j))
    return found


def test_translated_digits_sit_at_random_positions() -> None:
    data = load_digits(split="train")
    images = {img.tobytes(): label for img, label in zip(data.images, data.labels, strict=True)}
    env = gym.make(TRANSLATED, n_glimpses=1)
    positions = set()
    for seed in range(6):
        env.reset(seed=seed)
        canvas = canvas_of(env)
        assert canvas.shape == (60, 60)
        _, _, _, _, info = env.step(np.zeros(12, np.float32))
        # Exactly one 28 x 28 window holds a training image, of the episode's label.
        found = [
            (y, x)
            for y in range(33)
            for x in range(33)
            if canvas[y : y + 28, x : x + 28].tobytes() in images
        ]
        assert len(found) == 1
        y, x = found[0]
        assert images[canvas[y : y + 28, x : x + 28].tobytes()] == info["label"]
        assert canvas.sum() == pytest.approx(canvas[y : y + 28, x : x + 28].sum())
        positions.add(found[0])
    assert len(positions) >= 5


def test_cluttered_canvases_hold_more_ink_than_translated() -> None:
    n = 128
    translated, cluttered = make_core(TRANSLATED, num_envs=n), make_core(CLUTTERED, num_envs=n)
    translated.reset(seed=5)
    cluttered.reset(seed=5)
    plain = translated.canvas_images().numpy()
    clutter = cluttered.canvas_images().numpy()
    # A translated digit's ink fits in its 28 x 28 frame; clutter spreads ink beyond it.
    assert all(max(ink_box(c)) <= 28 for c in plain)
    assert np.mean([max(ink_box(c)) > 28 for c in clutter]) > 0.5
    assert clutter.sum() > 1.2 * plain.sum()
    assert (clutter.sum(axis=(1, 2)) > plain.sum(axis=(1, 2))).mean() > 0.9


@pytest.mark.parametrize("env_id", [GLIMPSE, TRANSLATED])
def test_on_digit_is_the_fraction_of_chosen_glimpses_on_the_digits_ink(env_id: str) -> None:
    # Each environment's agent looks at pixel (row, col) picked at random; the reported
    # fraction is checked against the canvas's own ink box (no clutter: all ink is the digit).
    n, rng = 64, np.random.default_rng(0)
    core = make_core(env_id, num_envs=n, n_glimpses=4)
    core.reset(seed=3)
    canvas = core.canvas_images().numpy()
    size = core.canvas_size
    expected = np.zeros(n)
    for t in range(4):
        pixel = rng.integers(0, size, (n, 2))  # (row, col)
        location = (pixel[:, ::-1] + 0.5) / size * 2.0 - 1.0  # (x, y) at the pixel's centre
        action = torch.zeros(n, 12)
        action[:, :2] = torch.as_tensor(location, dtype=torch.float32)
        if t < 3:  # the location sent at the last step is never seen
            for i, (row, col) in enumerate(pixel):
                rows, cols = np.nonzero(canvas[i] > 0.25)
                on = rows.min() <= row <= rows.max() and cols.min() <= col <= cols.max()
                expected[i] += on / 3
        _, _, _, _, info = core.step(action)
    assert bool(info["_on_digit"].all())
    np.testing.assert_allclose(info["on_digit"].numpy(), expected, atol=1e-6)
    assert 0.05 < expected.mean() < 0.95  # both kinds of glimpse were drawn


def test_digits_under_tells_centre_in_the_ink_box_and_a_patch_touching_it() -> None:
    # Pixel centres at random on translated canvases, checked against each canvas's own ink
    # box (no clutter: all ink is the digit), with no margin and with 4 pixels around.
    n, rng = 256, np.random.default_rng(1)
    core = make_core(TRANSLATED, num_envs=n)
    core.reset(seed=2)
    canvas = core.canvas_images().numpy()
    size = core.canvas_size
    pixel = rng.integers(0, size, (n, 2))  # (row, col)
    location = torch.as_tensor((pixel[:, ::-1] + 0.5) / size * 2.0 - 1.0, dtype=torch.float32)
    for margin in (0.0, 4.0):
        expected = []
        for i, (row, col) in enumerate(pixel + 0.5):
            rows, cols = np.nonzero(canvas[i] > 0.25)
            expected.append(
                rows.min() <= row + margin and row - margin < rows.max() + 1
                and cols.min() <= col + margin and col - margin < cols.max() + 1
            )  # fmt: skip
        under = core.digits_under(location, margin)
        assert under.shape == (n, 1)
        assert under[:, 0].tolist() == expected
    assert 0.05 < core.digits_under(location).float().mean() < 0.95
    assert (core.digits_under(location, 4.0) >= core.digits_under(location)).all()
    for bad in (-1, float("nan"), "4"):
        with pytest.raises(ValueError, match=f"margin must be a finite number in .*got {bad!r}"):
            core.digits_under(location, bad)


def test_on_digit_is_an_episode_metric_and_nan_where_no_glimpse_was_chosen() -> None:
    core = make_core(GLIMPSE, num_envs=2, action_mode="discrete")
    assert core.metadata["episode_metrics"]["on_digit"] == "on_digit"
    core.reset(seed=0)
    # Environment 0 looks at the centre cell (ink on every digit), then answers;
    # environment 1 answers at once, having chosen no glimpse.
    _, _, _, _, first = core.step(torch.tensor([4, 9 + 3]))
    assert first["_on_digit"].tolist() == [False, True]
    assert torch.isnan(first["on_digit"][1])
    _, _, _, _, second = core.step(torch.tensor([9 + 3, 4]))
    assert second["_on_digit"][0] and second["on_digit"][0] == 1.0


@each_id
@pytest.mark.parametrize("n_glimpses", [None, 3])
def test_continuous_episodes_last_n_glimpses_and_reward_the_argmax(
    env_id: str, n_glimpses: int | None
) -> None:
    kwargs = {} if n_glimpses is None else {"n_glimpses": n_glimpses}
    env = gym.make(env_id, **kwargs)
    length = env.unwrapped.core.n_glimpses
    assert length == (n_glimpses or {GLIMPSE: 6}.get(env_id, 8))
    rng = np.random.default_rng(3)
    for seed in range(4):
        actions = [random_action(env.action_space, rng) for _ in range(length)]
        env.reset(seed=seed)
        for t, a in enumerate(actions, start=1):
            obs, reward, term, trunc, info = env.step(a)
            np.testing.assert_array_equal(obs["location"], a[:2])  # looked where asked
            assert not trunc
            if t < length:
                assert (reward, term, info) == (0.0, False, {})
        assert term
        prediction = int(np.argmax(actions[-1][2:]))
        assert info["prediction"] == prediction
        assert reward == float(prediction == info["label"]) == float(info["correct"])
        # Replaying the episode with the true class scored highest is rewarded.
        scores = np.full(N_CLASSES, -0.5, np.float32)
        scores[info["label"]] = 0.9
        env.reset(seed=seed)
        for a in actions[:-1]:
            env.step(a)
        _, reward, term, _, info = env.step(np.concatenate([actions[-1][:2], scores]))
        assert term and reward == 1.0 and info["correct"]


@each_id
def test_discrete_answers_end_the_episode_and_looks_move_to_cell_centres(env_id: str) -> None:
    env = gym.make(env_id, action_mode="discrete")
    core = env.unwrapped.core
    grid, retina = core.grid_size, core.retina
    cells = grid * grid
    obs, _ = env.reset(seed=11)
    np.testing.assert_array_equal(obs["location"], [0.0, 0.0])
    canvas = torch.from_numpy(canvas_of(env))[None]
    for a in [0, cells - 1, grid - 1, cells // 2]:
        obs, reward, term, trunc, info = env.step(a)
        row_, col = divmod(a, grid)
        centre = np.array([(col + 0.5) / grid * 2 - 1, (row_ + 0.5) / grid * 2 - 1], np.float32)
        np.testing.assert_allclose(obs["location"], centre, atol=1e-6)
        expected = retina(canvas, torch.from_numpy(centre)[None]).flatten().numpy()
        np.testing.assert_allclose(obs["glimpse"], expected, atol=1e-6)
        assert (reward, term, trunc, info) == (0.0, False, False, {})
    # Answer wrong, learn the label, replay and answer right.
    obs, reward, term, trunc, info = env.step(cells + 0)
    label = info["label"]
    wrong = (label + 1) % N_CLASSES
    for answer, expected in ((wrong, 0.0), (label, 1.0)):
        env.reset(seed=11)
        env.step(0)
        _, reward, term, trunc, info = env.step(cells + answer)
        assert (reward, term, trunc) == (expected, True, False)
        assert (info["label"], info["prediction"], info["correct"]) == (
            label,
            answer,
            bool(expected),
        )
    # Answering at once is allowed too.
    env.reset(seed=11)
    _, reward, term, _, _ = env.step(cells + label)
    assert term and reward == 1.0


@each_id
@pytest.mark.parametrize("n_glimpses", [1, 4])
def test_discrete_episodes_without_an_answer_are_truncated(env_id: str, n_glimpses: int) -> None:
    env = gym.make(env_id, action_mode="discrete", n_glimpses=n_glimpses)
    env.reset(seed=0)
    for t in range(1, n_glimpses + 1):
        _, reward, term, trunc, info = env.step(t % 4)
        assert reward == 0.0 and not term
        assert trunc == (t == n_glimpses)
    assert info["label"] in range(N_CLASSES) and info["correct"] is False
    assert info["prediction"] == -1


@each_id
def test_test_split_digits_never_appear_in_the_train_split(env_id: str) -> None:
    train = load_digits(split="train")
    test = load_digits(split="test")
    train_bytes = {img.tobytes() for img in train.images}
    test_bytes = {img.tobytes() for img in test.images}
    assert not train_bytes & test_bytes
    # The digits a test-split environment shows are test digits (of the episode's label).
    n = 6
    core = make_core(env_id, num_envs=n, split="test", n_glimpses=1)
    core.reset(seed=0)
    canvases = core.canvas_images().numpy().copy()  # a view: the step below resets them
    _, _, _, _, info = core.step(torch.zeros(n, 12))
    for canvas, label in zip(canvases, info["label"].tolist(), strict=True):
        if env_id == CLUTTERED:
            of_label = test.images[test.labels == label]
            assert windows_holding(canvas, of_label)
            continue
        span = canvas.shape[0] - 27
        windows = [
            canvas[y : y + 28, x : x + 28].tobytes() for y in range(span) for x in range(span)
        ]
        assert not train_bytes.intersection(windows)
        held = test_bytes.intersection(windows)
        assert len(held) == 1
        assert label == test.labels[[img.tobytes() in held for img in test.images]][0]


@each_id
def test_render_shows_the_glimpse_moving(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert isinstance(first, np.ndarray) and first.dtype == np.uint8
    assert first.ndim == 3 and first.shape[2] == 3 and first.shape[0] >= 28
    assert np.array_equal(first, env.render())  # rendering changes nothing
    action = np.zeros(12, np.float32)
    action[:2] = (-0.8, 0.7)
    env.step(action)
    moved = env.render()
    assert moved.shape == first.shape and not np.array_equal(moved, first)
    # Without a render mode, render() warns and returns None (Gymnasium's convention).
    plain = gym.make(env_id).unwrapped
    plain.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert plain.render() is None
    vec = gym.make_vec(
        env_id, num_envs=2, vectorization_mode="vector_entry_point", render_mode="rgb_array"
    )
    vec.reset(seed=0)
    frames = vec.render()
    assert len(frames) == 2 and all(f.shape == first.shape for f in frames)


def test_glimpse_retina_arguments_reach_the_observation() -> None:
    env = gym.make(TRANSLATED, glimpse_size=6, n_scales=2, scale=3.0)
    assert env.unwrapped.core.retina == Retina(6, 2, 3.0)
    obs, _ = env.reset(seed=0)
    assert obs["glimpse"].shape == (2 * 6 * 6,)


# --- Stable-Baselines3 without wrappers of ours ------------------------------------------------


def test_sb3_ppo_trains_on_the_discrete_env() -> None:
    from stable_baselines3 import PPO

    env = gym.make(GLIMPSE, action_mode="discrete")
    model = PPO(
        "MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu"
    )
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    obs, _ = env.reset(seed=0)
    action, state = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action) and state is None
    env.step(action)
