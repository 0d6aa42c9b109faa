"""A training run as a function: what ``cogrl train`` does, for scripts, benchmarks and
sweeps to call.

```python
from cogrl.runner import RunSpec, train, resume

result = train(RunSpec(env="cogrl/GlimpseDigits-v0", agent="ram", steps=200_000))
print(result.run_dir, result.metrics)
result = resume(result.run_dir)   # after an interruption: continues from checkpoint.pt
```

:func:`train` creates the run folder (``runs/<env>__<agent>__<seed>__<time>/``) with
``config.json``, TensorBoard events, ``checkpoint.pt`` (the full training state, every
``checkpoint_every`` steps and at the end, written atomically), ``model.pt`` (the final
weights), rollout videos and the final evaluation, whose defaults scale with the
environment (:func:`default_eval_episodes`, :func:`default_video_interval`). SIGINT and
SIGTERM stop training at the end of the current update and leave a checkpoint to resume
from. :func:`resume` continues
a run from its checkpoint: on cogrl's batched cores, a resumed run ends with the same
weights and logs the same scalars after the resume point as an uninterrupted one (same
seed, the CPU, one thread); TensorBoard drops what the interrupted run logged after its
checkpoint, so the curves stay unbroken. A non-finite loss, gradient or parameter stops
the run with :class:`~cogrl.agents.training.NonFiniteError`: the last finite checkpoint is
kept and no model is saved.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import cogrl
from cogrl import agents
from cogrl.agents import Agent, evaluate, rollout_frames
from cogrl.agents.base import agent_name, did_you_mean, load_checkpoint, plain_json
from cogrl.agents.evaluation import log_memory
from cogrl.agents.presets import PRESETS, preset
from cogrl.agents.training import NonFiniteError, RunContext
from cogrl.checkpoint import read_checkpoint, remove_stale_temporaries
from cogrl.checks import check_int
from cogrl.envs import GymVectorCore, cogrl_env_ids, env_kind, make_core
from cogrl.imports import names_from
from cogrl.logging import RunLogger, write_mp4
from cogrl.nn import PolicyConfig
from cogrl.runs import (
    CHECKPOINT_NAME,
    DEFAULT_ROOT,
    MODEL_NAME,
    VIDEOS_DIR,
    config_hparams,
    create_run_dir,
    merge_settings,
    read_config,
    write_config,
)

__all__ = [
    "DEFAULT_THREADS",
    "RunResult",
    "RunSpec",
    "SpecError",
    "build_agent",
    "default_eval_episodes",
    "default_video_interval",
    "resume",
    "train",
]

EVAL_SEED = 0  # also the default of `cogrl eval`, so it reproduces a run's final metrics
#: The final evaluation's default episode count (:func:`default_eval_episodes`): as many
#: as EVAL_STEP_BUDGET steps hold, between EVAL_MIN_EPISODES and EVAL_MAX_EPISODES, and
#: EVAL_UNBOUNDED_EPISODES where episodes have no step limit.
EVAL_STEP_BUDGET = 50_000
EVAL_MIN_EPISODES = 10
EVAL_MAX_EPISODES = 1000
EVAL_UNBOUNDED_EPISODES = 100
#: Episodes of the final video and of `cogrl record`, each from its own seed.
VIDEO_EPISODES = 4
#: Videos stop after this much play (at the environment's frame rate): 500 frames of
#: CartPole at 50 fps, every frame of 4 glimpse episodes at 4 fps.
VIDEO_MAX_SECONDS = 10.0
#: The frame rate of videos where the environment declares no ``metadata["render_fps"]``.
DEFAULT_VIDEO_FPS = 30.0
#: The rendered frames a run's training videos may take, per training step. Rendering is
#: costly (CartPole draws a frame in about as long as PPO takes for 15 training steps), so
#: runs get 4 videos where episodes are short and fewer where they are long.
VIDEO_FRAMES_PER_STEP = 0.02
TRAINING_VIDEOS = 4
#: Steps between training checkpoints when a spec does not say (about a minute of PPO
#: on CartPole on one core).
DEFAULT_CHECKPOINT_EVERY = 100_000
#: Torch's intra-op threads on the CPU when a spec does not say: one. Several trainings
#: at once (and sweeps) are the rule, and threads that wait for a descheduled sibling
#: made PPO on CartPole 6-25x slower (BENCHMARKS.md, "CPU threads").
DEFAULT_THREADS = 1
ANY_GYM_ID = "any registered Gymnasium id (e.g. CartPole-v1, or mypackage:MyEnv-v0) works too"
#: What rendering an environment without an rgb_array renderer raises.
CANNOT_RENDER = (gym.error.DependencyNotInstalled, NotImplementedError, RuntimeError, ValueError)


class SpecError(ValueError):
    """Something about what was asked for is wrong; found before any run folder exists."""


@dataclass
class RunSpec:
    """What to train and how; every field is a plain JSON value (``config.json`` keeps it).

    - ``env``, ``agent``: ids (any registered Gymnasium id works); ``seed``; ``device``;
      ``compile``: the learner's hot functions under ``torch.compile``
      (:mod:`cogrl.agents.compiling`).
    - ``steps``: environment steps (default: the preset's, else the agent's default).
    - ``hyperparameters``, ``env_kwargs``: over the preset's (``preset=False``: over the
      agent's plain defaults); ``policy`` settings nest: ``{"policy": {"core": "gru"}}``.
    - ``num_envs``: the agent's ``num_envs`` hyperparameter.
    - ``video_interval``: a rollout video every N steps (None:
      :func:`default_video_interval`; 0: no videos at all).
    - ``eval_episodes``: episodes of the final evaluation (None:
      :func:`default_eval_episodes`; 0: none; ``"all"``: each item of the split once, as
      ``evaluate(agent, "all")``).
    - ``checkpoint_every``: steps between training checkpoints (0: only at the end);
      ``checkpoint_replay``: whether they hold the replay of off-policy learners.
    - ``threads``: torch's CPU threads (None: :data:`DEFAULT_THREADS`).
    - ``root``: the folder the run folder is made in; ``progress``: show a progress bar;
      ``command``: the command line that asked for the run (recorded).
    """

    env: str
    agent: str
    seed: int = 0
    device: str = "auto"
    compile: bool = False
    steps: int | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    preset: bool = True
    num_envs: int | None = None
    video_interval: int | None = None
    eval_episodes: int | None = None
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    checkpoint_replay: bool = True
    threads: int | None = None
    root: str = str(DEFAULT_ROOT)
    progress: bool = True
    command: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    run_dir: Path
    agent: Agent
    metrics: dict[str, float]
    split: dict[str, str]
    video: str
    interrupted: bool


def set_threads(threads: int | None) -> int:
    """Set torch's CPU intra-op threads (None: :data:`DEFAULT_THREADS`); returns them."""
    threads = DEFAULT_THREADS if threads is None else threads
    check_int("threads", threads)
    torch.set_num_threads(int(threads))
    return int(threads)


def check_env_id(env_id: str) -> None:
    try:
        env_kind(env_id)
    except ValueError as e:
        if isinstance(env_id, str) and ":" in env_id:
            raise SpecError(str(e)) from None  # the module's import error says more
        hint = did_you_mean(env_id, gym.registry)
        ids = ", ".join(cogrl_env_ids()) or "(none)"
        raise SpecError(
            f"unknown environment {env_id!r}{hint}; cogrl's: {ids}; {ANY_GYM_ID}"
        ) from None


def has_preset(agent: str, env_id: str) -> bool:
    """Whether ``cogrl.agents.presets`` holds a preset for ``agent`` on ``env_id``."""
    return env_id in PRESETS.get(agent, {})


def without_old_core_settings(
    preset_hp: Mapping[str, Any], given: Mapping[str, Any]
) -> dict[str, Any]:
    """The preset's hyperparameters without the policy settings of its core where ``given``
    switches to another core (``--set policy.core=lstm`` on Copy, whose preset's NTM has
    ``memory_size``): they belong to the core the user replaced. A note names them."""
    policy, new = preset_hp.get("policy"), given.get("policy")
    if not isinstance(policy, Mapping) or not isinstance(new, Mapping):
        return dict(preset_hp)
    if "core" not in new or new["core"] == policy.get("core"):
        return dict(preset_hp)
    own = {f.name for f in fields(PolicyConfig)}
    dropped = sorted(k for k in policy if k not in own)
    if not dropped:
        return dict(preset_hp)
    print(
        f"note: policy.core={new['core']} replaces the preset's {policy.get('core')!r}; "
        f"its settings {dropped} are dropped",
        file=sys.stderr,
    )
    return {**preset_hp, "policy": {k: v for k, v in policy.items() if k in own}}


def build_agent(spec: RunSpec) -> Agent:
    """The agent ``spec`` asks for (resolving its agent name, preset and steps into
    ``spec``); a :class:`SpecError` if anything about it is wrong."""
    check_env_id(spec.env)
    try:
        spec.agent = agent_name(spec.agent)
    except ValueError as e:
        raise SpecError(str(e)) from None
    try:
        counts = [("steps", 1), ("num_envs", 1), ("threads", 1), ("video_interval", 0)]
        if spec.eval_episodes != "all":  # else a count of 0 or more
            counts.append(("eval_episodes", 0))
        for name, low in counts:
            if getattr(spec, name) is not None:
                check_int(name, getattr(spec, name), low=low)
        check_int("checkpoint_every", spec.checkpoint_every, low=0)
    except ValueError as e:
        raise SpecError(str(e)) from None
    hyperparameters, env_kwargs = dict(spec.hyperparameters), dict(spec.env_kwargs)
    # One truth in config.json's "run": whether a preset was applied (asked for, and one
    # exists for this agent and environment).
    spec.preset = bool(spec.preset) and has_preset(spec.agent, spec.env)
    if spec.preset:
        # Per-environment defaults (cogrl.agents.presets) under the spec's own settings.
        found = preset(spec.agent, spec.env)
        hyperparameters = merge_settings(
            without_old_core_settings(found.hyperparameters, hyperparameters),
            hyperparameters,
        )
        env_kwargs = {**found.env_kwargs, **env_kwargs}
        if spec.steps is None:
            spec.steps = found.timesteps
    if spec.num_envs is not None:
        hyperparameters["num_envs"] = spec.num_envs
    try:
        # A core of one checks the env arguments' names and values (agents may build
        # their cores only when they learn).
        make_core(spec.env, 1, "cpu", **env_kwargs).close()
    except (ValueError, TypeError) as e:
        raise SpecError(f"environment {spec.env}: {e}") from None
    try:
        agent = agents.make(
            spec.agent,
            spec.env,
            device=spec.device,
            seed=spec.seed,
            env_kwargs=env_kwargs,
            compile=spec.compile,
            **hyperparameters,
        )
    except (ValueError, TypeError) as e:
        raise SpecError(f"agent {spec.agent}: {e}") from None
    if spec.steps is None:
        spec.steps = agent.default_timesteps
    return agent


def episode_steps(agent: Agent) -> int | None:
    """The most steps an episode of ``agent``'s environment takes (its ``max_episode_steps``,
    or the TimeLimit of a Gymnasium environment); None where episodes have no limit."""
    core = agent.make_core(1)
    try:
        bound = core.max_episode_steps
        if bound is None and isinstance(core, GymVectorCore):
            spec = core.envs[0].spec
            bound = None if spec is None else spec.max_episode_steps
    finally:
        core.close()
    return None if bound is None else int(bound)


def default_eval_episodes(max_episode_steps: int | None) -> int:
    """Episodes of a final evaluation by default: as many as :data:`EVAL_STEP_BUDGET` steps
    hold at the longest episodes, at least :data:`EVAL_MIN_EPISODES` and at most
    :data:`EVAL_MAX_EPISODES` (1000 on the glimpse tasks, 100 on CartPole-v1's 500-step
    episodes); :data:`EVAL_UNBOUNDED_EPISODES` where episodes have no step limit."""
    if max_episode_steps is None:
        return EVAL_UNBOUNDED_EPISODES
    fit = EVAL_STEP_BUDGET // max(1, max_episode_steps)
    return max(EVAL_MIN_EPISODES, min(EVAL_MAX_EPISODES, fit))


def default_video_interval(steps: int, max_episode_steps: int | None) -> int:
    """Steps between a run's rollout videos by default: ``steps / 4`` where 4 videos (of 2
    episodes each) render at most :data:`VIDEO_FRAMES_PER_STEP` frames per training step,
    fewer videos where episodes are longer, down to one at the end (the interval is then
    ``steps``); one at the end too where episodes have no step limit."""
    if max_episode_steps is None:
        return steps
    frames_per_video = 2 * max_episode_steps + 1
    videos = int(VIDEO_FRAMES_PER_STEP * steps // frames_per_video)
    return max(1, steps // max(1, min(TRAINING_VIDEOS, videos)))


def video_fps(agent: Agent) -> float:
    """The frame rate of ``agent``'s environment (``metadata["render_fps"]``)."""
    fps = getattr(agent, "env_metadata", {}).get("render_fps")
    if isinstance(fps, (int, float)) and not isinstance(fps, bool) and 0 < fps < float("inf"):
        return float(fps)
    return DEFAULT_VIDEO_FPS


def headless_rendering() -> None:
    """Let pygame (which draws the classic-control environments) render off-screen where
    there is no display: SDL would otherwise look for one at every ``pygame.init`` and print
    ``XDG_RUNTIME_DIR is invalid or not set``. A display or a driver the user chose wins."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def eval_split(agent: Agent, split: str | None = None) -> dict[str, str]:
    """``{"split": split or "test"}`` for environments that declare data splits
    (``metadata["splits"]``), ``{}`` for the others (where asking for a split is an error)."""
    splits = tuple(agent.env_metadata.get("splits", ()))
    if splits:
        if split is not None and split not in splits:
            raise SpecError(
                f"split must be one of {list(splits)} for {agent.env_id}, got {split!r}"
            )
        return {"split": split or ("test" if "test" in splits else splits[-1])}
    if split is not None:
        raise SpecError(f"environment {agent.env_id} has no data splits; drop --split")
    return {}


def run_context(run_dir: Path, every: int, include_replay: bool) -> RunContext:
    """The run's :class:`RunContext`: the training checkpoint ``run_dir/checkpoint.pt``
    every ``every`` steps (0: only at the end, which :func:`_run` writes)."""
    path = run_dir / CHECKPOINT_NAME

    def checkpoint(agent: Agent) -> None:
        with resumable_on_full_disk(run_dir):
            agent.save(path, training=True, include_replay=include_replay)

    return RunContext(checkpoint, every if every > 0 else sys.maxsize // 4)


@contextlib.contextmanager
def resumable_on_full_disk(run_dir: Path) -> Iterator[None]:
    """A full disk while the run writes a file: the error (OSError, ENOSPC) also says that
    the last checkpoint is intact and how to go on from it."""
    try:
        yield
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        last = run_dir / f"{CHECKPOINT_NAME}.pt"
        kept = f"the last checkpoint {last} is intact" if last.is_file() else "no checkpoint yet"
        raise OSError(
            errno.ENOSPC,
            f"{e.strerror}. The run stopped: {kept}; free space on the disk, then resume "
            f"with: cogrl train --resume {run_dir}",
        ) from None


@contextlib.contextmanager
def stop_on_signals(run: RunContext) -> Iterator[None]:
    """SIGINT and SIGTERM ask the training of ``run`` to stop at the end of its current
    update (which then writes a checkpoint); a second SIGINT interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, frame: Any) -> None:
        if run.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        run.request_stop()
        name = signal.Signals(signum).name
        print(f"\n{name}: stopping after this update; a checkpoint follows", file=sys.stderr)

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


Callback = Callable[[Agent, dict[str, float]], Any]


def train(spec: RunSpec, callback: Callback | None = None) -> RunResult:
    """Run ``spec`` in a new run folder under ``spec.root``; see the module docstring."""
    agent = build_agent(spec)  # every error in the spec is found before the run folder exists
    set_threads(spec.threads)
    # config.json is JSON: numpy numbers and paths in the spec become plain values, and what
    # JSON cannot hold is an error before the run folder exists.
    try:
        spec.hyperparameters = plain_json(spec.hyperparameters, "hyperparameters")
        spec.env_kwargs = plain_json(spec.env_kwargs, "env_kwargs")
        spec.root = os.fspath(spec.root)
        json.dumps(spec.to_dict())
    except (ValueError, TypeError) as e:
        raise SpecError(str(e)) from None
    if spec.video_interval is None or spec.eval_episodes is None:
        bound = episode_steps(agent)
        if spec.video_interval is None:
            spec.video_interval = default_video_interval(spec.steps, bound)
        if spec.eval_episodes is None:
            spec.eval_episodes = default_eval_episodes(bound)
    split = eval_split(agent)
    if spec.eval_episodes == "all" and agent.make_core(1, **split).num_items is None:
        raise SpecError(
            f"eval_episodes='all' evaluates each item of a finite set once; {agent.env_id} "
            "draws its episodes afresh: give a number of episodes"
        )
    run_dir = create_run_dir(spec.root, agent.env_id, agent.name, agent.seed)
    config = run_config(agent, spec)
    write_config(run_dir, config)
    print(f"run folder: {run_dir}", flush=True)
    with run_logger(agent, run_dir) as logger:
        return _run(agent, spec, run_dir, logger, split, spec.steps, True, callback)


def resume(
    run_dir: str | Path,
    device: str | None = None,
    progress: bool | None = None,
    callback: Callback | None = None,
    trust_code: bool = False,
    compile: bool | None = None,
) -> RunResult:
    """Continue the run in ``run_dir`` from its ``checkpoint.pt``. A module that the run's
    files name (its environment id or policy core ``"module:name"``) is imported only if
    this process has imported it or ``trust_code=True`` (see :mod:`cogrl.imports`).
    ``device`` and ``compile`` (None: the run's own) may differ from the run's."""
    with names_from(Path(run_dir), trust_code):
        return _resume(Path(run_dir), device, progress, callback, trust_code, compile)


def _resume(
    run_dir: Path,
    device: str | None,
    progress: bool | None,
    callback: Callback | None,
    trust_code: bool,
    compile: bool | None = None,
) -> RunResult:
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {str(run_dir)!r} does not exist")
    try:
        config = read_config(run_dir)
        spec = RunSpec(**config["run"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{run_dir} has no readable run configuration ({e!r})") from None
    if device is not None:
        spec.device = device
    if compile is not None:
        spec.compile = compile
    if progress is not None:
        spec.progress = progress
    set_threads(spec.threads)
    for stale in remove_stale_temporaries(run_dir):
        print(f"removed {stale.name}, left by a write that was killed", flush=True)
    agent, training = load_checkpoint(
        run_dir / f"{CHECKPOINT_NAME}.pt", device=spec.device, trust_code=trust_code
    )
    if training is None:
        raise ValueError(f"{run_dir / (CHECKPOINT_NAME + '.pt')} holds no training state")
    agent.use_compile(spec.compile)
    try:
        agent.load_training_state(training)
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        raise ValueError(
            f"{run_dir / (CHECKPOINT_NAME + '.pt')}: its training state does not fit this "
            f"agent ({type(e).__name__}: {e})"
        ) from None
    end = agent.progress["end"] if agent.progress else agent.num_timesteps
    remaining = end - agent.num_timesteps
    if remaining <= 0 and (run_dir / f"{MODEL_NAME}.pt").is_file():
        raise ValueError(
            f"{run_dir} has finished its {end:,} steps; nothing to resume (cogrl eval it, or "
            "train a new run)"
        )
    split = eval_split(agent)
    print(f"run folder: {run_dir} (resumed at step {agent.num_timesteps:,})", flush=True)
    if spec.eval_episodes is None:  # a run from before the count was resolved and recorded
        spec.eval_episodes = default_eval_episodes(episode_steps(agent))
    # TensorBoard drops what the interrupted run logged after its checkpoint.
    with run_logger(agent, run_dir, purge_step=agent.num_timesteps + 1) as logger:
        return _run(agent, spec, run_dir, logger, split, remaining, False, callback)


def run_logger(agent: Agent, run_dir: Path, purge_step: int | None = None) -> RunLogger:
    """The run's logger: its videos at the environment's frame rate, at most
    :data:`VIDEO_MAX_SECONDS` long."""
    return RunLogger(
        run_dir, purge_step=purge_step, video_fps=video_fps(agent), max_seconds=VIDEO_MAX_SECONDS
    )


def _run(
    agent: Agent,
    spec: RunSpec,
    run_dir: Path,
    logger: RunLogger,
    split: dict[str, str],
    steps: int,
    fresh: bool,
    callback: Callback | None,
) -> RunResult:
    run = run_context(run_dir, spec.checkpoint_every, spec.checkpoint_replay)
    no_video = "video_interval=0"
    if spec.video_interval:
        no_video = render_problem(agent, split)
    # Videos during training; where the only one is at the end, the final rollout below
    # makes it, so that its frames are rendered once for the GIF and the MP4.
    interval = spec.video_interval if 0 < (spec.video_interval or 0) < spec.steps else None
    if no_video:
        interval = None
    with stop_on_signals(run):
        try:
            if steps > 0:
                agent.learn(
                    steps,
                    callback=callback,
                    progress_bar=spec.progress,
                    logger=logger,
                    video_interval=interval,
                    reset_num_timesteps=fresh,
                    run=run,
                )
        except NonFiniteError as e:
            path = run_dir / f"{CHECKPOINT_NAME}.pt"
            if path.is_file():
                kept = json.loads(read_checkpoint(path)["config"])["num_timesteps"]
                e.kept = f"the last finite checkpoint (step {kept:,}) is kept: {path}"
            else:
                e.kept = f"no checkpoint was due before it; {run_dir} holds no model"
            raise
    record_steps(run_dir, agent.num_timesteps)
    interrupted = run.stop_requested
    if interrupted:
        print(
            f"stopped at step {agent.num_timesteps:,}; resume with: cogrl train --resume {run_dir}",
            file=sys.stderr,
        )
        return RunResult(run_dir, agent, {}, split, "none (interrupted)", True)
    # The end of training: the final checkpoint, then the model (checked finite).
    step = agent.num_timesteps
    agent.guard.check(agent.modules(), step)
    run.checkpoint(agent)
    with resumable_on_full_disk(run_dir):
        agent.save(run_dir / MODEL_NAME)
    metrics: dict[str, float] = {}
    if spec.eval_episodes:
        metrics = evaluate(agent, spec.eval_episodes, seed=EVAL_SEED, **split)
        logger.hparams(
            config_hparams(read_config(run_dir)), hparams_metrics(metrics, split), step=step
        )
    video = f"none ({no_video})"
    if not no_video:
        fps = video_fps(agent)
        frames, path, _ = record_rollout(
            agent, run_dir / VIDEOS_DIR / f"final-{step}.mp4", VIDEO_EPISODES, spec.seed, fps,
            split, VIDEO_MAX_SECONDS,
        )  # fmt: skip
        if (agent.progress or {}).get("last_video") != step:
            logger.video("rollout/video", frames, step, fps=fps)
            log_memory(agent, logger)
        video = str(path)
    return RunResult(run_dir, agent, metrics, split, video, False)


def render_problem(agent: Agent, env_overrides: Mapping[str, Any]) -> str | None:
    """Why ``agent``'s environment cannot draw rollout videos (``rgb_array`` frames), or
    None where it can: asked once before training, so that a run without videos says so
    at the end instead of warning at every video."""
    headless_rendering()
    try:
        core = agent.make_core(1, autoreset=False, render_mode="rgb_array", **env_overrides)
        try:
            core.reset(seed=0)
            core.render(0)
        finally:
            core.close()
    except CANNOT_RENDER as e:
        return f"{agent.env_id} does not render: {str(e) or type(e).__name__}"
    return None


def record_steps(run_dir: Path, num_timesteps: int) -> None:
    """Write the steps trained so far into the run's config.json."""
    config = read_config(run_dir)
    config["num_timesteps"] = num_timesteps
    write_config(run_dir, config)


def run_config(agent: Agent, spec: RunSpec) -> dict[str, Any]:
    """The resolved configuration of a training run, as written to config.json."""
    return {
        **agent.describe(),
        "steps": spec.steps,
        "device": str(agent.device),
        "video_interval": spec.video_interval,
        "command": spec.command,
        "run": spec.to_dict(),
        "cogrl_version": cogrl.__version__,
        "created": datetime.now().isoformat(timespec="seconds"),
    }


def hparams_metrics(metrics: Mapping[str, float], split: Mapping[str, str]) -> dict[str, float]:
    """Final evaluation metrics under HParams tags, e.g. ``final/test_accuracy``."""
    prefix = f"final/{split['split']}_" if split else "final/"
    return {f"{prefix}{k}": v for k, v in metrics.items() if k != "episodes"}


def record_rollout(
    agent: Agent,
    path: Path,
    episodes: int,
    seed: int,
    fps: float,
    env_overrides: Mapping[str, Any],
    max_seconds: float | None = None,
) -> tuple[np.ndarray, Path, int]:
    """Roll ``agent`` out for ``episodes`` episodes and write them to the MP4 ``path``, at
    ``fps`` frames per second; the video stops after ``max_seconds`` (None: no limit).

    Episode ``i`` starts from ``reset(seed=seed + i)``. Returns the frames, the path and
    how many episodes the video shows in full.
    """
    headless_rendering()
    max_frames = None if not max_seconds else max(1, round(max_seconds * fps))
    # One rollout per episode, episode i from seed + i, so that any one replays on its own.
    parts: list[np.ndarray] = []
    total, complete = 0, 0
    while complete < episodes and (max_frames is None or total < max_frames):
        frames = rollout_frames(agent, 1, seed=seed + complete, **env_overrides)
        if max_frames is not None and total + len(frames) > max_frames:
            frames = frames[: max_frames - total]
        else:
            complete += 1
        parts.append(frames)
        total += len(frames)
    frames = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return frames, write_mp4(frames, path, fps=fps), complete


__all__ += ["NonFiniteError", "record_rollout"]
