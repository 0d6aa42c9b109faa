"""The RAM paper's whole-image baselines (Mnih et al. 2014, "Recurrent Models of Visual
Attention", section 4.1), one definition for every comparison that uses them.

They see the whole canvas a glimpse agent explores one glimpse at a time, and learn by
backpropagation with cross-entropy:

- :class:`FullyConnected`: two rectified layers of 256 units, then a softmax (the paper's
  "FC, 2 layers (256 hiddens each)"; 1.69% error on 28 x 28 MNIST).
- :class:`PaperCNN`: one convolutional layer of 8 filters of 10 x 10 with stride 5, a
  rectified layer of 256 units, then a softmax (the paper's convolutional baseline of the
  translated and cluttered experiments; 1.62% on 60 x 60 translated MNIST, 8.09% on
  cluttered).

:func:`canvas_batch` draws their training data from a glimpse task's core, so that they
learn from the same episodes as the agents they are compared with::

    core = cogrl.envs.make_core("cogrl/ClutteredDigits-v0", num_envs=128)
    core.reset(seed=0)
    model = PaperCNN(core.canvas_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(1000):
        canvases, labels = canvas_batch(core)
        loss = torch.nn.functional.cross_entropy(model(canvases), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cogrl.checks import check_int

__all__ = ["FullyConnected", "PaperCNN", "canvas_batch"]

N_CLASSES = 10


class FullyConnected(nn.Module):
    """The RAM paper's fully connected baseline on a ``canvas`` x ``canvas`` image:
    ``hidden_sizes`` rectified layers (default two of 256), then ``n_classes`` logits."""

    def __init__(
        self, canvas: int, hidden_sizes: Sequence[int] = (256, 256), n_classes: int = N_CLASSES
    ) -> None:
        super().__init__()
        check_int("canvas", canvas)
        check_int("n_classes", n_classes)
        for size in hidden_sizes:
            check_int("hidden size", size)
        layers: list[nn.Module] = [nn.Flatten()]
        width = canvas * canvas
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, n_classes))
        self.canvas = canvas
        self.net = nn.Sequential(*layers)

    def forward(self, canvases: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes) of canvases (B, 1, canvas, canvas)."""
        return self.net(_check_canvases(canvases, self.canvas))


class PaperCNN(nn.Module):
    """The RAM paper's convolutional baseline on a ``canvas`` x ``canvas`` image: 8 filters
    of 10 x 10 with stride 5, ReLU, 256 rectified units, ``n_classes`` logits."""

    def __init__(self, canvas: int, n_classes: int = N_CLASSES) -> None:
        super().__init__()
        check_int("canvas", canvas, low=10)
        check_int("n_classes", n_classes)
        side = (canvas - 10) // 5 + 1
        self.canvas = canvas
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 10, stride=5),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(8 * side * side, 256),
            nn.ReLU(),
            nn.Linear(256, n_classes),
        )

    def forward(self, canvases: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes) of canvases (B, 1, canvas, canvas)."""
        return self.net(_check_canvases(canvases, self.canvas))


def canvas_batch(core) -> tuple[torch.Tensor, torch.Tensor]:
    """The next training episode of every environment of a glimpse task's core, whole:
    canvases (N, 1, C, C) in [0, 1] and labels (N,). Resets the core (``reset()``, the
    next episode of each environment's seeded stream)."""
    if not hasattr(core, "canvas_images"):
        raise ValueError(
            f"canvas_batch needs a glimpse task's core (with canvas_images), got "
            f"{type(core).__name__}"
        )
    core.reset()
    return core.canvas_images()[:, None], core.label.clone()


def _check_canvases(canvases: torch.Tensor, canvas: int) -> torch.Tensor:
    if canvases.ndim != 4 or tuple(canvases.shape[1:]) != (1, canvas, canvas):
        raise ValueError(
            f"expected canvases of shape (B, 1, {canvas}, {canvas}), got {tuple(canvases.shape)}"
        )
    return canvases
