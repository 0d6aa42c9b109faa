"""Seed and hyperparameter sweeps on Ray Tune: what ``cogrl sweep`` does.

A sweep trains every combination of environments, agents, seeds and settings as ordinary
``cogrl train`` runs, several at once, on this machine or on a Ray cluster:

```
cogrl sweep --env CartPole-v1 cogrl/GlimpseDigits-v0 --agent ppo --num-seeds 5 \\
            --grid learning_rate=[3e-4,1e-3,3e-3] --steps 100000
cogrl sweep --env CartPole-v1 --agent ppo --seeds 0 1 --samples 8 \\
            --sample learning_rate="loguniform(1e-4,1e-2)" --sample gamma="uniform(0.95,0.999)"
cogrl sweep --resume sweeps/sweep__20261128-120000     # after a kill or Ctrl-C
cogrl plot sweeps/sweep__20261128-120000               # learning curves over the seeds
```

Settings take ``cogrl train --set``'s names (``learning_rate``, ``policy.core``,
``env.n_glimpses``): ``--set`` fixes one value, ``--grid NAME=[V1,V2,...]`` tries every value
of a list (every combination of the grids, envs, agents and seeds is a trial), and
``--sample NAME=DIST(...)`` draws a value per trial from a distribution, ``--samples`` times
over the grid (random search). The distributions are Ray Tune's: ``uniform(low, high)``,
``loguniform(low, high)``, ``randint(low, high)`` (high excluded), ``lograndint(low, high)``,
``quniform(low, high, q)``, ``qloguniform(low, high, q)``, ``qrandint(low, high, q)``,
``normal(mean, sd)`` and ``choice([v1, v2, ...])``; the draws follow ``--search-seed``.

Each trial is :func:`cogrl.runner.train` with the trial's settings, so it writes an
ordinary run folder with its checkpoint every ``--checkpoint-every`` steps; a trial that is
stopped (the sweep killed, a node lost) continues from that checkpoint when it runs again,
and ``cogrl sweep --resume DIR`` runs what is unfinished. The sweep folder::

    sweep.json                  what was asked (read by --resume)
    results.csv                 one row per trial: its settings, status, final metrics and
                                time_s (its wall time, summed over the attempts that ran it)
    runs/<trial>/<run folder>   the trial's run folder, as `cogrl train` writes it
    runs/<trial>/result.json    the trial's final metrics, once it finished
    runs/<trial>/time_s         its wall time so far
    tune/                       Ray Tune's experiment state, per-trial results and errors
    ray/                        Ray's temporary files and logs (local sweeps)

Ray (``pip install "cogrl[ray]"``) is imported only here, when a sweep starts.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import itertools
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cogrl import runner
from cogrl.agents import evaluate, load
from cogrl.imports import names_from
from cogrl.runs import (
    CHECKPOINT_NAME,
    CONFIG_FILE,
    ENV_PREFIX,
    MODEL_NAME,
    TIME_FORMAT,
    parse_value,
    read_config,
)

__all__ = [
    "DISTRIBUTIONS",
    "RESULTS_FILE",
    "Sweep",
    "SweepError",
    "parse_distribution",
    "parse_grid",
    "parse_setting",
    "resume_sweep",
    "run_sweep",
    "trial_settings",
]

SWEEP_FILE = "sweep.json"
RESULTS_FILE = "results.csv"
RUNS_DIR = "runs"
TUNE_DIR = "tune"
RAY_DIR = "ray"
#: A trial writes its final metrics here (inside runs/<trial>/), so a trial that ran to its
#: end before the sweep was killed reports them again without training.
TRIAL_RESULT = "result.json"
#: A trial's wall time so far (seconds, text), updated at each report: what a trial resumed
#: after a kill adds its own time to.
TRIAL_TIME = "time_s"
#: Progress reports to Tune per trial (each at a multiple of steps/REPORTS).
REPORTS = 100
RAY_EXTRA = 'cogrl sweep needs Ray Tune: pip install "cogrl[ray]"'
#: Unix sockets live under Ray's temporary folder, and their paths may not exceed 107 bytes
#: (Ray checks); the longest socket path Ray adds to the folder is about this long.
RAY_SOCKET_SUFFIX = len("/session_2026-11-28_20-04-40_220762_26610/sockets/plasma_store")


#: Early-stopping schedulers (--scheduler); None runs every trial to its end.
SCHEDULERS = (None, "asha")
#: What ASHA compares trials by unless --metric says: every learner logs it.
ASHA_METRIC = "rollout/ep_rew_mean"


class SweepError(ValueError):
    """Something about the sweep asked for is wrong; found before any trial starts."""


# --- the search space -------------------------------------------------------------------------

#: name -> (Ray Tune's function name, number of arguments)
DISTRIBUTIONS: dict[str, tuple[str, int]] = {
    "uniform": ("uniform", 2),
    "loguniform": ("loguniform", 2),
    "randint": ("randint", 2),
    "lograndint": ("lograndint", 2),
    "quniform": ("quniform", 3),
    "qloguniform": ("qloguniform", 3),
    "qrandint": ("qrandint", 3),
    "normal": ("randn", 2),
    "choice": ("choice", 1),
}


def _split_item(item: str, option: str) -> tuple[str, str]:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or not text.strip():
        raise SweepError(f"{option} expects NAME=VALUE, got {item!r}")
    if key in ("env", "agent", "seed"):
        raise SweepError(f"{option} {item!r}: give {key} with --{key}s/--{key} instead")
    if key.startswith(ENV_PREFIX) and not key[len(ENV_PREFIX) :]:
        raise SweepError(f"{option} {item!r}: missing the env argument name after 'env.'")
    if not all(key.split(".")):
        raise SweepError(f"{option} {item!r}: empty name in {key!r}")
    return key, text.strip()


def parse_setting(item: str) -> tuple[str, Any]:
    """``NAME=VALUE`` (``--set``): one value every trial takes, parsed as train parses it."""
    key, text = _split_item(item, "--set")
    return key, parse_value(text)


def parse_grid(item: str) -> tuple[str, list[Any]]:
    """``NAME=[V1,V2,...]`` -> (name, values); each value is parsed as ``--set`` parses it
    (a value may itself be a list: ``policy.hidden_sizes=[[64,64],[256,256]]``)."""
    key, text = _split_item(item, "--grid")
    values = parse_value(text)
    if not isinstance(values, list) or not values:
        raise SweepError(
            f"--grid {item!r}: expected a non-empty list of values, e.g. {key}=[1e-4,3e-4]"
        )
    return key, values


def parse_distribution(item: str) -> tuple[str, str, list[Any]]:
    """``NAME=DIST(ARGS)`` -> (name, distribution, arguments), checked (see DISTRIBUTIONS)."""
    key, text = _split_item(item, "--sample")
    try:
        call = ast.parse(text, mode="eval").body
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.keywords:
            raise ValueError
        dist = call.func.id
        args = [ast.literal_eval(arg) for arg in call.args]
    except (SyntaxError, ValueError, TypeError):
        raise SweepError(
            f"--sample {item!r}: expected NAME=DISTRIBUTION(ARGUMENTS), e.g. "
            f"{key}=loguniform(1e-4,1e-2); distributions: {', '.join(DISTRIBUTIONS)}"
        ) from None
    if dist not in DISTRIBUTIONS:
        raise SweepError(
            f"--sample {item!r}: unknown distribution {dist!r}; expected one of "
            f"{', '.join(DISTRIBUTIONS)}"
        )
    _, arity = DISTRIBUTIONS[dist]
    if len(args) != arity:
        raise SweepError(f"--sample {item!r}: {dist} takes {arity} argument(s), got {len(args)}")
    if dist == "choice":
        if not isinstance(args[0], list) or not args[0]:
            raise SweepError(f"--sample {item!r}: choice takes a non-empty list of values")
        return key, dist, args
    for arg in args:
        if isinstance(arg, bool) or not isinstance(arg, int | float) or not math.isfinite(arg):
            raise SweepError(f"--sample {item!r}: {dist}'s arguments must be finite numbers")
    if dist == "normal":
        if args[1] <= 0:
            raise SweepError(f"--sample {item!r}: the standard deviation must be > 0")
        return key, dist, args
    low, high = args[0], args[1]
    if not low < high:
        raise SweepError(f"--sample {item!r}: expected low < high, got {low} and {high}")
    if "log" in dist and low <= 0:
        raise SweepError(f"--sample {item!r}: {dist} needs low > 0, got {low}")
    if "int" in dist and not all(isinstance(a, int) for a in args):
        raise SweepError(f"--sample {item!r}: {dist} takes integers")
    if dist.startswith("q") and args[2] <= 0:
        raise SweepError(f"--sample {item!r}: the step q must be > 0, got {args[2]}")
    return key, dist, args


def trial_settings(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Flat ``--set`` names -> (agent hyperparameters, env kwargs), nested as
    :func:`cogrl.runs.parse_overrides` nests them."""
    from cogrl.runs import parse_overrides

    # parse_overrides parses text; JSON text round-trips every value a sweep holds.
    return parse_overrides(f"{key}={json.dumps(value)}" for key, value in values.items())


@dataclass
class Sweep:
    """A sweep's description: everything ``sweep.json`` holds and ``--resume`` reads."""

    envs: list[str]
    agents: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    fixed: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    sample: dict[str, list[Any]] = field(default_factory=dict)  # name -> [dist, *args]
    samples: int = 1
    search_seed: int = 0
    # The runs' settings, as cogrl train's (cogrl.runner.RunSpec).
    steps: int | None = None
    num_envs: int | None = None
    device: str = "auto"
    threads: int | None = None
    eval_episodes: int | None = None
    video_interval: int | None = 0
    checkpoint_every: int = 100_000
    preset: bool = True
    # Ray's.
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int = 0
    max_failures: int = 0
    metric: str | None = None
    mode: str = "max"
    # Early stopping: "asha" (asynchronous successive halving) on `metric`, compared at
    # grace_period steps and then at reduction_factor times as many.
    scheduler: str | None = None
    grace_period: int | None = None
    reduction_factor: int = 4
    command: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """SweepError for what is malformed, before Ray starts."""
        for name in ("envs", "agents", "seeds"):
            values = getattr(self, name)
            if not values:
                raise SweepError(f"a sweep needs at least one of {name}")
            if len(set(map(json.dumps, values))) != len(values):
                raise SweepError(f"{name} repeats a value: {values}")
        for key, values in self.grid.items():
            if len(set(map(json.dumps, values))) != len(values):
                raise SweepError(
                    f"--grid {key} repeats a value: {values}; it would run identical trials "
                    "(repeats are --seeds)"
                )
        for seed in self.seeds:
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise SweepError(f"seeds must be non-negative integers, got {seed!r}")
        both = set(self.fixed) & (set(self.grid) | set(self.sample)) | set(self.grid) & set(
            self.sample
        )
        if both:
            raise SweepError(f"{sorted(both)} given more than once (--set, --grid, --sample)")
        if self.samples < 1:
            raise SweepError(f"samples must be >= 1, got {self.samples}")
        if self.samples > 1 and not self.sample:
            raise SweepError(
                f"--samples {self.samples} repeats identical trials: it needs a --sample "
                "distribution to draw from (or use --seeds for repeats)"
            )
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise SweepError(
                f"cpus per trial must be > 0 and gpus per trial >= 0, got "
                f"{self.cpus_per_trial} and {self.gpus_per_trial}"
            )
        if self.mode not in ("max", "min"):
            raise SweepError(f"mode must be 'max' or 'min', got {self.mode!r}")
        if self.scheduler not in SCHEDULERS:
            raise SweepError(f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        if self.scheduler == "asha":
            if self.steps is None:
                raise SweepError("--scheduler asha needs --steps (trials are compared by steps)")
            grace = self.asha_grace_period()
            if not 0 < grace < self.steps:
                raise SweepError(f"grace period must be in (0, {self.steps}), got {grace}")
            if self.reduction_factor < 2:
                raise SweepError(f"reduction factor must be >= 2, got {self.reduction_factor}")

    def asha_grace_period(self) -> int:
        return self.grace_period or max(1, (self.steps or 0) // 10)

    def tune_scheduler(self) -> Any:
        """Ray Tune's scheduler for ``scheduler`` (None: every trial runs to its end)."""
        if self.scheduler is None:
            return None
        from ray.tune.schedulers import ASHAScheduler

        return ASHAScheduler(
            time_attr="timesteps",
            metric=self.metric or ASHA_METRIC,
            mode=self.mode,
            # Past every trial's end: ASHA stops a trial that reaches max_t, and a trial at
            # its last steps still has its final evaluation to run.
            max_t=2 * self.steps,
            grace_period=self.asha_grace_period(),
            reduction_factor=self.reduction_factor,
        )

    def num_trials(self) -> int:
        grid = math.prod(len(v) for v in self.grid.values())
        return len(self.envs) * len(self.agents) * len(self.seeds) * grid * self.samples

    def combinations(self) -> Iterable[dict[str, Any]]:
        """Every (env, agent, grid value) combination with the distributions at a value they
        may draw (their lower end, a choice's first value): what the sweep checks before it
        starts."""
        drawn = {}
        for key, (dist, *args) in self.sample.items():
            drawn[key] = args[0][0] if dist == "choice" else args[0]
        for env, agent in itertools.product(self.envs, self.agents):
            for key, values in [("", [None]), *self.grid.items()]:
                for value in values:
                    settings = {**self.fixed, **{k: v[0] for k, v in self.grid.items()}, **drawn}
                    if key:
                        settings[key] = value
                    yield {"env": env, "agent": agent, "seed": self.seeds[0], **settings}

    def param_space(self) -> dict[str, Any]:
        from ray import tune

        def axis(values: list[Any]) -> Any:
            return tune.grid_search(values) if len(values) > 1 else values[0]

        space: dict[str, Any] = {
            "env": axis(self.envs),
            "agent": axis(self.agents),
            "seed": axis(self.seeds),
        }
        space.update({key: tune.grid_search(values) for key, values in self.grid.items()})
        for key, (dist, *args) in self.sample.items():
            space[key] = getattr(tune, DISTRIBUTIONS[dist][0])(*args)
        return space


# --- the trial ----------------------------------------------------------------------------------


def run_trial(config: dict[str, Any], sweep_dir: str, sweep: dict[str, Any]) -> None:
    """One trial, in a Ray worker: train the trial's run, or continue it where an earlier
    attempt stopped, and report to Tune."""
    from ray import tune

    name = tune.get_context().get_trial_name()  # the same when the sweep is resumed
    root = Path(sweep_dir) / RUNS_DIR / name
    done = root / TRIAL_RESULT
    if done.is_file():  # it finished, but the sweep stopped before Tune recorded it
        tune.report(json.loads(done.read_text()))  # with the time_s it finished with
        return
    clock = TrialClock(root / TRIAL_TIME)
    report = TuneReporter(sweep["steps"], name, clock)
    run_dir = _trial_run(root)
    if run_dir is None:
        spec = trial_spec(sweep, config, root=str(root), progress=False)
        result = runner.train(spec, callback=report)
        run_dir, metrics, steps = result.run_dir, result.metrics, result.agent.num_timesteps
    elif (run_dir / f"{MODEL_NAME}.pt").is_file():
        # Trained to the end; killed during its final evaluation. That evaluation is
        # seeded (cogrl eval repeats it), so running it again gives the run's numbers.
        spec = runner.RunSpec(**read_config(run_dir)["run"])
        agent = load(run_dir / MODEL_NAME, device=None if spec.device == "auto" else spec.device)
        metrics = {}
        if spec.eval_episodes:
            split = runner.eval_split(agent)
            metrics = evaluate(agent, spec.eval_episodes, seed=runner.EVAL_SEED, **split)
        steps = agent.num_timesteps
    else:
        result = runner.resume(run_dir, progress=False, callback=report)
        run_dir, metrics, steps = result.run_dir, result.metrics, result.agent.num_timesteps
    final = {
        **report.last,
        "timesteps": steps,
        **{f"eval/{k}": float(v) for k, v in metrics.items()},
        "run_dir": os.path.relpath(run_dir, sweep_dir),
        "trial": name,
        "finished": 1,
        "time_s": clock.save(),
    }
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(final) + "\n")
    os.replace(tmp, done)
    tune.report(final)


def trial_spec(
    sweep: Mapping[str, Any], config: Mapping[str, Any], **overrides: Any
) -> runner.RunSpec:
    """The :class:`cogrl.runner.RunSpec` of the trial whose Tune config is ``config``
    (env, agent, seed and the swept settings) in the sweep ``sweep`` (``Sweep.to_dict()``)."""
    settings = {k: v for k, v in config.items() if k not in ("env", "agent", "seed")}
    hyperparameters, env_kwargs = trial_settings({**sweep["fixed"], **settings})
    fields = {
        name: sweep[name]
        for name in (
            "device", "steps", "preset", "num_envs", "video_interval", "eval_episodes",
            "checkpoint_every", "threads", "command",
        )
    }  # fmt: skip
    return runner.RunSpec(
        env=config["env"],
        agent=config["agent"],
        seed=config["seed"],
        hyperparameters=hyperparameters,
        env_kwargs=env_kwargs,
        **{**fields, **overrides},
    )


def _trial_run(root: Path) -> Path | None:
    """The run folder an earlier attempt of this trial left under ``root``, if it holds a
    checkpoint to go on from; a folder it left before its first checkpoint is removed (its
    logs would duplicate the new attempt's)."""
    if not root.is_dir():
        return None
    runs = sorted(p for p in root.iterdir() if (p / CONFIG_FILE).is_file())
    usable = [
        p
        for p in runs
        if (p / f"{CHECKPOINT_NAME}.pt").is_file() or (p / f"{MODEL_NAME}.pt").is_file()
    ]
    for path in runs:
        if path not in usable:
            print(f"removing {path}: an attempt of this trial stopped before its first checkpoint")
            shutil.rmtree(path)
    if len(usable) > 1:
        raise RuntimeError(f"{root} holds several runs of one trial: {[p.name for p in usable]}")
    return usable[0] if usable else None


class TrialClock:
    """A trial's wall time over its attempts: the time ``path`` holds (earlier attempts,
    killed, up to their last report) plus this attempt's."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = time.monotonic()
        try:
            self.before = float(path.read_text())
        except (OSError, ValueError):
            self.before = 0.0

    def save(self) -> float:
        """Write the time so far to ``path`` (atomically) and return it."""
        seconds = round(self.before + time.monotonic() - self.start, 3)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(f"{seconds}\n")
        os.replace(tmp, self.path)
        return seconds


class TuneReporter:
    """The runner's callback: reports the update statistics to Tune REPORTS times a trial
    (and saves the trial's time so far)."""

    def __init__(self, steps: int | None, trial: str, clock: TrialClock) -> None:
        self.trial = trial
        self.clock = clock
        self.every = max(1, (steps or 0) // REPORTS)
        self.next = self.every
        self.last: dict[str, float] = {}

    def __call__(self, agent: Any, info: Mapping[str, float]) -> None:
        from ray import tune

        if agent.num_timesteps < self.next:
            return
        self.next = (agent.num_timesteps // self.every + 1) * self.every
        self.last = {k: float(v) for k, v in info.items() if math.isfinite(v)}
        time_s = self.clock.save()
        tune.report(
            {**self.last, "timesteps": agent.num_timesteps, "trial": self.trial, "time_s": time_s}
        )


# --- the driver ---------------------------------------------------------------------------------


def sweep_folder(root: str | os.PathLike, name: str | None) -> Path:
    """A new sweep folder under ``root`` (``sweep__<time>`` unless ``name``); SweepError if
    ``name`` exists (that sweep resumes with --resume)."""
    root = Path(root)
    name = name or f"sweep__{datetime.now().strftime(TIME_FORMAT)}"
    if "/" in name or name in (".", ".."):
        raise SweepError(f"a sweep name is one folder name, got {name!r}")
    path = root / name
    if path.exists():
        raise SweepError(f"{path} exists; continue it with cogrl sweep --resume {path}")
    path.mkdir(parents=True)
    return path.resolve()


def run_sweep(
    sweep: Sweep,
    root: str | os.PathLike = "sweeps",
    name: str | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
) -> tuple[Path, int]:
    """Check ``sweep``, run it in a new folder under ``root``; returns (folder, status)."""
    sweep.check()
    tune = _import_tune()
    check_trials(sweep)
    folder = sweep_folder(root, name)
    (folder / SWEEP_FILE).write_text(json.dumps(sweep.to_dict(), indent=2) + "\n")
    print(f"sweep folder: {folder} ({sweep.num_trials()} trials)", flush=True)
    with ray_session(folder, address, num_cpus, num_gpus):
        from ray.tune.search.basic_variant import BasicVariantGenerator

        # The generator, not TuneConfig, limits concurrency (Tune ignores
        # max_concurrent_trials beside a search_alg that is not a Searcher).
        search = BasicVariantGenerator(
            random_state=sweep.search_seed, max_concurrent=sweep.max_concurrent
        )
        tuner = tune.Tuner(
            _trainable(folder, sweep),
            param_space=sweep.param_space(),
            tune_config=tune.TuneConfig(
                num_samples=sweep.samples,
                search_alg=search,
                scheduler=sweep.tune_scheduler(),
                reuse_actors=True,
            ),
            run_config=_run_config(folder, sweep),
        )
        results = tuner.fit()
    return folder, write_results(folder, sweep, results)


def resume_sweep(
    folder: str | os.PathLike,
    address: str | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    trust_code: bool = False,
) -> tuple[Path, int]:
    """Run what is unfinished of the sweep in ``folder`` (trials that failed run again);
    returns (folder, status). A module that ``sweep.json`` names (an environment id or a
    policy core ``"module:name"``) is imported only if this process has imported it or
    ``trust_code=True`` (see :mod:`cogrl.imports`); that is checked here, before Ray's
    workers start and import what the trials name."""
    folder = Path(folder).resolve()
    try:
        sweep = Sweep(**json.loads((folder / SWEEP_FILE).read_text()))
    except FileNotFoundError:
        raise SweepError(f"{folder} is not a sweep folder (no {SWEEP_FILE})") from None
    except (ValueError, TypeError) as e:
        raise SweepError(f"{folder / SWEEP_FILE} is unreadable: {e}") from None
    tune = _import_tune()
    if not (folder / TUNE_DIR).is_dir():
        raise SweepError(f"{folder} holds no Tune state ({TUNE_DIR}/): its sweep never started")
    with names_from(folder / SWEEP_FILE, trust_code):
        check_trials(sweep)
    if address is None:
        for pid, command in stop_orphaned_ray_processes(folder):
            print(f"stopped process {pid}, left by the killed sweep's Ray: {command}", flush=True)
    print(f"sweep folder: {folder} (resumed)", flush=True)
    with ray_session(folder, address, num_cpus, num_gpus):
        tuner = tune.Tuner.restore(
            str(folder / TUNE_DIR),
            trainable=_trainable(folder, sweep),
            resume_unfinished=True,
            resume_errored=True,
        )
        results = tuner.fit()
    return folder, write_results(folder, sweep, results)


def stop_orphaned_ray_processes(folder: Path) -> list[tuple[int, str]]:
    """SIGTERM the processes of a local Ray instance that used ``folder/ray`` and outlived
    its driver (a driver killed with SIGKILL leaves Ray's DashboardAgent, RuntimeEnvAgent,
    raylet, ...). They are found by that folder (or its short link) in their command line,
    which Linux shows in ``/proc``; elsewhere this finds none (``ray stop`` stops every
    local Ray instance). Returns (pid, command) of each process stopped."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    temp = folder / RAY_DIR
    digest = hashlib.sha1(os.fsencode(temp)).hexdigest()[:12]
    marks = [os.fsencode(temp), os.fsencode(Path(tempfile.gettempdir()) / f"cogrl-ray-{digest}")]
    stopped = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if any(mark in command for mark in marks):
            pid = int(entry.name)
            try:
                os.kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                continue
            words = command.replace(b"\0", b" ").decode(errors="replace").strip()
            stopped.append((pid, words[:120]))
    return stopped


def check_trials(sweep: Sweep) -> None:
    """Build the agent of every environment and agent with every grid value (and each
    distribution's low end), as cogrl train would: unknown names and bad values are a
    SweepError here, not a failed trial later."""

    for combination in sweep.combinations():
        try:
            runner.build_agent(trial_spec(sweep.to_dict(), combination, device="cpu"))
        except runner.SpecError as e:
            where = ", ".join(f"{k}={v!r}" for k, v in combination.items() if k != "seed")
            raise SweepError(f"trial {where}: {e}") from None


def _import_tune() -> Any:
    try:
        from ray import tune
    except ImportError:
        raise SweepError(RAY_EXTRA) from None
    return tune


def _trainable(folder: Path, sweep: Sweep) -> Any:
    from ray import tune

    trainable = tune.with_parameters(run_trial, sweep_dir=str(folder), sweep=sweep.to_dict())
    return tune.with_resources(
        trainable, {"cpu": sweep.cpus_per_trial, "gpu": sweep.gpus_per_trial}
    )


def _run_config(folder: Path, sweep: Sweep) -> Any:
    from ray import tune

    return tune.RunConfig(
        name=TUNE_DIR,
        storage_path=str(folder),
        failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
        verbose=1,
    )


class ray_session:
    """``ray.init`` for the sweep, ``ray.shutdown`` after. Local (no ``address``): a Ray
    instance of ``num_cpus`` CPUs (default: this machine's) whose temporary files are in the
    sweep folder's ``ray/``. With ``address``: joins that cluster (``"auto"``: the one this
    node belongs to)."""

    def __init__(
        self, folder: Path, address: str | None, num_cpus: int | None, num_gpus: int | None
    ) -> None:
        self.folder, self.address = folder, address
        self.num_cpus, self.num_gpus = num_cpus, num_gpus
        self.link: Path | None = None

    def __enter__(self) -> ray_session:
        import ray

        # Workers import `module:Id` environments from where the command runs, as train does.
        path = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)
        runtime_env = {"env_vars": {"PYTHONPATH": path}}
        if self.address is not None:
            ray.init(address=self.address, runtime_env=runtime_env, logging_level="WARNING")
            return self
        temp = self.folder / RAY_DIR
        temp.mkdir(exist_ok=True)
        if len(os.fsencode(temp)) + RAY_SOCKET_SUFFIX > 107:
            # Too long for Ray's sockets: a short link in the system's temporary folder
            # points to it, and the files still land in the sweep folder.
            digest = hashlib.sha1(os.fsencode(temp)).hexdigest()[:12]
            self.link = Path(tempfile.gettempdir()) / f"cogrl-ray-{digest}"
            if self.link.is_symlink() or self.link.exists():
                self.link.unlink()
            self.link.symlink_to(temp, target_is_directory=True)
            temp = self.link
        ray.init(
            num_cpus=self.num_cpus or os.cpu_count(),
            num_gpus=self.num_gpus,
            include_dashboard=False,
            _temp_dir=str(temp),
            runtime_env=runtime_env,
            logging_level="WARNING",
        )
        return self

    def __exit__(self, *exc: Any) -> None:
        import ray

        ray.shutdown()
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()


# --- results ------------------------------------------------------------------------------------


def write_results(folder: Path, sweep: Sweep, results: Any) -> int:
    """``results.csv``, one row per trial; prints a summary. Returns 0 when every trial
    finished, 1 when some failed (they are named, with their error files)."""
    names = ["env", "agent", "seed", *sweep.fixed, *sweep.grid, *sweep.sample]
    rows, failed = [], []
    for result in sorted(results, key=lambda r: r.path):
        metrics = result.metrics or {}
        trial = metrics.get("trial") or Path(result.path).name
        config = {**sweep.fixed, **(result.config or {})}
        row: dict[str, Any] = {"trial": trial}
        row.update({key: _cell(config.get(key)) for key in names})
        if result.error:
            row["status"] = "error"
        elif metrics.get("finished"):
            row["status"] = "finished"
        else:  # after fit, a trial that neither finished nor failed was stopped by ASHA
            row["status"] = "stopped early" if sweep.scheduler else "unfinished"
        if result.error:
            failed.append((trial, Path(result.path) / "error.txt"))
        row["timesteps"] = metrics.get("timesteps")
        # The trial's own clock (over its attempts; Tune's time_total_s restarts when a
        # finished trial is reported again after the driver was killed).
        row["time_s"] = metrics.get("time_s", metrics.get("time_total_s"))
        for key, value in sorted(metrics.items()):
            if key.startswith(("eval/", "rollout/")):
                row[key] = value
        row["run_dir"] = metrics.get("run_dir", "")
        rows.append(row)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    path = folder / RESULTS_FILE
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    print_summary(rows, sweep)
    print(f"results: {path}")
    for trial, error in failed:
        print(f"trial {trial} failed: see {error}", file=sys.stderr)
    if failed:
        print(f"continue with: cogrl sweep --resume {folder}", file=sys.stderr)
    return 1 if failed else 0


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def summary_metric(rows: Sequence[Mapping[str, Any]], metric: str | None) -> str | None:
    """The metric the summary ranks groups by: ``metric``, else the final evaluation's
    accuracy where the task has one, else its mean return."""
    present = {key for row in rows for key, value in row.items() if value not in (None, "")}
    for key in [metric] if metric else ["eval/accuracy", "eval/mean_return"]:
        if key in present:
            return key
    return None


def print_summary(rows: Sequence[Mapping[str, Any]], sweep: Sweep) -> None:
    """Groups of trials that differ only by seed, best first by the summary metric: the
    mean and standard deviation over seeds (cogrl plot draws the curves with intervals)."""
    metric = summary_metric(rows, sweep.metric)
    if metric is None:
        if sweep.metric:
            print(f"no trial reported {sweep.metric!r}", file=sys.stderr)
        return
    keys = ["env", "agent", *sweep.grid, *sweep.sample]
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        value = row.get(metric)
        if value not in (None, ""):
            groups.setdefault(tuple(row.get(k) for k in keys), []).append(float(value))
    ranked = sorted(
        groups.items(), key=lambda kv: sum(kv[1]) / len(kv[1]), reverse=sweep.mode == "max"
    )
    print(f"{metric} over seeds ({sweep.mode} first):")
    for group, values in ranked:
        mean = sum(values) / len(values)
        sd = (sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5
        label = " ".join(f"{k}={v}" for k, v in zip(keys, group, strict=True))
        print(f"  {mean:10.4g} +- {sd:<9.3g} n={len(values)}  {label}")
