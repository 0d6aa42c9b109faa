"""Learning curves of runs and sweeps, with bootstrap confidence intervals over seeds.

``cogrl plot RUNS_OR_SWEEP...`` (or :func:`plot`) finds every run folder (``config.json`` and
TensorBoard events, as ``cogrl train`` and ``cogrl sweep`` write them) under the paths it is
given, groups the runs that differ only by seed, and draws one panel per environment with
one line per group: an aggregate over the group's runs (mean, median or interquartile mean)
and its percentile-bootstrap confidence interval, against environment steps and wall time.
A table of each group's final score (the runs' final evaluation where they logged one, else
the curve's last value), with its confidence interval, is printed and written as CSV.

The statistics follow rliable (Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge
of the Statistical Precipice"): with few seeds, report an interval, not a point, and prefer
the interquartile mean (IQM) to the mean or median. Each run's curve is interpolated
linearly onto a grid shared by its group (the steps or seconds that every run of the group
covers), then at each grid point the runs are resampled with replacement ``resamples``
times, the aggregate taken each time, and the interval read from the percentiles of those
aggregates.

matplotlib is an optional extra: ``pip install "cogrl[plot]"``. Only :func:`plot` and
:func:`draw_curves` need it; reading runs and the statistics do not.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cogrl.logging import event_file_damage
from cogrl.runs import CONFIG_FILE, config_hparams

__all__ = [
    "AGGREGATES",
    "FORMATS",
    "X_AXES",
    "Curve",
    "Group",
    "PlotResult",
    "Run",
    "bootstrap_ci",
    "common_grid",
    "default_metric",
    "draw_curves",
    "final_scores",
    "find_runs",
    "group_runs",
    "interpolate",
    "iqm",
    "load_runs",
    "plot",
]

PLOT_EXTRA = 'pip install "cogrl[plot]"'
#: The x axes a learning curve can be drawn against.
X_AXES = ("steps", "time")
#: Figure formats (matplotlib's savefig formats that need no extra software).
FORMATS = ("png", "svg", "pdf")
#: Settings that do not make two runs different experiments: the seed (what the runs of a
#: group differ by) and the device (the same computation).
NOT_GROUPED = ("seed", "device")
#: Episode-return tags: `cogrl train`'s own and Stable-Baselines3's name for the same thing.
RETURN_TAG = "rollout/ep_rew_mean"
#: Final evaluation metric names (``final/[split_]NAME``, cogrl.runner.hparams_metrics) of
#: the rollout statistics whose name differs.
FINAL_NAMES = {"ep_rew_mean": "mean_return", "ep_len_mean": "mean_length"}


def iqm(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """The interquartile mean along ``axis``: the mean of the middle 50% of the values, after
    dropping ``int(0.25 n)`` from each end (``scipy.stats.trim_mean(values, 0.25)``, as
    rliable computes it). NaN where the values along ``axis`` hold a NaN."""
    values = np.asarray(values, np.float64)
    n = values.shape[axis]
    cut = int(0.25 * n)
    middle = np.take(np.sort(values, axis=axis), np.arange(cut, n - cut), axis=axis)
    out = middle.mean(axis=axis)
    # np.sort puts NaN last, where the cut could drop it: a diverged run must show.
    return np.where(np.isnan(values).any(axis=axis), np.nan, out)


#: Aggregates over the runs of a group, each ``f(values, axis) -> array``.
AGGREGATES: dict[str, Callable[..., np.ndarray]] = {
    "mean": lambda values, axis=0: np.mean(values, axis=axis),
    "median": lambda values, axis=0: np.median(values, axis=axis),
    "iqm": iqm,
}


# --- statistics -------------------------------------------------------------------------------
def bootstrap_ci(
    values: np.ndarray | Sequence[float],
    aggregate: str = "mean",
    ci: float = 95.0,
    resamples: int = 2000,
    seed: int | np.random.Generator = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The aggregate of ``values`` over its first axis (the runs) and its percentile-bootstrap
    confidence interval: ``(point, low, high)``, each shaped as ``values.shape[1:]``.

    The runs are resampled with replacement ``resamples`` times (the same resampled runs at
    every position of the trailing axes, so that an interval over a curve keeps each run's
    curve whole), and ``low, high`` are the ``(100 - ci) / 2`` and ``(100 + ci) / 2``
    percentiles of the resampled aggregates. One run has no interval: ``low`` and ``high``
    are NaN. ``seed`` makes the interval reproducible.
    """
    values = np.asarray(values, np.float64)
    check_statistics(aggregate, ci, resamples)
    if values.ndim == 0 or values.shape[0] == 0:
        raise ValueError(f"bootstrap_ci needs values of shape (runs, ...), got {values.shape}")
    reduce = AGGREGATES[aggregate]
    point = reduce(values, axis=0)
    n = values.shape[0]
    if n == 1:
        empty = np.full(values.shape[1:], np.nan)
        return point, empty, empty.copy()
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    # Resample in chunks of at most ~4M numbers, so that many runs times a long curve fit.
    per_resample = max(1, values.size)
    chunk = max(1, min(resamples, 4_000_000 // per_resample))
    stats = []
    for start in range(0, resamples, chunk):
        picks = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        stats.append(reduce(values[picks], axis=1))
    tail = (100.0 - ci) / 2
    low, high = np.percentile(np.concatenate(stats), [tail, 100.0 - tail], axis=0)
    return point, low, high


def check_statistics(aggregate: str, ci: float, resamples: int) -> None:
    """ValueError naming a bad aggregate, confidence level or resample count."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {list(AGGREGATES)}, got {aggregate!r}")
    if isinstance(ci, bool) or not (isinstance(ci, (int, float)) and 0 < ci < 100):
        raise ValueError(f"ci must be a confidence level in percent, 0 < ci < 100, got {ci!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")


def common_grid(curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int) -> np.ndarray:
    """``points`` evenly spaced x values over the range that every ``(x, y)`` curve covers
    (from the latest first x to the earliest last x), so that no curve is extrapolated.

    ValueError where the curves share no x (one curve ends before another starts).
    """
    if not curves:
        raise ValueError("common_grid needs at least one curve")
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an integer >= 2, got {points!r}")
    start = max(float(x[0]) for x, _ in curves)
    end = min(float(x[-1]) for x, _ in curves)
    if start > end:
        raise ValueError(
            f"the curves share no x: one starts at {start:g}, after another ends at {end:g}"
        )
    if start == end:
        return np.array([start])
    return np.linspace(start, end, points)


def interpolate(curves: Sequence[tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> np.ndarray:
    """Each ``(x, y)`` curve's values at ``grid``, linearly interpolated: ``(len(curves),
    len(grid))``. ``x`` must be non-decreasing; grid points outside a curve's x are an error
    (not the curve's first or last value held flat)."""
    grid = np.asarray(grid, np.float64)
    out = np.empty((len(curves), len(grid)))
    for i, (x, y) in enumerate(curves):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.ndim != 1 or x.shape != y.shape or len(x) == 0:
            raise ValueError(
                f"curve {i}: x and y must be 1-D of one length >= 1, got {x.shape} and {y.shape}"
            )
        if np.any(np.diff(x) < 0):
            raise ValueError(f"curve {i}: x must be non-decreasing")
        if len(grid) and (grid[0] < x[0] or grid[-1] > x[-1]):
            raise ValueError(
                f"curve {i} covers x in [{x[0]:g}, {x[-1]:g}], not the grid's "
                f"[{grid[0]:g}, {grid[-1]:g}]"
            )
        out[i] = np.interp(grid, x, y)
    return out


# --- runs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Curve:
    """One scalar tag of a run: environment steps, seconds since the run's first event, and
    values, in step order."""

    steps: np.ndarray
    time: np.ndarray
    values: np.ndarray

    def x(self, axis: str) -> np.ndarray:
        return self.steps if axis == "steps" else self.time


@dataclass
class Run:
    """A run folder: its ``config.json``, its settings as ``cogrl train --set`` names them
    (:func:`cogrl.runs.config_hparams`), and its scalars by tag."""

    path: Path
    config: dict[str, Any]
    settings: dict[str, Any]
    scalars: dict[str, Curve]

    @property
    def env(self) -> str:
        return str(self.config["env"])

    @property
    def seed(self) -> Any:
        return self.config.get("seed")


def find_runs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The run folders at or under each of ``paths`` (a run folder, or a folder such as a
    sweep's that holds run folders at any depth), each once, in path order.

    A run folder holds a ``config.json`` naming its ``env`` and ``agent``. ValueError for a
    path that is not a folder or holds no run folder.
    """
    found: dict[Path, None] = {}
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise ValueError(f"{str(path)!r} does not exist")
        if not path.is_dir():
            raise ValueError(f"{str(path)!r} is a file, not a run folder or a folder of runs")
        here = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            if CONFIG_FILE in files and _run_config(Path(root)) is not None:
                here.append(Path(root))
                dirs.clear()  # a run folder's subfolders (videos) hold no runs
        if not here:
            raise ValueError(
                f"no run folders under {str(path)!r} (a run folder holds a {CONFIG_FILE} with "
                "its env and agent, as `cogrl train` and `cogrl sweep` write)"
            )
        found.update((p.resolve(), None) for p in here)
    return list(found)


def _run_config(folder: Path) -> dict[str, Any] | None:
    """A run folder's config, or None where ``config.json`` is some other JSON file."""
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(config, dict) and {"env", "agent"} <= config.keys():
        return config
    return None


def load_runs(folders: Iterable[Path]) -> list[Run]:
    """Each run folder's config and TensorBoard scalars. ValueError for a run without
    TensorBoard events."""
    runs = []
    for folder in folders:
        config = _run_config(folder)
        if config is None:
            raise ValueError(f"{folder} has no readable run {CONFIG_FILE}")
        if not any(folder.glob("events.out.tfevents.*")):
            raise ValueError(f"run {folder} has no TensorBoard events (events.out.tfevents.*)")
        settings = {k: v for k, v in config_hparams(config).items() if k not in NOT_GROUPED}
        runs.append(Run(folder, config, settings, read_curves(folder)))
    return runs


def read_curves(run_dir: Path) -> dict[str, Curve]:
    """Every scalar tag of the run's events with its steps and wall time (seconds since the
    run's first event; a resumed run's include the time it stood still)."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    # Scalars only: the run's rollout GIFs are sampled down to one, as they are not read.
    acc = ea.EventAccumulator(
        str(run_dir),
        size_guidance={ea.SCALARS: 0, ea.IMAGES: 1, ea.TENSORS: 1, ea.HISTOGRAMS: 1},
    )
    acc.Reload()
    try:
        start = acc.FirstEventTimestamp()
    except ValueError:  # no events at all
        return {}
    curves = {}
    for tag in acc.Tags()["scalars"]:
        events = acc.Scalars(tag)
        order = np.argsort([e.step for e in events], kind="stable")
        steps = np.array([events[i].step for i in order], np.float64)
        time = np.array([events[i].wall_time - start for i in order], np.float64)
        values = np.array([events[i].value for i in order], np.float64)
        curves[tag] = Curve(steps, time, values)
    return curves


def default_metric(env_id: str, tags: Iterable[str]) -> str | None:
    """The curve ``cogrl plot`` draws for ``env_id`` by default, of the ``tags`` its runs log:
    the task's accuracy, else the first other episode metric the task declares
    (``metadata["episode_metrics"]``, e.g. the scanpath task's coverage), else the episode
    return, else a supervised learner's training accuracy; None where none is logged."""
    declared = list(_env_metadata(env_id).get("episode_metrics", {}))
    tags = set(tags)
    candidates = ["rollout/accuracy", *(f"rollout/{n}" for n in declared), RETURN_TAG]
    return next((t for t in [*candidates, "train/accuracy"] if t in tags), None)


@functools.cache
def _env_metadata(env_id: str) -> dict[str, Any]:
    """The environment's metadata (episode metrics, splits), or {} for an id that is not
    registered here (a user's module that this process has not imported)."""
    from cogrl.envs import env_metadata

    try:
        return env_metadata(env_id)
    except ValueError:
        return {}


# --- groups -----------------------------------------------------------------------------------
@dataclass
class Group:
    """Runs of one environment that share the grouping settings, and their statistics."""

    env: str
    key: dict[str, Any]  # the grouping settings' values (JSON values)
    runs: list[Run]
    metric: str = ""
    label: str = ""
    curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )  # axis -> (grid, point, low, high)

    @property
    def seeds(self) -> list[Any]:
        return [run.seed for run in self.runs]


def group_runs(runs: Sequence[Run], group_by: Sequence[str] | None = None) -> list[Group]:
    """Group ``runs`` by environment and then by every setting but the seed (the default) or
    by the ``group_by`` settings (``cogrl train --set`` names, plus ``agent`` and ``steps``).

    Groups come in order of environment, then label. ValueError for a ``group_by`` name
    that no run has.
    """
    if group_by is not None:
        group_by = list(group_by)
        if not group_by:
            raise ValueError("group_by names no setting: give at least one, or None for all")
        known = set().union(*(run.settings for run in runs))
        unknown = [k for k in group_by if k not in known]
        if unknown:
            raise ValueError(
                f"--group-by {','.join(group_by)!r}: no run has the setting(s) {unknown}; the "
                f"runs' settings are: {', '.join(sorted(known))}"
            )
    groups: dict[tuple[str, str], Group] = {}
    for run in runs:
        names = sorted(run.settings) if group_by is None else group_by
        key = {k: run.settings.get(k) for k in names}
        ident = (run.env, json.dumps(key, sort_keys=True))
        groups.setdefault(ident, Group(run.env, key, [])).runs.append(run)
    out = list(groups.values())
    for env in {g.env for g in out}:
        _label([g for g in out if g.env == env])
    return sorted(out, key=lambda g: (g.env, g.label))


def _label(groups: list[Group]) -> None:
    """Name each group of one panel by the settings that tell it from the others."""
    names = sorted({k for g in groups for k in g.key})
    varying = [
        k for k in names if len({json.dumps(g.key.get(k), sort_keys=True) for g in groups}) > 1
    ]
    for group in groups:
        parts = [str(group.key["agent"])] if "agent" in group.key else []
        parts += [f"{k}={json.dumps(group.key.get(k))}" for k in varying if k != "agent"]
        group.label = " ".join(parts) or "runs"


# --- final scores -----------------------------------------------------------------------------
def final_value(run: Run, metric: str) -> tuple[float, str, str]:
    """A run's final score on ``metric``, where it comes from and the tag it was read
    from: its final evaluation (``final/[split_]NAME``, logged at the end of ``cogrl
    train``) where the metric is a rollout statistic that has one, else the curve's last
    value."""
    name = metric.removeprefix("rollout/")
    if name != metric:
        name = FINAL_NAMES.get(name, name)
        # Tasks with data splits are evaluated on one, named in the tag: final/test_accuracy.
        splits = _env_metadata(run.env).get("splits", ())
        for tag in [f"final/{name}", *(f"final/{split}_{name}" for split in splits)]:
            if tag in run.scalars:
                return float(run.scalars[tag].values[-1]), "final evaluation", tag
    return float(run.scalars[metric].values[-1]), "last logged value", metric


@dataclass(frozen=True)
class Score:
    """A group's final score: its aggregate over runs and the confidence interval;
    ``metric`` is the tag the values were read from (``final/test_accuracy`` for a final
    evaluation, the curve's tag otherwise)."""

    env: str
    label: str
    metric: str
    runs: int
    value: float
    low: float
    high: float
    source: str
    settings: dict[str, Any]


def final_scores(
    groups: Sequence[Group],
    aggregate: str = "mean",
    ci: float = 95.0,
    resamples: int = 2000,
    seed: int = 0,
) -> list[Score]:
    """Each group's aggregate of its runs' final scores (:func:`final_value`) with its
    bootstrap interval (NaN for a single run)."""
    rng = np.random.default_rng(seed)
    scores = []
    for group in groups:
        values, sources, tags = zip(
            *(final_value(run, group.metric) for run in group.runs), strict=True
        )
        point, low, high = bootstrap_ci(np.array(values), aggregate, ci, resamples, rng)
        source = (
            sources[0] if len(set(sources)) == 1 else "mixed: " + ", ".join(sorted(set(sources)))
        )
        # The table names what its numbers are: the final evaluation's tag where they come
        # from it, not the curve's.
        shown = " / ".join(sorted(set(tags)))
        scores.append(
            Score(
                env=group.env,
                label=group.label,
                metric=shown,
                runs=len(group.runs),
                value=float(point),
                low=float(low),
                high=float(high),
                source=source,
                settings=group.key,
            )
        )
    return scores


SCORE_COLUMNS = (
    "env", "group", "metric", "aggregate", "runs", "value", "ci_low", "ci_high", "source",
    "settings",
)  # fmt: skip


def score_rows(scores: Sequence[Score], aggregate: str) -> list[dict[str, Any]]:
    """The final scores as CSV rows (:data:`SCORE_COLUMNS`); no interval: empty cells."""
    return [
        {
            "env": s.env,
            "group": s.label,
            "metric": s.metric,
            "aggregate": aggregate,
            "runs": s.runs,
            "value": s.value,
            "ci_low": "" if math.isnan(s.low) else s.low,
            "ci_high": "" if math.isnan(s.high) else s.high,
            "source": s.source,
            "settings": json.dumps(s.settings, sort_keys=True),
        }
        for s in scores
    ]


def format_scores(scores: Sequence[Score], aggregate: str, ci: float) -> str:
    """The final scores as an aligned text table."""
    head = ["env", "group", "metric", "runs", aggregate, f"{ci:g}% CI", "source"]
    rows = [
        [
            s.env, s.label, s.metric, str(s.runs), f"{s.value:.4g}",
            "none (1 run)" if math.isnan(s.low)
            else f"[{s.low:.4g}, {s.high:.4g}]" + (" (2 runs: rough)" if s.runs == 2 else ""),
            s.source,
        ]
        for s in scores
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    return "\n".join(line.rstrip() for line in lines)


# --- figures ----------------------------------------------------------------------------------
def require_matplotlib() -> None:
    """ImportError naming the optional extra where matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f"cogrl plot needs matplotlib: {PLOT_EXTRA}") from None


TIME_UNITS = ((3600.0 * 2, 3600.0, "h"), (120.0, 60.0, "min"), (0.0, 1.0, "s"))


def draw_curves(
    groups: Sequence[Group], axis: str, path_stem: Path, formats: Sequence[str], title: str
) -> list[Path]:
    """One figure of the groups' curves against ``axis`` ("steps" or "time"), one panel
    per environment, written as ``path_stem.<format>`` for each format; returns the paths."""
    require_matplotlib()
    from matplotlib.figure import Figure

    envs = sorted({g.env for g in groups})
    cols = min(3, len(envs))
    rows = math.ceil(len(envs) / cols)
    fig = Figure(figsize=(max(6.0, 5.2 * cols), 3.9 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colours = _colours()
    labels = sorted({g.label for g in groups})
    colour = {label: colours[i % len(colours)] for i, label in enumerate(labels)}
    longest = max(g.curves[axis][0][-1] for g in groups) if axis == "time" else 0.0
    _, scale, unit = next(u for u in TIME_UNITS if longest >= u[0])
    for ax, env in zip(axes, envs, strict=False):
        for group in (g for g in groups if g.env == env):
            grid, point, low, high = group.curves[axis]
            x = grid / scale if axis == "time" else grid
            n, seeds = len(group.runs), len({json.dumps(s) for s in group.seeds})
            what = f"{n} {'seeds' if seeds == n else 'runs'}" if n > 1 else "1 seed, no CI"
            ax.plot(x, point, color=colour[group.label], label=f"{group.label} ({what})")
            if n > 1:
                ax.fill_between(x, low, high, color=colour[group.label], alpha=0.25, lw=0)
        metrics = sorted({g.metric for g in groups if g.env == env})
        ax.set_title(env)
        ax.set_ylabel(", ".join(metrics))
        ax.set_xlabel("environment steps" if axis == "steps" else f"wall time ({unit})")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(envs) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize="medium")
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = path_stem.with_name(f"{path_stem.name}.{fmt}")
        fig.savefig(path, format=fmt, dpi=110)
        paths.append(path)
    return paths


def _colours() -> list[str]:
    """The colours of matplotlib's property cycle, so that a group keeps its colour in every
    panel and figure."""
    import matplotlib

    return list(matplotlib.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"]))


# --- the whole job ----------------------------------------------------------------------------
@dataclass
class PlotResult:
    """What :func:`plot` made: the groups with their curves, the final scores as a table,
    and the files written (figures, then the CSV)."""

    groups: list[Group]
    scores: list[Score]
    table: str
    files: list[Path]
    #: Groups whose curves stop before some of their runs' do (the grid ends where the
    #: shortest run ends), one line each.
    notes: list[str] = field(default_factory=list)


def plot(
    paths: Iterable[str | os.PathLike],
    out: str | os.PathLike = "plots",
    metric: str | None = None,
    x: str = "both",
    group_by: Sequence[str] | None = None,
    aggregate: str = "mean",
    ci: float = 95.0,
    resamples: int = 2000,
    seed: int = 0,
    points: int = 200,
    formats: Sequence[str] = ("png", "svg"),
) -> PlotResult:
    """Learning curves and final scores of the runs at or under ``paths`` (see the module
    docstring), written to ``out``: ``learning_curves_steps.<format>``,
    ``learning_curves_time.<format>`` (``x``: "steps", "time" or "both") and
    ``final_scores.csv``.

    ``metric``: the scalar tag to draw (default: :func:`default_metric` per environment);
    ``group_by``: the settings that make a group (default: all but the seed); ``aggregate``,
    ``ci``, ``resamples`` and ``seed``: the statistic, confidence level, bootstrap resamples
    and the bootstrap's seed; ``points``: the interpolation grid's size. ValueError for bad
    arguments, paths without runs and runs without the metric; ImportError without
    matplotlib.
    """
    check_statistics(aggregate, ci, resamples)
    if x not in (*X_AXES, "both"):
        raise ValueError(f"x must be one of {[*X_AXES, 'both']}, got {x!r}")
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"formats must be some of {list(FORMATS)}, got {list(formats)}")
    require_matplotlib()
    runs = load_runs(find_runs(paths))
    metrics = choose_metrics(runs, metric)
    groups = group_runs(runs, group_by)
    rng = np.random.default_rng(seed)
    axes = list(X_AXES if x == "both" else (x,))
    notes = [
        f"{events} is {damage}: its run's curves stop at its last whole record"
        for run in runs
        for events in sorted(run.path.glob("events.out.tfevents.*"))
        if (damage := event_file_damage(events)) is not None
    ]
    for group in groups:
        group.metric = metrics[group.env]
        for axis in list(axes):
            scalars = [run.scalars[group.metric] for run in group.runs]
            curves = [(curve.x(axis), curve.values) for curve in scalars]
            try:
                grid = common_grid(curves, points)
            except ValueError as e:
                names = ", ".join(r.path.name for r in group.runs)
                if axis == "time" and x == "both":
                    # Runs on a busy machine (or very short ones) may share no span of wall
                    # time; the steps figure still says everything, so it is drawn alone.
                    axes.remove("time")
                    for other in groups:
                        other.curves.pop("time", None)
                    notes.append(f"no wall-time figure: {group.env} {group.label} ({names}): {e}")
                    continue
                hint = " (wall time; --x steps draws against steps only)" if axis == "time" else ""
                raise ValueError(f"{group.env} {group.label} ({names}): {e}{hint}") from None
            values = interpolate(curves, grid)
            group.curves[axis] = (grid, *bootstrap_ci(values, aggregate, ci, resamples, rng))
        ends = [run.scalars[group.metric].steps[-1] for run in group.runs]
        if min(ends) < max(ends):
            notes.append(
                f"{group.env} {group.label}: the curves end at step {min(ends):,.0f}, where the "
                f"shortest of its {len(ends)} runs ends (the longest: {max(ends):,.0f})"
            )
    out = Path(out)
    title = f"{aggregate} over runs, {ci:g}% bootstrap CI ({resamples:,} resamples)"
    files = []
    for axis in axes:
        files += draw_curves(groups, axis, out / f"learning_curves_{axis}", formats, title)
    scores = final_scores(groups, aggregate, ci, resamples, seed)
    two = [f"{s.env} {s.label}" for s in scores if s.runs == 2]
    if two:
        notes.append(
            f"the {ci:g}% intervals of {', '.join(two)} rest on two runs: a bootstrap over two "
            "values spans little more than the two; more seeds make it an interval"
        )
    csv_path = out / "final_scores.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SCORE_COLUMNS)
        writer.writeheader()
        writer.writerows(score_rows(scores, aggregate))
    files.append(csv_path)
    return PlotResult(groups, scores, format_scores(scores, aggregate, ci), files, notes)


def choose_metrics(runs: Sequence[Run], metric: str | None) -> dict[str, str]:
    """The tag to draw for each environment: ``metric`` where given (every run must log it),
    else :func:`default_metric` of the tags that all of the environment's runs log."""
    envs = sorted({run.env for run in runs})
    if metric is not None:
        missing = [run for run in runs if metric not in run.scalars]
        if missing:
            logged = sorted(set().union(*(run.scalars for run in runs)))
            raise ValueError(
                f"--metric {metric!r}: {len(missing)} of {len(runs)} runs do not log it "
                f"({_names(missing)}); the runs log: {', '.join(logged) or 'no scalars'}"
            )
        return dict.fromkeys(envs, metric)
    chosen = {}
    for env in envs:
        mine = [run for run in runs if run.env == env]
        shared = set.intersection(*(set(run.scalars) for run in mine))
        found = default_metric(env, shared)
        if found is None:
            raise ValueError(
                f"the {len(mine)} runs on {env} ({_names(mine)}) log no episode return or task "
                f"metric in common; choose one with --metric TAG from: "
                f"{', '.join(sorted(shared)) or 'none (they log no scalars)'}"
            )
        chosen[env] = found
    return chosen


def _names(runs: Sequence[Run], most: int = 3) -> str:
    names = [str(run.path) for run in runs[:most]]
    return ", ".join(names) + (f" and {len(runs) - most} more" if len(runs) > most else "")
