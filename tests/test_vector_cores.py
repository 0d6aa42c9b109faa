"""Vector envs and EnvPool tasks as cogrl batched cores (cogrl.envs.vector_cores)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from cogrl.envs import (
    EnvPoolCore,
    GymVectorCore,
    VectorEnvCore,
    env_kind,
    env_metadata,
    make_core,
)
from cogrl.envs.vector_cores import vector_entry_point_support

CARTPOLE = "CartPole-v1"
SYNC_NEXT = "cogrl_test/SyncNextStepCartPole-v0"
SYNC_DISABLED = "cogrl_test/SyncDisabledCartPole-v0"
MASKED = "cogrl_test/MaskedCartPole-v0"
SAME_STEP = "cogrl_test/SameStepCartPole-v0"


def _sync(mode: AutoresetMode, num_envs: int, max_episode_steps: int = 500) -> SyncVectorEnv:
    """A vector entry point that honours reset_mask: SyncVectorEnv over CartPole copies."""
    return SyncVectorEnv(
        [lambda: gym.make(CARTPOLE, max_episode_steps=max_episode_steps)] * num_envs,
        autoreset_mode=mode,
    )


class MaskedCartPoleVectorEnv(CartPoleVectorEnv):
    """CartPoleVectorEnv as its author would extend it to honour ``options["reset_mask"]``:
    restart the masked rows only and cancel their pending next-step autoreset."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        mask = None if options is None else options.get("reset_mask")
        if mask is None or self.state is None:
            return super().reset(seed=seed, options=options)
        self.state[:, mask] = self.np_random.uniform(self.low, self.high, (4, int(mask.sum())))
        self.steps[mask] = 0
        self.prev_done[mask] = False
        return self.state.T.astype(np.float32), {}


for _id, _entry in [
    (SYNC_NEXT, lambda num_envs, **kw: _sync(AutoresetMode.NEXT_STEP, num_envs, **kw)),
    (SYNC_DISABLED, lambda num_envs, **kw: _sync(AutoresetMode.DISABLED, num_envs, **kw)),
    (SAME_STEP, lambda num_envs, **kw: _sync(AutoresetMode.SAME_STEP, num_envs, **kw)),
    (MASKED, MaskedCartPoleVectorEnv),
]:
    if _id not in gym.registry:
        gym.register(
            id=_id,
            entry_point="gymnasium.envs.classic_control.cartpole:CartPoleEnv",
            vector_entry_point=_entry,
            max_episode_steps=500,
        )


def _contract_steps(core: Any, steps: int, seed: int = 0) -> dict[str, int]:
    """Step ``core`` with random actions and check the same-step autoreset contract; returns
    how many episodes terminated and were truncated."""
    n = core.num_envs
    rng = np.random.default_rng(seed)
    obs, _ = core.reset(seed=seed)
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(steps):
        action = torch.as_tensor(rng.integers(0, 2, n))
        prev = obs.clone()
        obs, reward, terminated, truncated, info = core.step(action)
        assert obs.dtype == torch.float32 and obs.shape == (n, 4)
        assert reward.dtype == torch.float32 and terminated.dtype == torch.bool
        assert not torch.equal(obs, prev)  # nothing stands still, no reward-0 reset step
        assert torch.all(reward == 1.0)  # CartPole: 1 per step, no next-step reset steps
        done = terminated | truncated
        assert torch.equal(info["_episode"], done)
        returns += reward.numpy()
        lengths += 1
        if done.any():
            assert torch.equal(info["_final_obs"], done)
            final = info["final_obs"]
            # the final observation of a terminated episode lies outside the thresholds,
            # the first of the next one inside +-0.05
            for i in terminated.nonzero().flatten().tolist():
                x, theta = float(final[i, 0]), float(final[i, 2])
                assert abs(x) > 2.4 or abs(theta) > 12 * 2 * np.pi / 360
            assert torch.all(obs[done].abs() <= 0.05)
            assert torch.equal(final[~done], obs[~done])
            np.testing.assert_allclose(info["episode"]["r"][done].numpy(), returns[done.numpy()])
            np.testing.assert_array_equal(info["episode"]["l"][done].numpy(), lengths[done])
            ends["terminated"] += int(terminated.sum())
            ends["truncated"] += int(truncated.sum())
            returns[done.numpy()], lengths[done.numpy()] = 0.0, 0
        else:
            assert "final_obs" not in info
    return ends


# --- which core make_core picks ------------------------------------------------------------
def test_cartpole_vector_env_ignores_the_reset_mask_so_cartpole_steps_copies() -> None:
    usable, why = vector_entry_point_support(CARTPOLE)
    assert not usable and "CartPoleVectorEnv" in why and "reset_mask" in why
    core = make_core(CARTPOLE, 2)
    assert type(core) is GymVectorCore
    with pytest.raises(ValueError, match="CartPoleVectorEnv.reset ignores"):
        make_core(CARTPOLE, 2, vectorization_mode="vector_entry_point")


@pytest.mark.parametrize("env_id", [SYNC_NEXT, SYNC_DISABLED, MASKED])
def test_vector_entry_points_that_reset_a_subset_become_vector_env_cores(env_id: str) -> None:
    assert vector_entry_point_support(env_id)[0]
    core = make_core(env_id, 3, max_episode_steps=20)
    assert type(core) is VectorEnvCore and core.max_episode_steps == 20
    assert core.spec_id == env_id and core.spec_kwargs == {"max_episode_steps": 20}
    ends = _contract_steps(core, 200)
    assert ends["terminated"] > 0 and ends["truncated"] > 0
    core.close()


def test_same_step_vector_envs_fall_back_to_copies() -> None:
    usable, why = vector_entry_point_support(SAME_STEP)
    assert not usable and "same step" in why
    assert type(make_core(SAME_STEP, 2)) is GymVectorCore


def test_sync_forces_copies_and_bad_modes_are_value_errors() -> None:
    core = make_core(MASKED, 2, vectorization_mode="sync")
    assert type(core) is GymVectorCore
    assert core.spec_kwargs == {"vectorization_mode": "sync"}
    with pytest.raises(ValueError, match="vectorization_mode must be one of"):
        make_core(MASKED, 2, vectorization_mode="async")
    with pytest.raises(ValueError, match="applies to Gymnasium ids only"):
        make_core("cogrl/DelayedRecall-v0", 2, vectorization_mode="sync")


def test_sync_vector_entry_point_matches_gym_make_copies_step_by_step() -> None:
    """SyncVectorEnv seeds env i with s + i: the vector core runs the copies' episodes."""
    n, seed = 3, 5
    fast = make_core(SYNC_NEXT, n, max_episode_steps=15)
    slow = make_core(CARTPOLE, n, max_episode_steps=15)
    assert torch.equal(fast.reset(seed=seed)[0], slow.reset(seed=seed)[0])
    rng = np.random.default_rng(1)
    for _ in range(60):
        action = torch.as_tensor(rng.integers(0, 2, n))
        a, b = fast.step(action), slow.step(action)
        for x, y in zip(a[:4], b[:4], strict=True):
            assert torch.equal(x, y)
        assert set(a[4]) >= {"episode", "_episode"}
        assert torch.equal(a[4]["_episode"], b[4]["_episode"])
        if "final_obs" in b[4]:
            assert torch.equal(
                a[4]["final_obs"][b[4]["_final_obs"]], b[4]["final_obs"][b[4]["_final_obs"]]
            )


def test_vector_core_errors_and_autoreset_off() -> None:
    core = make_core(MASKED, 2, max_episode_steps=3)
    with pytest.raises(RuntimeError, match="reset"):
        core.step(torch.zeros(2, dtype=torch.int64))
    core.reset(seed=0)
    with pytest.raises(ValueError):
        core.step(torch.tensor([0, 2]))  # out of Discrete(2): never clipped
    with pytest.raises(ValueError):
        core.step(torch.zeros(3, dtype=torch.int64))
    with pytest.raises(NotImplementedError):
        core.state_dict()
    off = make_core(MASKED, 2, autoreset=False, max_episode_steps=3)
    off.reset(seed=0)
    for _ in range(3):
        obs, *_, info = off.step(torch.zeros(2, dtype=torch.int64))
    assert "final_obs" not in info and bool(info["_episode"].all())
    with pytest.raises(RuntimeError, match="autoreset=False"):
        off.step(torch.zeros(2, dtype=torch.int64))
    obs, _ = off.reset()
    assert torch.all(obs.abs() <= 0.05)


def test_returned_tensors_are_not_overwritten() -> None:
    core = make_core(MASKED, 4, max_episode_steps=5)
    obs, _ = core.reset(seed=0)
    kept = [obs]
    for _ in range(12):
        kept.append(core.step(torch.ones(4, dtype=torch.int64))[0])
    copies = [k.clone() for k in kept]
    core.step(torch.ones(4, dtype=torch.int64))
    assert all(torch.equal(a, b) for a, b in zip(kept, copies, strict=True))


def test_agents_train_on_a_vector_env_core() -> None:
    from cogrl.agents import make

    agent = make("a2c", MASKED, seed=0, device="cpu", num_envs=4, n_steps=8)
    agent.learn(256)
    assert agent.num_timesteps == 256


# --- EnvPool ------------------------------------------------------------------------------------
def test_envpool_cartpole_is_an_envpool_core() -> None:
    pytest.importorskip("envpool")
    assert env_kind("envpool:CartPole-v1") == "envpool"
    assert env_metadata("envpool:CartPole-v1")["episode_metrics"] == {}
    core = make_core("envpool:CartPole-v1", 4, max_episode_steps=25)
    assert type(core) is EnvPoolCore and core.max_episode_steps == 25
    ends = _contract_steps(core, 200)
    assert ends["terminated"] > 0 and ends["truncated"] > 0
    core.close()


def test_envpool_seeding_env_i_runs_as_a_pool_of_one_seeded_s_plus_i() -> None:
    pytest.importorskip("envpool")
    n, seed = 3, 7
    core = make_core("envpool:CartPole-v1", n, max_episode_steps=10)
    singles = [make_core("envpool:CartPole-v1", 1, max_episode_steps=10) for _ in range(n)]
    rng = np.random.default_rng(0)
    for _ in range(2):  # a second seeded reset starts the same episodes again
        obs, _ = core.reset(seed=seed)
        single_obs = [s.reset(seed=seed + i)[0] for i, s in enumerate(singles)]
        assert torch.equal(obs, torch.cat(single_obs))
        for _ in range(30):
            action = rng.integers(0, 2, n)
            obs, reward, terminated, truncated, info = core.step(torch.as_tensor(action))
            for i, s in enumerate(singles):
                o, r, te, tr, si = s.step(torch.as_tensor(action[i : i + 1]))
                assert torch.equal(obs[i], o[0]) and bool(terminated[i]) == bool(te[0])
                if bool(te[0] | tr[0]):
                    assert torch.equal(info["final_obs"][i], si["final_obs"][0])


def test_envpool_errors() -> None:
    pytest.importorskip("envpool")
    with pytest.raises(ValueError, match="unknown EnvPool task 'Nope-v1'"):
        make_core("envpool:Nope-v1", 2)
    with pytest.raises(ValueError, match="bad argument"):
        make_core("envpool:CartPole-v1", 2, bogus=3)
    with pytest.raises(ValueError, match="set by the core"):
        make_core("envpool:CartPole-v1", 2, batch_size=1)
    with pytest.raises(ValueError, match="Gymnasium ids only"):
        make_core("envpool:CartPole-v1", 2, vectorization_mode="sync")


def test_envpool_id_round_trips_through_a_run_and_eval(tmp_path: Any) -> None:
    pytest.importorskip("envpool")
    import json

    from cogrl.cli import main

    runs = tmp_path / "runs"
    args = ["--env", "envpool:CartPole-v1", "--agent", "a2c", "--steps", "512"]
    main(["train", *args, "--runs-dir", str(runs), "--video-interval", "0",
          "--eval-episodes", "2", "--no-progress"])  # fmt: skip
    (run,) = runs.iterdir()
    assert json.loads((run / "config.json").read_text())["env"] == "envpool:CartPole-v1"
    main(["eval", str(run), "--episodes", "2"])
    main(["train", "--resume", str(run), "--steps", "1024", "--no-progress"])
