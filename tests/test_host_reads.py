"""No host synchronisation per environment step in the learners' collection loops.

On a GPU, reading a tensor on the host (``bool(t)``, ``t.item()``, ``float(t)``,
``t.tolist()``, ``t.numpy()``, ``t.nonzero()``) waits for every queued kernel. The cores'
autoreset, the episode statistics, the learners' loops and their statistics keep values on
the device and read them once per logging interval. This test runs each learner on a
cogrl core in the GPU's code path (``force_sync_free``, on the CPU) and counts the reads:
their number does not grow with the number of steps between logging intervals.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

import cogrl.agents
import cogrl.agents.training
import cogrl.nn
from cogrl.core import force_sync_free

ENV = "cogrl/GlimpseDigits-v0"

# (agent, env kwargs, hyperparameters, steps per update)
LEARNERS = [
    ("ppo", {"action_mode": "discrete"}, {"num_envs": 32, "n_steps": 8, "batch_size": 64}, 256),
    ("a2c", {"action_mode": "discrete"}, {"num_envs": 32, "n_steps": 8}, 256),
    (
        "dqn",
        {"action_mode": "discrete"},
        {"num_envs": 32, "learning_starts": 64, "batch_size": 32, "train_freq": 32},
        32,
    ),
    ("reinforce", {"action_mode": "continuous"}, {"num_envs": 32}, 32 * 6),
    ("ram", {}, {"num_envs": 32}, 32 * 6),
]


def reads_during(agent_name, env_kwargs, hyperparameters, steps, reads) -> Counter[str]:
    agent = cogrl.agents.make(
        agent_name, ENV, device="cpu", seed=0, env_kwargs=env_kwargs, **hyperparameters
    )
    agent.learn(steps)  # builds the training core (its set-up reads are not per step)
    reads.clear()
    agent.learn(steps, reset_num_timesteps=False)
    return Counter(reads)


@pytest.mark.parametrize("agent_name, env_kwargs, hyperparameters, per_update", LEARNERS)
def test_host_reads_do_not_grow_with_the_steps_between_logging_intervals(
    agent_name, env_kwargs, hyperparameters, per_update, host_reads, monkeypatch
):
    # One logging interval spans both runs: the reads left are those of the first and the
    # last update's logs, the same for a short and a long run.
    monkeypatch.setattr(cogrl.agents.training, "LOG_INTERVAL", 10**9)
    with force_sync_free():
        short = reads_during(agent_name, env_kwargs, hyperparameters, 4 * per_update, host_reads)
        long = reads_during(agent_name, env_kwargs, hyperparameters, 16 * per_update, host_reads)
    assert long == short, f"host reads {dict(short)} in 4 updates, {dict(long)} in 16"


@pytest.mark.parametrize(
    ("core", "kwargs"),
    [
        ("ntm", {"memory_size": 16, "memory_width": 8, "read_heads": 2, "write_heads": 2}),
        ("dnc", {"memory_size": 16, "word_size": 8, "read_heads": 2}),
        ("memn2n", {"memory_size": 8}),
    ],
)
def test_memory_cores_step_and_learn_without_host_reads(core, kwargs, host_reads):
    """The memory cores' steps (acting) and their sequences' gradients (learning) read
    nothing on the host: their per-step work is tensor operations over the batch."""
    made = cogrl.nn.make_core(core, 6, 16, **kwargs)
    x = torch.randn(5, 4, 6)
    state = made.initial_state(4)
    start = torch.tensor([False, True, False, False])
    host_reads.clear()
    with torch.no_grad():
        s = state
        for t in range(5):
            _, s = made(x[t], made.reset(s, start))
    h, _ = made.sequence(x, state)
    h.sum().backward()
    assert host_reads == []
