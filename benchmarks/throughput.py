"""Environment steps per second: cogrl's batched core against Gymnasium's SyncVectorEnv.

For each task (continuous mode) and each number of environments N, in one process:

- ``core``: ``cogrl.envs.make_core(id, num_envs=N, device=...)`` stepped with random valid
  actions as tensors on its device (same-step autoreset inside the core).
- ``sync``: ``gymnasium.vector.SyncVectorEnv`` over N ``gym.make(id)`` environments (CPU,
  numpy actions, same-step autoreset), the way Gymnasium vectorizes any environment.

Both show the same digits (environment i is seeded ``seed + i`` in both) and every episode
lasts ``n_glimpses`` steps. Actions are drawn before timing. Each side is warmed up for one
episode, then the two are timed in alternating rounds, each over whole episodes (so resets
count in their true share) lasting at least ``--budget`` seconds; the best round of each
side counts, the one least disturbed by other work on the machine. A step of N environments
counts as N environment steps.

    python benchmarks/throughput.py                  # full run, writes BENCHMARKS.md
    python benchmarks/throughput.py --quick          # smoke run, prints only
    python benchmarks/throughput.py --device cuda    # the core on the GPU (sync stays on CPU)

``--vectorised`` measures instead CartPole-v1 at ``--vector-n`` (1024) environments, each
side stepped with random actions (numpy for Gymnasium and EnvPool, tensors for cogrl's
cores) for ``--vector-steps`` vector steps per round, best of ``--rounds``:
``SyncVectorEnv`` (same-step autoreset), Gymnasium's ``CartPoleVectorEnv`` (the spec's
vector entry point, next-step autoreset), EnvPool's pool (next-step autoreset), and cogrl's
cores ``make_core("CartPole-v1")`` (``gym.make`` copies) and ``make_core(
"envpool:CartPole-v1")`` (EnvPool with same-step autoreset). EnvPool runs on one thread
(``num_threads=1``). It writes the subsection ``VECTOR_SUBSECTION`` of the section.

    python benchmarks/throughput.py --vectorised --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from textwrap import fill
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from report import write_section

import cogrl
from cogrl.envs import make_core

TASKS = ["cogrl/GlimpseDigits-v0", "cogrl/TranslatedDigits-v0", "cogrl/ClutteredDigits-v0"]
SIZES = [1, 64, 1024]
GOAL_N, GOAL_RATIO = 1024, 50.0
SECTION = "## Environment throughput"
VECTOR_SUBSECTION = "### Vectorised environments: CartPole-v1 at 1024 environments"
POOL = 16  # distinct action batches, cycled


class Stepper:
    """One side of a cell: ``step(t)`` advances all N environments once with action batch t."""

    def __init__(
        self,
        n: int,
        episode: int,
        step: Callable[[int], object],
        wait: Callable[[], None] = lambda: None,
        close: Callable[[], None] = lambda: None,
    ) -> None:
        self.n, self.episode, self.step, self.wait, self.close = n, episode, step, wait, close
        self.t = 0
        self.run_episodes(1)  # warm up

    def run_episodes(self, k: int) -> None:
        for _ in range(k * self.episode):
            self.step(self.t % POOL)
            self.t += 1
        self.wait()

    def rate(self, budget: float) -> tuple[float, int, float]:
        """Environment steps per second over whole episodes lasting at least ``budget`` s.

        Returns (rate, vector steps, seconds)."""
        episodes, start = 0, time.perf_counter()
        while True:
            self.run_episodes(1)
            episodes += 1
            seconds = time.perf_counter() - start
            if seconds >= budget:
                steps = episodes * self.episode
                return self.n * steps / seconds, steps, seconds


def core_stepper(task: str, n: int, device: str, seed: int) -> Stepper:
    """The batched core, stepped with random valid actions as tensors on its device."""
    core = make_core(task, num_envs=n, device=device)
    core.reset(seed=seed)
    g = torch.Generator(device=core.device).manual_seed(seed)
    shape = (POOL, n, *core.single_action_space.shape)
    actions = torch.rand(shape, generator=g, device=core.device) * 2.0 - 1.0
    wait = (
        (lambda: torch.cuda.synchronize(core.device))
        if core.device.type == "cuda"
        else (lambda: None)
    )
    return Stepper(n, core.n_glimpses, lambda t: core.step(actions[t]), wait, core.close)


def sync_stepper(task: str, n: int, seed: int) -> Stepper:
    """SyncVectorEnv over N ``gym.make(task)``, stepped with random valid numpy actions."""
    envs = SyncVectorEnv(
        [lambda: gym.make(task) for _ in range(n)], autoreset_mode=AutoresetMode.SAME_STEP
    )
    envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1.0, 1.0, (POOL, n, *envs.single_action_space.shape))
    actions = actions.astype(np.float32)
    episode = envs.envs[0].unwrapped.core.n_glimpses
    return Stepper(n, episode, lambda t: envs.step(actions[t]), close=envs.close)


def bench_cell(
    task: str, n: int, device: str, budget: float, rounds: int, seed: int
) -> dict[str, float]:
    """Both sides of a cell, measured in alternating rounds; the best round of each counts
    (the least disturbed by other work on the machine)."""
    start = time.perf_counter()
    sync = sync_stepper(task, n, seed)
    build = time.perf_counter() - start
    core = core_stepper(task, n, device, seed)
    core_rates, sync_rates = [], []
    for _ in range(rounds):
        core_rates.append(core.rate(budget)[0])
        sync_rates.append(sync.rate(budget)[0])
    core.close()
    sync.close()
    return {
        "core": max(core_rates),
        "sync": max(sync_rates),
        "build": build,
        "core_rounds": core_rates,
        "sync_rounds": sync_rates,
    }


def vector_sides(n: int, seed: int) -> dict[str, tuple[Callable[[], None], Callable[[], None]]]:
    """CartPole-v1 at ``n`` environments, five ways: name -> (one vector step, close)."""
    import envpool

    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 2, (POOL, n))
    tensors = torch.as_tensor(actions)
    sides: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {}

    def numpy_side(name: str, env: Any) -> None:
        env.reset(seed=seed)
        counter = iter(range(10**12))
        sides[name] = (lambda: env.step(actions[next(counter) % POOL]), env.close)

    def core_side(name: str, core: Any) -> None:
        core.reset(seed=seed)
        counter = iter(range(10**12))
        sides[name] = (lambda: core.step(tensors[next(counter) % POOL]), core.close)

    numpy_side(
        "SyncVectorEnv",
        SyncVectorEnv(
            [lambda: gym.make("CartPole-v1") for _ in range(n)],
            autoreset_mode=AutoresetMode.SAME_STEP,
        ),
    )
    numpy_side(
        "CartPoleVectorEnv",
        gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point"),
    )
    pool = envpool.make("CartPole-v1", env_type="gymnasium", num_envs=n, seed=seed, num_threads=1)
    numpy_side("EnvPool", pool)
    core_side("cogrl make_core('CartPole-v1') (gym.make copies)", make_core("CartPole-v1", n))
    core_side(
        "cogrl make_core('envpool:CartPole-v1')",
        make_core("envpool:CartPole-v1", n, num_threads=1),
    )
    return sides


def bench_vectorised(n: int, steps: int, rounds: int, seed: int) -> dict[str, list[float]]:
    """Steps per second of every side of :func:`vector_sides`, in alternating rounds."""
    sides = vector_sides(n, seed)
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for step, _ in sides.values():  # warm up
        for _ in range(10):
            step()
    for _ in range(rounds):
        for name, (step, _) in sides.items():
            start = time.perf_counter()
            for _ in range(steps):
                step()
            rates[name].append(n * steps / (time.perf_counter() - start))
    for _, close in sides.values():
        close()
    return rates


def vector_markdown(
    rates: dict[str, list[float]], n: int, steps: int, command: str, about: list[str]
) -> str:
    base = max(rates["SyncVectorEnv"])
    lines = [
        VECTOR_SUBSECTION.replace("1024", f"{n:,}"),
        "",
        fill(
            f"Environment steps per second of CartPole-v1 at {n:,} environments, random "
            f"actions, {steps} vector steps per round, the best of {len(rates['EnvPool'])} "
            "alternating rounds; EnvPool on one thread. Gymnasium's CartPoleVectorEnv and "
            "EnvPool autoreset on the next step; SyncVectorEnv and cogrl's cores in the same "
            "step. `make_core('CartPole-v1')` steps gym.make copies because CartPoleVectorEnv "
            "(Gymnasium 1.4) cannot restart a subset of its environments (see "
            "`cogrl/envs/vector_cores.py`). Produced by `benchmarks/throughput.py`:",
            width=88,
        ),
        "",
        "```",
        command,
        "```",
        "",
        *(f"- {line}" for line in about),
        "",
        "| stepper | autoreset | steps/s | vs SyncVectorEnv | rounds |",
        "|---|---|---:|---:|---|",
    ]
    for name, values in rates.items():
        same = name.startswith("cogrl") or name == "SyncVectorEnv"
        lines.append(
            f"| {name} | {'same step' if same else 'next step'} | {max(values):,.0f} "
            f"| {max(values) / base:.1f}x | {', '.join(f'{v:,.0f}' for v in values)} |"
        )
    return "\n".join(lines) + "\n"


def write_subsection(path: Path, text: str) -> None:
    """Put ``text`` (a ``###`` subsection) at the end of the section, replacing its older
    version, keeping the rest of the section."""
    old = path.read_text()
    head, _, rest = old.partition(SECTION)
    end = rest.find("\n## ")
    section = SECTION + (rest[:end] if end >= 0 else rest)
    title = text.splitlines()[0]
    if title in section:
        before, _, after = section.partition(title)
        nxt = after.find("\n### ")
        section = before + (after[nxt + 1 :] if nxt >= 0 else "")
    write_section(path, SECTION, section.rstrip("\n") + "\n\n" + text)


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s, else the platform's)."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def machine(device: str) -> list[str]:
    """What the numbers were measured on."""
    cpu = cpu_name()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"CPU: {cpu}, {os.cpu_count()} logical CPUs ({usable} usable by this process)",
        f"torch {torch.__version__} (intra-op threads: {torch.get_num_threads()} by default here), "
        f"gymnasium {gym.__version__}, numpy {np.__version__}, cogrl {cogrl.__version__}, "
        f"Python {platform.python_version()} on {platform.system()} {platform.release()}",
    ]
    if device.startswith("cuda"):
        lines.append(f"core device: {device} ({torch.cuda.get_device_name(torch.device(device))})")
    else:
        lines.append(f"core device: {device}")
    if hasattr(os, "getloadavg"):
        lines.append(
            "load average (1, 5, 15 min) at the start: "
            + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        )
    return lines


def markdown(rows: list[dict], command: str, about: list[str], budget: float, rounds: int) -> str:
    lines = [
        SECTION,
        "",
        "Environment steps per second of the batched core (`cogrl.envs.make_core(id, num_envs=N)`,",
        "random valid actions as tensors) against `gymnasium.vector.SyncVectorEnv` over N",
        "`gym.make(id)` environments (numpy actions), both with same-step autoreset, continuous",
        "mode, in the same process. After a one-episode warm-up, the two sides are timed in",
        f"{rounds} alternating rounds of whole episodes lasting at least {budget:g} s each, and",
        "each side's best round counts (the one least disturbed by other work on the machine).",
        "Produced by `benchmarks/throughput.py`:",
        "",
        "```",
        command,
        "```",
        "",
        *(f"- {line}" for line in about),
        "",
        "Torch's intra-op threads are set per row (`--threads`). Where other jobs keep some of",
        "the cores busy (see the load average), an op that torch splits over several threads",
        "waits for a descheduled one, often for milliseconds: compare the rows of each count.",
        "",
        "The last column shows the spread: the ratio of each round's two measurements.",
        "",
        "| task | N | torch threads | core steps/s | SyncVectorEnv steps/s | ratio "
        "| ratio by round |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        by_round = ", ".join(
            f"{c / s:,.1f}" for c, s in zip(r["core_rounds"], r["sync_rounds"], strict=True)
        )
        lines.append(
            f"| {r['task']} | {r['n']} | {r['threads']} | {r['core']:,.0f} | {r['sync']:,.0f} | "
            f"{r['core'] / r['sync']:,.1f}x | {by_round} |"
        )
    goal = [r for r in rows if r["n"] == GOAL_N]
    if goal:
        lines += [
            "",
            f"Goal: the core at least {GOAL_RATIO:g}x SyncVectorEnv at {GOAL_N} environments.",
        ]
        for r in goal:
            ratio = r["core"] / r["sync"]
            verdict = "met" if ratio >= GOAL_RATIO else "**not met**"
            lines.append(f"- {r['task']} (torch threads: {r['threads']}): {ratio:,.1f}x, {verdict}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="numbers of envs N")
    parser.add_argument(
        "--budget", type=float, default=1.0, help="timed seconds per round (whole episodes)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds per cell; the best one counts"
    )
    parser.add_argument("--device", default="cpu", help="device of the core: cpu, cuda, cuda:N")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        help="torch intra-op thread counts to measure, each for every cell (default: torch's)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--vectorised",
        action="store_true",
        help="CartPole-v1: cogrl's cores vs SyncVectorEnv, CartPoleVectorEnv and EnvPool",
    )
    parser.add_argument("--vector-n", type=int, default=1024, help="environments (--vectorised)")
    parser.add_argument("--vector-steps", type=int, default=200, help="vector steps per round")
    parser.add_argument("--quick", action="store_true", help="N in 1, 16, short budget, print only")
    parser.add_argument(
        "--markdown",
        type=Path,
        default=None,
        help="file whose section to write (default: BENCHMARKS.md at the repository root, "
        "except with --quick)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.budget, args.rounds = [1, 16], 0.1, 2
    if args.markdown is None and not args.quick:
        args.markdown = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available here")

    about = machine(args.device)
    for line in about:
        print(line)
    command = " ".join(
        ["python benchmarks/throughput.py", *(sys.argv[1:] if argv is None else argv)]
    )
    if args.vectorised:
        torch.set_num_threads((args.threads or [1])[0])
        rates = bench_vectorised(args.vector_n, args.vector_steps, args.rounds, args.seed)
        text = vector_markdown(rates, args.vector_n, args.vector_steps, command, about)
        print(text)
        if args.markdown is not None:
            write_subsection(args.markdown, text)
            print(f"wrote the subsection of {SECTION!r} in {args.markdown}")
        return
    rows = []
    cells = [
        (t, task, n) for t in args.threads or [None] for task in args.tasks for n in args.sizes
    ]
    for threads, task, n in cells:
        if threads is not None:
            torch.set_num_threads(threads)
        threads = torch.get_num_threads()
        cell = bench_cell(task, n, args.device, args.budget, args.rounds, args.seed)
        rows.append({"task": task, "n": n, "threads": threads, **cell})
        print(
            f"{task:28s} N={n:5d} threads={threads}  core {cell['core']:12,.0f}/s"
            f"  sync {cell['sync']:10,.0f}/s (built in {cell['build']:.1f} s)"
            f"  ratio {cell['core'] / cell['sync']:8,.1f}x"
            f"  rounds: core {', '.join(f'{r:,.0f}' for r in cell['core_rounds'])};"
            f" sync {', '.join(f'{r:,.0f}' for r in cell['sync_rounds'])}",
            flush=True,
        )
    text = markdown(rows, command, about, args.budget, args.rounds)
    print()
    print(text)
    if args.markdown is not None:
        write_section(args.markdown, SECTION, text)
        print(f"wrote the section {SECTION!r} of {args.markdown}")


if __name__ == "__main__":
    main()
