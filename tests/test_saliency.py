"""cogrl.saliency: the contract every model keeps, hand-computed cases, and the pop-out of
an odd item on synthetic search displays (the psychological stimuli of the seed papers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cogrl.saliency import (
    MODELS,
    center_bias,
    itti_koch,
    site_entropy_rate,
    spectral_residual,
)
from cogrl.saliency.itti_koch import map_normalization
from cogrl.saliency.site_entropy import _site_entropy_rate, basis_functions

NAMES = sorted(MODELS)


def natural_like(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Smooth random colour images in [0, 1] with structure at several scales."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(batch, 3, height, width)
    for cells in (4, 16, 64):
        coarse = torch.rand(batch, 3, cells, cells, generator=g)
        out += torch.nn.functional.interpolate(
            coarse, size=(height, width), mode="bilinear", align_corners=False
        )
    return out / 3


# Search displays: a grid of items on grey, one of them (the odd one) differing in one feature.
SIZE, GRID = 512, 5
ODD_POSITIONS = ((1, 3), (2, 2), (3, 1), (0, 0), (4, 2))
BLUE, RED, GREEN = (0.1, 0.1, 0.8), (0.8, 0.1, 0.1), (0.1, 0.8, 0.1)  # equal (r + g + b) / 3


def search_display(kind: str, odd: tuple[int, int], colors=(BLUE, RED)) -> torch.Tensor:
    """(3, SIZE, SIZE): GRID x GRID items; the one at ``odd`` differs by ``kind``:
    ``"color"`` (a disc of colors[0] among discs of colors[1], all of equal intensity),
    ``"orientation"`` (a vertical black bar among horizontal ones) or ``"intensity"`` (a
    white disc among light grey ones)."""
    image = torch.full((3, SIZE, SIZE), 0.5)
    cell = SIZE / GRID
    yy, xx = torch.meshgrid(torch.arange(SIZE) + 0.5, torch.arange(SIZE) + 0.5, indexing="ij")
    for row in range(GRID):
        for col in range(GRID):
            dy, dx = yy - (row + 0.5) * cell, xx - (col + 0.5) * cell
            is_odd = (row, col) == odd
            if kind == "orientation":
                along, across = (dy, dx) if is_odd else (dx, dy)
                mask = (along.abs() <= 0.3 * cell) & (across.abs() <= 0.07 * cell)
                color = (0.0, 0.0, 0.0)
            else:
                mask = dx**2 + dy**2 <= (0.25 * cell) ** 2
                if kind == "color":
                    color = colors[0] if is_odd else colors[1]
                else:
                    color = (1.0,) * 3 if is_odd else (0.7,) * 3
            image[:, mask] = torch.tensor(color)[:, None]
    return image


def assert_pops_out(maps: torch.Tensor, odds: tuple[tuple[int, int], ...]) -> None:
    """In every map the odd item's cell holds the maximum and the highest mean saliency."""
    cell = SIZE // GRID
    for saliency, odd in zip(maps, odds, strict=True):
        row, col = divmod(int(saliency.argmax()), SIZE)
        assert (min(row // cell, GRID - 1), min(col // cell, GRID - 1)) == odd
        means = saliency[: cell * GRID, : cell * GRID].reshape(GRID, cell, GRID, cell)
        means = means.mean(dim=(1, 3)).flatten()
        k = odd[0] * GRID + odd[1]
        assert means[k] > torch.cat([means[:k], means[k + 1 :]]).max(), (odd, means)


# The contract ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_and_values(name):
    model = MODELS[name]
    images = natural_like(2, 256, 288)
    maps = model(images)
    assert maps.shape == (2, 256, 288) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all() and (maps >= 0).all()
    assert maps.amax() > 0
    maps64 = model(images.double())
    assert maps64.dtype == torch.float64
    torch.testing.assert_close(maps64.float(), maps, atol=1e-3 * float(maps.amax()), rtol=1e-3)
    half = model(images.half())  # computed in float32, returned in the input's dtype
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), maps, atol=2e-3 * float(maps.amax()), rtol=1e-2)


@pytest.mark.parametrize("name", NAMES)
def test_grey_images_are_colourless_rgb(name):
    grey = natural_like(2, 256, 256)[:, :1]
    torch.testing.assert_close(MODELS[name](grey), MODELS[name](grey.repeat(1, 3, 1, 1)))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_blank_images_give_finite_non_negative_symmetric_maps(name, value):
    maps = MODELS[name](torch.full((1, 3, 256, 320), value))
    assert torch.isfinite(maps).all() and (maps >= 0).all()
    # Nothing in a blank image tells left from right or top from bottom.
    torch.testing.assert_close(maps, maps.flip(-1), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(maps, maps.flip(-2), atol=1e-6, rtol=1e-5)


def test_blank_images_by_model():
    blank = torch.full((2, 3, 256, 320), 0.5)
    assert (itti_koch(blank) == 0).all()  # no contrast anywhere: every N(.) is zero
    assert (spectral_residual(blank) == 1).all()  # uniform, scaled to maximum 1
    assert (spectral_residual(torch.zeros(1, 3, 64, 64)) == 0).all()
    # SER's graph is finite: sites near the border have fewer neighbours, so a blank image
    # gives a dome, highest at the centre.
    dome = site_entropy_rate(blank)[0]
    assert torch.allclose(dome[127:129, 159:161], dome.max()) and dome[0, 0] < 0.5 * dome.max()


@pytest.mark.parametrize("name", NAMES)
def test_a_batch_gives_the_maps_of_its_images_one_at_a_time(name):
    images = torch.cat([natural_like(2, 256, 288, seed=1), torch.full((1, 3, 256, 288), 0.3)])
    batch = MODELS[name](images)
    alone = torch.cat([MODELS[name](image[None]) for image in images])
    torch.testing.assert_close(batch, alone, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_one_host_read_per_call_for_the_input_check(name, host_reads):
    images = natural_like(1, 256, 256)
    MODELS[name](images)  # learns or builds what is cached (basis, filters) first
    host_reads.clear()
    MODELS[name](images)
    assert host_reads == ["__bool__"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_maps_follow_the_images_device(name):
    images = natural_like(2, 256, 288)
    on_gpu = MODELS[name](images.cuda())
    assert on_gpu.is_cuda and on_gpu.dtype == torch.float32
    cpu = MODELS[name](images)
    torch.testing.assert_close(on_gpu.cpu(), cpu, atol=1e-4 * float(cpu.amax()), rtol=1e-3)


def test_registry_names_the_four_models():
    assert MODELS == {
        "itti_koch": itti_koch,
        "spectral_residual": spectral_residual,
        "site_entropy_rate": site_entropy_rate,
        "center_bias": center_bias,
    }


# Bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "images, match",
    [
        (np.zeros((1, 3, 256, 256), np.float32), r"got ndarray"),
        (torch.zeros(3, 256, 256), r"got shape \(3, 256, 256\)"),
        (torch.zeros(1, 2, 256, 256), r"got shape \(1, 2, 256, 256\)"),
        (torch.zeros(1, 256, 256, 3), r"got shape \(1, 256, 256, 3\)"),
        (torch.zeros(1, 3, 256, 256, dtype=torch.uint8), r"got dtype torch.uint8.*255"),
        (torch.zeros(0, 3, 256, 256), r"empty batch"),
        (torch.full((1, 3, 256, 256), 1.5), r"got values in \[1.5, 1.5\]"),
        (torch.full((1, 3, 256, 256), -0.25), r"got values in \[-0.25, -0.25\]"),
        (torch.full((1, 3, 256, 256), math.nan), r"NaN or infinite"),
    ],
)
def test_bad_images_are_named(name, images, match):
    with pytest.raises(ValueError, match=match):
        MODELS[name](images)


def test_bad_sizes_and_settings_are_named():
    with pytest.raises(
        ValueError, match=r"itti_koch needs images at least 128 x 128.*got 127 x 400"
    ):
        itti_koch(torch.zeros(1, 3, 127, 400))
    with pytest.raises(ValueError, match=r"at least 8 pixels high.*12 x 400.*gives 4"):
        site_entropy_rate(torch.zeros(1, 3, 12, 400))
    with pytest.raises(ValueError, match=r"width must be an int >= 2, got 1"):
        spectral_residual(torch.zeros(1, 3, 64, 64), width=1)
    with pytest.raises(ValueError, match=r"sigma must be a finite number in \[0.0, inf\], got -1"):
        spectral_residual(torch.zeros(1, 3, 64, 64), sigma=-1)
    with pytest.raises(ValueError, match=r"sigma must be a finite number in \(0.0, inf\], got 0"):
        site_entropy_rate(torch.zeros(1, 3, 64, 64), sigma=0)
    with pytest.raises(ValueError, match=r"baseline must be .*got nan"):
        site_entropy_rate(torch.zeros(1, 3, 64, 64), baseline=math.nan)
    with pytest.raises(ValueError, match=r"sigma_y must be .*got -0.1"):
        center_bias(torch.zeros(1, 3, 64, 64), sigma_y=-0.1)


# Pop-out on search displays ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["color", "orientation", "intensity"])
@pytest.mark.parametrize("name", ["itti_koch", "site_entropy_rate"])
def test_the_odd_item_pops_out(name, kind):
    # Colour: a blue disc among red ones of the same intensity, a singleton on an opponent
    # axis the distractors do not drive. (Red among green, both on the one R-G axis, is weak
    # in Itti-Koch: its R-G channel is signed and the centre-surround difference rectified,
    # so red and green discs both give strong responses, and the odd one only wins by the
    # surround's mean; see the next test for SER.)
    displays = torch.stack([search_display(kind, odd) for odd in ODD_POSITIONS])
    assert_pops_out(MODELS[name](displays), ODD_POSITIONS)


def test_site_entropy_rate_tells_red_from_green():
    # ON and OFF sub-bands keep the sign of an opponent filter's response, so a red disc
    # among green ones (equal intensity) still holds the map's maximum and highest mean.
    odds = ((1, 3), (2, 2), (3, 1))
    displays = torch.stack([search_display("color", odd, (RED, GREEN)) for odd in odds])
    assert_pops_out(site_entropy_rate(displays), odds)


def test_spectral_residual_pops_out_by_intensity():
    # Hou & Zhang's model reads intensity only, so an odd colour of equal intensity is
    # invisible to it; and on a regular grid of bars the odd orientation does not stand out
    # either (the lattice's spectral peaks are themselves "residual": measured, every item's
    # mean saliency is within 1% of the others'). Intensity pops out.
    displays = torch.stack([search_display("intensity", odd) for odd in ODD_POSITIONS])
    assert_pops_out(spectral_residual(displays), ODD_POSITIONS)


# Hand-computed cases -----------------------------------------------------------------------


def test_map_normalization_promotes_a_single_peak():
    maps = torch.zeros(3, 1, 7, 7)
    maps[0, 0, 1, 1], maps[0, 0, 5, 5] = 2.0, 1.0  # peaks 1 and 0.5 after scaling
    maps[1, 0, 1:3, 1:3], maps[1, 0, 5, 5] = 4.0, 2.0  # a flat 2 x 2 top counts once
    maps[2] = 3.0  # constant: nothing stands out
    out = map_normalization(maps)
    # m = mean of the other local maxima = 0.5, so the map is scaled by (1 - 0.5)^2.
    assert out[0, 0, 1, 1] == pytest.approx(0.25) and out[0, 0, 5, 5] == pytest.approx(0.125)
    assert out[0].sum() == pytest.approx(0.375)
    assert out[1, 0, 1:3, 1:3].eq(0.25).all() and out[1, 0, 5, 5] == pytest.approx(0.125)
    assert (out[2] == 0).all()
    single = torch.zeros(1, 1, 7, 7)
    single[0, 0, 3, 3] = 5.0
    assert map_normalization(single)[0, 0, 3, 3] == 1.0  # no other peak: (1 - 0)^2


def test_spectral_residual_of_an_impulse_is_the_smoothing_gaussian():
    # An impulse has a flat amplitude spectrum: L = 0 everywhere, so R = L - h * L = 0 and
    # exp(R + iP) is the impulse's own spectrum. The squared inverse is the impulse again;
    # smoothed by g and scaled to maximum 1 it is exp(-d^2 / (2 sigma^2)), truncated at
    # 3 sigma. At the paper's 64-pixel width there is no resizing.
    image = torch.zeros(1, 1, 64, 64, dtype=torch.float64)
    image[0, 0, 32, 32] = 1.0
    saliency = spectral_residual(image, sigma=4.0)[0]
    d = torch.arange(64, dtype=torch.float64) - 32
    g = torch.exp(-(d**2) / (2 * 4.0**2)) * (d.abs() <= 12)
    torch.testing.assert_close(saliency, g[:, None] * g[None, :], atol=1e-9, rtol=1e-9)


def test_spectral_residual_of_a_grating_by_hand():
    # I(x) = c + a cos(2 pi k x / 64): the spectrum has the mean c N at f = 0 and a N / 2 at
    # f = +-k; every other amplitude is (at) the floor, log amplitude Lf. With k >= 2 each of
    # the three sits among 8 floor neighbours (the spectrum wraps around), so
    # R = L - (L + 8 Lf) / 9 = 8/9 (L - Lf), and R_k - R_0 = 8/9 log(a / (2 c)): the inverse
    # transform is (exp(R_0) + 2 exp(R_k) cos(2 pi k x / 64)) / N, whatever the floor.
    c, a, k = 0.5, 0.3, 5
    x = torch.arange(64, dtype=torch.float64)
    image = (c + a * torch.cos(2 * math.pi * k * x / 64)).expand(1, 1, 64, 64)
    rho = (a / (2 * c)) ** (8 / 9)
    expected = ((1 + 2 * rho * torch.cos(2 * math.pi * k * x / 64)) / (1 + 2 * rho)) ** 2
    saliency = spectral_residual(image, sigma=0)[0]  # no smoothing; 64 wide: no resizing
    torch.testing.assert_close(saliency, expected.expand(64, 64), atol=1e-9, rtol=1e-9)
    # Without the residual the map would be the image squared: (1 + 0.6 cos)^2 / 1.6^2.
    assert not torch.allclose(
        saliency[0], ((c + a * torch.cos(2 * math.pi * k * x / 64)) / 0.8) ** 2
    )


def test_center_bias_is_the_gaussian_on_the_image_centre():
    h, w = 51, 101  # odd sizes: pixel (25, 50) has its centre on the image's centre
    bias = center_bias(torch.zeros(2, 3, h, w), sigma_x=0.2, sigma_y=0.1)
    assert bias.shape == (2, h, w)
    assert bias[0, 25, 50] == 1.0 and bias[0].argmax() == 25 * w + 50
    torch.testing.assert_close(bias, bias.flip(-1))
    torch.testing.assert_close(bias, bias.flip(-2))
    # Both sigmas are fractions of the width: 0.2 * 101 = 20.2 px across, 10.1 px down.
    assert bias[0, 25, 50 + 20] == pytest.approx(math.exp(-0.5 * (20 / 20.2) ** 2), rel=1e-6)
    assert bias[0, 25 - 7, 50] == pytest.approx(math.exp(-0.5 * (7 / 10.1) ** 2), rel=1e-6)
    assert bias[1, 40, 9] == pytest.approx(
        math.exp(-0.5 * ((41 / 20.2) ** 2 + (15 / 10.1) ** 2)), rel=1e-6
    )


def test_center_bias_default_is_clarke_and_tatler():
    # Horizontal variance 0.22 and vertical 0.45 x 0.22 with the width spanning [-1, 1]:
    # sigma_x = sqrt(0.22) / 2 and sigma_y = sqrt(0.45 * 0.22) / 2 of the width.
    bias = center_bias(torch.zeros(1, 3, 600, 800, dtype=torch.float64))[0]
    sx, sy = math.sqrt(0.22) / 2 * 800, math.sqrt(0.45 * 0.22) / 2 * 800
    for row, col in ((300, 400), (300, 588), (100, 400), (520, 30)):
        dx, dy = col + 0.5 - 400, row + 0.5 - 300
        expected = math.exp(-0.5 * (dx / sx) ** 2 - 0.5 * (dy / sy) ** 2)
        assert bias[row, col] == pytest.approx(expected, rel=1e-9)


def test_site_entropy_rate_is_the_entropy_rate_of_the_explicit_graph():
    # The closed form (convolutions) against the walk built as an N x N matrix.
    g = torch.Generator().manual_seed(0)
    rate = torch.rand(2, 3, 5, 7, generator=g, dtype=torch.float64) + 0.05
    sigma = 1.5
    rows, cols = torch.meshgrid(torch.arange(5.0), torch.arange(7.0), indexing="ij")
    xy = torch.stack([rows.flatten(), cols.flatten()], dim=1).double()
    spatial = torch.exp(-(torch.cdist(xy, xy) ** 2) / (2 * sigma**2))
    a = rate.reshape(2, 3, 35)
    w = a[..., :, None] * a[..., None, :] * spatial  # w_ij
    p = w / w.sum(-1, keepdim=True)  # P_ij
    pi = w.sum(-1) / w.sum((-2, -1))[..., None]  # pi_i
    torch.testing.assert_close(torch.einsum("bki,bkij->bkj", pi, p), pi)  # pi P = pi
    expected = -(pi * (p * p.log()).sum(-1)).reshape(2, 3, 5, 7)
    torch.testing.assert_close(_site_entropy_rate(rate, sigma), expected, atol=1e-12, rtol=1e-9)


def test_basis_is_learned_once_zero_mean_and_deterministic():
    first = basis_functions()
    assert first.shape == (64, 3, 8, 8)
    assert first.sum(dim=(1, 2, 3)).abs().max() < 1e-5  # a uniform patch gives no response
    assert torch.equal(first, basis_functions())
    assert basis_functions(dtype=torch.float64).dtype == torch.float64
