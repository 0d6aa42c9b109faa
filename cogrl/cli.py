"""The ``cogrl`` command: list what is registered, train agents, evaluate and record runs.

```
cogrl list
cogrl train --env cogrl/GlimpseDigits-v0 --agent ram --steps 200000 --set env.n_glimpses=4
cogrl eval runs/cogrl-GlimpseDigits-v0__ram__0__20250101-120000
cogrl record runs/cogrl-GlimpseDigits-v0__ram__0__20250101-120000 --episodes 4
```

``cogrl train`` prints the run folder as its last line and ``cogrl eval`` one JSON object,
so scripts can read them with ``tail -n 1``. Usage errors (unknown environment, agent,
hyperparameter or env argument; a missing run) exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import cogrl
from cogrl import agents, runner
from cogrl.agents import Agent, evaluate
from cogrl.agents.common import NonFiniteError
from cogrl.envs import cogrl_env_ids
from cogrl.logging import RunLogger
from cogrl.runner import DEFAULT_CHECKPOINT_EVERY, DEFAULT_THREADS, EVAL_SEED
from cogrl.runs import (
    DEFAULT_ROOT,
    VIDEOS_DIR,
    model_path,
    parse_overrides,
    require_run,
)

PROG = "cogrl"
EVAL_EPISODES = runner.RunSpec.eval_episodes
#: Options of `train` that --resume takes from the run itself (it may change the others).
RUN_SETTINGS = (
    "env", "agent", "set", "steps", "num_envs", "seed", "run_dir", "video_interval",
    "eval_episodes", "checkpoint_every", "no_checkpoint_replay", "threads", "no_preset",
)  # fmt: skip


class UsageError(Exception):
    """A problem with what the user asked for: reported as ``cogrl: error: ...``, status 2."""


# --- parser -----------------------------------------------------------------------------------
def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Train and inspect RL agents on cogrl's cognitive tasks."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {cogrl.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in (add_list_command, add_train_command, add_eval_command, add_record_command):
        add_command(commands)
    return parser


def add_list_command(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("list", help="list the environments and agents")
    sub.set_defaults(run=cmd_list, parser=sub)


def add_train_command(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "train",
        help="train an agent; prints the run folder last",
        description="Train an agent and write a run folder: config.json, TensorBoard events, "
        "model.pt and rollout videos. Prints the run folder as the last line.",
    )
    sub.add_argument(
        "--env",
        metavar="ID",
        help="environment id: a cogrl id (cogrl list) or any registered Gymnasium id",
    )
    sub.add_argument("--agent", metavar="NAME", help="agent name (cogrl list)")
    sub.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its checkpoint.pt (its own settings; "
        "--device and --no-progress may change)",
    )
    sub.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        metavar="N",
        help="environment steps, summed over environments (default: the preset's for this "
        "agent and environment, else the agent's default_timesteps, e.g. 1,000,000 for ram)",
    )
    sub.add_argument(
        "--num-envs",
        type=positive_int,
        metavar="N",
        help="parallel environments (the agent's num_envs hyperparameter)",
    )
    add_device_argument(sub)
    sub.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    sub.add_argument(
        "--run-dir",
        type=Path,
        default=DEFAULT_ROOT,
        metavar="DIR",
        help=f"folder to create the run folder in (default {DEFAULT_ROOT}/)",
    )
    sub.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an agent hyperparameter (policy.NAME for the policy's: policy.core=gru), or "
        "env.NAME=VALUE for an environment argument; VALUE is parsed as JSON when it can "
        "be (repeatable)",
    )
    sub.add_argument(
        "--video-interval",
        type=non_negative_int,
        metavar="N",
        help="log a rollout video every N steps (default steps/4; 0: none)",
    )
    sub.add_argument(
        "--eval-episodes",
        type=non_negative_int,
        default=EVAL_EPISODES,
        metavar="N",
        help=f"episodes of the final evaluation (default {EVAL_EPISODES}; 0: none)",
    )
    sub.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        default=DEFAULT_CHECKPOINT_EVERY,
        metavar="N",
        help="write the training checkpoint (checkpoint.pt, for --resume) every N steps "
        f"(default {DEFAULT_CHECKPOINT_EVERY:,}; 0: only at the end); always at the end and "
        "on SIGINT/SIGTERM",
    )
    sub.add_argument(
        "--no-checkpoint-replay",
        action="store_true",
        help="leave the replay of off-policy learners out of checkpoints (smaller files; a "
        "resumed run then refills it and does not repeat the uninterrupted run exactly)",
    )
    sub.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"torch's CPU threads (default {DEFAULT_THREADS}: see README, 'CPU threads')",
    )
    sub.add_argument(
        "--no-preset",
        action="store_true",
        help="ignore the per-environment preset (cogrl.agents.presets): the agent's defaults",
    )
    sub.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sub.set_defaults(run=cmd_train, parser=sub)


def add_eval_command(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "eval",
        help="evaluate a run's checkpoint; prints a JSON line last",
        description="Evaluate RUN_DIR/model.pt. The last line is one JSON object.",
    )
    sub.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    sub.add_argument(
        "--episodes",
        type=positive_int,
        metavar="N",
        default=EVAL_EPISODES,
        help=f"episodes (default {EVAL_EPISODES})",
    )
    add_split_argument(sub)
    sub.add_argument(
        "--seed", type=int, default=EVAL_SEED, metavar="S", help=f"seed (default {EVAL_SEED})"
    )
    add_device_argument(sub)
    sub.set_defaults(run=cmd_eval, parser=sub)


def add_record_command(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "record",
        help="record rollout videos of a run's checkpoint",
        description="Write a rollout MP4 under RUN_DIR/videos/ and add it to the run's "
        "TensorBoard images as record/rollout.",
    )
    sub.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    sub.add_argument(
        "--episodes",
        type=positive_int,
        metavar="N",
        default=runner.VIDEO_EPISODES,
        help=f"episodes (default {runner.VIDEO_EPISODES})",
    )
    add_split_argument(sub)
    sub.add_argument("--seed", type=int, default=0, metavar="S", help="seed (default 0)")
    sub.add_argument(
        "--fps",
        type=positive_float,
        metavar="F",
        default=runner.VIDEO_FPS,
        help=f"frames per second (default {runner.VIDEO_FPS:g})",
    )
    add_device_argument(sub)
    sub.set_defaults(run=cmd_record, parser=sub)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when available; default)"
    )


def add_split_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split",
        metavar="NAME",
        help="data split, for environments that declare them (e.g. train, test; default test)",
    )


# --- commands ---------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    print(f"environments: cogrl's tasks below; {runner.ANY_GYM_ID}")
    for env_id in cogrl_env_ids():
        print(f"  {env_id}")
    print("agents:")
    for name in agents.available_agents():
        print(f"  {name}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    try:
        if args.resume is not None:
            given = [
                "--" + name.replace("_", "-")
                for name in RUN_SETTINGS
                if getattr(args, name) != args.parser.get_default(name)
            ]
            if given:
                raise UsageError(
                    f"--resume continues a run with its own settings; drop {' '.join(given)} "
                    "(it takes --device and --no-progress)"
                )
            try:
                device = None if args.device == "auto" else args.device
                result = runner.resume(args.resume, device=device, progress=not args.no_progress)
            except (FileNotFoundError, ValueError) as e:
                raise UsageError(str(e)) from None
        else:
            if args.env is None or args.agent is None:
                raise UsageError("train needs --env and --agent (or --resume RUN_DIR)")
            result = runner.train(spec_from_args(args))
    except runner.SpecError as e:
        raise UsageError(str(e)) from None
    except NonFiniteError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        print(getattr(e, "kept", ""), file=sys.stderr)
        return 1
    if result.interrupted:
        print(result.run_dir)
        return 130
    if result.metrics:
        print_metrics(result.metrics, result.split)
    print(f"video: {result.video}")
    print(result.run_dir)
    return 0


def spec_from_args(args: argparse.Namespace) -> runner.RunSpec:
    try:
        hyperparameters, env_kwargs = parse_overrides(args.set)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return runner.RunSpec(
        env=args.env,
        agent=args.agent,
        seed=args.seed,
        device=args.device,
        steps=args.steps,
        hyperparameters=hyperparameters,
        env_kwargs=env_kwargs,
        preset=not args.no_preset,
        num_envs=args.num_envs,
        video_interval=args.video_interval,
        eval_episodes=args.eval_episodes,
        checkpoint_every=args.checkpoint_every,
        checkpoint_replay=not args.no_checkpoint_replay,
        threads=args.threads,
        root=str(args.run_dir),
        progress=not args.no_progress,
        command=shlex.join([PROG, *args.argv]),
    )


def cmd_eval(args: argparse.Namespace) -> int:
    run_dir, agent = load_run(args.run_dir, args.device)
    split = split_overrides(agent, args.split)
    metrics = evaluate(agent, args.episodes, seed=args.seed, **split)
    print(f"run: {run_dir}")
    print(
        f"agent {agent.name} on {agent.env_id}, {agent.num_timesteps} training steps, "
        f"seed {args.seed}"
    )
    print_metrics(metrics, split)
    result = {
        "run_dir": str(run_dir),
        "env": agent.env_id,
        "agent": agent.name,
        "split": split.get("split"),
        "seed": args.seed,
        **metrics,
    }
    print(json.dumps(result))
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    run_dir, agent = load_run(args.run_dir, args.device)
    split = split_overrides(agent, args.split)
    name = "_".join(["record", *split.values(), f"seed{args.seed}", f"{args.episodes}ep"])
    try:
        frames, path = runner.record_rollout(
            agent, run_dir / VIDEOS_DIR / f"{name}.mp4", args.episodes, args.seed, args.fps, split
        )
    except runner.CANNOT_RENDER as e:
        raise UsageError(f"{agent.env_id} cannot be recorded: {e}") from None
    with RunLogger(run_dir) as logger:
        logger.video("record/rollout", frames, step=agent.num_timesteps, fps=args.fps)
    print(path)
    return 0


# --- helpers ----------------------------------------------------------------------------------
def split_overrides(agent: Agent, split: str | None) -> dict[str, str]:
    try:
        return runner.eval_split(agent, split)
    except runner.SpecError as e:
        raise UsageError(str(e)) from None


def load_run(run_dir: Path, device: str) -> tuple[Path, Agent]:
    """The run folder and its final checkpoint's agent; UsageError if either is missing."""
    try:
        run_dir = require_run(run_dir)
        return run_dir, agents.load(model_path(run_dir), device=device)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e)) from None


def print_metrics(metrics: dict[str, float], split: dict[str, str]) -> None:
    where = f" on the {split['split']} split" if split else ""
    print(
        f"{metrics['episodes']} episodes{where}: mean return {metrics['mean_return']:.4g} "
        f"(std {metrics['std_return']:.4g}), mean length {metrics['mean_length']:.4g}"
    )
    if "accuracy" in metrics:
        print(f"accuracy {metrics['accuracy']:.2%}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cogrl`` command with ``argv`` (default ``sys.argv[1:]``); returns the status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # As `python -m cogrl` does, so that `module:name` ids and cores of the user's modules in
    # the working directory import from the `cogrl` command too.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or argparse's own usage error (status 2)
        return e.code if isinstance(e.code, int) else int(e.code is not None)
    args.argv = argv
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except UsageError as e:
        args.parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
