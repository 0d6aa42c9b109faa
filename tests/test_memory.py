"""The NTM's memory operations (cogrl.nn.memory) against hand-computed values, their
numerical safety at the edge cases where literal transcriptions give NaN, and their
errors for misshapen input."""

from __future__ import annotations

import math

import pytest
import torch

from cogrl.nn import memory as ntm


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_read_is_the_weighted_sum_of_rows():
    M = t([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # B=1, N=3, W=2
    w = t([0.5, 0.5, 0.0])
    torch.testing.assert_close(ntm.read(M, w), t([2.0, 3.0]))


def test_write_erases_then_adds_where_the_head_looks():
    M = t([[1.0, 1.0], [1.0, 1.0]])
    w, erase, add = t([1.0, 0.0]), t([1.0, 0.0]), t([0.0, 2.0])
    # Row 0: [1 (1 - 1), 1 (1 - 0)] + [0, 2] = [0, 3]; row 1 is not looked at.
    torch.testing.assert_close(ntm.write(M, w, erase, add), t([[0.0, 3.0], [1.0, 1.0]]))
    half = ntm.write(M, t([0.5, 0.0]), erase, add)  # half a look erases and adds half
    torch.testing.assert_close(half, t([[0.5, 2.0], [1.0, 1.0]]))


def test_content_addressing_is_a_softmax_of_scaled_cosines():
    M = t([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    key = t([2.0, 0.0])  # cosines 1, 0, -1 (the key's and rows' lengths do not matter)
    torch.testing.assert_close(ntm.cosine_similarity(M, key), t([1.0, 0.0, -1.0]))
    w = ntm.content_address(M, key, t([1.0]))
    e = math.e
    torch.testing.assert_close(w, t([e, 1.0, 1 / e]) / (e + 1 + 1 / e))
    sharp = ntm.content_address(M, key, t([50.0]))
    assert sharp[0, 0] > 0.999  # a strong key picks the best match


def test_interpolation_gates_between_content_and_the_previous_weighting():
    wc, wp = t([1.0, 0.0, 0.0]), t([0.0, 0.0, 1.0])
    torch.testing.assert_close(ntm.interpolate(wc, wp, t([1.0])), wc)
    torch.testing.assert_close(ntm.interpolate(wc, wp, t([0.0])), wp)
    torch.testing.assert_close(ntm.interpolate(wc, wp, t([0.25])), t([0.25, 0.0, 0.75]))


def test_shift_is_a_circular_convolution_forward_positive():
    w = t([1.0, 0.0, 0.0, 0.0])
    forward, stay, back = t([0.0, 0.0, 1.0]), t([0.0, 1.0, 0.0]), t([1.0, 0.0, 0.0])
    torch.testing.assert_close(ntm.shift(w, forward), t([0.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(ntm.shift(w, stay), w)
    torch.testing.assert_close(ntm.shift(w, back), t([0.0, 0.0, 0.0, 1.0]))  # wraps around
    # w~(i) = sum_j w(j) s(i - j): a blurred shift of a spread weighting.
    w = t([0.5, 0.5, 0.0, 0.0])
    s = t([0.2, 0.5, 0.3])  # shifts -1, 0, +1
    torch.testing.assert_close(ntm.shift(w, s), t([0.35, 0.4, 0.15, 0.1]))
    five = t([0.0, 0.0, 0.0, 0.0, 1.0])  # shifts -2..2: +2
    torch.testing.assert_close(ntm.shift(t([1.0, 0.0, 0.0, 0.0]), five), t([0, 0, 1.0, 0]))


def test_sharpening_raises_to_gamma_and_renormalises():
    w = t([0.5, 0.25, 0.25])
    torch.testing.assert_close(ntm.sharpen(w, t([2.0])), t([2 / 3, 1 / 6, 1 / 6]))
    torch.testing.assert_close(ntm.sharpen(w, t([1.0])), w)


def test_address_chains_the_four_steps_as_in_the_papers_figure_2():
    torch.manual_seed(0)
    B, N, W = 3, 6, 4
    M, key = torch.randn(B, N, W), torch.randn(B, W)
    w_prev = torch.softmax(torch.randn(B, N), -1)
    beta, gate, gamma = torch.rand(B, 1) * 5, torch.rand(B, 1), 1 + torch.rand(B, 1)
    s = torch.softmax(torch.randn(B, 3), -1)
    w = ntm.address(M, w_prev, key, beta, gate, s, gamma)
    expected = ntm.sharpen(
        ntm.shift(ntm.interpolate(ntm.content_address(M, key, beta), w_prev, gate), s), gamma
    )
    torch.testing.assert_close(w, expected)
    torch.testing.assert_close(w.sum(-1), torch.ones(B))
    assert bool((w >= 0).all())


def finite_grads(*tensors):
    return all(x.grad is not None and bool(torch.isfinite(x.grad).all()) for x in tensors)


def test_zero_memory_and_zero_key_give_a_uniform_weighting_and_finite_gradients():
    M = torch.zeros(2, 5, 3, requires_grad=True)
    key = torch.zeros(2, 3, requires_grad=True)
    beta = torch.full((2, 1), 4.0, requires_grad=True)
    w = ntm.content_address(M, key, beta)
    torch.testing.assert_close(w, torch.full((2, 5), 0.2))
    (w * torch.arange(5.0)).sum().backward()
    assert finite_grads(M, key, beta)


def test_sharpening_is_finite_for_zero_weights_gamma_below_one_and_all_zero_weightings():
    w = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    gamma = torch.tensor([[0.5], [3.0]], requires_grad=True)
    out = ntm.sharpen(w, gamma)
    assert bool(torch.isfinite(out).all())
    torch.testing.assert_close(out.sum(-1), torch.ones(2))
    torch.testing.assert_close(out[1], torch.full((3,), 1 / 3))  # all zero: uniform
    (out * torch.arange(3.0)).sum().backward()
    assert finite_grads(w, gamma)


def test_a_whole_addressing_step_from_a_blank_memory_has_finite_gradients():
    B, N, W = 4, 8, 5
    M = torch.full((B, N, W), 1e-6, requires_grad=True)  # a small constant initialisation
    leaves = [
        torch.zeros(B, N, requires_grad=True),  # w_prev: nothing read yet
        torch.zeros(B, W, requires_grad=True),  # key
        torch.zeros(B, 1, requires_grad=True),  # beta
        torch.zeros(B, 1, requires_grad=True),  # gate
        torch.full((B, 3), 1 / 3, requires_grad=True),  # s
        torch.full((B, 1), 0.5, requires_grad=True),  # gamma below the paper's 1
    ]
    w = ntm.address(M, *leaves)
    r = ntm.read(ntm.write(M, w, torch.ones(B, W), torch.ones(B, W)), w)
    r.sum().backward()
    assert bool(torch.isfinite(w).all()) and bool(torch.isfinite(r).all())
    assert finite_grads(M, *leaves)


def test_several_write_heads_erase_all_then_add_all():
    """The paper's multi-head write (section 3.2): erasures multiply, adds sum (either order)."""
    M = torch.tensor([[[2.0], [4.0]]])  # N = 2, W = 1
    w = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    erase = torch.tensor([[[0.5], [1.0]]])
    add = torch.tensor([[[1.0], [2.0]]])
    # Location 0: 2 (1 - 1/2)(1 - 1/2) + 1 + 1 = 2.5; location 1: 4 (1)(1 - 1/2) + 0 + 1 = 3.
    torch.testing.assert_close(ntm.write(M, w, erase, add), torch.tensor([[[2.5], [3.0]]]))
    swapped = ntm.write(M, w.flip(1), erase.flip(1), add.flip(1))
    torch.testing.assert_close(swapped, torch.tensor([[[2.5], [3.0]]]))
    # One head in the head form is the single-head write (eqs. 3-4).
    one = ntm.write(M, w[:, :1], erase[:, :1], add[:, :1])
    torch.testing.assert_close(one, ntm.write(M, w[:, 0], erase[:, 0], add[:, 0]))


def test_heads_at_once_equal_each_head_alone():
    """(B, H, ...) arguments give what H separate calls give, on one shared memory."""
    g = torch.Generator().manual_seed(0)
    B, H, N, W = 3, 4, 7, 5
    M = torch.randn(B, N, W, generator=g)
    w_prev = torch.softmax(torch.randn(B, H, N, generator=g), -1)
    key = torch.randn(B, H, W, generator=g)
    beta = torch.rand(B, H, 1, generator=g) * 5
    gate = torch.rand(B, H, 1, generator=g)
    s = torch.softmax(torch.randn(B, H, 3, generator=g), -1)
    gamma = 1 + torch.rand(B, H, 1, generator=g) * 3
    together = ntm.address(M, w_prev, key, beta, gate, s, gamma)
    reads = ntm.read(M, together)
    assert together.shape == (B, H, N) and reads.shape == (B, H, W)
    for h in range(H):
        alone = ntm.address(
            M, w_prev[:, h], key[:, h], beta[:, h], gate[:, h], s[:, h], gamma[:, h]
        )
        torch.testing.assert_close(together[:, h], alone)
        torch.testing.assert_close(reads[:, h], ntm.read(M, alone))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ntm.read(torch.zeros(2, 3), torch.zeros(2, 3)), r"memory must be a 3-d"),
        (lambda: ntm.read(torch.zeros(2, 3, 4), torch.zeros(2, 4)), r"w \(2, 4\) must be"),
        (
            lambda: ntm.write(
                torch.zeros(2, 3, 4), torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 4)
            ),
            r"erase must be \(B, W\) = \(2, 4\)",
        ),
        (
            lambda: ntm.content_address(torch.zeros(2, 3, 4), torch.zeros(2, 4), torch.ones(2)),
            r"beta must be \(B, 1\) = \(2, 1\), got \(2,\)",
        ),
        (
            lambda: ntm.shift(torch.zeros(2, 5), torch.zeros(2, 4)),
            r"odd number of shifts, got \(2, 4\)",
        ),
        (
            lambda: ntm.interpolate(torch.zeros(2, 5), torch.zeros(2, 4), torch.zeros(2, 1)),
            r"w_prev \(2, 4\) must have w_content's shape \(2, 5\)",
        ),
    ],
)
def test_misshapen_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
