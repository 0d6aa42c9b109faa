"""cogrl.metrics: saliency-map and scanpath metrics against hand-computed cases."""

from __future__ import annotations

import functools
import math
import sys

import numpy as np
import pytest
import torch

from cogrl.metrics import (
    MULTIMATCH_DIMENSIONS,
    HumanConsistency,
    auc_borji,
    auc_judd,
    auc_shuffled,
    cc,
    dtw,
    fixation_density,
    human_consistency,
    information_gain,
    kl_divergence,
    multimatch,
    nss,
    scanmatch,
    similarity,
    string_edit_distance,
)

EPS = np.finfo(np.float64).eps

# A 3 x 3 map whose value is its pixel's index, and two fixations, (x=2, y=2) on the value 8
# and (x=0, y=1) on the value 3. Unfixated values: 0, 1, 2, 4, 5, 6, 7.
RAMP = np.arange(9.0).reshape(3, 3)
TWO_FIXATIONS = np.array([[2.0, 2.0], [0.0, 1.0]])


# --- saliency maps: hand-computed values ---


def test_auc_judd_by_hand():
    # Thresholds at the fixated values 8 and 3: t = 8 gives (fpr, tpr) = (0/7, 1/2);
    # t = 3 gives (4/7, 1) (unfixated 4, 5, 6, 7 are >= 3). Trapezoids from (0, 0) to (1, 1):
    # 0 + (1/2 + 1) / 2 * 4/7 + 1 * 3/7 = 6/7.
    assert auc_judd(RAMP, TWO_FIXATIONS, jitter=False) == pytest.approx(6 / 7)
    # Jitter of 1e-7 only breaks ties; this map has none.
    assert auc_judd(RAMP, TWO_FIXATIONS) == pytest.approx(6 / 7)


def test_auc_shuffled_by_hand_and_its_threshold_step():
    # The map scaled to [0, 1] is k / 8: fixations at 1 and 3/8, nonfixations at 5/8 and 0.
    # As many nonfixations as fixations, so every split uses both and the score is exact.
    # Step 0.1: t in 1..0.7 -> (0, 1/2); t in 0.6..0.4 -> (1/2, 1/2); t in 0.3..0.1 -> (1/2, 1);
    # t = 0 -> (1, 1). Area: 1/2 * 1/2 + 1/2 * 1 = 3/4.
    nonfixations = [[2.0, 1.0], [0.0, 0.0]]
    assert auc_shuffled(RAMP, TWO_FIXATIONS, nonfixations) == pytest.approx(0.75)
    # Step 0.5: thresholds 1, 0.5, 0 -> (0, 1/2), (1/2, 1/2), (1, 1): area 1/4 + 3/8 = 5/8;
    # the coarse thresholds cannot tell 3/8 from 0.
    assert auc_shuffled(RAMP, TWO_FIXATIONS, nonfixations, step=0.5) == pytest.approx(0.625)


def test_auc_borji_expectation_by_hand():
    # One fixation on the only salient pixel of a 2 x 2 map. The random negative pixel is
    # that pixel with probability 1/4 (a tie: AUC 1/2), else a 0 (AUC 1): expectation 7/8.
    smap = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert auc_borji(smap, [[0.0, 0.0]], splits=20_000) == pytest.approx(0.875, abs=0.01)
    # Seeded: the same rng gives the same score.
    assert auc_borji(RAMP, TWO_FIXATIONS, rng=3) == auc_borji(RAMP, TWO_FIXATIONS, rng=3)


def test_nss_by_hand_and_each_fixation_counts():
    # mean 4, population std sqrt(60 / 9); z-scores 4 / std and -1 / std; mean 1.5 / std.
    std = math.sqrt(60 / 9)
    assert nss(RAMP, TWO_FIXATIONS) == pytest.approx(1.5 / std)
    # A pixel fixated twice counts twice.
    assert nss(RAMP, [[2, 2], [2, 2], [0, 0]]) == pytest.approx((4 + 4 - 4) / 3 / std)
    # A fractional position counts for the pixel it falls in: (0.99, 1.5) is pixel (1, 0).
    assert nss(RAMP, [[2.7, 2.01], [0.99, 1.5]]) == nss(RAMP, TWO_FIXATIONS)


def test_cc_by_hand():
    # Deviations (-1.5, -0.5, 0.5, 1.5) and (-0.25, -0.25, -0.25, 0.75): covariance sum 1.5,
    # squares 5 and 0.75, so CC = 1.5 / sqrt(3.75) = sqrt(0.6).
    assert cc([[1, 2], [3, 4]], [[0, 0], [0, 1]]) == pytest.approx(math.sqrt(0.6))


def test_kl_divergence_by_hand():
    # Uniform P = 1/4 against Q = (0, 0, 1/2, 1/2): 2 * 1/2 * log(2).
    assert kl_divergence(np.ones((2, 2)), [[0, 0], [1, 1]]) == pytest.approx(math.log(2))
    # P = (1/4, 1/4, 1/2, 0), Q = (0, 1/2, 1/2, 0): 1/2 log 2 + 1/2 log 1.
    assert kl_divergence([[1, 1], [2, 0]], [[0, 1], [1, 0]]) == pytest.approx(math.log(2) / 2)
    # All of Q where P is 0: MIT's eps makes it log(eps + 1 / eps), about 36 nats.
    assert kl_divergence([[1, 0], [0, 0]], [[0, 1], [0, 0]]) == pytest.approx(-math.log(EPS))


def test_similarity_by_hand():
    # [[0, 1], [1, 2]] scaled to [0, 1] and summed to 1: (0, 1/4, 1/4, 1/2); the human map
    # (0, 0, 1/2, 1/2). Sum of minima: 1/4 + 1/2.
    assert similarity([[0, 1], [1, 2]], [[0, 0], [1, 1]]) == pytest.approx(0.75)


def test_information_gain_by_hand():
    # P = (1, 1, 1, 5) / 8 against a uniform baseline 1/4; fixations on 5/8 and 1/8:
    # (log2(2.5) + log2(0.5)) / 2 bits per fixation.
    gain = information_gain([[1, 1], [1, 5]], np.ones((2, 2)), [[1, 1], [0, 0]])
    assert gain == pytest.approx((math.log2(2.5) - 1) / 2)


def test_fixation_density_by_hand():
    # No blur: the normalised histogram, (0.5, 0.9) falling in pixel (0, 0).
    hist = fixation_density([[0, 0], [0.5, 0.9], [1, 1]], (2, 2), sigma=0)
    np.testing.assert_allclose(hist, [[2 / 3, 0], [0, 1 / 3]])
    # A Gaussian of sigma 3 around one fixation: one sigma away is exp(-1/2) of the peak.
    density = fixation_density([[25, 25]], (51, 51), sigma=3)
    assert density.sum() == pytest.approx(1.0)
    assert density[25, 28] / density[25, 25] == pytest.approx(math.exp(-0.5))
    assert density[28, 25] == pytest.approx(density[25, 28])
    # The default blur is one degree of visual angle in OSIE, about 24 pixels.
    wide = fixation_density([[400, 300]], (600, 800))
    assert wide[300, 424] / wide[300, 400] == pytest.approx(math.exp(-0.5), rel=1e-6)


# --- saliency maps: best values and known relations ---


def test_perfect_prediction_gets_the_best_scores():
    fixations = np.array([[10, 10], [40, 12], [25, 40]])
    human = fixation_density(fixations, (50, 50), sigma=2)
    assert auc_judd(human, fixations) == pytest.approx(1.0)
    assert cc(human, human) == pytest.approx(1.0)
    assert kl_divergence(human, human) == pytest.approx(0.0, abs=1e-12)
    assert similarity(human, human) == pytest.approx(1.0)
    assert information_gain(human, human, fixations) == pytest.approx(0.0)
    assert nss(human, fixations) > nss(np.ones((50, 50)), fixations) == 0.0
    # A wrong map scores worse on every metric.
    wrong = fixation_density([[45, 45]], (50, 50), sigma=2)
    assert auc_judd(wrong, fixations) < auc_judd(human, fixations)
    assert cc(wrong, human) < 1 and similarity(wrong, human) < 1
    assert kl_divergence(wrong, human) > 0 and information_gain(wrong, human, fixations) < 0


def test_a_uniform_map_is_at_chance():
    rng = np.random.default_rng(0)
    fixations = rng.uniform(0, 64, size=(50, 2))
    uniform = np.ones((64, 64))
    # Exactly chance without jitter; chance in expectation with it (random tie-breaking).
    assert auc_judd(uniform, fixations, jitter=False) == 0.5
    scores = [auc_judd(uniform, fixations, rng=seed) for seed in range(20)]
    assert np.mean(scores) == pytest.approx(0.5, abs=0.03)
    assert auc_borji(uniform, fixations) == 0.5
    assert nss(uniform, fixations) == 0.0
    assert cc(uniform, fixation_density(fixations, (64, 64), sigma=3)) == 0.0
    assert information_gain(uniform, uniform, fixations) == 0.0


def test_shuffled_auc_discounts_centre_bias():
    # Fixations on this image and on others share one centre bias; a centre-bias map
    # predicts them well above chance by AUC-Borji, but at chance by sAUC.
    rng = np.random.default_rng(1)
    fixations = np.clip(rng.normal([50, 50], 10, size=(400, 2)), 0, 99)
    others = np.clip(rng.normal([50, 50], 10, size=(400, 2)), 0, 99)
    ys, xs = np.mgrid[0:100, 0:100]
    centre = np.exp(-((xs - 50) ** 2 + (ys - 50) ** 2) / (2 * 15**2))
    assert auc_borji(centre, fixations) > 0.75
    assert auc_shuffled(centre, fixations, others) == pytest.approx(0.5, abs=0.06)


def test_torch_and_numpy_inputs_agree():
    rng = np.random.default_rng(2)
    smap = rng.random((20, 30))
    fixations = rng.uniform([0, 0], [30, 20], size=(12, 2))
    others = rng.uniform([0, 0], [30, 20], size=(15, 2))
    human = fixation_density(fixations, (20, 30), sigma=2)
    t = torch.from_numpy
    pairs = [
        (auc_judd(smap, fixations), auc_judd(t(smap), t(fixations))),
        (auc_borji(smap, fixations), auc_borji(t(smap), t(fixations))),
        (auc_shuffled(smap, fixations, others), auc_shuffled(t(smap), t(fixations), t(others))),
        (nss(smap, fixations), nss(t(smap).float(), t(fixations).float())),
        (cc(smap, human), cc(t(smap), t(human))),
        (kl_divergence(smap, human), kl_divergence(t(smap), t(human))),
        (similarity(smap, human), similarity(t(smap), t(human))),
        (information_gain(smap, human, fixations), information_gain(t(smap), human, t(fixations))),
    ]
    for from_numpy, from_torch in pairs:
        assert from_torch == pytest.approx(from_numpy, rel=1e-6)
    np.testing.assert_array_equal(
        fixation_density(t(fixations), (20, 30), 2), fixation_density(fixations, (20, 30), 2)
    )


# --- saliency maps: bad input ---


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: nss(np.ones(9), [[0, 0]]), r"saliency_map must be an \(H, W\) map"),
        (lambda: nss(np.ones((0, 3)), [[0, 0]]), r"saliency_map must be an \(H, W\) map"),
        (lambda: nss([[1.0, np.nan]], [[0, 0]]), r"finite numbers; saliency_map\[0, 1\]"),
        (lambda: nss(RAMP, np.zeros((0, 2))), r"fixations must be a \(K, 2\) array"),
        (lambda: nss(RAMP, [[1, 1, 200]]), r"\(K, 2\).*pass scanpath\[:, :2\]"),
        (lambda: nss(RAMP, [[1, np.inf]]), r"fixations must hold finite numbers"),
        (lambda: nss(RAMP, [[1, 1], [3.0, 0]]), r"fixations\[1\] = \(x=3.0, y=0.0\) is off"),
        (lambda: nss(RAMP, [[-0.1, 0]]), r"expected 0 <= x < 3 and 0 <= y < 3"),
        (lambda: nss(RAMP, "abc"), r"fixations must be an array of real numbers"),
        (lambda: auc_judd(np.ones((1, 2)), [[0, 0], [1, 0]]), r"needs unfixated pixels"),
        (lambda: auc_borji(RAMP, TWO_FIXATIONS, splits=0), r"splits must be an int >= 1"),
        (lambda: auc_borji(RAMP, TWO_FIXATIONS, step=0.0), r"step must be a finite number"),
        (lambda: auc_shuffled(RAMP, TWO_FIXATIONS, [[5, 5]]), r"nonfixations\[0\]"),
        (lambda: cc(RAMP, np.ones((2, 2))), r"human_map must have the saliency map's shape"),
        (lambda: cc(RAMP, -np.ones((3, 3))), r"human_map must be a fixation map"),
        (lambda: cc(RAMP, np.ones((3, 3))), r"human_map is constant"),
        (lambda: similarity(RAMP, np.zeros((3, 3))), r"non-negative with a positive sum"),
        (lambda: kl_divergence(RAMP - 1, np.ones((3, 3))), r"saliency_map must be non-negative"),
        (lambda: information_gain(RAMP, np.ones((2, 2)), TWO_FIXATIONS), r"baseline_map must"),
        (lambda: fixation_density(TWO_FIXATIONS, (3,)), r"shape must be \(height, width\)"),
        (lambda: fixation_density(TWO_FIXATIONS, (3, 3), sigma=-1), r"sigma must be"),
    ],
)
def test_map_metrics_reject_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- scanpaths: hand-computed values ---

# On a 100 x 100 image with a 2 x 2 grid of 50-pixel cells: A visits cells (0, 0), (0, 1);
# B visits (0, 0), (1, 1).
A = [[10, 10, 100], [60, 10, 50]]
B = [[10, 10, 100], [60, 60, 100]]
SHAPE, GRID = (100, 100), (2, 2)


def test_string_edit_distance_by_hand():
    # Letters "01" and "03": one substitution.
    assert string_edit_distance(A, B, SHAPE, GRID) == {"distance": 1.0, "similarity": 0.5}
    assert string_edit_distance(A, A, SHAPE, GRID) == {"distance": 0.0, "similarity": 1.0}
    # One letter more: an insertion, over the longer length 3.
    longer = B + [[90, 90, 100]]
    assert string_edit_distance(A, longer, SHAPE, GRID) == {
        "distance": 2.0,
        "similarity": pytest.approx(1 / 3),
    }
    # Durations play no part.
    assert string_edit_distance(np.array(A)[:, :2], B, SHAPE, GRID)["distance"] == 1.0


def test_scanmatch_by_hand():
    # Threshold 2: substitution 2 - grid distance. Without durations: cells 0, 1 against
    # 0, 3 align as 0-0 (2) and 1-3 (distance 1: score 1), total 3, over 2 * 2 letters.
    assert scanmatch(A, B, SHAPE, GRID, threshold=2, temporal_bin=None) == pytest.approx(0.75)
    # 50 ms bins: A is 0 0 1 (100 ms, 50 ms), B is 0 0 3 3. Best: 0-0, 0-0, 1-3 and one gap
    # (0): 2 + 2 + 1 = 5, over 2 * 4.
    assert scanmatch(A, B, SHAPE, GRID, threshold=2) == pytest.approx(5 / 8)
    # A gap of -1 costs the unmatched 3: 4 / 8.
    assert scanmatch(A, B, SHAPE, GRID, threshold=2, gap=-1) == pytest.approx(0.5)
    assert scanmatch(A, A, SHAPE, GRID) == 1.0
    # Cells farther apart than the threshold score below 0, so gaps win: 0.
    assert scanmatch([[5, 5]], [[95, 95]], SHAPE, GRID, threshold=1, temporal_bin=None) == 0.0


def test_scanmatch_temporal_bins():
    # 75 ms is round(1.5) = 2 bins of 50 ms (halves round up), as is 100 ms: identical.
    assert scanmatch([[10, 10, 75]], [[10, 10, 100]], SHAPE, GRID) == 1.0
    # 2 letters against 1: one match (threshold 3.5) over 3.5 * 2.
    assert scanmatch([[10, 10, 75]], [[10, 10, 50]], SHAPE, GRID) == pytest.approx(0.5)
    # A fixation shorter than half a bin still counts once.
    assert scanmatch([[10, 10, 20]], [[10, 10, 20]], SHAPE, GRID) == 1.0


def test_dtw_by_hand():
    # Matched in order: 3 + 4.
    assert dtw([[0, 0], [10, 0]], [[0, 3], [10, 4]]) == pytest.approx(7.0)
    # The extra fixation (6, 8) is matched to (3, 4), 5 pixels away.
    assert dtw([[0, 0], [3, 4]], [[0, 0], [3, 4], [6, 8]]) == pytest.approx(5.0)
    assert dtw(A, A) == 0.0
    assert dtw(np.array(A)[:, :2], A) == 0.0


def test_multimatch_by_hand():
    # B is A moved by (30, 40) (50 pixels), with durations 100, 200, 400 against 200s. Same
    # saccade vectors: vector, direction and length similarity 1. Position: 1 - 50 / 1000
    # (the 800 x 600 diagonal). Duration: median of |200-100|/200 and 0, 1 - 0.25.
    a = np.array([[100, 100, 200], [300, 100, 200], [300, 300, 200]], dtype=float)
    b = a + [30, 40, 0]
    b[:, 2] = [100, 200, 400]
    expected = {"vector": 1, "direction": 1, "length": 1, "position": 0.95, "duration": 0.75}
    assert multimatch(a, b, (800, 600)) == pytest.approx(expected)
    assert multimatch(a, a, (800, 600)) == pytest.approx(dict.fromkeys(MULTIMATCH_DIMENSIONS, 1))
    # Without durations there is no duration dimension.
    del expected["duration"]
    assert multimatch(a[:, :2], b, (800, 600)) == pytest.approx(expected)
    assert multimatch(torch.from_numpy(a), b, (800, 600))["position"] == pytest.approx(0.95)


def test_multimatch_simplification_merges_saccades():
    # Two 100-pixel rightward saccades around a 50 ms fixation merge into one 200-pixel
    # saccade: then the path matches a single straight 200-pixel saccade in length.
    a = [[100, 100, 200], [200, 100, 50], [300, 100, 200], [300, 300, 200]]
    b = [[100, 100, 200], [300, 100, 200], [300, 300, 200]]
    plain = multimatch(a, b, (800, 600))
    merged = multimatch(
        a, b, (800, 600), simplify=True, direction_threshold=45, duration_threshold=100
    )
    assert plain["length"] < 1
    assert merged == pytest.approx(dict.fromkeys(MULTIMATCH_DIMENSIONS, 1))


def test_multimatch_needs_the_scanpath_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "multimatch_gaze", None)
    with pytest.raises(ImportError, match=r'pip install "cogrl\[scanpath\]"'):
        multimatch(A + [[0, 0, 1]], A + [[0, 0, 1]], (100, 100))


# Reference recursions, one cell at a time, for the vectorised alignments.


def _reference_table(n, m, step, first_row, first_column, best):
    table = np.zeros((n + 1, m + 1))
    table[0, :], table[:, 0] = first_row, first_column
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            table[i, j] = best(step(i, j, table))
    return table[n, m]


def test_alignments_match_a_cell_by_cell_recursion():
    rng = np.random.default_rng(4)
    for _ in range(20):
        a = rng.uniform(0, 100, size=(rng.integers(1, 8), 3)) + [0, 0, 10]
        b = rng.uniform(0, 100, size=(rng.integers(1, 8), 3)) + [0, 0, 10]
        n, m = len(a), len(b)
        cost = np.linalg.norm(a[:, None, :2] - b[None, :, :2], axis=-1)
        infinity_row = np.r_[0, np.full(m, np.inf)]
        infinity_col = np.r_[0, np.full(n, np.inf)]

        def dtw_step(i, j, t, cost=cost):
            c = cost[i - 1, j - 1]
            return [t[i - 1, j - 1] + c, t[i - 1, j] + c, t[i, j - 1] + c]

        assert dtw(a, b) == pytest.approx(
            _reference_table(n, m, dtw_step, infinity_row, infinity_col, min)
        )
        cell = lambda p: (p[:, 1] // 50).astype(int) * 2 + (p[:, 0] // 50).astype(int)  # noqa: E731
        la, lb = cell(a), cell(b)

        def edit_step(i, j, t, la=la, lb=lb):
            return [t[i - 1, j - 1] + (la[i - 1] != lb[j - 1]), t[i - 1, j] + 1, t[i, j - 1] + 1]

        distance = _reference_table(n, m, edit_step, np.arange(m + 1), np.arange(n + 1), min)
        assert string_edit_distance(a, b, SHAPE, GRID)["distance"] == distance
        rows_a, cols_a, rows_b, cols_b = la // 2, la % 2, lb // 2, lb % 2

        def nw_step(i, j, t, gap=-0.5, ra=rows_a, ca=cols_a, rb=rows_b, cb=cols_b):
            d = math.hypot(ra[i - 1] - rb[j - 1], ca[i - 1] - cb[j - 1])
            return [t[i - 1, j - 1] + 2 - d, t[i - 1, j] + gap, t[i, j - 1] + gap]

        score = _reference_table(
            n, m, nw_step, -0.5 * np.arange(m + 1), -0.5 * np.arange(n + 1), max
        )
        assert scanmatch(
            a, b, SHAPE, GRID, threshold=2, gap=-0.5, temporal_bin=None
        ) == pytest.approx(score / (2 * max(n, m)))


# --- the human-consistency protocol ---


def test_human_consistency_by_hand():
    # Humans at x = 0, 10, 20; the model at x = 10; DTW distances. Human-vs-human (both
    # orders): 10, 20, 10, 10, 20, 10; model-vs-human: 10, 0, 10. Two bins over [0, 20]:
    # [0, 10) and [10, 20]: counts (0, 6) and (1, 2); with 0.5 added, P = (0.5, 6.5) / 7 and
    # Q = (1.5, 2.5) / 4.
    humans = [[[0, 0]], [[10, 0]], [[20, 0]]]
    result = human_consistency([[[10, 0]]], humans, dtw, bins=2)
    assert isinstance(result, HumanConsistency)
    np.testing.assert_array_equal(result.model_human, [10, 0, 10])
    np.testing.assert_array_equal(result.human_human, [10, 20, 10, 10, 20, 10])
    np.testing.assert_array_equal(result.bin_edges, [0, 10, 20])
    p, q = np.array([0.5, 6.5]) / 7, np.array([1.5, 2.5]) / 4
    assert result.kl == pytest.approx(float((p * np.log(p / q)).sum()))
    # Scores distributed as the humans' give 0, even when higher on average elsewhere.
    same = human_consistency([[[0, 0]], [[20, 0]]], humans, lambda x, y: 0.5, bins=4)
    assert same.kl == 0.0


def test_human_consistency_with_named_scores():
    humans = [np.array(A), np.array(B), np.array([[90, 90, 100], [10, 90, 100]])]
    sed = functools.partial(string_edit_distance, shape=SHAPE, grid=GRID)
    result = human_consistency([A], humans, sed, value_range=(0, 2))
    assert set(result) == {"distance", "similarity"}
    np.testing.assert_array_equal(result["distance"].model_human, [0, 1, 2])
    assert len(result["similarity"].human_human) == 6
    # Copying one human gives a distance of 0, which no two humans have: the copy's scores
    # are distributed unlike the humans', and it is further from them than a model that is
    # about as far from each human (1 or 2 edits) as they are from each other.
    human_like = human_consistency([[[95, 95], [95, 95]]], humans, sed, value_range=(0, 2))
    np.testing.assert_array_equal(human_like["distance"].model_human, [2, 1, 1])
    assert result["distance"].kl > human_like["distance"].kl


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: human_consistency([A], [B], dtw), r"at least two scanpaths"),
        (lambda: human_consistency([], [A, B], dtw), r"at least one scanpath"),
        (lambda: human_consistency([A], [A, B], lambda x, y: math.nan), r"returned nan for"),
        (lambda: human_consistency([A], [A, B], dtw, value_range=(0, 1)), r"outside value_range"),
        (lambda: human_consistency([A], [A, B], dtw, value_range=(1, 1)), r"low < high"),
        (lambda: human_consistency([A], [A, B], dtw, value_range=("0", 1)), r"low < high"),
        (
            lambda: human_consistency(
                [A, np.array(A)[:, :2]],
                [A, B],
                lambda x, y: {"timed": 1.0} if np.shape(x)[1] == 3 else {"untimed": 1.0},
            ),
            r"every pair must give the same scores",
        ),
        (lambda: human_consistency([A], [A, B], dtw, bins=0), r"bins must be an int >= 1"),
        (
            lambda: human_consistency(
                [np.array(A)[:, :2].tolist() + [[0, 0]]],
                [A + [[0, 0, 1]], B + [[0, 0, 1]]],
                functools.partial(multimatch, screen_size=(100, 100)),
            ),
            r"for model pairs but .* for human pairs",
        ),
    ],
)
def test_human_consistency_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- scanpaths: bad input ---


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dtw(np.zeros((0, 2)), A), r"a must hold at least 1 fixations"),
        (lambda: dtw(np.zeros((2, 4)), A), r"a must be a \(K, 3\) array"),
        (lambda: dtw(A, [[1, np.nan]]), r"b must hold finite numbers"),
        (lambda: dtw(A, [[1, 1, 0]]), r"b\[0\] has duration 0.0 ms"),
        (lambda: string_edit_distance(A, [[100, 5]], SHAPE, GRID), r"b\[0\] = \(x=100.0"),
        (lambda: string_edit_distance(A, B, (100, 0), GRID), r"shape width must be"),
        (lambda: string_edit_distance(A, B, SHAPE, (2,)), r"grid must be \(rows, columns\)"),
        (lambda: scanmatch(np.array(A)[:, :2], B, SHAPE, GRID), r"a has no durations"),
        (lambda: scanmatch(A, B, SHAPE, GRID, threshold=0), r"threshold must be"),
        (lambda: scanmatch(A, B, SHAPE, GRID, gap=1), r"gap must be"),
        (lambda: multimatch(A, B, (100, 100)), r"a must hold at least 3 fixations"),
        (lambda: multimatch(A * 2, B * 2, (600, 800, 3)), r"screen_size must be \(width"),
        (
            lambda: multimatch(A * 2, [[810, 10]] * 3, (800, 60)),
            r"expected 0 <= x < 800 and 0 <= y < 60",
        ),
        (
            lambda: multimatch(A * 2, np.array(B * 2)[:, :2], (100, 100), simplify=True),
            r"needs \(K, 3\) scanpaths with durations",
        ),
    ],
)
def test_scanpath_metrics_reject_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
