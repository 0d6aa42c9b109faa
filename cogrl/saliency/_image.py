"""What the saliency models share: the input check, the working dtype, intensity, separable
Gaussian smoothing, the Burt-Adelson pyramid step and resizing.

Every function takes and returns batched ``(N, C, H, W)`` tensors and runs as tensor ops on
the input's device: no loop over the batch.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

# The 5-tap binomial filter of Burt & Adelson's Gaussian pyramid (1983), the one Itti, Koch &
# Niebur (1998) build their dyadic pyramids with.
_BURT_ADELSON = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def check_images(
    images: object,
    model: str,
    *,
    min_height: int = 1,
    min_width: int = 1,
) -> torch.Tensor:
    """Validate a batch of images for ``model`` and return it as ``(B, 3, H, W)``.

    Accepted: a floating torch tensor ``(B, 3, H, W)`` (RGB) or ``(B, 1, H, W)`` (grey,
    repeated to three equal channels, which every model here treats as colourless), finite,
    with values in [0, 1], B >= 1, H >= ``min_height`` and W >= ``min_width``. Anything else
    is a ValueError that names the value and what was expected. The range check reads one
    boolean from the device (a host synchronisation): saliency is computed once per image,
    not inside an environment step.
    """
    expected = f"{model} expects images of shape (B, 3, H, W) or (B, 1, H, W), floats in [0, 1]"
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{expected}; got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{expected}; got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{expected}; got dtype {images.dtype} (divide byte images by 255 first)")
    b, _, h, w = images.shape
    if b < 1:
        raise ValueError(f"{expected}; got an empty batch, shape {tuple(images.shape)}")
    if h < min_height or w < min_width:
        raise ValueError(
            f"{model} needs images at least {min_height} x {min_width} pixels (H x W); "
            f"got {h} x {w}"
        )
    ok = torch.isfinite(images).all() & (images >= 0).all() & (images <= 1).all()
    if not bool(ok):
        finite = images[torch.isfinite(images)]
        if finite.numel() < images.numel():
            raise ValueError(f"{expected}; got NaN or infinite values")
        raise ValueError(
            f"{expected}; got values in [{finite.min().item():.6g}, {finite.max().item():.6g}]"
        )
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def working_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a model computes in: float64 and float32 as given, half precisions in
    float32 (FFTs and long convolutions lose too much in 16 bits; the output is cast back)."""
    return dtype if dtype in (torch.float64, torch.float32) else torch.float32


def intensity(rgb: torch.Tensor) -> torch.Tensor:
    """Itti, Koch & Niebur's intensity ``I = (r + g + b) / 3``: (N, 3, H, W) -> (N, 1, H, W)."""
    return rgb.mean(dim=1, keepdim=True)


@functools.lru_cache(maxsize=64)
def _gaussian_taps(sigma: float, radius: int) -> tuple[float, ...]:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-(x**2) / (2 * sigma**2))
    return tuple((taps / taps.sum()).tolist())


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Smooth every channel of ``x`` (N, C, H, W) with a normalised Gaussian of standard
    deviation ``sigma`` pixels, truncated at 3 sigma; borders replicate the edge pixels, so a
    constant map stays constant and no dark frame is added."""
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.tensor(_gaussian_taps(float(sigma), radius), dtype=x.dtype, device=x.device)
    return separable_conv(x, taps, taps)


def separable_conv(
    x: torch.Tensor, taps_x: torch.Tensor, taps_y: torch.Tensor, *, stride: int = 1
) -> torch.Tensor:
    """Correlate every channel of ``x`` (N, C, H, W) with the outer product of ``taps_y``
    (rows) and ``taps_x`` (columns), both of odd length, borders replicating the edge
    pixels; keeps the size (``stride`` 1) or every ``stride``-th output (ceil(H / stride)
    rows)."""
    n, c, h, w = x.shape
    rx, ry = taps_x.numel() // 2, taps_y.numel() // 2
    # Replicate padding is defined for any width, even one wider than the map.
    flat = F.pad(x.reshape(n * c, 1, h, w), (rx, rx, ry, ry), mode="replicate")
    flat = F.conv2d(flat, taps_x.view(1, 1, 1, -1), stride=(1, stride))
    flat = F.conv2d(flat, taps_y.view(1, 1, -1, 1), stride=(stride, 1))
    return flat.reshape(n, c, flat.shape[-2], flat.shape[-1])


def pyramid_reduce(x: torch.Tensor) -> torch.Tensor:
    """One level up a dyadic Gaussian pyramid (Burt & Adelson 1983): smooth with the 5-tap
    binomial filter and keep every other row and column, (H, W) -> (ceil(H/2), ceil(W/2)).
    The filter is only evaluated where a sample is kept (strided convolution)."""
    taps = torch.tensor(_BURT_ADELSON, dtype=x.dtype, device=x.device)
    return separable_conv(x, taps, taps, stride=2)


def resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize (N, C, H, W) to (N, C, height, width): bilinear, antialiased when shrinking
    (a triangle filter over the covered pixels), so non-negative maps stay non-negative and
    a smaller working image holds no aliasing. The same size returns ``x`` itself."""
    if x.shape[-2:] == (height, width):
        return x
    return F.interpolate(
        x, size=(height, width), mode="bilinear", align_corners=False, antialias=True
    )
