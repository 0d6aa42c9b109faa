"""Steps per second of ``learn`` for learners' CartPole-v1 presets, on the cogrl found at a
given source tree: to compare two states of the code in one session (one thread).

    git worktree add /tmp/old 3fac884
    python benchmarks/learn_speed.py /tmp/old ppo,a2c,dqn,reinforce
    python benchmarks/learn_speed.py . ppo,a2c,dqn,reinforce
    python benchmarks/learn_speed.py . ppo,a2c,dqn,reinforce gru   # recurrent: policy.core

Each learner: ``learn(5,000)`` to warm up, then the time of ``learn(30,000)``; with a core
(the preset's policy with ``core`` set), ``learn(1,000)`` then ``learn(4,096)``.
"""

from __future__ import annotations

import sys
import time

import torch


def main() -> None:
    tree, names = sys.argv[1], sys.argv[2].split(",")
    core = sys.argv[3] if len(sys.argv) > 3 else None
    warm, timed = (5_000, 30_000) if core is None else (1_000, 4_096)
    sys.path.insert(0, tree)  # this tree's cogrl before any installed one
    import cogrl.agents as A
    from cogrl.agents.presets import preset

    torch.set_num_threads(1)
    for name in names:
        p = preset(name, "CartPole-v1")
        settings = dict(p.hyperparameters)
        if core is not None:
            settings["policy"] = {**settings.get("policy", {}), "core": core}
        agent = A.make(
            name, "CartPole-v1", device="cpu", seed=0, env_kwargs=p.env_kwargs, **settings
        )
        agent.learn(warm)
        start = time.perf_counter()
        agent.learn(timed)
        print(tree, name, core, round(timed / (time.perf_counter() - start)), flush=True)


if __name__ == "__main__":
    main()
