"""Tests of ``cogrl/VisualSearch-v0`` (task-driven visual search among digits) and of its
saliency-guided baseline: what a user relies on beyond the generic contract
(tests/test_env_contract.py), with expected values worked out by hand."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from cogrl.envs import make_core
from cogrl.envs.attention.glimpse import TranslatedDigits
from cogrl.envs.attention.search import VisualSearch, saliency_search

ENV = "cogrl/VisualSearch-v0"
MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
COST = 0.01


def centres(core: VisualSearch) -> torch.Tensor:
    """The centre of every digit's box, (N, k + 1, 2) locations; the target's is 0."""
    boxes = core.boxes
    return (boxes[..., :2] + boxes[..., 2:]) / 2


def look(at: torch.Tensor) -> torch.Tensor:
    """Continuous actions (N, 3) that saccade to ``at`` (N, 2)."""
    return torch.cat([at, -torch.ones(at.shape[0], 1)], 1)


def declare(at: torch.Tensor) -> torch.Tensor:
    """Continuous actions (N, 3) that declare "found" at ``at`` (N, 2)."""
    return torch.cat([at, torch.ones(at.shape[0], 1)], 1)


def centre_on_target(core: VisualSearch) -> torch.Tensor:
    """Whether the first fixation, the canvas centre, lies in the target's box, by hand:
    the centre pixel C/2 against the box's pixels [corner, corner + 28)."""
    half = core.canvas_size / 2
    corner = core.corners[:, 0]
    return ((corner <= half) & (half < corner + 28)).all(1)


def inside(locations: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Whether locations (N, L, 2) lie in boxes (N, B, 4): (N, L, B) bool."""
    at = locations[:, :, None]
    return ((at >= boxes[:, None, :, :2]) & (at < boxes[:, None, :, 2:])).all(-1)


def check_canvases(core: VisualSearch) -> None:
    """Each canvas holds exactly its digits' images in their boxes, and nothing else; the
    target is of the target class and the distractors of other classes."""
    labels = core.labels[core.digits]
    assert torch.equal(labels[:, 0], core.target)
    assert bool((labels[:, 1:] != core.target[:, None]).all())
    blank = core.canvas.clone()
    for i in range(core.num_envs):
        for d in range(core.n_digits):
            r, c = core.corners[i, d].tolist()
            assert 0 <= r <= core.canvas_size - 28 and 0 <= c <= core.canvas_size - 28
            patch = core.canvas[i, r : r + 28, c : c + 28]
            assert torch.equal(patch, core.images[core.digits[i, d]]), (i, d)
            blank[i, r : r + 28, c : c + 28] = 0.0
    assert float(blank.abs().sum()) == 0.0  # nothing outside the boxes


# --- episodes -----------------------------------------------------------------------------------


def test_digits_lie_apart_in_their_boxes_with_the_right_classes() -> None:
    core = make_core(ENV, num_envs=200)
    obs, _ = core.reset(seed=3)
    n, k1 = 200, core.n_digits
    assert k1 == 4 and core.canvas_size == 100
    # Boxes pairwise disjoint: two 28 x 28 boxes overlap when both their rows and their
    # columns are less than 28 apart.
    gap = (core.corners[:, :, None] - core.corners[:, None]).abs()  # (N, k+1, k+1, 2)
    overlap = (gap < 28).all(-1) & ~torch.eye(k1, dtype=torch.bool)
    assert not bool(overlap.any())
    check_canvases(core)
    # The cue is the target's one-hot; every class is a target somewhere; the digits'
    # places vary (9 cells, offsets 0..5 inside each cell of 33 pixels).
    expected = torch.zeros(n, 10)
    expected[torch.arange(n), core.target] = 1.0
    assert torch.equal(obs["target"], expected)
    assert set(core.target.tolist()) == set(range(10))
    assert len({tuple(c) for c in core.corners[:, 0].tolist()}) > 50
    assert set((core.corners // 33).flatten().tolist()) == {0, 1, 2}
    assert set((core.corners % 33).flatten().tolist()) == set(range(6))
    # The first fixation is at the centre.
    assert torch.equal(obs["location"], torch.zeros(n, 2))
    # A target box is where on_target says, in location units: pixel p is x = p / 50 - 1.
    box = core.target_box
    assert torch.allclose(box[:, 0], core.corners[:, 0, 1] / 50 - 1)
    assert torch.allclose(box[:, 3], (core.corners[:, 0, 0] + 28) / 50 - 1)


def test_next_episodes_redraw_everything_and_stay_valid() -> None:
    core = make_core(ENV, num_envs=8, canvas_size=60, n_distractors=3)
    core.reset(seed=0)
    first = (core.digits.clone(), core.corners.clone())
    core.reset()
    assert not torch.equal(core.digits, first[0]) and not torch.equal(core.corners, first[1])
    check_canvases(core)


def test_finding_the_target_after_two_saccades() -> None:
    core = make_core(ENV, num_envs=16, autoreset=False)
    core.reset(seed=1)
    at = centres(core)
    steps = [look(at[:, 1]), look(at[:, 0]), declare(at[:, 0])]
    rewards = []
    for i, action in enumerate(steps):
        obs, reward, terminated, truncated, info = core.step(action)
        rewards.append(reward)
        assert torch.allclose(obs["location"], action[:, :2])  # the gaze went there
        if i < 2:
            assert not bool(terminated.any() | truncated.any())
            assert not bool(info["_found"].any())
    assert torch.equal(terminated, torch.ones(16, dtype=torch.bool))
    assert not bool(truncated.any())
    assert torch.allclose(torch.stack(rewards, 1), torch.tensor([-COST, -COST, 1.0]).expand(16, 3))
    assert float(info["episode"]["r"][0]) == pytest.approx(1 - 2 * COST)
    assert bool(info["found"].all()) and bool(info["_found"].all())
    assert torch.equal(info["saccades"], torch.full((16,), 2))
    # Reached at the start where the centre is on the target, else by saccade 2.
    assert torch.equal(info["saccades_to_target"], torch.where(centre_on_target(core), 0, 2))
    assert torch.equal(info["target"], core.target)


def test_declaring_off_the_target_gets_nothing() -> None:
    core = make_core(ENV, num_envs=16, n_glimpses=6, autoreset=False)
    core.reset(seed=2)
    _, reward, terminated, truncated, info = core.step(declare(centres(core)[:, 2]))
    assert torch.equal(reward, torch.zeros(16))
    assert bool(terminated.all()) and not bool(truncated.any())
    assert not bool(info["found"].any())
    assert torch.equal(info["saccades"], torch.zeros(16, dtype=torch.int64))
    # Never on the target, unless the first fixation was: then 0; never is n_glimpses + 1.
    never = torch.full((16,), 7)
    assert torch.equal(info["saccades_to_target"], torch.where(centre_on_target(core), 0, never))


def test_declaring_on_a_target_never_fixated_counts_no_saccade() -> None:
    """Spotted in the periphery: the declaration itself brings the gaze to the target,
    after the saccades made so far (here 1, to a distractor)."""
    core = make_core(ENV, num_envs=16, autoreset=False)
    core.reset(seed=4)
    at = centres(core)
    core.step(look(at[:, 3]))
    _, reward, _, _, info = core.step(declare(at[:, 0]))
    assert torch.equal(reward, torch.ones(16))
    assert torch.equal(info["saccades"], torch.ones(16, dtype=torch.int64))
    assert torch.equal(info["saccades_to_target"], torch.where(centre_on_target(core), 0, 1))


def test_saccades_to_target_counts_to_the_first_fixation_on_it() -> None:
    core = make_core(ENV, num_envs=16, autoreset=False)
    core.reset(seed=5)
    at = centres(core)
    # Distractor 1, distractor 2, the target (saccade 3), distractor 3, the target again,
    # then a declaration on distractor 1.
    for d in (1, 2, 0, 3, 0):
        _, reward, terminated, truncated, info = core.step(look(at[:, d]))
        assert torch.allclose(reward, torch.full((16,), -COST))
        assert not bool(terminated.any() | truncated.any())
    _, reward, terminated, _, info = core.step(declare(at[:, 1]))
    assert torch.equal(reward, torch.zeros(16)) and bool(terminated.all())
    assert torch.equal(info["saccades"], torch.full((16,), 5))
    assert torch.equal(info["saccades_to_target"], torch.where(centre_on_target(core), 0, 3))
    assert not bool(info["found"].any())


def test_an_episode_without_a_declaration_is_truncated_at_n_glimpses() -> None:
    core = make_core(ENV, num_envs=4, n_glimpses=3, saccade_cost=0.25)
    core.reset(seed=6)
    at, targets, centre_on = centres(core), core.target.clone(), centre_on_target(core)
    for step in range(3):
        obs, reward, terminated, truncated, info = core.step(look(at[:, 1 + step]))
        assert torch.equal(reward, torch.full((4,), -0.25))
        assert not bool(terminated.any())
        assert bool(truncated.all()) == (step == 2) and bool(truncated.any()) == (step == 2)
        assert torch.equal(info["_saccades"], truncated)
    assert torch.equal(info["saccades"], torch.full((4,), 3))
    assert not bool(info["found"].any())
    # The target was never looked at (distractors 1-3 only, and the centre where it is not).
    assert torch.equal(info["saccades_to_target"], torch.where(centre_on, 0, 4))
    assert torch.equal(info["target"], targets)
    assert torch.allclose(info["episode"]["r"], torch.full((4,), -0.75))
    # Autoreset: the returned observation is the next episode's first (at the centre).
    assert torch.equal(obs["location"], torch.zeros(4, 2))
    assert torch.allclose(info["final_obs"]["location"], at[:, 3])


def test_saccades_cost_nothing_with_a_zero_cost() -> None:
    core = make_core(ENV, num_envs=3, saccade_cost=0.0)
    core.reset(seed=0)
    _, reward, *_ = core.step(look(torch.zeros(3, 2)))
    assert torch.equal(reward, torch.zeros(3))


def test_discrete_actions_look_at_and_declare_on_cells() -> None:
    g = 5
    core = make_core(ENV, num_envs=32, action_mode="discrete", autoreset=False)
    assert core.single_action_space == gym.spaces.Discrete(2 * g * g)
    core.reset(seed=7)
    # Cell a's centre: column a % 5 and row a // 5 of a 5 x 5 grid, at ((j + 0.5) / 5) * 2 - 1.
    for a in (0, 7, 24):
        obs, reward, *_ = core.step(torch.full((32,), a))
        expected = torch.tensor([(a % g + 0.5) / g * 2 - 1, (a // g + 0.5) / g * 2 - 1])
        assert torch.allclose(obs["location"], expected.expand(32, 2))
        assert torch.allclose(reward, torch.full((32,), -COST))
    # Declaring on the first cell whose centre lies in the target's box finds it (the
    # cell centres are 20 pixels apart, so every 28-pixel box holds one).
    cells = core.cell_locations
    box = core.target_box
    inside = (cells[None] >= box[:, None, :2]) & (cells[None] < box[:, None, 2:])
    cell = inside.all(-1).float().argmax(1)
    assert bool(inside.all(-1).any(1).all())
    obs, reward, terminated, _, info = core.step(g * g + cell)
    assert torch.equal(reward, torch.ones(32)) and bool(terminated.all())
    assert bool(info["found"].all())
    assert torch.equal(info["saccades"], torch.full((32,), 3))
    assert torch.allclose(obs["location"], cells[cell])


def test_render_shows_the_target_box() -> None:
    env = gym.make(ENV, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    core = env.unwrapped.core
    assert frame.shape == (200, 200, 3)  # the 100-pixel canvas at twice its size
    r, c = (core.corners[0, 0] * 2).tolist()
    magenta = np.array([255, 0, 255], np.uint8)
    assert (frame[r + 10, c : c + 2] == magenta).all()  # the box's left edge
    assert (frame[r + 54 : r + 56, c + 10] == magenta).all()  # its bottom edge
    assert not (frame[:2] == 255).all(-1).any()  # no step used yet
    env.step(np.array([0.5, 0.5, -1.0], np.float32))  # a saccade
    assert (env.render()[:2, :20] == 255).all()  # a tenth of the steps bar


# --- what the parent's recognition API becomes ---------------------------------------------------


def test_no_class_answers_and_no_label() -> None:
    core = make_core(ENV, num_envs=2)
    assert "label_key" not in core.metadata and core.n_answers == 0
    assert core.metadata["episode_metrics"] == {
        "accuracy": "found",
        "saccades": "saccades",
        "saccades_to_target": "saccades_to_target",
    }
    assert core.metadata["splits"] == ("train", "test")
    with pytest.raises(ValueError, match="location"):
        core.answer(torch.tensor([1, 2]))
    assert not hasattr(core, "label")
    core.reset(seed=0)
    assert torch.equal(core.canvas_images(), core.canvas)
    assert core.canvas_images().data_ptr() != core.canvas.data_ptr()


def test_context_is_the_canvas_averaged() -> None:
    core = make_core(ENV, num_envs=2, context_size=10)
    obs, _ = core.reset(seed=0)
    expected = core.canvas.view(2, 10, 10, 10, 10).mean((2, 4)).flatten(1)
    assert torch.allclose(obs["context"], expected, atol=1e-6)


# --- bad arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"canvas_size": 27}, "canvas_size must be an int >= 28, got 27"),
        ({"canvas_size": 60.0}, "canvas_size must be an int >= 28, got 60.0"),
        ({"n_distractors": -1}, "n_distractors must be an int >= 0, got -1"),
        ({"n_distractors": True}, "n_distractors must be an int >= 0, got True"),
        ({"saccade_cost": -0.1}, r"saccade_cost must be a finite number in \[0.0, inf\]"),
        ({"saccade_cost": float("nan")}, "saccade_cost must be a finite number"),
        (
            {"canvas_size": 60, "n_distractors": 4},
            r"n_distractors=4 needs 5 digits apart .* canvas_size=60 holds 4 .* \(to 84\)",
        ),
        ({"n_distractors": 9}, r"n_distractors=9 needs 10 .* holds 9 .* \(to 112\)"),
        ({"action_mode": "grid"}, "action_mode must be one of"),
        ({"n_glimpses": 0}, "n_glimpses must be a positive int, got 0"),
        ({"context_size": 101}, r"context_size must lie in \[0, 100\]"),
        ({"split": "val"}, "split must be one of"),
    ],
)
def test_bad_arguments_are_clear_value_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_core(ENV, num_envs=1, **kwargs)


def test_the_largest_layout_fits() -> None:
    core = make_core(ENV, num_envs=2, canvas_size=84, n_distractors=8)
    core.reset(seed=0)
    check_canvases(core)
    assert sorted(core.corners[0].div(28, rounding_mode="floor").tolist()) == [
        [r, c] for r in range(3) for c in range(3)
    ]


@pytest.mark.skipif(not MNIST.is_dir(), reason="no MNIST folder at ../shared/data/mnist")
def test_mnist_digits() -> None:
    core = make_core(ENV, num_envs=32, dataset="mnist", root=str(MNIST), split="test")
    assert core.n_images == 10_000
    core.reset(seed=0)
    check_canvases(core)


# --- the saliency-guided baseline -------------------------------------------------------------


def run_episode(core: VisualSearch, policy) -> list[tuple]:
    """Steps of one episode of every environment (they all end together here)."""
    steps = []
    while True:
        action = policy()
        steps.append((action, *core.step(action)))
        if bool((steps[-1][3] | steps[-1][4]).all()):
            return steps
        assert len(steps) <= core.n_glimpses


def test_saliency_search_finds_a_lone_target() -> None:
    """With no distractor the most salient location is on the target: every episode finds
    it after one saccade there (or none, where the first fixation is already on it)."""
    core = make_core(ENV, num_envs=8, canvas_size=60, n_distractors=0, n_glimpses=5)
    core.reset(seed=0)
    policy = saliency_search(core)
    assert policy.n_fixations == 1
    steps = run_episode(core, policy)
    assert len(steps) == 2
    info = steps[-1][-1]
    assert bool(info["found"].all())
    assert torch.equal(info["saccades"], torch.ones(8, dtype=torch.int64))
    assert torch.allclose(info["episode"]["r"], torch.full((8,), 1 - COST))


@pytest.mark.parametrize("mode", ["continuous", "discrete"])
def test_saliency_search_visits_the_digits_in_salience_order(mode: str) -> None:
    core = make_core(
        ENV, num_envs=8, canvas_size=60, n_distractors=2, n_glimpses=5, action_mode=mode
    )
    core.reset(seed=1)
    policy = saliency_search(core, "itti_koch")
    policy()
    winners = policy.winners.clone()
    assert winners.shape == (8, 3, 2)  # one per digit
    # Inhibition of a digit's width: the 3 winners lie on the 3 digits, one each.
    on = inside(winners, core.boxes)
    assert torch.equal(on.sum(2), torch.ones(8, 3, dtype=torch.int64))
    assert torch.equal(on.any(1), torch.ones(8, 3, dtype=torch.bool))
    boxes, centre_on = core.boxes, centre_on_target(core)
    path = []
    for _, obs, _, terminated, _, info in run_episode(core, policy):
        path.append(info["final_obs"]["location"] if terminated.any() else obs["location"])
    assert len(path) == 4  # 3 saccades, then the declaration
    assert torch.equal(info["saccades"], torch.full((8,), 3))
    if mode == "continuous":
        expected = torch.cat([winners, winners[:, :1]], 1)
    else:  # each winner's nearest cell centre
        cells = core.cell_locations
        nearest = torch.cdist(winners.flatten(0, 1), cells).argmin(1).view(8, 3)
        expected = cells[torch.cat([nearest, nearest[:, :1]], 1)]
    assert torch.allclose(torch.stack(path, 1), expected)
    # Declared at the most salient location (or its cell): found where that is on the target.
    on_path = inside(expected, boxes)[:, :, 0]
    assert torch.equal(info["found"], on_path[:, 3])
    # saccades_to_target: the first saccade that landed on the target, 0 if the centre was.
    first = torch.where(on_path[:, :3].any(1), on_path[:, :3].float().argmax(1) + 1, 6)
    assert torch.equal(info["saccades_to_target"], torch.where(centre_on, 0, first))
    # The next episodes (autoreset) get plans of their own.
    policy()
    assert not torch.equal(policy.winners, winners)


def test_saliency_search_declares_at_once_with_no_fixations() -> None:
    core = make_core(ENV, num_envs=4, canvas_size=60, n_distractors=1, n_glimpses=3)
    core.reset(seed=2)
    policy = saliency_search(core, "spectral_residual", n_fixations=0)
    action = policy()
    assert bool((action[:, 2] > 0).all())
    _, _, terminated, _, info = core.step(action)
    assert bool(terminated.all()) and torch.equal(
        info["saccades"], torch.zeros(4, dtype=torch.int64)
    )


def test_saliency_search_bad_arguments() -> None:
    core = make_core(ENV, num_envs=1, canvas_size=60, n_distractors=1, n_glimpses=3)
    with pytest.raises(ValueError, match="needs a VisualSearch core, got TranslatedDigits"):
        saliency_search(TranslatedDigits(1))
    with pytest.raises(ValueError, match="saliency must be one of"):
        saliency_search(core, "deepgaze")
    with pytest.raises(ValueError, match=r"n_fixations must lie in \[0, 2\] .* got 3"):
        saliency_search(core, n_fixations=3)
    with pytest.raises(ValueError, match="radius must be a finite number"):
        saliency_search(core, radius=0.0)
