"""What ``cogrl train`` costs beside the learning: its wall time with every default (final
evaluation, rollout videos, checkpoints, run folder) against ``agent.learn`` for the same
steps, side by side in one run, both with one torch thread.

    python benchmarks/cli_overhead.py --write

Each side runs in its own process, as a user runs it: ``cogrl train --env ID --agent NAME
--steps N`` (only ``--runs-dir`` added, a temporary folder), and a script that imports cogrl,
makes the same agent (the preset ``cogrl train`` applies) and calls ``agent.learn(N)``. The
script reports the ``learn`` call's own time too. The sides alternate for ``--rounds``
rounds and each keeps its fastest round (the one least disturbed by other work on the
machine). Goal (issue 8): ``cogrl train`` at most 2x ``agent.learn``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import write_section
from throughput import machine

from cogrl import runner

SECTION = "## `cogrl train` beside `agent.learn`: what the defaults cost"
GOAL = 2.0

#: (label, env, agent, steps, why these steps)
CASES = [
    ("PPO on CartPole-v1 (preset)", "CartPole-v1", "ppo", 32_768, "the issue's run"),
    ("RAM on GlimpseDigits", "cogrl/GlimpseDigits-v0", "ram", 1_000_000, "RAM's default"),
]

LEARN = r"""
import json, sys, time
start = time.perf_counter()
import torch
torch.set_num_threads(1)
import cogrl
from cogrl.agents.presets import preset
env, name, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = preset(name, env)  # what `cogrl train` starts from
agent = cogrl.agents.make(
    name, env, device="auto", seed=0, env_kwargs=p.env_kwargs, **p.hyperparameters
)
made = time.perf_counter()
agent.learn(steps)
print(json.dumps({"setup": made - start, "learn": time.perf_counter() - made}))
"""


def run_train(env: str, agent: str, steps: int, root: Path) -> float:
    cogrl = Path(sys.executable).with_name("cogrl")  # the venv's console script
    command = ["train", "--env", env, "--agent", agent, "--steps", str(steps)]
    start = time.perf_counter()
    subprocess.run(
        [str(cogrl), *command, "--runs-dir", str(root)],
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - start


def run_learn(env: str, agent: str, steps: int) -> tuple[float, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", LEARN, env, agent, str(steps)],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    return wall, json.loads(done.stdout.strip().splitlines()[-1])["learn"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md")
    parser.add_argument(
        "--markdown", type=Path, default=Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
    )
    args = parser.parse_args(argv)
    about = machine("cpu")
    rows = []
    with tempfile.TemporaryDirectory(prefix="cogrl-cli-overhead-") as tmp:
        for label, env, agent, steps, why in CASES:
            train, script, learn = [], [], []
            for _ in range(args.rounds):
                train.append(run_train(env, agent, steps, Path(tmp)))
                wall, alone = run_learn(env, agent, steps)
                script.append(wall)
                learn.append(alone)
                print(label, f"train {train[-1]:.1f} s, script {wall:.1f} s, learn {alone:.1f} s")
            rows.append((label, env, agent, steps, why, min(train), min(script), min(learn)))
    lines = [
        SECTION,
        "",
        "Wall time of `cogrl train` with every default (final evaluation, rollout videos,",
        "checkpoint, model) against a script that makes the same agent (with the preset",
        "`cogrl train` applies) and calls `agent.learn` for the same steps, each in its own",
        "process, one torch thread (`cogrl train`'s default; the script sets it). The sides",
        f"alternate for {args.rounds} rounds and each keeps its fastest. Produced by",
        "`benchmarks/cli_overhead.py`:",
        "",
        "```",
        "python benchmarks/cli_overhead.py --write",
        "```",
        "",
        *(f"- {line}" for line in about),
        "",
        "| run | steps | `cogrl train` | script | its `learn` call | train adds "
        "| train / script | train / learn |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, env, agent, steps, why, train, script, learn in rows:
        lines.append(
            f"| {label}: `cogrl train --env {env} --agent {agent} --steps {steps}` | {steps:,} "
            f"({why}) | {train:.1f} s | {script:.1f} s | {learn:.1f} s | {train - script:.1f} s "
            f"| {train / script:.2f}x | {train / learn:.2f}x |"
        )
    fair = max(train / script for *_, train, script, _ in rows)
    strict = max(train / learn for *_, train, _, learn in rows)
    start = min(script - learn for *_, script, learn in rows)
    lines += [
        "",
        f"Goal: `cogrl train` at most {GOAL:g}x `agent.learn` for the same steps, with the "
        "defaults. Side by side as processes (both pay what it takes to start Python, import "
        f"torch and build the agent, at least {start:.1f} s here), `train` takes at most "
        f"{fair:.2f}x the script: {'met' if fair <= GOAL else '**not met**'}. Against the "
        f"`learn` call alone, without that start, it takes up to {strict:.2f}x: "
        + ("met too." if strict <= GOAL else "**not met** in that reading."),
        "",
        "What `train` adds to the learning: the final evaluation (as many episodes as "
        f"{runner.EVAL_STEP_BUDGET:,} steps hold: {runner.default_eval_episodes(500)} on "
        f"CartPole-v1, {runner.default_eval_episodes(6):,} on GlimpseDigits), one final "
        f"rollout of at most {runner.VIDEO_MAX_SECONDS:g} s rendered once for the TensorBoard "
        "GIF and the MP4 (CartPole draws a 600x400 frame with pygame in about 4 ms: 500 "
        "frames at its 50 fps), the GIFs during training where episodes are short (4 on "
        "GlimpseDigits, none on this CartPole run), the checkpoint and the model. Before issue "
        "8 the CartPole run took 76 s: 1,000 evaluation episodes (about 500,000 steps), four "
        "GIFs of two whole episodes and an MP4 of four (2,000 frames at 2 fps).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(args.markdown, SECTION, text)


if __name__ == "__main__":
    main()
