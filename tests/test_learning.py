"""Slow learning checks (minutes each): ``pytest -m learning``. Deselected by default."""

from pathlib import Path

import pytest

import cogrl
from cogrl.agents import evaluate
from cogrl.agents.presets import preset


@pytest.mark.learning
@pytest.mark.parametrize(
    ("env_id", "steps", "accuracy"),
    [
        ("cogrl/GlimpseDigits-v0", 1_000_000, 0.85),
        ("cogrl/TranslatedDigits-v0", 4_000_000, 0.90),
    ],
)
def test_ram_reaches_its_test_accuracy(env_id: str, steps: int, accuracy: float) -> None:
    """RAM with its default hyperparameters, as ``cogrl train`` runs it, on unseen digits."""
    agent = cogrl.agents.make("ram", env_id, device="cpu", seed=0)
    agent.learn(steps)
    result = evaluate(agent, episodes=1000, num_envs=1000, seed=12345, split="test")
    assert result["accuracy"] >= accuracy, result


def _train_preset(name: str, env_id: str, steps: int) -> cogrl.agents.Agent:
    """``name`` with the hyperparameters ``cogrl train`` uses for ``env_id`` (its preset)."""
    p = preset(name, env_id)
    agent = cogrl.agents.make(
        name, env_id, device="cpu", seed=0, env_kwargs=p.env_kwargs, **p.hyperparameters
    )
    return agent.learn(steps)


@pytest.mark.learning
@pytest.mark.parametrize("name", ["ppo", "a2c", "dqn"])
def test_cartpole_preset_reaches_475_within_200k_steps(name: str) -> None:
    """As ``cogrl train --env CartPole-v1 --agent NAME --steps 200000`` then ``cogrl eval``."""
    agent = _train_preset(name, "CartPole-v1", 200_000)
    result = evaluate(agent, episodes=20, num_envs=20, seed=0)
    assert result["mean_return"] >= 475, result


@pytest.mark.learning
@pytest.mark.parametrize("name", ["ppo", "dqn"])
def test_glimpse_digits_discrete_preset_reaches_90_percent(name: str) -> None:
    """DQN and PPO on GlimpseDigits' discrete mode (look at a cell or answer), unseen digits."""
    env_id = "cogrl/GlimpseDigits-v0"
    agent = _train_preset(name, env_id, preset(name, env_id).timesteps)
    result = evaluate(agent, episodes=1000, num_envs=1000, seed=12345, split="test")
    assert result["accuracy"] >= 0.90, result


MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.mark.learning
@pytest.mark.skipif(not MNIST.is_dir(), reason="the shared MNIST folder is absent")
def test_dram_reads_mnist_pairs() -> None:
    """DRAM with its defaults on MNIST pairs (two digits apart on 100 x 100, read left to
    right), as ``cogrl train --env cogrl/MultiDigits-v0 --agent dram`` runs it: after 1.5M
    steps (250k canvases, about 4 minutes on one CPU thread) it names most test digits
    (benchmarks/attention.py's pairs cell named 65% of the labels right at 176k canvases
    and 85% at 344k)."""
    data = {"dataset": "mnist", "root": str(MNIST)}
    agent = cogrl.agents.make("dram", "cogrl/MultiDigits-v0", device="cpu", seed=0, env_kwargs=data)
    agent.learn(1_500_000)
    result = evaluate(agent, episodes=2000, num_envs=2000, seed=12345, split="test")
    assert result["label_accuracy"] >= 0.55, result
    assert result["accuracy"] >= 0.25, result
