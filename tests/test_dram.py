"""DRAM (Ba et al. 2015): its networks, its per-object emissions, its update, and its use
from the Python API and the CLI. The learning check on MNIST pairs is in
tests/test_learning.py (``pytest -m learning``)."""

from __future__ import annotations

import pytest
import torch

import cogrl
from cogrl.agents import evaluate, make
from cogrl.nn import DRAMPolicy

SMALL = {"hidden_size": 32, "glimpse_hidden": 16, "location_hidden": 16, "num_envs": 16}
PAIRS = {"canvas_size": 60, "glimpse_size": 8, "n_scales": 2}


def pairs_agent(**hyper):
    return make("dram", "cogrl/MultiDigits-v0", seed=0, env_kwargs=PAIRS, **{**SMALL, **hyper})


SEARCH = {"canvas_size": 56, "n_distractors": 2, "glimpse_size": 8, "n_scales": 2}


def search_agent(env_kwargs=SEARCH, **hyper):
    return make(
        "dram",
        "cogrl/VisualSearch-v0",
        seed=0,
        env_kwargs=env_kwargs,
        **{**SMALL, "glimpses_per_object": 2, **hyper},
    )


def test_context_size_defaults_to_a_quarter_of_the_canvas() -> None:
    agent = pairs_agent()
    assert agent.env_kwargs["context_size"] == 15
    assert agent.observation_space["context"].shape == (225,)
    # Without the context network the environment is left as given.
    assert "context_size" not in pairs_agent(context_network=False).env_kwargs


def test_context_network_sets_the_top_layer_at_the_first_step_only() -> None:
    agent = pairs_agent()
    policy: DRAMPolicy = agent.policy
    core = agent.make_core(4)
    obs, _ = core.reset(seed=0)
    state = policy.initial_state(4, "cpu")
    with torch.no_grad():
        h1, h2, state = policy(obs, state)
        # The first step's r2 is R2 from r2_0 = tanh(Context(obs)): run it by hand.
        r2_0 = torch.tanh(policy.context(obs["context"]))
        h_ref, _ = policy.r2(h1, (r2_0, torch.zeros_like(r2_0)))
        assert torch.allclose(h2, h_ref, atol=1e-6)
        assert state[-1].tolist() == [1, 1, 1, 1]
        # Later steps do not consult the context: a changed context changes nothing.
        obs2 = dict(obs, context=torch.rand_like(obs["context"]))
        _, a, _ = policy(obs, state)
        _, b, _ = policy(obs2, state)
        assert torch.equal(a, b)
        # An episode start resets the state (and the step count) of its row only.
        start = torch.tensor([True, False, False, False])
        _, _, after = policy(obs, state, start)
        assert after[-1].tolist() == [1, 2, 2, 2]


def test_one_layer_shares_the_lstm_for_both_networks() -> None:
    agent = pairs_agent(layers=1, context_network=False)
    assert agent.policy.r2 is None and agent.policy.context is None
    core = agent.make_core(2)
    obs, _ = core.reset(seed=0)
    h1, h2, _ = agent.policy(obs, agent.policy.initial_state(2, "cpu"))
    assert torch.equal(h1, h2)


def test_emits_one_label_per_object_after_its_glimpses() -> None:
    agent = pairs_agent(glimpses_per_object=3)
    assert agent.episode_length == 6 and agent.steps_per_answer == 3
    core = agent.make_core(8)
    obs, _ = core.reset(seed=1)
    state, start = None, torch.ones(8, dtype=torch.bool)
    for step in range(1, 7):
        action, state = agent.predict(obs, state, start, deterministic=True)
        start = torch.zeros(8, dtype=torch.bool)
        choice = action[:, 2:].argmax(1)
        if step % 3:
            assert (choice == 10).all()  # "nothing": only look
        else:
            assert (choice < 10).all()  # a label
        obs, _, terminated, truncated, info = core.step(action)
        assert bool(terminated.all()) == (step == 6) and not truncated.any()
    assert (info["prediction"] >= 0).all()


def test_sum_target_emits_once_after_every_digit() -> None:
    agent = make(
        "dram",
        "cogrl/MultiDigits-v0",
        seed=0,
        env_kwargs={**PAIRS, "target": "sum"},
        glimpses_per_object=2,
        **SMALL,
    )
    assert agent.n_answers == 1 and agent.episode_length == 4 and agent.steps_per_answer == 4
    result = evaluate(agent, 16, num_envs=16)
    assert result["mean_length"] == 4.0


def test_update_learns_the_classifier_and_logs_its_terms() -> None:
    agent = pairs_agent()
    before = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    stats = []
    agent.learn(16 * 6 * 3, callback=lambda _agent, info: stats.append(dict(info)) or True)
    after = agent.policy.state_dict()
    assert {"train/classifier_loss", "train/label_accuracy", "train/policy_loss"} <= set(stats[-1])
    for name in ("classifier.fc.weight", "location.fc.weight", "baseline.fc.weight"):
        assert not torch.equal(before[name], after[name]), name
    # The context network is trained through r2_0.
    assert not torch.equal(before["context.8.weight"], after["context.8.weight"])


def test_runs_on_the_one_digit_glimpse_tasks_as_ram_does() -> None:
    agent = make("dram", "cogrl/GlimpseDigits-v0", seed=0, **SMALL)
    assert not agent.emits and agent.episode_length == 6
    agent.learn(16 * 6 * 2)
    assert 0.0 <= evaluate(agent, 32, split="test")["accuracy"] <= 1.0


def conv_agent():
    return pairs_agent(glimpse_image="conv")


@pytest.mark.parametrize("agent_of", [pairs_agent, search_agent, conv_agent])
def test_save_and_load_predict_the_same(tmp_path, agent_of) -> None:
    agent = agent_of()
    agent.learn(16 * agent.episode_length)
    agent.save(tmp_path / "model")
    loaded = cogrl.agents.load(tmp_path / "model")
    assert loaded.env_kwargs == agent.env_kwargs
    core = agent.make_core(4)
    obs, _ = core.reset(seed=5)
    a, _ = agent.predict(obs, None, None, deterministic=True)
    b, _ = loaded.predict(obs, None, None, deterministic=True)
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("env_kwargs", "hyper", "match"),
    [
        ({**PAIRS, "action_mode": "discrete"}, {}, "continuous"),
        ({**PAIRS, "n_glimpses": 5}, {"glimpses_per_object": 3}, "n_glimpses=5"),
        (PAIRS, {"layers": 3}, "layers"),
        (PAIRS, {"glimpses_per_object": 0}, "glimpses_per_object"),
        (PAIRS, {"glimpse_image": "cnn"}, "glimpse_image"),
        ({**PAIRS, "glimpse_size": 6}, {"glimpse_image": "conv"}, "g >= 7"),
    ],
)
def test_bad_settings_are_named(env_kwargs, hyper, match) -> None:
    with pytest.raises(ValueError, match=match):
        make("dram", "cogrl/MultiDigits-v0", env_kwargs=env_kwargs, **{**SMALL, **hyper})


def test_conv_glimpse_image_convolves_the_retinas_patches_as_channels() -> None:
    agent = pairs_agent(glimpse_image="conv")
    glimpse = agent.policy.glimpse
    assert glimpse.glimpse_conv is not None and agent.patches == (2, 8)
    first = glimpse.glimpse_conv[1]
    assert (first.in_channels, first.kernel_size) == (2, (3, 3))  # the 2 scales
    assert glimpse.glimpse_fc.in_features == 16 * 2 * 2  # 8 - 3 * 2 pixels a side
    # A patch's pixels are read in place: moving ink within the finest patch changes g.
    x = torch.zeros(1, 2, 8, 8)
    x[0, 0, 2:4, 2:4] = 1.0
    moved = x.roll(3, dims=3)
    location = torch.zeros(1, 2)
    g = [glimpse({"glimpse": y.flatten(1), "location": location}) for y in (x, moved)]
    assert not torch.allclose(g[0], g[1])
    agent.learn(16 * agent.episode_length)  # and it trains
    assert agent.num_timesteps == 16 * agent.episode_length


def test_trains_from_the_cli(tmp_path) -> None:
    from cogrl.cli import main

    main(
        [
            "train",
            "--env",
            "cogrl/MultiDigits-v0",
            "--agent",
            "dram",
            "--steps",
            "200",
            "--runs-dir",
            str(tmp_path),
            "--set",
            "num_envs=8",
            "--set",
            "hidden_size=16",
            "--set",
            "env.canvas_size=60",
            "--video-interval",
            "0",
            "--eval-episodes",
            "10",
            "--no-progress",
        ]
    )
    runs = list(tmp_path.iterdir())
    assert len(runs) == 1 and (runs[0] / "config.json").exists()


# --- visual search (cogrl/VisualSearch-v0) ---------------------------------------------------


def test_search_saccades_then_declares_at_the_emitted_location() -> None:
    agent = search_agent()
    assert agent.searches and agent.episode_length == 3
    assert agent.policy.classifier is None  # no label to name
    policy: DRAMPolicy = agent.policy
    core = agent.make_core(8)
    obs, _ = core.reset(seed=1)
    state, start = None, torch.ones(8, dtype=torch.bool)
    for step in (1, 2, 3):
        # The location sent is the emission network's mean, tanh(E(r2_n)), computed by hand.
        with torch.no_grad():
            _, h2, _ = policy(obs, policy.initial_state(8, "cpu") if step == 1 else state)
        action, state = agent.predict(obs, state, start, deterministic=True)
        start = torch.zeros(8, dtype=torch.bool)
        assert torch.allclose(action[:, :2], torch.tanh(policy.location(h2)), atol=1e-6)
        assert (action[:, 2] == (1.0 if step == 3 else -1.0)).all()
        declared_on_target = core.on_target(action[:, :2])
        obs, reward, terminated, truncated, info = core.step(action)
        assert bool(terminated.all()) == (step == 3) and not truncated.any()
    # The reward judges the declared location: 1 on the target's box, else 0.
    assert torch.equal(info["found"], declared_on_target)
    assert torch.equal(reward, declared_on_target.float())
    assert (info["saccades"] == 2).all()


def test_search_evaluates_on_its_schedule() -> None:
    agent = search_agent(glimpses_per_object=3)
    result = evaluate(agent, 16, num_envs=16)
    assert result["mean_length"] == 4.0 and result["saccades"] == 3.0
    # Three saccades at 0.01 each, and a declaration worth 1 or 0.
    assert result["mean_return"] == pytest.approx(result["accuracy"] - 0.03, abs=1e-6)


def test_search_credits_the_declared_location_recognition_does_not() -> None:
    def last_step_gradient(agent) -> torch.Tensor:
        # The gradient that reaches the emission network's mean E(r2_T) at the last step.
        grads: list[torch.Tensor] = []

        def keep(_module, _inputs, mean):
            if mean.requires_grad:
                index = len(grads)
                grads.append(torch.zeros(()))
                mean.register_hook(lambda g: grads.__setitem__(index, g.clone()))

        handle = agent.policy.location.register_forward_hook(keep)
        agent.learn(16 * agent.episode_length)
        handle.remove()
        assert len(grads) == agent.episode_length
        return grads[-1]

    # Search: the reward judges the declared location, so its log-probability is credited.
    assert last_step_gradient(search_agent()).abs().sum(1).gt(0).all()
    # Recognition: the location sent with the last label is never looked at.
    assert torch.equal(last_step_gradient(pairs_agent()), torch.zeros(16, 2))
    # The masks themselves: ragged episodes of 3 and 2 steps.
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    assert torch.equal(search_agent()._credited_steps(mask), mask)
    assert pairs_agent()._credited_steps(mask).tolist() == [[1, 1], [1, 0], [0, 0]]


def test_search_cue_sets_the_first_state_and_gains_the_glimpse() -> None:
    agent = search_agent()
    policy: DRAMPolicy = agent.policy
    core = agent.make_core(4)
    obs, _ = core.reset(seed=2)
    torch.manual_seed(0)
    torch.nn.init.normal_(policy.cue_gain.weight)  # a gain other than its initial 1
    with torch.no_grad():
        h1, h2, _ = policy(obs, policy.initial_state(4, "cpu"))
        # By hand: r2_0 = tanh(Context(x) + W_cue c); g = G(x, l) * 2 sigmoid(G_cue(c)).
        c = obs["target"]
        r2_0 = torch.tanh(policy.context(obs["context"]) + policy.cue(c))
        g = policy.glimpse(obs) * 2 * torch.sigmoid(policy.cue_gain(c))
        zeros = torch.zeros_like(r2_0)
        h1_ref, _ = policy.r1(g, (zeros, zeros))
        h2_ref, _ = policy.r2(h1_ref, (r2_0, zeros))
        assert torch.allclose(h1, h1_ref, atol=1e-6) and torch.allclose(h2, h2_ref, atol=1e-6)
        # Another cue on the same canvas: another first location.
        other = dict(obs, target=c.roll(1, dims=1))
        _, h2_other, _ = policy(other, policy.initial_state(4, "cpu"))
        first, first_other = policy.location(h2), policy.location(h2_other)
        assert not torch.allclose(first, first_other, atol=1e-4)


def test_search_cue_enters_without_a_context_network() -> None:
    agent = search_agent(layers=1, context_network=False)
    policy: DRAMPolicy = agent.policy
    assert policy.context is None and "context_size" not in agent.env_kwargs
    core = agent.make_core(4)
    obs, _ = core.reset(seed=3)
    with torch.no_grad():
        # The first state is tanh(W_cue c) (both layers' at one layer), and the first
        # location depends on the cue.
        h1, _, _ = policy(obs, policy.initial_state(4, "cpu"))
        r_0 = torch.tanh(policy.cue(obs["target"]))
        h_ref, _ = policy.r1(policy.glimpse(obs), (r_0, torch.zeros_like(r_0)))
        assert torch.allclose(h1, h_ref, atol=1e-6)
        a, _ = agent.predict(obs, None, None, deterministic=True)
        b, _ = agent.predict(dict(obs, target=obs["target"].roll(3, 1)), None, None, True)
        assert not torch.allclose(a[:, :2], b[:, :2], atol=1e-4)


def test_search_learns_by_reinforce_alone_and_logs() -> None:
    agent = search_agent()
    before = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    stats = []
    agent.learn(16 * 3 * 3, callback=lambda _agent, info: stats.append(dict(info)) or True)
    after = agent.policy.state_dict()
    assert len(stats) == 3
    logged = set(stats[-1])
    assert {"train/policy_loss", "train/value_loss", "rollout/accuracy"} <= logged
    assert {"rollout/saccades", "rollout/saccades_to_target"} <= logged
    assert not any("classifier" in key or "label" in key for key in logged)
    assert stats[-1]["rollout/saccades"] == 2.0
    for name in ("location.fc.weight", "baseline.fc.weight", "cue.weight", "cue_gain.weight"):
        assert not torch.equal(before[name], after[name]), name
    assert not torch.equal(before["context.8.weight"], after["context.8.weight"])


@pytest.mark.parametrize(
    ("env_kwargs", "hyper", "match"),
    [
        ({**SEARCH, "n_glimpses": 3}, {"glimpses_per_object": 3}, "n_glimpses=3"),
        ({**SEARCH, "action_mode": "discrete"}, {}, "continuous"),
        (SEARCH, {"glimpses_per_object": 0}, "glimpses_per_object"),
    ],
)
def test_search_bad_settings_are_named(env_kwargs, hyper, match) -> None:
    with pytest.raises(ValueError, match=match):
        make("dram", "cogrl/VisualSearch-v0", env_kwargs=env_kwargs, **{**SMALL, **hyper})


def test_search_takes_all_of_n_glimpses() -> None:
    # glimpses_per_object + 1 == n_glimpses: the declaration comes at the last step allowed.
    agent = search_agent(glimpses_per_object=3, env_kwargs={**SEARCH, "n_glimpses": 4})
    assert evaluate(agent, 8, num_envs=8)["mean_length"] == 4.0
