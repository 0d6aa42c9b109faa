"""Tests for GymVectorCore: any registered Gymnasium environment as a cogrl batched core."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import cogrl
from cogrl.agents.base import env_identity
from cogrl.cli import UsageError, main, split_overrides
from cogrl.envs import (
    GymVectorCore,
    cogrl_env_ids,
    env_kind,
    env_metadata,
    is_core_id,
    make_core,
)

README = Path(__file__).resolve().parents[1] / "README.md"
CARTPOLE = "CartPole-v1"
GUESS = "cogrl_test/GuessSign-v0"
GLIMPSE = "cogrl/GlimpseDigits-v0"


class GuessSign(gym.Env):
    """Say the sign of x[0]; a Dict observation, an info key, terminations and truncations."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, scale: float = 1.0) -> None:
        self.render_mode = render_mode
        self.scale = scale
        self.observation_space = spaces.Dict(
            {"x": spaces.Box(-1.0, 1.0, (2,), np.float32), "t": spaces.Discrete(8)}
        )
        self.action_space = spaces.Discrete(2)

    def _obs(self) -> dict[str, Any]:
        return {"x": self.x.copy(), "t": self.t}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        self.x = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self._obs(), {"start": 1}

    def step(self, action):
        correct = bool(action == int(self.x[0] > 0))
        self.t += 1
        self.x = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        terminated = bool(self.x[1] > 0.6)
        return self._obs(), self.scale * float(correct), terminated, False, {"correct": correct}

    def render(self):
        frame = np.zeros((4, 6, 3), np.uint8)
        frame[:, : 1 + self.t % 6] = 255
        return frame


gym.register(id=GUESS, entry_point=GuessSign, max_episode_steps=5)


def _np(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _np(v) for k, v in x.items()}
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _row(batch: Any, i: int) -> Any:
    return {k: v[i] for k, v in batch.items()} if isinstance(batch, dict) else batch[i]


def _assert_obs_equal(batch_row: Any, single: Any) -> None:
    if isinstance(single, dict):
        assert set(batch_row) == set(single)
        for k in single:
            np.testing.assert_array_equal(_np(batch_row[k]), np.asarray(single[k]))
    else:
        np.testing.assert_array_equal(_np(batch_row), np.asarray(single, dtype=np.float32))


# --- step-by-step equality with gym.make single environments ------------------------------------
@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [(CARTPOLE, {"max_episode_steps": 15}), (GUESS, {"scale": 2.0})],
    ids=["cartpole", "dict-obs-user-env"],
)
def test_core_matches_single_envs_step_by_step(env_id: str, kwargs: dict) -> None:
    n, seed, steps = 3, 11, 120
    core = make_core(env_id, n, **kwargs)
    singles = [gym.make(env_id, **kwargs) for _ in range(n)]
    obs, _ = core.reset(seed=seed)
    single_obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    for i in range(n):
        _assert_obs_equal(_row(obs, i), single_obs[i])
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    rng = np.random.default_rng(0)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(steps):
        action = rng.integers(0, 2, n)
        obs, reward, terminated, truncated, info = core.step(torch.as_tensor(action))
        assert reward.dtype == torch.float32 and reward.shape == (n,)
        assert terminated.dtype == torch.bool and truncated.dtype == torch.bool
        done = terminated | truncated
        assert torch.equal(info["_episode"], done)
        assert ("final_obs" in info) == bool(done.any())
        for i, env in enumerate(singles):
            o, r, term, trunc, single_info = env.step(action[i])
            returns[i] += r
            lengths[i] += 1
            assert float(reward[i]) == pytest.approx(r)
            assert bool(terminated[i]) == term and bool(truncated[i]) == trunc
            if "correct" in single_info:  # the step's info, also at episode ends
                assert (
                    bool(info["_correct"][i])
                    and bool(info["correct"][i]) == (single_info["correct"])
                )
            if term or trunc:
                ends["terminated" if term else "truncated"] += 1
                assert bool(info["_final_obs"][i])
                _assert_obs_equal(_row(info["final_obs"], i), o)
                assert float(info["episode"]["r"][i]) == pytest.approx(returns[i])
                assert int(info["episode"]["l"][i]) == lengths[i]
                returns[i], lengths[i] = 0.0, 0
                o, _ = env.reset()
            _assert_obs_equal(_row(obs, i), o)
    assert ends["terminated"] > 0 and ends["truncated"] > 0
    core.close()


def test_spaces_dtypes_and_identity_of_a_cartpole_core() -> None:
    core = cogrl.envs.make_core(CARTPOLE, 4)
    assert isinstance(core, GymVectorCore) and isinstance(core, cogrl.BatchedEnv)
    assert core.num_envs == 4 and core.device == torch.device("cpu")
    assert core.single_observation_space == gym.make(CARTPOLE).observation_space
    assert core.single_action_space == spaces.Discrete(2)
    assert (core.spec_id, core.spec_kwargs) == (CARTPOLE, {})
    with pytest.raises(RuntimeError, match="reset"):
        core.step(torch.zeros(4, dtype=torch.int64))
    obs, info = core.reset(seed=0)
    assert obs.shape == (4, 4) and obs.dtype == torch.float32 and info == {}
    obs, reward, terminated, truncated, info = core.step(np.zeros(4, dtype=np.int64))
    assert obs.shape == (4, 4) and reward.shape == terminated.shape == truncated.shape == (4,)
    assert info["episode"]["r"].dtype == torch.float32
    assert info["episode"]["l"].dtype == torch.int64
    assert torch.equal(info["episode"]["l"], torch.ones(4, dtype=torch.int64))
    assert env_identity(core) == (CARTPOLE, {})


def test_dict_observations_and_numeric_info_become_tensors() -> None:
    core = make_core(GUESS, 2)
    obs, info = core.reset(seed=3)
    assert set(obs) == {"x", "t"}
    assert obs["x"].dtype == torch.float32 and obs["x"].shape == (2, 2)
    assert obs["t"].dtype == torch.int64 and obs["t"].shape == (2,)
    assert torch.equal(info["start"], torch.ones(2, dtype=torch.int64))
    assert info["_start"].dtype == torch.bool
    _, _, _, _, info = core.step([0, 1])
    assert info["correct"].dtype == torch.bool and bool(info["_correct"].all())


def test_same_seed_same_episodes_and_env_i_gets_seed_plus_i() -> None:
    a, b = make_core(CARTPOLE, 3), make_core(CARTPOLE, 1)
    obs_a, _ = a.reset(seed=5)
    obs_b, _ = b.reset(seed=7)
    torch.testing.assert_close(obs_a[2], obs_b[0], rtol=0, atol=0)
    again, _ = a.reset(seed=5)
    torch.testing.assert_close(obs_a, again, rtol=0, atol=0)


def test_returned_tensors_are_not_overwritten_by_later_steps() -> None:
    core = make_core(CARTPOLE, 4, max_episode_steps=3)
    core.reset(seed=0)
    kept, copies = [], []
    for _ in range(6):  # episodes end at steps 3 and 6: final_obs and episode resets too
        out = core.step(torch.tensor([0, 1, 0, 1]))
        obs, reward, terminated, truncated, info = out
        tensors = [obs, reward, terminated, truncated, info["episode"]["r"], info["_episode"]]
        tensors += [info["final_obs"]] if "final_obs" in info else []
        kept.append(tensors)
        copies.append([t.clone() for t in tensors])
    for tensors, saved in zip(kept, copies, strict=True):
        for t, c in zip(tensors, saved, strict=True):
            assert torch.equal(t, c)


# --- autoreset=False ------------------------------------------------------------------------------
def test_without_autoreset_a_finished_env_returns_its_final_obs_and_must_be_reset() -> None:
    core = make_core(CARTPOLE, 1, autoreset=False)
    single = gym.make(CARTPOLE)
    core.reset(seed=2)
    single.reset(seed=2)
    rng = np.random.default_rng(1)
    for _ in range(3):
        done, length, total = False, 0, 0.0
        while not done:
            action = int(rng.integers(0, 2))
            obs, reward, terminated, truncated, info = core.step(torch.tensor([action]))
            o, r, term, trunc, _ = single.step(action)
            length, total = length + 1, total + r
            _assert_obs_equal(obs[0], o)  # at the end: the final observation, not a reset
            done = term or trunc
            assert bool(terminated[0] | truncated[0]) == done
        assert "final_obs" not in info and bool(info["_episode"][0])
        assert int(info["episode"]["l"][0]) == length
        assert float(info["episode"]["r"][0]) == pytest.approx(total)
        with pytest.raises(RuntimeError, match="reset"):
            core.step(torch.ones(1, dtype=torch.long))
        obs, _ = core.reset()
        _assert_obs_equal(obs[0], single.reset()[0])


# --- actions --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "action",
    [
        torch.tensor([0, 1, 1]),
        np.array([0, 1, 1], dtype=np.int32),
        [0, 1, 1],
    ],
    ids=["tensor", "numpy", "list"],
)
def test_actions_as_tensors_numpy_or_lists(action: Any) -> None:
    core, single = make_core(CARTPOLE, 3), gym.make(CARTPOLE)
    core.reset(seed=0)
    single.reset(seed=1)
    obs, *_ = core.step(action)
    _assert_obs_equal(obs[1], single.step(1)[0])


@pytest.mark.parametrize(
    ("env_id", "action", "expected"),
    [
        (CARTPOLE, [0, 1, 2], ["[2]", "Discrete(2)"]),
        (CARTPOLE, [0, 1], ["(2,)", "(3,)", "Discrete(2)"]),
        (CARTPOLE, [[0], [1], [1]], ["(3, 1)", "Discrete(2)"]),
        (CARTPOLE, [0.5, 0, 1], ["0.5", "integers"]),
        # Integer spaces take integer dtypes, as Gymnasium's Discrete.contains: no float
        # actions, even whole ones (checking that they are whole would read their values).
        (CARTPOLE, torch.tensor([0.0, 1.0, 1.0]), ["float32", "integers"]),
        (CARTPOLE, [-1, 0, 1], ["[-1]", "Discrete(2)"]),
        ("MountainCarContinuous-v0", [[0.5], [2.0], [0.0]], ["[2.0]", "Box(-1.0, 1.0"]),
        ("MountainCarContinuous-v0", [[0.5], [np.nan], [0.0]], ["nan", "non-finite"]),
        ("MountainCarContinuous-v0", [[0.5], [np.inf], [0.0]], ["inf", "non-finite"]),
        ("MountainCarContinuous-v0", ["a", "b", "c"], ["'a'", "Box"]),
    ],
)
def test_bad_actions_raise_value_error(env_id: str, action: Any, expected: list[str]) -> None:
    core = make_core(env_id, 3)
    core.reset(seed=0)
    with pytest.raises(ValueError) as err:
        core.step(action)
    for text in expected:
        assert text in str(err.value)


def test_bad_tensor_actions_name_the_value() -> None:
    core = make_core(CARTPOLE, 2)
    core.reset(seed=0)
    with pytest.raises(ValueError) as err:
        core.step(torch.tensor([0, 5]))
    assert "tensor([0, 5])" in str(err.value) and "Discrete(2)" in str(err.value)


def test_box_actions_are_checked_not_clipped() -> None:
    core = make_core("MountainCarContinuous-v0", 2)
    core.reset(seed=0)
    obs, *_ = core.step(torch.tensor([[1.0], [-1.0]]))
    assert obs.shape == (2, 2)


# --- errors ---------------------------------------------------------------------------------------
def test_unknown_ids_and_bad_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError, match=re.escape("'NoSuchEnv-v0'")) as err:
        make_core("NoSuchEnv-v0", 2)
    assert "cogrl list" in str(err.value)
    with pytest.raises(ValueError, match="bogus"):
        make_core(CARTPOLE, 2, bogus=1)
    with pytest.raises(ValueError, match="bogus"):
        GymVectorCore(GUESS, 2, bogus=3)
    with pytest.raises(ValueError, match="num_envs"):
        make_core(CARTPOLE, 0)
    with pytest.raises(ValueError, match="seed"):
        make_core(CARTPOLE, 2).reset(seed=[1, 2])


def test_env_kind_tells_cogrl_cores_from_gymnasium_envs() -> None:
    assert env_kind(GLIMPSE) == "core" and is_core_id(GLIMPSE)
    assert env_kind(CARTPOLE) == "gymnasium" and not is_core_id(CARTPOLE)
    assert env_kind(GUESS) == "gymnasium"
    assert not is_core_id("NoSuchEnv-v0")
    with pytest.raises(ValueError, match="NoSuchEnv"):
        env_kind("NoSuchEnv-v0")
    assert GLIMPSE in cogrl_env_ids() and CARTPOLE not in cogrl_env_ids()


# --- render ---------------------------------------------------------------------------------------
def test_render_gives_the_frame_of_one_env() -> None:
    core = make_core(GUESS, 3, render_mode="rgb_array")
    core.reset(seed=0)
    core.step([0, 0, 0])
    frame = core.render(2)
    assert frame.shape == (4, 6, 3) and frame.dtype == np.uint8
    with pytest.raises(ValueError, match="index"):
        core.render(3)
    plain = make_core(GUESS, 1)
    plain.reset(seed=0)
    with pytest.raises(RuntimeError, match="rgb_array"):
        plain.render(0)


def test_a_render_mode_the_env_does_not_offer_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="human2"):
        make_core(CARTPOLE, 1, render_mode="human2")
    gym.register(id="cogrl_test/NoRender-v0", entry_point=partial(GuessSign))  # no metadata
    make_core("cogrl_test/NoRender-v0", 1, render_mode="rgb_array").close()
    with pytest.raises(ValueError, match="no_such_module"):
        make_core("no_such_module:CartPole-v1", 1)


def test_module_prefixed_ids_import_the_module_that_registers_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cogrl_test_own_env.py").write_text(
        "import gymnasium as gym\n"
        "gym.register(id='OwnCartPole-v0', entry_point="
        "'gymnasium.envs.classic_control.cartpole:CartPoleEnv', max_episode_steps=7)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    env_id = "cogrl_test_own_env:OwnCartPole-v0"
    assert env_kind(env_id) == "gymnasium" and env_identity(env_id) == (env_id, {})
    core = make_core(env_id, 2)
    core.reset(seed=0)
    for _ in range(7):
        *_, truncated, _ = core.step([0, 0])
    assert core.envs[0].spec.max_episode_steps == 7


# --- env_identity ---------------------------------------------------------------------------------
def test_env_identity_of_ids_and_gym_envs() -> None:
    assert env_identity(CARTPOLE) == (CARTPOLE, {})
    assert env_identity(GUESS) == (GUESS, {})
    assert env_identity(GLIMPSE) == (GLIMPSE, {})
    assert env_identity(gym.make(CARTPOLE)) == (CARTPOLE, {})
    env = gym.make(CARTPOLE, max_episode_steps=50, sutton_barto_reward=True, render_mode=None)
    env_id, kwargs = env_identity(env)
    assert env_id == CARTPOLE
    assert kwargs == {"sutton_barto_reward": True, "max_episode_steps": 50}
    core = make_core(env_id, 2, **kwargs)  # the agent rebuilds the env from its identity
    assert core.envs[0].spec.max_episode_steps == 50
    assert env_identity(gym.make(GUESS, scale=3.0)) == (GUESS, {"scale": 3.0})
    vec = gym.make_vec(GUESS, num_envs=2, vectorization_mode="sync", scale=3.0)
    assert env_identity(vec) == (GUESS, {"scale": 3.0})
    assert env_identity(gym.make(GLIMPSE, n_glimpses=2)) == (GLIMPSE, {"n_glimpses": 2})
    assert env_identity(make_core(GUESS, 2, scale=0.5)) == (GUESS, {"scale": 0.5})


def test_env_identity_errors() -> None:
    with pytest.raises(ValueError, match="gymnasium.register"):
        env_identity(GuessSign())
    with pytest.raises(ValueError, match="NoSuchEnv"):
        env_identity("NoSuchEnv-v0")
    with pytest.raises(ValueError, match="int"):
        env_identity(3)  # type: ignore[arg-type]


# --- CLI ------------------------------------------------------------------------------------------
def test_cli_unknown_env_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "runs"
    code = main(["train", "--env", "NoSuchEnv-v0", "--agent", "ram", "--run-dir", str(root)])
    err = capsys.readouterr().err
    assert code == 2 and "NoSuchEnv-v0" in err and GLIMPSE in err and "Gymnasium" in err
    assert not root.exists()


def test_cli_list_says_any_gymnasium_id_works(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("environments:") and "Gymnasium" in first


def test_split_overrides_only_for_envs_with_splits() -> None:
    def agent(env_id: str) -> SimpleNamespace:  # what split_overrides reads of an agent
        return SimpleNamespace(env_id=env_id, env_metadata=env_metadata(env_id))

    assert split_overrides(agent(GLIMPSE), None) == {"split": "test"}
    assert split_overrides(agent(GLIMPSE), "train") == {"split": "train"}
    assert split_overrides(agent(CARTPOLE), None) == {}
    with pytest.raises(UsageError, match="split"):
        split_overrides(agent(CARTPOLE), "test")


# --- README ---------------------------------------------------------------------------------------
def test_readme_own_env_example() -> None:
    """The README's "Your own environment" example runs as written (needs the ppo agent)."""
    text = README.read_text()
    marker = "<!-- readme-example: own-env -->"
    assert marker in text
    block = re.search(r"```python\n(.*?)```", text[text.index(marker) :], re.S)
    assert block is not None
    code = block.group(1)
    torch_threads = torch.get_num_threads()
    try:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    finally:
        torch.set_num_threads(torch_threads)
