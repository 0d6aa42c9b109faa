"""Glimpse-based digit recognition: the tasks of the recurrent attention model (RAM).

## Description

Mnih, Heess, Graves and Kavukcuoglu (2014), "Recurrent Models of Visual Attention": a
digit lies on a canvas the agent never sees whole. Each step it sees one *glimpse*, a few
patches of growing width centred on the location it chose (see :mod:`cogrl.retina`), and
decides where to look next; at the end it names the digit.

- ``cogrl/GlimpseDigits-v0``: the digit centred on a 28 x 28 canvas; retina 8 x 8, 1 scale.
- ``cogrl/TranslatedDigits-v0``: a 28 x 28 digit at a random position on a 60 x 60
  canvas; retina 12 x 12, 3 scales.
- ``cogrl/ClutteredDigits-v0``: as Translated, plus 4 random 8 x 8 fragments of other
  digits at random positions; retina 12 x 12, 3 scales.

## Action Space

``action_mode="continuous"`` (default, RAM): ``Box(-1, 1, (2 + 10,), float32)``. The first
two values are the next glimpse location ``l = (x, y)`` ((0, 0) is the canvas centre,
(-1, -1) its top-left corner); the next ten are class scores, read at the last step of
the episode, where the class is their argmax.

``action_mode="discrete"`` (for Stable-Baselines3's PPO and DQN): ``Discrete(G*G + 10)``.
Action ``a < G*G`` looks at the centre of grid cell ``a`` (row ``a // G``, column ``a % G``
of a G x G grid over the canvas); action ``G*G + c`` answers class ``c`` and ends the
episode.

An action of the wrong shape or dtype, outside the space, or not finite raises
``ValueError``.

## Observation Space

``Dict`` of flat float32 arrays:

| key | shape | range | meaning |
|---|---|---|---|
| ``glimpse`` | (k * g * g,) | [0, 1] | the k patches at the location, finest first, row-major |
| ``location`` | (2,) | [-1, 1] | the current location (x, y) |

## Rewards

1 for the right class at the end of the episode, otherwise 0.

## Starting State

A digit drawn uniformly from the split (and, for the translated and cluttered tasks, a
uniform position and uniform clutter); the first glimpse is at the canvas centre.

## Episode End

Continuous mode: the episode terminates after ``n_glimpses`` steps (the agent has seen
``n_glimpses`` glimpses: the first, and one after each of its first ``n_glimpses - 1``
moves). Discrete mode: it terminates when the agent answers, and is truncated if it has
not answered by step ``n_glimpses``. The true label is in ``info["label"]`` (with
``info["prediction"]`` and ``info["correct"]``) at the step an episode ends.

## Arguments

```python
gym.make("cogrl/GlimpseDigits-v0", split="train", dataset="digits", root=None,
         action_mode="continuous", n_glimpses=6, glimpse_size=8, n_scales=1, scale=2.0,
         grid_size=3, render_mode=None)
```

- ``split``: ``"train"`` or ``"test"``; test digits never appear in training episodes.
- ``dataset``: ``"digits"`` (scikit-learn's scans, shipped) or ``"mnist"`` with ``root``
  the folder holding MNIST's IDX files (see :mod:`cogrl.datasets`).
- ``n_glimpses``, ``glimpse_size`` (g), ``n_scales`` (k), ``scale``: the episode length and
  retina; defaults follow the paper (6 glimpses of 8 x 8 on 28 x 28, 8 glimpses of
  12 x 12 x 3 scales on 60 x 60).
- ``grid_size``: G of the discrete mode (3 on 28 x 28, 5 on 60 x 60).

## Version History

- v0: initial version.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from cogrl.core import BatchedEnv, Info
from cogrl.datasets import load_digits
from cogrl.retina import Retina, summed_area_table

N_CLASSES = 10
DIGIT_SIZE = 28
ACTION_MODES = ("continuous", "discrete")

# Colours of the retina's patches in rendered frames, finest first, and of the scanpath.
_PATCH_COLOURS = np.array([[0, 255, 0], [255, 200, 0], [255, 60, 60], [200, 80, 255]], np.uint8)
_PATH_COLOUR = np.array([0, 200, 255], np.uint8)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class GlimpseDigits(BatchedEnv):
    """Batched core of the glimpse-recognition tasks (see the module docstring)."""

    canvas_size = 28
    translate = False
    n_clutter = 0
    clutter_size = 8
    defaults = {"n_glimpses": 6, "glimpse_size": 8, "n_scales": 1, "grid_size": 3}

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        render_mode: str | None = None,
        autoreset: bool = True,
        split: str = "train",
        dataset: str = "digits",
        root: str | None = None,
        action_mode: str = "continuous",
        n_glimpses: int | None = None,
        glimpse_size: int | None = None,
        n_scales: int | None = None,
        scale: float = 2.0,
        grid_size: int | None = None,
    ) -> None:
        super().__init__(num_envs, device, render_mode, autoreset)
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        d = self.defaults
        self.split, self.dataset, self.action_mode = split, dataset, action_mode
        self.n_glimpses = _positive_int(
            "n_glimpses", d["n_glimpses"] if n_glimpses is None else n_glimpses
        )
        self.grid_size = _positive_int(
            "grid_size", d["grid_size"] if grid_size is None else grid_size
        )
        self.retina = Retina(
            g=_positive_int(
                "glimpse_size", d["glimpse_size"] if glimpse_size is None else glimpse_size
            ),
            k=_positive_int("n_scales", d["n_scales"] if n_scales is None else n_scales),
            scale=scale,
        )

        data = load_digits(dataset, split, root)
        self.images = torch.as_tensor(np.array(data.images), device=self.device)
        self.labels = torch.as_tensor(np.array(data.labels), device=self.device)
        self.n_images = len(data)

        self.single_observation_space = spaces.Dict(
            {
                "glimpse": spaces.Box(0.0, 1.0, (self.retina.glimpse_size,), np.float32),
                "location": spaces.Box(-1.0, 1.0, (2,), np.float32),
            }
        )
        if action_mode == "continuous":
            self.single_action_space = spaces.Box(-1.0, 1.0, (2 + N_CLASSES,), np.float32)
        else:
            self.single_action_space = spaces.Discrete(self.grid_size**2 + N_CLASSES)

        n, c = self.num_envs, self.canvas_size
        # The canvases and their summed-area tables in byte units, which the retina reads:
        # pixel values are multiples of 1/255, so float32 sums over a canvas are exact.
        self.canvas = torch.zeros(n, c, c, device=self.device)
        self.table = torch.zeros(n, c + 1, c + 1, device=self.device)
        # Scratch for resets, allocated once: fresh multi-megabyte tensors at every reset
        # would cost more in page faults than composing the canvases does.
        self._scratch = torch.zeros(2, n, c, c, device=self.device)
        self._scratch_table = torch.zeros(n, c + 1, c + 1, device=self.device)
        self.label = torch.zeros(n, dtype=torch.int64, device=self.device)
        self.t = torch.zeros(n, dtype=torch.int64, device=self.device)
        # Locations seen so far in the episode (for rendering the scanpath).
        self.path = torch.zeros(n, self.n_glimpses + 1, 2, device=self.device)
        cells = torch.arange(self.grid_size**2, device=self.device)
        centres = torch.stack([cells % self.grid_size, cells // self.grid_size], 1) + 0.5
        self.cell_locations = centres / self.grid_size * 2.0 - 1.0

    @property
    def location(self) -> torch.Tensor:
        """Current glimpse location of every environment, (N, 2)."""
        return self.path[torch.arange(self.num_envs, device=self.device), self.t]

    def canvas_images(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """The whole canvases (N, C, C) in [0, 1]: the full view a whole-image baseline sees."""
        return (self.canvas if index is None else self.canvas[index]).clone()

    # --- episode sampling ------------------------------------------------------------------
    def _reset_envs(self, index: torch.Tensor) -> None:
        m, c = index.numel(), self.canvas_size
        k = self.clutter_size
        u = self.rng.uniform(index, 3 + 5 * self.n_clutter)
        digit = (u[:, 0] * self.n_images).long()
        if self.translate:
            offset = (u[:, 1:3] * (c - DIGIT_SIZE + 1)).long()
        else:
            offset = torch.full((m, 2), (c - DIGIT_SIZE) // 2, device=self.device)

        canvas = self._scratch[0, :m].zero_()
        batch = torch.arange(m, device=self.device)[:, None, None]
        for f in range(self.n_clutter):
            v = u[:, 3 + 5 * f : 8 + 5 * f]
            source = (v[:, 0] * self.n_images).long()
            crop = (v[:, 1:3] * (DIGIT_SIZE - k + 1)).long()
            place = (v[:, 3:5] * (c - k + 1)).long()
            ar = torch.arange(k, device=self.device)
            fragment = self.images[
                source[:, None, None],
                (crop[:, 0, None] + ar)[:, :, None],
                (crop[:, 1, None] + ar)[:, None, :],
            ]
            rows = (place[:, 0, None] + ar)[:, :, None]
            cols = (place[:, 1, None] + ar)[:, None, :]
            canvas[batch, rows, cols] = torch.maximum(canvas[batch, rows, cols], fragment)
        ar = torch.arange(DIGIT_SIZE, device=self.device)
        rows = (offset[:, 0, None] + ar)[:, :, None]
        cols = (offset[:, 1, None] + ar)[:, None, :]
        canvas[batch, rows, cols] = torch.maximum(canvas[batch, rows, cols], self.images[digit])

        self.canvas[index] = canvas
        byte_values = torch.mul(canvas, 255.0, out=self._scratch[1, :m]).round_()
        self.table[index] = summed_area_table(byte_values, out=self._scratch_table[:m])
        self.label[index] = self.labels[digit]
        self.t[index] = 0
        self.path[index] = 0.0

    # --- dynamics ----------------------------------------------------------------------------
    def _check_action(self, action: Any) -> torch.Tensor:
        n = self.num_envs
        if isinstance(action, (list, tuple)):
            action = np.asarray(action)
        if isinstance(action, np.ndarray):
            kind = action.dtype.kind
            is_float, is_int = kind == "f", kind in "iu"
        elif isinstance(action, torch.Tensor):
            is_float, is_int = (
                action.is_floating_point(),
                not action.is_floating_point()
                and not action.is_complex()
                and action.dtype != torch.bool,
            )
        else:
            raise ValueError(
                f"action must be a numpy array or torch tensor, got {type(action).__name__}"
            )

        if self.action_mode == "continuous":
            expected = (n, 2 + N_CLASSES)
            if not is_float:
                raise ValueError(
                    f"continuous action must have a floating dtype, got {action.dtype}"
                )
            if tuple(action.shape) != expected:
                raise ValueError(f"action must have shape {expected}, got {tuple(action.shape)}")
            a = torch.as_tensor(action, device=self.device).float()
            if not bool(torch.isfinite(a).all()):
                raise ValueError(f"action must be finite, got {_first_bad(a, ~torch.isfinite(a))}")
            outside = (a < -1.0) | (a > 1.0)
            if bool(outside.any()):
                raise ValueError(f"action values must lie in [-1, 1], got {_first_bad(a, outside)}")
            return a
        expected = (n,)
        if not is_int:
            raise ValueError(f"discrete action must have an integer dtype, got {action.dtype}")
        if tuple(action.shape) != expected:
            raise ValueError(f"action must have shape {expected}, got {tuple(action.shape)}")
        a = torch.as_tensor(action, device=self.device).long()
        high = self.single_action_space.n
        outside = (a < 0) | (a >= high)
        if bool(outside.any()):
            raise ValueError(
                f"discrete action must lie in [0, {high}), got {_first_bad(a, outside)}"
            )
        return a

    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        self.t += 1
        arange = torch.arange(self.num_envs, device=self.device)
        if self.action_mode == "continuous":
            location = action[:, :2]
            prediction = action[:, 2:].argmax(dim=1)
            terminated = self.t >= self.n_glimpses
            truncated = torch.zeros_like(terminated)
        else:
            g2 = self.grid_size**2
            look = action < g2
            location = torch.where(
                look[:, None],
                self.cell_locations[action.clamp(max=g2 - 1)],
                self.path[arange, self.t - 1],
            )
            terminated = ~look
            truncated = look & (self.t >= self.n_glimpses)
            prediction = torch.where(look, torch.full_like(action, -1), action - g2)
        self.t.clamp_(max=self.n_glimpses)
        self.path[arange, self.t] = location
        correct = terminated & (prediction == self.label)
        reward = correct.float()
        done = terminated | truncated
        info = {
            "label": self.label.clone(),
            "_label": done,
            "prediction": prediction,
            "_prediction": done,
            "correct": correct,
            "_correct": done,
        }
        return reward, terminated, truncated, info

    def _observe(self, index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        location = self.location if index is None else self.path[index, self.t[index]]
        glimpse = self.retina.extract(self.table, location, index=index, unit=255.0)
        return {"glimpse": glimpse.flatten(1), "location": location}

    # --- rendering ---------------------------------------------------------------------------
    def render(self, index: int = 0) -> np.ndarray:
        """The canvas of environment ``index`` with the glimpse's patches and the scanpath."""
        if not 0 <= index < self.num_envs:
            raise ValueError(f"index must lie in [0, {self.num_envs}), got {index}")
        c = self.canvas_size
        zoom = max(1, 224 // c)
        canvas = self.canvas[index].detach().cpu().numpy()
        gray = (np.clip(canvas, 0.0, 1.0) * 255).astype(np.uint8)
        frame = np.repeat(np.repeat(gray, zoom, 0), zoom, 1)[:, :, None].repeat(3, 2)

        t = int(self.t[index])
        path = self.path[index, : t + 1].detach().cpu().numpy()
        centres = (path + 1.0) * 0.5 * c * zoom
        for a, b in zip(centres[:-1], centres[1:], strict=True):
            for s in np.linspace(0.0, 1.0, 2 * zoom * c):
                x, y = a + s * (b - a)
                _put(frame, int(y), int(x), _PATH_COLOUR)
        for x, y in centres:
            _put(frame, int(y) - 1, int(x) - 1, _PATH_COLOUR, size=3)
        corners = self.retina.corners(self.path[index, t][None].cpu(), c, c)[0].numpy()
        for i, size in enumerate(self.retina.sizes):
            top, left = corners[i] * zoom
            _rectangle(frame, top, left, size * zoom, _PATCH_COLOURS[i % len(_PATCH_COLOURS)])
        return frame


class TranslatedDigits(GlimpseDigits):
    """A 28 x 28 digit at a random position on a 60 x 60 canvas."""

    canvas_size = 60
    translate = True
    defaults = {"n_glimpses": 8, "glimpse_size": 12, "n_scales": 3, "grid_size": 5}


class ClutteredDigits(TranslatedDigits):
    """Translated digits with 4 random 8 x 8 fragments of other digits as clutter."""

    n_clutter = 4


def _first_bad(a: torch.Tensor, bad: torch.Tensor) -> str:
    where = tuple(int(i) for i in bad.nonzero()[0])
    return f"{a[where].item()} at index {where}"


def _put(frame: np.ndarray, y: int, x: int, colour: np.ndarray, size: int = 1) -> None:
    h, w, _ = frame.shape
    frame[max(y, 0) : min(y + size, h), max(x, 0) : min(x + size, w)] = colour


def _rectangle(frame: np.ndarray, top: int, left: int, size: int, colour: np.ndarray) -> None:
    """A 2-pixel outline, clipped to the frame."""
    h, w, _ = frame.shape
    bottom, right = top + size, left + size
    rows = slice(max(top, 0), min(bottom, h))
    cols = slice(max(left, 0), min(right, w))
    for edge in (top, bottom - 2):
        if -2 < edge < h:
            frame[max(edge, 0) : min(edge + 2, h), cols] = colour
    for edge in (left, right - 2):
        if -2 < edge < w:
            frame[rows, max(edge, 0) : min(edge + 2, w)] = colour
