"""`cogrl plot` and cogrl.plot: the bootstrap, grouping, interpolation, figures and the CLI."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import trim_mean
from torch.utils.tensorboard import SummaryWriter

from cogrl import plot
from cogrl.cli import main
from cogrl.plot import (
    Run,
    bootstrap_ci,
    common_grid,
    find_runs,
    group_runs,
    interpolate,
    iqm,
    load_runs,
)
from cogrl.runs import write_config


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def fake_run(
    folder: Path,
    seed: int = 0,
    env: str = "CartPole-v1",
    agent: str = "ppo",
    hyperparameters: dict | None = None,
    scalars: dict[str, list[tuple[int, float]]] | None = None,
    delay: float = 1.0,
) -> Path:
    """A run folder as `cogrl train` writes one (config.json, TensorBoard scalars), without
    training: each scalar tag's (step, value) points as given."""
    folder.mkdir(parents=True)
    config = {
        "agent": agent,
        "env": env,
        "env_kwargs": {},
        "seed": seed,
        "hyperparameters": hyperparameters or {"learning_rate": 1e-3, "policy": {"core": "none"}},
        "steps": 1000,
        "device": "cpu",
    }
    write_config(folder, config)
    if scalars is None:
        scalars = {"rollout/ep_rew_mean": [(s, 10.0 + s / 10 + seed) for s in (0, 500, 1000)]}
    # SummaryWriter, not RunLogger, to set the wall time: 1000 steps per second of training.
    writer = SummaryWriter(str(folder))
    start = time.time()
    for tag, points in scalars.items():
        for step, value in points:
            writer.add_scalar(tag, value, step, walltime=start + delay + step / 1000)
    writer.close()
    return folder


def settings_run(seed: int, **settings: object) -> Run:
    """A Run in memory, for the grouping tests."""
    merged = {"agent": "ppo", "env": "CartPole-v1", "steps": 1000, **settings}
    config = {"env": merged["env"], "agent": merged["agent"], "seed": seed}
    return Run(Path(f"r{seed}"), config, merged, {})


# --- the bootstrap ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("aggregate", "ci", "low", "high"),
    [("mean", 95, 0.92, 0.97), ("mean", 80, 0.76, 0.84), ("iqm", 95, 0.92, 0.98),
     ("median", 95, 0.92, 0.98)],
)  # fmt: skip
def test_bootstrap_ci_covers_the_true_value_at_about_the_stated_rate(
    aggregate: str, ci: float, low: float, high: float
) -> None:
    # 1000 experiments of 30 seeds each from N(3, 2^2), one per column: the mean, median and
    # IQM of a symmetric distribution are all its centre, 3.
    values = np.random.default_rng(1).normal(3.0, 2.0, size=(30, 1000))
    _, lo, hi = bootstrap_ci(values, aggregate, ci, resamples=1000, seed=0)
    coverage = np.mean((lo <= 3.0) & (3.0 <= hi))
    assert low <= coverage <= high, coverage


def test_bootstrap_ci_of_a_skewed_distribution_covers_its_median() -> None:
    values = np.random.default_rng(2).exponential(size=(20, 1000))  # median ln 2, mean 1
    _, lo, hi = bootstrap_ci(values, "median", 95, resamples=1000, seed=0)
    coverage = np.mean((lo <= np.log(2)) & (np.log(2) <= hi))
    assert 0.92 <= coverage <= 0.98, coverage


def test_bootstrap_ci_point_is_the_aggregate_and_the_interval_holds_it() -> None:
    values = np.random.default_rng(3).normal(size=(8, 50))
    for aggregate, exact in [
        ("mean", values.mean(0)),
        ("median", np.median(values, 0)),
        ("iqm", trim_mean(values, 0.25, axis=0)),
    ]:
        point, lo, hi = bootstrap_ci(values, aggregate, 95, resamples=500, seed=0)
        np.testing.assert_allclose(point, exact)
        assert np.all(lo <= point) and np.all(point <= hi) and np.all(lo < hi)


def test_constant_data_gives_a_zero_width_band_and_one_run_none() -> None:
    point, lo, hi = bootstrap_ci(np.full((5, 7), 2.5), "iqm", 95, resamples=200, seed=0)
    np.testing.assert_array_equal(point, 2.5)
    np.testing.assert_array_equal(lo, 2.5)
    np.testing.assert_array_equal(hi, 2.5)
    point, lo, hi = bootstrap_ci(np.array([[1.0, 2.0]]), "mean", 95, resamples=200, seed=0)
    np.testing.assert_array_equal(point, [1.0, 2.0])
    assert np.isnan(lo).all() and np.isnan(hi).all()


def test_bootstrap_resamples_whole_runs_and_is_seeded() -> None:
    # Two identical columns: a resample that mixed runs across columns would differ.
    column = np.random.default_rng(4).normal(size=6)
    values = np.stack([column, column], axis=1)
    _, lo, hi = bootstrap_ci(values, "mean", 90, resamples=300, seed=7)
    assert lo[0] == lo[1] and hi[0] == hi[1]
    _, lo2, hi2 = bootstrap_ci(values, "mean", 90, resamples=300, seed=7)
    np.testing.assert_array_equal(lo, lo2)
    _, lo3, _ = bootstrap_ci(values, "mean", 90, resamples=300, seed=8)
    assert lo3[0] != lo[0]
    # A long curve is resampled in chunks: the same answer as all resamples at once.
    values = np.random.default_rng(5).normal(size=(40, 5000))  # 20 resamples a chunk
    _, lo, hi = bootstrap_ci(values, "mean", 95, resamples=200, seed=3)
    picks = np.random.default_rng(3).integers(0, 40, size=(200, 40))
    means = np.stack([values[p].mean(0) for p in picks])
    np.testing.assert_array_equal([lo, hi], np.percentile(means, [2.5, 97.5], axis=0))


def test_iqm_is_scipys_trimmed_mean_and_keeps_nan() -> None:
    values = np.random.default_rng(6).normal(size=(13, 4))
    np.testing.assert_allclose(iqm(values), trim_mean(values, 0.25, axis=0))
    values[0, 1] = np.nan  # a diverged run: the cut must not hide it
    assert np.isnan(iqm(values)[1]) and not np.isnan(iqm(values)[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"aggregate": "max"}, "aggregate must be one of"), ({"ci": 100}, "0 < ci < 100"),
     ({"ci": 0}, "0 < ci < 100"), ({"ci": float("nan")}, "0 < ci < 100"),
     ({"resamples": 0}, "resamples must be a positive integer")],
)  # fmt: skip
def test_bootstrap_ci_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bootstrap_ci(np.ones((3, 2)), **kwargs)


# --- interpolation ----------------------------------------------------------------------------
def test_common_grid_covers_only_what_every_curve_covers_and_interpolates_linearly() -> None:
    a = (np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 20.0]))  # y = x
    b = (np.array([5.0, 15.0, 30.0]), np.array([10.0, 30.0, 60.0]))  # y = 2x
    grid = common_grid([a, b], points=11)
    np.testing.assert_allclose(grid, np.linspace(5.0, 20.0, 11))
    values = interpolate([a, b], grid)
    assert values.shape == (2, 11)
    np.testing.assert_allclose(values[0], grid)
    np.testing.assert_allclose(values[1], 2 * grid)
    assert common_grid([(np.array([3.0]), np.array([1.0]))], points=5).tolist() == [3.0]


def test_interpolation_errors() -> None:
    a = (np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    late = (np.array([2.0, 3.0]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="share no x"):
        common_grid([a, late], points=10)
    with pytest.raises(ValueError, match="points must be an integer >= 2"):
        common_grid([a], points=1)
    with pytest.raises(ValueError, match=r"covers x in \[0, 1\]"):
        interpolate([a], np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match="non-decreasing"):
        interpolate([(np.array([1.0, 0.0]), np.array([0.0, 1.0]))], np.array([0.5]))


# --- grouping ---------------------------------------------------------------------------------
def test_runs_that_differ_only_by_seed_form_one_group() -> None:
    runs = [
        settings_run(0, learning_rate=1e-3),
        settings_run(1, learning_rate=1e-3),
        settings_run(2, learning_rate=1e-3),
        settings_run(0, learning_rate=3e-4),
        settings_run(1, learning_rate=3e-4),
        settings_run(0, env="cogrl/GlimpseDigits-v0", agent="ram", learning_rate=1e-3),
    ]
    groups = group_runs(runs)
    summary = [(g.env, g.label, g.seeds) for g in groups]
    assert summary == [
        ("CartPole-v1", "ppo learning_rate=0.0003", [0, 1]),
        ("CartPole-v1", "ppo learning_rate=0.001", [0, 1, 2]),
        ("cogrl/GlimpseDigits-v0", "ram", [0]),  # alone in its panel: no setting to name
    ]
    # --group-by merges what the other settings split; groups stay per environment.
    by_agent = group_runs(runs, ["agent"])
    assert [(g.env, g.label, len(g.runs)) for g in by_agent] == [
        ("CartPole-v1", "ppo", 5),
        ("cogrl/GlimpseDigits-v0", "ram", 1),
    ]
    by_lr = group_runs(runs, ["learning_rate"])
    assert [g.label for g in by_lr] == ["learning_rate=0.0003", "learning_rate=0.001", "runs"]


def test_group_by_an_unknown_setting_lists_the_settings() -> None:
    with pytest.raises(ValueError, match=r"no run has the setting\(s\) \['lr'\].*learning_rate"):
        group_runs([settings_run(0, learning_rate=1e-3)], ["lr"])


def test_find_runs_recursively_under_a_sweep_and_errors(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    deep = fake_run(sweep / "trial_0" / "runs" / "a")
    shallow = fake_run(sweep / "b")
    (sweep / "results.csv").write_text("trial,score\n")
    (sweep / "other").mkdir()
    (sweep / "other" / "config.json").write_text('{"not": "a run"}')
    assert find_runs([sweep, shallow]) == [shallow.resolve(), deep.resolve()]
    assert find_runs([deep]) == [deep.resolve()]
    with pytest.raises(ValueError, match="no run folders under"):
        find_runs([sweep / "other"])
    with pytest.raises(ValueError, match="does not exist"):
        find_runs([tmp_path / "missing"])
    with pytest.raises(ValueError, match="is a file"):
        find_runs([sweep / "results.csv"])


def test_load_runs_reads_settings_scalars_and_wall_time(tmp_path: Path) -> None:
    (run,) = load_runs([fake_run(tmp_path / "r", seed=4)])
    assert run.seed == 4 and run.env == "CartPole-v1"
    assert "seed" not in run.settings and run.settings["policy.core"] == "none"
    curve = run.scalars["rollout/ep_rew_mean"]
    assert curve.steps.tolist() == [0, 500, 1000]
    np.testing.assert_allclose(curve.values, [14.0, 64.0, 114.0])
    # Seconds since the run's first event (the event file's creation), here 1 + step / 1000.
    np.testing.assert_allclose(curve.time, 1 + curve.steps / 1000, atol=0.5)


def test_default_metric_prefers_the_task_accuracy_then_the_return() -> None:
    both = {"rollout/ep_rew_mean", "rollout/accuracy", "train/loss"}
    assert plot.default_metric("cogrl/GlimpseDigits-v0", both) == "rollout/accuracy"
    assert plot.default_metric("CartPole-v1", {"rollout/ep_rew_mean"}) == "rollout/ep_rew_mean"
    coverage = {"rollout/ep_rew_mean", "rollout/coverage"}
    assert plot.default_metric("cogrl/Scanpath-v0", coverage) == "rollout/coverage"
    assert plot.default_metric("CartPole-v1", {"train/loss"}) is None


# --- plot() and the CLI -----------------------------------------------------------------------
def test_plot_writes_figures_and_final_scores(tmp_path: Path) -> None:
    for seed in range(3):
        fake_run(tmp_path / "runs" / f"s{seed}", seed=seed)
    fake_run(
        tmp_path / "runs" / "single",
        seed=0,
        hyperparameters={"learning_rate": 0.1, "policy": {"core": "none"}},
    )
    out = tmp_path / "out"
    result = plot.plot([tmp_path / "runs"], out=out, resamples=200, formats=("png", "svg"))
    names = sorted(p.name for p in result.files)
    assert names == [
        "final_scores.csv",
        "learning_curves_steps.png", "learning_curves_steps.svg",
        "learning_curves_time.png", "learning_curves_time.svg",
    ]  # fmt: skip
    for path in result.files:
        assert path.parent == out and path.stat().st_size > 0
    assert out.joinpath("learning_curves_steps.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in out.joinpath("learning_curves_time.svg").read_bytes()[:1000]
    # The one-seed group has no band and says so; the three-seed group has one.
    svg = out.joinpath("learning_curves_steps.svg").read_text()
    assert "1 seed, no CI" in svg and "3 seeds" in svg
    rows = list(csv.DictReader(out.joinpath("final_scores.csv").open()))
    assert [(r["group"], r["runs"], r["source"]) for r in rows] == [
        ("ppo learning_rate=0.001", "3", "last logged value"),
        ("ppo learning_rate=0.1", "1", "last logged value"),
    ]
    # Last values 110 + seed: mean 111, and the interval within [110, 112].
    assert float(rows[0]["value"]) == pytest.approx(111.0)
    assert 110.0 <= float(rows[0]["ci_low"]) < 111.0 < float(rows[0]["ci_high"]) <= 112.0
    assert rows[1]["ci_low"] == rows[1]["ci_high"] == ""
    assert json.loads(rows[0]["settings"])["learning_rate"] == 0.001
    (group, _) = result.groups
    grid, point, lo, hi = group.curves["steps"]
    np.testing.assert_allclose(grid[[0, -1]], [0, 1000])
    np.testing.assert_allclose(point, 11.0 + grid / 10)  # mean of 10 + s/10 + seed


def test_a_group_of_runs_of_different_lengths_stops_where_the_shortest_does(
    tmp_path: Path,
) -> None:
    fake_run(tmp_path / "runs" / "long", seed=0)
    short = {"rollout/ep_rew_mean": [(0, 1.0), (250, 2.0), (500, 3.0)]}
    fake_run(tmp_path / "runs" / "short", seed=1, scalars=short)
    result = plot.plot([tmp_path / "runs"], out=tmp_path / "o", x="steps", resamples=50)
    (group,) = result.groups
    assert group.curves["steps"][0][[0, -1]].tolist() == [0.0, 500.0]
    assert result.notes == [
        "CartPole-v1 ppo: the curves end at step 500, where the shortest of its 2 runs ends "
        "(the longest: 1,000)",
        "the 95% intervals of CartPole-v1 ppo rest on two runs: a bootstrap over two values "
        "spans little more than the two; more seeds make it an interval",
    ]
    assert "(2 runs: rough)" in result.table


def test_runs_that_share_no_wall_time_are_drawn_against_steps_with_a_note(
    tmp_path: Path,
) -> None:
    # The second run's first point comes after the first run's last, in wall time (a busy
    # machine, or a slow start), over the same steps.
    fake_run(tmp_path / "runs" / "a", seed=0)
    fake_run(tmp_path / "runs" / "b", seed=1, delay=5.0)
    result = plot.plot([tmp_path / "runs"], out=tmp_path / "o", resamples=50)
    (group,) = result.groups
    assert set(group.curves) == {"steps"}
    assert any(note.startswith("no wall-time figure: CartPole-v1") for note in result.notes)
    assert (tmp_path / "o" / "learning_curves_steps.png").is_file()
    assert not (tmp_path / "o" / "learning_curves_time.png").exists()
    # Asked for wall time alone, it is an error that says why.
    with pytest.raises(ValueError, match="share no x"):
        plot.plot([tmp_path / "runs"], out=tmp_path / "p", x="time", resamples=50)


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seeds of a tiny PPO on CartPole and one tiny RAM on the glimpse task, trained by
    `cogrl train` (each takes a second or two)."""
    root = tmp_path_factory.mktemp("plotruns")
    common = ["--runs-dir", str(root), "--video-interval", "0", "--checkpoint-every", "0",
              "--no-progress", "--device", "cpu"]  # fmt: skip
    trainings = [
        ["--env", "CartPole-v1", "--agent", "ppo", "--steps", "1536", "--set", "n_epochs=2",
         "--eval-episodes", "2", "--seed", str(seed)]
        for seed in (0, 1)
    ] + [
        ["--env", "cogrl/GlimpseDigits-v0", "--agent", "ram", "--steps", "768", "--num-envs",
         "16", "--eval-episodes", "16", "--set", "env.n_glimpses=2", "--set",
         "policy.core_size=16", "--set", "policy.hidden_sizes=[16]", "--set",
         "policy.glimpse_hidden=8", "--set", "policy.location_hidden=8"]
    ]  # fmt: skip
    # The first training in a process pays one-off costs (imports, first kernels) in its
    # first update; one run apart, not plotted, keeps them out of the seeds' wall-time
    # curves, which must overlap for the time figure.
    scratch = ["--runs-dir", str(tmp_path_factory.mktemp("warmup")), *common[2:]]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code, _, err = run_cli("train", *trainings[0], *scratch)
        assert code == 0, err
        for argv in trainings:
            code, _, err = run_cli("train", *argv, *common)
            assert code == 0, err
    finally:
        torch.set_num_threads(threads)
    return root


def test_cli_end_to_end_on_real_runs(real_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "plots"
    code, stdout, err = run_cli(
        "plot", str(real_runs), "--out", str(out), "--resamples", "300", "--aggregate", "iqm"
    )
    assert code == 0, err
    notes, lines = stdout.splitlines()[:1], stdout.splitlines()[1:]
    assert notes[0].startswith("note: the 95% intervals of CartPole-v1 ppo rest on two runs")
    assert lines[0] == "3 runs in 2 groups; final scores:"
    assert lines[1].split() == ["env", "group", "metric", "runs", "iqm", "95%", "CI", "source"]
    # The metric column names what the numbers are: the final evaluations' tags.
    assert lines[2].split()[:4] == ["CartPole-v1", "ppo", "final/mean_return", "2"]
    assert lines[2].endswith("(2 runs: rough)  final evaluation")
    assert lines[3].split()[:4] == ["cogrl/GlimpseDigits-v0", "ram", "final/test_accuracy", "1"]
    assert "none (1 run)" in lines[3]
    files = [Path(line) for line in lines[4:]]
    assert [f.name for f in files] == [
        "learning_curves_steps.png", "learning_curves_steps.svg", "learning_curves_time.png",
        "learning_curves_time.svg", "final_scores.csv",
    ]  # fmt: skip
    assert all(f.is_file() and f.stat().st_size > 0 for f in files)
    # The final scores are the runs' final evaluations: mean_return, and test_accuracy.
    runs = {run.seed: run for run in load_runs(find_runs([real_runs])) if run.env == "CartPole-v1"}
    finals = sorted(run.scalars["final/mean_return"].values[-1] for run in runs.values())
    rows = list(csv.DictReader((out / "final_scores.csv").open()))
    assert float(rows[0]["value"]) == pytest.approx(np.mean(finals))  # IQM of 2 is the mean
    (ram,) = [run for run in load_runs(find_runs([real_runs])) if run.env != "CartPole-v1"]
    assert float(rows[1]["value"]) == pytest.approx(ram.scalars["final/test_accuracy"].values[-1])


def test_cli_options_metric_x_and_formats(real_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "p"
    code, stdout, err = run_cli(
        "plot", str(real_runs), "--metric", "train/learning_rate", "--x", "time", "--formats",
        "svg", "--out", str(out), "--group-by", "agent", "--resamples", "100",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["final_scores.csv", "learning_curves_time.svg"]
    rows = list(csv.DictReader((out / "final_scores.csv").open()))
    assert {r["metric"] for r in rows} == {"train/learning_rate"}
    assert {r["source"] for r in rows} == {"last logged value"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--metric", "rollout/nope"], "--metric 'rollout/nope': 3 of 3 runs do not log it"),
        (["--metric", "rollout/accuracy"], "2 of 3 runs do not log it"),
        (["--ci", "100"], "0 < ci < 100, got 100.0"),
        (["--group-by", "lr"], r"no run has the setting\(s\) \['lr'\]"),
        (["--points", "1"], "points must be an integer >= 2"),
    ],
)
def test_cli_usage_errors_exit_2(real_runs: Path, tmp_path: Path, argv: list, message: str) -> None:
    code, _, err = run_cli("plot", str(real_runs), "--out", str(tmp_path / "o"), *argv)
    assert code == 2
    assert re.search(f"cogrl: error: .*{message}", err), err
    assert not (tmp_path / "o").exists()


def test_cli_errors_for_paths_and_runs_without_a_metric(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("plot", str(tmp_path / "empty"))
    assert code == 2 and "no run folders under" in err
    fake_run(tmp_path / "runs" / "a", scalars={"train/loss": [(0, 1.0), (10, 0.5)]})
    code, _, err = run_cli("plot", str(tmp_path / "runs"), "--out", str(tmp_path / "o"))
    assert code == 2
    assert "log no episode return or task metric in common; choose one with --metric" in err
    assert "train/loss" in err


def test_without_matplotlib_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_run(tmp_path / "runs" / "a")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
    code, _, err = run_cli("plot", str(tmp_path / "runs"), "--out", str(tmp_path / "o"))
    assert code == 1
    assert 'pip install "cogrl[plot]"' in err


def test_a_truncated_events_file_is_named_in_a_note(tmp_path: Path) -> None:
    fake_run(tmp_path / "runs" / "whole", seed=0)
    cut = fake_run(tmp_path / "runs" / "cut", seed=1)
    (events,) = cut.glob("events.out.tfevents.*")
    data = events.read_bytes()
    events.write_bytes(data[:-10])  # the last record loses its end
    result = plot.plot([tmp_path / "runs"], out=tmp_path / "o", x="steps", resamples=50)
    damaged = [note for note in result.notes if "cut short" in note]
    assert len(damaged) == 1 and str(events) in damaged[0]
    assert "runs past the file's end" in damaged[0] and "last whole record" in damaged[0]
    assert all(str(cut) not in note for note in result.notes if note not in damaged)
