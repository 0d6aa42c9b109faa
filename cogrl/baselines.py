"""Whole-image baselines for the glimpse tasks: the RAM paper's fully connected and
convolutional classifiers, and the soft-attention models that hard attention is measured
against. One definition for every comparison that uses them.

They see the whole canvas a glimpse agent explores one glimpse at a time, and learn by
backpropagation with cross-entropy:

- :class:`FullyConnected`: two rectified layers of 256 units, then a softmax (Mnih et al.
  2014, "Recurrent Models of Visual Attention", section 4.1: "FC, 2 layers (256 hiddens
  each)"; 1.69% error on 28 x 28 MNIST).
- :class:`PaperCNN`: one convolutional layer of 8 filters of 10 x 10 with stride 5, a
  rectified layer of 256 units, then a softmax (the same paper's convolutional baseline of
  the translated and cluttered experiments; 1.62% on 60 x 60 translated MNIST, 8.09% on
  cluttered).
- :class:`SpatialTransformer`: Jaderberg et al. 2015, "Spatial Transformer Networks": a
  localisation network regresses an affine transformation, a bilinear sampler crops the
  canvas with it, a small CNN classifies the crop. Soft attention by a differentiable crop.
- :class:`SoftAttention`: Xu et al. 2015, "Show, Attend and Tell", deterministic soft
  attention: a recurrent core attends over a CNN's grid of features, each step reading the
  expectation of the features under its attention weights.

Every model takes canvases (B, 1, C, C) in [0, 1] and returns logits: (B, n_classes) with
``n_outputs=1``, or (B, n_outputs, n_classes) with ``n_outputs > 1``, one prediction per
object in reading order (the multi-digit task). Each says in ``pixels_read`` how many
values of the canvas it takes in per image, for the hard-versus-soft comparison of
pixels processed per decision. They are made by name with :func:`make_model`
(``MODELS``), as the ``classifier`` agent (:mod:`cogrl.agents.classifier`) does.

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

import inspect
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cogrl.checks import check_choice, check_int, check_number

__all__ = [
    "MODELS",
    "FullyConnected",
    "PaperCNN",
    "SoftAttention",
    "SpatialTransformer",
    "WholeImageModel",
    "canvas_batch",
    "make_model",
]

N_CLASSES = 10
CELLS = ("lstm", "gru")


class WholeImageModel(nn.Module):
    """Base of the whole-image models: the canvas size, the classes and objects they name,
    the check of their input and the shape of their logits."""

    def __init__(self, canvas: int, n_classes: int, n_outputs: int, min_canvas: int = 1) -> None:
        super().__init__()
        check_int("canvas", canvas, low=min_canvas)
        check_int("n_classes", n_classes)
        check_int("n_outputs", n_outputs)
        self.canvas, self.n_classes, self.n_outputs = int(canvas), int(n_classes), int(n_outputs)

    @property
    def pixels_read(self) -> int:
        """Values of the canvas the model takes in per image: all C * C of it."""
        return self.canvas**2

    def _logits(self, flat: torch.Tensor) -> torch.Tensor:
        """(B, n_outputs * n_classes) scores as logits: (B, n_classes) for one object,
        (B, n_outputs, n_classes) for several."""
        if self.n_outputs == 1:
            return flat
        return flat.view(flat.shape[0], self.n_outputs, self.n_classes)


class FullyConnected(WholeImageModel):
    """The RAM paper's fully connected baseline on a ``canvas`` x ``canvas`` image:
    ``hidden_sizes`` rectified layers (default two of 256), then ``n_classes`` logits per
    object (a last layer ``n_outputs`` times wider for several objects)."""

    def __init__(
        self,
        canvas: int,
        hidden_sizes: Sequence[int] = (256, 256),
        n_classes: int = N_CLASSES,
        n_outputs: int = 1,
    ) -> None:
        super().__init__(canvas, n_classes, n_outputs)
        for size in hidden_sizes:
            check_int("hidden size", size)
        layers: list[nn.Module] = [nn.Flatten()]
        width = canvas * canvas
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, n_outputs * n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, canvases: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes), or (B, n_outputs, n_classes), of canvases (B, 1, C, C)."""
        return self._logits(self.net(_check_canvases(canvases, self.canvas)))


class PaperCNN(WholeImageModel):
    """The RAM paper's convolutional baseline on a ``canvas`` x ``canvas`` image: 8 filters
    of 10 x 10 with stride 5, ReLU, 256 rectified units, ``n_classes`` logits per object."""

    def __init__(self, canvas: int, n_classes: int = N_CLASSES, n_outputs: int = 1) -> None:
        super().__init__(canvas, n_classes, n_outputs, min_canvas=10)
        side = (canvas - 10) // 5 + 1
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 10, stride=5),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(8 * side * side, 256),
            nn.ReLU(),
            nn.Linear(256, n_outputs * n_classes),
        )

    def forward(self, canvases: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes), or (B, n_outputs, n_classes), of canvases (B, 1, C, C)."""
        return self._logits(self.net(_check_canvases(canvases, self.canvas)))


class SpatialTransformer(WholeImageModel):
    """A spatial transformer classifier (Jaderberg et al. 2015): localisation network,
    affine grid, bilinear sampler, and a CNN on the sampled crop.

    - Localisation network f_loc: the canvas area-averaged to ``loc_size`` x ``loc_size``
      (default: the canvas up to 32 x 32), two convolutions of 20 filters of 5 x 5 with
      2 x 2 max-pooling, a rectified layer of 50, and a linear regression of
      theta = f_loc(U), the 2 x 3 affine map from the crop's coordinates to the canvas's
      ((-1, -1) is a top-left corner, (1, 1) the bottom-right one), as the paper's
      ST-CNN on distorted MNIST.
    - Its regression starts at theta = ``init_scale`` * identity with zero weights (the
      paper initialises it to the identity): 1 crops the whole canvas, s < 1 a centred
      window s times as wide.
    - Sampler: ``F.affine_grid`` then ``F.grid_sample``, bilinear, zero outside the
      canvas (``align_corners=False``: the crop's pixel centres map to the canvas's).
    - Classifier on the ``out_size`` x ``out_size`` crop (default 28, a digit's size):
      convolutions of 5 x 5 with ``channels`` filters, each with ReLU and 2 x 2
      max-pooling, a rectified layer of ``hidden_size``, ``n_classes`` logits.

    With ``n_outputs > 1``, ``n_outputs`` transformers run in parallel (as the STN paper's
    multi-digit addition): each regresses its own theta and samples its own crop, and one
    classifier, shared, names the object in each crop. The transformers share the
    localisation network's layers up to its regression, so that they cost about one.

    ``pixels_read`` counts the values the networks take in per image: the localisation
    network's ``loc_size``^2 pooled canvas plus ``out_size``^2 samples per crop. (The
    pooling averages every pixel once and each sample interpolates four, as a glimpse's
    coarse patches average many; like a glimpse's, these are not counted.)
    """

    def __init__(
        self,
        canvas: int,
        n_classes: int = N_CLASSES,
        n_outputs: int = 1,
        out_size: int = 28,
        loc_size: int | None = None,
        init_scale: float = 1.0,
        channels: Sequence[int] = (16, 32),
        hidden_size: int = 128,
    ) -> None:
        super().__init__(canvas, n_classes, n_outputs, min_canvas=4)
        loc_size = min(canvas, 32) if loc_size is None else loc_size
        check_int("loc_size", loc_size, low=4)
        if loc_size > canvas:
            raise ValueError(f"loc_size must be at most the canvas size {canvas}, got {loc_size}")
        check_int("out_size", out_size)
        check_number("init_scale", init_scale, high=1.0, low_open=True)
        check_int("hidden_size", hidden_size)
        self.out_size, self.loc_size = int(out_size), int(loc_size)

        body, side = conv_stack(1, (20, 20), loc_size, "loc_size")
        regression = nn.Linear(50, 6 * n_outputs)
        # theta starts where the paper advises, whatever the canvas: the weights are zero
        # and the bias is the identity (scaled for a centred zoom).
        nn.init.zeros_(regression.weight)
        start = torch.tensor([init_scale, 0.0, 0.0, 0.0, init_scale, 0.0])
        with torch.no_grad():
            regression.bias.copy_(start.repeat(n_outputs))
        self.localisation = nn.Sequential(
            nn.AdaptiveAvgPool2d(loc_size),
            body,
            nn.Flatten(),
            nn.Linear(20 * side * side, 50),
            nn.ReLU(),
            regression,
        )
        features, side = conv_stack(1, channels, out_size, "out_size")
        self.classifier = nn.Sequential(
            features,
            nn.Flatten(),
            nn.Linear(channels[-1] * side * side, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, n_classes),
        )

    @property
    def pixels_read(self) -> int:
        """The localisation network's pooled canvas plus ``out_size``^2 samples per crop."""
        return self.loc_size**2 + self.n_outputs * self.out_size**2

    def theta(self, canvases: torch.Tensor) -> torch.Tensor:
        """The affine maps (B, n_outputs, 2, 3) the localisation network regresses."""
        canvases = _check_canvases(canvases, self.canvas)
        return self.localisation(canvases).view(-1, self.n_outputs, 2, 3)

    def transform(self, canvases: torch.Tensor) -> torch.Tensor:
        """The crops (B, n_outputs, out_size, out_size) the transformers sample."""
        theta = self.theta(canvases)
        b, n, s = canvases.shape[0], self.n_outputs, self.out_size
        # Every transformer samples the same canvas: repeat it per object, one grid each.
        source = canvases.repeat_interleave(n, dim=0)  # (B * n, 1, C, C), object-minor
        grid = F.affine_grid(theta.view(b * n, 2, 3), [b * n, 1, s, s], align_corners=False)
        crops = F.grid_sample(
            source, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return crops.view(b, n, s, s)

    def forward(self, canvases: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes), or (B, n_outputs, n_classes), of canvases (B, 1, C, C)."""
        crops = self.transform(canvases)
        b, n, s = crops.shape[0], self.n_outputs, self.out_size
        logits = self.classifier(crops.view(b * n, 1, s, s))  # one head shared by the crops
        return self._logits(logits.view(b, n * self.n_classes))


class SoftAttention(WholeImageModel):
    """A recurrent classifier with deterministic soft attention over a CNN feature grid
    ("Show, Attend and Tell", Xu et al. 2015, section 3.1.2 and 4.2).

    - Annotation vectors a_i, i = 1..L: convolutions of 5 x 5 with ``channels`` filters,
      each with ReLU and 2 x 2 max-pooling, turn the canvas into an h x w grid (L = h w)
      of D-dimensional features. With ``coordinates`` each a_i also holds its cell's
      (x, y) in [-1, 1]: softmax attention forgets where a cell lies, and naming objects
      in reading order ("the left digit, then the right one") needs it.
    - Initial state: h_0 (and the LSTM's c_0) = tanh of a linear map of the mean
      annotation, as the paper's f_init.
    - Each step t: scores e_ti = f_att(a_i, h_{t-1}) = w^T tanh(W_a a_i + W_h h_{t-1} + b)
      (the paper's MLP), weights alpha_t = softmax_i(e_t), context
      z_t = sum_i alpha_ti a_i, and the core (``cell``: ``"lstm"``, the paper's, or
      ``"gru"``) of ``hidden_size`` takes z_t.
    - Logits from the last step's h_t and z_t (the paper's deep output without the
      previous word), after ``n_steps`` steps; with ``n_outputs > 1`` the core runs
      ``n_steps`` steps per object, and the logits of object k are read after its steps.

    ``forward(canvases, return_attention=True)`` returns the weights alpha too, as
    (B, n_outputs * n_steps, h, w) for drawing. ``pixels_read`` is C * C: the CNN reads
    the whole canvas.
    """

    def __init__(
        self,
        canvas: int,
        n_classes: int = N_CLASSES,
        n_outputs: int = 1,
        n_steps: int = 3,
        channels: Sequence[int] = (16, 32),
        hidden_size: int = 128,
        attention_size: int = 64,
        cell: str = "lstm",
        coordinates: bool = True,
    ) -> None:
        super().__init__(canvas, n_classes, n_outputs)
        check_int("n_steps", n_steps)
        check_int("hidden_size", hidden_size)
        check_int("attention_size", attention_size)
        check_choice("cell", cell, CELLS)
        if not isinstance(coordinates, bool):
            raise ValueError(f"coordinates must be true or false, got {coordinates!r}")
        self.n_steps, self.cell, self.coordinates = int(n_steps), cell, coordinates
        self.encoder, side = conv_stack(1, channels, canvas, "canvas")
        self.grid_size = (side, side)
        d = channels[-1] + (2 if coordinates else 0)
        self.feature_size = d
        if coordinates:
            ys, xs = torch.meshgrid(
                (torch.arange(side) + 0.5) / side * 2 - 1,
                (torch.arange(side) + 0.5) / side * 2 - 1,
                indexing="ij",
            )
            self.register_buffer("cell_xy", torch.stack([xs, ys], -1).view(1, side * side, 2))
        self.init_h = nn.Linear(d, hidden_size)
        self.init_c = nn.Linear(d, hidden_size) if cell == "lstm" else None
        self.att_features = nn.Linear(d, attention_size)  # W_a (and b)
        self.att_state = nn.Linear(hidden_size, attention_size, bias=False)  # W_h
        self.att_score = nn.Linear(attention_size, 1, bias=False)  # w
        self.core = nn.LSTMCell(d, hidden_size) if cell == "lstm" else nn.GRUCell(d, hidden_size)
        self.output = nn.Linear(hidden_size + d, n_classes)

    def features(self, canvases: torch.Tensor) -> torch.Tensor:
        """The annotation vectors a (B, L, D) of canvases (B, 1, C, C), row-major cells."""
        grid = self.encoder(_check_canvases(canvases, self.canvas))
        a = grid.flatten(2).transpose(1, 2)
        if self.coordinates:
            a = torch.cat([a, self.cell_xy.expand(a.shape[0], -1, -1)], -1)
        return a

    def attend(
        self, a: torch.Tensor, h: torch.Tensor, projected: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft attention: weights alpha (B, L) = softmax_i(f_att(a_i, h)) and the context
        z (B, D) = sum_i alpha_i a_i. ``projected`` is W_a a + b, when already computed."""
        projected = self.att_features(a) if projected is None else projected
        scores = self.att_score(torch.tanh(projected + self.att_state(h)[:, None])).squeeze(-1)
        alpha = torch.softmax(scores, dim=1)
        z = torch.bmm(alpha[:, None], a).squeeze(1)
        return alpha, z

    def forward(
        self, canvases: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, n_classes), or (B, n_outputs, n_classes), of canvases (B, 1, C, C);
        with ``return_attention`` also the weights (B, n_outputs * n_steps, h, w)."""
        a = self.features(canvases)
        projected = self.att_features(a)  # W_a a_i + b: the same at every step
        mean = a.mean(1)
        h = torch.tanh(self.init_h(mean))
        c = torch.tanh(self.init_c(mean)) if self.init_c is not None else None
        logits, weights = [], []
        for _ in range(self.n_outputs):
            for _ in range(self.n_steps):
                alpha, z = self.attend(a, h, projected)
                if c is not None:
                    h, c = self.core(z, (h, c))
                else:
                    h = self.core(z, h)
                weights.append(alpha)
            logits.append(self.output(torch.cat([h, z], -1)))
        out = self._logits(torch.cat(logits, -1))
        if not return_attention:
            return out
        return out, torch.stack(weights, 1).view(a.shape[0], -1, *self.grid_size)


#: The whole-image models by name (the ``classifier`` agent's ``model`` setting).
MODELS: dict[str, type[WholeImageModel]] = {
    "fc": FullyConnected,
    "cnn": PaperCNN,
    "stn": SpatialTransformer,
    "soft": SoftAttention,
}


def make_model(
    name: str, canvas: int, n_classes: int = N_CLASSES, n_outputs: int = 1, **options: Any
) -> WholeImageModel:
    """The model ``name`` of :data:`MODELS` for ``canvas`` x ``canvas`` images naming
    ``n_outputs`` objects of ``n_classes`` classes, with its own ``options`` (for example
    ``out_size`` of ``"stn"``); a ValueError names an unknown model or option."""
    check_choice("model", name, MODELS)
    cls = MODELS[name]
    # The task sets the canvas, classes and objects; the rest are the model's own options.
    given = ("canvas", "n_classes", "n_outputs")
    own = [p for p in inspect.signature(cls).parameters if p not in given]
    unknown = sorted(set(options) - set(own))
    if unknown:
        raise ValueError(f"model {name!r} has no option(s) {unknown}; its options are {own}")
    return cls(canvas, n_classes=n_classes, n_outputs=n_outputs, **options)


def conv_stack(
    in_channels: int, channels: Sequence[int], size: int, name: str
) -> tuple[nn.Sequential, int]:
    """Convolutions of 5 x 5 (same padding) with ``channels`` filters, each followed by
    ReLU and 2 x 2 max-pooling, on ``size`` x ``size`` inputs; the stack and the side of
    its output. ``name`` is the setting that gave ``size``, for the error when the
    poolings would shrink it below one pixel."""
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or not channels:
        raise ValueError(f"channels must be a non-empty list of ints, got {channels!r}")
    for width in channels:
        check_int("channels", width)
    if size < 2 ** len(channels):
        raise ValueError(
            f"{name} must be at least {2 ** len(channels)} for {len(channels)} pooling "
            f"stage(s) (channels={list(channels)}), got {size}"
        )
    layers: list[nn.Module] = []
    for width in channels:
        layers += [nn.Conv2d(in_channels, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
        in_channels, size = width, size // 2
    return nn.Sequential(*layers), size


def canvas_batch(core) -> tuple[torch.Tensor, torch.Tensor]:
    """The next training episode of every environment of a recognition task's core,
    whole: canvases (N, 1, C, C) in [0, 1] and labels, (N,) for the glimpse tasks and
    (N, n_answers) for the multi-digit task. Resets the core (``reset()``, the next
    episode of each environment's seeded stream)."""
    if not (hasattr(core, "canvas_images") and hasattr(core, "label")):
        raise ValueError(
            f"canvas_batch needs a recognition task's core (with canvas_images and label: "
            f"the glimpse or multi-digit tasks), got {type(core).__name__}"
        )
    core.reset()
    return core.canvas_images()[:, None], core.label.clone()


def _check_canvases(canvases: torch.Tensor, canvas: int) -> torch.Tensor:
    if canvases.ndim != 4 or tuple(canvases.shape[1:]) != (1, canvas, canvas):
        raise ValueError(
            f"expected canvases of shape (B, 1, {canvas}, {canvas}), got {tuple(canvases.shape)}"
        )
    return canvases
