"""The Neural Turing Machine's memory operations as plain batched functions (Graves, Wayne
and Danihelka 2014, "Neural Turing Machines", section 3), named as in the paper.

Shapes: memory ``M`` (B, N, W) holds N locations of width W; a weighting ``w`` (B, N) over
the locations; keys, erase and add vectors (B, W); scalars (B, 1).

- :func:`read`: ``r = sum_i w(i) M(i)`` (eq. 2)
- :func:`write`: ``M(i) <- M(i) (1 - w(i) e) + w(i) a`` (eqs. 3-4)
- :func:`content_address`: ``w_c(i) = softmax_i(beta K(k, M(i)))``, K the cosine (eqs. 5-6)
- :func:`interpolate`: ``w_g = g w_c + (1 - g) w_prev`` (eq. 7)
- :func:`shift`: ``w~(i) = sum_j w(j) s(i - j)``, circular, ``s`` over shifts ``-k..k``
  (eq. 8; a positive shift moves the weighting forward)
- :func:`sharpen`: ``w(i) = w~(i)^gamma / sum_j w~(j)^gamma`` (eq. 9)
- :func:`address`: the whole chain, content -> interpolation -> shift -> sharpening.

They are safe by construction where a literal transcription divides by zero or takes a
power of zero: a zero memory row or key (the cosine is then 0, not NaN), ``gamma`` below 1
or a zero weight in the sharpening, an all-zero weighting; values and gradients stay
finite. The heads that produce ``beta >= 0``, ``g`` in [0, 1], ``s`` on the simplex and
``gamma >= 1`` from a controller's outputs belong to the NTM core.
"""

from __future__ import annotations

import torch

__all__ = [
    "EPS",
    "address",
    "content_address",
    "cosine_similarity",
    "interpolate",
    "read",
    "sharpen",
    "shift",
    "write",
]

#: Keeps norms, powers and normalisations away from zero (and their gradients finite).
EPS = 1e-8


def _check(name: str, x: torch.Tensor, ndim: int, what: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != ndim:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a {ndim}-d tensor {what}, got {shape}")


def _check_memory(memory: torch.Tensor, w: torch.Tensor | None = None) -> None:
    _check("memory", memory, 3, "(B, N, W)")
    if w is not None:
        _check("w", w, 2, "(B, N)")
        if w.shape != memory.shape[:2]:
            raise ValueError(
                f"w {tuple(w.shape)} must be (B, N) = {tuple(memory.shape[:2])} for memory "
                f"{tuple(memory.shape)}"
            )


def _check_vector(name: str, v: torch.Tensor, memory: torch.Tensor) -> None:
    B, _, W = memory.shape
    if not isinstance(v, torch.Tensor) or tuple(v.shape) != (B, W):
        shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
        raise ValueError(
            f"{name} must be (B, W) = {(B, W)} for memory {tuple(memory.shape)}, got {shape}"
        )


def _check_scalar(name: str, x: torch.Tensor, batch: int) -> None:
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != (batch, 1):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be (B, 1) = {(batch, 1)}, got {shape}")


def read(memory: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The read vector ``r = sum_i w(i) M(i)`` (B, W)."""
    _check_memory(memory, w)
    return torch.einsum("bn,bnw->bw", w, memory)


def write(
    memory: torch.Tensor, w: torch.Tensor, erase: torch.Tensor, add: torch.Tensor
) -> torch.Tensor:
    """The memory after erasing then adding at ``w``: ``M(i) (1 - w(i) e) + w(i) a``."""
    _check_memory(memory, w)
    _check_vector("erase", erase, memory)
    _check_vector("add", add, memory)
    weight = w.unsqueeze(-1)  # (B, N, 1)
    return memory * (1 - weight * erase.unsqueeze(1)) + weight * add.unsqueeze(1)


def cosine_similarity(memory: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """``K(k, M(i)) = k . M(i) / (|k| |M(i)|)`` (B, N); 0 where a row or the key is zero
    (the norms are ``sqrt(|x|^2 + EPS)``, so their gradients are finite there too)."""
    _check_memory(memory)
    _check_vector("key", key, memory)
    dot = torch.einsum("bnw,bw->bn", memory, key)
    memory_norm = (memory.pow(2).sum(-1) + EPS).sqrt()
    key_norm = (key.pow(2).sum(-1, keepdim=True) + EPS).sqrt()
    return dot / (memory_norm * key_norm)


def content_address(memory: torch.Tensor, key: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Content-based weighting ``softmax_i(beta K(k, M(i)))`` (B, N); ``beta`` (B, 1) is the
    key strength."""
    _check_memory(memory)
    _check_scalar("beta", beta, memory.shape[0])
    return torch.softmax(beta * cosine_similarity(memory, key), dim=-1)


def interpolate(w_content: torch.Tensor, w_prev: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """``g w_c + (1 - g) w_prev``: the interpolation gate ``g`` (B, 1) in [0, 1] chooses
    between the content weighting and the previous step's weighting."""
    _check("w_content", w_content, 2, "(B, N)")
    if w_prev.shape != w_content.shape:
        raise ValueError(
            f"w_prev {tuple(w_prev.shape)} must have w_content's shape {tuple(w_content.shape)}"
        )
    _check_scalar("gate", gate, w_content.shape[0])
    return gate * w_content + (1 - gate) * w_prev


def shift(w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Circular convolution ``w~(i) = sum_j w(j) s(i - j)``: ``s`` (B, 2k + 1) weights the
    shifts ``-k, ..., k`` in that order (index ``d + k`` holds shift ``d``; a positive shift
    moves the weighting forward, to higher locations)."""
    _check("w", w, 2, "(B, N)")
    _check("s", s, 2, "(B, 2k + 1)")
    if s.shape[0] != w.shape[0] or s.shape[1] % 2 == 0:
        raise ValueError(
            f"s must be (B, 2k + 1) with B = {w.shape[0]} and an odd number of shifts, got "
            f"{tuple(s.shape)}"
        )
    k = s.shape[1] // 2
    # torch.roll(w, d)[i] = w[i - d], weighted by s(d).
    rolled = torch.stack([torch.roll(w, d, dims=-1) for d in range(-k, k + 1)], dim=-1)
    return (rolled * s.unsqueeze(1)).sum(-1)


def sharpen(w: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``w^gamma / sum w^gamma`` with ``gamma`` (B, 1), the paper's ``gamma >= 1``. Powers
    are of ``w + EPS``, so a zero weight (whose power has an infinite derivative for gamma
    below 1) and an all-zero weighting (made uniform) stay finite in value and gradient."""
    _check("w", w, 2, "(B, N)")
    _check_scalar("gamma", gamma, w.shape[0])
    powered = (w + EPS).pow(gamma)
    return powered / powered.sum(-1, keepdim=True)


def address(
    memory: torch.Tensor,
    w_prev: torch.Tensor,
    key: torch.Tensor,
    beta: torch.Tensor,
    gate: torch.Tensor,
    s: torch.Tensor,
    gamma: torch.Tensor,
) -> torch.Tensor:
    """One head's weighting (section 3.3, figure 2): content addressing with ``key`` and
    ``beta``, interpolation with ``w_prev`` by ``gate``, the shift ``s``, sharpening by
    ``gamma``."""
    w = content_address(memory, key, beta)
    return sharpen(shift(interpolate(w, w_prev, gate), s), gamma)
