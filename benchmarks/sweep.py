"""`cogrl sweep` on Ray against the same trials run one after another with `cogrl train`.

The sweep: PPO with its presets on CartPole-v1 and cogrl/GlimpseDigits-v0, 5 seeds x 3
learning rates, ``--steps`` environment steps per trial, ``--eval-episodes`` final
episodes, no videos, one torch thread per trial. The two sides, in one run:

- ``sequential``: one ``cogrl train`` process per trial, one after another (what a user's
  shell loop does); the wall time of the loop.
- ``ray``: one ``cogrl sweep`` process (a local Ray instance of ``--cpus`` CPUs, a trial per
  CPU); its wall time, Ray's start and shutdown included.

Trial start overhead: the slot time the sweep did not spend inside trials' training,
``(wall x cpus - sum of trial times) / trials``, against the mean trial time (a trial's
time is Tune's ``time_total_s``: from the trial function's start to its last report).

    python benchmarks/sweep.py --steps 200000 --write   # both sides, plots, BENCHMARKS.md
    python benchmarks/sweep.py --quick         # 2 seeds x 1 rate, 20k steps, prints only
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from report import write_section
from throughput import machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECTION = "## Sweeps: `cogrl sweep` on Ray against `cogrl train` one trial after another"
ENVS = ["CartPole-v1", "cogrl/GlimpseDigits-v0"]
RATES = [3e-4, 1e-3, 3e-3]
FIGURES = ROOT / "docs" / "figures"


def cogrl(*args: str) -> list[str]:
    return [sys.executable, "-m", "cogrl", *args]


def sequential(work: Path, seeds: list[int], rates: list[float], steps: int, episodes: int):
    runs = work / "sequential"
    times = []
    start = time.perf_counter()
    for env in ENVS:
        for rate in rates:
            for seed in seeds:
                t = time.perf_counter()
                subprocess.run(
                    cogrl("train", "--env", env, "--agent", "ppo", "--seed", str(seed),
                          "--set", f"learning_rate={rate}", "--steps", str(steps),
                          "--eval-episodes", str(episodes), "--video-interval", "0",
                          "--runs-dir", str(runs), "--no-progress"),
                    check=True, stdout=subprocess.DEVNULL,
                )  # fmt: skip
                times.append(time.perf_counter() - t)
    return time.perf_counter() - start, times


def on_ray(work: Path, seeds: list[int], rates: list[float], steps: int, episodes: int,
           cpus: int) -> tuple[float, list[dict], Path]:  # fmt: skip
    start = time.perf_counter()
    grid = "learning_rate=[" + ",".join(map(str, rates)) + "]"
    subprocess.run(
        cogrl("sweep", "--env", *ENVS, "--agent", "ppo", "--seeds", *map(str, seeds),
              "--grid", grid, "--steps", str(steps), "--eval-episodes", str(episodes),
              "--num-cpus", str(cpus), "--sweeps-dir", str(work), "--name", "ray"),
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wall = time.perf_counter() - start
    with (work / "ray" / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    return wall, rows, work / "ray"


def markdown(result: dict, command: str, about: list[str], figures: list[str]) -> str:
    r = result
    n = r["trials"]
    overhead = (r["ray_wall"] * r["cpus"] - sum(r["trial_times"])) / n
    mean_trial = sum(r["trial_times"]) / n
    speedup = r["sequential_wall"] / r["ray_wall"]
    lines = [
        SECTION,
        "",
        f"PPO (its presets) on {' and '.join(ENVS)}: {len(r['seeds'])} seeds x "
        f"{len(r['rates'])} learning rates ({', '.join(map(str, r['rates']))}) = {n} trials of "
        f"{r['steps']:,} steps, {r['episodes']} final evaluation episodes, no videos, one torch "
        f"thread each. `sequential` runs one `cogrl train` process per trial, one after another; "
        f"`ray` is one `cogrl sweep` on a local Ray instance of {r['cpus']} CPUs (a trial per "
        "CPU), its start and shutdown included. Produced by:",
        "",
        "```",
        command,
        "```",
        "",
        *[f"- {line}" for line in about],
        "",
        "| side | wall time (s) | per trial (s) | speed-up | goal |",
        "|---|---:|---:|---:|---|",
        f"| sequential `cogrl train` | {r['sequential_wall']:.1f} | "
        f"{r['sequential_wall'] / n:.2f} | 1.0x | |",
        f"| `cogrl sweep` on Ray | {r['ray_wall']:.1f} | {r['ray_wall'] / n:.2f} | "
        f"{speedup:.2f}x | >= 1.8x: {'met' if speedup >= 1.8 else '**not met**'} |",
        "",
        f"Trial start overhead on Ray: {overhead:.2f} s of slot time per trial outside training "
        f"(Ray's start and shutdown, worker start, the final report), against a mean trial "
        f"time of {mean_trial:.2f} s: {100 * overhead / mean_trial:.1f}% (goal < 10%: "
        f"{'met' if overhead < 0.1 * mean_trial else '**not met**'}).",
        "",
    ]
    if figures:
        lines += [
            "The sweep's learning curves, drawn by `cogrl plot` (mean over the 5 seeds with a "
            "95% bootstrap confidence interval, one line per learning rate):",
            "",
            *[f"![{Path(f).stem}]({f})" for f in figures],
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--cpus", type=int, default=os.cpu_count())
    parser.add_argument("--work", type=Path, default=Path("/tmp/cogrl-sweep-bench"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md and figures")
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    seeds = list(range(2 if args.quick else args.seeds))
    rates = RATES[1:2] if args.quick else RATES
    steps = 20_000 if args.quick else args.steps
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    about = machine("cpu")
    os.environ["OMP_NUM_THREADS"] = "1"
    ray_wall, rows, folder = on_ray(args.work, seeds, rates, steps, args.episodes, args.cpus)
    print(f"ray: {ray_wall:.1f} s", flush=True)
    seq_wall, seq_times = sequential(args.work, seeds, rates, steps, args.episodes)
    print(f"sequential: {seq_wall:.1f} s", flush=True)
    result = {
        "seeds": seeds, "rates": rates, "steps": steps, "episodes": args.episodes,
        "cpus": args.cpus, "trials": len(rows), "ray_wall": ray_wall,
        "sequential_wall": seq_wall, "sequential_times": seq_times,
        "trial_times": [float(r["time_s"]) for r in rows],
    }  # fmt: skip
    (args.work / "result.json").write_text(json.dumps(result, indent=1))
    figures: list[str] = []
    if args.write:
        plots = args.work / "plots"
        subprocess.run(
            cogrl("plot", str(folder), "--out", str(plots), "--formats", "png", "--x", "both"),
            check=True,
        )
        FIGURES.mkdir(parents=True, exist_ok=True)
        for png in sorted(plots.glob("*.png")):
            target = FIGURES / f"sweep_{png.name}"
            shutil.copy(png, target)
            figures.append(os.path.relpath(target, ROOT))
    command = " ".join(["python benchmarks/sweep.py", *(sys.argv[1:] if argv is None else argv)])
    text = markdown(result, command, about, figures)
    print(text)
    if args.write:
        write_section(args.markdown, SECTION, text)


if __name__ == "__main__":
    main()
