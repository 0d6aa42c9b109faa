"""What ``cogrl train`` reaches with each per-environment preset (cogrl/agents/presets.py).

For every preset (or those named with ``--only``), for each seed: train with the preset's
hyperparameters for its ``timesteps`` (as ``cogrl train --env ID --agent NAME`` does),
then evaluate the final policy deterministically: 20 episodes for CartPole-v1 (the
learning check's protocol), 1,000 test-split episodes for the glimpse tasks. The same
checks, for seed 0, run in ``pytest -m learning``.

    python benchmarks/presets.py --write            # all presets, seeds 0 1 2
    python benchmarks/presets.py --only dqn:CartPole-v1 --seeds 0
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from report import write_section

import cogrl
from cogrl.agents import evaluate
from cogrl.agents.presets import PRESETS
from cogrl.runner import RunSpec, train

SECTION = "## Presets: what `cogrl train` reaches with its defaults"


def run(agent_name: str, env_id: str, seed: int, threads: int) -> dict[str, float]:
    """One ``cogrl train`` run (the runner, with the preset), timed from start to saved
    model; the evaluation below is the benchmark's own."""
    spec = RunSpec(
        env=env_id,
        agent=agent_name,
        seed=seed,
        device="cpu",
        threads=threads,
        video_interval=0,
        eval_episodes=0,
        checkpoint_every=0,
        progress=False,
    )
    with tempfile.TemporaryDirectory() as root:
        spec.root = root
        start = time.perf_counter()
        agent = train(spec).agent
        seconds = time.perf_counter() - start
    if env_id.startswith("cogrl/"):
        result = evaluate(agent, episodes=1000, num_envs=1000, seed=12345, split="test")
        score = result["accuracy"]
    else:
        result = evaluate(agent, episodes=20, num_envs=20, seed=0)
        score = result["mean_return"]
    return {"score": score, "seconds": seconds, "steps": agent.num_timesteps}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", metavar="AGENT:ENV", help="presets to run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md")
    parser.add_argument(
        "--markdown", type=Path, default=Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    chosen = [(agent_name, env_id) for agent_name, envs in PRESETS.items() for env_id in envs]
    if args.only:
        chosen = [pair for pair in chosen if f"{pair[0]}:{pair[1]}" in args.only]
    rows = []
    for agent_name, env_id in chosen:
        results = []
        for seed in args.seeds:
            r = run(agent_name, env_id, seed, args.threads)
            print(f"{agent_name} {env_id} seed {seed}: {r}", file=sys.stderr, flush=True)
            results.append(r)
        scores = [r["score"] for r in results]
        metric = "test accuracy" if env_id.startswith("cogrl/") else "mean return (20 ep.)"
        rows.append(
            f"| {agent_name} | {env_id} | {results[0]['steps']:,} | {metric} | "
            + ", ".join(f"{s:.3g}" for s in scores)
            + f" | {np.median([r['seconds'] for r in results]):.0f} |"
        )
    command = "python benchmarks/presets.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n".join(
        [
            SECTION,
            "",
            "Each preset trained by the runner of `cogrl train` (`cogrl.runner.train`: preset,",
            "checkpoint and model at the end, no videos) for its `timesteps` with the seeds",
            "listed, then its final policy evaluated deterministically (CartPole-v1: 20",
            "episodes; glimpse tasks: 1,000",
            f"test-split episodes). cogrl {cogrl.__version__}, torch {torch.__version__}, "
            f"{args.threads} torch thread(s), {platform.processor() or platform.machine()}.",
            "",
            "```bash",
            command.strip(),
            "```",
            "",
            "| agent | environment | steps | score | per seed | median train s |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    print(text)
    if args.write:
        write_section(args.markdown, SECTION, text)


if __name__ == "__main__":
    main()
