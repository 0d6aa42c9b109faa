"""The glimpse sensor of the recurrent attention model (Mnih et al. 2014, "Recurrent Models
of Visual Attention", section 3.1).

At location ``l`` the retina extracts ``k`` square patches centred on ``l``: the first
``g x g`` pixels, each next one ``scale`` times wider, every patch resized to ``g x g``
(area averaging), so the glimpse has high resolution at its centre and a coarse view
around it. Pixels outside the image read as zero.

Locations are in [-1, 1]^2 as ``l = (x, y)``: ``x`` runs left to right over the image
width, ``y`` top to bottom over its height, and (0, 0) is the image centre. The batch is
extracted with tensor indexing: no Python loop over images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Retina:
    """``k`` patches of ``g x g`` pixels, each ``scale`` times wider than the one before.

    Arguments:
        g: side of the first (finest) patch and of every returned patch, in pixels.
        k: number of patches (scales).
        scale: width ratio between consecutive patches.
    """

    g: int = 8
    k: int = 1
    scale: float = 2.0

    def __post_init__(self) -> None:
        if isinstance(self.g, bool) or not isinstance(self.g, int) or self.g < 1:
            raise ValueError(f"retina g must be a positive int (patch side in pixels), got {self.g!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"retina k must be a positive int (number of patches), got {self.k!r}")
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and self.scale >= 1):
            raise ValueError(f"retina scale must be a finite number >= 1, got {self.scale!r}")

    @property
    def sizes(self) -> list[int]:
        """Side of each patch on the image, in pixels, finest first."""
        return [int(round(self.g * self.scale**i)) for i in range(self.k)]

    @property
    def glimpse_size(self) -> int:
        """Number of values in one flattened glimpse: k * g * g."""
        return self.k * self.g * self.g

    @property
    def padding(self) -> int:
        """Zero border that keeps every patch inside the padded image for any l in [-1, 1]^2."""
        return self.sizes[-1] // 2 + 1

    def pad(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, H, W) with the zero border :meth:`extract` reads fine patches from."""
        p = self.padding
        return F.pad(images, (p, p, p, p))

    def corners(self, locations: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Top-left pixel (row, col) of every patch: (N, k, 2) long, in image coordinates."""
        sizes = torch.tensor(self.sizes, device=locations.device, dtype=locations.dtype)
        cx = (locations[:, 0:1] + 1.0) * (0.5 * width)
        cy = (locations[:, 1:2] + 1.0) * (0.5 * height)
        top = torch.floor(cy - sizes / 2 + 0.5).long()
        left = torch.floor(cx - sizes / 2 + 0.5).long()
        return torch.stack([top, left], dim=-1)

    def extract(
        self,
        padded: torch.Tensor,
        table: torch.Tensor,
        locations: torch.Tensor,
        index: torch.Tensor | None = None,
        table_scale: float = 1.0,
    ) -> torch.Tensor:
        """Glimpses (M, k, g, g) of images given padded (:meth:`pad`) and as summed-area tables.

        ``padded`` (N, H + 2p, W + 2p) and ``table`` (N, H + 1, W + 1) (see
        :func:`summed_area_table`) describe N images; ``index`` (M,) picks the images to look
        at (default: all) and ``locations`` (M, 2) where. Patches of the first size are
        gathered pixel by pixel; each coarser one costs a gather of (g + 1)^2 table entries,
        since the mean over a box is four table lookups (Crow 1984). ``table_scale``
        multiplies the box sums (a table of byte values gives exact float32 sums).
        """
        n, g, p = locations.shape[0], self.g, self.padding
        height, width = table.shape[1] - 1, table.shape[2] - 1
        device = padded.device
        images = torch.arange(n, device=device) if index is None else index
        batch = images[:, None, None]
        corners = self.corners(locations, height, width)
        patches = []
        for i, size in enumerate(self.sizes):
            top, left = corners[:, i, 0, None], corners[:, i, 1, None]
            if size % g == 0 and size > g:
                r = size // g
                edges = torch.arange(0, size + 1, r, device=device)
                rows = (top + edges).clamp_(0, height)[:, :, None]
                cols = (left + edges).clamp_(0, width)[:, None, :]
                s = table[batch, rows, cols]
                box = s[:, 1:, 1:] - s[:, :-1, 1:] - s[:, 1:, :-1] + s[:, :-1, :-1]
                patch = box.to(padded.dtype) * (table_scale / (r * r))
            else:
                offsets = torch.arange(size, device=device)
                rows = (top + p + offsets)[:, :, None]
                cols = (left + p + offsets)[:, None, :]
                patch = padded[batch, rows, cols]
                if size != g:
                    patch = F.adaptive_avg_pool2d(patch[:, None], g)[:, 0]
            patches.append(patch)
        return torch.stack(patches, dim=1)

    def __call__(self, images: torch.Tensor, locations: torch.Tensor) -> torch.Tensor:
        """Glimpses (N, k, g, g) of images (N, H, W) at locations (N, 2) in [-1, 1]^2."""
        if images.ndim != 3:
            raise ValueError(f"images must have shape (N, H, W), got {tuple(images.shape)}")
        if locations.shape != (images.shape[0], 2):
            raise ValueError(
                f"locations must have shape ({images.shape[0]}, 2), got {tuple(locations.shape)}"
            )
        table = summed_area_table(images.to(torch.float64))
        return self.extract(self.pad(images), table, locations.to(images.dtype))


def summed_area_table(images: torch.Tensor) -> torch.Tensor:
    """Tables (N, H + 1, W + 1) whose entry (i, j) is the sum of image[:i, :j]."""
    return F.pad(images.cumsum(1).cumsum(2), (1, 0, 1, 0))
