"""Credit assignment on Copy: what factored credit, masked ignored steps, per-part values
and answer supervision each buy, side by side at one budget (issue 20).

PPO from the Copy preset (``cogrl/agents/presets.py``) with an LSTM core (an NTM costs ~10x
per step on the CPU), trained on lengths 1..``--max-length`` for ``--steps`` environment
steps, one torch thread, one seed; then bits wrong per sequence, deterministic, on 500
episodes of the training lengths from seed 1000. Rows:

- ``scalar, unmasked``: the preset as it was before issue 20 (one reward, one ratio per
  step, every step credited);
- ``scalar``: the steps the environment ignores (the input phase) get no policy gradient;
- ``factored, shared V``: one advantage and ratio per bit, baseline ``V(s) / 8``;
- ``factored, V per bit``: a critic of 8 outputs, each regressed on its bit's return;
- ``factored, whole episodes``: factored credit, and each unfinished episode replayed from
  its first step (``whole_episodes=True``), so that the answer's gradient reaches the
  inputs of an earlier rollout;
- ``answer supervision``: the scalar update plus the targets' negative log-likelihood
  (``answer_coef=1``): the supervised anchor, not pure reinforcement.

    python benchmarks/credit.py --steps 131072 --max-length 5
"""

from __future__ import annotations

import argparse
import time

import torch

import cogrl.agents
from cogrl.agents import evaluate
from cogrl.agents.presets import preset

ROWS = {
    "scalar, unmasked": {"mask_ignored_actions": False},
    "scalar": {},
    "factored, shared V": {"factored_credit": True},
    "factored, V per bit": {"factored_credit": True, "part_values": True},
    "factored, whole episodes": {"factored_credit": True, "whole_episodes": True},
    "answer supervision": {"answer_coef": 1.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=131_072)
    parser.add_argument("--max-length", type=int, default=5)
    parser.add_argument("--num-envs", type=int, default=None, help="default: the preset's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    found = preset("ppo", "cogrl/Copy-v0")
    env_kwargs = {"max_length": args.max_length}
    print(f"PPO, Copy lengths 1-{args.max_length}, LSTM, {args.steps:,} steps, seed {args.seed}")
    print("| row | bits wrong / sequence | sequences right | steps/s |")
    print("|---|---:|---:|---:|")
    for row in args.rows:
        hp = {**found.hyperparameters, **ROWS[row]}
        hp["policy"] = {**hp["policy"], "core": "lstm"}
        for name in ("memory_size", "memory_width"):
            hp["policy"].pop(name, None)
        if args.num_envs:
            hp["num_envs"] = args.num_envs
        agent = cogrl.agents.make(
            "ppo", "cogrl/Copy-v0", device="cpu", seed=args.seed, env_kwargs=env_kwargs, **hp
        )
        start = time.perf_counter()
        agent.learn(args.steps)
        fps = agent.num_timesteps / (time.perf_counter() - start)
        result = evaluate(agent, episodes=500, seed=1000)
        print(
            f"| {row} | {result['bit_errors']:.2f} | {result['accuracy']:.3f} | {fps:,.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
