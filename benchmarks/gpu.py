"""cogrl on a GPU: environment throughput, RAM's time per MNIST epoch, learners' steps/s.

One process, three parts, every cell bounded in time, results appended to a JSON file as
they come (a run cut short keeps what it measured):

A. Environment steps per second of every cogrl environment family (``make_core`` on
   ``--device``, random valid actions drawn beforehand, same-step autoreset inside the core)
   at N = 1,024, 8,192 and 65,536 environments; the same core on this machine's CPU at N = 1,024
   in the same run; and ``torch.compile(core.step)`` where ``--compile`` names the task.
B. RAM (its defaults) on MNIST 28 x 28 (``cogrl/GlimpseDigits-v0`` with ``dataset=mnist``):
   training seconds per 60,000 episodes, i.e. one pass of MNIST's training set's size, at
   several numbers of environments, eager and with ``compile=True``.
C. Learners' environment steps per second on cogrl tasks with their presets (PPO and DQN on
   GlimpseDigits, PPO with an NTM on Copy) at the preset's environments and at the issue's
   goal sizes (PPO on GlimpseDigits at 4,096, PPO with the NTM on Copy at 1,024), eager
   and with ``compile=True`` (:mod:`cogrl.agents.compiling`: CUDA graphs on the GPU).
D. RAM's time to a test error: RAM (its defaults, ``compile`` as C) on MNIST 28 x 28 at
   ``--plateau-envs`` environments for ``--plateau-seconds`` of training, the learning rate
   decayed linearly to 0 over them, the 10,000 test images' error measured every tenth of
   the budget (untimed): the curve and the first time at or below 1.5%.

Part A's ``torch.compile(core.step)`` modes: ``default`` and ``reduce-overhead`` (CUDA
graphs; GPU only). Compile time (the first calls) is reported apart from the steps/s after
it. The parts run in the order D, C, then A and B (eager cells before compiled ones), each
cell bounded in time.

    bash benchmarks/gpu.sh                          # on a GPU machine: the full run
    bash benchmarks/gpu.sh --device cpu             # dry run here: small sizes, short cells
    python benchmarks/gpu.py report RESULTS.json    # the BENCHMARKS.md section from a run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from gymnasium import spaces

import cogrl
from cogrl.envs import make_core

HERE = Path(__file__).resolve().parent
SECTION = "## GPU: environment throughput, RAM's MNIST epoch, learners' steps per second"
FAMILIES = [
    ("glimpse", "cogrl/GlimpseDigits-v0", {}),
    ("glimpse", "cogrl/TranslatedDigits-v0", {}),
    ("glimpse", "cogrl/ClutteredDigits-v0", {}),
    ("multi-object", "cogrl/MultiDigits-v0", {}),
    ("multi-object", "cogrl/VisualSearch-v0", {}),
    ("memory", "cogrl/Copy-v0", {}),
    ("memory", "cogrl/RepeatCopy-v0", {}),
    ("memory", "cogrl/AssociativeRecall-v0", {}),
    ("memory", "cogrl/DelayedRecall-v0", {}),
    ("memory", "cogrl/StoryQA-v0", {}),
    ("scanpath", "cogrl/Scanpath-v0", {}),
]
POOL = 8  # distinct action batches, cycled
EPOCH = 60_000  # episodes: MNIST's training set


def random_actions(core: Any, n: int, device: torch.device) -> list[Any]:
    """POOL batches of valid actions for ``core``'s action space, on ``device``."""
    g = torch.Generator(device=device).manual_seed(0)

    def draw(space: spaces.Space) -> Any:
        if isinstance(space, spaces.Discrete):
            return torch.randint(0, int(space.n), (n,), generator=g, device=device) + int(
                space.start
            )
        if isinstance(space, spaces.MultiBinary):
            return torch.randint(0, 2, (n, *space.shape), generator=g, device=device).to(torch.int8)
        if isinstance(space, spaces.MultiDiscrete):
            high = torch.as_tensor(space.nvec, device=device)
            return (torch.rand(n, *high.shape, generator=g, device=device) * high).long()
        if isinstance(space, spaces.Dict):
            return {k: draw(s) for k, s in space.spaces.items()}
        assert isinstance(space, spaces.Box), space
        low = torch.as_tensor(space.low, dtype=torch.float32, device=device)
        high = torch.as_tensor(space.high, dtype=torch.float32, device=device)
        u = torch.rand(n, *space.shape, generator=g, device=device)
        return (low + u * (high - low)).to(torch.float32)

    return [draw(core.single_action_space) for _ in range(POOL)]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(step: Callable[[int], Any], n: int, device: torch.device, budget: float) -> float:
    """Environment steps per second of ``step``, timed over at least ``budget`` seconds."""
    steps, start = 0, time.perf_counter()
    synchronize(device)
    while True:
        for t in range(POOL):
            step(t)
        steps += POOL
        synchronize(device)
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            return steps * n / elapsed


def env_cell(env_id: str, kwargs: dict, n: int, device: str, budget: float, mode: str) -> dict:
    core = make_core(env_id, num_envs=n, device=device, **kwargs)
    core.reset(seed=0)
    actions = random_actions(core, n, core.device)
    step = core.step
    cell: dict[str, Any] = {}
    if mode != "eager":
        step = torch.compile(core.step, mode=mode)
        start = time.perf_counter()
        for t in range(POOL):
            step(actions[t])
        synchronize(core.device)
        cell["compile_s"] = time.perf_counter() - start
    for t in range(POOL):  # warm-up: caches, allocator, the first autoresets
        step(actions[t])
    cell["steps_per_s"] = rate(lambda t: step(actions[t]), n, core.device, budget)
    core.close()
    return cell


def learner_cell(
    agent_name: str, env_id: str, settings: dict, env_kwargs: dict, device: str,
    budget: float, mode: str,
) -> dict:  # fmt: skip
    """``learn`` on the agent (``mode``: ``eager`` or ``compiled``, the agent's
    ``compile=True``): a warm-up (compilation, if any), a short run whose rate sizes the
    timed run, then the timed run of about ``budget`` seconds."""
    from cogrl.agents import make

    agent = make(
        agent_name, env_id, device=device, seed=0, env_kwargs=env_kwargs,
        compile=mode == "compiled", **settings,
    )  # fmt: skip
    n = agent.config.num_envs
    cell: dict[str, Any] = {"num_envs": n}
    graphs = _graphs()
    chunk = n * 4
    start = time.perf_counter()
    agent.learn(chunk)
    synchronize(agent.device)
    cell["warm_s"] = time.perf_counter() - start
    # learn(k) finishes its last rollout (n_steps x N steps), so it may take more than k
    # steps: the rates count the steps taken (num_timesteps), not the steps asked for.
    steps, start = agent.num_timesteps, time.perf_counter()
    agent.learn(chunk, reset_num_timesteps=False)
    synchronize(agent.device)
    estimate = (agent.num_timesteps - steps) / (time.perf_counter() - start)
    timed = max(chunk, int(estimate * budget) // chunk * chunk)
    steps, start = agent.num_timesteps, time.perf_counter()
    agent.learn(timed, reset_num_timesteps=False)
    synchronize(agent.device)
    cell["steps_per_s"] = (agent.num_timesteps - steps) / (time.perf_counter() - start)
    cell["timed_steps"] = agent.num_timesteps - steps
    if mode != "eager":
        cell["graphs"] = _graphs() - graphs
        failed = [c.failure for c in agent._compiled.values() if c.failure]
        if failed:
            cell["compile_failed"] = "; ".join(failed)[:300]
    return cell


def plateau_cell(
    n: int, mnist: dict, device: str, seconds: float, mode: str, target: float = 0.015,
    hyper: dict | None = None,
) -> dict:  # fmt: skip
    """RAM trained for ``seconds`` (learning rate decayed linearly to 0 by time), tested on
    every test image after each tenth: the curve and the first time at or below ``target``.
    ``hyper``: RAM's hyperparameters beside ``num_envs`` (``learning_rate``, ``policy``)."""
    from attention import learn_for  # the annealed, time-bounded learn of the MNIST tables

    from cogrl.agents import evaluate, make

    agent = make(
        "ram", "cogrl/GlimpseDigits-v0", device=device, seed=0, env_kwargs=mnist,
        num_envs=n, compile=mode == "compiled", **(hyper or {}),
    )  # fmt: skip
    spent, curve = 0.0, []
    cell: dict[str, Any] = {"num_envs": n, "seconds": seconds, "target": target}
    # Compiling (or the first allocations) outside the budget: a few updates, timed apart.
    start = time.perf_counter()
    agent.learn(n * agent.make_core(1).n_glimpses * 3)
    synchronize(agent.device)
    cell["warm_s"] = time.perf_counter() - start
    for _ in range(10):
        start = time.perf_counter()
        learn_for(agent, seconds / 10, seconds, spent, anneal=True)
        synchronize(agent.device)
        spent += time.perf_counter() - start
        result = evaluate(agent, "all", num_envs=10_000, seed=12345, split="test")
        error = 1.0 - result["accuracy"]
        curve.append(
            {
                "seconds": round(spent, 2),
                "images": agent.num_timesteps // agent.make_core(1).n_glimpses,
                "error": error,
                "on_digit": result.get("on_digit"),
            }
        )
        print(f"    RAM {spent:6.1f} s  error {error:.4f}", flush=True)
        if error <= target and "seconds_to_target" not in cell:
            cell["seconds_to_target"] = spent
    cell["curve"] = curve
    return cell


def _graphs() -> int:
    """Graphs torch.compile has made in this process so far."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class Recorder:
    """Appends each cell to the JSON file as it is measured; skips cells past the deadline."""

    def __init__(self, path: Path, deadline: float, about: dict, cell_limit: int) -> None:
        self.path, self.deadline = path, time.monotonic() + deadline
        self.cell_limit = cell_limit
        self.data = {"about": about, "cells": []}
        self.save()

    def save(self) -> None:
        self.path.write_text(json.dumps(self.data, indent=1) + "\n")

    def cell(
        self, part: str, key: dict, measure: Callable[[], dict], limit: int | None = None
    ) -> None:
        row = {"part": part, **key}
        if time.monotonic() > self.deadline:
            row["skipped"] = "deadline"
        else:
            # A cell past its limit is stopped (SIGALRM) and recorded as such: one slow cell
            # (PPO with an NTM at 1,024 environments took the first GPU run's last minutes)
            # must not take the cells after it.
            signal.signal(signal.SIGALRM, _cell_timeout)
            signal.alarm(limit or self.cell_limit)
            try:
                row.update(measure())
            except Exception as e:  # noqa: BLE001  (a cell that fails is recorded, not fatal)
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
            finally:
                signal.alarm(0)
        print(json.dumps(row), flush=True)
        self.data["cells"].append(row)
        self.save()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _cell_timeout(signum: int, frame: Any) -> None:
    raise TimeoutError("the cell ran past --cell-limit")


def about(device: str) -> dict:
    info = {
        "device": device,
        "torch": torch.__version__,
        "cogrl": cogrl.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run(args: argparse.Namespace) -> None:
    from cogrl.agents.presets import preset

    dry = not args.device.startswith("cuda")
    sizes = args.sizes or ([64, 256] if dry else [1024, 8192, 65536])
    budget = 0.2 if dry else args.budget
    modes = ["default"] if dry else ["default", "reduce-overhead"]
    torch.set_num_threads(args.threads)
    rec = Recorder(args.out, args.deadline, about(args.device), args.cell_limit)
    mnist = {"dataset": "mnist", "root": str(args.mnist)} if args.mnist else {}
    # Every eager cell first, the compiled ones after: past the deadline, compiled cells
    # (the slow ones to start) are what is skipped.
    eager: list[tuple[str, dict, Callable[[], dict]]] = []
    compiled: list[tuple[str, dict, Callable[[], dict]]] = []

    # A. environments
    for family, env_id, kwargs in FAMILIES:
        kwargs = {**kwargs, **(mnist if env_accepts(env_id, "dataset") else {})}
        key = {"family": family, "env": env_id}
        for n in sizes:
            eager.append(
                (
                    "env",
                    {**key, "n": n, "device": args.device, "mode": "eager"},
                    partial(env_cell, env_id, kwargs, n, args.device, budget, "eager"),
                )
            )
        if not dry:  # the same core on this machine's CPU, in the same run
            eager.append(
                (
                    "env",
                    {**key, "n": 1024, "device": "cpu", "mode": "eager"},
                    partial(env_cell, env_id, kwargs, 1024, "cpu", budget, "eager"),
                )
            )
        if env_id in args.compile:
            n = sizes[-2] if len(sizes) > 1 else sizes[0]
            for mode in modes:
                compiled.append(
                    (
                        "env",
                        {**key, "n": n, "device": args.device, "mode": mode},
                        partial(env_cell, env_id, kwargs, n, args.device, budget, mode),
                    )
                )

    # B. RAM on MNIST: seconds per 60,000 episodes
    ram_envs = [64, 256] if dry else [256, 1024, 4096]
    for n in ram_envs:
        for mode in ["eager", *(["compiled"] if n == ram_envs[-1] else [])]:
            key = {
                "agent": "ram",
                "env": "cogrl/GlimpseDigits-v0",
                "n": n,
                "mode": mode,
                "device": args.device,
                "data": "mnist" if mnist else "digits",
            }
            cell = ("ram", key, partial(ram_cell, n, mnist, args.device, budget * 4, mode))
            (eager if mode == "eager" else compiled).append(cell)

    # C. learners on cogrl tasks, with their presets: at the preset's environments and at
    # the goal's (eager and compiled), on the CPU dry run at 64 at most
    learners: list[tuple[str, dict, Callable[[], dict]]] = []
    for agent_name, env_id, goal_envs in [
        ("ppo", "cogrl/GlimpseDigits-v0", 4096),
        ("dqn", "cogrl/GlimpseDigits-v0", None),
        ("ppo", "cogrl/Copy-v0", 1024),
    ]:
        p = preset(agent_name, env_id)
        base = int(p.hyperparameters.get("num_envs", 1))
        sizes_here = [base, *([goal_envs] if goal_envs else [])]
        if args.goal_sizes_only:
            sizes_here = [goal_envs] if goal_envs else []
        for n in sizes_here:
            n = min(n, 64) if dry else n
            settings = {**p.hyperparameters, "num_envs": n}
            if "batch_size" in settings and n != base:
                # The same minibatches per rollout as the preset's: at N environments a
                # rollout holds N / base times the steps, so do its minibatches.
                settings["batch_size"] = settings["batch_size"] * n // base
            if agent_name == "dqn":  # one update per vector step, as in the preset
                settings["train_freq"] = n
                settings["learning_starts"] = max(settings.get("learning_starts", 0), n)
            env_kwargs = {**p.env_kwargs, **(mnist if env_accepts(env_id, "dataset") else {})}
            # DQN has nothing compiled (its update is a few small kernels already).
            for mode in ["eager", *(["compiled"] if agent_name == "ppo" else [])]:
                key = {"agent": agent_name, "env": env_id, "n": n, "mode": mode}
                if "batch_size" in settings:
                    key["batch_size"] = settings["batch_size"]
                key["device"] = args.device
                learners.append(
                    (
                        "learner",
                        key,
                        partial(
                            learner_cell, agent_name, env_id, settings, env_kwargs,
                            args.device, budget * 4, mode,
                        ),
                    )
                )  # fmt: skip

    # D. RAM's time to 1.5% test error on MNIST (run first: the headline)
    plateau_n = min(args.plateau_envs, 64) if dry else args.plateau_envs
    seconds = 10.0 if dry else args.plateau_seconds
    key = {"agent": "ram", "n": plateau_n, "mode": args.plateau_mode, "device": args.device}
    key["data"] = "mnist" if mnist else "digits"
    hyper = json.loads(args.plateau_hyper) if args.plateau_hyper else {}
    if not isinstance(hyper, dict):
        raise SystemExit(f"--plateau-hyper must be a JSON object, got {args.plateau_hyper!r}")
    if hyper:
        key["hyper"] = hyper
    plateau = ("plateau", key, partial(plateau_cell, plateau_n, mnist, args.device, seconds,
                                        args.plateau_mode, hyper=hyper))  # fmt: skip
    if "plateau" in args.parts:
        rec.cell(*plateau, limit=int(seconds * 1.5 + 120))
    for part, key, measure in learners:
        if part in args.parts and (key["mode"] != "eager" or not args.compiled_only):
            rec.cell(part, key, measure)
    for part, key, measure in compiled if args.compiled_only else eager + compiled:
        if part in args.parts:
            rec.cell(part, key, measure)
    print(f"results: {args.out}")


def ram_cell(n: int, mnist: dict, device: str, budget: float, mode: str) -> dict:
    cell = learner_cell(
        "ram", "cogrl/GlimpseDigits-v0", {"num_envs": n}, mnist, device, budget, mode
    )
    n_glimpses = make_core("cogrl/GlimpseDigits-v0", 1, "cpu", **mnist).n_glimpses
    cell["s_per_60k_episodes"] = EPOCH * n_glimpses / cell["steps_per_s"]
    return cell


def env_accepts(env_id: str, name: str) -> bool:
    """Whether ``env_id``'s core takes the argument ``name`` (the MNIST arguments)."""
    import inspect

    from cogrl.envs import core_spec

    return name in inspect.signature(core_spec(env_id)[0].__init__).parameters


def report(args: argparse.Namespace) -> None:
    data = json.loads(Path(args.results).read_text())
    print(markdown(data, args.command))
    if args.write:
        sys.path.insert(0, str(HERE))
        from report import write_section

        write_section(args.markdown, SECTION, markdown(data, args.command))
        print(f"wrote {SECTION!r} into {args.markdown}")


def _num(x: float) -> str:
    return f"{x:,.0f}"


def markdown(data: dict, command: str) -> str:
    a = data["about"]
    lines = [
        SECTION,
        "",
        f"Produced by `{command}` on {a.get('gpu', a['device'])} ({a['cpu_count']} CPU cores), "
        f"torch {a['torch']}, Python {a['python']}, cogrl {a['cogrl']}, {a['date']}; "
        f"{a['threads']} torch CPU thread(s). Each cell's steps per second is timed after a "
        "warm-up; a compiled cell's first calls (compilation) are timed apart.",
        "",
        *[f"- {note}" for note in a.get("notes", [])],
        "",
        "### A. Environment steps per second",
        "",
        "| family | env | device | N | mode | steps/s | compile s |",
        "|---|---|---|---:|---|---:|---:|",
    ]
    cells = data["cells"]

    def status(c: dict) -> str:
        return c.get("error") or (f"skipped ({c['skipped']})" if "skipped" in c else "")

    for c in (c for c in cells if c["part"] == "env"):
        value = _num(c["steps_per_s"]) if "steps_per_s" in c else status(c)
        comp = f"{c['compile_s']:.1f}" if "compile_s" in c else ""
        lines.append(
            f"| {c['family']} | {c['env']} | {c['device']} | {c['n']:,} | {c['mode']} | "
            f"{value} | {comp} |"
        )
    lines += [
        "",
        f"### B. RAM on MNIST 28 x 28: training time per {EPOCH:,} episodes",
        "",
        "| envs | mode | steps/s | s per 60k episodes | warm-up s | graphs compiled |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for c in (c for c in cells if c["part"] == "ram"):
        if "steps_per_s" in c:
            lines.append(
                f"| {c['n']:,} | {c['mode']} | {_num(c['steps_per_s'])} | "
                f"{c['s_per_60k_episodes']:.1f} | {c['warm_s']:.1f} | {c.get('graphs', '')} |"
            )
        else:
            lines.append(f"| {c['n']:,} | {c['mode']} | {status(c)} | | |")
    lines += [
        "",
        "### C. Learners' environment steps per second (presets; N: environments)",
        "",
        "| agent | env | N | mode | steps/s | warm-up s | graphs compiled |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for c in (c for c in cells if c["part"] == "learner"):
        value = _num(c["steps_per_s"]) if "steps_per_s" in c else status(c)
        if "compile_failed" in c:
            value += f" (compiling failed, ran eager: {c['compile_failed']})"
        warm = f"{c['warm_s']:.1f}" if "warm_s" in c else ""
        lines.append(
            f"| {c['agent']} | {c['env']} | {c['n']:,} | {c['mode']} | {value} | {warm} "
            f"| {c.get('graphs', '')} |"
        )
    for c in (c for c in cells if c["part"] == "plateau"):
        lines += [
            "",
            f"### D. RAM to {c.get('target', 0.015):.1%} test error on MNIST 28 x 28 "
            f"({c['n']:,} environments, {c['mode']}, data: {c['data']})",
            "",
        ]
        if "curve" not in c:
            lines.append(status(c))
            continue
        reached = c.get("seconds_to_target")
        lines += [
            f"Time to {c['target']:.1%}: "
            + (f"{reached:.0f} s" if reached is not None else f"not reached in {c['seconds']:g} s")
            + f" (after a warm-up of {c.get('warm_s', 0.0):.1f} s: compiling, three updates)",
            "",
            "| training s | images | test error | on digit |",
            "|---:|---:|---:|---:|",
        ]
        for point in c["curve"]:
            on = point.get("on_digit")
            lines.append(
                f"| {point['seconds']:.0f} | {point['images']:,} | {point['error']:.2%} "
                f"| {'' if on is None else f'{on:.2f}'} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    r = sub.add_parser("run")
    r.add_argument("--device", default="cuda")
    r.add_argument("--out", type=Path, required=True, help="the results JSON file")
    r.add_argument("--sizes", type=int, nargs="+", help="numbers of environments (part A)")
    r.add_argument("--budget", type=float, default=0.5, help="seconds per env cell")
    r.add_argument("--deadline", type=float, default=480.0, help="seconds; later cells skip")
    r.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    r.add_argument("--parts", nargs="+", default=["plateau", "learner", "ram", "env"])
    r.add_argument("--plateau-envs", type=int, default=1024, help="RAM's environments (D)")
    r.add_argument("--plateau-seconds", type=float, default=240.0, help="RAM's training (D)")
    r.add_argument("--plateau-mode", choices=["eager", "compiled"], default="compiled")
    r.add_argument(
        "--plateau-hyper",
        help="RAM's hyperparameters in D as JSON, e.g. '{\"learning_rate\": 0.002, "
        '"policy": {"core_size": 256}}\'',
    )
    r.add_argument(
        "--goal-sizes-only", action="store_true",
        help="learners (C) at the issue's goal sizes only (PPO at 4,096 and 1,024 envs)",
    )  # fmt: skip
    r.add_argument("--compiled-only", action="store_true", help="only the compiled cells")
    r.add_argument("--cell-limit", type=int, default=60, help="seconds a cell may take")
    r.add_argument("--mnist", type=Path, help="MNIST IDX folder (default: scikit-learn digits)")
    r.add_argument(
        "--compile",
        nargs="*",
        default=["cogrl/GlimpseDigits-v0"],
        help="tasks whose core.step is also timed under torch.compile",
    )
    p = sub.add_parser("report")
    p.add_argument("results", type=Path)
    p.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    p.add_argument("--markdown", type=Path, default=HERE.parent / "BENCHMARKS.md")
    p.add_argument("--command", default="bash benchmarks/gpu.sh")
    args = parser.parse_args(argv)
    (run if args.action == "run" else report)(args)


if __name__ == "__main__":
    main()
