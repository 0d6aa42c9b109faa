"""benchmarks/attention.py's ``--checkpoint``: a RAM or DRAM cell killed between slices goes
on from its last slice when the same command runs again, with the agent it had trained."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from cogrl.agents import load

HERE = Path(__file__).resolve().parent


@pytest.fixture()
def attention(monkeypatch, tmp_path):
    """The benchmark module, with checkpoints in ``tmp_path`` and small tests."""
    spec = importlib.util.spec_from_file_location(
        "attention_benchmark", HERE.parent / "benchmarks" / "attention.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "CHECKPOINT", tmp_path)
    monkeypatch.setattr(module, "TEST_EPISODES", 64)
    monkeypatch.setattr(module, "HYPER", {"num_envs": 16})
    return module


DATA = {"dataset": "digits"}  # scikit-learn's digits: no MNIST needed


def test_a_killed_cell_resumes_from_its_last_slice(attention, monkeypatch, tmp_path) -> None:
    real_slices = attention.slices

    def killed_after_one(budget, n, train_for, test, curve=None, after=None):
        def after_then_kill(done):
            after(done)
            raise KeyboardInterrupt  # the session ends here

        return real_slices(budget, n, train_for, test, curve, after_then_kill)

    monkeypatch.setattr(attention, "slices", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        attention.run_agent("ram:2", "mnist28", DATA, 1.0, 3, 0)
    record = json.loads((tmp_path / "mnist28__ram-2.json").read_text())
    assert len(record["curve"]) == 1
    first = load(tmp_path / record["agent"])
    assert first.num_timesteps == 2 * record["curve"][0]["images"]  # 2 glimpses an image

    monkeypatch.setattr(attention, "slices", real_slices)
    curve = attention.run_agent("ram:2", "mnist28", DATA, 1.0, 3, 0)["curve"]
    assert len(curve) == 3
    assert curve[0] == record["curve"][0]  # the first slice is kept, not run again
    assert curve[0]["images"] < curve[1]["images"] < curve[2]["images"]
    assert curve[0]["seconds"] < curve[1]["seconds"] < curve[2]["seconds"]
    final = json.loads((tmp_path / "mnist28__ram-2.json").read_text())
    assert final["curve"] == curve
    # Only the last slice's agent is kept, and it is the agent that trained all three.
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == [final["agent"]]
    assert load(tmp_path / final["agent"]).num_timesteps == 2 * curve[-1]["images"]


def test_a_checkpoint_of_other_settings_is_refused(attention, monkeypatch) -> None:
    attention.run_agent("ram:2", "mnist28", DATA, 0.5, 1, 0)
    with pytest.raises(SystemExit, match="0 s in 1 slices, not 1 s in 2"):
        attention.run_agent("ram:2", "mnist28", DATA, 1.0, 2, 0)
    monkeypatch.setattr(attention, "HYPER", {"num_envs": 32})
    with pytest.raises(SystemExit, match="made with hyper .*16.*, not .*32"):
        attention.run_agent("ram:2", "mnist28", DATA, 0.5, 1, 0)
