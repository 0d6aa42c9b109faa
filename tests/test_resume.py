"""Checkpoints and resume: a killed training run continues exactly where it stopped.

For PPO, DQN (with its replay), RAM and PPO with a curriculum on a batched core, a ``cogrl
train`` killed with SIGKILL at a random moment after its first checkpoint and resumed with
``--resume`` ends with the same weights and logs the same scalars after the resume point as
an uninterrupted run with the same seed (CPU, one thread). SIGTERM leaves a resumable run;
a checkpoint cut short by a kill is never the one loaded; a run driven to divergence stops
with a message naming the step and the quantity and keeps its last finite checkpoint.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import cogrl.agents
from cogrl.checkpoint import read_checkpoint
from cogrl.cli import main
from cogrl.logging import read_scalars

ENV = "cogrl/GlimpseDigits-v0"
# Short runs with a checkpoint every few updates; no videos (their rollouts take time).
RUNS = {
    "ppo": [
        "--env", ENV, "--agent", "ppo", "--steps", "32768", "--num-envs", "64",
        "--set", "n_steps=8", "--set", "batch_size=128", "--set", "policy.core_size=32",
        "--set", "policy.hidden_sizes=[32]", "--checkpoint-every", "1024",
    ],
    "dqn": [
        "--env", ENV, "--agent", "dqn", "--steps", "16384", "--num-envs", "16",
        "--set", "learning_starts=1024", "--set", "train_freq=16", "--set", "buffer_size=4096",
        "--set", "target_update_interval=512", "--set", "policy.hidden_sizes=[32, 32]",
        "--checkpoint-every", "1024",
    ],
    "ram": [
        "--env", ENV, "--agent", "ram", "--steps", "49152", "--num-envs", "32",
        "--set", "policy.core_size=32", "--set", "policy.hidden_sizes=[32]",
        "--checkpoint-every", "2048",
    ],
    # A curriculum that advances twice (its level and draws are in the checkpoint), with
    # factored credit and whole episodes (the kept steps of unfinished episodes too).
    "ppo-curriculum": [
        "--env", "cogrl/Copy-v0", "--agent", "ppo", "--steps", "16384", "--num-envs", "32",
        "--set", "n_steps=16", "--set", "batch_size=128", "--set", "n_epochs=4",
        "--set", "policy.core=gru", "--set", "policy.core_size=32",
        "--set", "env.max_length=4", "--set", "factored_credit=true",
        "--set", "whole_episodes=true",
        "--set", "curriculum=max_length=1,2,4; metric=bit_errors<=2.0; window=50; mix=true",
        "--checkpoint-every", "1024",
    ],
}  # fmt: skip
COMMON = ["--seed", "3", "--device", "cpu", "--threads", "1", "--video-interval", "0",
          "--eval-episodes", "20", "--no-progress"]  # fmt: skip


def run_cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "cogrl", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def only_run(root: Path) -> Path:
    (run,) = list(root.iterdir())
    return run


def weights(run: Path) -> dict[str, torch.Tensor]:
    state = read_checkpoint(run / "model.pt")["state"]
    return {f"{m}.{k}": v for m, module in state.items() for k, v in module.items()}


def learning_scalars(run: Path, after: int) -> dict[str, list[tuple[int, float]]]:
    """Scalars logged after step ``after`` (time/* measure the machine, not the run)."""
    return {
        tag: [(s, v) for s, v in points if s > after]
        for tag, points in read_scalars(run).items()
        if not tag.startswith("time/")
    }


def first_checkpoint(root: Path, process: subprocess.Popen) -> Path:
    """The checkpoint path of the run folder ``process`` creates in ``root``."""
    while not (root.exists() and any(root.iterdir())):
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    return only_run(root) / "checkpoint.pt"


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.mark.parametrize("agent", sorted(RUNS))
def test_a_run_killed_at_a_random_moment_resumes_to_the_same_end(agent, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    args = [*RUNS[agent], *COMMON]
    reference = run_cli("train", *args, "--run-dir", str(whole))
    wait_for(first_checkpoint(whole, reference), reference)
    first = time.monotonic()
    status, out, err = finish(reference)
    assert status == 0, err
    training_left = time.monotonic() - first  # after the first checkpoint

    victim = run_cli("train", *args, "--run-dir", str(killed))
    run = first_checkpoint(killed, victim).parent
    wait_for(run / "checkpoint.pt", victim)
    # A random moment in the training that follows the first checkpoint.
    time.sleep(random.Random().uniform(0.0, 0.8 * training_left))
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    if (run / "model.pt").exists():
        pytest.skip("the run finished before the kill")  # too fast a machine for this test
    resumed_at = read_checkpoint(run / "checkpoint.pt")["training"]["progress"]
    step = cogrl.agents.load(run / "checkpoint.pt", device="cpu").num_timesteps
    assert resumed_at is not None and 0 < step < 100_000

    status, out, err = finish(run_cli("train", "--resume", str(run), "--no-progress"))
    assert status == 0, err
    assert f"resumed at step {step:,}" in out

    expected, got = weights(only_run(whole)), weights(run)
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0, msg=name)
    assert learning_scalars(run, step) == learning_scalars(only_run(whole), step)
    # TensorBoard shows one unbroken curve: every point once, steps increasing.
    for tag, points in read_scalars(run).items():
        steps = [s for s, _ in points]
        assert steps == sorted(set(steps)), tag


def test_sigterm_leaves_a_resumable_run(tmp_path):
    args = [*RUNS["ppo"], *COMMON]
    args[args.index("32768")] = "200000"
    process = run_cli("train", *args, "--run-dir", str(tmp_path))
    run = None
    while run is None:
        runs = list(tmp_path.iterdir())
        run = runs[0] if runs else None
        time.sleep(0.02)
    wait_for(run / "checkpoint.pt", process)
    process.send_signal(signal.SIGTERM)
    status, out, err = finish(process)
    assert status == 130, err
    assert "SIGTERM" in err and f"--resume {run}" in err
    agent, training = cogrl.agents.base.load_checkpoint(run / "checkpoint.pt", device="cpu")
    assert training is not None and agent.num_timesteps < 200_000
    assert training["progress"]["end"] == 200_000


def test_a_checkpoint_cut_short_is_never_loaded(tmp_path):
    args = [*RUNS["ppo"], *COMMON]
    args[args.index("32768")] = "2048"
    assert main(["train", *args, "--run-dir", str(tmp_path)]) == 0
    run = only_run(tmp_path)
    good = (run / "checkpoint.pt").read_bytes()
    # A kill while writing leaves a partial temporary file beside the last complete one.
    (run / f"checkpoint.pt.tmp-{12345}").write_bytes(good[: len(good) // 3])
    agent, training = cogrl.agents.base.load_checkpoint(run / "checkpoint.pt", device="cpu")
    assert training is not None and agent.num_timesteps >= 2048


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", "truncated"])
def test_corrupt_truncated_or_empty_checkpoints_are_clear_errors(tmp_path, content, capsys):
    args = [*RUNS["ppo"], *COMMON]
    args[args.index("32768")] = "1024"
    assert main(["train", *args, "--run-dir", str(tmp_path)]) == 0
    run = only_run(tmp_path)
    path = run / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if content == "truncated" else content)
    with pytest.raises(ValueError, match="checkpoint.pt"):
        cogrl.agents.load(path)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt" in err and ("empty" in err or "cannot be read" in err)


@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"], ids=["discrete", "continuous"])
def test_divergence_stops_with_the_step_and_quantity_and_keeps_a_finite_checkpoint(
    tmp_path, env, capsys
):
    # A2C takes one gradient step per rollout of 16 x 5 steps: a checkpoint after the
    # first, and the huge step it takes makes the second loss overflow.
    status = main(
        [
            "train", "--env", env, "--agent", "a2c", "--steps", "8000", "--no-preset",
            "--set", "learning_rate=1e20", "--set", "max_grad_norm=null",
            "--checkpoint-every", "80", "--run-dir", str(tmp_path), *COMMON,
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1, err
    assert "training stopped at step 160: the loss is not finite" in err
    assert "the last finite checkpoint (step 80) is kept" in err
    run = only_run(tmp_path)
    assert not (run / "model.pt").exists()  # no run saves non-finite weights as its model
    state = read_checkpoint(run / "checkpoint.pt")["state"]
    for module in state.values():
        for name, tensor in module.items():
            assert torch.isfinite(tensor).all(), name


def test_resume_takes_the_runs_own_settings_and_refuses_a_finished_run(tmp_path, capsys):
    args = [*RUNS["ppo"], *COMMON]
    args[args.index("32768")] = "1024"
    assert main(["train", *args, "--run-dir", str(tmp_path)]) == 0
    run = only_run(tmp_path)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "5000", "--seed", "4"]) == 2
    err = capsys.readouterr().err
    assert "drop --steps --seed" in err
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    assert "has finished its 1,024 steps; nothing to resume" in capsys.readouterr().err


def test_learn_goes_on_after_a_callback_stop_without_videos(tmp_path):
    agent = cogrl.agents.make("ppo", "CartPole-v1", device="cpu", n_steps=16)
    stop_at = {"n": 0}

    def stop_once(agent, info):
        stop_at["n"] += 1
        return stop_at["n"] < 3

    agent.learn(2048, callback=stop_once, video_interval=256)
    steps = agent.num_timesteps
    assert steps < 2048
    agent.learn(2048 - steps, reset_num_timesteps=False)  # the same training, no videos now
    assert agent.num_timesteps >= 2048


def test_a_full_disk_while_checkpointing_says_so_and_keeps_the_last_checkpoint(
    tmp_path, monkeypatch, capsys
):
    import shutil

    import cogrl.checkpoint

    real_save = cogrl.checkpoint.torch.save
    saved = []

    def save_until_the_disk_fills(obj, f):
        if saved:  # the second write: torch's writer on a full disk, ENOSPC hidden
            f.write(b"partial")
            monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 0))
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64")
        saved.append(True)
        real_save(obj, f)

    monkeypatch.setattr(cogrl.checkpoint.torch, "save", save_until_the_disk_fills)
    args = [*RUNS["ppo"], *COMMON]
    assert main(["train", *args, "--run-dir", str(tmp_path)]) == 1
    monkeypatch.undo()
    err = capsys.readouterr().err
    run = only_run(tmp_path)
    assert "no space left on device while writing" in err and "checkpoint.pt was not changed" in err
    assert f"the last checkpoint {run / 'checkpoint.pt'} is intact" in err
    assert f"resume with: cogrl train --resume {run}" in err
    assert "enforce fail" in err.splitlines()[-1]  # the cause, on the same line
    agent, training = cogrl.agents.base.load_checkpoint(run / "checkpoint.pt", device="cpu")
    assert training is not None and agent.num_timesteps == 1024
    assert not list(run.glob("*.tmp*"))


def test_resume_removes_the_temporary_files_of_killed_writes(tmp_path, capsys):
    args = [*RUNS["ppo"], *COMMON]
    args[args.index("32768")] = "4096"
    assert main(["train", *args, "--run-dir", str(tmp_path)]) == 0
    run = only_run(tmp_path)
    (run / "model.pt").unlink()  # as if killed before the end: resumable
    checkpoint = cogrl.agents.base.load_checkpoint(run / "checkpoint.pt", device="cpu")
    assert checkpoint[0].num_timesteps == 4096
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process id that no longer runs
    left = [run / f"checkpoint.pt.tmp-{gone.pid}", run / f"config.json.tmp{gone.pid}"]
    for path in left:
        path.write_bytes(b"partial")
    capsys.readouterr()
    main(["train", "--resume", str(run), "--no-progress"])
    assert not any(path.exists() for path in left)
    assert "removed checkpoint.pt.tmp-" in capsys.readouterr().out
