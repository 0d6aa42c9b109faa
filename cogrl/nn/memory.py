"""The Neural Turing Machine's memory operations as plain batched functions (Graves, Wayne
and Danihelka 2014, "Neural Turing Machines", section 3), named as in the paper.

Shapes: memory ``M`` (B, N, W) holds N locations of width W; a weighting ``w`` (B, N) over
the locations; keys, erase and add vectors (B, W); scalars (B, 1). Every function also
takes several heads at once, with a head axis after the batch: weightings (B, H, N),
vectors (B, H, W), scalars (B, H, 1), results (B, H, ...). Heads then share the memory
rather than each working on a copy of it, which is what makes many heads and many
environments cheap.

- :func:`read`: ``r = sum_i w(i) M(i)`` (eq. 2)
- :func:`write`: ``M(i) <- M(i) (1 - w(i) e) + w(i) a`` (eqs. 3-4); several write heads
  erase together, then add together (section 3.2): ``M(i) prod_h (1 - w_h(i) e_h) +
  sum_h w_h(i) a_h``
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


def _shape(x: object) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def _check(name: str, x: torch.Tensor, ndims: tuple[int, ...], what: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim not in ndims:
        raise ValueError(f"{name} must be a {what}, got {_shape(x)}")


def _check_memory(memory: torch.Tensor) -> None:
    _check("memory", memory, (3,), "3-d tensor (B, N, W)")


def _check_weighting(name: str, w: torch.Tensor, memory: torch.Tensor) -> None:
    """``w`` is (B, N) or (B, H, N) for ``memory`` (B, N, W)."""
    B, N, _ = memory.shape
    if not (
        isinstance(w, torch.Tensor) and w.ndim in (2, 3) and (w.shape[0], w.shape[-1]) == (B, N)
    ):
        raise ValueError(
            f"{name} {_shape(w)} must be (B, N) = {(B, N)} or (B, H, N) for memory "
            f"{tuple(memory.shape)}"
        )


def _check_vector(name: str, v: torch.Tensor, memory: torch.Tensor, heads: int | None) -> None:
    """``v`` is (B, W) (``heads`` None) or (B, heads, W)."""
    B, _, W = memory.shape
    expected = (B, W) if heads is None else (B, heads, W)
    if not isinstance(v, torch.Tensor) or tuple(v.shape) != expected:
        what = "(B, W)" if heads is None else "(B, H, W)"
        raise ValueError(
            f"{name} must be {what} = {expected} for memory {tuple(memory.shape)}, got {_shape(v)}"
        )


def _check_scalar(name: str, x: torch.Tensor, like: torch.Tensor) -> None:
    """``x`` is (B, 1) for (B, ...) rows of ``like`` with one head, (B, H, 1) with H."""
    expected = (*like.shape[:-1], 1)
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != expected:
        what = "(B, 1)" if len(expected) == 2 else "(B, H, 1)"
        raise ValueError(f"{name} must be {what} = {expected}, got {_shape(x)}")


def _heads(w: torch.Tensor) -> int | None:
    """The number of heads of a weighting, None for a single (B, N) one."""
    return None if w.ndim == 2 else w.shape[1]


def read(memory: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The read vector ``r = sum_i w(i) M(i)``: (B, W), or (B, H, W) for (B, H, N) heads."""
    _check_memory(memory)
    _check_weighting("w", w, memory)
    if w.ndim == 2:
        return torch.bmm(w.unsqueeze(1), memory).squeeze(1)
    return torch.bmm(w, memory)


def write(
    memory: torch.Tensor, w: torch.Tensor, erase: torch.Tensor, add: torch.Tensor
) -> torch.Tensor:
    """The memory after erasing then adding at ``w``: ``M(i) (1 - w(i) e) + w(i) a``.

    With heads, ``w`` (B, H, N), ``erase`` and ``add`` (B, H, W): all erasures multiply,
    then all adds sum (the paper's section 3.2), so the order of the heads does not matter.
    """
    _check_memory(memory)
    _check_weighting("w", w, memory)
    heads = _heads(w)
    _check_vector("erase", erase, memory, heads)
    _check_vector("add", add, memory, heads)
    if heads is None:
        w, erase, add = w.unsqueeze(1), erase.unsqueeze(1), add.unsqueeze(1)
    weights = w.transpose(1, 2)  # (B, N, H)
    if w.shape[1] == 1:
        # M (1 - w e) + w a = M + w (a - e M): the same, in half the passes over memory.
        return torch.addcmul(memory, weights, add - erase * memory)
    keep = (1 - w.unsqueeze(-1) * erase.unsqueeze(2)).prod(dim=1)  # (B, N, W)
    return memory * keep + torch.bmm(weights, add)


def cosine_similarity(memory: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """``K(k, M(i)) = k . M(i) / (|k| |M(i)|)``: (B, N), or (B, H, N) for keys (B, H, W);
    0 where a row or the key is zero (the norms are ``sqrt(|x|^2 + EPS)``, so their
    gradients are finite there too)."""
    _check_memory(memory)
    heads = key.shape[1] if isinstance(key, torch.Tensor) and key.ndim == 3 else None
    _check_vector("key", key, memory, heads)
    keys = key.unsqueeze(1) if heads is None else key  # (B, H, W)
    dot = torch.bmm(keys, memory.transpose(1, 2))  # (B, H, N)
    memory_norm = (torch.linalg.vecdot(memory, memory) + EPS).sqrt().unsqueeze(1)  # (B, 1, N)
    key_norm = (keys.pow(2).sum(-1, keepdim=True) + EPS).sqrt()  # (B, H, 1)
    cosine = dot / (memory_norm * key_norm)
    return cosine.squeeze(1) if heads is None else cosine


def content_address(memory: torch.Tensor, key: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Content-based weighting ``softmax_i(beta K(k, M(i)))``: (B, N) for a key (B, W) and
    key strength ``beta`` (B, 1); (B, H, N) for keys (B, H, W) and strengths (B, H, 1)."""
    cosine = cosine_similarity(memory, key)
    _check_scalar("beta", beta, cosine)
    return torch.softmax(beta * cosine, dim=-1)


def interpolate(w_content: torch.Tensor, w_prev: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """``g w_c + (1 - g) w_prev``: the interpolation gate ``g`` (B, 1) or (B, H, 1), in
    [0, 1], chooses between the content weighting and the previous step's weighting."""
    _check("w_content", w_content, (2, 3), "tensor (B, N) or (B, H, N)")
    if not isinstance(w_prev, torch.Tensor) or w_prev.shape != w_content.shape:
        raise ValueError(
            f"w_prev {_shape(w_prev)} must have w_content's shape {tuple(w_content.shape)}"
        )
    _check_scalar("gate", gate, w_content)
    return torch.lerp(w_prev, w_content, gate)


def shift(w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Circular convolution ``w~(i) = sum_j w(j) s(i - j)``: ``s`` (B, 2k + 1), or
    (B, H, 2k + 1) for weightings (B, H, N), weights the shifts ``-k, ..., k`` in that
    order (index ``d + k`` holds shift ``d``; a positive shift moves the weighting forward,
    to higher locations)."""
    _check("w", w, (2, 3), "tensor (B, N) or (B, H, N)")
    _check("s", s, (w.ndim,), "tensor " + ("(B, 2k + 1)" if w.ndim == 2 else "(B, H, 2k + 1)"))
    if s.shape[:-1] != w.shape[:-1] or s.shape[-1] % 2 == 0:
        raise ValueError(
            f"s must be {(*w.shape[:-1], '2k + 1')} for w {tuple(w.shape)}, with an odd "
            f"number of shifts, got {tuple(s.shape)}"
        )
    k = s.shape[-1] // 2
    # torch.roll(w, d)[i] = w[i - d], weighted by s(d).
    rolled = torch.stack([torch.roll(w, d, dims=-1) for d in range(-k, k + 1)], dim=-1)
    return (rolled * s.unsqueeze(-2)).sum(-1)


def sharpen(w: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``w^gamma / sum w^gamma`` with ``gamma`` (B, 1) or (B, H, 1), the paper's
    ``gamma >= 1``. Powers are of ``w + EPS``, so a zero weight (whose power has an
    infinite derivative for gamma below 1) and an all-zero weighting (made uniform) stay
    finite in value and gradient."""
    _check("w", w, (2, 3), "tensor (B, N) or (B, H, N)")
    _check_scalar("gamma", gamma, w)
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
    """One head's weighting (section 3.3, figure 2), or H heads' at once: content
    addressing with ``key`` and ``beta``, interpolation with ``w_prev`` by ``gate``, the
    shift ``s``, sharpening by ``gamma``."""
    w = content_address(memory, key, beta)
    return sharpen(shift(interpolate(w, w_prev, gate), s), gamma)
