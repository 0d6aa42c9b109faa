"""Speed of memory-core policies: PPO's environment steps per second on ``cogrl/Copy-v0``
with each core at 1, 64 and 1024 environments, against per-sequence training as in
pytorch-ntm (the NTM paper's copy task, batch 1).

- cogrl: PPO with ``policy.core`` in ``lstm``, ``ntm``, ``dnc``, ``memn2n`` (core_size
  100, as pytorch-ntm's controller; the NTM's memory 128 x 20 with one read and one write
  head, as the paper's copy task; the DNC and MemN2N at their defaults), an MLP encoder
  of 64, ``n_steps=32``, 4 minibatches, 2 epochs. A first rollout and update warm up; then
  updates run until ``--seconds`` have passed, and steps/s is the steps of those updates
  over their wall time (acting, environment steps and learning together).
- The anchor: pytorch-ntm's ``EncapsulatedNTM`` (controller LSTM of 100, 128 x 20 memory,
  one head of each kind) trained as its ``train.py`` does: one sequence of length 1-20 per
  batch, RMSprop, BCE loss. Sequences/s over ``--seconds``. Its code is read from
  ``--pytorch-ntm``, a folder holding its ``ntm`` package (from
  github.com/loudinthecloud/pytorch-ntm, BSD-3-Clause), e.g.
  ``git --git-dir=<mirror> archive HEAD ntm | tar -x -C /tmp/pytorch-ntm``.
- Sequences/s for cogrl is steps/s over the mean Copy episode of lengths 1-20
  (``2 * 10.5 + 1 = 22`` steps: the sequence, the delimiter, the answer).

Goal (issue 9): at 1024 environments, >= 100x the anchor's sequences per second.

    python benchmarks/memory_speed.py --pytorch-ntm /tmp/pytorch-ntm          # ~6 minutes
    python benchmarks/memory_speed.py --pytorch-ntm /tmp/pytorch-ntm --write  # + BENCHMARKS.md

``--preset`` measures instead PPO on ``cogrl/Copy-v0`` with the Copy preset's settings
(``COPY_PPO``: 64 steps per rollout, 10 epochs of 512-step minibatches, Adam at 3e-3, gamma
and GAE lambda 0, no entropy bonus; the preset's factored credit and whole episodes left at
PPO's defaults, off) at ``--envs`` environments (default 256), for each of ``--cores``: the
preset's policy (core_size 100, an MLP encoder of 64, actor and critic sharing the torso),
its NTM for ``ntm`` (128 x 20, one head of each kind), the other cores at their defaults.
A first rollout and update warm up; then whole updates run until ``--seconds`` have passed
(at least one), and steps/s is their steps over their wall time; steps per CPU second,
over this process's CPU time, is less disturbed by other work on the machine, whose load
average each line gives before and after the measurement. It prints only: compare two
versions by the same command on each, one after the other.

    python benchmarks/memory_speed.py --preset --cores ntm dnc --seconds 60   # ~10 minutes
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from report import write_section
from throughput import machine

import cogrl.agents

CORES = {
    "lstm": {},
    "ntm": {"memory_size": 128, "memory_width": 20},
    "dnc": {},
    "memn2n": {},
}
ENVS = (1, 64, 1024)
# The Copy preset's PPO settings that --preset measures (the preset may change: pinned here).
COPY_PPO = {
    "n_steps": 64,
    "n_epochs": 10,
    "batch_size": 512,
    "learning_rate": 3e-3,
    "gamma": 0.0,
    "gae_lambda": 0.0,
    "ent_coef": 0.0,
}
COPY_POLICY = {"core_size": 100, "hidden_sizes": [64], "share_torso": True}
COPY_MEAN_STEPS = 2 * 10.5 + 1  # lengths uniform in 1..20: sequence, delimiter, answer


def cogrl_steps_per_second(core: str, num_envs: int, seconds: float) -> float:
    n_steps = 32
    agent = cogrl.agents.make(
        "ppo",
        "cogrl/Copy-v0",
        device="cpu",
        seed=0,
        num_envs=num_envs,
        n_steps=n_steps,
        batch_size=max(n_steps * num_envs // 4, n_steps),
        n_epochs=2,
        policy={"core": core, "core_size": 100, "hidden_sizes": [64], **CORES[core]},
    )
    rollout = n_steps * num_envs
    agent.learn(rollout)  # warm-up: first allocations, first update
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        agent.learn(rollout, reset_num_timesteps=False)
        steps += rollout
    return steps / (time.perf_counter() - start)


def preset_steps_per_second(core: str, num_envs: int, seconds: float) -> tuple[float, float]:
    """PPO's steps per second on Copy with the preset's settings (``COPY_PPO``) at
    ``num_envs`` environments: per second of wall time, and per CPU second of this process."""
    agent = cogrl.agents.make(
        "ppo",
        "cogrl/Copy-v0",
        device="cpu",
        seed=0,
        num_envs=num_envs,
        policy={**COPY_POLICY, "core": core, **CORES[core]},
        **COPY_PPO,
    )
    rollout = num_envs * COPY_PPO["n_steps"]
    agent.learn(rollout)  # warm-up: first allocations, first update
    steps, start, cpu = 0, time.perf_counter(), time.process_time()
    while steps == 0 or time.perf_counter() - start < seconds:
        agent.learn(rollout, reset_num_timesteps=False)
        steps += rollout
    return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu)


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def pytorch_ntm_sequences_per_second(folder: Path, seconds: float) -> float:
    """pytorch-ntm's copy-task training step (its train.py's train_batch), batch 1."""
    sys.path.insert(0, str(folder))
    from ntm.aio import EncapsulatedNTM

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    net = EncapsulatedNTM(9, 8, 100, 1, 1, 128, 20)
    criterion = torch.nn.BCELoss()
    optimizer = torch.optim.RMSprop(net.parameters(), momentum=0.9, alpha=0.95, lr=1e-4)

    def train_one() -> None:
        length = random.randint(1, 20)
        seq = torch.from_numpy(np.random.binomial(1, 0.5, (length, 1, 8))).float()
        x = torch.zeros(length + 1, 1, 9)
        x[:length, :, :8] = seq
        x[length, :, 8] = 1.0
        optimizer.zero_grad()
        net.init_sequence(1)
        for i in range(length + 1):
            net(x[i])
        y = torch.zeros(seq.size())
        for i in range(length):
            y[i], _ = net()
        loss = criterion(y, seq)
        loss.backward()
        for p in net.parameters():  # train.py's clip_grads
            p.grad.data.clamp_(-10, 10)
        optimizer.step()

    train_one()
    sequences, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        train_one()
        sequences += 1
    return sequences / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pytorch-ntm", type=Path, help="folder with its ntm/")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cores", nargs="+", default=list(CORES), choices=list(CORES))
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md")
    parser.add_argument(
        "--preset", action="store_true", help="PPO with the Copy preset's settings, see above"
    )
    parser.add_argument("--envs", type=int, default=256, help="environments for --preset")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.preset:
        print(f"cogrl from {Path(cogrl.__file__).parent}, {args.threads} thread(s)", flush=True)
        for core in args.cores:
            before = load()
            sps, cpu = preset_steps_per_second(core, args.envs, args.seconds)
            print(
                f"{core} {args.envs} envs, Copy preset: {sps:,.1f} steps/s, {cpu:,.1f} steps "
                f"per CPU second (load average before {before}, after {load()})",
                flush=True,
            )
        return
    if args.pytorch_ntm is None:
        parser.error("--pytorch-ntm is required (except with --preset)")

    anchor = pytorch_ntm_sequences_per_second(args.pytorch_ntm, args.seconds)
    print(f"pytorch-ntm batch 1: {anchor:.1f} sequences/s", file=sys.stderr, flush=True)
    lines = [
        "## Memory cores: PPO steps per second on Copy (vs pytorch-ntm, batch 1)",
        "",
        f"Command: `{' '.join(['python benchmarks/memory_speed.py', *sys.argv[1:]])}` "
        f"({args.seconds:g} s per measurement, "
        f"{args.threads} torch thread(s); settings in the script's docstring). Sequences/s: "
        f"steps/s / {COPY_MEAN_STEPS:g} (the mean Copy episode); x anchor: cogrl's "
        "sequences/s over pytorch-ntm's supervised training at batch 1 "
        f"(**{anchor:.1f} sequences/s** in this run).",
        "",
        *(f"- {line}" for line in machine("cpu")),
        "",
        "| core | " + " | ".join(f"{n} envs: steps/s (x anchor)" for n in ENVS) + " |",
        "|---|" + "---|" * len(ENVS),
    ]
    best = {}
    for core in args.cores:
        cells = []
        for n in ENVS:
            sps = cogrl_steps_per_second(core, n, args.seconds)
            ratio = sps / COPY_MEAN_STEPS / anchor
            best[(core, n)] = ratio
            print(f"{core} {n} envs: {sps:,.0f} steps/s, {ratio:.1f}x", file=sys.stderr, flush=True)
            cells.append(f"{sps:,.0f} ({ratio:.1f}x)")
        lines.append(f"| {core} | " + " | ".join(cells) + " |")
    ntm = best.get(("ntm", 1024))
    if ntm is not None:
        lines += [
            "",
            f"Goal (issue 9): the NTM policy at 1024 environments >= 100x the anchor's "
            f"sequences/s: **{ntm:.0f}x, {'met' if ntm >= 100 else 'not met'}**.",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(Path(__file__).resolve().parent.parent / "BENCHMARKS.md", lines[0], text)


if __name__ == "__main__":
    main()
