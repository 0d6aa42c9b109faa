"""Wang, Wang, Huang & Gao (CVPR 2010), "Measuring visual saliency by site entropy rate".

Saliency as information transmitted between neurons. An image is coded by a set of learned
sparse basis functions (V1-like filters); each basis function gives a *sub-band*: the map of
its responses over the image. In each sub-band the sites (neurons at image locations) form a
fully connected graph, and a random walk on it models signals passing between neurons. A
site's *site entropy rate* (SER) is its share of the walk's entropy rate: how often the walk
is there (the stationary distribution) times how uncertain its next step is (the entropy of
its transition probabilities). Summed over sub-bands, it is the saliency map.

With ``a_i`` the firing rate of site i in one sub-band and ``x_i`` its position, as computed
here:

    w_ij  = a_i a_j exp(-|x_i - x_j|^2 / (2 sigma^2))     edge weight (symmetric)
    P_ij  = w_ij / sum_k w_ik                             transition probability
    pi_i  = sum_j w_ij / sum_kj w_kj                      stationary distribution
    SER_i = -pi_i sum_j P_ij log P_ij                     site entropy rate
    S     = g * sum_k SER^(k)                             saliency (g a Gaussian)

The entropy rate of the walk is ``sum_i SER_i``. Because the weights are symmetric the walk
is reversible, so ``pi`` is the normalised degree (no eigenvector to iterate for), and
because the spatial term is a Gaussian, every sum over j is a convolution: with
``c = G * a``, ``P_ij = a_j g_ij / c_i`` and ``log g_ij = -d_ij^2 / (2 sigma^2)``,

    sum_j P_ij log P_ij = (G * (a log a) - G2 * a) / c - log c,    G2 = G d^2 / (2 sigma^2),

so the fully connected graph (every pair of sites, no truncation) costs a few products with
the 1-D kernels' matrices per sub-band instead of an N x N matrix.

Approximations and choices (the paper's own parameters are not reproduced here):

- Basis functions: 64 colour filters of 8 x 8 pixels, learned once by FastICA
  (scikit-learn, seeded) from 24,000 mean-removed 8 x 8 RGB patches of the natural photos
  scikit-image ships (astronaut, coffee, chelsea, rocket) at two scales; ICA of natural
  patches gives the sparse, localised, oriented and colour-opponent codes the paper learns by
  sparse coding. The filters are made zero-mean, so a uniform region gives no response.
  Learning takes a few seconds and is cached for the process.
- Sub-bands: a filter's signed response is carried by two neurons, ON (its positive part)
  and OFF (its negative part), since firing rates are not negative: 128 sub-bands. Keeping
  the sign this way tells red on grey from green on grey, which a response's magnitude
  alone does not (a red-green filter answers both with the same magnitude).
- Working resolution: the image is resized to 128 pixels wide; the rectified responses are
  pooled over 2 x 2 pixels, so the sites are a 64-wide grid (64 x 48 for a 4:3 image).
- Firing rate ``a = rectified response + a0`` with a baseline ``a0`` (0.05, in units of the
  responses' standard deviation on natural patches): a spontaneous rate that keeps the graph
  connected, so the walk has one stationary distribution, and that stops round-off in blank
  regions from being read as signal.
- ``sigma`` of the edges: 4 sites (1/16 of the map's width); the result is smoothed with a
  Gaussian of 2 sites and resized back to the input's resolution.
- The graph is finite: a site near the border has fewer neighbours, hence a lower degree and
  entropy, so a blank image gives a smooth dome that is highest at the centre.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from cogrl.checks import check_number
from cogrl.saliency._image import check_images, gaussian_blur, resize, working_dtype

__all__ = ["site_entropy_rate", "basis_functions"]

WIDTH = 128  # working image width in pixels
POOL = 2  # sites are POOL x POOL pixels
PATCH = 8  # basis functions are PATCH x PATCH x 3
COMPONENTS = 64  # number of basis functions (each gives an ON and an OFF sub-band)
SIGMA = 4.0  # spatial sigma of the graph's edges, in sites
SMOOTHING = 2.0  # final Gaussian, in sites
BASELINE = 0.05  # spontaneous firing rate a0
# The natural images the basis is learned from and the widths (pixels) they are seen at.
TRAINING_IMAGES = ("astronaut", "coffee", "chelsea", "rocket")
TRAINING_WIDTHS = (WIDTH, 2 * WIDTH)
PATCHES_PER_VIEW = 3000
SEED = 0


def site_entropy_rate(
    images: torch.Tensor,
    *,
    sigma: float = SIGMA,
    baseline: float = BASELINE,
    smoothing: float = SMOOTHING,
) -> torch.Tensor:
    """Site-entropy-rate saliency maps (Wang et al. 2010), summed over the ON and OFF
    sub-bands of the learned basis.

    Arguments:
        images: (B, 3, H, W) RGB or (B, 1, H, W) grey floats in [0, 1]; the working image
            (128 pixels wide, the height keeping the aspect ratio) must be at least 8 pixels
            high.
        sigma: spatial standard deviation of the graph's edge weights, in sites (> 0).
        baseline: spontaneous firing rate a0 added to every rectified response (> 0).
        smoothing: standard deviation of the final Gaussian, in sites (0: none).

    Returns:
        (B, H, W) non-negative maps on the images' device, in their float dtype.
    """
    check_number("sigma", sigma, low_open=True)
    check_number("baseline", baseline, low_open=True)
    check_number("smoothing", smoothing)
    rgb = check_images(images, "site_entropy_rate")
    height_in, width_in = rgb.shape[-2:]
    height = POOL * round(height_in * WIDTH / (POOL * width_in))
    if height < PATCH:
        raise ValueError(
            f"site_entropy_rate works on the image resized to {WIDTH} pixels wide, which must "
            f"be at least {PATCH} pixels high; an image of {height_in} x {width_in} (H x W) "
            f"gives {height}"
        )
    dtype = working_dtype(rgb.dtype)
    x = resize(rgb.to(dtype), height, WIDTH)

    # Sub-bands: the basis functions' responses, as ON and OFF firing rates pooled into sites.
    filters = basis_functions(dtype=dtype, device=x.device)
    padded = F.pad(x, (PATCH // 2 - 1, PATCH // 2, PATCH // 2 - 1, PATCH // 2), mode="replicate")
    responses = F.conv2d(padded, filters)  # (B, K, height, WIDTH)
    on_off = torch.cat([responses.clamp_min(0), (-responses).clamp_min(0)], dim=1)
    rate = F.avg_pool2d(on_off, POOL) + baseline  # a: (B, 2K, h, w)

    ser = _site_entropy_rate(rate, float(sigma)).sum(dim=1, keepdim=True)
    ser = gaussian_blur(ser, float(smoothing))
    return resize(ser, height_in, width_in)[:, 0].to(images.dtype)


def _site_entropy_rate(rate: torch.Tensor, sigma: float) -> torch.Tensor:
    """SER_i = -pi_i sum_j P_ij log P_ij per site of each map of firing rates (B, K, h, w),
    on the fully connected graph with weights a_i a_j exp(-d_ij^2 / (2 sigma^2))."""
    # The spatial kernel factorises over rows and columns: g_ij = gy(rows) gx(columns), and
    # g_ij d_ij^2 / (2 sigma^2) = g2y gx + gy g2x. Each 1-D factor is a dense matrix over
    # every pair of rows (columns) of the map, so "G * a" is gy @ a @ gx: the whole graph,
    # no truncation, as two matrix products.
    h, w = rate.shape[-2:]
    gx, g2x = _pair_kernels(w, sigma, rate)
    gy, g2y = _pair_kernels(h, sigma, rate)
    a = rate
    a_gx = a @ gx
    c = gy @ a_gx  # c_i = sum_j a_j g_ij
    q = gy @ ((a * torch.log(a)) @ gx)  # sum_j g_ij a_j log a_j
    e = gy @ (a @ g2x) + g2y @ a_gx  # sum_j a_j g_ij d_ij^2 / (2 sigma^2)
    # H_i = -sum_j P_ij log P_ij; it is >= 0, up to round-off.
    entropy = (torch.log(c) - (q - e) / c).clamp_min(0)
    degree = a * c  # sum_j w_ij
    pi = degree / degree.sum(dim=(-2, -1), keepdim=True)
    return pi * entropy


def _pair_kernels(n: int, sigma: float, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, n) matrices exp(-d^2 / (2 sigma^2)) and that times d^2 / (2 sigma^2), d = i - j."""
    i = torch.arange(n, dtype=like.dtype, device=like.device)
    d2 = (i[:, None] - i[None, :]) ** 2 / (2 * sigma**2)
    g = torch.exp(-d2)
    return g, g * d2


def basis_functions(
    *, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The learned basis as correlation filters (64, 3, 8, 8), zero-mean, each giving
    unit-variance responses on the natural patches it was learned from."""
    return torch.as_tensor(_learned_filters(), dtype=dtype, device=device)


@functools.cache
def _learned_filters() -> np.ndarray:
    """FastICA on mean-removed 8 x 8 RGB patches of scikit-image's natural photos, learned
    once per process (seeded: the same filters every time on a given machine)."""
    import skimage.data
    from sklearn.decomposition import FastICA

    rng = np.random.default_rng(SEED)
    patches = []
    for name in TRAINING_IMAGES:
        photo = torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1)[None]
        photo = photo.to(torch.float64) / 255
        for width in TRAINING_WIDTHS:
            height = round(photo.shape[-2] * width / photo.shape[-1])
            view = resize(photo, height, width)
            every = F.unfold(view, PATCH)[0].T.numpy()  # (positions, 3 * PATCH * PATCH)
            patches.append(every[rng.choice(len(every), PATCHES_PER_VIEW, replace=False)])
    data = np.concatenate(patches)
    data = data - data.mean(axis=1, keepdims=True)  # the patch's mean (DC) carries no form
    ica = FastICA(n_components=COMPONENTS, whiten="unit-variance", random_state=SEED, max_iter=1000)
    ica.fit(data)
    unmixing = ica.components_  # sources = (patch - mean) @ unmixing.T
    # w . (x - mean(x)) = (w - mean(w)) . x: zero-mean filters apply the DC removal. The
    # average patch ica.mean_ is left out, so a uniform image gives no response at all.
    unmixing = unmixing - unmixing.mean(axis=1, keepdims=True)
    return unmixing.reshape(COMPONENTS, 3, PATCH, PATCH)
