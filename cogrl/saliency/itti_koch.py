"""Itti, Koch & Niebur (1998), "A model of saliency-based visual attention for rapid scene
analysis" (IEEE PAMI 20(11)): the centre-surround saliency map.

Pipeline, in the paper's notation (section 2):

1. Dyadic Gaussian pyramids ``sigma = 0..8`` of the image (Burt-Adelson 5-tap filter; level
   ``sigma`` has ``1 / 2^sigma`` of the input's width and height).
2. Features at every level: intensity ``I = (r + g + b) / 3``; the broadly tuned colour
   channels ``R = r - (g + b)/2``, ``G = g - (r + b)/2``, ``B = b - (r + g)/2``,
   ``Y = (r + g)/2 - |r - g|/2 - b`` (negative values set to zero) from r, g, b divided by
   I where I exceeds a tenth of its maximum over the image (zero elsewhere, where hue is not
   perceivable); orientation ``O(sigma, theta)`` as the energy of a quadrature pair of Gabor
   filters on ``I(sigma)`` at theta in {0, 45, 90, 135} degrees.
3. Centre-surround differences ``|F(c) (-) F(s)|`` (the surround interpolated to the
   centre's scale) at centres c in {2, 3, 4} and surrounds s = c + delta, delta in {3, 4}:
   6 intensity, 12 colour (red/green and blue/yellow double opponency) and 24 orientation
   feature maps.
4. The map normalisation N(.) on each feature map, across-scale addition at scale 4 into the
   conspicuity maps ``I-bar``, ``C-bar`` and ``O-bar`` (``O-bar`` sums ``N`` of the
   per-orientation sums), and ``S = (N(I-bar) + N(C-bar) + N(O-bar)) / 3``.

Choices the paper leaves open, as made here:

- Double opponency. The paper writes ``RG(c, s) = |(R(c) - G(c)) (-) (G(s) - R(s))|``; read
  literally, ``(-)`` of the opposite pair *adds* centre and surround. The cells it describes
  (excited by red and inhibited by green in the centre, the converse in the surround) respond
  to the *difference* of the opponent signal between centre and surround, which is what is
  computed: ``|(R - G)(c) - (R - G)(s)|``, and the same for B - Y (as in Walther & Koch's
  SaliencyToolbox and most reimplementations).
- N(.): each map is scaled to [0, M] with M = 1 (from its minimum to its maximum), then
  multiplied by ``(M - m)^2``, m the mean of its *other* local maxima. A local maximum is a
  pixel not below its 8 neighbours (a flat top counts once: strictly above the neighbours
  earlier in raster order) and at least M / 10, the threshold of Itti's own implementation
  (iNVT), so that the noise floor's ripples do not count as peaks. A map that is constant
  (up to round-off, a span below 1e-5) becomes zero, so a blank image has zero saliency.
- Gabor filters: wavelength 5 pixels, isotropic Gaussian envelope of sigma 2.5 pixels (about
  one octave of bandwidth), the even filter made zero-mean, applied at each pyramid level.

The map is computed at scale 4 (1/16 of the input's width; 50 x 38 for an 800 x 600 image,
as in the paper) and resized back to the input's resolution. Each pyramid level halves the
size, rounding up, so a level past the image's size is a single pixel (the image's mean);
images must be at least 128 x 128, so that the map at scale 4 is at least 8 x 8. The
model's scales are the paper's, made for images of about 640 x 480: on a much smaller
image, every feature is coarser than the surrounds are wide.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from cogrl.saliency._image import (
    check_images,
    intensity,
    pyramid_reduce,
    resize,
    working_dtype,
)

__all__ = ["itti_koch", "map_normalization"]

CENTERS = (2, 3, 4)  # c
DELTAS = (3, 4)  # s = c + delta
LEVELS = 9  # sigma = 0..8
MAP_LEVEL = 4  # the scale the conspicuity and saliency maps live at
ORIENTATIONS = (0.0, 45.0, 90.0, 135.0)  # degrees
GABOR_WAVELENGTH = 5.0
GABOR_SIGMA = 2.5
HUE_THRESHOLD = 0.1  # colour is computed where I > HUE_THRESHOLD * max(I)
LOCAL_MAX_THRESHOLD = 0.1  # local maxima below M / 10 are not peaks (iNVT)
# A map whose values span less than this is flat: the features are on the scale of pixel
# values in [0, 1], and such a span (a 400th of an 8-bit grey level) is round-off, which N(.)
# would otherwise stretch to full range (a blank image in float64 would get "salient" spots).
FLAT_SPAN = 1e-5
# The saliency map lives at scale 4; below 8 x 8 pixels there it has no centre and surround
# left to speak of. (Levels past the image's size are 1 pixel: the image's mean.)
MIN_SIZE = 8 * 2**MAP_LEVEL

# Channels of the feature stack at every level: I, R-G, B-Y, then one per orientation.
_INTENSITY, _RG, _BY, _ORIENTATION = 0, 1, 2, 3
_CHANNELS = 3 + len(ORIENTATIONS)


def itti_koch(images: torch.Tensor) -> torch.Tensor:
    """Itti-Koch saliency maps ``S = (N(I-bar) + N(C-bar) + N(O-bar)) / 3``.

    Arguments:
        images: (B, 3, H, W) RGB or (B, 1, H, W) grey floats in [0, 1], H and W >= 128
            (grey images have no colour, so their colour conspicuity is zero).

    Returns:
        (B, H, W) non-negative maps (at most 1) on the images' device, in their float dtype.
    """
    rgb = check_images(images, "itti_koch", min_height=MIN_SIZE, min_width=MIN_SIZE)
    height, width = rgb.shape[-2:]
    x = rgb.to(working_dtype(rgb.dtype))

    # 1-2. Pyramid of the image, features at the levels the differences use (2..8).
    features: dict[int, torch.Tensor] = {}
    for level in range(1, LEVELS):
        x = pyramid_reduce(x)
        if level >= min(CENTERS):
            features[level] = _features(x)

    # 3-4. Centre-surround maps, normalised, summed across scales at scale 4 per channel.
    size4 = features[MAP_LEVEL].shape[-2:]
    summed = None
    for c in CENTERS:
        center = features[c]
        maps = [(center - resize(features[c + d], *center.shape[-2:])).abs() for d in DELTAS]
        normalised = map_normalization(torch.cat(maps, dim=1))
        at4 = resize(normalised, *size4).view(-1, len(DELTAS), _CHANNELS, *size4).sum(dim=1)
        summed = at4 if summed is None else summed + at4

    intensity_bar = summed[:, _INTENSITY : _INTENSITY + 1]
    color_bar = summed[:, _RG : _RG + 1] + summed[:, _BY : _BY + 1]
    orientation_bar = map_normalization(summed[:, _ORIENTATION:]).sum(dim=1, keepdim=True)
    conspicuity = torch.cat([intensity_bar, color_bar, orientation_bar], dim=1)
    saliency = map_normalization(conspicuity).mean(dim=1, keepdim=True)
    return resize(saliency, height, width)[:, 0].to(images.dtype)


def _features(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, h, w) one pyramid level -> (B, 7, h, w): I, R - G, B - Y, O(theta) x 4."""
    r, g, b = rgb.unbind(dim=1)
    i = intensity(rgb)[:, 0]
    # Hue is only defined where there is enough light: r, g, b are divided by I above a tenth
    # of the image's maximum intensity, and are zero elsewhere.
    lit = i > HUE_THRESHOLD * i.amax(dim=(-2, -1), keepdim=True)
    scale = torch.where(lit, 1.0 / torch.where(lit, i, torch.ones_like(i)), torch.zeros_like(i))
    r, g, b = r * scale, g * scale, b * scale
    red = (r - (g + b) / 2).clamp_min(0)
    green = (g - (r + b) / 2).clamp_min(0)
    blue = (b - (r + g) / 2).clamp_min(0)
    yellow = ((r + g) / 2 - (r - g).abs() / 2 - b).clamp_min(0)
    i = i.unsqueeze(1)
    orientation = _gabor_energy(i)
    return torch.cat([i, (red - green).unsqueeze(1), (blue - yellow).unsqueeze(1), orientation], 1)


def _gabor_energy(i: torch.Tensor) -> torch.Tensor:
    """Oriented energy ``sqrt(even^2 + odd^2)`` of a quadrature Gabor pair per orientation:
    (B, 1, h, w) -> (B, 4, h, w)."""
    bank = torch.tensor(_gabor_bank(), dtype=i.dtype, device=i.device)
    radius = bank.shape[-1] // 2
    padded = F.pad(i, (radius, radius, radius, radius), mode="replicate")
    responses = F.conv2d(padded, bank)  # (B, 2 * orientations, h, w): even, odd, even, ...
    even, odd = responses[:, 0::2], responses[:, 1::2]
    return torch.sqrt(even * even + odd * odd)


@functools.cache
def _gabor_bank() -> list:
    """Weights (2 * orientations, 1, k, k) as nested lists: even and odd filters per theta.

    theta is the preferred bar orientation, anticlockwise from horizontal (image rows grow
    downwards, so y = -row); the carrier runs across the bar. Both filters are divided by the
    envelope's sum so that their energies compare; the even one is made zero-mean so that a
    uniform region gives no orientation response.
    """
    radius = math.ceil(3 * GABOR_SIGMA)
    coords = torch.arange(-radius, radius + 1, dtype=torch.float64)
    y, x = -coords[:, None], coords[None, :]
    envelope = torch.exp(-(x**2 + y**2) / (2 * GABOR_SIGMA**2))
    filters = []
    for theta in ORIENTATIONS:
        t = math.radians(theta)
        across = -x * math.sin(t) + y * math.cos(t)
        phase = 2 * math.pi * across / GABOR_WAVELENGTH
        even = envelope * torch.cos(phase)
        even = even - envelope * (even.sum() / envelope.sum())
        odd = envelope * torch.sin(phase)
        filters += [even / envelope.sum(), odd / envelope.sum()]
    return torch.stack(filters).unsqueeze(1).tolist()


def map_normalization(maps: torch.Tensor) -> torch.Tensor:
    """Itti-Koch's N(.) on each map of (B, C, h, w): scale to [0, 1], then multiply by
    ``(1 - m)^2`` with m the mean of the map's other local maxima (at least 1/10), so that a
    map with one strong peak is promoted and a map with many comparable peaks suppressed."""
    low = maps.amin(dim=(-2, -1), keepdim=True)
    span = maps.amax(dim=(-2, -1), keepdim=True) - low
    flat = span <= FLAT_SPAN
    scaled = torch.where(flat, torch.zeros_like(maps), (maps - low) / torch.where(flat, 1, span))
    peaks = _local_maxima(scaled) & (scaled >= LOCAL_MAX_THRESHOLD)
    count = peaks.sum(dim=(-2, -1), keepdim=True)
    total = (scaled * peaks).sum(dim=(-2, -1), keepdim=True)
    # The global maximum (exactly 1) is one of the peaks; m averages the others.
    others = count - 1
    mean_others = torch.where(others > 0, (total - 1) / others.clamp_min(1), 0)
    return scaled * (1 - mean_others) ** 2


def _local_maxima(x: torch.Tensor) -> torch.Tensor:
    """Pixels of (..., h, w) not below any of their 8 neighbours and strictly above those
    earlier in raster order, so that a flat top is one maximum, not one per pixel."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1), value=-math.inf)

    def neighbour(dy: int, dx: int) -> torch.Tensor:
        return padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    peak = torch.ones_like(x, dtype=torch.bool)
    for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1)):
        peak &= x > neighbour(dy, dx)
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        peak &= x >= neighbour(dy, dx)
    return peak
