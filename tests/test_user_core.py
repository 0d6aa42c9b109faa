"""A core of the user's own, registered in their module, trains in every learner by name.

``tests/memory_cores.py`` registers ``tiny_memory``: a nested NamedTuple state (an LSTM
controller, a memory matrix with read weights, the last read) and a learned initial
memory. The command line builds it as ``policy.core=memory_cores:tiny_memory`` (importing
the module first), PPO learns with it (sequences replayed from the rollout's first state)
and recurrent DQN too (R2D2 sequences with burn-in from states stored in the replay).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import cogrl.agents
from cogrl.cli import main
from cogrl.nn import CORES

CORE = "memory_cores:tiny_memory"


def train(tmp_path: Path, agent: str, *extra: str) -> Path:
    status = main(
        [
            "train", "--env", "CartPole-v1", "--agent", agent, "--steps", "3000",
            "--no-preset", "--seed", "1", "--device", "cpu", "--run-dir", str(tmp_path),
            "--video-interval", "0", "--eval-episodes", "5", "--no-progress",
            "--set", f"policy.core={CORE}", "--set", "policy.core_size=16",
            "--set", "policy.slots=3", "--set", "policy.hidden_sizes=[16]", *extra,
        ]
    )  # fmt: skip
    assert status == 0
    (run,) = list(tmp_path.iterdir())
    return run


@pytest.mark.parametrize(
    "agent, extra",
    [
        ("ppo", ["--set", "n_steps=16", "--set", "batch_size=64", "--num-envs", "8"]),
        (
            "dqn",
            [
                "--set", "learning_starts=400", "--set", "batch_size=16",
                "--set", "sequence_length=6", "--set", "burn_in=3", "--set", "train_freq=8",
                "--num-envs", "8",
            ],
        ),
    ],
)  # fmt: skip
def test_a_registered_core_trains_from_the_command_line_by_name(tmp_path, agent, extra):
    run = train(tmp_path, agent, *extra)
    config = json.loads((run / "config.json").read_text())
    policy = config["hyperparameters"]["policy"]
    assert policy["core"] == CORE and policy["core_kwargs"] == {"slots": 3}
    assert "tiny_memory" in CORES  # the module was imported by the name's module: part

    loaded = cogrl.agents.load(run / "model", device="cpu")
    net = loaded.policy.actor_torso if agent == "ppo" else loaded.policy.torso
    # The learned initial memory was trained: the update reached it through the resets.
    fresh = cogrl.agents.make(
        agent, "CartPole-v1", device="cpu", seed=1, **config["hyperparameters"]
    )
    fresh_net = fresh.policy.actor_torso if agent == "ppo" else fresh.policy.torso
    assert not torch.equal(net.core.initial_memory, fresh_net.core.initial_memory)

    # The nested state flows through predict(state=...) and resets at episode starts.
    obs = np.zeros((2, 4), np.float32)
    _, state = loaded.predict(obs)
    _, carried = loaded.predict(obs, state, episode_start=np.array([False, False]))
    _, restarted = loaded.predict(obs, carried, episode_start=np.array([True, True]))
    _, first = loaded.predict(obs)
    core_state = (lambda s: s[0]) if agent == "ppo" else (lambda s: s)  # actor's, for PPO
    assert type(core_state(state)).__name__ == "MemoryState"  # the core's own NamedTuple
    torch.testing.assert_close(core_state(restarted).memory.matrix, core_state(first).memory.matrix)
    assert not torch.allclose(core_state(carried).memory.matrix, core_state(first).memory.matrix)


def test_a_core_setting_of_the_wrong_name_is_a_usage_error(tmp_path, capsys):
    status = main(
        [
            "train", "--env", "CartPole-v1", "--agent", "ppo", "--steps", "100",
            "--run-dir", str(tmp_path), "--set", f"policy.core={CORE}", "--set", "policy.slotz=3",
        ]
    )  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "slotz" in err and "slots" in err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_the_readme_core_trains_from_the_cogrl_command_in_its_folder(tmp_path):
    """The README's own-core example: its code saved as mycores.py, then the `cogrl` console
    script run in that folder, as the README says."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    marker = "<!-- readme-example: own-core -->"
    code = re.search(r"```python\n(.*?)```", text[text.index(marker) :], re.S).group(1)
    (tmp_path / "mycores.py").write_text(code)
    # The README's command, in a bash block (a line continuation joins its two lines).
    command = re.search(r"^(cogrl train [^\n]*policy\.core=mycores:leaky[^\n]*\n.*?)$", text, re.M)
    args = shlex.split(command.group(1).replace("\\\n", " "), comments=True)[1:]
    script = Path(sys.executable).with_name("cogrl")
    done = subprocess.run(
        [str(script), *args, "--steps", "512", "--no-preset", "--set", "n_steps=32",
         "--video-interval", "0", "--eval-episodes", "2", "--no-progress", "--run-dir", "runs"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run,) = list((tmp_path / "runs").iterdir())
    policy = json.loads((run / "config.json").read_text())["hyperparameters"]["policy"]
    assert policy["core"] == "mycores:leaky" and policy["core_kwargs"] == {"rate": 0.2}
