"""Bottom-up saliency models: where an image draws the eye before any task does.

Every model takes a batch of images ``(B, 3, H, W)`` (or grey ``(B, 1, H, W)``), floats in
[0, 1] on any device, and returns ``(B, H, W)`` non-negative maps at the images' resolution,
on their device and in their float dtype, computed as tensor operations over the whole batch.

- :func:`itti_koch`: Itti, Koch & Niebur (1998), centre-surround differences of intensity,
  colour opponency and orientation across a Gaussian pyramid, ``S = (N(I) + N(C) + N(O))/3``.
- :func:`spectral_residual`: Hou & Zhang (2007), what the log amplitude spectrum holds beyond
  its local average.
- :func:`site_entropy_rate`: Wang, Wang, Huang & Gao (2010), the entropy rate of random walks
  on the sub-bands of a learned sparse basis, per site.
- :func:`center_bias`: a Gaussian on the image centre, the baseline a model must beat.

:func:`winner_take_all` turns maps into Itti and Koch's scanpath: the maximum, then the
next with inhibition of return around each one fixated.

``MODELS`` maps each name to its function with default settings, ``f(images) -> maps``, for
code that chooses a model by name (the scanpath environment, the baselines, the CLI).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from cogrl.saliency.center_bias import center_bias
from cogrl.saliency.itti_koch import itti_koch
from cogrl.saliency.site_entropy import site_entropy_rate
from cogrl.saliency.spectral_residual import spectral_residual
from cogrl.saliency.winner_take_all import winner_take_all

__all__ = [
    "MODELS",
    "center_bias",
    "itti_koch",
    "site_entropy_rate",
    "spectral_residual",
    "winner_take_all",
]

MODELS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "itti_koch": itti_koch,
    "spectral_residual": spectral_residual,
    "site_entropy_rate": site_entropy_rate,
    "center_bias": center_bias,
}
