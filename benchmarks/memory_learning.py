"""What memory cores learn on the memory tasks, side by side at the same budget (issue 9).

Every run is PPO from the task's preset (``cogrl/agents/presets.py``) with ``policy.core``
swapped, trained for ``--steps`` environment steps with one torch thread; evaluation is
deterministic (the most likely action), on 500 episodes from seed 1000 unless said
otherwise.

- ``copy``: Copy-v0 trained on lengths 1-20, NTM vs LSTM. Every ``--eval-every`` steps the
  policy is evaluated on lengths 1-20 (200 episodes); *sequences to < 0.1 bits wrong* is
  the training episodes completed when that first held (steps over 22, the mean episode
  of lengths 1-20). At the end: bits wrong per sequence at lengths 10, 20, 40, 80, 120.
  Anchors: the NTM paper (generalises to ~120, an LSTM fails past 20); pytorch-ntm
  converges (supervised, batch 1) in under 30k sequences.
- ``recall``: AssociativeRecall-v0 trained on 2-6 items, evaluated at 6 and 12 items:
  bits wrong per item and the fraction of items recalled without error. Anchor: Collier
  and Beel 2018, perfect generalisation to 12 items (supervised).
- ``repeat``: RepeatCopy-v0 trained on sequences of 2-6 vectors (repeats 1-10), evaluated
  at 6 and 12 vectors: bits wrong per vector of the sequence (summed over its repeats) and
  the fraction of episodes without error.
- ``story``: StoryQA-v0 tasks 1, 2, 3, 6, 7 with the 1k and 10k training sets; test error
  (1 - accuracy over the test split's 1,000 questions, each asked once: ``evaluate(...,
  "all")``) of MemN2N, NTM, DNC and LSTM policies. Anchors (bAbI 1k,
  MemN2N, the authors' code, per-task training): task 1 0.1%, task 2 8.2%, task 3 41.8%;
  bAbI 10k: MemN2N task 2 0.3%, task 3 9.3%; DNC (mean of 20 runs) task 1 9.0%, task 2
  39.2%, task 3 39.6%. Those are supervised; here the answer is learnt from a reward.
- ``delayed``: DelayedRecall-v0 at delays 1, 4, 16, 64 and 256: the longest delay each core
  solves (>= 95% correct) within the budget. Rollouts are as long as an episode (n_steps
  the delay + 2, rounded up to 16), so that the gradient from the answer reaches the cue;
  MemN2N gets a memory of 512 steps (its default 50 would hold no cue past delay 48).

``--set KEY=VALUE`` sets a hyperparameter of every run over the preset's (as ``cogrl train
--set``): ``--set answer_coef=1`` gives the answer-supervised row of a benchmark, whose
section title then names it (pure reinforcement is the default).

    python benchmarks/memory_learning.py copy --steps 1000000 --write
    python benchmarks/memory_learning.py recall --steps 500000 --write
    python benchmarks/memory_learning.py story --steps 200000 --write
    python benchmarks/memory_learning.py delayed --steps 100000 --write
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch
from report import write_section
from throughput import machine

import cogrl.agents
from cogrl.agents import evaluate
from cogrl.agents.presets import preset
from cogrl.runs import parse_overrides

EVAL_SEED = 1000
COPY_LENGTHS = (10, 20, 40, 80, 120)
RECALL_ITEMS = (6, 12)
STORY_TASKS = (1, 2, 3, 6, 7)
STORY_SIZES = (1000, 10000)
DELAYS = (1, 4, 16, 64, 256)
CORE_SETTINGS: dict[str, dict[str, Any]] = {
    "lstm": {},
    "gru": {},
    "ntm": {},
    "dnc": {},
    "memn2n": {},
}


def make_agent(env_id: str, core: str, seed: int, env_kwargs: dict | None = None, **overrides: Any):
    p = preset("ppo", env_id)
    extra_policy = overrides.pop("policy", {})
    hyperparameters = {**p.hyperparameters, **overrides}
    policy = {**hyperparameters.pop("policy", {})}
    if policy.get("core") != core:
        # The preset's core-specific settings do not carry over to another core.
        policy = {
            k: v
            for k, v in policy.items()
            if k in ("hidden_sizes", "activation", "core_size", "share_torso")
        }
        policy.update(core=core, **CORE_SETTINGS[core])
    policy.update(extra_policy)
    return cogrl.agents.make(
        "ppo",
        env_id,
        seed=seed,
        env_kwargs={**p.env_kwargs, **(env_kwargs or {})},
        policy=policy,
        **hyperparameters,
    )


def train(agent, steps: int, every: int | None = None, check=None) -> float:
    """Train ``steps`` steps in chunks of ``every``; ``check(agent)`` after each chunk may
    record when a goal was first met. Returns the wall time of training."""
    start = time.perf_counter()
    every = every or steps
    while agent.num_timesteps < steps:
        agent.learn(min(every, steps - agent.num_timesteps), reset_num_timesteps=False)
        if check is not None:
            check(agent)
    return time.perf_counter() - start


def copy_benchmark(args) -> list[str]:
    top = args.max_length
    lengths = COPY_LENGTHS if top == 20 else (top, 2 * top)
    mean_steps = (1 + top) + 1  # 2 E[L] + 1 for L uniform in 1..top
    lines = [
        f"| core | sequences to < 0.1 bits wrong (lengths 1-{top}) | "
        + " | ".join(f"bits wrong, length {n}" for n in lengths)
        + " | wall time |",
        "|---|---|" + "---|" * len(lengths) + "---|",
    ]
    for core in args.cores or ("ntm", "lstm"):
        agent = make_agent(
            "cogrl/Copy-v0", core, args.seed, {"max_length": top}, **parse_sets(args.set)
        )
        reached: list[float | None] = [None]

        def check(agent, core=core, reached=reached) -> None:
            if reached[0] is None:
                r = evaluate(agent, episodes=200, seed=EVAL_SEED)
                print(f"copy {core} {agent.num_timesteps}: {r}", file=sys.stderr, flush=True)
                if r["bit_errors"] < 0.1:
                    reached[0] = agent.num_timesteps / mean_steps

        seconds = train(agent, args.steps, args.eval_every, check)
        errors = []
        for n in lengths:
            r = evaluate(agent, episodes=args.episodes, seed=EVAL_SEED, min_length=n, max_length=n)
            errors.append(f"{r['bit_errors']:.2f} ({r['bit_errors'] / (8 * n):.0%})")
        to = "not within the budget" if reached[0] is None else f"~{reached[0]:,.0f}"
        lines.append(f"| {core} | {to} | " + " | ".join(errors) + f" | {seconds / 60:.1f} min |")
        print(lines[-1], flush=True)
    return lines


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` hyperparameters over the preset's (as ``cogrl train --set``)."""
    hyperparameters, env_kwargs = parse_overrides(items)
    if env_kwargs:
        raise SystemExit(f"--set takes hyperparameters here, got env. keys {sorted(env_kwargs)}")
    return hyperparameters


def recall_benchmark(args) -> list[str]:
    # One item is recalled per episode: its bits wrong are the episode's.
    return items_benchmark(args, "cogrl/AssociativeRecall-v0", "items", per_item=False)


def repeat_benchmark(args) -> list[str]:
    # An item is one vector of the sequence; its bits wrong are summed over its repeats.
    return items_benchmark(args, "cogrl/RepeatCopy-v0", "length", per_item=True)


def items_benchmark(args, env_id: str, size: str, per_item: bool) -> list[str]:
    """Train on 2-6 items (``size``: the environment's name for their count), evaluate at
    6 and 12: bits wrong per item and the fraction of episodes without a bit wrong."""
    lines = [
        "| core | "
        + " | ".join(f"{n} items: bits wrong per item (episodes exact)" for n in RECALL_ITEMS)
        + " | wall time |",
        "|---|" + "---|" * len(RECALL_ITEMS) + "---|",
    ]
    for core in args.cores or ("ntm", "lstm"):
        train_sizes = {f"min_{size}": 2, f"max_{size}": 6}
        agent = make_agent(env_id, core, args.seed, train_sizes, **parse_sets(args.set))
        seconds = train(agent, args.steps)
        cells = []
        for n in RECALL_ITEMS:
            sizes = {f"min_{size}": n, f"max_{size}": n}
            r = evaluate(agent, episodes=args.episodes, seed=EVAL_SEED, **sizes)
            print(f"{env_id} {core} {n}: {r}", file=sys.stderr, flush=True)
            errors = r["bit_errors"] / (n if per_item else 1)
            cells.append(f"{errors:.2f} ({r['accuracy']:.0%})")
        lines.append(f"| {core} | " + " | ".join(cells) + f" | {seconds / 60:.0f} min |")
        print(lines[-1], flush=True)
    return lines


def story_benchmark(args) -> list[str]:
    cores = args.cores or ("memn2n", "ntm", "dnc", "lstm")
    lines = [
        "| task | training questions | " + " | ".join(f"{c} test error" for c in cores) + " |",
        "|---|---|" + "---|" * len(cores),
    ]
    for task in args.tasks or STORY_TASKS:
        for size in args.sizes or STORY_SIZES:
            cells = []
            for core in cores:
                env_kwargs = {"task": task, "training_stories": size}
                agent = make_agent(
                    "cogrl/StoryQA-v0", core, args.seed, env_kwargs, **parse_sets(args.set)
                )
                seconds = train(agent, args.steps)
                # Each test question once (the papers' test error).
                r = evaluate(agent, episodes="all", seed=EVAL_SEED, split="test")
                print(
                    f"story {task} {size} {core}: {r} {seconds:.0f} s", file=sys.stderr, flush=True
                )
                cells.append(f"{1 - r['accuracy']:.1%}")
            lines.append(f"| {task} | {size:,} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    return lines


def delayed_benchmark(args) -> list[str]:
    cores = args.cores or ("lstm", "gru", "ntm", "dnc", "memn2n")
    lines = [
        "| core | " + " | ".join(f"delay {d}" for d in DELAYS) + " | longest solved |",
        "|---|" + "---|" * len(DELAYS) + "---|",
    ]
    for core in cores:
        cells, longest = [], None
        for delay in DELAYS:
            # Rollouts hold whole episodes, so that the answer's gradient reaches the cue.
            n_steps = 16 * -(-(delay + 2) // 16)
            memory = {"policy": {"memory_size": 512}} if core == "memn2n" else {}
            agent = make_agent(
                "cogrl/DelayedRecall-v0",
                core,
                args.seed,
                {"delay": delay},
                n_steps=n_steps,
                batch_size=16 * n_steps,
                **{**memory, **parse_sets(args.set)},
            )
            train(agent, args.steps)
            r = evaluate(agent, episodes=args.episodes, seed=EVAL_SEED, delay=delay)
            cells.append(f"{r['accuracy']:.0%}")
            print(f"delayed {core} {delay}: {r}", file=sys.stderr, flush=True)
            if r["accuracy"] >= 0.95:
                longest = delay
        lines.append(f"| {core} | " + " | ".join(cells) + f" | {longest or 'none'} |")
        print(lines[-1], flush=True)
    return lines


BENCHMARKS = {
    "copy": ("Copy by reinforcement learning: NTM vs LSTM", copy_benchmark),
    "recall": ("Associative recall: NTM vs LSTM", recall_benchmark),
    "repeat": ("Repeat copy: NTM vs LSTM", repeat_benchmark),
    "story": ("Story question answering: MemN2N, NTM, DNC, LSTM", story_benchmark),
    "delayed": ("Delayed recall: the longest delay each core solves", delayed_benchmark),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark", choices=list(BENCHMARKS))
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--eval-every", type=int, default=100_000)
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cores", nargs="+", choices=list(CORE_SETTINGS))
    parser.add_argument("--tasks", nargs="+", type=int, choices=STORY_TASKS)
    parser.add_argument("--sizes", nargs="+", type=int, choices=STORY_SIZES)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=20, help="copy: train on 1..N")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a hyperparameter"
    )
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    title, run = BENCHMARKS[args.benchmark]
    if args.set:
        title += f" ({', '.join(args.set)})"
    command = " ".join(["python benchmarks/memory_learning.py", *sys.argv[1:]])
    lines = [
        f"## Memory tasks: {title}",
        "",
        f"Command: `{command}` (PPO from the task's preset, {args.steps:,} steps per run, "
        f"seed {args.seed}, {args.threads} torch thread(s); see the script's docstring).",
        "",
        *(f"- {line}" for line in machine("cpu")),
        "",
        *run(args),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(Path(__file__).resolve().parent.parent / "BENCHMARKS.md", lines[0], text)


if __name__ == "__main__":
    main()
