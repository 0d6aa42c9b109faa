"""Tests for the recurrent attention model (cogrl.agents.ram) and its policy parts."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import cogrl  # noqa: F401  (registers the environments)
from cogrl.agents import RAM, evaluate, load, make
from cogrl.agents.policies import (
    CategoricalHead,
    GaussianLocationHead,
    GlimpseNetwork,
    MLPEncoder,
    ValueHead,
    make_core,
    make_encoder,
    reset_state,
)
from cogrl.logging import RunLogger, read_images, read_scalars

ENV = "cogrl/GlimpseDigits-v0"
SMALL = {
    "num_envs": 16,
    "feature_size": 32,
    "glimpse_hidden": 16,
    "location_hidden": 16,
    "core_size": 32,
}


def small_agent(seed: int = 0, **overrides) -> RAM:
    return make("ram", ENV, device="cpu", seed=seed, **{**SMALL, **overrides})


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
    for key in ("rollout/accuracy", "train/classifier_loss", "train/policy_loss", "time/fps"):
        assert isinstance(seen[0][key], float) and math.isfinite(seen[0][key])
    agent.learn(total_timesteps=1)  # one more whole update: episodes are never cut short
    assert agent.num_timesteps == 3 * 16 * 6


# --- checkpoints and configuration ----------------------------------------------------------------


def test_save_load_predict_identical(tmp_path):
    agent = small_agent(core="lstm")
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


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        make("ram", ENV, device="cpu", learning_rat=1e-3)
    with pytest.raises(ValueError, match="core"):
        make("ram", ENV, device="cpu", core="transformer")
    with pytest.raises(ValueError, match="num_envs"):
        make("ram", ENV, device="cpu", num_envs=0)
    with pytest.raises(ValueError, match="location_std"):
        make("ram", ENV, device="cpu", location_std=-0.1)


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


def reference_log_prob(mean: np.ndarray, std: float, location: np.ndarray) -> np.ndarray:
    """log density of l = tanh(u), u ~ N(mean, std^2 I), at ``location``, in float64."""
    u = np.arctanh(location)
    log_normal = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    return (log_normal - np.log(1.0 - location**2)).sum(-1)


@pytest.mark.parametrize("std", [0.05, 0.2, 0.7])
def test_gaussian_location_head_log_prob_is_that_of_the_sampled_location(std):
    torch.manual_seed(0)
    head = GaussianLocationHead(8, 2, std=std).double()
    h = torch.randn(4096, 8, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    location, log_prob = head.sample(h, generator)
    assert location.shape == (4096, 2) and log_prob.shape == (4096,)
    assert bool((location > -1).all() and (location < 1).all())
    mean = head(h).detach().numpy()
    expected = reference_log_prob(mean, std, location.numpy())
    np.testing.assert_allclose(log_prob.detach().numpy(), expected, rtol=1e-6, atol=1e-6)
    # And as a density: the same numbers via log_prob(mean, location).
    again = head.log_prob(head(h), location)
    np.testing.assert_allclose(again.detach().numpy(), expected, rtol=1e-6, atol=1e-6)
    # Gradient flows to the mean only through the log-probability.
    assert log_prob.requires_grad and not location.requires_grad
    # Deterministic location is tanh(mean).
    np.testing.assert_allclose(head.deterministic(h).detach().numpy(), np.tanh(mean))


def test_gaussian_location_head_stays_inside_even_for_extreme_means():
    head = GaussianLocationHead(1, 2, std=0.2)
    with torch.no_grad():
        head.fc.weight.zero_()
        head.fc.bias.copy_(torch.tensor([40.0, -40.0]))
    h = torch.ones(1000, 1)
    location, log_prob = head.sample(h, torch.Generator().manual_seed(0))
    assert bool((location > -1).all() and (location < 1).all())
    assert bool(torch.isfinite(log_prob).all())
    det = head.deterministic(h)
    assert bool((det.abs() < 1).all())


def test_gaussian_location_head_rejects_bad_std():
    with pytest.raises(ValueError, match="std"):
        GaussianLocationHead(4, std=0.0)


def test_make_encoder_from_spaces():
    glimpse_space = spaces.Dict(
        {"glimpse": spaces.Box(0, 1, (64,)), "location": spaces.Box(-1, 1, (2,))}
    )
    encoder = make_encoder(glimpse_space, output_size=32)
    assert isinstance(encoder, GlimpseNetwork)
    g = encoder({"glimpse": torch.rand(5, 64), "location": torch.rand(5, 2)})
    assert g.shape == (5, 32) and bool((g >= 0).all())

    mlp = make_encoder(spaces.Box(-1, 1, (7,)), output_size=16)
    assert isinstance(mlp, MLPEncoder) and mlp(torch.zeros(3, 7)).shape == (3, 16)
    # Other spaces (and the ones make_encoder rejects) are covered in test_policies.py.


@pytest.mark.parametrize("name", ["none", "rnn", "gru", "lstm"])
def test_cores_step_and_reset(name):
    core = make_core(name, input_size=6, hidden_size=10)
    state = core.initial_state(4, "cpu")
    x = torch.randn(4, 6)
    h, state = core(x, state)
    assert h.shape == (4, core.hidden_size)
    h2, state2 = core(x, state)
    start = torch.tensor([True, False, True, False])
    state3 = core.reset(state2, start)
    fresh = core.initial_state(4, "cpu")
    h_reset, _ = core(x, state3)
    h_fresh, _ = core(x, fresh)
    torch.testing.assert_close(h_reset[start], h_fresh[start])
    if name != "none":
        assert not torch.allclose(h_reset[~start], h_fresh[~start])


def test_make_core_unknown_name():
    with pytest.raises(ValueError, match="unknown core"):
        make_core("transformer", 4, 4)


def test_reset_state_on_tuples():
    state = (torch.ones(3, 2), torch.ones(3, 2))
    out = reset_state(state, torch.tensor([True, False, False]))
    assert (
        isinstance(out, tuple) and float(out[0][0].sum()) == 0.0 and float(out[1][1].sum()) == 2.0
    )


def test_categorical_and_value_heads():
    head = CategoricalHead(5, 10)
    logits = head(torch.randn(4, 5))
    assert logits.shape == (4, 10)
    value = CategoricalHead.sample(logits, torch.Generator().manual_seed(0))
    assert value.shape == (4,) and bool(((value >= 0) & (value < 10)).all())
    torch.testing.assert_close(
        CategoricalHead.log_prob(logits, value),
        torch.log_softmax(logits, -1)[torch.arange(4), value],
    )
    assert ValueHead(5)(torch.randn(4, 5)).shape == (4,)


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
