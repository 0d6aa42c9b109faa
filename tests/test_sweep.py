"""`cogrl sweep`: the search space, its checks, a small sweep on Ray Tune, and a sweep that
resumes after its driver was killed with SIGKILL."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cogrl import sweep as sweeps
from cogrl.cli import main
from cogrl.sweep import Sweep, SweepError, parse_distribution, parse_grid, parse_setting


def _has_ray() -> bool:
    try:
        import ray.tune  # noqa: F401
    except ImportError:
        return False
    return True


needs_ray = pytest.mark.skipif(
    not _has_ray(), reason="needs the [ray] extra (Ray Tune), not installed"
)

# --- the search space (no Ray) ----------------------------------------------------------------


def test_grid_values_parse_as_set_values():
    assert parse_grid("learning_rate=[1e-3,3e-4]") == ("learning_rate", [1e-3, 3e-4])
    assert parse_grid("policy.hidden_sizes=[[64,64],[256]]") == (
        "policy.hidden_sizes",
        [[64, 64], [256]],
    )
    assert parse_grid("env.n_glimpses=[4,6,8]") == ("env.n_glimpses", [4, 6, 8])
    assert parse_setting("policy.core=gru") == ("policy.core", "gru")


@pytest.mark.parametrize(
    "item, message",
    [
        ("learning_rate=1e-3", "non-empty list"),
        ("learning_rate=[]", "non-empty list"),
        ("learning_rate", "NAME=VALUE"),
        ("=[1,2]", "NAME=VALUE"),
        ("seed=[1,2]", "--seeds"),
        ("env.=[1,2]", "env argument name"),
        ("policy..core=[1]", "empty name"),
    ],
)
def test_bad_grids_are_named(item, message):
    with pytest.raises(SweepError, match=message) as e:
        parse_grid(item)
    assert item.partition("=")[0] in str(e.value) or "NAME=VALUE" in str(e.value)


def test_distributions_parse_into_tune_domains():
    assert parse_distribution("learning_rate=loguniform(1e-4, 1e-2)") == (
        "learning_rate",
        "loguniform",
        [1e-4, 1e-2],
    )
    assert parse_distribution("policy.core=choice(['gru', 'lstm'])")[2] == [["gru", "lstm"]]
    assert parse_distribution("n_steps=qrandint(8, 64, 8)")[1] == "qrandint"
    assert parse_distribution("gamma=normal(0.99, 0.001)")[1] == "normal"


@pytest.mark.parametrize(
    "item, message",
    [
        ("learning_rate=lognormal(1, 2)", "unknown distribution 'lognormal'"),
        ("learning_rate=loguniform(0, 1)", "needs low > 0"),
        ("learning_rate=uniform(1, 1)", "low < high"),
        ("learning_rate=uniform(1)", "takes 2 argument"),
        ("learning_rate=uniform(0, 1e999)", "finite numbers"),
        ("learning_rate=uniform(0, 'a')", "finite numbers"),
        ("n_steps=randint(1.5, 4)", "integers"),
        ("n_steps=qrandint(1, 9, 0)", "q must be > 0"),
        ("gamma=normal(0.9, 0)", "standard deviation"),
        ("core=choice([])", "non-empty list"),
        ("core=choice('gru')", "non-empty list"),
        ("learning_rate=uniform(low=0, high=1)", "DISTRIBUTION"),
        ("learning_rate=__import__('os')", "unknown distribution '__import__'"),
        ("learning_rate=[1, 2]", "DISTRIBUTION"),
    ],
)
def test_bad_distributions_are_named(item, message):
    with pytest.raises(SweepError, match=message.replace("(", r"\(")):
        parse_distribution(item)


def test_sweep_checks_what_would_repeat_or_clash():
    base = dict(envs=["CartPole-v1"], agents=["ppo"])
    with pytest.raises(SweepError, match="seeds repeats"):
        Sweep(**base, seeds=[0, 0]).check()
    with pytest.raises(SweepError, match="non-negative integers"):
        Sweep(**base, seeds=[-1]).check()
    with pytest.raises(SweepError, match="needs a --sample"):
        Sweep(**base, samples=4).check()
    with pytest.raises(SweepError, match="more than once"):
        Sweep(**base, fixed={"gamma": 0.9}, grid={"gamma": [0.9, 0.99]}).check()
    with pytest.raises(SweepError, match=r"--grid learning_rate repeats a value: \[1, 1\]"):
        Sweep(**base, grid={"learning_rate": [1, 1]}).check()
    with pytest.raises(SweepError, match="at least one of envs"):
        Sweep(envs=[], agents=["ppo"]).check()
    with pytest.raises(SweepError, match="mode"):
        Sweep(**base, mode="best").check()


def test_early_stopping_is_checked_before_ray_starts():
    base = dict(envs=["CartPole-v1"], agents=["ppo"])
    with pytest.raises(SweepError, match="needs --steps"):
        Sweep(**base, scheduler="asha").check()
    with pytest.raises(SweepError, match=r"grace period must be in \(0, 1000\), got 1000"):
        Sweep(**base, scheduler="asha", steps=1000, grace_period=1000).check()
    with pytest.raises(SweepError, match="reduction factor must be >= 2, got 1"):
        Sweep(**base, scheduler="asha", steps=1000, reduction_factor=1).check()
    with pytest.raises(SweepError, match="scheduler must be one of"):
        Sweep(**base, scheduler="hyperband", steps=1000).check()
    Sweep(**base, scheduler="asha", steps=1000).check()  # grace period: steps / 10


def test_trials_are_the_product_of_every_axis():
    sweep = Sweep(
        envs=["CartPole-v1", "cogrl/GlimpseDigits-v0"],
        agents=["ppo"],
        seeds=[0, 1, 2],
        grid={"learning_rate": [1e-3, 3e-4], "policy.core": ["gru", "lstm"]},
        sample={"gamma": ["uniform", 0.9, 0.99]},
        samples=2,
    )
    assert sweep.num_trials() == 2 * 3 * 4 * 2
    checked = list(sweep.combinations())
    # each environment and agent once with the first grid values, then every grid value once
    assert len(checked) == 2 * (1 + 2 + 2)
    assert {c["gamma"] for c in checked} == {0.9}
    assert {c["policy.core"] for c in checked} == {"gru", "lstm"}


def test_trial_settings_nest_as_train_does():
    hyperparameters, env_kwargs = sweeps.trial_settings(
        {"learning_rate": 1e-3, "policy.core": "gru", "env.n_glimpses": 4, "policy.sizes": [8]}
    )
    assert hyperparameters == {"learning_rate": 1e-3, "policy": {"core": "gru", "sizes": [8]}}
    assert env_kwargs == {"n_glimpses": 4}


def test_a_missing_ray_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    status = main(
        ["sweep", "--env", "CartPole-v1", "--agent", "ppo", "--sweeps-dir", str(tmp_path)]
    )
    assert status == 2
    assert 'pip install "cogrl[ray]"' in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


# --- on Ray --------------------------------------------------------------------------------------


@needs_ray
def test_unknown_settings_stop_the_sweep_before_ray_starts(tmp_path, capsys):
    status = main(
        ["sweep", "--env", "CartPole-v1", "--agent", "ppo", "--grid", "learning_rat=[1e-3,1e-4]",
         "--sweeps-dir", str(tmp_path)]
    )  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "learning_rat" in err and "learning_rate" in err  # the "did you mean"
    assert not any(tmp_path.iterdir())
    status = main(["sweep", "--env", "CartPole-v1", "--agent", "ppo", "--samples", "3"])
    assert status == 2
    assert "needs a --sample" in capsys.readouterr().err


@needs_ray
def test_asha_compares_trials_by_steps_until_past_their_end():
    scheduler = Sweep(
        envs=["CartPole-v1"], agents=["ppo"], steps=10_000, scheduler="asha", mode="max"
    ).tune_scheduler()
    assert scheduler._time_attr == "timesteps"
    assert scheduler._metric == "rollout/ep_rew_mean"
    # max_t beyond the steps: a trial at its last steps still runs its final evaluation
    assert scheduler._max_t == 20_000


class FakeResult:
    def __init__(self, path: str, metrics: dict, error: Exception | None = None) -> None:
        self.path, self.metrics, self.error = path, metrics, error
        self.config = {"env": "CartPole-v1", "agent": "ppo", "seed": 0}


@pytest.mark.parametrize("scheduler, status", [(None, "unfinished"), ("asha", "stopped early")])
def test_results_say_how_each_trial_ended(tmp_path, scheduler, status, capsys):
    sweep = Sweep(envs=["CartPole-v1"], agents=["ppo"], steps=1000, scheduler=scheduler)
    results = [
        FakeResult(
            "t/a_0", {"trial": "a", "finished": 1, "timesteps": 1000, "eval/mean_return": 9.0}
        ),
        FakeResult("t/b_1", {"trial": "b", "timesteps": 200}),
        FakeResult("t/c_2", {}, RuntimeError("boom")),
    ]
    assert sweeps.write_results(tmp_path, sweep, results) == 1  # a trial failed
    rows = read_results(tmp_path)
    assert [(r["trial"], r["status"]) for r in rows] == [
        ("a", "finished"),
        ("b", status),
        ("c_2", "error"),
    ]
    assert "trial c_2 failed" in capsys.readouterr().err


def read_results(folder: Path) -> list[dict[str, str]]:
    with (folder / sweeps.RESULTS_FILE).open() as f:
        return list(csv.DictReader(f))


@needs_ray
def test_a_small_sweep_writes_run_folders_and_one_row_per_trial(tmp_path, capsys):
    status = main(
        ["sweep", "--env", "CartPole-v1", "--agent", "ppo", "--seeds", "0", "1",
         "--grid", "learning_rate=[1e-3,3e-4]", "--set", "n_epochs=2", "--steps", "2048",
         "--eval-episodes", "2", "--num-cpus", "2", "--sweeps-dir", str(tmp_path),
         "--name", "small"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    folder = tmp_path / "small"
    assert out.strip().splitlines()[-1] == str(folder.resolve())
    rows = read_results(folder)
    assert len(rows) == 4
    assert {(r["seed"], r["learning_rate"]) for r in rows} == {
        (s, lr) for s in ("0", "1") for lr in ("0.001", "0.0003")
    }
    for row in rows:
        assert row["status"] == "finished"
        assert float(row["eval/episodes"]) == 2
        run_dir = folder / row["run_dir"]
        assert (run_dir / "model.pt").is_file()
        config = json.loads((run_dir / "config.json").read_text())
        assert config["seed"] == int(row["seed"])
        assert config["hyperparameters"]["learning_rate"] == float(row["learning_rate"])
        assert config["hyperparameters"]["n_epochs"] == 2
    assert json.loads((folder / "sweep.json").read_text())["grid"] == {
        "learning_rate": [1e-3, 3e-4]
    }
    assert "eval/mean_return over seeds" in out
    assert (folder / "ray").is_dir()  # Ray's temporary files stay in the sweep folder


@needs_ray
def test_a_sweep_killed_with_sigkill_resumes_and_reports_every_trial_once(tmp_path):
    command = [
        sys.executable, "-m", "cogrl", "sweep", "--env", "CartPole-v1", "--agent", "ppo",
        "--seeds", "0", "1", "2", "--steps", "8192", "--checkpoint-every", "1024",
        "--eval-episodes", "2", "--max-concurrent", "1", "--num-cpus", "2",
        "--sweeps-dir", str(tmp_path), "--name", "killed",
    ]  # fmt: skip
    folder = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        # Wait until the first trial has finished and the second has a checkpoint.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            finished = list(folder.glob("runs/*/result.json"))
            checkpoints = list(folder.glob("runs/*/*/checkpoint.pt"))
            if finished and len(checkpoints) >= 2:
                break
            assert driver.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("the sweep made no progress in 120 s")
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        # What the dead driver's Ray instance left (its processes share the session).
        try:
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    first = finished[0].parent
    first_time = json.loads(finished[0].read_text())["time_s"]
    model = next(first.glob("*/model.pt"))
    trained = model.stat().st_mtime_ns
    stopped = [p.parent for p in checkpoints if p.parent.parent != first]
    assert not (folder / sweeps.RESULTS_FILE).exists()

    resumed = subprocess.run(
        [sys.executable, "-m", "cogrl", "sweep", "--resume", str(folder), "--num-cpus", "2"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.strip().splitlines()[-1] == str(folder.resolve())
    rows = read_results(folder)
    assert sorted(r["seed"] for r in rows) == ["0", "1", "2"]
    assert all(r["status"] == "finished" for r in rows)
    assert all(int(r["timesteps"]) >= 8192 for r in rows)
    # One run folder per trial: the killed trial went on in its own folder.
    assert all(len([p for p in d.iterdir() if p.is_dir()]) == 1 for d in folder.glob("runs/*"))
    assert model.stat().st_mtime_ns == trained  # the finished trial did not train again
    # Its wall time is the one it finished with, not the instant of being reported again.
    (row,) = [r for r in rows if r["trial"] == first.name]
    assert float(row["time_s"]) == first_time > 1.0
    assert all(float(r["time_s"]) > 1.0 for r in rows)
    # The trials killed after a checkpoint went on in their run folders, to the end.
    assert stopped and all((run / "model.pt").is_file() for run in stopped)


def test_resume_stops_the_ray_processes_a_killed_sweep_left(tmp_path):
    folder = tmp_path / "sweep"
    left = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", f"--temp-dir={folder / 'ray'}"]
    )
    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", f"--temp-dir={tmp_path / 'ray'}"]
    )
    try:
        stopped = sweeps.stop_orphaned_ray_processes(folder)
        assert [pid for pid, _ in stopped] == [left.pid]
        assert "--temp-dir=" in stopped[0][1]
        assert left.wait(timeout=10) == -signal.SIGTERM
        assert other.poll() is None  # another sweep's (or anyone else's) is left alone
    finally:
        for process in (left, other):
            process.kill()
            process.wait()
