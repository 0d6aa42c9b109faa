"""Hou & Zhang (CVPR 2007), "Saliency detection: a spectral residual approach".

The log amplitude spectrum of natural images is smooth and alike from image to image (its
1/f shape); what stands out in an image is what its spectrum holds *beyond* that shape. With
``A(f)`` the amplitude and ``P(f)`` the phase of the Fourier transform of the image
(section 3.2, eqs. 5-9):

    L(f) = log A(f)                     log spectrum
    R(f) = L(f) - h_n(f) * L(f)         spectral residual, h_n the n x n mean filter (n = 3)
    S(x) = g(x) * |F^-1[exp(R(f) + i P(f))]|^2,   g a Gaussian (sigma = 8)

As in the paper, the image is first resized to 64 pixels wide (its height keeping the aspect
ratio) and its intensity is used; the map is resized back to the input's resolution.

Choices the paper leaves open, as made here:

- Intensity is the mean of r, g and b (Itti-Koch's I, shared with the other models here).
- The 3 x 3 mean runs over the spectrum as it is periodic (the neighbours of a frequency
  wrap around, as frequencies do).
- Frequencies whose amplitude is at round-off level have no meaningful phase: below
  ``eps * log2(N) * max A`` (eps the dtype's machine epsilon, N the number of pixels: an
  FFT's round-off grows like eps log2 N times the signal) their log amplitude is taken at
  that floor and they add nothing to the inverse transform. So a blank image, whose only
  frequency is the mean, gives a uniform map, not round-off noise.
- The Gaussian is truncated at 3 sigma and repeats the edge values at the borders.
- Each map is divided by its maximum (the authors' code rescales to [0, 1] likewise): the
  squared magnitudes' scale depends on the image size and carries no meaning, and unscaled
  they overflow half precision. An all-black image gives an all-zero map.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cogrl.checks import check_int, check_number
from cogrl.saliency._image import check_images, gaussian_blur, intensity, resize, working_dtype

__all__ = ["spectral_residual"]

WIDTH = 64  # the paper's working width, in pixels
MEAN_FILTER = 3  # n of h_n
SIGMA = 8.0  # the paper's smoothing Gaussian, in working pixels


def spectral_residual(
    images: torch.Tensor, *, width: int = WIDTH, sigma: float = SIGMA
) -> torch.Tensor:
    """Spectral-residual saliency maps (Hou & Zhang 2007).

    Arguments:
        images: (B, 3, H, W) RGB or (B, 1, H, W) grey floats in [0, 1].
        width: working width in pixels (the paper's 64); the height keeps the aspect ratio.
        sigma: standard deviation of the smoothing Gaussian, in working pixels (the paper's
            8; the authors' released code used 2.5); 0 turns smoothing off.

    Returns:
        (B, H, W) maps in [0, 1], each with maximum 1 (0 for an all-black image), on the
        images' device, in their float dtype.
    """
    check_int("width", width, low=2)
    check_number("sigma", sigma)
    rgb = check_images(images, "spectral_residual")
    height_in, width_in = rgb.shape[-2:]
    height = max(1, round(height_in * width / width_in))
    x = resize(intensity(rgb.to(working_dtype(rgb.dtype))), height, width)[:, 0]

    spectrum = torch.fft.fft2(x)
    amplitude = spectrum.abs()
    finfo = torch.finfo(x.dtype)
    round_off = finfo.eps * max(1.0, math.log2(height * width))
    floor = round_off * amplitude.amax(dim=(-2, -1), keepdim=True) + finfo.tiny
    meaningful = amplitude > floor
    log_amplitude = torch.log(torch.maximum(amplitude, floor))  # L(f)
    residual = log_amplitude - _periodic_mean(log_amplitude, MEAN_FILTER)  # R(f)
    # exp(R + iP) = exp(R) * spectrum / A, with no term where the phase P is undefined.
    unit_phase = torch.where(meaningful, spectrum / torch.where(meaningful, amplitude, 1), 0)
    saliency = torch.fft.ifft2(torch.exp(residual) * unit_phase).abs().square()
    saliency = gaussian_blur(saliency.unsqueeze(1), float(sigma))
    peak = saliency.amax(dim=(-2, -1), keepdim=True)
    saliency = saliency / torch.where(peak > 0, peak, 1)
    return resize(saliency, height_in, width_in)[:, 0].to(images.dtype)


def _periodic_mean(x: torch.Tensor, n: int) -> torch.Tensor:
    """The n x n mean of (B, h, w) over a periodic domain (h_n * L on the spectrum)."""
    r = n // 2
    padded = F.pad(x.unsqueeze(1), (r, r, r, r), mode="circular")
    return F.avg_pool2d(padded, n, stride=1)[:, 0]
