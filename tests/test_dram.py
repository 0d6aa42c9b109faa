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
        # The first step's r2 is R2 from r2_0 = context(obs): run it by hand.
        r2_0 = policy.context(obs["context"])
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


def test_save_and_load_predict_the_same(tmp_path) -> None:
    agent = pairs_agent()
    agent.learn(16 * 6)
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
    ],
)
def test_bad_settings_are_named(env_kwargs, hyper, match) -> None:
    with pytest.raises(ValueError, match=match):
        make("dram", "cogrl/MultiDigits-v0", env_kwargs=env_kwargs, **{**SMALL, **hyper})


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
