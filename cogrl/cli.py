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
import inspect
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import cogrl
from cogrl import agents
from cogrl.agents import Agent, evaluate, rollout_frames
from cogrl.agents.presets import preset
from cogrl.envs import cogrl_env_ids, core_spec, env_kind, make_core
from cogrl.logging import RunLogger, write_mp4
from cogrl.runs import (
    DEFAULT_ROOT,
    MODEL_NAME,
    VIDEOS_DIR,
    config_hparams,
    create_run_dir,
    default_video_interval,
    model_path,
    parse_overrides,
    require_run,
    write_config,
)

PROG = "cogrl"
EVAL_EPISODES = 1000
EVAL_SEED = 0  # also the default of `cogrl eval`, so it reproduces a run's final metrics
VIDEO_EPISODES = 4
VIDEO_FPS = 2.0
SPLITS = ("test", "train")
ANY_GYM_ID = "any registered Gymnasium id (e.g. CartPole-v1, or mypackage:MyEnv-v0) works too"


#: What rendering an environment without an rgb_array renderer raises.
CANNOT_RENDER = (gym.error.DependencyNotInstalled, NotImplementedError, RuntimeError, ValueError)


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
        required=True,
        metavar="ID",
        help="environment id: a cogrl id (cogrl list) or any registered Gymnasium id",
    )
    sub.add_argument("--agent", required=True, metavar="NAME", help="agent name (cogrl list)")
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
        help="an agent hyperparameter, or env.NAME=VALUE for an environment "
        "argument; VALUE is parsed as JSON when it can be (repeatable)",
    )
    sub.add_argument(
        "--video-interval",
        type=non_negative_int,
        metavar="N",
        help="log a rollout video every N steps (default steps/4; 0: none)",
    )
    sub.add_argument(
        "--eval-episodes",
        type=positive_int,
        default=EVAL_EPISODES,
        metavar="N",
        help=f"episodes of the final evaluation (default {EVAL_EPISODES})",
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
        default=VIDEO_EPISODES,
        help=f"episodes (default {VIDEO_EPISODES})",
    )
    add_split_argument(sub)
    sub.add_argument("--seed", type=int, default=0, metavar="S", help="seed (default 0)")
    sub.add_argument(
        "--fps",
        type=positive_float,
        metavar="F",
        default=VIDEO_FPS,
        help=f"frames per second (default {VIDEO_FPS:g})",
    )
    add_device_argument(sub)
    sub.set_defaults(run=cmd_record, parser=sub)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when available; default)"
    )


def add_split_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split", choices=SPLITS, help="data split, for environments that have one (default test)"
    )


# --- commands ---------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    print(f"environments: cogrl's tasks below; {ANY_GYM_ID}")
    for env_id in cogrl_env_ids():
        print(f"  {env_id}")
    print("agents:")
    for name in agents.available_agents():
        print(f"  {name}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    agent = build_agent(args)  # every usage error is found before the run folder exists
    if args.steps is None:
        args.steps = agent.default_timesteps
    split = split_overrides(agent.env_id, None)
    video_interval = (
        default_video_interval(args.steps) if args.video_interval is None else args.video_interval
    )
    run_dir = create_run_dir(args.run_dir, agent.env_id, agent.name, agent.seed)
    config = run_config(agent, args, video_interval)
    write_config(run_dir, config)
    print(f"run folder: {run_dir}", flush=True)

    with RunLogger(run_dir) as logger:
        interrupted = learn(agent, args.steps, logger, video_interval or None, not args.no_progress)
        agent.save(run_dir / MODEL_NAME)
        metrics = evaluate(agent, args.eval_episodes, seed=EVAL_SEED, **split)
        logger.hparams(config_hparams(config), hparams_metrics(metrics, split))
    # The agent logged rollout GIFs every video_interval steps; the final rollout is an MP4.
    try:
        _, video = record_rollout(
            agent,
            run_dir / VIDEOS_DIR / f"final-{agent.num_timesteps}.mp4",
            VIDEO_EPISODES,
            args.seed,
            VIDEO_FPS,
            split,
        )
    except CANNOT_RENDER as e:
        video = f"none ({agent.env_id} does not render: {e})"
    print_metrics(metrics, split)
    print(f"video: {video}")
    print(run_dir)
    return 130 if interrupted else 0


def cmd_eval(args: argparse.Namespace) -> int:
    run_dir, agent = load_run(args.run_dir, args.device)
    split = split_overrides(agent.env_id, args.split)
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
    split = split_overrides(agent.env_id, args.split)
    name = "_".join(["record", *split.values(), f"seed{args.seed}", f"{args.episodes}ep"])
    try:
        frames, path = record_rollout(
            agent, run_dir / VIDEOS_DIR / f"{name}.mp4", args.episodes, args.seed, args.fps, split
        )
    except CANNOT_RENDER as e:
        raise UsageError(f"{agent.env_id} cannot be recorded: {e}") from None
    with RunLogger(run_dir) as logger:
        logger.video("record/rollout", frames, step=agent.num_timesteps, fps=args.fps)
    print(path)
    return 0


# --- helpers ----------------------------------------------------------------------------------
def build_agent(args: argparse.Namespace) -> Agent:
    """The agent that ``cogrl train`` asks for; UsageError if anything about it is wrong."""
    check_env_id(args.env)
    check_known("agent", args.agent, agents.available_agents())
    try:
        hyperparameters, env_kwargs = parse_overrides(args.set)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not args.no_preset:
        # Per-environment defaults (cogrl.agents.presets) under the --set overrides.
        found = preset(args.agent, args.env)
        hyperparameters = {**found.hyperparameters, **hyperparameters}
        env_kwargs = {**found.env_kwargs, **env_kwargs}
        if args.steps is None:
            args.steps = found.timesteps
    if args.num_envs is not None:
        hyperparameters["num_envs"] = args.num_envs
    try:
        # A core of one checks the env arguments' names and values (agents may build
        # their cores only when they learn).
        make_core(args.env, 1, "cpu", **env_kwargs).close()
    except (ValueError, TypeError) as e:
        raise UsageError(f"environment {args.env}: {e}") from None
    try:
        return agents.make(
            args.agent,
            args.env,
            device=args.device,
            seed=args.seed,
            env_kwargs=env_kwargs,
            **hyperparameters,
        )
    except (ValueError, TypeError) as e:
        raise UsageError(f"agent {args.agent}: {e}") from None


def check_known(what: str, name: str, known: Sequence[str]) -> None:
    if name not in known:
        raise UsageError(f"unknown {what} {name!r}; available: {', '.join(known) or '(none)'}")


def check_env_id(env_id: str) -> None:
    """UsageError unless ``env_id`` is a cogrl id or any other registered Gymnasium id."""
    try:
        env_kind(env_id)
    except ValueError:
        ids = ", ".join(cogrl_env_ids()) or "(none)"
        raise UsageError(
            f"unknown environment {env_id!r}; available: {ids}; {ANY_GYM_ID}"
        ) from None


def split_overrides(env_id: str, split: str | None) -> dict[str, str]:
    """``{"split": split or "test"}`` for environments with splits (the cogrl cores that take
    a ``split`` argument), ``{}`` for the others."""
    if env_kind(env_id) == "core":
        core, _ = core_spec(env_id)
        if "split" in inspect.signature(core.__init__).parameters:
            return {"split": split or "test"}
    if split is not None:
        raise UsageError(f"environment {env_id} has no data splits; drop --split")
    return {}


def load_run(run_dir: Path, device: str) -> tuple[Path, Agent]:
    """The run folder and its final checkpoint's agent; UsageError if either is missing."""
    try:
        run_dir = require_run(run_dir)
        return run_dir, agents.load(model_path(run_dir), device=device)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e)) from None


def run_config(agent: Agent, args: argparse.Namespace, video_interval: int) -> dict[str, Any]:
    """The resolved configuration of a training run, as written to config.json."""
    return {
        **agent.describe(),
        "steps": args.steps,
        "preset": not args.no_preset,
        "device": str(agent.device),
        "video_interval": video_interval,
        "command": shlex.join([PROG, *args.argv]),
        "cogrl_version": cogrl.__version__,
        "created": datetime.now().isoformat(timespec="seconds"),
    }


def hparams_metrics(metrics: dict[str, float], split: dict[str, str]) -> dict[str, float]:
    """Final evaluation metrics under HParams tags, e.g. ``final/test_accuracy``."""
    prefix = f"final/{split['split']}_" if split else "final/"
    return {f"{prefix}{k}": v for k, v in metrics.items() if k != "episodes"}


def learn(
    agent: Agent, steps: int, logger: RunLogger, video_interval: int | None, progress: bool
) -> bool:
    """Train; on Ctrl-C stop early so the run is still saved. Returns whether interrupted."""
    try:
        agent.learn(steps, progress_bar=progress, logger=logger, video_interval=video_interval)
    except KeyboardInterrupt:
        print(f"\ninterrupted at step {agent.num_timesteps}; saving the run", file=sys.stderr)
        return True
    return False


def record_rollout(
    agent: Agent,
    path: Path,
    episodes: int,
    seed: int,
    fps: float,
    env_overrides: dict[str, Any],
) -> tuple[np.ndarray, Path]:
    """Roll ``agent`` out for ``episodes`` episodes and write them to the MP4 ``path``.

    Episode ``i`` starts from ``reset(seed=seed + i)``. Returns the frames and the path.
    """
    # One rollout per episode, episode i from seed + i, so that any one replays on its own.
    frames = np.concatenate(
        [rollout_frames(agent, 1, seed=seed + i, **env_overrides) for i in range(episodes)]
    )
    return frames, write_mp4(frames, path, fps=fps)


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
