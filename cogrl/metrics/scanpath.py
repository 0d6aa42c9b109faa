"""Scanpath vs scanpath: MultiMatch, ScanMatch, string edit distance, DTW, and the
human-consistency protocol that puts a model's scores next to the humans' own.

A scanpath model is judged by how alike its fixation sequences are to the sequences human
observers made on the same image (Le Meur & Baccino, "Methods for comparing scanpaths and
saliency maps: strengths and weaknesses", Behav. Res. Methods 2013). Humans disagree with
each other, so a raw similarity is read against the human-vs-human similarities:
:func:`human_consistency`.

Conventions
-----------
- A *scanpath* is a ``(K, 3)`` array of ``(x, y, duration_ms)`` fixations in viewing order,
  or ``(K, 2)`` of ``(x, y)`` where durations are not needed; numpy or torch. Positions are
  pixels, ``x`` to the right, ``y`` down, origin at the top-left corner (OSIE's format);
  durations are positive milliseconds. A metric that does not use durations
  (:func:`string_edit_distance`, :func:`dtw`) ignores a third column by definition.
- ``shape`` is the image's ``(height, width)`` in pixels, as a numpy image's shape; a
  fixation off the image (``x < 0``, ``x >= width``, ...) is a ValueError, never clamped.
- ``grid`` is ``(rows, columns)`` of equal cells over the image, in the same order as
  ``shape`` (ScanMatch's toolbox calls them ``Ybin`` and ``Xbin``). A fixation belongs to the
  cell ``(floor(y * rows / height), floor(x * columns / width))``; cell ``(r, c)`` is the
  letter ``r * columns + c``. The default ``(8, 12)`` is the ScanMatch toolbox's 12 x 8.
- :func:`multimatch` takes ``screen_size`` as ``(width, height)``, as multimatch-gaze does.

Metrics (identical scanpaths score)
-----------------------------------
- :func:`multimatch`: five similarities in [0, 1] (all 1);
- :func:`scanmatch`: a normalised alignment score in [0, 1] with the default gap (1);
- :func:`string_edit_distance`: Levenshtein distance (0) and similarity in [0, 1] (1);
- :func:`dtw`: dynamic time warping distance in pixels (0).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cogrl.checks import check_int, check_number, is_number
from cogrl.metrics.saliency import as_float_array, check_finite, check_on_image, check_shape

__all__ = [
    "MULTIMATCH_DIMENSIONS",
    "HumanConsistency",
    "dtw",
    "human_consistency",
    "multimatch",
    "scanmatch",
    "string_edit_distance",
]

MULTIMATCH_DIMENSIONS = ("vector", "direction", "length", "position", "duration")


# Inputs.


def _scanpath(name: str, value: Any, *, min_length: int = 1) -> np.ndarray:
    """A ``(K, 2)`` or ``(K, 3)`` float64 scanpath with ``K >= min_length``, finite, with
    positive durations."""
    path = as_float_array(name, value)
    if path.ndim != 2 or path.shape[1] not in (2, 3):
        raise ValueError(
            f"{name} must be a (K, 3) array of (x, y, duration_ms) or (K, 2) of (x, y), got "
            f"shape {path.shape}"
        )
    if path.shape[0] < min_length:
        raise ValueError(f"{name} must hold at least {min_length} fixations, got {path.shape[0]}")
    check_finite(name, path)
    if path.shape[1] == 3 and (path[:, 2] <= 0).any():
        k = int(np.argmax(path[:, 2] <= 0))
        raise ValueError(
            f"{name}[{k}] has duration {float(path[k, 2])!r} ms; durations must be positive"
        )
    return path


def _check_grid(grid: Any) -> tuple[int, int]:
    if not isinstance(grid, (tuple, list)) or len(grid) != 2:
        raise ValueError(f"grid must be (rows, columns), two positive ints, got {grid!r}")
    for axis, size in zip(("rows", "columns"), grid, strict=True):
        check_int(f"grid {axis}", size)
    return int(grid[0]), int(grid[1])


def _grid_cells(
    name: str, path: np.ndarray, shape: tuple[int, int], grid: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The ``(row, column)`` grid cell of each fixation of ``path``."""
    height, width = shape
    check_on_image(name, path, height, width)
    rows = np.floor(path[:, 1] * grid[0] / height).astype(np.intp)
    cols = np.floor(path[:, 0] * grid[1] / width).astype(np.intp)
    return rows, cols


# Global alignment by dynamic programming. Levenshtein, Needleman-Wunsch and DTW all fill
# F[i, j] = best(F[i-1, j-1] + diagonal[i, j], F[i-1, j] + up[i, j], F[i, j-1] + left[i, j]):
# cells on one anti-diagonal (i + j = d) depend only on earlier anti-diagonals, so each
# anti-diagonal is one vectorised step.


def _align(
    diagonal: np.ndarray,
    up: np.ndarray,
    left: np.ndarray,
    first_row: np.ndarray,
    first_column: np.ndarray,
    best: Callable[..., np.ndarray],
) -> float:
    """``F[n, m]`` of the recursion above, for ``(n, m)`` step costs (1-based ``i, j`` index
    ``cost[i - 1, j - 1]``), ``F[0, :] = first_row`` and ``F[:, 0] = first_column``."""
    n, m = diagonal.shape
    table = np.empty((n + 1, m + 1))
    table[0, :] = first_row
    table[:, 0] = first_column
    for d in range(2, n + m + 1):
        i = np.arange(max(1, d - m), min(n, d - 1) + 1)
        j = d - i
        table[i, j] = best(
            np.stack(
                [
                    table[i - 1, j - 1] + diagonal[i - 1, j - 1],
                    table[i - 1, j] + up[i - 1, j - 1],
                    table[i, j - 1] + left[i - 1, j - 1],
                ]
            ),
            axis=0,
        )
    return float(table[n, m])


def _levenshtein(a: np.ndarray, b: np.ndarray) -> float:
    """The fewest insertions, deletions and substitutions that turn sequence ``a`` into ``b``."""
    ones = np.ones((a.size, b.size))
    substitution = (a[:, None] != b[None, :]).astype(np.float64)
    return _align(substitution, ones, ones, np.arange(b.size + 1), np.arange(a.size + 1), np.min)


# Scanpath metrics.


def string_edit_distance(
    a: Any, b: Any, shape: tuple[int, int], grid: tuple[int, int] = (8, 12)
) -> dict[str, float]:
    """The string edit (Levenshtein) distance between two scanpaths written as strings of
    grid cells, one letter per fixation (Brandt & Stark 1997; Le Meur & Baccino 2013).

    Returns ``{"distance": d, "similarity": 1 - d / max(len(a), len(b))}``: the number of
    fixations to insert, delete or move to another cell, and that number as a similarity
    in [0, 1] (1 for the same cell sequence). Durations are not used.
    """
    shape = check_shape("shape", shape)
    grid = _check_grid(grid)
    a_path, b_path = _scanpath("a", a), _scanpath("b", b)
    letters = []
    for name, path in (("a", a_path), ("b", b_path)):
        rows, cols = _grid_cells(name, path, shape, grid)
        letters.append(rows * grid[1] + cols)
    distance = _levenshtein(*letters)
    return {
        "distance": distance,
        "similarity": 1.0 - distance / max(letters[0].size, letters[1].size),
    }


def dtw(a: Any, b: Any) -> float:
    """The dynamic time warping distance between two scanpaths: the least sum of Euclidean
    distances (pixels) between matched fixations over all monotone matchings that pair each
    fixation of either path with at least one of the other and keep both orders.

    The recursion ``D[i, j] = |a_i - b_j| + min(D[i-1, j-1], D[i-1, j], D[i, j-1])``, not
    normalised by length (so a longer pair can have a larger distance). Durations are not
    used.
    """
    a_xy, b_xy = _scanpath("a", a)[:, :2], _scanpath("b", b)[:, :2]
    cost = np.linalg.norm(a_xy[:, None, :] - b_xy[None, :, :], axis=-1)
    infinity = np.full(max(a_xy.shape[0], b_xy.shape[0]) + 1, np.inf)
    infinity[0] = 0.0  # a path starts by matching the two first fixations
    return _align(
        cost, cost, cost, infinity[: b_xy.shape[0] + 1], infinity[: a_xy.shape[0] + 1], np.min
    )


def scanmatch(
    a: Any,
    b: Any,
    shape: tuple[int, int],
    grid: tuple[int, int] = (8, 12),
    *,
    threshold: float = 3.5,
    gap: float = 0.0,
    temporal_bin: float | None = 50.0,
) -> float:
    """ScanMatch (Cristino et al., "ScanMatch: A novel method for comparing fixation
    sequences", Behav. Res. Methods 2010): the Needleman-Wunsch alignment score of two
    scanpaths written as grid cells, with durations, normalised to [0, 1].

    - Each fixation becomes its grid cell, repeated once per ``temporal_bin`` ms of its
      duration (``round(duration / temporal_bin)`` times, rounding halves up, and at least
      once: the toolbox would drop a fixation shorter than half a bin). With
      ``temporal_bin=None`` each fixation is one letter and durations are not needed.
    - Substituting cell ``u`` for cell ``v`` scores ``threshold - dist(u, v)``, the distance
      between the cells in grid units (the toolbox's substitution matrix): positive for
      cells closer than ``threshold``, ``threshold`` for the same cell.
    - A gap (a letter aligned with nothing) scores ``gap`` (the toolbox's ``GapValue``,
      0 by default; it must be <= 0).
    - The best total score is divided by ``threshold * max(len(a), len(b))`` (lengths in
      letters), the score of aligning the longer sequence with itself, so identical
      scanpaths score 1. With ``gap = 0`` the score lies in [0, 1]; a negative gap can
      take a very dissimilar pair below 0.

    Defaults are the toolbox's: a 12 x 8 grid (``grid=(8, 12)``, rows first), threshold 3.5,
    gap 0, and 50 ms temporal bins.
    """
    shape = check_shape("shape", shape)
    grid = _check_grid(grid)
    check_number("threshold", threshold, low_open=True)
    check_number("gap", gap, low=-np.inf, high=0.0)
    if temporal_bin is not None:
        check_number("temporal_bin", temporal_bin, low_open=True)
    cells = []
    for name, value in (("a", a), ("b", b)):
        path = _scanpath(name, value)
        rows, cols = _grid_cells(name, path, shape, grid)
        if temporal_bin is not None:
            if path.shape[1] != 3:
                raise ValueError(
                    f"{name} has no durations (shape {path.shape}); ScanMatch with "
                    f"temporal_bin={temporal_bin!r} needs (K, 3) scanpaths of (x, y, "
                    "duration_ms); pass temporal_bin=None to compare positions only"
                )
            repeats = np.maximum(1, np.floor(path[:, 2] / temporal_bin + 0.5).astype(np.intp))
            rows, cols = np.repeat(rows, repeats), np.repeat(cols, repeats)
        cells.append((rows, cols))
    (a_rows, a_cols), (b_rows, b_cols) = cells
    distance = np.hypot(a_rows[:, None] - b_rows[None, :], a_cols[:, None] - b_cols[None, :])
    n, m = distance.shape
    gaps = np.full((n, m), float(gap))
    score = _align(
        threshold - distance, gaps, gaps, gap * np.arange(m + 1), gap * np.arange(n + 1), np.max
    )
    return score / (threshold * max(n, m))


def multimatch(
    a: Any,
    b: Any,
    screen_size: tuple[float, float],
    *,
    simplify: bool = False,
    amplitude_threshold: float = 0.0,
    direction_threshold: float = 0.0,
    duration_threshold: float = 0.0,
) -> dict[str, float]:
    """MultiMatch (Jarodzka et al. 2010; Dewhurst et al. 2012) through the multimatch-gaze
    package (Wagner et al. 2019, MIT licence): the two scanpaths' saccades are aligned by
    the least total difference of saccade vectors, and the aligned pairs are compared on
    five dimensions, each a similarity in [0, 1] (1 = identical):

    - ``vector``: saccade vector differences, over twice the screen diagonal;
    - ``direction``: saccade angle differences, over pi;
    - ``length``: saccade amplitude differences, over the screen diagonal;
    - ``position``: distances between the fixations the saccades start from, over the
      screen diagonal;
    - ``duration``: ``|d_a - d_b| / max(d_a, d_b)`` of those fixations' durations.

    Each dimension is 1 minus the median over aligned pairs. ``screen_size`` is
    ``(width, height)`` in pixels, as multimatch-gaze takes it (the reverse of ``shape``
    elsewhere in cogrl.metrics); fixations must lie on it. Both scanpaths need at least
    3 fixations (2 saccades). When either has no durations (``(K, 2)``), the result has
    no ``"duration"`` key.

    ``simplify`` first groups consecutive saccades, as MultiMatch's simplification does
    (repeated until nothing changes): two saccades merge when the angle between them is
    below ``direction_threshold`` degrees and the fixation between them is shorter than
    ``duration_threshold`` ms, and a saccade shorter than ``amplitude_threshold`` pixels
    merges with the next when a fixation at either of its ends is shorter than
    ``duration_threshold`` ms.

    Needs the ``scanpath`` extra: ``pip install "cogrl[scanpath]"``.
    """
    try:
        import multimatch_gaze
    except ImportError as error:
        raise ImportError(
            "cogrl.metrics.multimatch needs the multimatch-gaze package: "
            'pip install "cogrl[scanpath]"'
        ) from error
    if not isinstance(screen_size, (tuple, list)) or len(screen_size) != 2:
        raise ValueError(f"screen_size must be (width, height) in pixels, got {screen_size!r}")
    for axis, size in zip(("width", "height"), screen_size, strict=True):
        check_number(f"screen_size {axis}", size, low_open=True)
    width, height = float(screen_size[0]), float(screen_size[1])
    if not isinstance(simplify, bool):
        raise ValueError(f"simplify must be true or false, got {simplify!r}")
    check_number("amplitude_threshold", amplitude_threshold)
    check_number("direction_threshold", direction_threshold, high=180.0)
    check_number("duration_threshold", duration_threshold)
    paths = []
    for name, value in (("a", a), ("b", b)):
        path = _scanpath(name, value, min_length=3)
        check_on_image(name, path, height, width)
        paths.append(path)
    timed = all(path.shape[1] == 3 for path in paths)
    if simplify and not timed:
        raise ValueError(
            "MultiMatch's simplification merges saccades around short fixations, so it "
            "needs (K, 3) scanpaths with durations"
        )
    records = []
    for path in paths:
        # multimatch-gaze reads a record array of start_x, start_y and duration in seconds;
        # without durations every fixation gets 1 s, and the duration dimension is dropped.
        seconds = path[:, 2] / 1000.0 if timed else np.ones(path.shape[0])
        records.append(
            np.rec.fromarrays([path[:, 0], path[:, 1], seconds], names="start_x,start_y,duration")
        )
    # A zero-length saccade has no direction: the package's angle test then divides 0 by 0,
    # gets NaN and (rightly) does not merge; silence numpy's warning about it.
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = multimatch_gaze.docomparison(
            records[0],
            records[1],
            screensize=[width, height],
            grouping=simplify,
            TDir=float(direction_threshold),
            TDur=float(duration_threshold) / 1000.0,
            TAmp=float(amplitude_threshold),
        )
    result = {
        name: float(np.asarray(score).item())
        for name, score in zip(MULTIMATCH_DIMENSIONS, scores, strict=True)
    }
    if not timed:
        del result["duration"]
    return result


# The human-consistency protocol.


@dataclass(frozen=True)
class HumanConsistency:
    """One image's scores of one metric under :func:`human_consistency`.

    ``model_human``: the metric of each model scanpath against each human one (model-major);
    ``human_human``: of each human scanpath against each other human one (leave-one-out);
    ``kl``: ``KL(human_human || model_human)`` between their histograms, in nats;
    ``bin_edges``: the histograms' common bin edges.
    """

    model_human: np.ndarray
    human_human: np.ndarray
    kl: float
    bin_edges: np.ndarray


def _histogram_kl(
    reference: np.ndarray,
    model: np.ndarray,
    bins: int,
    value_range: tuple[float, float] | None,
    smoothing: float,
) -> tuple[float, np.ndarray]:
    """``KL(P || Q)`` between the smoothed histograms of ``reference`` (P) and ``model`` (Q)."""
    if value_range is None:
        both = np.concatenate([reference, model])
        value_range = (float(both.min()), float(both.max()))
    else:
        low, high = value_range
        outside = np.concatenate([reference, model])
        outside = outside[(outside < low) | (outside > high)]
        if outside.size:
            raise ValueError(
                f"score {float(outside[0])!r} lies outside value_range {value_range!r}; widen "
                "it or pass value_range=None (the scores' own range)"
            )
    edges = np.histogram_bin_edges(reference, bins=bins, range=value_range)
    p = np.histogram(reference, bins=edges)[0] + smoothing
    q = np.histogram(model, bins=edges)[0] + smoothing
    p, q = p / p.sum(), q / q.sum()
    return float((p * np.log(p / q)).sum()), edges


def human_consistency(
    model_scanpaths: Sequence[Any],
    human_scanpaths: Sequence[Any],
    metric: Callable[[Any, Any], float | Mapping[str, float]],
    *,
    bins: int = 10,
    value_range: tuple[float, float] | None = None,
    smoothing: float = 0.5,
) -> HumanConsistency | dict[str, HumanConsistency]:
    """The human-consistency protocol for one image: how a model's similarity to human
    observers compares with the observers' similarity to each other.

    - model-vs-human: ``metric(model, human)`` for every model scanpath and every human
      scanpath (``M * H`` scores);
    - human-vs-human: ``metric(human_i, human_j)`` for every human ``i`` against every other
      human ``j != i``, leave-one-out (``H * (H - 1)`` scores; both orders, so an
      asymmetric metric is measured both ways);
    - ``kl``: the KL divergence ``sum_b P_b log(P_b / Q_b)`` (nats) of the model-vs-human
      score histogram ``Q`` from the human-vs-human one ``P``, both over the same ``bins``
      equal bins spanning ``value_range`` (by default the smallest to the largest of all the
      scores), with ``smoothing`` added to every bin's count before normalising
      (Krichevsky-Trofimov's 0.5 by default) so that an empty bin costs a finite amount.

    A model whose scores are distributed as the humans' scores get ``kl`` near 0, even
    when another model scores higher on average: a model cannot look "better than human".
    This is the evaluation of TPP-Gaze (D'Amelio et al. 2024, arXiv:2410.23409, which
    reports e.g. a "MultiMatch KL" per model on OSIE): the KL divergence between the
    human-vs-human and the model-vs-human score distributions. The bins, the smoothing and
    the direction of the divergence above are cogrl's choices, stated here because the
    paper's description we could consult does not fix them; numbers are comparable between
    models scored here, not to the digit with the paper's. Average ``kl`` over images for a
    data set.

    ``metric`` takes two scanpaths and returns a float, or a mapping of named floats (as
    :func:`multimatch` and :func:`string_edit_distance` do); bind its other arguments with
    ``functools.partial``. For a mapping, the result is a dict of one
    :class:`HumanConsistency` per name.
    """
    check_int("bins", bins)
    check_number("smoothing", smoothing, low_open=True)
    if value_range is not None:
        if (
            not isinstance(value_range, (tuple, list))
            or len(value_range) != 2
            or not all(is_number(v) and np.isfinite(v) for v in value_range)
            or not value_range[0] < value_range[1]
        ):
            raise ValueError(
                f"value_range must be (low, high) with low < high, got {value_range!r}"
            )
    models, humans = list(model_scanpaths), list(human_scanpaths)
    if len(models) < 1:
        raise ValueError("model_scanpaths must hold at least one scanpath, got none")
    if len(humans) < 2:
        raise ValueError(
            f"human_scanpaths must hold at least two scanpaths (human-vs-human needs a pair), "
            f"got {len(humans)}"
        )

    def scores(pairs: list[tuple[str, Any, Any]]) -> dict[str | None, np.ndarray]:
        table: dict[str | None, list[float]] = {}
        for label, x, y in pairs:
            result = metric(x, y)
            named = dict(result) if isinstance(result, Mapping) else {None: result}
            if table and set(named) != set(table):
                raise ValueError(
                    f"metric returned {sorted(map(str, named))} for {label} but "
                    f"{sorted(map(str, table))} before; every pair must give the same scores"
                )
            for key, value in named.items():
                value = float(value)
                if not np.isfinite(value):
                    raise ValueError(
                        f"metric returned {value!r} for {label}"
                        + (f" ({key})" if key is not None else "")
                    )
                table.setdefault(key, []).append(value)
        return {key: np.asarray(values) for key, values in table.items()}

    model_human = scores(
        [
            (f"model {m} vs human {h}", x, y)
            for m, x in enumerate(models)
            for h, y in enumerate(humans)
        ]
    )
    human_human = scores(
        [
            (f"human {i} vs human {j}", x, y)
            for i, x in enumerate(humans)
            for j, y in enumerate(humans)
            if i != j
        ]
    )
    if set(model_human) != set(human_human):
        raise ValueError(
            f"metric returned {sorted(map(str, model_human))} for model pairs but "
            f"{sorted(map(str, human_human))} for human pairs; give every scanpath the same "
            "columns (e.g. all with durations)"
        )
    results = {}
    for key in model_human:
        kl, edges = _histogram_kl(human_human[key], model_human[key], bins, value_range, smoothing)
        results[key] = HumanConsistency(model_human[key], human_human[key], kl, edges)
    return results[None] if None in results else results
