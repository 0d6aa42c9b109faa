"""What each part of ``compile=True`` adds to PPO on CartPole-v1 on the CPU: an ablation,
interleaved in one process so that the machine's load falls on every variant alike.

Variants (RL Zoo's CartPole-v1 hyperparameters, cogrl's preset, one thread):

- ``eager``: ``compile=False``.
- ``compiled loss``: the minibatch loss compiled, the autograd engine's backward, the
  clipping and torch's fused Adam eager (``compile=True`` before the fused update).
- ``fused, 1 step per call``: loss, ``torch.func`` gradients, clipping and Adam as one
  compiled call per minibatch (:func:`cogrl.agents.compiling.fused_update`).
- ``fused, 2 steps per call``: two minibatches per call (``ppo.STEPS_PER_CALL``).
- ``fused, 2 steps per call, tanh as sigmoid``: and the MLPs' ``tanh`` compiled as
  ``2 sigmoid(2x) - 1`` (:class:`cogrl.nn.encoders.Tanh`): what ``compile=True`` runs.

The first four variants build their MLPs with ``torch.nn.Tanh``, and the first three have
the fused update switched off or narrowed by patching the agent, as the ablation needs.
Each variant runs in a process of its own (Dynamo caches compiled code per function, and
agents in one process would check each other's guards), round-robin over the rounds, its
compiling (warm-up) timed apart.

    python benchmarks/compile_ablation.py              # 3 rounds of 20,480 steps each
    python benchmarks/compile_ablation.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

import cogrl.agents.ppo as ppo
import cogrl.nn.encoders as encoders
from cogrl.agents import make
from cogrl.agents.presets import preset

ENV = "CartPole-v1"

# name -> (compile, fused update, steps per call, cogrl's tanh)
VARIANTS = {
    "eager": (False, False, 1, False),
    "compiled loss": (True, False, 1, False),
    "fused, 1 step per call": (True, True, 1, False),
    "fused, 2 steps per call": (True, True, 2, False),
    "fused, 2 steps per call, tanh as sigmoid": (True, True, 2, True),
}


def build(name: str, seed: int):
    """The variant's agent after its warm-up (one update at least: compiling); the
    warm-up's seconds."""
    compiled, fused, per_call, own_tanh = VARIANTS[name]
    encoders.ACTIVATIONS["tanh"] = encoders.Tanh if own_tanh else nn.Tanh
    try:
        agent = make("ppo", ENV, seed=seed, compile=compiled, **preset("ppo", ENV).hyperparameters)
    finally:
        encoders.ACTIVATIONS["tanh"] = encoders.Tanh
    if not fused:
        agent.fused_update = lambda *args, **kwargs: None
    ppo.STEPS_PER_CALL = per_call
    start = time.perf_counter()
    agent.learn(2_048)
    return agent, time.perf_counter() - start


def run_variant(name: str, steps: int, threads: int) -> None:
    """In a child process: build, warm up, time ``steps``; print ``rate warm_up``."""
    torch.set_num_threads(threads)
    agent, warm_up = build(name, seed=0)
    start = time.perf_counter()
    agent.learn(steps, reset_num_timesteps=False)
    print(f"{steps / (time.perf_counter() - start)} {warm_up}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20_480, help="steps timed per run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant is not None:
        run_variant(args.variant, args.steps, args.threads)
        return
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    warm_up: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name in VARIANTS:
            command = [sys.executable, __file__, "--variant", name, "--steps", str(args.steps)]
            command += ["--threads", str(args.threads)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rate, warm = map(float, out.split()[-2:])
            rates[name].append(rate)
            warm_up[name].append(warm)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"PPO on {ENV}, preset hyperparameters, {args.threads} thread(s), {args.rounds} runs "
        f"of {args.steps:,} steps per variant, round-robin; load average at the end: {load}\n"
    )
    print("| variant | steps/s (median; each run) | vs eager | warm-up s (first run) |")
    print("|---|---:|---:|---:|")
    eager = statistics.median(rates["eager"])
    for name in VARIANTS:
        rate = statistics.median(rates[name])
        each = ", ".join(f"{r:,.0f}" for r in rates[name])
        print(f"| {name} | {rate:,.0f} ({each}) | {rate / eager:.2f}x | {warm_up[name][0]:.1f} |")


if __name__ == "__main__":
    main()
