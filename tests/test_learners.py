"""What users rely on from cogrl's learners (PPO, A2C, DQN, REINFORCE), in a few minutes.

- Each learns CartPole-v1 in a short budget, clearly beating a random policy.
- A recurrent policy solves a memory task that a feedforward one cannot, on
  cogrl/DelayedRecall-v0.
- Checkpoints round-trip: a loaded agent predicts exactly what the saved one did.
- DQN's replay is shared: two agents write into and sample from one buffer.
- Bad hyperparameters are a ValueError naming the parameter; ``learn`` logs its scalars,
  stops when a callback says so and counts environment steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import cogrl.agents
import cogrl.envs
from cogrl.agents import evaluate
from cogrl.agents.presets import PRESETS, preset
from cogrl.logging import RunLogger, read_scalars
from cogrl.nn import GlimpseNetwork

LEARNERS = ["ppo", "a2c", "dqn", "reinforce"]

# Small budgets that learn CartPole-v1 reliably with seed 0 (also checked with seeds 1, 2).
CARTPOLE: dict[str, tuple[int, dict[str, Any]]] = {
    "ppo": (20_000, {}),
    "a2c": (25_000, {}),
    "reinforce": (25_000, {"num_envs": 8, "learning_rate": 3e-3}),
    "dqn": (20_000, {"learning_starts": 1_000}),
}


# --- a memory task: report a bit seen `delay` steps ago -------------------------------------


# cogrl/DelayedRecall-v0 (cogrl.envs.memory.delayed): step 0 shows a random bit, `delay` (3)
# blank steps follow, and at the query step the action (Discrete(2)) must name the bit;
# reward 1 if right. A policy without memory answers at chance. It declares its accuracy
# (info["correct"]) as an episode metric.
RECALL_ID = "cogrl/DelayedRecall-v0"

# Small networks and one (PPO: whole-rollout) minibatch: the task is tiny, so a few seconds.
RECALL_POLICY = {"core_size": 32, "hidden_sizes": [32], "share_torso": True}
RECALL_SMALL = {"policy": RECALL_POLICY, "learning_rate": 3e-3}
RECALL: dict[str, tuple[int, dict[str, Any]]] = {
    "ppo": (10_000, {"num_envs": 32, "n_steps": 16, "batch_size": 512, **RECALL_SMALL}),
    "a2c": (10_000, {"num_envs": 32, "n_steps": 8, **RECALL_SMALL}),
    "reinforce": (
        10_000,
        {"num_envs": 32, **RECALL_SMALL, "policy": {**RECALL_POLICY, "share_torso": False}},
    ),
    "dqn": (
        5_000,
        {
            "num_envs": 16,
            "policy": {"core_size": 32, "hidden_sizes": [32]},
            "batch_size": 32,
            "sequence_length": 5,
            "burn_in": 2,
            "learning_starts": 500,
            "target_update_interval": 200,
            "exploration_fraction": 0.3,
        },
    ),
}


# --- helpers --------------------------------------------------------------------------------


def with_policy(hyperparameters: dict[str, Any], **policy: Any) -> dict[str, Any]:
    """``hyperparameters`` with ``policy`` settings over those it already has."""
    return {**hyperparameters, "policy": {**hyperparameters.get("policy", {}), **policy}}


def random_mean_return(env_id: str, episodes: int = 20, seed: int = 0) -> float:
    """The mean return of a uniformly random policy, over the same episodes as ``evaluate``."""
    core = cogrl.envs.make_core(env_id, num_envs=episodes)
    core.reset(seed=seed)
    space = core.single_action_space
    rng = np.random.default_rng(seed)
    returns = torch.full((episodes,), float("nan"))
    while bool(returns.isnan().any()):
        action = rng.integers(space.n, size=episodes)
        _, _, _, _, info = core.step(action)
        first = info["_episode"] & returns.isnan()
        returns[first] = info["episode"]["r"][first]
    return float(returns.mean())


def perturb(agent: cogrl.agents.Agent, seed: int = 1) -> None:
    """Move every weight away from its seeded initial value, so a checkpoint that failed to
    restore weights could not pass for one that did (a new agent with the same seed starts
    from the same weights)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in agent.modules().values():
            for p in module.parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=g).to(p.device))


def weights(agent: cogrl.agents.Agent) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{k}": v.detach().cpu().clone()
        for name, module in agent.modules().items()
        for k, v in module.state_dict().items()
    }


# --- 1. every learner learns CartPole ------------------------------------------------------


@pytest.fixture(scope="module")
def cartpole_random_return() -> float:
    value = random_mean_return("CartPole-v1", episodes=20)
    assert 10.0 < value < 40.0, value  # about 22 for a uniform policy
    return value


@pytest.mark.parametrize("name", LEARNERS)
def test_learner_beats_random_on_cartpole(name: str, cartpole_random_return: float) -> None:
    steps, hyperparameters = CARTPOLE[name]
    agent = cogrl.agents.make(name, "CartPole-v1", device="cpu", seed=0, **hyperparameters)
    agent.learn(steps)
    assert agent.num_timesteps >= steps
    result = evaluate(agent, episodes=20)
    assert result["episodes"] == 20
    assert result["mean_return"] >= 3 * cartpole_random_return, (result, cartpole_random_return)


# --- 2. save, load, same predictions -------------------------------------------------------


def _check_round_trip(agent: cogrl.agents.Agent, tmp_path: Path) -> cogrl.agents.Agent:
    path = agent.save(tmp_path / "model")
    assert path == tmp_path / "model.pt" and path.is_file()
    loaded = cogrl.agents.load(tmp_path / "model")
    assert type(loaded) is type(agent)
    assert loaded.config == agent.config
    assert loaded.num_timesteps == agent.num_timesteps
    saved, restored = weights(agent), weights(loaded)
    assert saved.keys() == restored.keys()
    for key in saved:
        torch.testing.assert_close(restored[key], saved[key], rtol=0, atol=0, msg=key)
    return loaded


@pytest.mark.parametrize("name", LEARNERS)
def test_save_load_predicts_the_same_actions(name: str, tmp_path: Path) -> None:
    agent = cogrl.agents.make(name, "CartPole-v1", device="cpu", seed=0)
    agent.learn(500 if name != "dqn" else 64)
    perturb(agent)
    fresh = weights(cogrl.agents.make(name, "CartPole-v1", device="cpu", seed=0))
    assert any(not torch.equal(fresh[k], v) for k, v in weights(agent).items())
    loaded = _check_round_trip(agent, tmp_path)

    obs = np.random.default_rng(0).normal(0.0, 1.0, size=(64, 4)).astype(np.float32)
    before, _ = agent.predict(obs, deterministic=True)
    after, _ = loaded.predict(obs, deterministic=True)
    assert isinstance(after, np.ndarray) and after.shape == (64,) and after.dtype == np.int64
    np.testing.assert_array_equal(after, before)
    assert 0 < before.sum() < 64  # both actions occur: the comparison is not vacuous

    single, _ = loaded.predict(obs[3], deterministic=True)
    assert np.ndim(single) == 0 and int(single) == int(before[3])

    tensor_action, _ = loaded.predict(torch.as_tensor(obs), deterministic=True)
    assert isinstance(tensor_action, torch.Tensor)
    np.testing.assert_array_equal(tensor_action.cpu().numpy(), before)


@pytest.mark.parametrize("name", LEARNERS)
def test_recurrent_save_load_carries_state_through_predict(name: str, tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"policy": {"core": "gru", "core_size": 16, "hidden_sizes": [16]}}
    if name == "dqn":
        kwargs.update(num_envs=4, learning_starts=10**6)
    elif name in ("ppo", "a2c"):
        kwargs.update(num_envs=4)
    agent = cogrl.agents.make(name, RECALL_ID, device="cpu", seed=0, **kwargs)
    perturb(agent)
    loaded = _check_round_trip(agent, tmp_path)

    # Drive both agents through the same episodes, feeding back state and episode_start.
    core = cogrl.envs.make_core(RECALL_ID, num_envs=8)
    obs, _ = core.reset(seed=3)
    obs = obs.numpy()
    state_a = state_b = None
    start = np.ones(8, dtype=bool)
    for _ in range(12):
        a, state_a = agent.predict(obs, state_a, start, deterministic=True)
        b, state_b = loaded.predict(obs, state_b, start, deterministic=True)
        np.testing.assert_array_equal(b, a)
        assert state_b is not None
        torch.testing.assert_close(state_b, state_a, rtol=0, atol=0)
        next_obs, _, terminated, truncated, _ = core.step(a)
        obs, start = next_obs.numpy(), (terminated | truncated).numpy()

    # Tensors in, tensors out; the state is reset where episode_start is true.
    x = torch.as_tensor(obs)
    a1, s1 = loaded.predict(x, state_b, torch.ones(8, dtype=torch.bool), deterministic=True)
    a0, s0 = loaded.predict(x, None, None, deterministic=True)
    assert isinstance(a1, torch.Tensor)
    torch.testing.assert_close(a1, a0, rtol=0, atol=0)
    torch.testing.assert_close(s1, s0, rtol=0, atol=0)


# --- 3. a recurrent policy solves a task a feedforward one cannot ------------------------------


@pytest.mark.parametrize("name", LEARNERS)
def test_recurrent_policy_solves_delayed_recall_feedforward_cannot(name: str) -> None:
    steps, hyperparameters = RECALL[name]
    results = {}
    for core in ("gru", "none"):
        agent = cogrl.agents.make(
            name, RECALL_ID, device="cpu", seed=0, **with_policy(hyperparameters, core=core)
        )
        assert agent.config.policy.core == core
        agent.learn(steps)
        results[core] = evaluate(agent, episodes=200, seed=1)
    for result in results.values():
        assert result["episodes"] == 200 and result["mean_length"] == 5.0  # delay 3
        assert result["accuracy"] == pytest.approx(result["mean_return"])
    assert results["gru"]["accuracy"] >= 0.9, results
    assert 0.35 <= results["none"]["accuracy"] <= 0.65, results


# --- 4. two DQN agents share one replay ----------------------------------------------------


def test_two_dqn_agents_write_to_and_sample_from_one_replay() -> None:
    small = {
        "num_envs": 4,
        "train_freq": 4,
        "policy": {"hidden_sizes": [32]},
        "batch_size": 32,
        "buffer_size": 10_000,
    }
    first = cogrl.agents.make(
        "dqn", "CartPole-v1", device="cpu", seed=0, learning_starts=200, **small
    )
    replay = first.replay
    assert replay.size == 0
    second = cogrl.agents.make(
        "dqn", "CartPole-v1", device="cpu", seed=1, replay=replay, learning_starts=400, **small
    )
    assert second.replay is replay

    seen: dict[str, list[dict[str, float]]] = {"first": [], "second": []}

    def recorder(key: str):
        return lambda agent, info: seen[key].append(info) and None

    first.learn(400, callback=recorder("first"))
    assert replay.size == 400
    # The second agent finds 400 transitions already there: it learns from its first step on,
    # sampling the first agent's experience.
    before = weights(second)
    second.learn(8, callback=recorder("second"))
    assert replay.size == 408
    assert "train/loss" in seen["second"][0]
    assert any(not torch.equal(before[k], v) for k, v in weights(second).items())
    # Later learn() calls continue counting (reset_num_timesteps=False).
    second.learn(200, callback=recorder("second"), reset_num_timesteps=False)
    first.learn(200, callback=recorder("first"), reset_num_timesteps=False)
    assert replay.size == 400 + 208 + 200  # every step of both agents
    assert first.num_timesteps == 600 and second.num_timesteps == 208
    for key in ("first", "second"):
        losses = [info["train/loss"] for info in seen[key] if "train/loss" in info]
        assert losses and all(np.isfinite(losses)), key
    assert seen["first"][-1]["replay/size"] == replay.size

    with pytest.raises(ValueError, match="num_envs"):
        cogrl.agents.make(
            "dqn", "CartPole-v1", device="cpu", seed=2, replay=replay, num_envs=8, buffer_size=100
        )


def test_recurrent_dqn_trains_and_stores_its_state() -> None:
    agent = cogrl.agents.make(
        "dqn",
        RECALL_ID,
        device="cpu",
        seed=0,
        policy={"core": "gru", "core_size": 16, "hidden_sizes": [16]},
        num_envs=8,
        batch_size=16,
        sequence_length=4,
        burn_in=2,
        learning_starts=200,
        train_freq=8,
    )
    losses: list[float] = []
    agent.learn(2_000, callback=lambda a, info: losses.append(info.get("train/loss", np.nan)))
    assert agent.num_timesteps == 2_000
    trained = [v for v in losses if not np.isnan(v)]
    assert len(trained) > 100 and np.isfinite(trained).all()
    assert agent.replay.size == 2_000
    batch = agent.replay.sample(8, torch.Generator().manual_seed(0))
    assert set(batch.extras) == {"state"}
    assert batch.extras["state"].shape == (8, 16)
    # Stored states are the core's state before each step: nonzero within episodes.
    assert bool((agent.replay.sample(256, torch.Generator()).extras["state"] != 0).any())


# --- 5. bad hyperparameters ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "env_id", "hyperparameters", "named"),
    [
        ("ppo", "CartPole-v1", {"learning_rat": 1e-3}, r"unknown .*\['learning_rat'\]"),
        ("a2c", "CartPole-v1", {"n_step": 5}, r"unknown .*\['n_step'\]"),
        ("dqn", "CartPole-v1", {"epsilon": 0.1}, r"unknown .*\['epsilon'\]"),
        ("reinforce", "CartPole-v1", {"clip_range": 0.2}, r"unknown .*\['clip_range'\]"),
        ("ppo", "CartPole-v1", {"learning_rate": -1e-3}, "learning_rate"),
        ("a2c", "CartPole-v1", {"learning_rate": -1e-3}, "learning_rate"),
        ("dqn", "CartPole-v1", {"learning_rate": -1e-3}, "learning_rate"),
        ("reinforce", "CartPole-v1", {"learning_rate": -1e-3}, "learning_rate"),
        ("ppo", "CartPole-v1", {"learning_rate": float("nan")}, "learning_rate"),
        ("ppo", "CartPole-v1", {"num_envs": 2, "n_steps": 8, "batch_size": 32}, "batch_size"),
        ("ppo", "CartPole-v1", {"gamma": 1.5}, "gamma"),
        ("ppo", "CartPole-v1", {"policy": {"core": "transformer"}}, "core"),
        ("ppo", "CartPole-v1", {"core": "gru"}, r"\['core'\].*policy"),
        ("dqn", "CartPole-v1", {"hidden_sizes": [8]}, r"\['hidden_sizes'\].*policy"),
        ("a2c", "CartPole-v1", {"policy": {"activation": "gelu"}}, "activation"),
        ("a2c", "CartPole-v1", {"optimizer": "sgd"}, "optimizer"),
        ("dqn", "CartPole-v1", {"policy": {"core": "gru"}, "n_step": 3}, "n_step"),
        ("dqn", "CartPole-v1", {"buffer_size": 8, "num_envs": 16}, "buffer_size"),
        ("dqn", "CartPole-v1", {"buffer_size": 32, "num_envs": 16, "n_step": 3}, "buffer_size"),
        ("dqn", "CartPole-v1", {"buffer_size": 160, "policy": {"core": "gru"}}, "buffer_size"),
        ("dqn", "Pendulum-v1", {}, "DQN needs a Discrete action space"),
        ("reinforce", "CartPole-v1", {"baseline": "median"}, "baseline"),
        ("reinforce", "CartPole-v1", {"num_envs": 0}, "num_envs"),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_them(
    name: str, env_id: str, hyperparameters: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        cogrl.agents.make(name, env_id, device="cpu", seed=0, **hyperparameters)


def test_bad_learn_arguments_raise_value_error() -> None:
    agent = cogrl.agents.make("ppo", "CartPole-v1", device="cpu", seed=0)
    with pytest.raises(ValueError, match="total_timesteps"):
        agent.learn(1.5e4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown agent"):
        cogrl.agents.make("sac", "CartPole-v1")


# --- 6. logging, callbacks, step counting --------------------------------------------------


COMMON_TAGS = {"rollout/ep_rew_mean", "rollout/ep_len_mean", "time/fps"}
LEARNER_TAGS = {
    "ppo": {"train/policy_loss", "train/value_loss", "train/entropy", "train/approx_kl"},
    "a2c": {"train/policy_loss", "train/value_loss", "train/entropy"},
    "reinforce": {"train/policy_loss", "train/value_loss", "train/entropy"},
    "dqn": {"train/loss", "train/q_mean", "rollout/epsilon", "replay/size"},
}
SHORT = {
    "ppo": {"num_envs": 4, "n_steps": 64, "batch_size": 64},
    "a2c": {"num_envs": 4, "n_steps": 8},
    "reinforce": {"num_envs": 4},
    "dqn": {
        "num_envs": 4,
        "learning_starts": 200,
        "batch_size": 32,
        "policy": {"hidden_sizes": [32]},
    },
}


@pytest.mark.parametrize("name", LEARNERS)
def test_learn_logs_scalars_and_counts_env_steps(name: str, tmp_path: Path) -> None:
    agent = cogrl.agents.make(name, "CartPole-v1", device="cpu", seed=0, **SHORT[name])
    with RunLogger(tmp_path) as logger:
        agent.learn(2_000, logger=logger)
    scalars = read_scalars(tmp_path)
    missing = (COMMON_TAGS | LEARNER_TAGS[name]) - set(scalars)
    assert not missing, sorted(scalars)
    # Steps are environment steps summed over environments; the last point is at the end.
    assert agent.num_timesteps >= 2_000
    steps = [step for step, _ in scalars["time/fps"]]
    assert steps == sorted(steps) and steps[-1] == agent.num_timesteps
    assert all(v > 0 for _, v in scalars["time/fps"])
    assert all(1 <= v <= 500 for _, v in scalars["rollout/ep_len_mean"])
    if name == "dqn":
        assert agent.num_timesteps == 2_000
        eps = [v for _, v in scalars["rollout/epsilon"]]
        assert eps[0] == pytest.approx(1.0, abs=0.01) and eps[-1] == pytest.approx(0.05)
        assert all(a >= b for a, b in zip(eps[:-1], eps[1:], strict=True))
        size = scalars["replay/size"]
        assert [v for _, v in size] == [float(s) for s, _ in size]  # one transition per step
    if name in ("ppo", "a2c"):
        rollout = SHORT[name]["num_envs"] * SHORT[name]["n_steps"]
        assert all(step % rollout == 0 for step in steps)  # logged after whole rollouts

    # A second learn() call continues counting when asked to; by default it starts over.
    agent.learn(500, reset_num_timesteps=False)
    assert agent.num_timesteps >= 2_500
    agent.learn(500)
    assert 500 <= agent.num_timesteps < 1_000


@pytest.mark.parametrize("name", LEARNERS)
def test_callback_returning_false_stops_training(name: str) -> None:
    agent = cogrl.agents.make(name, "CartPole-v1", device="cpu", seed=0, **SHORT[name])
    calls: list[dict[str, float]] = []

    def stop_after_two(agent: cogrl.agents.Agent, info: dict[str, float]) -> bool:
        calls.append(info)
        return len(calls) < 2

    agent.learn(100_000, callback=stop_after_two)
    assert len(calls) == 2
    assert calls[-1]["timesteps"] == agent.num_timesteps
    assert 0 < agent.num_timesteps < 10_000
    assert all("time/elapsed" in info for info in calls)

    # A callback returning None (or True) does not stop training.
    agent = cogrl.agents.make(name, "CartPole-v1", device="cpu", seed=0, **SHORT[name])
    agent.learn(1_000, callback=lambda a, info: None)
    assert agent.num_timesteps >= 1_000


# --- presets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "env_id"),
    [(name, env_id) for name, by_env in PRESETS.items() for env_id in by_env],
)
def test_every_preset_builds_its_agent_with_its_policy(name: str, env_id: str) -> None:
    """Presets are written in the learners' hyperparameters: each builds its agent, and its
    policy settings go over the learner's default policy."""
    p = preset(name, env_id)
    agent = cogrl.agents.make(
        name, env_id, device="cpu", seed=0, env_kwargs=p.env_kwargs, **p.hyperparameters
    )
    if not hasattr(agent.config, "policy"):
        return  # the classifier's whole-image models have no PolicyConfig: building is all
    default = type(agent).Config().policy
    assert agent.config.policy == default.replace(p.hyperparameters.get("policy", {}))
    # DQN's and RAM's policies have one torso; the actor-critics' actor has its own
    torso = agent.policy.torso if name in ("dqn", "ram") else agent.policy.actor_torso
    if agent.config.policy.encoder == "glimpse":  # the GlimpseDigits presets
        assert isinstance(torso.encoder, GlimpseNetwork)


# --- options train without error ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "hyperparameters"),
    [
        (
            "ppo",
            {"policy": {"core": "lstm"}, "n_steps": 16, "clip_range_vf": 0.2, "target_kl": 0.01},
        ),
        ("ppo", {"policy": {"core": "gru"}, "n_steps": 16, "batch_size": 32, "anneal_lr": True}),
        (
            "ppo",
            {
                "policy": {"share_torso": True, "activation": "relu", "ortho_init": True},
                "normalize_advantage": False,
            },
        ),
        ("a2c", {"optimizer": "adam", "policy": {"core": "rnn"}, "normalize_advantage": True}),
        ("dqn", {"double_q": True, "n_step": 3, "prioritized": True, "tau": 0.5}),
        (
            "dqn",
            {"policy": {"core": "lstm"}, "double_q": True, "sequence_length": 4, "burn_in": 2},
        ),
        # Learning may start before a whole n-step window or sequence is stored: it waits.
        ("dqn", {"n_step": 5, "learning_starts": 0, "batch_size": 4}),
        ("dqn", {"policy": {"core": "gru"}, "learning_starts": 0, "batch_size": 4}),
        ("reinforce", {"baseline": "mean", "ent_coef": 0.01}),
        (
            "reinforce",
            {"baseline": "none", "policy": {"core": "lstm"}, "max_grad_norm": None},
        ),
    ],
)
def test_learner_options_train_without_error(name: str, hyperparameters: dict[str, Any]) -> None:
    hyperparameters = {**SHORT[name], **hyperparameters}
    if hyperparameters.get("policy", {}).get("core", "none") != "none":
        hyperparameters = with_policy(hyperparameters, core_size=16, hidden_sizes=[16])
    agent = cogrl.agents.make(name, "CartPole-v1", device="cpu", seed=0, **hyperparameters)
    infos: list[dict[str, float]] = []
    agent.learn(1_000, callback=lambda a, info: infos.append(info) and None)
    assert agent.num_timesteps >= 1_000
    losses = [
        v for info in infos for k, v in info.items() if k.startswith("train/") and "loss" in k
    ]
    assert losses and np.isfinite(losses).all()
    if hyperparameters.get("anneal_lr"):
        rates = [info["train/learning_rate"] for info in infos]
        assert rates[0] == pytest.approx(3e-4) and rates[-1] < rates[0]
    actions, _ = agent.predict(np.zeros((3, 4), dtype=np.float32))
    assert actions.shape == (3,) and set(actions.tolist()) <= {0, 1}


@pytest.mark.parametrize("name", ["ppo", "a2c", "reinforce"])
def test_box_actions_are_learned_and_predicted_within_bounds(name: str) -> None:
    agent = cogrl.agents.make(name, "Pendulum-v1", device="cpu", seed=0, **SHORT[name])
    agent.learn(1_000)
    assert agent.num_timesteps >= 1_000
    obs = np.random.default_rng(0).normal(0.0, 3.0, size=(32, 3)).astype(np.float32)
    for deterministic in (True, False):
        actions, _ = agent.predict(obs, deterministic=deterministic)
        assert actions.shape == (32, 1) and actions.dtype == np.float32
        assert (np.abs(actions) <= 2.0).all()
