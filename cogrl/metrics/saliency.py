"""Saliency map vs human fixations: the metrics of the MIT saliency benchmark and pysaliency.

A model of where people look is scored by how well its saliency map predicts the fixations
that human observers made on the same image (Bylinskii et al., "What do different evaluation
metrics tell us about saliency models?", TPAMI 2019; Kümmerer et al., "Information-theoretic
model comparison unifies saliency metrics", PNAS 2015). The definitions follow the MIT
benchmark's MATLAB code (github.com/cvzoya/saliency, ``code_forMetrics``) and pysaliency;
where the two differ, the function's docstring says which one it follows.

Conventions
-----------
- A *saliency map* is an ``(H, W)`` array of floats: numpy, or torch on any device. Every
  metric computes in numpy float64 (these run once per image in an evaluation, not per
  environment step). A map must be finite; metrics do not resize maps (the MIT code does):
  resize a model's map to the image first.
- *Fixations* are a ``(K, 2)`` array of ``(x, y)`` pixel coordinates, ``x`` to the right,
  ``y`` down, origin at the top-left corner of the image: the OSIE data format. A fixation at
  a fractional position counts for the pixel it falls in: pixel ``(row, col) = (floor(y),
  floor(x))`` covers ``[col, col + 1) x [row, row + 1)`` (pysaliency's ``x_int``). A position
  off the image (``x < 0``, ``x >= W``, ``y < 0`` or ``y >= H``) is a ValueError, never clamped.
- Every fixation counts once, so a pixel fixated twice counts twice (pysaliency's
  convention; the MIT code's binary fixation map counts it once). The two agree whenever no
  two fixations fall in the same pixel.
- A *human map* (for :func:`cc`, :func:`kl_divergence`, :func:`similarity`) is a continuous
  fixation map of the same shape as the saliency map, non-negative with some mass: usually
  :func:`fixation_density` of the human fixations.

Metrics (best value; chance level)
----------------------------------
- :func:`auc_judd` (1; 0.5), :func:`auc_borji` (1; 0.5), :func:`auc_shuffled` (1; 0.5, and a
  pure centre bias also scores about 0.5, since the nonfixations carry the same bias);
- :func:`nss` (higher is better; 0), :func:`cc` (1; 0), :func:`similarity` (1; -),
  :func:`kl_divergence` (0, lower is better), :func:`information_gain` (higher is better;
  0 = as good as the baseline).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cogrl.checks import check_int, check_number

__all__ = [
    "OSIE_PIXELS_PER_DEGREE",
    "auc_borji",
    "auc_judd",
    "auc_shuffled",
    "cc",
    "fixation_density",
    "information_gain",
    "kl_divergence",
    "nss",
    "similarity",
]

# MATLAB's eps, the regulariser of the MIT benchmark's KL divergence and information gain.
EPS = float(np.finfo(np.float64).eps)

# OSIE's viewing geometry: the 800 x 600 images span about 33 x 25 degrees of visual angle,
# so one degree is about 24 pixels. A fixation map is blurred by about one degree, the
# precision of an eye tracker and the size of the fovea.
OSIE_PIXELS_PER_DEGREE = 24.0

# Random numbers: a Generator, or a seed for one. The default seed 0 makes every score
# reproducible; pass None for fresh entropy.
Seed = np.random.Generator | int | None


# Inputs (shared with cogrl.metrics.scanpath).


def as_float_array(name: str, value: Any) -> np.ndarray:
    """``value`` (a numpy array, a torch tensor on any device, or nested sequences) as a
    float64 numpy array, or a ValueError naming ``name``."""
    if isinstance(value, torch.Tensor):
        value = value.detach().to("cpu", torch.float64).numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{name} must be an array of real numbers, got {type(value).__name__}: {error}"
        ) from error
    return array


def check_finite(name: str, array: np.ndarray) -> None:
    """A ValueError naming the first NaN or infinite entry of ``array``."""
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must hold finite numbers; {name}{list(index)} is {float(array[index])!r}"
        )


def check_shape(name: str, shape: Any) -> tuple[int, int]:
    """An image shape ``(height, width)`` of two positive ints."""
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise ValueError(f"{name} must be (height, width), two positive ints, got {shape!r}")
    for axis, size in zip(("height", "width"), shape, strict=True):
        check_int(f"{name} {axis}", size)
    return int(shape[0]), int(shape[1])


def check_on_image(name: str, xy: np.ndarray, height: int, width: int) -> None:
    """Every ``(x, y)`` row of ``xy`` must lie on a ``height x width`` image."""
    off = (xy[:, 0] < 0) | (xy[:, 0] >= width) | (xy[:, 1] < 0) | (xy[:, 1] >= height)
    if off.any():
        k = int(np.argmax(off))
        raise ValueError(
            f"{name}[{k}] = (x={float(xy[k, 0])!r}, y={float(xy[k, 1])!r}) is off the image; "
            f"expected 0 <= x < {width:g} and 0 <= y < {height:g} (pixels, origin at the "
            "top-left corner)"
        )


def saliency_map_array(name: str, value: Any) -> np.ndarray:
    """A finite ``(H, W)`` map as float64."""
    array = as_float_array(name, value)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{name} must be an (H, W) map with H, W >= 1, got shape {array.shape}")
    check_finite(name, array)
    return array


def fixation_pixels(name: str, value: Any, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """The ``(rows, cols)`` of the pixels that ``(K, 2)`` fixations ``(x, y)`` fall in."""
    xy = as_float_array(name, value)
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] == 0:
        raise ValueError(
            f"{name} must be a (K, 2) array of (x, y) pixel positions with K >= 1, got shape "
            f"{xy.shape}" + (" (pass scanpath[:, :2])" if xy.ndim == 2 and xy.shape[1] == 3 else "")
        )
    check_finite(name, xy)
    check_on_image(name, xy, *shape)
    return np.floor(xy[:, 1]).astype(np.intp), np.floor(xy[:, 0]).astype(np.intp)


def _human_map(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A human fixation map: the saliency map's shape, non-negative, with some mass."""
    human = saliency_map_array(name, value)
    if human.shape != shape:
        raise ValueError(
            f"{name} must have the saliency map's shape {shape}, got {human.shape} "
            "(resize the saliency map to the image first)"
        )
    if human.min() < 0 or human.sum() <= 0:
        raise ValueError(
            f"{name} must be a fixation map: non-negative with a positive sum, got min "
            f"{float(human.min())!r} and sum {float(human.sum())!r}"
        )
    return human


def _min_max(smap: np.ndarray) -> np.ndarray:
    """The map scaled to [0, 1] (the MIT code's normalisation); a constant map becomes 0."""
    low, high = smap.min(), smap.max()
    return (smap - low) / (high - low) if high > low else np.zeros_like(smap)


def _density(name: str, smap: np.ndarray) -> np.ndarray:
    """A non-negative map as a probability distribution over pixels; a map without mass is
    uniform (pysaliency's ``convert_saliency_map_to_density``)."""
    if smap.min() < 0:
        raise ValueError(
            f"{name} must be non-negative to be read as a density over pixels, got min "
            f"{float(smap.min())!r}; shift or rescale it first"
        )
    total = smap.sum()
    return smap / total if total > 0 else np.full_like(smap, 1.0 / smap.size)


# The human fixation map.


def fixation_density(
    fixations: Any, shape: tuple[int, int], sigma: float = OSIE_PIXELS_PER_DEGREE
) -> np.ndarray:
    """The continuous human fixation map: the fixation histogram blurred by a Gaussian of
    ``sigma`` pixels, summing to 1 (the "ground-truth" map that CC, KL and SIM compare with).

    ``sigma`` defaults to one degree of visual angle in OSIE (about 24 pixels on its
    800 x 600 images, :data:`OSIE_PIXELS_PER_DEGREE`); use your own data's pixels per degree
    otherwise. ``sigma=0`` gives the normalised histogram itself. The image is zero-padded:
    the part of a fixation's Gaussian that falls off the image is not part of the map.
    """
    from scipy.ndimage import gaussian_filter

    height, width = check_shape("shape", shape)
    check_number("sigma", sigma)
    rows, cols = fixation_pixels("fixations", fixations, (height, width))
    histogram = np.zeros((height, width))
    np.add.at(histogram, (rows, cols), 1.0)
    if sigma > 0:
        histogram = gaussian_filter(histogram, sigma=float(sigma), mode="constant")
    return histogram / histogram.sum()


# Area under the ROC curve: the saliency map as a classifier of fixated (positive) against
# nonfixated (negative) locations, "salient" meaning a value at or above a threshold.


def _fraction_at_least(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The fraction of ``values`` (along the last axis) at or above each threshold."""
    if values.ndim == 1:  # many values (every pixel of an image): sort once
        below = np.searchsorted(np.sort(values), thresholds, side="left")
        return 1.0 - below / values.size
    return (values[..., None, :] >= thresholds[:, None]).mean(axis=-1)


def _roc_area(true_positive_rate: np.ndarray, false_positive_rate: np.ndarray) -> np.ndarray:
    """The trapezoidal area under the ROC points, from (0, 0) to (1, 1), per leading index.
    Rates are ordered by descending threshold (so ascending rates)."""
    shape = false_positive_rate.shape
    tpr = np.broadcast_to(true_positive_rate, shape)
    tpr = np.concatenate([np.zeros(shape[:-1] + (1,)), tpr, np.ones(shape[:-1] + (1,))], -1)
    fpr = np.concatenate(
        [np.zeros(shape[:-1] + (1,)), false_positive_rate, np.ones(shape[:-1] + (1,))], -1
    )
    return (np.diff(fpr, axis=-1) * (tpr[..., 1:] + tpr[..., :-1]) / 2).sum(axis=-1)


def _scaled_at_fixations(
    saliency_map: Any, fixations: Any, splits: int, step: float
) -> tuple[np.ndarray, np.ndarray]:
    """AUC-Borji's and sAUC's inputs: the map scaled to [0, 1] and its values at fixations."""
    check_int("splits", splits)
    check_number("step", step, high=1.0, low_open=True)
    smap = _min_max(saliency_map_array("saliency_map", saliency_map))
    rows, cols = fixation_pixels("fixations", fixations, smap.shape)
    return smap, smap[rows, cols]


def _split_auc(positives: np.ndarray, negatives: np.ndarray, step: float) -> float:
    """Mean AUC over splits: ``negatives`` is ``(splits, N)``; thresholds step through [0, 1]
    as the MIT code's ``fliplr(0:step:max)``, since thresholds above a split's largest value
    only repeat the ROC point (0, 0) and add no area."""
    thresholds = step * np.arange(int(np.floor(1.0 / step + 1e-9)), -1, -1)
    tpr = _fraction_at_least(positives, thresholds)
    fpr = _fraction_at_least(negatives, thresholds)
    return float(_roc_area(tpr, fpr).mean())


def auc_judd(saliency_map: Any, fixations: Any, *, jitter: bool = True, rng: Seed = 0) -> float:
    """AUC-Judd: the ROC area of the map separating fixated pixels from all unfixated ones,
    with one threshold at each fixated value (Judd et al. 2009; MIT's ``AUC_Judd.m``).

    ``jitter`` adds uniform noise of at most 1e-7 to the map (after scaling it to [0, 1])
    to break ties between equal values, as the MIT code and pysaliency's ``AUC_Judd`` do;
    ``rng`` seeds that noise. Without jitter, a constant map scores exactly 0.5.

    The ROC points are ``(fraction of unfixated pixels >= t, fraction of fixations >= t)``
    for each distinct fixated value ``t``, plus (0, 0) and (1, 1); the score is their
    trapezoidal area. Raises ValueError when every pixel is fixated.
    """
    smap = saliency_map_array("saliency_map", saliency_map)
    rows, cols = fixation_pixels("fixations", fixations, smap.shape)
    if jitter:
        smap = _min_max(smap) + np.random.default_rng(rng).random(smap.shape) * 1e-7
    fixated = np.zeros(smap.shape, dtype=bool)
    fixated[rows, cols] = True
    negatives = smap[~fixated]
    if negatives.size == 0:
        raise ValueError(
            f"AUC-Judd needs unfixated pixels, but the fixations cover all {smap.size} pixels"
        )
    positives = smap[rows, cols]
    thresholds = np.unique(positives)[::-1]
    tpr = _fraction_at_least(positives, thresholds)
    fpr = _fraction_at_least(negatives, thresholds)
    return float(_roc_area(tpr, fpr))


def auc_borji(
    saliency_map: Any,
    fixations: Any,
    *,
    splits: int = 100,
    step: float = 0.1,
    rng: Seed = 0,
) -> float:
    """AUC-Borji: the ROC area of the map separating fixations from as many pixels drawn
    uniformly at random (with replacement, over the whole image), averaged over ``splits``
    random draws (Borji et al. 2013; MIT's ``AUC_Borji.m``).

    The map is scaled to [0, 1] (a constant map becomes 0 everywhere and scores 0.5) and
    thresholds step through ``1, 1 - step, ..., 0``. ``rng`` seeds the draws.
    """
    smap, positives = _scaled_at_fixations(saliency_map, fixations, splits, step)
    draws = np.random.default_rng(rng).integers(0, smap.size, size=(splits, positives.size))
    return _split_auc(positives, smap.ravel()[draws], step)


def auc_shuffled(
    saliency_map: Any,
    fixations: Any,
    nonfixations: Any,
    *,
    splits: int = 100,
    step: float = 0.1,
    rng: Seed = 0,
) -> float:
    """Shuffled AUC (sAUC): as :func:`auc_borji`, with the negatives drawn from
    ``nonfixations``, the fixations made on *other* images (Zhang et al. 2008; MIT's
    ``AUC_shuffled.m``; Borji et al. take the fixations of 10 other images).

    Other images' fixations carry the same centre bias as this image's, so a map that
    predicts only the centre bias scores about 0.5. ``nonfixations`` is a ``(K', 2)``
    array of ``(x, y)`` positions on this image's pixel grid (images of the same size, or
    positions rescaled to it). Each split draws ``min(K, K')`` of them without replacement;
    ``rng`` seeds the draws.
    """
    smap, positives = _scaled_at_fixations(saliency_map, fixations, splits, step)
    other_rows, other_cols = fixation_pixels("nonfixations", nonfixations, smap.shape)
    others = smap[other_rows, other_cols]
    count = min(positives.size, others.size)
    # A uniformly random subset of `count` per split: the indices of its `count` smallest keys.
    keys = np.random.default_rng(rng).random((splits, others.size))
    chosen = np.argpartition(keys, count - 1, axis=1)[:, :count]
    return _split_auc(positives, others[chosen], step)


# Map statistics at fixations, and distances between maps.


def nss(saliency_map: Any, fixations: Any) -> float:
    """Normalized scanpath saliency: the mean of the standardised map ``(S - mean(S)) /
    std(S)`` at the fixations (Peters et al. 2005; MIT's ``NSS.m``).

    ``std`` is the population standard deviation (numpy's and pysaliency's; MATLAB's
    ``std`` divides by ``n - 1``, a difference that vanishes at image sizes). A constant
    map predicts nothing and scores 0.
    """
    smap = saliency_map_array("saliency_map", saliency_map)
    rows, cols = fixation_pixels("fixations", fixations, smap.shape)
    std = smap.std()
    if std == 0:
        return 0.0
    return float(((smap[rows, cols] - smap.mean()) / std).mean())


def cc(saliency_map: Any, human_map: Any) -> float:
    """Pearson's linear correlation coefficient between the saliency map and the human
    fixation map (MIT's ``CC.m``), in [-1, 1].

    A constant saliency map scores 0 (pysaliency); a constant human map has no variance to
    explain, and is a ValueError.
    """
    smap = saliency_map_array("saliency_map", saliency_map)
    human = _human_map("human_map", human_map, smap.shape)
    if human.std() == 0:
        raise ValueError("human_map is constant; its correlation with any map is undefined")
    if smap.std() == 0:
        return 0.0
    s = (smap - smap.mean()) / smap.std()
    h = (human - human.mean()) / human.std()
    return float((s * h).mean())


def kl_divergence(saliency_map: Any, human_map: Any) -> float:
    """The KL divergence of the saliency map from the human fixation map, both read as
    distributions over pixels: ``sum(Q * log(eps + Q / (P + eps)))`` in nats, with ``P``
    and ``Q`` the maps divided by their sums and ``eps`` MATLAB's 2.2e-16 (MIT's
    ``KLdiv.m``; pysaliency's ``MIT_KLDiv``). 0 is best; it is not symmetric.

    The saliency map must be non-negative; one without mass (all zeros) is read as uniform,
    as pysaliency does. A pixel the human map weights but the model gives zero costs about
    ``Q * 36`` nats.
    """
    smap = saliency_map_array("saliency_map", saliency_map)
    human = _human_map("human_map", human_map, smap.shape)
    p = _density("saliency_map", smap)
    q = human / human.sum()
    return float((q * np.log(EPS + q / (p + EPS))).sum())


def similarity(saliency_map: Any, human_map: Any) -> float:
    """SIM, the histogram intersection of the two maps as distributions: ``sum(min(P, Q))``
    in [0, 1], 1 for identical distributions (MIT's ``similarity.m``).

    As in the MIT code, each map is first scaled to [0, 1] (so a model cannot gain by
    adding a constant everywhere) and then divided by its sum. A constant map is read as
    uniform.
    """
    smap = saliency_map_array("saliency_map", saliency_map)
    human = _human_map("human_map", human_map, smap.shape)
    p = _density("saliency_map", _min_max(smap))
    q = _density("human_map", _min_max(human))
    return float(np.minimum(p, q).sum())


def information_gain(saliency_map: Any, baseline_map: Any, fixations: Any) -> float:
    """Information gain over a baseline, in bits per fixation (Kümmerer et al., PNAS 2015):
    ``mean_k(log2(eps + P[f_k]) - log2(eps + B[f_k]))`` with ``P`` and ``B`` the saliency and
    baseline maps divided by their sums, read as the probability that a fixation lands on
    each pixel, and ``eps`` MATLAB's 2.2e-16 (as MIT's ``InfoGain.m``).

    Unlike MIT's code, the maps are not scaled to [0, 1] first: that would give the least
    salient pixel zero probability. Both maps must be non-negative; one without mass is
    read as uniform. The usual baseline is a centre bias; 0 means no better than it.
    """
    smap = saliency_map_array("saliency_map", saliency_map)
    baseline = saliency_map_array("baseline_map", baseline_map)
    if baseline.shape != smap.shape:
        raise ValueError(
            f"baseline_map must have the saliency map's shape {smap.shape}, got {baseline.shape}"
        )
    rows, cols = fixation_pixels("fixations", fixations, smap.shape)
    p = _density("saliency_map", smap)[rows, cols]
    b = _density("baseline_map", baseline)[rows, cols]
    return float((np.log2(EPS + p) - np.log2(EPS + b)).mean())
