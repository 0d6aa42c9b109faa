"""Metrics over saliency maps and scanpaths, scored against human eye movements.

- :mod:`cogrl.metrics.saliency`: a saliency map against human fixations (AUC-Judd,
  AUC-Borji, shuffled AUC, NSS, CC, KL divergence, SIM, information gain) and the human
  fixation map they compare with (:func:`fixation_density`);
- :mod:`cogrl.metrics.scanpath`: a scanpath against a scanpath (MultiMatch, ScanMatch,
  string edit distance, DTW) and the human-consistency protocol
  (:func:`human_consistency`).

Episode metrics of the environments are not here: an environment reports them in its
``info`` and declares them in ``metadata["episode_metrics"]``.
"""

from cogrl.metrics.saliency import (
    OSIE_PIXELS_PER_DEGREE,
    auc_borji,
    auc_judd,
    auc_shuffled,
    cc,
    fixation_density,
    information_gain,
    kl_divergence,
    nss,
    similarity,
)
from cogrl.metrics.scanpath import (
    MULTIMATCH_DIMENSIONS,
    HumanConsistency,
    dtw,
    human_consistency,
    multimatch,
    scanmatch,
    string_edit_distance,
)

__all__ = [
    "MULTIMATCH_DIMENSIONS",
    "OSIE_PIXELS_PER_DEGREE",
    "HumanConsistency",
    "auc_borji",
    "auc_judd",
    "auc_shuffled",
    "cc",
    "dtw",
    "fixation_density",
    "human_consistency",
    "information_gain",
    "kl_divergence",
    "multimatch",
    "nss",
    "scanmatch",
    "similarity",
    "string_edit_distance",
]
