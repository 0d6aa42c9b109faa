"""Itti and Koch's winner-take-all scanpath on saliency maps, with inhibition of return."""

from __future__ import annotations

import torch

__all__ = ["winner_take_all"]


def winner_take_all(maps: torch.Tensor, n_fixations: int, radius: float = 1 / 6) -> torch.Tensor:
    """Itti and Koch's (1998) scanpath on saliency maps (B, H, W): fixate the maximum, then
    inhibit a disc of ``radius`` times the smaller side around it (inhibition of return),
    ``n_fixations`` times. Returns (B, n_fixations, 2) locations (x, y) in [-1, 1]."""
    b, h, w = maps.shape
    ys = torch.arange(h, device=maps.device, dtype=maps.dtype)[:, None]
    xs = torch.arange(w, device=maps.device, dtype=maps.dtype)[None, :]
    left = maps.clone()
    floor = left.amin((1, 2), keepdim=True) - 1  # below every value: inhibited
    path = []
    for _ in range(n_fixations):
        flat = left.flatten(1).argmax(1)
        row, col = (flat // w).to(maps.dtype), (flat % w).to(maps.dtype)
        path.append(torch.stack([(col + 0.5) / w * 2 - 1, (row + 0.5) / h * 2 - 1], 1))
        near = (ys - row[:, None, None]) ** 2 + (xs - col[:, None, None]) ** 2
        left = torch.where(near <= (radius * min(h, w)) ** 2, floor, left)
    return torch.stack(path, 1)
