"""Scanpath models scored against human eye movements.

Where do models look, compared with people? This module makes scanpaths on the images of a
human-data folder (:func:`cogrl.datasets.load_fixations`) and scores them with the field's
metrics (:mod:`cogrl.metrics`):

- :func:`baseline_scanpaths`: the classic models, by name (:data:`BASELINES`):
  ``random`` (uniform fixations), ``center_bias`` (fixations drawn from the centre-bias
  map), ``wta:MODEL`` (Itti and Koch's winner-take-all with inhibition of return on a
  :mod:`cogrl.saliency` map: fixate the map's maximum, then suppress a disc of a sixth of
  the image's smaller side around it, and again), and ``wang2011`` (Wang et al. 2011: each
  fixation where the residual perceptual information gained is largest,
  :meth:`~cogrl.envs.attention.scanpath.Scanpath.greedy_fixation`).
- :func:`agent_scanpaths`: a trained agent's scanpaths on the same images, through
  ``cogrl/Scanpath-v0`` with the folder as ``human_data``.
- :func:`score_scanpaths`: one row of the benchmark table: saliency-map metrics (AUC-Judd,
  shuffled AUC, NSS, CC; of the model's own map where it has one, otherwise of the density
  of its fixations), scanpath metrics against every observer (MultiMatch's five
  dimensions, ScanMatch, string-edit similarity), and the human-consistency KL (MultiMatch's
  model-vs-human score distribution against the human-vs-human one, averaged over its
  dimensions). :func:`human_ceiling` scores each observer against the others the same way.

Model scanpaths are lists per image of (K, 3) arrays ``(x, y, duration_ms)`` in the image's
pixels; a model that does not time its fixations gets the image's median human duration.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from cogrl.datasets import FixationData
from cogrl.metrics import (
    MULTIMATCH_DIMENSIONS,
    OSIE_PIXELS_PER_DEGREE,
    auc_judd,
    auc_shuffled,
    cc,
    fixation_density,
    human_consistency,
    multimatch,
    nss,
    scanmatch,
    string_edit_distance,
)
from cogrl.saliency.winner_take_all import winner_take_all

__all__ = [
    "BASELINES",
    "SCORES",
    "agent_scanpaths",
    "baseline_scanpaths",
    "draw_scanpaths",
    "human_ceiling",
    "saliency_maps",
    "score_scanpaths",
    "winner_take_all",
]

ENV_ID = "cogrl/Scanpath-v0"
#: Scanpath models by name (``wta:`` takes any :data:`cogrl.saliency.MODELS` name).
BASELINES = (
    "random",
    "center_bias",
    "wta:itti_koch",
    "wta:spectral_residual",
    "wta:site_entropy_rate",
    "wang2011",
)
#: What :func:`score_scanpaths` reports, in the benchmark table's order.
SCORES = (
    "auc_judd",
    "auc_shuffled",
    "nss",
    "cc",
    *(f"multimatch_{d}" for d in MULTIMATCH_DIMENSIONS),
    "multimatch",
    "scanmatch",
    "sed",
    "human_consistency_kl",
)
# ScanMatch and string edit distance grid: the ScanMatch toolbox's 12 x 8 (rows, columns
# in numpy order), as in the recent scanpath papers' OSIE evaluations.
GRID = (8, 12)


def baseline_scanpaths(
    name: str,
    data: FixationData,
    n_fixations: int = 9,
    samples: int = 1,
    seed: int = 0,
    image_size: tuple[int, int] = (48, 64),
) -> list[list[np.ndarray]]:
    """``samples`` scanpaths of ``n_fixations`` per image of ``data`` from the baseline
    ``name`` (:data:`BASELINES`). ``wang2011`` runs the scanpath task at ``image_size``;
    ``wta:`` and ``center_bias`` work on the saliency map at each image's own resolution
    (:func:`saliency_maps`)."""
    from cogrl.saliency import MODELS

    if name not in BASELINES and not (name.startswith("wta:") and name[4:] in MODELS):
        wta = [f"wta:{m}" for m in sorted(MODELS)]
        raise ValueError(
            f"baseline must be one of {sorted(set(BASELINES) | set(wta))}, got {name!r}"
        )
    n_images = len(data)
    generator = torch.Generator().manual_seed(seed)
    if name == "wang2011":
        core = _core(
            data,
            n_images * samples,
            image_size,
            saliency="site_entropy_rate",
            n_fixations=n_fixations,
        )
        core.reset(seed=seed, options={"image": torch.arange(n_images * samples) % n_images})
        for _ in range(n_fixations):
            _, _, _, _, info = core.step(core.greedy_fixation())
        locations = info["scanpath"]
    elif name == "random":
        locations = torch.rand(n_images * samples, n_fixations, 2, generator=generator) * 2 - 1
    else:
        # Each image's map at the image's own resolution, as the map metrics score it.
        per_image = []
        for smap in _image_maps(data, name.removeprefix("wta:")):
            maps = smap[None].expand(samples, -1, -1)
            if name == "center_bias":
                per_image.append(_sample_locations(maps, n_fixations, generator))
            else:
                per_image.append(winner_take_all(maps, n_fixations))
        locations = torch.stack(per_image, 1).reshape(-1, n_fixations, 2)
    return _to_pixels(locations.reshape(samples, n_images, n_fixations, 2), data)


def agent_scanpaths(
    agent: Any,
    data: FixationData,
    samples: int = 1,
    deterministic: bool = True,
    seed: int = 0,
) -> list[list[np.ndarray]]:
    """A trained agent's scanpaths on every image of ``data``: ``samples`` per image, its
    actions the most likely (``deterministic``) or sampled."""
    if agent.env_id != ENV_ID:
        raise ValueError(f"scanpaths come from an agent of {ENV_ID}, got one of {agent.env_id!r}")
    n_images = len(data)
    # The run's own environment settings (reward, sizes, fovea, ...) on the folder's images.
    core = agent.make_core(
        n_images * samples, images="skimage", human_data=str(data.root), split=data.split
    )
    if core.reward == "search":
        raise ValueError(
            "scanpaths are scored for free viewing: a search agent's episodes end when it "
            "finds its target (train with env.reward=information or human)"
        )
    obs, _ = core.reset(seed=seed, options={"image": torch.arange(n_images * samples) % n_images})
    state, start = None, torch.ones(core.num_envs, dtype=torch.bool, device=core.device)
    for _ in range(core.n_fixations):
        action, state = agent.predict(obs, state, start, deterministic)
        obs, _, _, _, info = core.step(action)
        start = torch.zeros_like(start)
    locations = info["scanpath"].cpu().reshape(samples, n_images, core.n_fixations, 2)
    return _to_pixels(locations, data)


def saliency_maps(model: str, data: FixationData) -> list[np.ndarray]:
    """The :mod:`cogrl.saliency` map ``model`` of every image of ``data``, computed at the
    image's own resolution (the scales of Itti and Koch's pyramid are the paper's for such
    images), as densities: each sums to 1."""
    out = []
    for smap in _image_maps(data, model):
        full = smap.double().numpy()
        out.append(full / full.sum() if full.sum() > 0 else np.full_like(full, 1 / full.size))
    return out


def score_scanpaths(
    scanpaths: Sequence[Sequence[np.ndarray]],
    data: FixationData,
    maps: Sequence[np.ndarray] | None = None,
) -> dict[str, float]:
    """The metrics of :data:`SCORES`, averaged over the images of ``data``, for the model
    whose scanpaths (one list per image) and, where it has them, saliency maps (one per
    image, at the image's pixels) are given."""
    if len(scanpaths) != len(data) or (maps is not None and len(maps) != len(data)):
        raise ValueError(
            f"give one list of scanpaths (and one map) per image: {len(data)} images, got "
            f"{len(scanpaths)} scanpath lists" + ("" if maps is None else f" and {len(maps)} maps")
        )
    rows = []
    for i in range(len(data)):
        model_map = None if maps is None else maps[i]
        rows.append(_score_image(i, data, list(scanpaths[i]), model_map))
    return {k: float(np.mean([r[k] for r in rows])) for k in SCORES}


def human_ceiling(data: FixationData) -> dict[str, float]:
    """The human inter-observer ceiling: each observer scored as a model against the others
    (map metrics: the others' fixation density at the observer's fixations), averaged."""
    rows = []
    for i in range(len(data)):
        humans = data.scanpaths[i]
        for j in range(len(humans)):
            others = [s for k, s in enumerate(humans) if k != j]
            rows.append(_score_image(i, data, [humans[j]], None, humans=others))
    return {k: float(np.mean([r[k] for r in rows])) for k in SCORES}


def draw_scanpaths(
    image: np.ndarray, model: np.ndarray, humans: Sequence[np.ndarray], width: int = 480
) -> np.ndarray:
    """The image twice, side by side, ``width`` pixels each: the model's scanpath (K, 2+)
    on the left (yellow to red in order, joined by its saccades), every observer's on the
    right (one colour each). Returns (H, 2 * width, 3) uint8."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(np.asarray(image, np.uint8))
    scale = width / picture.width
    picture = picture.resize((width, round(picture.height * scale)))
    panels = []
    for paths, colours in ((model[None], None), (list(humans), _observer_colours(len(humans)))):
        panel = picture.copy()
        draw = ImageDraw.Draw(panel)
        for p, path in enumerate(paths):
            xy = [(float(x) * scale, float(y) * scale) for x, y in np.asarray(path)[:, :2]]
            line = (0, 200, 255) if colours is None else colours[p]
            if len(xy) > 1:
                draw.line(xy, fill=line, width=2)
            for k, (x, y) in enumerate(xy):
                share = k / max(len(xy) - 1, 1)
                dot = (255, int(220 * (1 - share)), 0) if colours is None else colours[p]
                draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=dot, outline=(0, 0, 0))
        panels.append(np.asarray(panel))
    return np.concatenate(panels, axis=1)


def _observer_colours(n: int) -> list[tuple[int, int, int]]:
    import colorsys

    return [
        tuple(int(255 * c) for c in colorsys.hsv_to_rgb(k / max(n, 1), 0.9, 1.0)) for k in range(n)
    ]


# --- scoring -----------------------------------------------------------------------------------


def _score_image(
    i: int,
    data: FixationData,
    model: list[np.ndarray],
    model_map: np.ndarray | None,
    humans: Sequence[np.ndarray] | None = None,
) -> dict[str, float]:
    width, height = (int(v) for v in data.sizes[i])
    shape = (height, width)
    humans = list(data.scanpaths[i] if humans is None else humans)
    fixations = np.concatenate([s[:, :2] for s in humans])
    model_fixations = np.concatenate([s[:, :2] for s in model])
    if model_map is None:
        model_map = fixation_density(model_fixations, shape, OSIE_PIXELS_PER_DEGREE)
    human_map = fixation_density(fixations, shape, OSIE_PIXELS_PER_DEGREE)
    row = {
        "auc_judd": auc_judd(model_map, fixations),
        "auc_shuffled": auc_shuffled(model_map, fixations, _nonfixations(data, i)),
        "nss": nss(model_map, fixations),
        "cc": cc(model_map, human_map),
    }
    long_enough = [s for s in humans if len(s) >= 3]  # MultiMatch compares >= 3 fixations
    screen = (width, height)
    consistency = human_consistency(
        model, long_enough, functools.partial(multimatch, screen_size=screen)
    )
    for d in MULTIMATCH_DIMENSIONS:
        row[f"multimatch_{d}"] = float(consistency[d].model_human.mean())
    row["multimatch"] = float(np.mean([row[f"multimatch_{d}"] for d in MULTIMATCH_DIMENSIONS]))
    row["human_consistency_kl"] = float(np.mean([consistency[d].kl for d in MULTIMATCH_DIMENSIONS]))
    row["scanmatch"] = float(np.mean([scanmatch(m, h, shape, GRID) for m in model for h in humans]))
    row["sed"] = float(
        np.mean(
            [string_edit_distance(m, h, shape, GRID)["similarity"] for m in model for h in humans]
        )
    )
    return row


def _nonfixations(data: FixationData, i: int) -> np.ndarray:
    """Shuffled AUC's negatives: the human fixations of every other image of the set, in
    image ``i``'s pixels (scaled where sizes differ)."""
    width, height = (int(v) for v in data.sizes[i])
    others = []
    for k in range(len(data)):
        if k != i:
            w, h = (int(v) for v in data.sizes[k])
            others.append(data.fixations(k) * np.array([width / w, height / h]))
    return np.concatenate(others)


# --- making scanpaths --------------------------------------------------------------------------


def _core(data: FixationData, num_envs: int, image_size: tuple[int, int], **kwargs: Any):
    from cogrl.envs import make_core

    return make_core(
        ENV_ID,
        num_envs,
        human_data=str(data.root),
        split=data.split,
        image_size=image_size,
        **kwargs,
    )


def _image_maps(data: FixationData, model: str) -> list[torch.Tensor]:
    """The saliency map ``model`` of each image of ``data``, (H, W) at its own pixels."""
    from cogrl.saliency import MODELS

    if model not in MODELS:
        raise ValueError(f"saliency model must be one of {sorted(MODELS)}, got {model!r}")
    maps = []
    for i in range(len(data)):
        image = torch.from_numpy(np.array(data.image(i))).permute(2, 0, 1)[None].float() / 255
        maps.append(MODELS[model](image)[0].clamp_min(0))
    return maps


def _sample_locations(maps: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` locations per map (B, H, W), drawn with probability proportional to the map."""
    b, h, w = maps.shape
    weights = maps.flatten(1).double()
    weights = torch.where(weights.sum(1, keepdim=True) > 0, weights, torch.ones_like(weights))
    flat = torch.multinomial(weights, n, replacement=True, generator=generator)
    cols, rows = (flat % w).float(), (flat // w).float()
    return torch.stack([(cols + 0.5) / w * 2 - 1, (rows + 0.5) / h * 2 - 1], -1)


def _to_pixels(locations: torch.Tensor, data: FixationData) -> list[list[np.ndarray]]:
    """(samples, D, K, 2) locations in [-1, 1] -> per image, ``samples`` (K, 3) scanpaths in
    its pixels with its median human fixation duration. A location on the image's right or
    bottom edge (1.0) lies in the last pixel column or row."""
    out = []
    for i in range(len(data)):
        width, height = (int(v) for v in data.sizes[i])
        size = np.array([width, height], np.float64)
        duration = float(np.median(np.concatenate([s[:, 2] for s in data.scanpaths[i]])))
        paths = []
        for path in locations[:, i].double().numpy():
            xy = np.minimum((path + 1) / 2 * size, np.nextafter(size, 0))
            paths.append(np.column_stack([xy, np.full(len(xy), duration)]))
        out.append(paths)
    return out
