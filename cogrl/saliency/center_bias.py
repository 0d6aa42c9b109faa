"""The centre bias: people look at the middle of a picture more than at its edges, whatever
it shows (Tatler 2007). A Gaussian centred on the image is the baseline every saliency
benchmark reports next to its models: a model has to beat it to show that it sees the image.

The default spread is Clarke & Tatler's (2014, "Deriving an appropriate baseline for
describing fixation behaviour", Vision Research 102) fit to free viewing of scenes: with the
image's horizontal extent scaled to [-1, 1] (and the vertical one by the same factor), an
anisotropic Gaussian of horizontal variance 0.22 and vertical variance 0.45 x 0.22. As
fractions of the image's *width*: sigma_x = sqrt(0.22) / 2 = 0.2345 and
sigma_y = sqrt(0.45 x 0.22) / 2 = 0.1573.
"""

from __future__ import annotations

import math

import torch

from cogrl.checks import check_number
from cogrl.saliency._image import check_images, working_dtype

__all__ = ["center_bias"]

SIGMA_X = math.sqrt(0.22) / 2  # Clarke & Tatler (2014), as a fraction of the image width
SIGMA_Y = math.sqrt(0.45 * 0.22) / 2


def center_bias(
    images: torch.Tensor, *, sigma_x: float = SIGMA_X, sigma_y: float = SIGMA_Y
) -> torch.Tensor:
    """A Gaussian centred on the image, ``exp(-dx^2 / (2 sx^2) - dy^2 / (2 sy^2))``.

    The image's content is not looked at: only its batch size, height, width, device and
    dtype, so that the baseline has the same call as every model.

    Arguments:
        images: (B, 3, H, W) or (B, 1, H, W) floats in [0, 1].
        sigma_x, sigma_y: standard deviations as fractions of the image *width* (both, so
            that equal values give a circular Gaussian on any aspect ratio); the defaults are
            Clarke & Tatler's (2014) fit to human fixations on scenes.

    Returns:
        (B, H, W) maps, 1 at the image centre (dx, dy measured from pixel centres to the
        point (W/2, H/2)), on the images' device, in their float dtype.
    """
    check_number("sigma_x", sigma_x, low_open=True)
    check_number("sigma_y", sigma_y, low_open=True)
    rgb = check_images(images, "center_bias")
    b, _, h, w = rgb.shape
    dtype = working_dtype(rgb.dtype)
    x = (torch.arange(w, dtype=dtype, device=rgb.device) + 0.5 - w / 2) / (sigma_x * w)
    y = (torch.arange(h, dtype=dtype, device=rgb.device) + 0.5 - h / 2) / (sigma_y * w)
    gaussian = torch.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))
    return gaussian.to(images.dtype).expand(b, h, w).clone()
