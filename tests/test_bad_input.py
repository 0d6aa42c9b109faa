"""Bad input found by a probe: each is a clear error naming the bad value and what was
expected, and on the command line exit status 2 with no run folder left behind, instead
of a traceback, a silent wrong result or a slow out-of-memory.

(Replay overflow and loaded replay counters are in test_replay.py, damaged MNIST files in
test_datasets.py, corrupt checkpoints in test_resume.py, core sizes in test_envs_core.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_datasets import idx_bytes

import cogrl.agents
from cogrl.cli import main

ENV = "cogrl/GlimpseDigits-v0"


def train_fails(tmp_path: Path, capsys, *args: str) -> str:
    """Run ``cogrl train`` expecting a usage error; returns its message."""
    root = tmp_path / "runs"
    status = main(["train", *args, "--run-dir", str(root), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert not root.exists() or not any(root.iterdir()), "a run folder was left behind"
    return err


# --- data -----------------------------------------------------------------------------------


def write_mnist(folder: Path, labels: np.ndarray, n_images: int | None = None) -> Path:
    n = len(labels) if n_images is None else n_images
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "t10k"):
        (folder / f"{split}-images-idx3-ubyte").write_bytes(
            idx_bytes(np.zeros((n, 28, 28), np.uint8))
        )
        (folder / f"{split}-labels-idx1-ubyte").write_bytes(idx_bytes(labels.astype(np.uint8)))
    return folder


@pytest.mark.parametrize(
    "labels, n_images, message",
    [
        (np.array([1, 12, 3]), None, "0-9|outside"),
        (np.array([], np.uint8), 0, "0 images"),
    ],
    ids=["label-out-of-range", "zero-images"],
)
def test_bad_mnist_files_are_usage_errors(tmp_path, capsys, labels, n_images, message):
    root = write_mnist(tmp_path / "mnist", labels, n_images)
    err = train_fails(
        tmp_path, capsys, "--env", ENV, "--agent", "ram",
        "--set", "env.dataset=mnist", "--set", f"env.root={root}",
    )  # fmt: skip
    assert "mnist" in err.lower() and any(m in err for m in message.split("|")), err


# --- sizes that cannot fit ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, names",
    [
        (["--agent", "ppo", "--num-envs", "1000000000"], ["num_envs"]),
        (["--agent", "ram", "--set", "env.glimpse_size=100000"], ["glimpse_size"]),
        (["--agent", "ram", "--set", "env.n_glimpses=10000000000"], ["n_glimpses"]),
        (["--agent", "dqn", "--set", "buffer_size=1000000000000"], ["capacity", "buffer_size"]),
    ],
    ids=["num_envs", "glimpse_size", "n_glimpses", "buffer_size"],
)
def test_sizes_beyond_the_machines_memory_are_usage_errors(tmp_path, capsys, args, names):
    err = train_fails(tmp_path, capsys, "--env", ENV, *args)
    assert any(name in err for name in names), err
    assert "bytes" in err, err


# --- seeds, step counts, observations, configs ---------------------------------------------


@pytest.mark.parametrize("seed", [-1, 2**62, 1.5, True])
def test_seeds_outside_what_the_generators_accept_are_errors(seed):
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*62\)"):
        cogrl.agents.make("ppo", "CartPole-v1", seed=seed)


def test_a_negative_seed_on_the_command_line_is_a_usage_error(tmp_path, capsys):
    err = train_fails(tmp_path, capsys, "--env", "CartPole-v1", "--agent", "ppo", "--seed", "-1")
    assert "seed" in err and "-1" in err


@pytest.mark.parametrize("steps", [0, -100])
@pytest.mark.parametrize("name", ["ppo", "dqn", "reinforce"])
def test_learn_with_a_non_positive_step_count_is_an_error(name, steps):
    agent = cogrl.agents.make(name, "CartPole-v1", device="cpu")
    with pytest.raises(ValueError, match=rf"total_timesteps must be an int >= 1, got {steps}"):
        agent.learn(steps)


@pytest.mark.parametrize(
    "obs, shape",
    [
        (np.zeros(5, np.float32), r"\(5,\)"),
        (np.zeros((2, 3), np.float32), r"\(2, 3\)"),
        (torch.zeros(2, 4, 1), r"\(2, 4, 1\)"),
    ],
)
def test_predict_with_an_observation_of_the_wrong_shape_names_the_expected_one(obs, shape):
    agent = cogrl.agents.make("ppo", "CartPole-v1", device="cpu")
    with pytest.raises(ValueError, match=rf"shape {shape} does not fit .*expected shape \(4,\)"):
        agent.predict(obs)


def test_predict_with_dict_entries_of_the_wrong_shape_names_the_key():
    agent = cogrl.agents.make("ram", ENV, device="cpu")
    obs = {"glimpse": np.zeros((2, 64), np.float32), "location": np.zeros((2, 3), np.float32)}
    with pytest.raises(ValueError, match=r"observation\['location'\] of shape \(2, 3\)"):
        agent.predict(obs)


def test_numpy_numbers_and_paths_in_a_config_are_saved_as_plain_json(tmp_path):
    root = write_mnist(tmp_path / "mnist", np.arange(10))
    agent = cogrl.agents.make(
        "ppo",
        ENV,
        device="cpu",
        seed=np.int64(3),
        env_kwargs={
            "action_mode": "discrete",
            "dataset": "mnist",
            "root": root,
            "n_glimpses": np.int32(4),
        },
        learning_rate=np.float32(1e-3),
        n_steps=np.int64(16),
        policy={"hidden_sizes": np.array([32, 32]), "core_size": np.int16(8)},
    )
    path = agent.save(tmp_path / "model")
    config = json.loads(torch.load(path, weights_only=True)["config"])
    assert config["env_kwargs"]["root"] == str(root)
    assert config["hyperparameters"]["n_steps"] == 16
    assert config["hyperparameters"]["policy"]["hidden_sizes"] == [32, 32]
    assert cogrl.agents.load(path, device="cpu").config.learning_rate == pytest.approx(1e-3)


def test_values_json_cannot_hold_are_errors_when_the_agent_is_made():
    with pytest.raises(ValueError, match=r"hyperparameters.learning_rate = .*cannot be written"):
        cogrl.agents.make("ppo", "CartPole-v1", learning_rate=object())
    with pytest.raises(ValueError, match=r"env_kwargs.render_hook"):
        cogrl.agents.make("ppo", "CartPole-v1", env_kwargs={"render_hook": print})
