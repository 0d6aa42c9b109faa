"""How many torch CPU threads a training run should use: steps per second of learners with
1 and 2 intra-op threads, on an idle machine and with another process keeping one core
busy, for a small network and larger ones. Chooses the default of ``cogrl train
--threads`` (``cogrl.runner.DEFAULT_THREADS``).

    python benchmarks/threads.py --write

Each cell is one ``learn`` call in a fresh process (torch's thread pool is set once per
process), after a warm-up call; the busy machine has a second process spinning on one
core, as a second training or a sweep's trial would.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from report import write_section

import cogrl

SECTION = "## CPU threads: the default of `cogrl train --threads`"

CASES = {
    "PPO, CartPole-v1, MLP 64x64 (preset)": (
        "ppo", "CartPole-v1", {}, {"preset": True}, 16_384,
    ),
    "PPO, CartPole-v1, MLP 512x512": (
        "ppo", "CartPole-v1", {}, {"policy": {"hidden_sizes": [512, 512]}}, 8_192,
    ),
    "PPO, GlimpseDigits (discrete), glimpse network + GRU 128 (preset)": (
        "ppo", "cogrl/GlimpseDigits-v0", {"action_mode": "discrete"}, {"preset": True}, 32_768,
    ),
    "RAM, GlimpseDigits, glimpse network + GRU 128 (defaults)": (
        "ram", "cogrl/GlimpseDigits-v0", {}, {}, 65_536,
    ),
}  # fmt: skip

CHILD = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
import cogrl.agents as A
from cogrl.agents.presets import preset
name, env, env_kwargs, hp, steps = json.loads(sys.argv[2])
if hp.pop("preset", False):
    p = preset(name, env)
    env_kwargs, hp = {**p.env_kwargs, **env_kwargs}, {**p.hyperparameters, **hp}
agent = A.make(name, env, device="cpu", seed=0, env_kwargs=env_kwargs, **hp)
agent.learn(steps // 4)  # warm-up
start = time.perf_counter()
agent.learn(steps)
print(json.dumps(steps / (time.perf_counter() - start)))
"""


def steps_per_second(case: tuple, threads: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(threads), json.dumps(case)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md")
    parser.add_argument(
        "--markdown", type=Path, default=Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
    )
    args = parser.parse_args(argv)
    rows = []
    for load in ("idle", "busy"):
        spinner = None
        if load == "busy":
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)
        try:
            for label, case in CASES.items():
                rates = {t: steps_per_second(case, t) for t in args.threads}
                rows.append((load, label, rates))
                print(load, label, {t: round(r) for t, r in rates.items()}, flush=True)
        finally:
            if spinner is not None:
                spinner.kill()
    cpus = os.cpu_count()
    head = " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in args.threads)
    lines = [
        SECTION,
        "",
        "Environment steps per second while learning (one `learn` call after a warm-up, each",
        "in its own process), by torch's intra-op threads, with the machine idle and with a",
        "second process spinning on one core. Produced by `benchmarks/threads.py`:",
        "",
        "```",
        "python benchmarks/threads.py --write",
        "```",
        "",
        f"- CPU: {platform.processor() or platform.machine()}, {cpus} logical CPUs; torch "
        f"{torch.__version__}, cogrl {cogrl.__version__}; no GPU was available to this session, "
        "so the GPU rows are not measured (on a GPU the network runs there, and the CPU threads "
        "only drive the environment copies and the Python loop).",
        "",
        f"| machine | learner and network | {head} | best |",
        "|---|---|" + "---:|" * len(args.threads) + "---|",
    ]
    for load, label, rates in rows:
        best = max(rates, key=rates.get)
        cells = " | ".join(f"{rates[t]:,.0f}" for t in args.threads)
        lines.append(f"| {load} | {label} | {cells} | {best} |")
    lines += [
        "",
        "`cogrl train` uses 1 thread unless `--threads N` says otherwise "
        "(`cogrl.runner.DEFAULT_THREADS`; `RunSpec(threads=N)` in Python).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(args.markdown, SECTION, text)


if __name__ == "__main__":
    main()
