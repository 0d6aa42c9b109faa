"""The glimpse sensor of the recurrent attention model (Mnih et al. 2014, "Recurrent Models
of Visual Attention", section 3.1).

At location ``l`` the retina extracts ``k`` square patches centred on ``l``: the first
``g x g`` pixels, each next one ``scale`` times wider, every patch resized to ``g x g``
(area averaging), so the glimpse has high resolution at its centre and a coarse view
around it. Pixels outside the image read as zero.

Locations are in [-1, 1]^2 as ``l = (x, y)``: ``x`` runs left to right over the image
width, ``y`` top to bottom over its height, and (0, 0) is the image centre. The batch is
extracted with tensor indexing from summed-area tables: no Python loop over images.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

#: The widest patch a retina may take, in pixels: far beyond any image (what memory allows
#: is checked where the tasks allocate), and small enough for torch's integer coordinates.
MAX_PATCH = 1 << 31


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
            raise ValueError(
                f"retina g must be a positive int (patch side in pixels), got {self.g!r}"
            )
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"retina k must be a positive int (number of patches), got {self.k!r}")
        if not (
            isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and self.scale >= 1
        ):
            raise ValueError(f"retina scale must be a finite number >= 1, got {self.scale!r}")

    def check_widest(self) -> None:
        """ValueError if the widest patch exceeds :data:`MAX_PATCH`. Not checked at
        construction, so that a task's check of its memory (which names the task's own
        arguments) comes first; computed in logs, as the width itself can overflow."""
        log_widest = math.log(self.g) + (self.k - 1) * math.log(self.scale)
        if log_widest > math.log(MAX_PATCH):
            raise ValueError(
                f"retina g={self.g}, k={self.k}, scale={self.scale!r} make a widest patch of "
                f"about 10^{log_widest / math.log(10):.1f} pixels; at most {MAX_PATCH:,}"
            )

    @property
    def sizes(self) -> list[int]:
        """Side of each patch on the image, in pixels, finest first."""
        self.check_widest()
        return [int(round(self.g * self.scale**i)) for i in range(self.k)]

    @property
    def glimpse_size(self) -> int:
        """Number of values in one flattened glimpse: k * g * g."""
        return self.k * self.g * self.g

    def corners(self, locations: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Top-left pixel (row, col) of every patch: (N, k, 2) long, in image coordinates."""
        sizes = _sizes_tensor(tuple(self.sizes), locations.device, locations.dtype)
        cx = (locations[:, 0:1] + 1.0) * (0.5 * width)
        cy = (locations[:, 1:2] + 1.0) * (0.5 * height)
        top = torch.floor(cy - sizes / 2 + 0.5).long()
        left = torch.floor(cx - sizes / 2 + 0.5).long()
        return torch.stack([top, left], dim=-1)

    def extract(
        self,
        table: torch.Tensor,
        locations: torch.Tensor,
        index: torch.Tensor | None = None,
        unit: float = 1.0,
    ) -> torch.Tensor:
        """Glimpses (M, k, g, g) of N images given as summed-area tables (N, H + 1, W + 1).

        ``index`` (M,) picks the images to look at (default: all N) and ``locations``
        (M, 2) where. Every output pixel is the mean of a box of image pixels, which costs
        four table lookups whatever the box's size (Crow 1984): a glimpse costs about
        k (g + 1)^2 lookups rather than the sum of its patches' areas. Boxes are those of
        ``adaptive_avg_pool2d`` (area resizing); pixels outside the image count as zeros.
        The sums are divided by ``unit``: a table of byte values (``unit=255``) has exact
        float32 sums, and its finest patch reproduces the pixels v / 255 bit for bit.
        """
        m, g, device = locations.shape[0], self.g, table.device
        height, width = table.shape[1] - 1, table.shape[2] - 1
        images = torch.arange(m, device=device) if index is None else index
        # Lookups go through the flattened tables: index_select on one dimension is several
        # times faster than advanced indexing over three.
        flat = table.reshape(-1)
        base = images[:, None, None] * ((height + 1) * (width + 1))

        def lookup(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
            at = (
                base
                + rows.clamp(0, height)[:, :, None] * (width + 1)
                + cols.clamp(0, width)[:, None, :]
            )
            return flat.index_select(0, at.reshape(-1)).view(at.shape)

        corners = self.corners(locations, height, width)
        patches = []
        for i, size in enumerate(self.sizes):
            top, left = corners[:, i, 0, None], corners[:, i, 1, None]
            if size % g == 0:
                # Adjacent boxes share their edges: one lookup of (g + 1)^2 entries.
                r = size // g
                edges = torch.arange(0, size + 1, r, device=device)
                s = lookup(top + edges, left + edges)
                box = s[:, 1:, 1:] - s[:, :-1, 1:] - s[:, 1:, :-1] + s[:, :-1, :-1]
                patches.append(box / (r * r * unit))
            else:
                # adaptive_avg_pool2d's bins: [floor(j size / g), ceil((j + 1) size / g)).
                j = torch.arange(g, device=device)
                start = torch.div(j * size, g, rounding_mode="floor")
                end = torch.div((j + 1) * size + g - 1, g, rounding_mode="floor")
                r0, r1, c0, c1 = top + start, top + end, left + start, left + end
                box = lookup(r1, c1) - lookup(r0, c1) - lookup(r1, c0) + lookup(r0, c0)
                area = ((end - start)[:, None] * (end - start)[None, :]).to(table.dtype)
                patches.append(box / (area * unit))
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
        return self.extract(table, locations).to(images.dtype)


@functools.lru_cache(maxsize=64)
def _sizes_tensor(sizes: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The patch sizes as a tensor on ``device``, made once: building it at every step would
    copy it from the host, which on a GPU waits for every queued kernel. (Read-only.)"""
    return torch.tensor(sizes, device=device, dtype=dtype)


def summed_area_table(images: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Tables (N, H + 1, W + 1) whose entry (i, j) is the sum of ``images[:, :i, :j]``.

    With ``out`` (N, H + 1, W + 1), whose first row and column must be zero, the tables
    are written into it (environments reuse one buffer rather than allocate per reset).
    """
    n, h, w = images.shape
    if out is None:
        out = images.new_zeros(n, h + 1, w + 1)
    inner = out[:, 1:, 1:]
    torch.cumsum(images, 1, out=inner)
    torch.cumsum(inner, 2, out=inner)
    return out
