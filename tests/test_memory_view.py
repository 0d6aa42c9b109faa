"""Seeing memory at work: a memory core's read and write weightings recorded over a rollout
and shown in TensorBoard as heatmaps beside the inputs and outputs (the NTM paper's figures).

The core here is the user's ``tiny_memory`` (``tests/memory_cores.py``), which declares one
read weighting through ``Core.memory_weights``; cores without memory show nothing.
"""

from __future__ import annotations

import io
from pathlib import Path

import memory_cores  # noqa: F401  (registers tiny_memory)
import numpy as np
import pytest
import torch
from PIL import Image

import cogrl.agents
import cogrl.envs
from cogrl.agents import memory_trace
from cogrl.agents.evaluation import memory_image
from cogrl.logging import (
    HEATMAP_AXIS_HEIGHT,
    HEATMAP_LABEL_WIDTH,
    HEATMAP_SCALE_WIDTH,
    RunLogger,
    heatmaps,
    read_images,
)

SMALL = {"num_envs": 2, "n_steps": 8, "batch_size": 16}


def tiny_memory_agent() -> cogrl.agents.Agent:
    policy = {"core": "memory_cores:tiny_memory", "core_size": 8, "hidden_sizes": [8]}
    return cogrl.agents.make("ppo", "CartPole-v1", device="cpu", seed=0, policy=policy, **SMALL)


def test_memory_trace_records_each_step_of_one_episode() -> None:
    agent = tiny_memory_agent()
    trace = memory_trace(agent, seed=3)
    assert trace is not None
    T = len(trace.rewards)
    assert T >= 8 and trace.inputs.shape == (T, 4) and trace.outputs.shape == (T, 1)
    assert trace.rewards.sum() == T  # CartPole: reward 1 per step
    read = trace.weights["read"]
    assert read.shape == (T, 1, 4)  # 4 slots, one head
    np.testing.assert_allclose(read.sum(-1), 1.0, rtol=1e-5)
    # The recorded observations are the episode's: the same seed gives the same trace.
    again = memory_trace(agent, seed=3)
    np.testing.assert_array_equal(trace.inputs, again.inputs)


def test_cores_without_memory_have_no_trace() -> None:
    for core in ("none", "gru"):
        agent = cogrl.agents.make(
            "ppo", "CartPole-v1", seed=0, policy={"core": core, "core_size": 8}, **SMALL
        )
        assert memory_trace(agent, seed=0) is None


def test_memory_image_shows_every_panel_over_time() -> None:
    trace = memory_trace(tiny_memory_agent(), seed=0)
    image = memory_image(trace)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    T = len(trace.rewards)
    cell = max(4, min(40, 1200 // T))
    # The label column, T steps of `cell` pixels, the colour scale.
    assert image.shape[1] == HEATMAP_LABEL_WIDTH + T * cell + HEATMAP_SCALE_WIDTH
    # Heatmap columns differ where the weighting changes over time.
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10


def test_heatmaps_map_weights_to_colours_and_reject_mismatched_panels() -> None:
    one_hot = np.eye(3)  # location t is read at step t
    image = heatmaps([("read", one_hot)], cell=4)
    left = HEATMAP_LABEL_WIDTH
    cells = image[:12, left : left + 12].reshape(3, 4, 3, 4, 3)[:, 0, :, 0]  # (row, step)
    bright, dark = cells[0, 0], cells[0, 1]
    assert (cells[np.eye(3, dtype=bool)] == bright).all()
    assert (cells[~np.eye(3, dtype=bool)] == dark).all()
    assert bright.sum() > dark.sum()
    with pytest.raises(ValueError, match=r"\(rows, T\) with one T"):
        heatmaps([("a", np.zeros((2, 3))), ("b", np.zeros((2, 4)))])
    with pytest.raises(ValueError, match="at least one"):
        heatmaps([])


def test_training_logs_the_memory_heatmap_to_tensorboard(tmp_path: Path) -> None:
    agent = tiny_memory_agent()
    with RunLogger(tmp_path) as logger:
        agent.learn(32, logger=logger, video_interval=16)
    images = read_images(tmp_path)
    assert "rollout/memory" in images
    steps = [step for step, _ in images["rollout/memory"]]
    assert steps[-1] == 32
    png = Image.open(io.BytesIO(images["rollout/memory"][-1][1]))
    assert png.format == "PNG" and png.size[0] > HEATMAP_LABEL_WIDTH


@pytest.mark.parametrize(
    ("core", "settings"),
    [
        ("ntm", {"memory_size": 8, "memory_width": 4, "read_heads": 2}),
        ("dnc", {"memory_size": 8, "word_size": 4}),
    ],
)
def test_memory_core_agents_save_load_and_predict_the_same(core, settings, tmp_path: Path) -> None:
    """An NTM or DNC policy on a memory task round-trips through its model file: the loaded
    agent acts as the saved one and carries the same memory state (weightings included)."""
    policy = {"core": core, "core_size": 16, "hidden_sizes": [16], **settings}
    agent = cogrl.agents.make(
        "ppo", "cogrl/Copy-v0", seed=0, env_kwargs={"max_length": 3}, num_envs=4, n_steps=16,
        batch_size=32, policy=policy,
    )  # fmt: skip
    agent.learn(64)
    loaded = cogrl.agents.load(agent.save(tmp_path / "model"))
    env = cogrl.envs.make_core("cogrl/Copy-v0", num_envs=4, max_length=3)
    obs, _ = env.reset(seed=0)
    state_a = state_b = None
    start = torch.ones(4, dtype=torch.bool)
    for _ in range(10):
        a, state_a = agent.predict(obs, state_a, start, deterministic=True)
        b, state_b = loaded.predict(obs, state_b, start, deterministic=True)
        assert torch.equal(a, b)
        torch.testing.assert_close(state_b, state_a, rtol=0, atol=0)
        obs, _, terminated, truncated, _ = env.step(a)
        start = terminated | truncated
    weights = agent.policy.memory_weights(state_a)
    assert weights and all(w.shape[0] == 4 for w in weights.values())


def test_a_memory_networks_attention_is_drawn_per_hop_at_a_readable_size() -> None:
    # MemN2N's attention over 50 slots in a short story: rows of at least 3 pixels, steps of
    # at least 4, beside a colour scale and above a time axis.
    attention = np.random.default_rng(0).dirichlet(np.ones(50), size=(3, 8)).transpose(0, 2, 1)
    image = heatmaps([(f"hop {k + 1}", a, "slot (0: latest)") for k, a in enumerate(attention)])
    cell = max(4, min(40, 1200 // 8))
    assert image.shape[1] == HEATMAP_LABEL_WIDTH + 8 * cell + HEATMAP_SCALE_WIDTH
    assert image.shape[0] >= 3 * (50 * 3) + HEATMAP_AXIS_HEIGHT
    scale = image[:100, HEATMAP_LABEL_WIDTH + 8 * cell + 4]  # the first panel's colour bar
    assert len(np.unique(scale, axis=0)) > 20  # a gradient from its maximum to its minimum
