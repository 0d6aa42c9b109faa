"""Tests for the recurrent attention model (cogrl.agents.ram) and its policy parts."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import cogrl  # noqa: F401  (registers the environments)
from cogrl.agents import RAM, evaluate, load, make
from cogrl.agents.ram import ram_policy_config
from cogrl.logging import RunLogger, read_images, read_scalars
from cogrl.nn import GlimpseNetwork, GRUCore, LSTMCore, PolicyConfig

ENV = "cogrl/GlimpseDigits-v0"
DRAM_ENV = "cogrl/MultiDigits-v0"
# hidden_sizes=[g] is the glimpse feature's width.
SMALL_POLICY = {"hidden_sizes": [32], "glimpse_hidden": 16, "location_hidden": 16, "core_size": 32}


def small_agent(seed: int = 0, policy: dict | None = None, **overrides) -> RAM:
    return make(
        "ram",
        ENV,
        device="cpu",
        seed=seed,
        num_envs=16,
        policy={**SMALL_POLICY, **(policy or {})},
        **overrides,
    )


# --- learning ---------------------------------------------------------------------------------


def test_ram_learns_glimpse_digits_well_above_chance():
    """With its defaults, RAM gets far above chance (10%) on held-out digits in a short run."""
    agent = make("ram", ENV, device="cpu", seed=0)
    agent.learn(total_timesteps=300_000)
    result = evaluate(agent, episodes=360, num_envs=360, split="test")
    assert result["episodes"] == 360
    assert result["accuracy"] >= 0.5, result


def test_learning_is_reproducible_with_a_seed():
    a, b = small_agent(seed=3), small_agent(seed=3)
    a.learn(16 * 6 * 3)
    b.learn(16 * 6 * 3)
    for (name, x), (_, y) in zip(
        a.policy.state_dict().items(), b.policy.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name
    c = small_agent(seed=4)
    c.learn(16 * 6 * 3)
    assert any(
        not torch.equal(x, y)
        for x, y in zip(a.policy.state_dict().values(), c.policy.state_dict().values(), strict=True)
    )


def test_learn_counts_timesteps_and_callback_can_stop():
    agent = small_agent()
    seen: list[dict[str, float]] = []

    def callback(_agent, info):
        seen.append(info)
        return len(seen) < 2

    agent.learn(total_timesteps=10_000, callback=callback)
    assert len(seen) == 2
    assert [s["timesteps"] for s in seen] == [16 * 6, 2 * 16 * 6]
    assert agent.num_timesteps == 2 * 16 * 6
    for key in ("rollout/accuracy", "train/classifier_loss", "train/policy_loss", "time/elapsed"):
        assert isinstance(seen[0][key], float) and math.isfinite(seen[0][key])
    # One more whole update: episodes are never cut short.
    agent.learn(total_timesteps=1, reset_num_timesteps=False)
    assert agent.num_timesteps == 3 * 16 * 6


# --- checkpoints and configuration ----------------------------------------------------------------


def test_save_load_predict_identical(tmp_path):
    agent = small_agent(policy={"core": "lstm"})
    assert isinstance(agent.policy.torso.core, LSTMCore)
    agent.learn(16 * 6 * 2)
    path = agent.save(tmp_path / "model")
    data = torch.load(path, weights_only=True)
    assert set(data) == {"config", "state"}

    loaded = load(tmp_path / "model", device="cpu")
    assert isinstance(loaded, RAM)
    assert loaded.config == agent.config
    assert loaded.num_timesteps == agent.num_timesteps

    env = gym.make_vec(ENV, num_envs=5, vectorization_mode="vector_entry_point")
    obs, _ = env.reset(seed=11)
    state_a = state_b = None
    for _ in range(6):
        action_a, state_a = agent.predict(obs, state_a, deterministic=True)
        action_b, state_b = loaded.predict(obs, state_b, deterministic=True)
        np.testing.assert_array_equal(action_a, action_b)
        obs, *_ = env.step(action_a)
    env.close()


def test_small_policy_settings_go_over_rams_default_policy():
    agent = small_agent()
    policy = agent.config.policy
    assert isinstance(policy, PolicyConfig)
    # The settings given, over RAM's defaults (not PolicyConfig's).
    assert policy == ram_policy_config().replace(SMALL_POLICY)
    assert policy.encoder == "glimpse" and policy.core == "gru"
    encoder = agent.policy.torso.encoder
    assert isinstance(encoder, GlimpseNetwork)
    assert encoder.output_size == 32  # hidden_sizes=[32], the glimpse feature's width
    assert encoder.glimpse_fc.out_features == 16 and encoder.location_fc.out_features == 16
    assert isinstance(agent.policy.torso.core, GRUCore) and agent.policy.torso.hidden_size == 32
    assert agent.policy.location.std == ram_policy_config().location_std
    # The config written with checkpoints holds the policy as a plain dict.
    assert agent.config.to_dict()["policy"]["core_size"] == 32


def test_rams_default_policy_is_the_glimpse_network_and_a_gru():
    default = make("ram", ENV, device="cpu").config.policy
    assert default == ram_policy_config()
    assert default.encoder == "glimpse" and default.core == "gru"
    assert default.hidden_sizes == [128] and default.core_size == 128


@pytest.mark.parametrize("detach", [False, True])
def test_detach_location_keeps_reinforce_out_of_the_glimpse_network_and_core(detach):
    # With the classifier's term off, the location head's REINFORCE term is the only one
    # that can reach the torso (the baseline reads a detached h_t): detach_location=True
    # must leave the torso as it was, while the location head still learns.
    agent = small_agent(answer_coef=0.0, detach_location=detach)
    torso = [p.detach().clone() for p in agent.policy.torso.parameters()]
    head = [p.detach().clone() for p in agent.policy.location.parameters()]
    agent.learn(16 * 6)

    def moved(before, module):
        return any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))

    torso_moved, head_moved = moved(torso, agent.policy.torso), moved(head, agent.policy.location)
    assert head_moved
    assert torso_moved is not detach


def _reward_spy(agent):
    """Wrap ``agent._learning_rewards`` to keep what it was given and what it returned."""
    calls = []
    inner = agent._learning_rewards

    def spy(rewards, extras, info):
        given = [r.clone() for r in rewards]
        out = inner(rewards, extras, info)
        calls.append((given, [r.clone() for r in out], extras, info))
        return out

    agent._learning_rewards = spy
    return calls


@pytest.mark.parametrize("agent_name", ["ram", "dram"])
def test_log_likelihood_reward_pays_each_answer_its_label_log_probability(agent_name):
    # location_reward="log_likelihood" pays log p(y | l, x) at each answering step (RAM:
    # the last; DRAM on pairs: after each digit's 3 glimpses) and leaves the other steps'
    # rewards as the environment's; "correct" passes the environment's rewards through.
    env_kwargs = {"canvas_size": 60, "glimpse_size": 8, "n_scales": 2}
    hyper = {"policy": SMALL_POLICY} if agent_name == "ram" else {"env_kwargs": env_kwargs}
    env = ENV if agent_name == "ram" else DRAM_ENV
    for reward in ("correct", "log_likelihood"):
        agent = make(
            agent_name, env, device="cpu", seed=0, num_envs=8, location_reward=reward, **hyper
        )
        calls = _reward_spy(agent)
        agent.learn(1)  # one update: one batch of whole episodes
        ((given, out, extras, info),) = calls
        T = len(given)
        answers = [T - 1] if agent_name == "ram" else [2, 5]
        label = info[agent.label_key].view(8, -1)
        assert label.shape[1] == len(answers)
        for t in range(T):
            if reward == "correct" or t not in answers:
                assert torch.equal(out[t], given[t]), (reward, t)
                continue
            logits = extras[t]["logits"].detach()
            expected = torch.log_softmax(logits, -1)[torch.arange(8), label[:, answers.index(t)]]
            torch.testing.assert_close(out[t], expected)
            assert not out[t].requires_grad and bool((out[t] < 0).all())


def test_log_likelihood_reward_trains_the_baseline_on_it():
    # The baseline regresses on the return, which is now a log-probability (below 0):
    # after a few updates it predicts a negative return, where the 0/1 reward's is positive.
    def baseline(reward):
        agent = small_agent(location_reward=reward, learning_rate=0.01)
        agent.learn(16 * 6 * 20)
        with torch.no_grad():
            return float(agent.policy.baseline(torch.zeros(1, 32)).mean())

    assert baseline("log_likelihood") < 0 < baseline("correct")


def test_bad_location_reward_is_named():
    named = r"location_reward must be one of .*'log_likelihood'.*got 'nll'"
    with pytest.raises(ValueError, match=named):
        make("ram", ENV, device="cpu", location_reward="nll")
    with pytest.raises(ValueError, match="location_reward must be one of"):
        make("dram", DRAM_ENV, device="cpu", location_reward=1)
    with pytest.raises(ValueError, match=r"location_reward='log_likelihood' scores labels"):
        make(
            "dram", "cogrl/VisualSearch-v0", device="cpu", location_reward="log_likelihood",
            env_kwargs={"canvas_size": 56, "n_distractors": 2, "glimpse_size": 8, "n_scales": 2},
        )  # fmt: skip


@pytest.mark.parametrize("agent_name", ["ram", "dram"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_weight_decay_shrinks_every_weight_apart_from_the_gradient(agent_name, weight_decay):
    # With every loss term off the gradient is zero, so Adam leaves the weights as they
    # are and AdamW's decoupled decay shrinks each by lr * weight_decay of itself.
    zero = {"reinforce_coef": 0.0, "baseline_coef": 0.0, "answer_coef": 0.0}
    env, hyper = (ENV, {"policy": SMALL_POLICY}) if agent_name == "ram" else (DRAM_ENV, {})
    agent = make(
        agent_name, env, device="cpu", seed=0, num_envs=8, learning_rate=0.01,
        weight_decay=weight_decay, **zero, **hyper,
    )  # fmt: skip
    before = [p.detach().clone() for p in agent.policy.parameters()]
    agent.learn(1)  # one update: one batch of whole episodes
    for a, b in zip(before, agent.policy.parameters(), strict=True):
        torch.testing.assert_close(b.detach(), a * (1 - 0.01 * weight_decay))


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        make("ram", ENV, device="cpu", learning_rat=1e-3)
    with pytest.raises(ValueError, match="core"):
        make("ram", ENV, device="cpu", policy={"core": "transformer"})
    with pytest.raises(ValueError, match="num_envs"):
        make("ram", ENV, device="cpu", num_envs=0)
    with pytest.raises(ValueError, match="location_std"):
        make("ram", ENV, device="cpu", policy={"location_std": -0.1})
    # Policy settings given flat point at policy=; feature_size is gone (hidden_sizes).
    with pytest.raises(ValueError, match=r"\['core_size'\].*policy"):
        make("ram", ENV, device="cpu", core_size=32)
    with pytest.raises(ValueError, match="feature_size"):
        make("ram", ENV, device="cpu", feature_size=32)
    with pytest.raises(ValueError, match="detach_location must be true or false, got 'yes'"):
        make("ram", ENV, device="cpu", detach_location="yes")
    with pytest.raises(ValueError, match=r"weight_decay must be .*\[0.0, inf\], got -0.1"):
        make("ram", ENV, device="cpu", weight_decay=-0.1)
    with pytest.raises(ValueError, match=r"weight_decay must be .*, got 'x'"):
        make("dram", DRAM_ENV, device="cpu", weight_decay="x")


def test_ram_needs_the_continuous_action_mode():
    with pytest.raises(ValueError, match="continuous"):
        make("ram", ENV, device="cpu", env_kwargs={"action_mode": "discrete"})


# --- predict ------------------------------------------------------------------------------------


def test_predict_single_and_batched_observations():
    agent = small_agent()
    env = gym.make(ENV)
    obs, _ = env.reset(seed=0)
    action, state = agent.predict(obs)
    assert action.shape == (12,) and action.dtype == np.float32
    assert env.action_space.contains(action)
    obs, *_ = env.step(action)
    action2, _ = agent.predict(obs, state, episode_start=np.array(False))
    assert action2.shape == (12,)

    batch = {k: np.stack([v, v, v]) for k, v in obs.items()}
    actions, state = agent.predict(batch)
    assert actions.shape == (3, 12)
    np.testing.assert_allclose(actions[0], actions[1])
    # The unbatched action is the batched one's row.
    single, _ = agent.predict(obs)
    np.testing.assert_allclose(single, actions[0], rtol=1e-6, atol=1e-6)

    # Tensors in, tensors out; stochastic locations stay inside the space.
    tensors = {k: torch.as_tensor(v) for k, v in batch.items()}
    sampled, _ = agent.predict(tensors, deterministic=False)
    assert isinstance(sampled, torch.Tensor) and sampled.shape == (3, 12)
    assert bool((sampled.abs() <= 1).all())
    env.close()


def test_predict_resets_state_where_episode_starts():
    agent = small_agent()
    core = agent.make_core(2)
    obs, _ = core.reset(seed=1)
    first, state = agent.predict(obs)
    obs2, *_ = core.step(first)
    # Same observation with a fresh state vs a carried state: reset rows match a fresh start.
    fresh, _ = agent.predict(obs2)
    carried, _ = agent.predict(obs2, state, episode_start=torch.tensor([True, False]))
    torch.testing.assert_close(carried[0], fresh[0])
    assert not torch.allclose(carried[1], fresh[1])


# --- policy parts ---------------------------------------------------------------------------------
# The location head, cores, recurrent state and heads are tested in test_nn.py, the glimpse
# network in test_policies.py.


# --- logging --------------------------------------------------------------------------------------


def test_learn_logs_scalars_and_video(tmp_path):
    agent = small_agent()
    with RunLogger(tmp_path) as logger:
        agent.learn(total_timesteps=16 * 6 * 3, logger=logger, video_interval=16 * 6 * 2)
    scalars = read_scalars(tmp_path)
    for tag in (
        "rollout/ep_rew_mean",
        "rollout/accuracy",
        "train/classifier_loss",
        "train/policy_loss",
        "train/value_loss",
        "train/location_std",
        "time/fps",
    ):
        # the first update, then every LOG_INTERVAL (1,000) steps, and the last update
        assert [step for step, _ in scalars[tag]] == [96, 288], tag
    images = read_images(tmp_path)
    steps = [step for step, _ in images["rollout/video"]]
    assert steps == [192, 288]  # every video_interval, and once at the end
    assert all(gif.startswith(b"GIF8") for _, gif in images["rollout/video"])


def test_learn_without_logger_and_with_progress_bar():
    agent = small_agent()
    agent.learn(total_timesteps=16 * 6, progress_bar=True)
    assert agent.num_timesteps == 96
