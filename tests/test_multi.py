"""cogrl/MultiDigits-v0: layout in reading order, the answer's rewards and ends, both modes.

The generic contract (checkers, seeding, batched = single, snapshots, sync-free stepping)
is in tests/test_env_contract.py; here is what is particular to reading several digits.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest
import torch

import cogrl
from cogrl.datasets import load_digits
from cogrl.envs import make_core

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def core_of(num_envs: int = 16, **kwargs):
    core = make_core("cogrl/MultiDigits-v0", num_envs=num_envs, **kwargs)
    core.reset(seed=3)
    return core


def boxes_overlap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b).abs() < 28).all(-1)


@pytest.mark.parametrize(("n_digits", "canvas_size"), [(2, 100), (3, 100), (5, 100), (4, 60)])
def test_digits_lie_apart_in_reading_order(n_digits: int, canvas_size: int) -> None:
    core = core_of(64, n_digits=n_digits, canvas_size=canvas_size)
    corners = core.corners
    assert corners.shape == (64, n_digits, 2)
    assert int(corners.min()) >= 0 and int(corners.max()) <= canvas_size - 28
    for i in range(n_digits):
        for j in range(i + 1, n_digits):
            assert not bool(boxes_overlap(corners[:, i], corners[:, j]).any())
            # Reading order: j is on a later line (lines are bands of rows, top to bottom),
            # or on the same line wholly to the right of i.
            line_i, line_j = corners[:, i, 0] // core.band, corners[:, j, 0] // core.band
            right = corners[:, j, 1] >= corners[:, i, 1] + 28
            assert bool(((line_j > line_i) | ((line_j == line_i) & right)).all())


def test_each_box_holds_a_dataset_image_of_its_label() -> None:
    core = core_of(8, n_digits=3)
    data = load_digits("digits", "train")
    images = torch.tensor(data.images)
    labels = torch.tensor(data.labels)
    for e in range(8):
        for i in range(3):
            r, c = core.corners[e, i].tolist()
            crop = core.canvas[e, r : r + 28, c : c + 28]
            same_class = images[labels == core.label[e, i]]
            assert float((same_class - crop).abs().amax((1, 2)).min()) == 0.0


def test_sum_target_is_the_sum_of_the_digits() -> None:
    seq = core_of(32, n_digits=3)
    total = core_of(32, n_digits=3, target="sum")
    # Same seed, same draws: the same digits, summed.
    assert torch.equal(total.label[:, 0], seq.label.sum(1))
    assert total.n_classes == 28 and total.single_action_space.shape == (2 + 28 + 2,)


@pytest.mark.parametrize("mode", ["continuous", "discrete"])
def test_rewards_per_label_in_order_and_sequence_accuracy(mode: str) -> None:
    core = core_of(4, n_digits=2, action_mode=mode)
    label = core.label.clone()
    wrong = (label + 1) % 10
    # Env 0 answers both right, env 1 the first only, env 2 the second only, env 3 both
    # in the wrong order (right only where the two labels agree).
    first = torch.stack([label[0, 0], label[1, 0], wrong[2, 0], label[3, 1]])
    second = torch.stack([label[0, 1], wrong[1, 1], label[2, 1], label[3, 0]])
    _, r1, te1, tr1, _ = core.step(core.answer(first))
    assert r1.tolist() == [1.0, 1.0, 0.0, float(label[3, 1] == label[3, 0])]
    assert not bool(te1.any() | tr1.any())
    _, r2, te2, _, info = core.step(core.answer(second))
    assert r2.tolist() == [1.0, 0.0, 1.0, float(label[3, 0] == label[3, 1])]
    assert te2.all()
    assert info["correct"].tolist() == [True, False, False, bool(label[3, 0] == label[3, 1])]
    assert info["labels_correct"][:3].tolist() == [1.0, 0.5, 0.5]
    assert torch.equal(info["labels"], label)
    assert torch.equal(info["prediction"][0], label[0])


def test_looking_emits_nothing_and_the_budget_truncates() -> None:
    core = core_of(2, n_digits=2, n_glimpses=3)
    look = torch.zeros(2, 2 + 10 + 2)
    look[:, 2 + 10] = 1.0  # the "nothing" score wins
    look[0, :2] = torch.tensor([0.5, -0.5])
    for _ in range(3):
        _, reward, terminated, truncated, info = core.step(look)
        assert reward.tolist() == [0.0, 0.0] and not bool(terminated.any())
    assert truncated.all()
    assert info["prediction"].tolist() == [[-1, -1], [-1, -1]]
    assert not bool(info["correct"].any())


def test_end_of_sequence_ends_early_and_the_answer_is_wrong() -> None:
    for mode, eos in (("continuous", None), ("discrete", 25 + 10)):
        core = core_of(1, n_digits=2, action_mode=mode)
        core.step(core.answer(core.label[:, 0]))
        if eos is None:
            action = torch.zeros(1, 14)
            action[0, 13] = 1.0
        else:
            action = torch.tensor([eos])
        _, reward, terminated, _, info = core.step(action)
        assert terminated.all() and reward.tolist() == [0.0]
        assert info["prediction"][0, 1] == -1 and not bool(info["correct"].any())


def test_discrete_looks_move_to_cell_centres_and_emits_stay() -> None:
    core = core_of(1, n_digits=2, action_mode="discrete", grid_size=5)
    core.step(torch.tensor([6]))  # row 1, column 1 of 5
    expected = torch.tensor([[-1 + 3 / 5, -1 + 3 / 5]])
    assert torch.allclose(core.location, expected)
    core.step(torch.tensor([25 + 3]))  # emit 3
    assert torch.allclose(core.location, expected)


def test_context_is_the_canvas_averaged() -> None:
    core = core_of(2, context_size=25)
    obs = core._observe()
    pooled = core.canvas.view(2, 25, 4, 25, 4).mean((2, 4)).flatten(1)
    assert torch.allclose(obs["context"], pooled, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_digits": 0}, "n_digits"),
        ({"n_digits": 10}, "do not fit"),
        ({"canvas_size": 20}, "do not fit"),
        ({"target": "product"}, "target"),
        ({"n_clutter": -1}, "n_clutter"),
        ({"context_size": 101}, "context_size"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_core("cogrl/MultiDigits-v0", **kwargs)


def test_render_shows_the_answer_strip() -> None:
    env = gym.make("cogrl/MultiDigits-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.shape[0] == frame.shape[1] + 20


@pytest.mark.skipif(not MNIST.is_dir(), reason="the shared MNIST folder is absent")
def test_real_mnist_pairs() -> None:
    core = core_of(4, dataset="mnist", root=str(MNIST), split="test")
    assert core.n_images == 10_000
    assert core.label.shape == (4, 2)
    assert cogrl.envs.env_metadata("cogrl/MultiDigits-v0")["label_key"] == "labels"
