"""The ``cogrl`` command: list what is registered, describe agents, train agents, evaluate
and record runs, sweep seeds and settings on Ray Tune, and plot learning curves.

```
cogrl list
cogrl describe ppo --env CartPole-v1
cogrl train --env cogrl/GlimpseDigits-v0 --agent ram --steps 200000 --set env.n_glimpses=4
cogrl eval runs/cogrl-GlimpseDigits-v0__ram__0__20250101-120000
cogrl record runs/cogrl-GlimpseDigits-v0__ram__0__20250101-120000 --episodes 4
cogrl sweep --env CartPole-v1 --agent ppo --num-seeds 5 --grid learning_rate=[3e-4,1e-3]
cogrl plot runs/ --out plots
```

``cogrl train`` prints the run folder as its last line and ``cogrl eval`` one JSON object,
so scripts can read them with ``tail -n 1``. Usage errors (unknown environment, agent,
hyperparameter or env argument; a missing run) exit with status 2.
"""

from __future__ import annotations

import argparse
import errno
import inspect
import json
import os
import random
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import cogrl
from cogrl import agents, runner
from cogrl import sweep as sweeps
from cogrl.agents import Agent, evaluate
from cogrl.agents.base import Hyperparameters, agent_name
from cogrl.agents.presets import preset
from cogrl.agents.training import NonFiniteError
from cogrl.envs import cogrl_env_ids
from cogrl.nn import PolicyConfig
from cogrl.nn.cores import core_hyperparameters
from cogrl.runner import DEFAULT_CHECKPOINT_EVERY, DEFAULT_THREADS, EVAL_SEED
from cogrl.runs import (
    DEFAULT_ROOT,
    VIDEOS_DIR,
    model_path,
    parse_overrides,
    read_config,
    require_run,
)
from cogrl.scanpaths import BASELINES as SCANPATH_BASELINES

PROG = "cogrl"
#: Options of `train` that --resume takes from the run itself (it may change the others).
RUN_SETTINGS = (
    "env", "agent", "set", "steps", "num_envs", "seed", "runs_dir", "video_interval",
    "eval_episodes", "checkpoint_every", "no_checkpoint_replay", "threads", "no_preset",
)  # fmt: skip
#: Options of `sweep` that --resume takes from the sweep itself.
SWEEP_SETTINGS = (
    "env", "agent", "seeds", "num_seeds", "set", "grid", "sample", "samples", "search_seed",
    "steps", "num_envs", "device", "threads", "eval_episodes", "video_interval",
    "checkpoint_every", "no_preset", "sweeps_dir", "name", "cpus_per_trial", "gpus_per_trial",
    "max_concurrent", "max_failures", "metric", "mode", "scheduler", "grace_period",
    "reduction_factor",
)  # fmt: skip
EVAL_DEFAULT = (
    f"as many as {runner.EVAL_STEP_BUDGET:,} steps hold at the environment's longest "
    f"episodes, {runner.EVAL_MIN_EPISODES}-{runner.EVAL_MAX_EPISODES} (CartPole-v1: "
    f"{runner.default_eval_episodes(500)}; the glimpse tasks: "
    f"{runner.default_eval_episodes(6)}); {runner.EVAL_UNBOUNDED_EPISODES} where episodes "
    "have no step limit"
)


#: A ``module:name`` in a command-line value (``--env mymod:MyEnv-v0``, ``--set
#: policy.core=mycores:leaky``); not a path such as ``runs/x`` or ``C:\\runs``.
NAMED_MODULE = re.compile(r"(?<![\w./\\-])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]")


class UsageError(Exception):
    """A problem with what the user asked for: reported as ``cogrl: error: ...``, status 2."""


# --- parser -----------------------------------------------------------------------------------
def eval_episodes_or_all(text: str) -> int | str:
    return "all" if text == "all" else non_negative_int(text)


def episodes_or_all(text: str) -> int | str:
    if text == "all":
        return text
    try:
        return positive_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of episodes or 'all', got {text!r}"
        ) from None


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


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Train and inspect RL agents on cogrl's cognitive tasks."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {cogrl.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in (
        add_list_command, add_describe_command, add_train_command, add_eval_command,
        add_record_command, add_sweep_command, add_plot_command,
    ):  # fmt: skip
        add_command(commands)
    return parser


def add_list_command(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("list", help="list the environments and agents")
    sub.set_defaults(run=cmd_list, parser=sub)


def add_describe_command(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "describe",
        help="an agent's hyperparameters and policy settings, with their defaults",
        description="Print the hyperparameters of AGENT (--set NAME=VALUE) and its policy "
        "settings (--set policy.NAME=VALUE) with their defaults, what they mean, and with "
        "--env the preset that `cogrl train` starts from on that environment.",
    )
    sub.add_argument("agent", metavar="AGENT", help="agent name (cogrl list)")
    sub.add_argument("--env", metavar="ID", help="also show the preset for this environment")
    sub.set_defaults(run=cmd_describe, parser=sub)


class OldRunsDir(argparse.Action):
    """``--run-dir``, the old name of ``--runs-dir``: still works, with a note."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        print(
            f"{PROG}: note: --run-dir is now --runs-dir (the folder the run folder is made in)",
            file=sys.stderr,
        )
        namespace.runs_dir = values


def add_train_command(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "train",
        help="train an agent; prints the run folder last",
        description="Train an agent and write a run folder: config.json, TensorBoard events, "
        "model.pt and rollout videos. Prints the run folder as the last line.",
        epilog="`cogrl describe AGENT --env ID` lists the hyperparameters and policy settings "
        "--set takes, with their defaults and the preset for ID.",
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
    sub.add_argument(
        "--compile",
        action="store_true",
        help="run the learner's per-step and per-minibatch functions under torch.compile "
        "(CUDA graphs on a GPU; a warning and eager where it cannot compile; see README, "
        "'Compiling')",
    )
    add_trust_argument(sub)
    sub.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    sub.add_argument(
        "--runs-dir",
        type=Path,
        default=DEFAULT_ROOT,
        metavar="DIR",
        help=f"the folder to make the run folder in (default {DEFAULT_ROOT}/)",
    )
    sub.add_argument(
        "--run-dir", type=Path, action=OldRunsDir, default=argparse.SUPPRESS, help=argparse.SUPPRESS
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
        help="log a rollout video to TensorBoard every N steps (default: steps/4, fewer "
        f"where 4 videos would render more than {runner.VIDEO_FRAMES_PER_STEP:g} frames per "
        "training step, down to one at the end); the final video is also written as an MP4 "
        f"of {runner.VIDEO_EPISODES} episodes; videos stop after "
        f"{runner.VIDEO_MAX_SECONDS:g} s; 0: no videos",
    )
    sub.add_argument(
        "--eval-episodes",
        type=eval_episodes_or_all,
        default=None,
        metavar="N|all",
        help=f"episodes of the final evaluation (default: {EVAL_DEFAULT}; 0: none; 'all': "
        "each item of the split once, as cogrl eval --episodes all)",
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
    sub.add_argument(
        "run_dir",
        type=Path,
        metavar="RUN_DIR",
        help="a run folder; with --human-data also a scanpath baseline by name ("
        + ", ".join(SCANPATH_BASELINES)
        + ") or 'human' (each observer against the others: the ceiling)",
    )
    sub.add_argument(
        "--episodes",
        type=episodes_or_all,
        metavar="N|all",
        default=None,
        help="episodes (default: as many as the run's final evaluation, so that the default "
        f"seed reproduces it; for a run without one, {EVAL_DEFAULT}); 'all': each item of "
        "the split once, where the task's episodes each show one item of a finite set (the "
        "glimpse tasks' images, StoryQA's questions, the scanpath images): the test set's "
        "error as the papers report it",
    )
    add_split_argument(sub)
    sub.add_argument(
        "--seed", type=int, default=EVAL_SEED, metavar="S", help=f"seed (default {EVAL_SEED})"
    )
    sub.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="env.NAME=VALUE",
        help="an environment argument for the evaluation only, e.g. env.min_length=80 "
        "--set env.max_length=80 to evaluate a copy policy on longer sequences (repeatable)",
    )
    add_human_data_arguments(sub)
    add_device_argument(sub)
    add_trust_argument(sub)
    sub.set_defaults(run=cmd_eval, parser=sub)


def add_record_command(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "record",
        help="record rollout videos of a run's checkpoint",
        description="Write a rollout MP4 under RUN_DIR/videos/ and add it to the run's "
        "TensorBoard images as record/rollout. Prints the MP4's path last.",
    )
    sub.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    sub.add_argument(
        "--episodes",
        type=positive_int,
        metavar="N",
        default=runner.VIDEO_EPISODES,
        help=f"episodes, episode i from seed S + i (default {runner.VIDEO_EPISODES})",
    )
    add_split_argument(sub)
    sub.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="S",
        help="seed of the first episode (default: a new random one each time, printed; the "
        "run's final video used the run's seed)",
    )
    sub.add_argument(
        "--fps",
        type=positive_float,
        metavar="F",
        default=None,
        help="frames per second (default: the environment's render_fps, e.g. 50 for "
        "CartPole, 4 for the glimpse tasks)",
    )
    sub.add_argument(
        "--max-seconds",
        type=non_negative_float,
        metavar="T",
        default=runner.VIDEO_MAX_SECONDS,
        help=f"stop the video after T seconds of play (default {runner.VIDEO_MAX_SECONDS:g}; "
        "0: all the episodes)",
    )
    sub.add_argument(
        "--human-data",
        type=Path,
        metavar="FOLDER",
        help="scanpath runs and baselines (RUN_DIR a baseline name then): instead of a video, "
        "draw the model's scanpath beside the observers' on the first N (--episodes) images "
        "of this human eye-movement folder's --split, as PNGs in RUN_DIR/scanpaths/ (a "
        "baseline's in ./scanpaths-NAME/); prints that folder last",
    )
    add_device_argument(sub)
    add_trust_argument(sub)
    sub.set_defaults(run=cmd_record, parser=sub)


def add_sweep_command(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "sweep",
        help="train every combination of seeds, settings, environments and agents on Ray Tune",
        description="A grid or random search of cogrl train runs, several at once on Ray Tune "
        "(this machine, or a cluster with --address). Every trial writes a run folder; the "
        "sweep folder gets results.csv (one row per trial) and is printed last. Needs "
        'pip install "cogrl[ray]".',
        epilog="Settings take cogrl train's --set names. Distributions: "
        + ", ".join(f"{name}(...)" for name in sweeps.DISTRIBUTIONS)
        + ". See README, 'Sweeps'.",
    )
    sub.add_argument("--env", nargs="+", metavar="ID", help="one or more environment ids")
    sub.add_argument("--agent", nargs="+", metavar="NAME", help="one or more agent names")
    seeds = sub.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seeds", type=non_negative_int, nargs="+", metavar="S", help="the seeds (default 0)"
    )
    seeds.add_argument("--num-seeds", type=positive_int, metavar="N", help="seeds 0, 1, ..., N-1")
    sub.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting every trial takes, as cogrl train's --set (repeatable)",
    )
    sub.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=[V1,V2,...]",
        help="try every value of the list (a grid axis; repeatable)",
    )
    sub.add_argument(
        "--sample",
        action="append",
        default=[],
        metavar="KEY=DIST(ARGS)",
        help="draw a value per trial, e.g. learning_rate='loguniform(1e-4,1e-2)' (repeatable)",
    )
    sub.add_argument(
        "--samples",
        type=positive_int,
        default=1,
        metavar="N",
        help="random search: draw the --sample distributions N times for each grid point "
        "(default 1)",
    )
    sub.add_argument(
        "--search-seed", type=int, default=0, metavar="S", help="seed of the draws (default 0)"
    )
    sub.add_argument(
        "--resume",
        type=Path,
        metavar="SWEEP_DIR",
        help="run what is unfinished of the sweep in SWEEP_DIR (failed trials run again)",
    )
    sub.add_argument("--steps", type=positive_int, metavar="N", help="steps per trial (as train)")
    sub.add_argument("--num-envs", type=positive_int, metavar="N", help="as train's")
    add_device_argument(sub)
    add_trust_argument(sub)
    sub.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"torch's CPU threads per trial (default {DEFAULT_THREADS})",
    )
    sub.add_argument(
        "--eval-episodes", type=eval_episodes_or_all, metavar="N|all", help="as train's"
    )
    sub.add_argument(
        "--video-interval",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="as train's; default 0: sweeps record no videos",
    )
    sub.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        default=DEFAULT_CHECKPOINT_EVERY,
        metavar="N",
        help=f"steps between a trial's checkpoints, which it resumes from (default "
        f"{DEFAULT_CHECKPOINT_EVERY:,})",
    )
    sub.add_argument("--no-preset", action="store_true", help="as train's")
    sub.add_argument(
        "--sweeps-dir",
        type=Path,
        default=Path("sweeps"),
        metavar="DIR",
        help="the folder to make the sweep folder in (default sweeps/)",
    )
    sub.add_argument(
        "--name", metavar="NAME", help="the sweep folder's name (default sweep__<time>)"
    )
    sub.add_argument(
        "--address",
        metavar="ADDR",
        help="join a running Ray cluster (host:port, or auto) instead of starting Ray here",
    )
    sub.add_argument(
        "--num-cpus",
        type=positive_int,
        metavar="N",
        help="CPUs of the local Ray instance (default: this machine's)",
    )
    sub.add_argument("--num-gpus", type=non_negative_int, metavar="N", help="GPUs of it")
    sub.add_argument(
        "--cpus-per-trial",
        type=positive_float,
        default=None,
        metavar="N",
        help="CPUs Ray reserves per trial (default: the trial's threads)",
    )
    sub.add_argument(
        "--gpus-per-trial",
        type=non_negative_float,
        default=None,
        metavar="F",
        help="GPUs per trial, fractions allowed (default 1 with --device cuda, else 0)",
    )
    sub.add_argument(
        "--max-concurrent",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="trials at once (default 0: as many as the resources allow)",
    )
    sub.add_argument(
        "--max-failures",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="retries of a failed trial, each from its last checkpoint (default 0)",
    )
    sub.add_argument(
        "--metric",
        metavar="NAME",
        help="the results column the summary ranks by (default eval/accuracy where the task "
        "has it, else eval/mean_return)",
    )
    sub.add_argument("--mode", choices=["max", "min"], default="max", help="best is max or min")
    sub.add_argument(
        "--scheduler",
        choices=["asha"],
        default=None,
        help="stop poor trials early: asha (asynchronous successive halving) compares trials "
        "by --metric (default rollout/ep_rew_mean) after --grace-period steps, then at "
        "--reduction-factor times as many, and stops all but the best 1/factor; needs --steps",
    )
    sub.add_argument(
        "--grace-period",
        type=positive_int,
        default=None,
        metavar="STEPS",
        help="asha: steps every trial runs before it can be stopped (default steps/10)",
    )
    sub.add_argument(
        "--reduction-factor",
        type=positive_int,
        default=4,
        metavar="F",
        help="asha: the ratio of steps between comparisons, and the share kept (default 4)",
    )
    sub.set_defaults(run=cmd_sweep, parser=sub)


def add_plot_command(commands: argparse._SubParsersAction) -> None:
    from cogrl import plot

    sub = commands.add_parser(
        "plot",
        help="learning curves of runs and sweeps, with bootstrap confidence intervals",
        description="Learning curves of the run folders at or under each RUNS_OR_SWEEP (a "
        "run, a folder of runs, a sweep): one panel per environment, one line per group of runs "
        "that differ only by seed, their aggregate and its percentile-bootstrap confidence "
        "interval, against environment steps and wall time; and each group's final score "
        "(the runs' final evaluation, else the curve's last value) as a table, also written "
        f"to OUT/final_scores.csv. Needs matplotlib: {plot.PLOT_EXTRA}.",
    )
    sub.add_argument(
        "paths",
        type=Path,
        nargs="+",
        metavar="RUNS_OR_SWEEP",
        help="a run folder, or a folder (a sweep's, runs/) searched for run folders at any depth",
    )
    sub.add_argument(
        "--metric",
        metavar="TAG",
        help="the TensorBoard scalar to draw (default: rollout/accuracy where the task logs "
        "it, else the task's first episode metric, else the episode return "
        f"{plot.RETURN_TAG})",
    )
    sub.add_argument(
        "--x",
        choices=(*plot.X_AXES, "both"),
        default="both",
        help="x axis: environment steps, wall time since the run began, or one figure of "
        "each (default both)",
    )
    sub.add_argument(
        "--group-by",
        metavar="KEYS",
        type=lambda text: [k.strip() for k in text.split(",")],
        help="comma-separated settings that make a group, as --set names them, plus agent "
        "and steps (e.g. agent, or learning_rate,policy.core; default: every setting but "
        "the seed); groups are always per environment",
    )
    sub.add_argument(
        "--aggregate",
        choices=tuple(plot.AGGREGATES),
        default="mean",
        help="aggregate over a group's runs: mean, median or iqm (interquartile mean, as "
        "rliable recommends; default mean)",
    )
    sub.add_argument(
        "--ci",
        type=float,
        default=95.0,
        metavar="PERCENT",
        help="confidence level of the interval, 0 < PERCENT < 100 (default 95)",
    )
    sub.add_argument(
        "--resamples",
        type=positive_int,
        default=2000,
        metavar="N",
        help="bootstrap resamples (default 2000)",
    )
    sub.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the bootstrap (default 0)"
    )
    sub.add_argument(
        "--points",
        type=positive_int,
        default=200,
        metavar="N",
        help="points of the grid each run's curve is interpolated onto (default 200)",
    )
    sub.add_argument(
        "--out",
        type=Path,
        default=Path("plots"),
        metavar="DIR",
        help="output folder (default plots/)",
    )
    sub.add_argument(
        "--formats",
        nargs="+",
        choices=plot.FORMATS,
        default=["png", "svg"],
        metavar="FORMAT",
        help=f"figure formats, some of {', '.join(plot.FORMATS)} (default png svg)",
    )
    sub.set_defaults(run=cmd_plot, parser=sub)


def add_human_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--human-data",
        type=Path,
        metavar="FOLDER",
        help="scanpath runs and baselines: score scanpaths on this human eye-movement folder's "
        "images (stimuli/ and fixations.jsonl, e.g. ../shared/data/osie) against its "
        "observers, on --split (default test)",
    )
    parser.add_argument(
        "--samples",
        type=positive_int,
        default=1,
        metavar="K",
        help="with --human-data: scanpaths per image (default 1, a run's most likely actions; "
        "with more, a run's are sampled from its policy, as are the random and centre-bias "
        "baselines'; --seed seeds them)",
    )


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust-code",
        action="store_true",
        help="import the modules that the run folder's files name (an environment id or "
        "policy core 'module:name'), which runs their code: only for a run folder you trust. "
        "Without it such a module is refused unless cogrl itself provides it",
    )


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


def check_resume_options(
    args: argparse.Namespace, settings: Sequence[str], what: str, takes: str
) -> None:
    """A UsageError naming the options of ``settings`` given beside --resume (``what``
    resumes with its own)."""
    given = [
        "--" + name.replace("_", "-")
        for name in settings
        if getattr(args, name) != args.parser.get_default(name)
    ]
    if given:
        raise UsageError(
            f"--resume continues {what} with its own settings; drop {' '.join(given)} "
            f"(it takes {takes})"
        )


def cmd_train(args: argparse.Namespace) -> int:
    try:
        if args.resume is not None:
            check_resume_options(
                args, RUN_SETTINGS, "a run", "--device, --compile, --no-progress and --trust-code"
            )
            try:
                device = None if args.device == "auto" else args.device
                result = runner.resume(
                    args.resume,
                    device=device,
                    progress=not args.no_progress,
                    trust_code=args.trust_code,
                    compile=args.compile or None,
                )
            except (FileNotFoundError, ValueError) as e:
                raise UsageError(str(e)) from None
        else:
            if args.env is None or args.agent is None:
                raise UsageError("train needs --env and --agent (or --resume RUN_DIR)")
            if args.trust_code:
                raise UsageError(
                    "--trust-code is for --resume RUN_DIR (the modules its files name); the "
                    "modules named by --env and --set are imported as typed"
                )
            result = runner.train(spec_from_args(args))
    except runner.SpecError as e:
        raise UsageError(str(e)) from None
    except NonFiniteError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        print(getattr(e, "kept", ""), file=sys.stderr)
        return 1
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        print(f"{PROG}: error: {e.strerror}", file=sys.stderr)
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
        compile=args.compile,
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
        root=str(args.runs_dir),
        progress=not args.no_progress,
        command=shlex.join([PROG, *args.argv]),
    )


def cmd_describe(args: argparse.Namespace) -> int:
    try:
        name = agent_name(args.agent)
        if args.env is not None:
            runner.check_env_id(args.env)
    except ValueError as e:
        raise UsageError(str(e)) from None
    cls = agents.AGENTS[name]
    config: Hyperparameters = cls.Config()
    values = config.to_dict()
    policy = values.pop("policy", None)
    print(f"{name}: {inspect.getdoc(cls).splitlines()[0]}")
    python = f"cogrl.agents.make({name!r}, env, NAME=VALUE)"
    print(f"\nhyperparameters (--set NAME=VALUE; in Python: {python}):")
    print_settings(values)
    if policy is not None:
        print("\npolicy settings (--set policy.NAME=VALUE; in Python: policy={NAME: VALUE}):")
        print_settings(policy)
        own = core_hyperparameters(policy["core"]) if policy["core"] != "none" else {}
        if own:
            print(f"  (core {policy['core']!r} takes its own settings too: {own})")
    print(f"\ntraining steps when `cogrl train` is not given --steps: {cls.default_timesteps:,}")
    if args.env is not None:
        found = preset(name, args.env)
        if not runner.has_preset(name, args.env):
            print(f"\nno preset for {name} on {args.env}: `cogrl train` uses the defaults above")
        else:
            print(
                f"\npreset for {name} on {args.env} (cogrl/agents/presets.py; `cogrl train` "
                "applies it under --set, --no-preset ignores it):"
            )
            print_settings(found.hyperparameters)
            for key, value in found.env_kwargs.items():
                print(f"  env.{key} = {json.dumps(value)}")
            if found.timesteps is not None:
                print(f"  steps = {found.timesteps:,}")
    docs = [
        inspect.getdoc(c)
        for c in reversed(cls.Config.__mro__)
        if isinstance(c, type) and issubclass(c, Hyperparameters) and c is not Hyperparameters
    ]
    if policy is not None:
        docs.append(inspect.getdoc(PolicyConfig))
    print("\nwhat they mean:")
    for doc in docs:
        if doc:
            print("\n" + "\n".join(f"  {line}" if line else "" for line in doc.splitlines()))
    return 0


def print_settings(values: Mapping[str, Any], prefix: str = "") -> None:
    """``name = value`` lines, values as JSON (as --set takes them); nested settings dotted."""
    for key, value in values.items():
        if isinstance(value, Mapping) and value and key != "core_kwargs":
            print_settings(value, f"{prefix}{key}.")
        else:
            print(f"  {prefix}{key} = {json.dumps(value)}")


def cmd_eval(args: argparse.Namespace) -> int:
    if args.human_data is not None:
        return cmd_eval_scanpaths(args)
    try:
        hyperparameters, env_kwargs = parse_overrides(args.set)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if hyperparameters:
        raise UsageError(
            f"eval takes environment arguments only (--set env.NAME=VALUE), got "
            f"{sorted(hyperparameters)}: the agent's settings are the run's"
        )
    run_dir, agent = load_run(args.run_dir, args.device, args.trust_code)
    split = split_overrides(agent, args.split)
    episodes = args.episodes or run_eval_episodes(run_dir) or default_episodes(agent)
    try:
        metrics = evaluate(agent, episodes, seed=args.seed, **split, **env_kwargs)
    except ValueError as e:
        raise UsageError(f"{agent.env_id}: {e}") from None
    metrics = clean_numbers(metrics)
    print(f"run: {run_dir}")
    print(
        f"agent {agent.name} on {agent.env_id}, {agent.num_timesteps:,} training steps, "
        f"seed {args.seed}"
    )
    print_metrics(metrics, split)
    result = {
        "run_dir": str(run_dir),
        "env": agent.env_id,
        "agent": agent.name,
        "split": split.get("split"),
        "seed": args.seed,
        "env_kwargs": env_kwargs,
        **metrics,
    }
    print(json.dumps(result))
    return 0


def cmd_eval_scanpaths(args: argparse.Namespace) -> int:
    """``cogrl eval RUN|BASELINE|human --human-data FOLDER``: the scanpath scores."""
    from cogrl import scanpaths

    if args.set or args.episodes is not None:
        raise UsageError("--human-data scores one scanpath set per image: drop --set/--episodes")
    split = args.split or "test"
    data = human_data(args.human_data, split)
    name = str(args.run_dir)
    if name == "human":
        scores = scanpaths.human_ceiling(data)
        what = "human observers, each against the others"
    else:
        name, paths, agent = model_scanpaths(args, data, args.samples, args.seed)
        maps = None
        if name.startswith("wta:") or name == "center_bias":
            maps = scanpaths.saliency_maps(name.removeprefix("wta:"), data)
        scores = scanpaths.score_scanpaths(paths, data, maps)
        what = (
            f"baseline {name}"
            if agent is None
            else f"agent {agent.name}, {agent.num_timesteps:,} training steps"
        )
    print(f"{what}: {len(data)} {split} images of {data.root}, {args.samples} scanpath(s) each")
    for key, value in scores.items():
        print(f"{key.replace('_', ' ')} {value:.4g}")
    result = {
        "model": name,
        "human_data": str(data.root),
        "split": split,
        "images": len(data),
        "samples": args.samples,
        "seed": args.seed,
        **clean_numbers(scores),
    }
    print(json.dumps(result))
    return 0


def run_eval_episodes(run_dir: Path) -> int | str | None:
    """The episodes of a run's final evaluation, or "all" (None where it had none or did not
    say)."""
    try:
        count = read_config(run_dir)["run"]["eval_episodes"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if count == "all":
        return count
    return count if isinstance(count, int) and count > 0 else None


def default_episodes(agent: Agent) -> int:
    return runner.default_eval_episodes(runner.episode_steps(agent))


def clean_numbers(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics computed in float32 as the shortest decimals that float32 holds them by
    (0.944, not 0.9440000057220459)."""
    return {
        k: float(np.format_float_positional(np.float32(v), unique=True, trim="-"))
        if isinstance(v, float)
        else v
        for k, v in metrics.items()
    }


def cmd_record(args: argparse.Namespace) -> int:
    if args.human_data is not None:
        return cmd_record_scanpaths(args)
    run_dir, agent = load_run(args.run_dir, args.device, args.trust_code)
    split = split_overrides(agent, args.split)
    seed = random.randrange(2**31) if args.seed is None else args.seed
    fps = runner.video_fps(agent) if args.fps is None else args.fps
    name = "_".join(["record", *split.values(), f"seed{seed}", f"{args.episodes}ep"])
    try:
        frames, path, shown = runner.record_rollout(
            agent, run_dir / VIDEOS_DIR / f"{name}.mp4", args.episodes, seed, fps, split,
            args.max_seconds or None,
        )  # fmt: skip
    except runner.CANNOT_RENDER as e:
        raise UsageError(f"{agent.env_id} cannot be recorded: {e}") from None
    with runner.run_logger(agent, run_dir) as logger:
        logger.video("record/rollout", frames, step=agent.num_timesteps, fps=fps)
    print(f"{len(frames) / fps:.1f} s ({len(frames)} frames at {fps:g} fps), seed {seed}")
    if shown < args.episodes:
        print(
            f"the video stops after {args.max_seconds:g} s: it shows {shown} of the "
            f"{args.episodes} episodes in full (--max-seconds 0 for all)"
        )
    if seed == read_config(run_dir).get("run", {}).get("seed"):
        print(
            f"seed {seed} is the run's own: the episodes of its final video "
            f"(videos/final-{agent.num_timesteps}.mp4) come first"
        )
    print(path)
    return 0


def cmd_record_scanpaths(args: argparse.Namespace) -> int:
    """``cogrl record RUN|BASELINE --human-data FOLDER``: model and humans side by side."""
    from PIL import Image

    from cogrl import scanpaths

    split = args.split or "test"
    data = human_data(args.human_data, split)
    shown = min(args.episodes, len(data))
    data = data.subset(range(shown))
    seed = 0 if args.seed is None else args.seed
    name, paths, agent = model_scanpaths(args, data, 1, seed)
    if agent is None:
        folder = Path(f"scanpaths-{name.replace(':', '-')}")
    else:
        folder = Path(name) / "scanpaths"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(shown):
        picture = scanpaths.draw_scanpaths(data.image(i), paths[i][0], data.scanpaths[i])
        Image.fromarray(picture).save(folder / f"{Path(data.names[i]).stem}.png")
    print(f"{shown} {split} images of {data.root}: the model's scanpath (left), the observers'")
    print(folder)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    try:
        if args.resume is not None:
            check_resume_options(
                args,
                SWEEP_SETTINGS,
                "a sweep",
                "--address, --num-cpus, --num-gpus and --trust-code",
            )
            folder, status = sweeps.resume_sweep(
                args.resume, args.address, args.num_cpus, args.num_gpus, args.trust_code
            )
        else:
            if not args.env or not args.agent:
                raise UsageError("sweep needs --env and --agent (or --resume SWEEP_DIR)")
            if args.trust_code:
                raise UsageError(
                    "--trust-code is for --resume SWEEP_DIR (the modules its sweep.json "
                    "names); the modules named by --env and --set are imported as typed"
                )
            folder, status = sweeps.run_sweep(
                sweep_from_args(args), args.sweeps_dir, args.name, args.address, args.num_cpus,
                args.num_gpus,
            )  # fmt: skip
    except sweeps.SweepError as e:
        raise UsageError(str(e)) from None
    print(folder)
    return status


def sweep_from_args(args: argparse.Namespace) -> sweeps.Sweep:
    fixed = dict(map(sweeps.parse_setting, args.set))
    grid = dict(sweeps.parse_grid(item) for item in args.grid)
    sample = {
        key: [dist, *values] for key, dist, values in map(sweeps.parse_distribution, args.sample)
    }
    threads = args.threads or DEFAULT_THREADS
    return sweeps.Sweep(
        envs=args.env,
        agents=args.agent,
        seeds=list(range(args.num_seeds)) if args.num_seeds else (args.seeds or [0]),
        fixed=fixed,
        grid=grid,
        sample=sample,
        samples=args.samples,
        search_seed=args.search_seed,
        steps=args.steps,
        num_envs=args.num_envs,
        device=args.device,
        threads=args.threads,
        eval_episodes=args.eval_episodes,
        video_interval=args.video_interval,
        checkpoint_every=args.checkpoint_every,
        preset=not args.no_preset,
        cpus_per_trial=args.cpus_per_trial or threads,
        gpus_per_trial=(
            float(args.device.startswith("cuda"))
            if args.gpus_per_trial is None
            else args.gpus_per_trial
        ),
        max_concurrent=args.max_concurrent,
        max_failures=args.max_failures,
        metric=args.metric,
        mode=args.mode,
        scheduler=args.scheduler,
        grace_period=args.grace_period,
        reduction_factor=args.reduction_factor,
        command=shlex.join([PROG, *args.argv]),
    )


def cmd_plot(args: argparse.Namespace) -> int:
    from cogrl import plot

    try:
        result = plot.plot(
            args.paths, out=args.out, metric=args.metric, x=args.x, group_by=args.group_by,
            aggregate=args.aggregate, ci=args.ci, resamples=args.resamples, seed=args.seed,
            points=args.points, formats=args.formats,
        )  # fmt: skip
    except ImportError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        raise UsageError(str(e)) from None
    runs = sum(len(g.runs) for g in result.groups)
    for note in result.notes:
        print(f"note: {note}")
    print(f"{runs} runs in {len(result.groups)} groups; final scores:")
    print(result.table)
    for path in result.files:
        print(path)
    return 0


# --- helpers ----------------------------------------------------------------------------------
def human_data(folder: Path, split: str):
    """The ``split`` of a human eye-movement folder; UsageError naming what is wrong."""
    from cogrl.datasets import load_fixations

    try:
        return load_fixations(folder, split)
    except ValueError as e:
        raise UsageError(str(e)) from None


def model_scanpaths(
    args: argparse.Namespace, data: Any, samples: int, seed: int
) -> tuple[str, list, Agent | None]:
    """``args.run_dir``'s scanpaths on ``data``: a baseline's by name, or a run's agent's
    (its most likely actions for one sample, sampled for more). Returns the model's name
    (the run folder for a run), the scanpaths, and the agent (None for a baseline)."""
    from cogrl import scanpaths

    name = str(args.run_dir)
    try:
        if name in SCANPATH_BASELINES or name.startswith("wta:"):
            return name, scanpaths.baseline_scanpaths(name, data, samples=samples, seed=seed), None
        if not args.run_dir.exists():
            raise UsageError(
                f"{name!r} is neither a run folder (it does not exist) nor a scanpath baseline "
                f"({', '.join(SCANPATH_BASELINES)}, wta:MODEL)"
                + (" nor 'human'" if args.command == "eval" else "")
            )
        run_dir, agent = load_run(args.run_dir, args.device, args.trust_code)
        paths = scanpaths.agent_scanpaths(
            agent, data, samples=samples, deterministic=samples == 1, seed=seed
        )
        return str(run_dir), paths, agent
    except ValueError as e:
        raise UsageError(str(e)) from None


def split_overrides(agent: Agent, split: str | None) -> dict[str, str]:
    try:
        return runner.eval_split(agent, split)
    except runner.SpecError as e:
        raise UsageError(str(e)) from None


def load_run(run_dir: Path, device: str, trust_code: bool) -> tuple[Path, Agent]:
    """The run folder and its final checkpoint's agent; UsageError if either is missing,
    or if it names a module that ``trust_code`` does not allow importing."""
    try:
        run_dir = require_run(run_dir)
        return run_dir, agents.load(model_path(run_dir), device=device, trust_code=trust_code)
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
    # The task's other episode metrics (e.g. the copy tasks' bits wrong per sequence).
    standard = {"episodes", "mean_return", "std_return", "mean_length", "accuracy"}
    for name, value in metrics.items():
        if name not in standard:
            print(f"{name.replace('_', ' ')} {value:.4g}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cogrl`` command with ``argv`` (default ``sys.argv[1:]``); returns the status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or argparse's own usage error (status 2)
        return e.code if isinstance(e.code, int) else int(e.code is not None)
    args.argv = argv
    # As `python -m cogrl` does, so that the `module:name` ids and cores the user types
    # import from modules in the working directory; only then (or with --trust-code), so
    # that a module shipped inside a run folder is never imported because a file named it.
    named = any(NAMED_MODULE.search(token) for token in argv)
    if named or getattr(args, "trust_code", False):
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except UsageError as e:
        args.parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `cogrl describe ppo | head`: the reader has what it wanted
        # Python's advice: point stdout at devnull, so that flushing it at exit stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
