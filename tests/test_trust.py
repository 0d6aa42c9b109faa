"""Opening someone else's run folder runs no code unless the user trusts it.

A run folder names code as ``module:name`` strings (the environment id, ``policy.core``) in
``config.json``, ``checkpoint.pt`` and ``model.pt``. Each test plants such a module beside
the run folder (as an attacker would ship it inside the folder): importing it writes a
marker file. ``cogrl eval``, ``cogrl record``, ``cogrl train --resume`` and
``cogrl.agents.load`` must not import it (the marker stays absent, the error names the
module and the opt-in) unless given ``--trust-code`` / ``trust_code=True``, or the module
is already imported by the user's own script.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import signal
import sys
from pathlib import Path

import gymnasium as gym
import pytest

import cogrl.agents
from cogrl import runner
from cogrl.cli import main
from cogrl.imports import UntrustedCodeError, names_from
from cogrl.nn import CORES

_COUNT = itertools.count()

PLANTED = """
from pathlib import Path

import gymnasium as gym

from cogrl.nn import register_core
from cogrl.nn.cores import LSTMCore

Path(__file__).with_name(__name__ + ".imported").write_text("imported")
register_core(__name__ + "_core")(type("Planted", (LSTMCore,), {}))
_spec = gym.spec("cogrl/DelayedRecall-v0")
gym.register(id=__name__ + "-v0", entry_point=_spec.entry_point, kwargs=_spec.kwargs)
"""


class Planted:
    """A module ``name`` in ``folder`` whose import writes ``folder/name.imported``."""

    def __init__(self, folder: Path) -> None:
        self.name = f"planted_{next(_COUNT)}_{id(self)}"
        self.folder = folder
        (folder / f"{self.name}.py").write_text(PLANTED)
        self.marker = folder / f"{self.name}.imported"
        self.core = f"{self.name}:{self.name}_core"
        self.env = f"{self.name}:{self.name}-v0"

    def forget(self) -> None:
        """As a fresh process would be: the module not imported, nothing it registered."""
        sys.modules.pop(self.name, None)
        CORES.pop(f"{self.name}_core", None)
        gym.registry.pop(f"{self.name}-v0", None)
        self.marker.unlink(missing_ok=True)
        importlib.invalidate_caches()

    @property
    def imported(self) -> bool:
        return self.marker.exists()


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """A planted module in ``tmp_path/shared`` and a run folder trained with it as its
    policy core, stopped after its first update (so that it can be resumed); the working
    directory is the folder that holds both, as after ``cd`` into a shared download."""
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setattr(sys, "path", [str(shared), *sys.path])
    module = Planted(shared)
    spec = runner.RunSpec(
        env=module.env,
        agent="ppo",
        seed=0,
        device="cpu",
        steps=4096,
        preset=False,
        num_envs=4,
        hyperparameters={
            "n_steps": 16,
            "batch_size": 32,
            "n_epochs": 1,
            "policy": {"core": module.core, "core_size": 8, "hidden_sizes": [8]},
        },
        video_interval=0,
        eval_episodes=2,
        checkpoint_every=64,
        threads=1,
        root=str(shared / "runs"),
        progress=False,
    )
    # SIGTERM, as `kill` would send it: the run stops at its next step with a checkpoint.
    result = runner.train(spec, callback=lambda agent, info: os.kill(os.getpid(), signal.SIGTERM))
    assert result.interrupted and (result.run_dir / "checkpoint.pt").is_file()
    # The finished model too, as a shared run folder has.
    cogrl.agents.load(result.run_dir / "checkpoint.pt").save(result.run_dir / "model.pt")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(shared)])
    monkeypatch.chdir(shared)
    module.forget()
    yield module, result.run_dir
    module.forget()


def test_agents_load_imports_no_module_a_model_file_names(planted):
    module, run = planted
    with pytest.raises(UntrustedCodeError) as e:
        cogrl.agents.load(run / "model.pt", device="cpu")
    assert not module.imported
    message = str(e.value)
    assert f"'{module.name}'" in message and "model.pt" in message
    assert "trust_code=True" in message and "--trust-code" in message

    sys.path.insert(0, str(module.folder))  # where the user's own module lives
    agent = cogrl.agents.load(run / "model.pt", device="cpu", trust_code=True)
    assert module.imported and agent.env_id == module.env


def test_a_module_the_user_imported_is_used_without_the_opt_in(planted, monkeypatch):
    module, run = planted
    monkeypatch.syspath_prepend(str(module.folder))
    importlib.import_module(module.name)  # the user's script registers its env and core
    agent = cogrl.agents.load(run / "model.pt", device="cpu")
    assert agent.env_id == module.env


@pytest.mark.parametrize("command", ["eval", "record"])
def test_cli_eval_and_record_refuse_a_planted_module(planted, capsys, command):
    module, run = planted
    # `cd RUN_FOLDER && cogrl eval .`: the module lies in the working directory.
    assert main([command, str(run), "--episodes", "1", "--device", "cpu"]) == 2
    assert not module.imported
    err = capsys.readouterr().err
    assert f"names module '{module.name}'" in err and "--trust-code" in err

    assert main([command, str(run), "--episodes", "1", "--device", "cpu", "--trust-code"]) == 0
    assert module.imported


def test_train_resume_refuses_a_planted_module_and_resumes_with_the_opt_in(planted, capsys):
    module, run = planted
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    assert not module.imported
    err = capsys.readouterr().err
    assert f"names module '{module.name}'" in err and "--trust-code" in err

    assert main(["train", "--resume", str(run), "--no-progress", "--trust-code"]) == 0
    assert module.imported
    assert cogrl.agents.load(run / "model.pt", device="cpu").num_timesteps == 4096


def test_the_working_directory_goes_on_sys_path_only_for_a_module_typed_by_the_user(
    tmp_path, monkeypatch, capsys
):
    module = Planted(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        # No `module:` typed: the working directory stays off sys.path.
        assert main(["list"]) == 0
        assert str(tmp_path) not in sys.path
        # `--env mymod:MyEnv-v0` typed by the user imports from the working directory.
        assert main(["describe", "ppo", "--env", module.env]) == 0
        assert module.imported
    finally:
        module.forget()
    capsys.readouterr()


def test_trust_code_must_be_a_bool_and_is_for_resume_only(tmp_path, capsys):
    with pytest.raises(ValueError, match="trust_code must be True or False, got 'yes'"):
        with names_from(tmp_path, "yes"):
            pass
    assert main(["train", "--env", "CartPole-v1", "--agent", "ppo", "--trust-code"]) == 2
    assert "--trust-code is for --resume RUN_DIR" in capsys.readouterr().err


def test_sweep_resume_refuses_a_module_its_sweep_json_names(tmp_path, monkeypatch, capsys):
    pytest.importorskip("ray", reason="cogrl sweep needs the [ray] extra (Ray Tune)")
    from cogrl.sweep import SWEEP_FILE, TUNE_DIR, Sweep

    module = Planted(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # importable, were it not refused
    sweep = tmp_path / "sweep"
    (sweep / TUNE_DIR).mkdir(parents=True)
    (sweep / SWEEP_FILE).write_text(json.dumps(Sweep(envs=[module.env], agents=["ppo"]).to_dict()))
    try:
        # Checked before Ray starts workers, which would import what the trials name.
        assert main(["sweep", "--resume", str(sweep)]) == 2
        assert not module.imported
        err = capsys.readouterr().err
        assert f"names module '{module.name}'" in err and "--trust-code" in err
    finally:
        module.forget()


def test_cogrls_own_modules_are_imported_from_a_file(tmp_path):
    # cogrl's tasks name their cores "cogrl.envs...:Class"; a process that has not imported
    # that module yet (cogrl imports lazily) loads them from an untrusted file all the same.
    import subprocess

    agent = cogrl.agents.make("ram", "cogrl/ClutteredDigits-v0", device="cpu", seed=0)
    agent.save(tmp_path / "model")
    code = (
        "import sys, cogrl.agents; "
        "assert 'cogrl.envs.attention.glimpse' not in sys.modules; "
        f"print(cogrl.agents.load({str(tmp_path / 'model')!r}).env_id)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "cogrl/ClutteredDigits-v0"
