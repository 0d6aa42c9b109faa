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
``ValueError`` (:func:`cogrl.spaces.check_actions`; with ``check_action_values = False`` on
the core, only shape and dtype are checked).

## Observation Space

``Dict`` of flat float32 arrays:

| key | shape | range | meaning |
|---|---|---|---|
| ``glimpse`` | (k * g * g,) | [0, 1] | the k patches at the location, finest first, row-major |
| ``location`` | (2,) | [-1, 1] | the current location (x, y) |
| ``context`` | (s * s,) | [0, 1] | with ``context_size=s``: the canvas's mean in s x s blocks |

The ``context`` is a coarse view of the whole canvas at every step: the input of DRAM's
context network (Ba et al. 2015) at a low ``s``, and the image itself for the whole-image
baselines (:mod:`cogrl.baselines`) at ``s = canvas_size``.

## Rewards

1 for the right class at the end of the episode, otherwise 0.

## Starting State

A digit drawn uniformly from the split (and, for the translated and cluttered tasks, a
uniform position and uniform clutter); the first glimpse is at the canvas centre, or, with
``first_glimpse="random"``, at a uniform location of the canvas.

## Episode End

Continuous mode: the episode terminates after ``n_glimpses`` steps (the agent has seen
``n_glimpses`` glimpses: the first, and one after each of its first ``n_glimpses - 1``
moves). Discrete mode: it terminates when the agent answers, and is truncated if it has
not answered by step ``n_glimpses``. The true label is in ``info["label"]`` (with
``info["prediction"]`` and ``info["correct"]``) at the step an episode ends; the core's
``metadata["episode_metrics"] = {"accuracy": "correct", "on_digit": "on_digit"}`` tells
learners to report the mean of ``correct`` as the accuracy, and ``metadata["splits"] =
("train", "test")`` that evaluation runs on ``split="test"``.

``info["on_digit"]``, at the step an episode ends, is where the agent looked: the fraction of
the glimpses it chose (the locations it sent that it then saw: not the first glimpse, which
the task places, nor the location sent at the last step) whose centre lies in the digit's ink box
(the bounding box of its pixels above 0.25; clutter is not the digit). NaN for an episode in
which the agent chose no glimpse (a discrete-mode answer at once); learners and
``evaluate`` average over the others.

In the discrete mode the core also declares ``metadata["answer_key"] = "answer"`` and
reports, for learners that supervise answers (RAM's hybrid loss), ``info["answer"]``: the
action that answers the true class, ``G*G + label`` (int64 (num_envs,)), with mask
``_answer`` true at the step the episode ends (an answer, or the truncating step, where
answering would have earned the reward). It is not due at the steps before: there the
agent looks, and answering at once would earn no more than looking first, so a supervised
loss there would teach it to answer without looking. At an episode's last step it is the
finished episode's answer, not the next episode's. In the continuous mode there is no
``answer_key`` (the answer is class scores, which no likelihood applies to).
``metadata["answer_actions"] = (G*G, G*G + 10)`` (discrete mode) is the range of the
answering actions, for learners that supervise which answer given that the agent answers
(PPO's and A2C's ``answer_scope="answers"``). No action is ignored (no ``ignored_key``) and the
reward is one score (no ``reward_parts``).

## Arguments

```python
gym.make("cogrl/GlimpseDigits-v0", split="train", dataset="digits", root=None,
         action_mode="continuous", n_glimpses=6, glimpse_size=8, n_scales=1, scale=2.0,
         grid_size=3, context_size=0, first_glimpse="centre", train_shift=0,
         render_mode=None)
```

- ``split``: ``"train"`` or ``"test"``; test digits never appear in training episodes.
- ``dataset``: ``"digits"`` (scikit-learn's scans, shipped) or ``"mnist"`` with ``root``
  the folder holding MNIST's IDX files (see :mod:`cogrl.datasets`).
- ``n_glimpses``, ``glimpse_size`` (g), ``n_scales`` (k), ``scale``: the episode length and
  retina; defaults follow the paper (6 glimpses of 8 x 8 on 28 x 28, 8 glimpses of
  12 x 12 x 3 scales on 60 x 60).
- ``grid_size``: G of the discrete mode (3 on 28 x 28, 5 on 60 x 60).
- ``context_size``: s of the ``context`` observation (0, the default, for none; at most
  the canvas size).
- ``first_glimpse``: where the first glimpse is: ``"centre"`` (the default) or ``"random"``
  (uniform over the canvas, drawn with the episode). On 28 x 28 the centre glimpse already
  falls on the digit, so a model can read the class there and park its later glimpses
  anywhere; from a random start it must find the digit.
- ``train_shift``: data augmentation of the training split (``GlimpseDigits`` only): each
  training episode's digit is moved by a uniform whole number of pixels in
  ``[-train_shift, train_shift]`` along each axis, drawn with the episode; ink moved past
  the canvas edge is cut off, and the digit's ink box moves with it (``on_digit``). The
  test split always shows the digit centred, whatever ``train_shift``: it is the test of a
  model trained on shifted digits. 0 (the default) shifts nothing. Of MNIST's training
  images, 12% have ink (any pixel above 0) within 2 pixels of an edge and 76% within 4,
  so shifts beyond 2 cut ink off many digits moved towards an edge.

Sizes whose tensors would need more memory than the device has (``num_envs``,
``n_glimpses``, ``glimpse_size``, ``n_scales``, ``grid_size``) are a ``ValueError`` raised
before anything is allocated, naming them, the estimated bytes and the device's memory.

## Version History

- v0: initial version; ``on_digit`` added to its info and episode metrics, and the
  ``first_glimpse`` argument (default ``"centre"``, as before) and the ``train_shift``
  argument (default 0, as before), without a version change (the default dynamics and
  rewards are unchanged).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from cogrl.checks import check_choice, check_number
from cogrl.core import BatchedEnv, Info, check_memory, check_num_envs, resolve_device
from cogrl.datasets import DATASETS, SPLITS, load_digits
from cogrl.retina import Retina, summed_area_table

N_CLASSES = 10
DIGIT_SIZE = 28
ACTION_MODES = ("continuous", "discrete")
FIRST_GLIMPSES = ("centre", "random")
# The first draw number of a random first glimpse's location: above every canvas draw
# (digit, offset, clutter: 3 + 5 x 4 here, fewer than 100 in the multi-object tasks).
FIRST_GLIMPSE_DRAW = 1000

# Colours of the retina's patches in rendered frames, finest first, and of the scanpath.
_PATCH_COLOURS = np.array([[0, 255, 0], [255, 200, 0], [255, 60, 60], [200, 80, 255]], np.uint8)
_PATH_COLOUR = np.array([0, 200, 255], np.uint8)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class GlimpseDigits(BatchedEnv):
    """Batched core of the glimpse-recognition tasks (see the module docstring)."""

    metadata: dict[str, Any] = {
        **BatchedEnv.metadata,
        "episode_metrics": {"accuracy": "correct", "on_digit": "on_digit"},
        "label_key": "label",
        "splits": SPLITS,
    }
    # The episodes in progress (see BatchedEnv.state_dict).
    state_attributes = (
        *("canvas", "table", "label", "t", "path"),
        *("digit_boxes", "looks", "looks_on"),
    )
    # reset(options={"item": indices}): the split's images these episodes show.
    reset_options = ("item",)

    canvas_size = 28
    #: Whether ``canvas_size`` is a constructor argument (named by the memory check).
    canvas_is_argument = False
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
        context_size: int = 0,
        first_glimpse: str = "centre",
        train_shift: int = 0,
    ) -> None:
        check_choice("action_mode", action_mode, ACTION_MODES)
        check_choice("first_glimpse", first_glimpse, FIRST_GLIMPSES)
        self.first_glimpse = first_glimpse
        check_choice("dataset", dataset, DATASETS)
        check_choice("split", split, SPLITS)
        d = self.defaults
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
        if isinstance(context_size, bool) or not isinstance(context_size, (int, np.integer)):
            raise ValueError(f"context_size must be an int, got {context_size!r}")
        if not 0 <= context_size <= self.canvas_size:
            raise ValueError(
                f"context_size must lie in [0, {self.canvas_size}] (the canvas size), "
                f"got {context_size}"
            )
        self.context_size = int(context_size)
        if isinstance(train_shift, bool) or not isinstance(train_shift, (int, np.integer)):
            raise ValueError(f"train_shift must be an int, got {train_shift!r}")
        if train_shift and self.translate:
            raise ValueError(
                f"train_shift applies to GlimpseDigits' centred digit, not to "
                f"{type(self).__name__}, which places its digits at random; got {train_shift}"
            )
        if not 0 <= train_shift < DIGIT_SIZE // 2:
            raise ValueError(
                f"train_shift must lie in [0, {DIGIT_SIZE // 2 - 1}] pixels, got {train_shift}"
            )
        self.train_shift = int(train_shift)
        # Sizes that cannot fit are an error before anything is allocated.
        num_envs = check_num_envs(num_envs)
        check_memory(
            resolve_device(device),
            self.memory_estimate(num_envs),
            {
                "num_envs": num_envs,
                "n_glimpses": self.n_glimpses,
                "glimpse_size": self.retina.g,
                "n_scales": self.retina.k,
                "grid_size": self.grid_size,
                **({"canvas_size": self.canvas_size} if self.canvas_is_argument else {}),
            },
        )
        self.retina.check_widest()
        super().__init__(num_envs, device, render_mode, autoreset)
        self.split, self.dataset, self.action_mode = split, dataset, action_mode
        # the training split's augmentation (the test split never shifts)
        self._shift = self.train_shift if split == "train" else 0
        if action_mode == "discrete":
            # Answers are actions only in the discrete mode (class scores have no likelihood).
            self.metadata = {**type(self).metadata, "answer_key": "answer"}

        data = load_digits(dataset, split, root)
        self.images = torch.as_tensor(np.array(data.images), device=self.device)
        self.labels = torch.as_tensor(np.array(data.labels), device=self.device)
        self.n_images = len(data)
        self.ink_boxes = ink_boxes(self.images)
        # One image per episode: the split's images are its items (not where an episode
        # composes several, as in the subclasses that take no "item" option).
        self.num_items = self.n_images if "item" in self.reset_options else None

        observations = {
            "glimpse": spaces.Box(0.0, 1.0, (self.retina.glimpse_size,), np.float32),
            "location": spaces.Box(-1.0, 1.0, (2,), np.float32),
        }
        if self.context_size:
            observations["context"] = spaces.Box(0.0, 1.0, (self.context_size**2,), np.float32)
        self.single_observation_space = spaces.Dict(observations)
        if action_mode == "continuous":
            self.single_action_space = spaces.Box(-1.0, 1.0, (2 + N_CLASSES,), np.float32)
        else:
            self.single_action_space = spaces.Discrete(self.grid_size**2 + N_CLASSES)
            self.metadata["answer_actions"] = (self.grid_size**2, self.single_action_space.n)

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
        # The ink boxes (top, left, bottom, right) of the episode's digits on the canvas, and
        # the agent's glimpses so far and those whose centre fell in one (``on_digit``).
        self.digit_boxes = torch.zeros(n, self.n_digits, 4, dtype=torch.int64, device=self.device)
        self.looks = torch.zeros(n, dtype=torch.int64, device=self.device)
        self.looks_on = torch.zeros_like(self.looks)
        cells = torch.arange(self.grid_size**2, device=self.device)
        centres = torch.stack([cells % self.grid_size, cells // self.grid_size], 1) + 0.5
        self.cell_locations = centres / self.grid_size * 2.0 - 1.0
        # The context's blocks: edges of an s x s partition of the canvas, and the factor
        # from a block's byte sum to its mean in [0, 1].
        if self.context_size:
            edges = torch.linspace(0, c, self.context_size + 1, device=self.device).round()
            self._context_edges = edges.long()
            width = edges.diff()
            self._context_scale = 1.0 / (255.0 * width[:, None] * width[None, :])

    def memory_estimate(self, num_envs: int) -> int:
        """About how many bytes a core of ``num_envs`` environments holds and touches in a
        step: its per-environment tensors (canvases, summed-area tables, their reset
        scratch, the path), a reset's index tensors, and the retina's lookups and outputs."""
        c, g, k = self.canvas_size, self.retina.g, self.retina.k
        canvases = 4 * (3 * c * c + 2 * (c + 1) ** 2)  # canvas, 2 scratch; table, scratch table
        reset = 40 * DIGIT_SIZE**2  # gathers and broadcast index tensors of a 28 x 28 paste
        episode = 8 + 8 + 4 * 2 * (self.n_glimpses + 1)  # label, t, path
        # Per scale: (g + 1)^2 lookups (int64 index, float value, box), and the glimpse as
        # observation, final observation and autoreset's choice between them.
        retina = k * (g + 1) ** 2 * 64 + 3 * 4 * k * g * g
        grid = 40 * self.grid_size**2  # cell centres, whatever num_envs
        context = 3 * 4 * self.context_size**2  # as observation, final observation, choice
        return num_envs * (canvases + reset + episode + retina + context) + grid

    @property
    def max_episode_steps(self) -> int:
        """The most steps an episode takes: ``n_glimpses``, in both action modes."""
        return self.n_glimpses

    @property
    def location(self) -> torch.Tensor:
        """Current glimpse location of every environment, (N, 2)."""
        return self.path.gather(1, self._at(self.t)).squeeze(1)

    def _at(self, t: torch.Tensor) -> torch.Tensor:
        """Index of step ``t`` (N,) of every environment's path, for gather and scatter."""
        return t[:, None, None].expand(-1, 1, 2)

    #: Classes an answer names, and labels per episode (multi-object tasks answer several).
    n_classes = N_CLASSES
    n_answers = 1
    #: Digits on a canvas.
    n_digits = 1

    def answer(self, labels: torch.Tensor) -> torch.Tensor:
        """Actions (M, ...) that answer ``labels`` (M,) at once, for an agent that names
        the class without looking (the whole-image baselines of :mod:`cogrl.baselines`):
        in the continuous mode the class's one-hot scores (and location 0), in the discrete
        mode the answering action ``G*G + label``."""
        if self.action_mode == "discrete":
            return labels.long() + self.grid_size**2
        scores = F.one_hot(labels.long(), self.n_classes).float() * 2.0 - 1.0
        return torch.cat([torch.zeros(labels.shape[0], 2, device=labels.device), scores], 1)

    def canvas_images(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """The whole canvases (N, C, C) in [0, 1]: the full view a whole-image baseline sees."""
        return (self.canvas if index is None else self.canvas[index]).clone()

    # --- episode sampling ------------------------------------------------------------------
    def _draw_episodes(self, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """New episodes for the environments of ``index``: canvases (M, C, C) and their
        summed-area tables (in the reset scratch, valid until the next draw) and labels."""
        m, c = index.numel(), self.canvas_size
        u = self.rng.uniform(index, 3 + 5 * self.n_clutter)
        digit = (u[:, 0] * self.n_images).long()
        chosen = self._take_items(index)
        if chosen is not None:  # reset(options={"item": ...}): these images, this once
            digit = chosen
        if self.translate:
            offset = (u[:, 1:3] * (c - DIGIT_SIZE + 1)).long()
        else:
            offset = torch.full((m, 2), (c - DIGIT_SIZE) // 2, device=self.device)

        # Pastes go through the flattened canvases: a gather and a scatter on one dimension
        # are several times faster than advanced indexing over three.
        canvas = self._scratch[0, :m].zero_()
        flat = canvas.view(m, c * c)
        self._paste_clutter(flat, u[:, 3:])
        self._paste_digits(flat, digit[:, None], offset[:, None])
        self._drawn_boxes = self._boxes_of(digit[:, None], offset[:, None])
        if self._shift:  # (the draws u[:, 1:3] place translated digits, which never shift)
            s = self._shift
            move = (u[:, 1:3] * (2 * s + 1)).long() - s
            self._move(canvas, move)
            self._drawn_boxes = (self._drawn_boxes + move.repeat(1, 2)[:, None]).clamp_(0, c)
        return canvas, self._table_of(canvas), self.labels[digit]

    def _move(self, canvas: torch.Tensor, move: torch.Tensor) -> None:
        """Move the canvases (M, C, C) in place by ``move`` (M, 2) pixels (rows down,
        columns right), filling with 0 where nothing moves in: ``train_shift``."""
        m, c = canvas.shape[0], self.canvas_size
        steps = torch.arange(c, device=self.device)
        # pixel (a, b) of the moved canvas is (a - rows, b - columns) of the canvas
        rows = steps - move[:, :1]
        cols = steps - move[:, 1:]
        moved = self._scratch[1, :m]
        torch.gather(canvas, 1, rows.clamp(0, c - 1)[:, :, None].expand(m, c, c), out=moved)
        moved.mul_(((rows >= 0) & (rows < c))[:, :, None])
        torch.gather(moved, 2, cols.clamp(0, c - 1)[:, None, :].expand(m, c, c), out=canvas)
        canvas.mul_(((cols >= 0) & (cols < c))[:, None, :])

    def _boxes_of(self, digit: torch.Tensor, corner: torch.Tensor) -> torch.Tensor:
        """The ink boxes (M, n, 4) on the canvas of dataset images ``digit`` (M, n) pasted
        with top-left pixels ``corner`` (M, n, 2) (row, col)."""
        return self.ink_boxes[digit] + corner.repeat(1, 1, 2)

    def _paste_clutter(self, flat: torch.Tensor, u: torch.Tensor) -> None:
        """Paste ``n_clutter`` fragments (``clutter_size`` square crops of random digits)
        at random places of the flat canvases (M, C * C), drawn from uniforms ``u``
        (M, 5 * n_clutter); overlaps keep the brighter pixel."""
        c, k = self.canvas_size, self.clutter_size
        images = self.images.view(-1)
        for f in range(self.n_clutter):
            v = u[:, 5 * f : 5 * f + 5]
            source = (v[:, 0] * self.n_images).long()
            crop = (v[:, 1:3] * (DIGIT_SIZE - k + 1)).long()
            place = (v[:, 3:5] * (c - k + 1)).long()
            pixels = source[:, None] * DIGIT_SIZE**2 + _window(crop, k, DIGIT_SIZE)
            at = _window(place, k, c)
            flat.scatter_(1, at, torch.maximum(flat.gather(1, at), images.take(pixels)))

    def _paste_digits(self, flat: torch.Tensor, digit: torch.Tensor, corner: torch.Tensor) -> None:
        """Paste dataset images ``digit`` (M, n) with top-left pixels ``corner`` (M, n, 2)
        as (row, col) onto the flat canvases (M, C * C); overlaps keep the brighter pixel."""
        images = self.images.view(self.n_images, DIGIT_SIZE * DIGIT_SIZE)
        for i in range(digit.shape[1]):
            at = _window(corner[:, i], DIGIT_SIZE, self.canvas_size)
            flat.scatter_(1, at, torch.maximum(flat.gather(1, at), images[digit[:, i]]))

    def _table_of(self, canvas: torch.Tensor) -> torch.Tensor:
        """The summed-area tables of canvases (M, C, C), in byte units, in the reset scratch."""
        m = canvas.shape[0]
        byte_values = torch.mul(canvas, 255.0, out=self._scratch[1, :m]).round_()
        return summed_area_table(byte_values, out=self._scratch_table[:m])

    def _reset_envs(self, index: torch.Tensor) -> None:
        canvas, table, label = self._draw_episodes(index)
        self.canvas[index] = canvas
        self.table[index] = table
        self.label[index] = label
        self.t[index] = 0
        self.path[index] = 0.0
        if self.first_glimpse == "random":
            self.path[index, 0] = self._random_locations(index)
        self.digit_boxes[index] = self._drawn_boxes
        self.looks[index] = 0
        self.looks_on[index] = 0

    def _reset_where(self, mask: torch.Tensor) -> None:
        # Sync-free: draw a new episode for every environment (the draws of those that go
        # on are thrown away) and keep it where ``mask`` is set, all without a host read.
        canvas, table, label = self._draw_episodes(self._all)
        rows = mask[:, None, None]
        torch.where(rows, canvas, self.canvas, out=self.canvas)
        torch.where(rows, table, self.table, out=self.table)
        # (labels are (N,) here, (N, n_answers) in the multi-object tasks)
        row = mask.view(-1, *(1,) * (label.ndim - 1))
        torch.where(row, label, self.label, out=self.label)
        self.t.masked_fill_(mask, 0)
        self.path.masked_fill_(rows, 0.0)
        if self.first_glimpse == "random":
            first = self._random_locations(self._all)
            torch.where(mask[:, None], first, self.path[:, 0], out=self.path[:, 0])
        torch.where(rows, self._drawn_boxes, self.digit_boxes, out=self.digit_boxes)
        self.looks.masked_fill_(mask, 0)
        self.looks_on.masked_fill_(mask, 0)

    def _random_locations(self, index: torch.Tensor) -> torch.Tensor:
        """Uniform first-glimpse locations (M, 2) in [-1, 1) of the current episodes of
        ``index`` (their own numbered draws: the canvases' draws stay as they were)."""
        return self.rng.uniform(index, 2, start=FIRST_GLIMPSE_DRAW) * 2.0 - 1.0

    def digits_under(self, location: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
        """Which of each episode's digits a glimpse at ``location`` (N, 2), (x, y) in
        [-1, 1], falls on: (N, n_digits) booleans. With ``margin`` 0, whether its centre
        lies in the digit's ink box (``on_digit``'s sense); with ``margin`` m pixels,
        whether the square of side 2m around the centre touches the box (``retina.g / 2``:
        the finest patch overlaps the digit's ink)."""
        check_number("margin", margin)  # pixels
        pixel = ((location + 1.0) * (0.5 * self.canvas_size)).flip(-1)[:, None]  # (row, col)
        low, high = self.digit_boxes[..., :2], self.digit_boxes[..., 2:]
        return ((pixel + margin >= low) & (pixel - margin < high)).all(-1)

    def _count_looks(self, location: torch.Tensor, looked: torch.Tensor, info: Info) -> None:
        """Count the glimpses the agent chose that it will see (``looked`` (N,)) and those
        whose centre ``location`` (N, 2) lies in one of the episode's digits' ink boxes;
        where an episode ends, ``info["on_digit"]``: the fraction on a digit (NaN for an
        episode that chose none)."""
        on = self.digits_under(location).any(-1)
        self.looks += looked.long()
        self.looks_on += (looked & on).long()
        done = info["_correct"]
        info["on_digit"] = self.looks_on / self.looks  # 0 / 0 is NaN: no glimpse chosen
        info["_on_digit"] = done

    # --- dynamics ----------------------------------------------------------------------------
    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        # Tensor operations only: nothing here reads a value on the host.
        self.t += 1
        if self.action_mode == "continuous":
            location = action[:, :2]
            prediction = action[:, 2:].argmax(dim=1)
            terminated = self.t >= self.n_glimpses
            truncated = torch.zeros_like(terminated)
        else:
            g2 = self.grid_size**2
            look = action < g2
            previous = self.path.gather(1, self._at(self.t - 1)).squeeze(1)
            location = torch.where(
                look[:, None], self.cell_locations[action.clamp(max=g2 - 1)], previous
            )
            terminated = ~look
            truncated = look & (self.t >= self.n_glimpses)
            prediction = torch.where(look, torch.full_like(action, -1), action - g2)
        # Episodes end by step n_glimpses, and the base class never steps a finished one,
        # so t stays within the path's n_glimpses + 1 entries.
        self.path.scatter_(1, self._at(self.t), location[:, None, :].to(self.path.dtype))
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
        if self.action_mode == "discrete":
            # The answering action of the true class (a new tensor), due where the episode
            # ends; not at looks, whose right action the reward does not single out.
            info["answer"] = self.answer(self.label)
            info["_answer"] = done
            looked = look & ~done
        else:
            looked = ~done  # the location sent at the last step is never seen
        self._count_looks(location, looked, info)
        return reward, terminated, truncated, info

    def _observe(self, index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        location = self.location if index is None else self.path[index, self.t[index]]
        glimpse = self.retina.extract(self.table, location, index=index, unit=255.0)
        obs = {"glimpse": glimpse.flatten(1), "location": location}
        if self.context_size:
            obs["context"] = self.context(index)
        return obs

    def context(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """The ``context`` observation (M, s * s): the mean of each block of an s x s
        partition of the canvases, read from their summed-area tables."""
        s, c = self.context_size, self.canvas_size
        if s == c:
            canvas = self.canvas if index is None else self.canvas[index]
            return canvas.flatten(1).clone()
        table = self.table if index is None else self.table[index]
        edges = self._context_edges
        # index_select, not table[:, edges][:, :, edges]: the same values, fewer copies.
        corners = table.index_select(1, edges).index_select(2, edges)
        sums = corners[:, 1:, 1:] - corners[:, :-1, 1:] - corners[:, 1:, :-1] + corners[:, :-1, :-1]
        return (sums * self._context_scale).flatten(1)

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


def ink_boxes(images: torch.Tensor, threshold: float = 0.25) -> torch.Tensor:
    """The bounding boxes (n, 4) as (top, left, bottom, right), bottom and right exclusive,
    of the pixels above ``threshold`` in images (n, H, W) in [0, 1]; a blank image's box is
    the whole image."""
    ink = images > threshold
    n, h, w = ink.shape

    def span(any_ink: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        first = any_ink.int().argmax(1)
        last = size - any_ink.flip(1).int().argmax(1)
        blank = ~any_ink.any(1)
        return first.masked_fill(blank, 0), last.masked_fill(blank, size)

    top, bottom = span(ink.any(2), h)
    left, right = span(ink.any(1), w)
    return torch.stack([top, left, bottom, right], 1)


def _window(corner: torch.Tensor, size: int, width: int) -> torch.Tensor:
    """Flat indices (M, size * size), row-major, of the ``size`` x ``size`` windows whose
    top-left pixels are ``corner`` (M, 2) as (row, col), in images ``width`` pixels wide."""
    ar = torch.arange(size, device=corner.device)
    rows = (corner[:, 0, None] + ar)[:, :, None]
    cols = (corner[:, 1, None] + ar)[:, None, :]
    return (rows * width + cols).flatten(1)


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
