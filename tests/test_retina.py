"""Tests for cogrl.retina: the glimpse sensor against a naive reference implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cogrl.retina import Retina, summed_area_table

CORNER_LOCATIONS = [(-1.0, -1.0), (1.0, 1.0), (-1.0, 1.0), (1.0, -1.0), (0.0, 0.0)]


def naive_glimpses(retina: Retina, images: torch.Tensor, locations: torch.Tensor) -> torch.Tensor:
    """Pad with zeros, slice each size x size patch at its corner, area-average it to g x g."""
    n, height, width = images.shape
    pad = max(retina.sizes) + 2
    padded = F.pad(images.double(), (pad, pad, pad, pad))
    corners = retina.corners(locations, height, width)
    out = torch.zeros(n, retina.k, retina.g, retina.g, dtype=torch.float64)
    for i in range(n):
        for j, size in enumerate(retina.sizes):
            top, left = (int(v) + pad for v in corners[i, j])
            patch = padded[i, top : top + size, left : left + size]
            out[i, j] = F.adaptive_avg_pool2d(patch[None, None], retina.g)[0, 0]
    return out


def byte_images(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Random images whose pixels are multiples of 1/255, as the digit datasets store them."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, height, width), generator=g).float() / 255.0


@pytest.mark.parametrize(
    ("g", "k", "scale", "height", "width"),
    [
        (8, 1, 2.0, 28, 28),  # GlimpseDigits
        (12, 3, 2.0, 60, 60),  # Translated and Cluttered: integer ratios (summed-area path)
        (5, 3, 1.5, 17, 23),  # non-integer ratios, non-square image
        (3, 4, 2.5, 30, 11),  # patches far larger than the image
        (4, 2, 3.0, 9, 9),
        (2, 3, 1.0, 7, 7),  # every patch the same size
        (1, 3, 2.0, 5, 6),
        (6, 2, 1.75, 28, 28),
    ],
)
def test_retina_matches_the_naive_reference(
    g: int, k: int, scale: float, height: int, width: int
) -> None:
    retina = Retina(g, k, scale)
    grid = [-1.0, -0.999, -0.5, 0.0, 0.37, 0.5, 0.999, 1.0]
    locations = torch.tensor(
        CORNER_LOCATIONS + [(x, y) for x in grid for y in grid[::3]], dtype=torch.float32
    )
    images = byte_images(len(locations), height, width, seed=g * 100 + k)
    glimpses = retina(images, locations)
    assert glimpses.shape == (len(locations), k, g, g) and glimpses.dtype == torch.float32
    expected = naive_glimpses(retina, images, locations)
    torch.testing.assert_close(glimpses.double(), expected, atol=1e-6, rtol=0)


@settings(max_examples=40, deadline=None)
@given(
    g=st.integers(1, 8),
    k=st.integers(1, 3),
    scale=st.sampled_from([1.0, 1.3, 1.5, 2.0, 2.5, 3.0]),
    height=st.integers(4, 40),
    width=st.integers(4, 40),
    coords=st.lists(
        st.tuples(st.floats(-1.0, 1.0, width=32), st.floats(-1.0, 1.0, width=32)),
        min_size=1,
        max_size=4,
    ),
    seed=st.integers(0, 1000),
)
def test_retina_matches_the_naive_reference_anywhere(
    g: int, k: int, scale: float, height: int, width: int, coords: list, seed: int
) -> None:
    retina = Retina(g, k, scale)
    locations = torch.tensor(coords, dtype=torch.float32)
    images = byte_images(len(coords), height, width, seed)
    glimpses = retina(images, locations)
    torch.testing.assert_close(
        glimpses.double(), naive_glimpses(retina, images, locations), atol=1e-6, rtol=0
    )
    assert glimpses.min() >= 0.0 and glimpses.max() <= 1.0


@pytest.mark.parametrize(("g", "k", "scale"), [(8, 1, 2.0), (12, 3, 2.0), (5, 2, 1.5)])
def test_patches_are_centred_on_the_location(g: int, k: int, scale: float) -> None:
    retina = Retina(g, k, scale)
    height, width = 28, 40
    locations = torch.tensor(CORNER_LOCATIONS + [(0.3, -0.6)])
    corners = retina.corners(locations, height, width)
    assert corners.shape == (len(locations), k, 2) and corners.dtype == torch.int64
    for i, (x, y) in enumerate(locations.tolist()):
        cx, cy = (x + 1) / 2 * width, (y + 1) / 2 * height
        for j, size in enumerate(retina.sizes):
            top, left = corners[i, j].tolist()
            assert abs(top + size / 2 - cy) <= 0.5
            assert abs(left + size / 2 - cx) <= 0.5


def test_sizes() -> None:
    retina = Retina(12, 3, 2.0)
    assert retina.sizes == [12, 24, 48]
    assert retina.glimpse_size == 3 * 12 * 12
    assert Retina(5, 3, 1.5).sizes == [5, 8, 11]  # rounded widths


def test_centre_glimpse_of_a_centred_digit() -> None:
    # A centred 4 x 4 blob on a 28 x 28 canvas: the centre glimpse shows it in its middle.
    image = torch.zeros(1, 28, 28)
    image[0, 12:16, 12:16] = 1.0
    image[0, 13, 13] = 0.5
    centre = torch.zeros(1, 2)
    fine = Retina(8)(image, centre)[0, 0]
    torch.testing.assert_close(fine, image[0, 10:18, 10:18])
    assert fine[2:6, 2:6].sum() == image.sum()
    # Coarser scales see the same blob, still centred (symmetric up to the off-centre pixel).
    glimpses = Retina(4, 3, 2.0)(image, centre)[0]
    for patch in glimpses:
        mass = patch.sum()
        rows = (patch.sum(1) * torch.arange(4.0)).sum() / mass
        cols = (patch.sum(0) * torch.arange(4.0)).sum() / mass
        assert abs(rows - 1.5) < 0.25 and abs(cols - 1.5) < 0.25
    torch.testing.assert_close(glimpses[2].sum() * 16**2 / 4**2, image.sum())


def test_outside_pixels_read_as_zero() -> None:
    image = torch.ones(1, 10, 10)
    glimpse = Retina(4)(image, torch.tensor([[-1.0, -1.0]]))[0, 0]
    # The patch straddles the top-left corner: only its bottom-right quarter is on the image.
    expected = torch.zeros(4, 4)
    expected[2:, 2:] = 1.0
    torch.testing.assert_close(glimpse, expected)


def test_extract_with_an_index_picks_images() -> None:
    retina = Retina(6, 2, 2.0)
    images = byte_images(5, 20, 20)
    index = torch.tensor([4, 0, 4, 2])
    locations = torch.tensor([[0.1, -0.3], [1.0, 1.0], [-1.0, 0.5], [0.0, 0.0]])
    table = summed_area_table(torch.round(images * 255))
    got = retina.extract(table, locations, index=index, unit=255.0)
    torch.testing.assert_close(got, retina(images[index], locations), atol=1e-6, rtol=0)


def test_summed_area_table() -> None:
    images = byte_images(2, 5, 7)
    table = summed_area_table(images)
    assert table.shape == (2, 6, 8)
    for i, j in [(0, 0), (1, 1), (5, 7), (3, 2)]:
        torch.testing.assert_close(table[:, i, j], images[:, :i, :j].sum((1, 2)))
    # Written into a caller's buffer (as environments do) it gives the same tables.
    out = torch.zeros(2, 6, 8)
    assert summed_area_table(images, out=out) is out
    torch.testing.assert_close(out, table)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"g": 0},
        {"g": -3},
        {"g": 2.5},
        {"g": True},
        {"g": "8"},
        {"k": 0},
        {"k": 1.0},
        {"k": False},
        {"scale": 0.5},
        {"scale": 0},
        {"scale": math.nan},
        {"scale": math.inf},
        {"scale": "2"},
    ],
    ids=repr,
)
def test_bad_retina_arguments_raise(kwargs: dict) -> None:
    ((name, value),) = kwargs.items()
    with pytest.raises(ValueError, match=name) as err:
        Retina(**kwargs)
    assert repr(value) in str(err.value)


def test_bad_call_arguments_raise() -> None:
    retina = Retina(4)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        retina(torch.zeros(2, 1, 8, 8), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        retina(torch.zeros(2, 8, 8), torch.zeros(3, 2))


def test_glimpses_are_a_float32_batch_without_python_loops_over_images() -> None:
    retina = Retina(12, 3, 2.0)
    images = byte_images(256, 60, 60)
    locations = torch.rand(256, 2) * 2 - 1
    glimpses = retina(images, locations)
    assert glimpses.shape == (256, 3, 12, 12)
    np.testing.assert_allclose(
        glimpses[:4].double().numpy(),
        naive_glimpses(retina, images[:4], locations[:4]).numpy(),
        atol=1e-6,
    )


def test_a_retina_wider_than_any_coordinate_is_an_error():
    with pytest.raises(ValueError, match=r"widest patch of about 10\^19.7 pixels"):
        Retina(g=12, k=3, scale=2**31).check_widest()
