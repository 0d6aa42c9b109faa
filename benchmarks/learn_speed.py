"""Steps per second of ``learn`` for learners' CartPole-v1 presets, on the cogrl found at a
given source tree: to compare two states of the code in one session (one thread).

    git worktree add /tmp/old 3fac884
    python benchmarks/learn_speed.py /tmp/old ppo,a2c,dqn,reinforce
    python benchmarks/learn_speed.py . ppo,a2c,dqn,reinforce

Each learner: ``learn(5,000)`` to warm up, then the time of ``learn(30,000)``.
"""

from __future__ import annotations

import sys
import time

import torch


def main() -> None:
    tree, names = sys.argv[1], sys.argv[2].split(",")
    sys.path.insert(0, tree)  # this tree's cogrl before any installed one
    import cogrl.agents as A
    from cogrl.agents.presets import preset

    torch.set_num_threads(1)
    for name in names:
        p = preset(name, "CartPole-v1")
        agent = A.make(
            name, "CartPole-v1", device="cpu", seed=0, env_kwargs=p.env_kwargs, **p.hyperparameters
        )
        agent.learn(5_000)
        start = time.perf_counter()
        agent.learn(30_000)
        print(tree, name, round(30_000 / (time.perf_counter() - start)), flush=True)


if __name__ == "__main__":
    main()
