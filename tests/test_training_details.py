"""Details of training that users rely on without looking: run folder names that every
file system takes, target networks that copy buffers too, learning-rate schedules that
reach every parameter group, and the episode statistics' window."""

from __future__ import annotations

import re

import torch

import cogrl.agents
from cogrl.agents.training import EpisodeStats, Progress
from cogrl.runs import run_name


def test_run_folder_names_are_portable_for_namespaced_and_module_ids():
    for env_id in ("cogrl/GlimpseDigits-v0", "mypackage.envs:GuessTheSign-v0", "a b\\c*?"):
        name = run_name(env_id, "ppo", 0)
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name


def test_dqn_target_update_copies_buffers_as_well_as_parameters():
    agent = cogrl.agents.make("dqn", "CartPole-v1", device="cpu", tau=0.5)
    agent.policy.register_buffer("running_mean", torch.full((3,), 7.0))
    agent.target.register_buffer("running_mean", torch.zeros(3))
    before = [p.clone() for p in agent.target.parameters()]
    agent.update_target()
    assert torch.equal(agent.target.running_mean, agent.policy.running_mean)
    for old, new, online in zip(
        before, agent.target.parameters(), agent.policy.parameters(), strict=True
    ):
        torch.testing.assert_close(new, 0.5 * old + 0.5 * online)  # Polyak for weights


def test_learning_rate_annealing_sets_every_parameter_group():
    agent = cogrl.agents.make("ppo", "CartPole-v1", device="cpu")
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([{"params": [a]}, {"params": [b], "lr": 5.0}], lr=1.0)
    progress = Progress(agent, 100, None, False, None, None)
    agent.num_timesteps += 25
    progress.anneal(optimizer, 2.0)
    assert [g["lr"] for g in optimizer.param_groups] == [1.5, 1.5]


def test_episode_statistics_keep_the_last_window_of_episodes_on_the_device():
    stats = EpisodeStats({"accuracy": "correct"}, window=4)
    for step in range(3):
        done = torch.tensor([True, step == 1, True])
        info = {
            "_episode": done,
            "episode": {"r": torch.full((3,), float(step)), "l": torch.ones(3, dtype=torch.int64)},
            "correct": torch.tensor([True, False, step == 2]),
        }
        stats.update(info)
    # Episodes in order: r 0, 0 | 1, 1, 1 | 2, 2: the last four are 1, 1, 2, 2.
    summary = stats.summary()
    assert summary["rollout/ep_rew_mean"] == 1.5
    # Correct, in order: T, F | T, F, F | T, T: the last four are F, F, T, T.
    assert summary["rollout/accuracy"] == 0.5


def test_a_run_context_checkpoints_every_interval_and_stops_on_request():
    agent = cogrl.agents.make("a2c", "CartPole-v1", device="cpu", num_envs=4, n_steps=5)
    written = []

    def checkpoint(a):
        written.append(a.num_timesteps)
        if len(written) == 2:
            run.request_stop()  # as a signal handler does: the update after this one stops

    run = cogrl.agents.RunContext(checkpoint, checkpoint_every=40)
    agent.learn(1_000, run=run)
    # 20 steps per update: due at 40 and 80; the stop after the second writes a third.
    assert written == [40, 80, 100]
    assert agent.num_timesteps == 100


def test_learn_refuses_a_run_that_is_not_a_run_context():
    agent = cogrl.agents.make("a2c", "CartPole-v1", device="cpu")
    try:
        agent.learn(100, run={"checkpoint": None})
    except ValueError as e:
        assert "RunContext" in str(e)
    else:
        raise AssertionError("a dict was taken as a run context")


def test_every_learner_logs_its_loss_and_gradient_norm():
    cases = [
        ("ppo", "CartPole-v1", {"num_envs": 4, "n_steps": 16, "batch_size": 32}),
        ("a2c", "CartPole-v1", {"num_envs": 4}),
        ("dqn", "CartPole-v1", {"learning_starts": 32, "batch_size": 32}),
        ("reinforce", "CartPole-v1", {"num_envs": 4}),
        ("ram", "cogrl/GlimpseDigits-v0", {"num_envs": 4}),
    ]
    for name, env, hyperparameters in cases:
        seen: dict[str, float] = {}
        agent = cogrl.agents.make(name, env, device="cpu", **hyperparameters)
        agent.learn(300, callback=lambda a, info, seen=seen: seen.update(info))
        for key in ("train/loss", "train/grad_norm"):
            assert key in seen, (name, key, sorted(seen))
