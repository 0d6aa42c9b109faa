"""Counter-based random numbers for batched environments.

Every environment in a batched core owns a key (its seed) and an episode counter. The
random numbers of an episode are a hash of (key, episode, draw index), computed for all
environments at once in integer tensor operations. An environment's episodes therefore do
not depend on how many other environments share the batch, nor on the device: a core of
1024 environments reset with seed ``s`` gives environment ``i`` exactly the episodes of a
single environment reset with seed ``s + i`` (the convention of ``gymnasium.vector``).
"""

from __future__ import annotations

import numpy as np
import torch

_MASK32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9
MAX_SEED = 2**62  # seeds lie in [0, MAX_SEED): seed + i for N environments still fits int64


def check_seed(seed: object, name: str = "seed") -> int:
    """``seed`` as a Python int, or a ``ValueError`` naming it and the range [0, 2**62).

    Accepts Python and numpy integers; rejects bools (``True`` is an int to Python, but never
    a meant seed), floats, strings and ``None`` (callers that let ``None`` mean "a fresh
    seed" handle it before calling). Agents check their ``seed=`` with it so that a bad
    seed fails where it is given, with the same message as an environment's ``reset``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"{name} must be an int in [0, 2**62), got {seed!r}")
    value = int(seed)
    if not 0 <= value < MAX_SEED:
        raise ValueError(f"{name} must be an int in [0, 2**62), got {value}")
    return value


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """The 'lowbias32' integer hash (C. Wellons) on int64 tensors holding 32-bit values.

    Products may exceed 2**63 and wrap; the mask keeps the low 32 bits, which wrapping
    leaves exact.
    """
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    x = x ^ (x >> 16)
    return x


class BatchRNG:
    """Per-environment random streams: ``seeds[i]`` and ``episodes[i]`` for each of N envs."""

    def __init__(self, num_envs: int, device: torch.device) -> None:
        self.num_envs = num_envs
        self.device = device
        self.seeds = torch.zeros(num_envs, dtype=torch.int64, device=device)
        self.episodes = torch.zeros(num_envs, dtype=torch.int64, device=device)
        self.seeded = False

    def seed(self, seed: int | None) -> None:
        """Environment i gets seed ``seed + i``; ``None`` draws a fresh seed from the OS.

        Raises ``ValueError`` for a seed :func:`check_seed` rejects.
        """
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(2, np.uint32).view(np.uint64)[0])
            seed %= MAX_SEED
        seed = check_seed(seed)
        self.seeds = seed + torch.arange(self.num_envs, dtype=torch.int64, device=self.device)
        self.episodes.zero_()
        self.seeded = True

    def uniform(self, index: torch.Tensor, n: int, start: int = 0) -> torch.Tensor:
        """``n`` floats in [0, 1) for the current episode of each environment in ``index``.

        Draw j of an episode is the same number whenever it is asked for: a subclass numbers
        its draws (digit, offset, clutter, ...) with ``start`` so that they never overlap.
        """
        seeds = self.seeds[index]
        lo = seeds & _MASK32
        hi = (seeds >> 32) & _MASK32
        h = _mix32(lo ^ _mix32(hi ^ _GOLDEN))
        h = _mix32(h ^ (self.episodes[index] & _MASK32))
        j = start + torch.arange(n, dtype=torch.int64, device=self.device)
        h = _mix32((h[:, None] + (j[None, :] + 1) * _GOLDEN) & _MASK32)
        return (h >> 8).to(torch.float32) * (1.0 / (1 << 24))

    def integers(
        self, index: torch.Tensor, n: int, high: int | torch.Tensor, start: int = 0
    ) -> torch.Tensor:
        """``n`` integers in [0, high) per environment in ``index`` (``high`` may vary per env)."""
        u = self.uniform(index, n, start)
        high_t = torch.as_tensor(high, device=self.device)
        if high_t.ndim == 1:
            high_t = high_t[:, None]
        return torch.minimum((u * high_t).long(), high_t.long() - 1)

    def next_episode(self, index: torch.Tensor) -> None:
        """Advance the episode counter of the environments in ``index``."""
        self.episodes[index] += 1
