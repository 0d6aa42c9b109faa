"""benchmarks/attention.py's ``--checkpoint``: a RAM or DRAM cell killed between slices goes
on from its last slice when the same command runs again, with the agent it had trained."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

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


def test_where_splits_the_test_error_by_the_digits_looked_at(attention) -> None:
    from cogrl.agents import evaluate, make

    agent = make("dram", "cogrl/MultiDigits-v0", seed=0, env_kwargs={**DATA, "target": "sum"})
    agent.learn(2_000)
    result, test = attention.where_errors(agent, episodes=64)
    plain = evaluate(agent, 64, num_envs=64, seed=attention.TEST_SEED, split="test")
    assert result["error"] == pytest.approx(1.0 - plain["accuracy"])
    for sense in ("centre", "patch"):
        groups = result[sense]
        assert sum(g["share"] for g in groups) == pytest.approx(1.0)
        # the groups' errors, weighed by their shares, make the whole error
        assert sum(g["share"] * g["error"] for g in groups) == pytest.approx(result["error"])

    # a centre in a digit's ink box puts the finest patch on it: at least as many digits
    # are looked at in the patch's sense
    def mean_digits(groups):
        return sum(g["digits"] * g["share"] for g in groups)

    assert mean_digits(result["patch"]) >= mean_digits(result["centre"])
    # the digits' labels of the sum's episodes (from a sequence-labelled twin) add up to
    # the sums the task drew
    core = agent.make_core(64, split="test")
    core.reset(seed=attention.TEST_SEED)
    assert test["digits"].shape == (64, 2)
    assert torch.equal(test["digits"].sum(1), core.label[:, 0])


def test_the_digit_probe_reads_what_the_state_holds(attention, monkeypatch) -> None:
    generator = torch.Generator().manual_seed(0)

    def episodes(n, holds_digits):
        digits = torch.randint(0, 10, (n, 2), generator=generator)
        noise = torch.randn(n, 16, generator=generator)
        if not holds_digits:
            return {"state": noise, "digits": digits}
        codes = torch.nn.functional.one_hot(digits, 10).flatten(1).float()
        return {"state": torch.cat([codes, noise], 1), "digits": digits}

    for holds_digits, bound in ((True, lambda e: e < 0.02), (False, lambda e: e > 0.7)):
        monkeypatch.setattr(
            attention,
            "glimpse_rollout",
            lambda agent, split, seed, n, h=holds_digits: episodes(n, h),
        )
        rows = attention.digit_probe(None, episodes(500, holds_digits), rows=2000, steps=300)
        assert [r["position"] for r in rows] == [0, 1]
        assert all(bound(r["test_error"]) for r in rows), rows


def test_equal_time_claims_compare_runs_on_one_cpu_only(attention) -> None:
    # A CPU run's record names its CPU; wall times on two machines are not comparable.
    def record(cpu: str | None, error: float, images: int) -> dict:
        curve = [{"seconds": 100.0, "error": error, "images": images}]
        return {"budget": 100.0, "device": "cpu", "curve": curve, **({"cpu": cpu} if cpu else {})}

    a, b = record("Xeon", 0.1, 10), record("Xeon", 0.2, 20)
    claim = attention.same_time_claim(a, b, ("A", "B"), "A below B")
    assert claim[0].startswith("- A below B in the same wall time (100 s): **met** (10.00%")
    assert "B having seen 2.0x the images" in claim[0]
    assert attention.same_time_claim(a, record("EPYC", 0.2, 20), ("A", "B"), "A below B") == []
    assert attention.same_time_claim(a, record(None, 0.2, 20), ("A", "B"), "A below B") == []
    assert attention.same_time_claim(record(None, 0.3, 10), record(None, 0.2, 20), ("A", "B"), "c")
