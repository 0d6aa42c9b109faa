"""Slow learning checks (minutes each): ``pytest -m learning``. Deselected by default."""

import pytest

import cogrl
from cogrl.agents import evaluate


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
