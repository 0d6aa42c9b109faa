"""The scanpath task: foveation, the information gained at a fixation with inhibition of
return and forgetting, the human-data reward, and its image sources (the generic contract
is in tests/test_env_contract.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from PIL import Image

from cogrl.datasets import image_split, load_fixations
from cogrl.envs import make_core

OSIE = Path(__file__).resolve().parents[2] / "shared" / "data" / "osie"
needs_osie = pytest.mark.skipif(not OSIE.is_dir(), reason="../shared/data/osie is not here")
SMALL = {"image_size": (12, 16), "saliency": "center_bias", "n_fixations": 3}


def one_hot_map(core, row: int, col: int) -> None:
    """All of every image's information at one working pixel."""
    core.maps = torch.zeros_like(core.maps)
    core.maps[:, row, col] = 1.0


def centre_of(core, row: int, col: int) -> torch.Tensor:
    h, w = core.image_size
    return torch.tensor([[(col + 0.5) / w * 2 - 1, (row + 0.5) / h * 2 - 1]])


def test_gain_is_the_information_not_yet_in_memory() -> None:
    """A fixation on the one informative pixel gains 1 - forgetting * M(x), M the memory of
    the start at the centre; fixating it again gains only what faded; with forgetting 0 the
    memory is gone and it gains everything again."""
    core = make_core("cogrl/Scanpath-v0", forgetting=0.9, fovea=0.1, **SMALL)
    one_hot_map(core, 2, 3)
    core.reset(seed=0)
    h, w = core.image_size
    # Distance of pixel (2, 3) from the centre, in working pixels; sigma = 0.1 * 16.
    dx, dy = (3 + 0.5) - w / 2, (2 + 0.5) - h / 2
    start = math.exp(-(dx * dx + dy * dy) / (2 * 1.6**2))
    target = centre_of(core, 2, 3)
    _, reward, *_ = core.step(target)
    assert reward.item() == pytest.approx(1 - 0.9 * start, abs=1e-6)
    _, reward, *_ = core.step(target)
    assert reward.item() == pytest.approx(1 - 0.9, abs=1e-6)  # inhibition of return

    forgetful = make_core("cogrl/Scanpath-v0", forgetting=0.0, fovea=0.1, **SMALL)
    one_hot_map(forgetful, 2, 3)
    forgetful.reset(seed=0)
    rewards = [forgetful.step(target)[1].item() for _ in range(2)]
    assert rewards == pytest.approx([1.0, 1.0])


def test_fixations_far_from_the_information_gain_little() -> None:
    core = make_core("cogrl/Scanpath-v0", **SMALL)
    one_hot_map(core, 0, 0)
    core.reset(seed=0)
    near = core.step(centre_of(core, 0, 0))[1].item()
    core.reset(seed=0)
    far = core.step(centre_of(core, 11, 15))[1].item()
    assert near > 0.9 and far < 1e-6


def test_observation_is_sharp_at_the_fixation_and_blurred_away_from_it() -> None:
    core = make_core("cogrl/Scanpath-v0", **SMALL)
    core.reset(seed=0)
    obs, *_ = core.step(centre_of(core, 1, 2))
    # (L, 3, H, W): level 0 sharp, the last the most blurred.
    stack = core.stack[core.image[0]].transpose(1, 2).reshape(5, 3, 12, 16)
    assert obs["image"].dtype == torch.uint8
    seen = obs["image"][0, :3] / 255.0
    stack = (stack * 255).round() / 255.0
    torch.testing.assert_close(seen[:, 1, 2], stack[0, :, 1, 2])
    # Far away the view is the most blurred level: log2(1 + e / fovea_px) >= L - 1 = 4 where
    # e >= 15 * 0.64 pixels; pixel (11, 15) is 16.4 away.
    torch.testing.assert_close(seen[:, 11, 15], stack[-1, :, 11, 15])
    assert not torch.allclose(stack[0, :, 11, 15], stack[-1, :, 11, 15])
    # The fourth channel is the working memory, 1 at the fixation just made.
    torch.testing.assert_close(obs["image"][0, 3], (core.memory[0] * 255).round().byte())
    assert obs["image"][0, 3, 1, 2].item() == 255
    torch.testing.assert_close(obs["fixation"], centre_of(core, 1, 2))


def test_episode_end_reports_the_scanpath_and_coverage() -> None:
    core = make_core("cogrl/Scanpath-v0", num_envs=2, **SMALL)
    core.reset(seed=3)
    actions = torch.tensor(
        [[[-0.5, -0.5], [0.5, 0.5]], [[0.0, 0.5], [0.5, 0.0]], [[1.0, 1.0], [-1.0, -1.0]]]
    )
    for t in range(3):
        memory_before = core.memory.clone()
        images = core.image.clone()
        _, reward, terminated, truncated, info = core.step(actions[t])
    assert terminated.all() and not truncated.any()
    torch.testing.assert_close(info["scanpath"], actions.transpose(0, 1))
    torch.testing.assert_close(info["image"], images)
    # Coverage: the map held in the last memory (the step's, before autoreset).
    fixation = actions[2]
    last = torch.maximum(memory_before * 0.9, core.acuity(fixation))
    expected = (core.maps[images] * last).sum((1, 2))
    torch.testing.assert_close(info["coverage"], expected)


def test_discrete_actions_fixate_cell_centres() -> None:
    core = make_core("cogrl/Scanpath-v0", action_mode="discrete", grid_size=(2, 4), **SMALL)
    core.reset(seed=0)
    obs, *_ = core.step(torch.tensor([6]))  # row 1, column 2
    torch.testing.assert_close(obs["fixation"], torch.tensor([[0.25, 0.5]]))


def test_pixels_map_locations_to_the_original_image() -> None:
    core = make_core("cogrl/Scanpath-v0", **SMALL)
    width, height = core.sizes[0]
    corners = core.pixels(np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]), 0)
    np.testing.assert_allclose(corners, [[0, 0], [width, height], [width / 2, height / 2]])


def test_render_draws_the_scanpath() -> None:
    core = make_core("cogrl/Scanpath-v0", render_mode="rgb_array", **SMALL)
    core.reset(seed=0)
    before = core.render()
    core.step(torch.tensor([[0.5, 0.5]]))
    frame = core.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert (frame != before).any()
    h, w, _ = frame.shape
    # The current fixation is ringed in red at (0.5, 0.5) -> 3/4 of the width and height.
    y, x = int(0.75 * h), int(0.75 * w)
    ring = frame[y - 12 : y + 13, x - 12 : x + 13].reshape(-1, 3)
    assert ((ring[:, 0] == 255) & (ring[:, 1] == 0) & (ring[:, 2] == 0)).any()


def test_information_maps_come_from_the_saliency_model() -> None:
    from cogrl.saliency import MODELS

    core = make_core("cogrl/Scanpath-v0", image_size=(12, 16), saliency="center_bias")
    maps = core.maps
    assert maps.shape == (core.n_images, 12, 16)
    torch.testing.assert_close(maps.sum((1, 2)), torch.ones(core.n_images))
    assert "center_bias" in MODELS
    # The centre-bias map peaks at the centre.
    torch.testing.assert_close(maps[0, 5:7, 7:9].min(), maps[0].max())


def test_image_folder_source_and_its_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = [f"picture{i}.png" for i in range(12)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    for split in ("train", "test"):
        expected = tuple(n for n in sorted(names) if image_split(n) == split)
        if not expected:
            continue
        core = make_core("cogrl/Scanpath-v0", images=str(tmp_path), split=split, **SMALL)
        assert core.names == expected
        assert core.sizes.tolist() == [[40, 30]] * len(expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reward": "human"}, "human_data"),
        ({"reward": "surprise"}, "reward must be one of"),
        ({"saliency": "deep"}, "saliency must be one of"),
        ({"split": "val"}, "split must be one of"),
        ({"image_size": (4, 64)}, "image_size must be two ints >= 8"),
        ({"grid_size": 6}, "grid_size must be two ints"),
        ({"forgetting": 1.5}, "forgetting"),
        ({"fovea": 0.0}, "fovea"),
        ({"n_fixations": 0}, "n_fixations"),
        ({"action_mode": "grid"}, "action_mode must be one of"),
        ({"images": "/no/such/folder"}, "/no/such/folder"),
        ({"images": "x", "human_data": "y"}, "not both"),
        # found by tests/test_fuzz.py: unhashable choices and paths of the wrong type
        ({"saliency": {"a": 1}}, r"saliency must be one of .*got \{'a': 1\}"),
        ({"split": ["train"]}, "split must be one of"),
        ({"images": 3}, "images must be a path"),
        ({"human_data": {"a": 1}}, "human_data must be a path"),
        # a blur wider than the image: n_levels=12 asked for 3.7 GB before
        ({"n_levels": 12, "image_size": (48, 64)}, r"n_levels must be at most 8 .* got 12"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_core("cogrl/Scanpath-v0", **{**SMALL, **kwargs})


def test_empty_image_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no 'train' image"):
        make_core("cogrl/Scanpath-v0", images=str(tmp_path), **SMALL)


def write_human_folder(root: Path, records: list[dict]) -> Path:
    (root / "stimuli").mkdir(parents=True)
    for record in records:
        picture = np.zeros((record["height"], record["width"], 3), np.uint8)
        Image.fromarray(picture).save(root / "stimuli" / record["image"])
    (root / "fixations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def test_human_reward_is_the_human_fixation_density(tmp_path: Path) -> None:
    """Every observer looked at the top-left quarter: a fixation there gains much, one at
    the far corner nothing."""
    names = [n for n in (f"im{i}.png" for i in range(40)) if image_split(n) == "train"][:2]
    records = [
        {"image": n, "width": 160, "height": 120, "subjects": [[[45, 35, 200]], [[46, 34, 180]]]}
        for n in names
    ]
    root = write_human_folder(tmp_path / "human", records)
    core = make_core("cogrl/Scanpath-v0", human_data=str(root), reward="human", **SMALL)
    assert core.names == tuple(names)
    # The density's peak is at (45, 35) of 160 x 120: working pixel (3, 4) of 12 x 16.
    peak = torch.nonzero(core.maps[0] == core.maps[0].max())[0].tolist()
    assert peak == [3, 4]
    core.reset(seed=0)
    near = core.step(torch.tensor([[-0.5, -0.5]]))[1].item()
    core.reset(seed=0)
    far = core.step(torch.tensor([[1.0, 1.0]]))[1].item()
    assert near > 0.3 and far < 1e-3


@needs_osie
def test_osie_images_and_human_maps() -> None:
    data = load_fixations(OSIE, "test")
    core = make_core(
        "cogrl/Scanpath-v0", human_data=str(OSIE), split="test", reward="human", **SMALL
    )
    assert core.names == data.names and len(core.names) == 40
    torch.testing.assert_close(core.maps.sum((1, 2)), torch.ones(40))
    env = gym.make("cogrl/Scanpath-v0", human_data=str(OSIE), split="test", reward="human", **SMALL)
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (4, 12, 16)


def test_greedy_fixation_takes_the_largest_gain() -> None:
    """Wang et al.'s model: with two informative pixels it fixates the richer one first,
    then, its memory fresh there, the other."""
    core = make_core("cogrl/Scanpath-v0", fovea=0.05, **SMALL)
    core.maps = torch.zeros_like(core.maps)
    core.maps[:, 1, 1], core.maps[:, 10, 14] = 0.3, 0.7
    core.reset(seed=0)
    first = core.greedy_fixation()
    torch.testing.assert_close(first, centre_of(core, 10, 14))
    core.step(first)
    torch.testing.assert_close(core.greedy_fixation(), centre_of(core, 1, 1))


def test_reset_option_chooses_the_images() -> None:
    core = make_core("cogrl/Scanpath-v0", num_envs=3, **SMALL)
    core.reset(seed=0, options={"image": [2, 0, 2]})
    assert core.image.tolist() == [2, 0, 2]
    with pytest.raises(ValueError, match=r"options\['image'\] must be 3 ints in \[0, 8\)"):
        core.reset(options={"image": [0, 1, 8]})
    with pytest.raises(ValueError, match="options"):
        core.reset(options={"image": [0, 1]})


def test_search_finds_the_target_and_pays_for_other_saccades() -> None:
    core = make_core("cogrl/Scanpath-v0", reward="search", num_envs=3, saccade_cost=0.05, **SMALL)
    assert core.metadata["episode_metrics"] == {"accuracy": "found", "saccades": "saccades"}
    obs, _ = core.reset(seed=1)
    target = core.target.clone()
    # The target is a red disc in the view: redder than the image where it lies, once
    # fixated (sharp there).
    obs, reward, terminated, truncated, info = core.step(-target)  # away from it
    assert reward.tolist() == pytest.approx([-0.05] * 3) and not terminated.any()
    obs, reward, terminated, truncated, info = core.step(target)
    assert reward.tolist() == [1.0] * 3 and terminated.all() and not truncated.any()
    assert info["found"].all() and info["saccades"].tolist() == [2, 2, 2]


def test_search_target_shows_where_it_lies() -> None:
    core = make_core(
        "cogrl/Scanpath-v0", reward="search", target_size=0.1, autoreset=False, **SMALL
    )
    core.reset(seed=0)
    obs, *_ = core.step(core.target.clone())  # found: the episode's last view
    h, w = core.image_size
    x, y = ((core.target[0] + 1) / 2 * torch.tensor([w, h])).long().tolist()
    red, green = obs["image"][0, 0, y, x].item(), obs["image"][0, 1, y, x].item()
    assert red >= 200 and green <= 20  # nearly sharp red: the fixation is within a pixel
    frame = core.render()
    assert frame.dtype == np.uint8


def test_search_is_truncated_when_the_target_is_not_found() -> None:
    core = make_core("cogrl/Scanpath-v0", reward="search", **{**SMALL, "n_fixations": 2})
    core.reset(seed=0)
    away = -core.target.clone()
    core.step(away)
    _, reward, terminated, truncated, info = core.step(away)
    assert truncated.all() and not terminated.any() and not info["found"].any()
    assert info["saccades"].tolist() == [2]  # all of them
