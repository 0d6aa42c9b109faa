"""Scanpath models scored against human eye movements (cogrl.scanpaths), on a small
human-data folder written here: observers who all look at one bright blob."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cogrl.agents
from cogrl import scanpaths
from cogrl.datasets import image_split, load_fixations

WIDTH, HEIGHT = 200, 150  # Itti-Koch needs 128 x 128 or more
BLOB = (40.0, 30.0)  # every observer's fixations gather here


@pytest.fixture(scope="module")
def human(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("human")
    (root / "stimuli").mkdir()
    rng = np.random.default_rng(0)
    names = [n for n in (f"im{i}.png" for i in range(60)) if image_split(n) == "test"][:3]
    records = []
    ys, xs = np.mgrid[:HEIGHT, :WIDTH]
    for name in names:
        picture = rng.uniform(0, 0.3, (HEIGHT, WIDTH, 3))
        picture[(xs - BLOB[0]) ** 2 + (ys - BLOB[1]) ** 2 < 100] = 1.0
        Image.fromarray((picture * 255).astype(np.uint8)).save(root / "stimuli" / name)
        subjects = [
            [[BLOB[0] + dx, BLOB[1] + dy, 200 + 10 * s] for dx, dy in rng.normal(0, 4, (4, 2))]
            for s in range(4)
        ]
        records.append({"image": name, "width": WIDTH, "height": HEIGHT, "subjects": subjects})
    (root / "fixations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return load_fixations(root, "test")


def test_winner_take_all_visits_peaks_in_order_with_inhibition() -> None:
    maps = torch.zeros(1, 12, 12)
    maps[0, 2, 3], maps[0, 9, 9], maps[0, 2, 4] = 1.0, 0.5, 0.9
    path = scanpaths.winner_take_all(maps, 3, radius=1 / 6)  # inhibits within 2 pixels
    centre = lambda r, c: [(c + 0.5) / 12 * 2 - 1, (r + 0.5) / 12 * 2 - 1]  # noqa: E731
    # (2, 4) lies within the disc around (2, 3): the second fixation is (9, 9).
    torch.testing.assert_close(path[0, :2], torch.tensor([centre(2, 3), centre(9, 9)]))
    far = path[0, 2]
    for r, c in ((2, 3), (9, 9)):
        assert ((far - torch.tensor(centre(r, c))) * 6).norm() > 2


@pytest.mark.parametrize("name", scanpaths.BASELINES)
def test_every_baseline_makes_scanpaths_on_the_images(human, name: str) -> None:
    paths = scanpaths.baseline_scanpaths(name, human, n_fixations=5, samples=2)
    assert len(paths) == len(human)
    for i, per_image in enumerate(paths):
        assert len(per_image) == 2
        median = np.median(np.concatenate([s[:, 2] for s in human.scanpaths[i]]))
        for path in per_image:
            assert path.shape == (5, 3)
            assert (path[:, 0] >= 0).all() and (path[:, 0] < WIDTH).all()
            assert (path[:, 1] >= 0).all() and (path[:, 1] < HEIGHT).all()
            np.testing.assert_array_equal(path[:, 2], median)


def test_saliency_baselines_find_the_blob(human) -> None:
    """The blob is the image's one salient thing: Itti-Koch's first fixation lands on it."""
    first = scanpaths.baseline_scanpaths("wta:itti_koch", human, n_fixations=1)
    for per_image in first:
        assert np.linalg.norm(per_image[0][0, :2] - BLOB) < 12


def test_scores_rank_a_human_like_model_above_random(human) -> None:
    like = [[s] for s in (paths[0] for paths in human.scanpaths)]
    random = scanpaths.baseline_scanpaths("random", human, n_fixations=4)
    good = scanpaths.score_scanpaths(like, human)
    bad = scanpaths.score_scanpaths(random, human)
    assert set(good) == set(scanpaths.SCORES) and all(np.isfinite(list(good.values())))
    for key in ("auc_judd", "nss", "cc", "multimatch_position", "scanmatch"):
        assert good[key] > bad[key], key
    assert good["human_consistency_kl"] < bad["human_consistency_kl"]


def test_scores_use_the_model_map_where_given(human) -> None:
    paths = scanpaths.baseline_scanpaths("random", human, n_fixations=4)
    ys, xs = np.mgrid[:HEIGHT, :WIDTH]
    on_blob = np.exp(-((xs - BLOB[0]) ** 2 + (ys - BLOB[1]) ** 2) / (2 * 8.0**2))
    with_map = scanpaths.score_scanpaths(paths, human, [on_blob] * len(human))
    without = scanpaths.score_scanpaths(paths, human)
    assert with_map["nss"] > without["nss"] and with_map["auc_judd"] > 0.9
    assert with_map["multimatch"] == without["multimatch"]  # the scanpaths are the same


def test_saliency_maps_are_densities_at_the_image_size(human) -> None:
    maps = scanpaths.saliency_maps("spectral_residual", human)
    assert [m.shape for m in maps] == [(HEIGHT, WIDTH)] * len(human)
    for m in maps:
        assert m.min() >= 0 and m.sum() == pytest.approx(1.0)


def test_human_ceiling_scores_observers_against_the_others(human) -> None:
    ceiling = scanpaths.human_ceiling(human)
    random = scanpaths.score_scanpaths(
        scanpaths.baseline_scanpaths("random", human, n_fixations=4), human
    )
    assert set(ceiling) == set(scanpaths.SCORES)
    assert ceiling["nss"] > random["nss"] and ceiling["auc_judd"] > random["auc_judd"]


def test_agent_scanpaths_run_the_agent_on_every_image(human) -> None:
    agent = cogrl.agents.make(
        "ppo",
        "cogrl/Scanpath-v0",
        seed=0,
        num_envs=2,
        n_steps=4,
        batch_size=8,
        env_kwargs={"saliency": "center_bias", "n_fixations": 3, "image_size": (36, 48)},
    )
    paths = scanpaths.agent_scanpaths(agent, human, samples=2, deterministic=False)
    assert [len(p) for p in paths] == [2] * len(human)
    assert all(p.shape == (3, 3) for per_image in paths for p in per_image)
    # Deterministic: the same scanpath every time for the same image.
    once = scanpaths.agent_scanpaths(agent, human)
    again = scanpaths.agent_scanpaths(agent, human)
    for a, b in zip(once, again, strict=True):
        np.testing.assert_array_equal(a[0], b[0])


def test_bad_requests_are_named(human) -> None:
    with pytest.raises(ValueError, match="baseline must be one of"):
        scanpaths.baseline_scanpaths("deepgaze", human)
    with pytest.raises(ValueError, match="one list of scanpaths"):
        scanpaths.score_scanpaths([], human)
    agent = cogrl.agents.make("ppo", "CartPole-v1", seed=0, num_envs=2, n_steps=4, batch_size=8)
    with pytest.raises(ValueError, match="scanpaths come from an agent of cogrl/Scanpath-v0"):
        scanpaths.agent_scanpaths(agent, human)
    searcher = cogrl.agents.make(
        "ppo",
        "cogrl/Scanpath-v0",
        num_envs=2,
        n_steps=4,
        batch_size=8,
        env_kwargs={"reward": "search", "image_size": (36, 48), "saliency": "center_bias"},
    )
    with pytest.raises(ValueError, match="scored for free viewing"):
        scanpaths.agent_scanpaths(searcher, human)


def test_cli_eval_scores_a_baseline_and_the_human_ceiling(human, capsys) -> None:
    from cogrl.cli import main

    assert main(["eval", "random", "--human-data", str(human.root), "--samples", "2"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["model"] == "random" and result["images"] == len(human)
    assert result["samples"] == 2 and set(scanpaths.SCORES) <= set(result)
    assert main(["eval", "human", "--human-data", str(human.root)]) == 0
    ceiling = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert ceiling["nss"] > result["nss"]


def test_cli_record_draws_model_beside_humans(human, capsys, tmp_path, monkeypatch) -> None:
    from cogrl.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["record", "center_bias", "--human-data", str(human.root), "--episodes", "2"])
    assert code == 0
    folder = tmp_path / capsys.readouterr().out.splitlines()[-1]
    pictures = sorted(folder.glob("*.png"))
    assert [p.stem for p in pictures] == sorted(Path(n).stem for n in human.names[:2])
    drawn = np.asarray(Image.open(pictures[0]))
    assert drawn.shape == (360, 960, 3)  # 200 x 150 shown 480 wide, twice


def test_cli_human_data_errors_exit_2(human, capsys, tmp_path) -> None:
    from cogrl.cli import main

    assert main(["eval", "deepgaze", "--human-data", str(human.root)]) == 2
    err = capsys.readouterr().err
    assert "'deepgaze' is neither a run folder" in err and "wta:MODEL" in err
    assert main(["record", "deepgaze", "--human-data", str(human.root)]) == 2
    err = capsys.readouterr().err
    assert "'deepgaze' is neither a run folder" in err and "'human'" not in err
    assert main(["eval", "random", "--human-data", str(tmp_path)]) == 2
    assert "no fixations.jsonl" in capsys.readouterr().err
