"""Task-driven visual search: find the digit of a cued class among distractor digits.

## Description

Visual search as a sequence of fixations (Najemnik and Geisler 2005, "Optimal eye movement
strategies in visual search", Nature 434): the observer is told what to look for, sees
sharply only where it fixates, moves its eyes until it finds the target, and says where it
is. Here the target is a class of digit, cued at the start of the episode as a one-hot
vector; the canvas holds one digit of that class and ``n_distractors`` digits of other
classes, all apart. The agent sees the canvas only through the glimpse sensor of the
recurrent attention models (Mnih et al. 2014, "Recurrent Models of Visual Attention"; Ba,
Mnih and Kavukcuoglu 2015, "Multiple object recognition with visual attention"), a few
patches of growing width centred on its fixation (:mod:`cogrl.retina`), so that finding
the target takes eye movements. Each step it either saccades to a new location, at a small
cost, or declares "found" at a location, which ends the episode.

The digits lie in distinct cells of a grid of ``canvas_size // 28`` x ``canvas_size // 28``
square cells (each at least 28 pixels wide), each digit's 28 x 28 box at a uniform offset
inside its cell, so boxes never overlap; the cells are a uniform random choice per episode.
A canvas too small for ``n_distractors + 1`` cells is an error at construction.

## Action Space

``action_mode="continuous"`` (default): ``Box(-1, 1, (3,), float32)``, ``(x, y, declare)``.
``(x, y)`` is a location ((0, 0) is the canvas centre, (-1, -1) its top-left corner);
``declare > 0`` declares "found" at it and ends the episode; otherwise the agent saccades
there and its next glimpse is taken there.

``action_mode="discrete"`` (for Stable-Baselines3's PPO and DQN): ``Discrete(2 * G*G)``.
Action ``a < G*G`` saccades to the centre of grid cell ``a`` (row ``a // G``, column
``a % G`` of a G x G grid over the canvas); action ``G*G + a`` declares at cell ``a``'s
centre. (With the defaults, every 28 x 28 box holds a cell centre, so every target can be
declared on; in general that needs ``canvas_size / G < 28``.)

An action of the wrong shape or dtype, outside the space, or not finite raises
``ValueError`` (:func:`cogrl.spaces.check_actions`).

## Observation Space

``Dict`` of flat float32 arrays:

| key | shape | range | meaning |
|---|---|---|---|
| ``glimpse`` | (k * g * g,) | [0, 1] | the k patches at the fixation, finest first, row-major |
| ``location`` | (2,) | [-1, 1] | the current fixation (x, y) |
| ``target`` | (10,) | {0, 1} | one-hot of the class to search for |
| ``context`` | (s * s,) | [0, 1] | with ``context_size=s`` only: the canvas averaged to s x s |

## Rewards

1 for declaring on the target (the declared location inside the target digit's 28 x 28
box), 0 for declaring anywhere else, ``-saccade_cost`` for every saccade. A declaration is
not a saccade and costs nothing.

## Starting State

A target class uniform over the 10 classes; a digit of that class and ``n_distractors``
digits of other classes (each class uniform over the 9 others, each digit uniform among the
split's digits of its class) in distinct cells; the first fixation at the canvas centre.

## Episode End

The episode terminates at a declaration, and is truncated after ``n_glimpses`` steps
without one (``max_episode_steps``). At that step ``info`` holds, each with its ``_`` mask:

- ``found``: whether the declaration was on the target;
- ``saccades``: the saccades made in the episode;
- ``saccades_to_target``: the saccades made before the gaze first lay inside the target's
  box: 0 if the first fixation (the centre) did, ``s`` if saccade ``s`` landed there, and
  the saccades made before the declaration if the declaration was the first to land on the
  target (an agent that spots the target in the periphery and declares at once needs no
  saccade). ``n_glimpses + 1``, more than any episode makes, if the gaze never lay on it;
- ``target``: the target class.

``metadata["episode_metrics"] = {"accuracy": "found", "saccades": "saccades",
"saccades_to_target": "saccades_to_target"}``: the success rate, the mean saccades per
episode and the mean saccades to the target (counting ``n_glimpses + 1`` for episodes that
never reached it); ``metadata["splits"] = ("train", "test")``.

In the discrete mode the core also declares ``metadata["answer_key"] = "answer"`` and
reports, for learners that supervise answers, ``info["answer"]``: the declaration that finds
the target, ``G*G + a`` with ``a`` the grid cell whose centre lies in the target's box (the
nearest the box's centre where several do; :meth:`VisualSearch.target_cell`), int64
(num_envs,). Its mask ``_answer`` is true at the step the episode ends (a declaration, or
the truncating step, where declaring there would have earned the reward 1), where such a
cell exists. It is not due at the steps before: declaring at once would earn the most, so a
supervised loss there would teach the agent to declare without searching. At an episode's
last step it is the finished episode's answer, not the next episode's.
``metadata["answer_actions"] = (G*G, 2*G*G)`` is the range of the declaring actions, for
learners that supervise *where* to declare given that the agent declares (PPO's and A2C's
``answer_scope="answers"``), and leave *when* to the reward. In the continuous mode there is
no ``answer_key`` (the answer is a continuous location). No action is ignored (no
``ignored_key``) and the reward is one score (no ``reward_parts``).

The target's box is :attr:`VisualSearch.target_box` and every digit's :attr:`VisualSearch.boxes`
(for baselines that score a location); :meth:`VisualSearch.canvas_images` gives the whole
canvases. :func:`saliency_search` is the bottom-up baseline: Itti and Koch's (2000)
saliency-driven search, winner-take-all with inhibition of return.

## Arguments

```python
gym.make("cogrl/VisualSearch-v0", split="train", dataset="digits", root=None,
         action_mode="continuous", canvas_size=100, n_distractors=3, n_glimpses=10,
         glimpse_size=12, n_scales=3, scale=2.0, grid_size=5, saccade_cost=0.01,
         context_size=0, render_mode=None)
```

- ``split``, ``dataset``, ``root``: the digits, as in :mod:`cogrl.envs.attention.glimpse`
  (``dataset="mnist"`` with ``root`` the folder of MNIST's IDX files).
- ``canvas_size``: the canvas side in pixels (at least 28).
- ``n_distractors``: k, the digits of other classes (>= 0).
- ``n_glimpses``: the most steps per episode; ``glimpse_size`` (g), ``n_scales`` (k),
  ``scale``: the retina.
- ``grid_size``: G of the discrete mode.
- ``saccade_cost``: the cost of a saccade (>= 0).
- ``context_size``: s of the ``context`` observation (0, the default, for none).

## Version History

- v0: initial version.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from cogrl.checks import check_int, check_number
from cogrl.core import BatchedEnv, Info
from cogrl.datasets import SPLITS
from cogrl.envs.attention.glimpse import (
    DIGIT_SIZE,
    N_CLASSES,
    GlimpseDigits,
    _rectangle,
)

__all__ = ["VisualSearch", "SaliencySearch", "saliency_search"]

# Rendered frames: the target's box, and the bar of steps used along the top edge.
_TARGET_COLOUR = np.array([255, 0, 255], np.uint8)
_STEPS_COLOUR = np.array([255, 255, 255], np.uint8)


class VisualSearch(GlimpseDigits):
    """Batched core of ``cogrl/VisualSearch-v0`` (see the module docstring)."""

    reset_options = ()  # an episode shows several images: they are not items

    canvas_is_argument = True

    metadata: dict[str, Any] = {
        **BatchedEnv.metadata,
        "episode_metrics": {
            "accuracy": "found",
            "saccades": "saccades",
            "saccades_to_target": "saccades_to_target",
        },
        "splits": SPLITS,
    }
    # No "label_key": the agent names no class (a classifier's loss has nothing to learn).
    state_attributes = ("canvas", "table", "target", "digits", "corners", "reached", "t", "path")

    #: The classes a target is drawn from (the length of the ``target`` cue); the agent
    #: answers with a location, never a class.
    n_classes = N_CLASSES
    n_answers = 0

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
        canvas_size: int = 100,
        n_distractors: int = 3,
        n_glimpses: int = 10,
        glimpse_size: int = 12,
        n_scales: int = 3,
        scale: float = 2.0,
        grid_size: int = 5,
        saccade_cost: float = 0.01,
        context_size: int = 0,
    ) -> None:
        check_int("canvas_size", canvas_size, low=DIGIT_SIZE)
        check_int("n_distractors", n_distractors, low=0)
        check_number("saccade_cost", saccade_cost)
        # The layout: cells of at least a digit's width, one digit per cell.
        per_side = canvas_size // DIGIT_SIZE
        if per_side**2 < n_distractors + 1:
            raise ValueError(
                f"n_distractors={n_distractors} needs {n_distractors + 1} digits apart on the "
                f"canvas, but a canvas of canvas_size={canvas_size} holds {per_side**2} "
                f"({per_side} x {per_side} cells of {DIGIT_SIZE}+ pixels); raise canvas_size "
                f"(to {DIGIT_SIZE * math.ceil(math.sqrt(n_distractors + 1))}) or lower "
                "n_distractors"
            )
        self.canvas_size = int(canvas_size)
        self.n_distractors = int(n_distractors)
        self.n_digits = self.n_distractors + 1
        self.cells_per_side = per_side
        self.cell_size = self.canvas_size // per_side
        self.saccade_cost = float(saccade_cost)
        super().__init__(
            num_envs,
            device,
            render_mode,
            autoreset,
            split=split,
            dataset=dataset,
            root=root,
            action_mode=action_mode,
            n_glimpses=n_glimpses,
            glimpse_size=glimpse_size,
            n_scales=n_scales,
            scale=scale,
            grid_size=grid_size,
            context_size=context_size,
        )
        # The parent's class label: a search agent is told the class, it never names it.
        del self.label

        # Per-class tables of the split's digits, so that a digit of a drawn class is one
        # gather: class_index[c, :class_count[c]] are the indices of the digits of class c.
        counts = torch.bincount(self.labels, minlength=N_CLASSES)
        missing = [c for c in range(N_CLASSES) if counts[c] == 0]
        if missing:
            raise ValueError(
                f"the {split!r} split of dataset={dataset!r} has no digit of class(es) "
                f"{missing}; visual search draws targets from all {N_CLASSES} classes"
            )
        order = torch.argsort(self.labels, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(self.n_images, device=self.device) - starts[self.labels[order]]
        self.class_count = counts
        self.class_index = torch.zeros(
            N_CLASSES, int(counts.max()), dtype=torch.int64, device=self.device
        )
        self.class_index[self.labels[order], rank] = order
        self._classes = torch.arange(N_CLASSES, device=self.device)

        observations = dict(self.single_observation_space.spaces)
        observations["target"] = spaces.Box(0.0, 1.0, (N_CLASSES,), np.float32)
        self.single_observation_space = spaces.Dict(observations)
        if action_mode == "continuous":
            self.single_action_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        else:
            self.single_action_space = spaces.Discrete(2 * self.grid_size**2)
            self.metadata["answer_actions"] = (self.grid_size**2, self.single_action_space.n)

        n = self.num_envs
        self.target = torch.zeros(n, dtype=torch.int64, device=self.device)
        # Every digit's index in the split and its box's top-left pixel (row, col); the
        # target is digit 0.
        self.digits = torch.zeros(n, self.n_digits, dtype=torch.int64, device=self.device)
        self.corners = torch.zeros(n, self.n_digits, 2, dtype=torch.int64, device=self.device)
        # The saccades made before the gaze first lay on the target (never: n_glimpses + 1).
        self.reached = torch.zeros(n, dtype=torch.int64, device=self.device)

    def memory_estimate(self, num_envs: int) -> int:
        """About how many bytes a core of ``num_envs`` environments holds and touches in a
        step: the glimpse task's (:meth:`GlimpseDigits.memory_estimate`) plus the digits'
        indices and boxes, a reset's draws and its pastes of the other digits, and the
        target cue."""
        k, slots = self.n_distractors, (self.canvas_size // DIGIT_SIZE) ** 2
        digits = 8 * (k + 1) * 3 + 8 + 8  # digits, corners; target, reached
        draws = 4 * (4 * (k + 1) + slots) + 16 * slots  # uniforms; the slots' argsort
        pastes = 40 * DIGIT_SIZE**2 * k  # beyond the one paste the glimpse task counts
        cue = 3 * 4 * N_CLASSES  # as observation, final observation, choice
        return super().memory_estimate(num_envs) + num_envs * (digits + draws + pastes + cue)

    def answer(self, labels: torch.Tensor) -> torch.Tensor:
        """Not for search: an agent that names a class without looking has nothing to say
        here (the answer is a location). Always a ValueError."""
        raise ValueError(
            "VisualSearch has no class answers: the target class is given to the agent "
            "(observation 'target') and it answers with a location (declare 'found')"
        )

    # --- boxes -----------------------------------------------------------------------------
    @property
    def boxes(self) -> torch.Tensor:
        """Every digit's 28 x 28 box, (N, k + 1, 4) as (x_min, y_min, x_max, y_max) in
        location coordinates ([-1, 1], x along the width); the target's is box 0. A location
        lies on a digit when x_min <= x < x_max and y_min <= y < y_max."""
        c = self.canvas_size
        top_left = self.corners.flip(-1).to(torch.float32)  # (col, row) = (x, y) in pixels
        return torch.cat([top_left, top_left + DIGIT_SIZE], -1) * (2.0 / c) - 1.0

    @property
    def target_box(self) -> torch.Tensor:
        """The target's box (N, 4), as in :attr:`boxes`."""
        return self.boxes[:, 0]

    def on_target(self, locations: torch.Tensor) -> torch.Tensor:
        """Whether each location (N, 2) in [-1, 1] lies inside its environment's target box
        (the test of a declaration), (N,) bool."""
        return _inside(self.corners[:, 0], locations, self.canvas_size)

    def target_cell(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The grid cell (discrete mode) to declare at to find the target, (N,) int64: of
        the cells whose centres lie in the target's box, the one nearest the box's centre
        (the first in cell order on a tie); and whether any cell's centre lies in the box,
        (N,) bool (where none does, no declaration finds the target and the cell is any)."""
        # The cells are a G x G grid: a centre lies in the box where its column's x and its
        # row's y do, and the nearest such cell is the nearest column's and row's. Axis by
        # axis, (N, G) tensors, with the declaration's own float operations (_inside).
        g, half = self.grid_size, DIGIT_SIZE / 2
        start = self.corners[:, 0].flip(-1).to(self.cell_locations.dtype)  # (N, 2) as (x, y)
        nearest = []
        for axis, centres in ((0, self.cell_locations[:g, 0]), (1, self.cell_locations[::g, 1])):
            pixel = (centres + 1.0) * (0.5 * self.canvas_size)  # (G,)
            low = start[:, axis, None]
            inside = (pixel >= low) & (pixel < low + DIGIT_SIZE)
            distance = (pixel - (low + half)).abs().masked_fill(~inside, float("inf"))
            nearest.append((distance.argmin(1), inside.any(1)))
        (column, x_inside), (row, y_inside) = nearest
        return row * g + column, x_inside & y_inside

    # --- episode sampling ------------------------------------------------------------------
    def _draw_episodes(self, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """New episodes for the environments of ``index``: canvases (M, C, C) and their
        summed-area tables (in the reset scratch, valid until the next draw), target
        classes (M,), digits (M, k + 1) and their boxes' corners (M, k + 1, 2)."""
        m, c, k = index.numel(), self.canvas_size, self.n_distractors
        per_side, slots = self.cells_per_side, self.cells_per_side**2
        u = self.rng.uniform(index, 4 * (k + 1) + slots)
        picks, offsets = u[:, 1 : k + 2], u[:, k + 2 : 2 * k + 2]
        keys, jitter = u[:, 2 * k + 2 : 2 * k + 2 + slots], u[:, 2 * k + 2 + slots :]

        # Classes: the target's uniform, each distractor's uniform over the 9 others.
        target = (u[:, 0] * N_CLASSES).long()
        others = (target[:, None] + 1 + (offsets * (N_CLASSES - 1)).long()) % N_CLASSES
        classes = torch.cat([target[:, None], others], 1)
        # A digit of each class: a uniform position in the class's table.
        position = (picks * self.class_count[classes]).long()
        digits = self.class_index.view(-1).take(classes * self.class_index.shape[1] + position)

        # Places: distinct cells (the first k + 1 of a random permutation of the grid's
        # cells), each digit at a uniform offset inside its cell.
        cell = keys.argsort(dim=1, stable=True)[:, : k + 1]
        free = self.cell_size - DIGIT_SIZE + 1
        shift = (jitter.view(m, k + 1, 2) * free).long()
        corners = torch.stack([cell // per_side, cell % per_side], -1) * self.cell_size + shift

        canvas = self._scratch[0, :m].zero_()
        self._paste_digits(canvas.view(m, c * c), digits, corners)
        return canvas, self._table_of(canvas), target, digits, corners

    def _first_reached(self, corners: torch.Tensor) -> torch.Tensor:
        """``reached`` at the start of episodes whose digits lie at ``corners`` (M, k+1, 2):
        0 where the first fixation (the centre) is on the target, otherwise never."""
        centre = torch.zeros(corners.shape[0], 2, device=self.device)
        on = _inside(corners[:, 0], centre, self.canvas_size)
        return torch.where(on, 0, self.n_glimpses + 1)

    def _reset_envs(self, index: torch.Tensor) -> None:
        canvas, table, target, digits, corners = self._draw_episodes(index)
        self.canvas[index] = canvas
        self.table[index] = table
        self.target[index] = target
        self.digits[index] = digits
        self.corners[index] = corners
        self.reached[index] = self._first_reached(corners)
        self.t[index] = 0
        self.path[index] = 0.0

    def _reset_where(self, mask: torch.Tensor) -> None:
        # Sync-free: draw a new episode for every environment (the draws of those that go
        # on are thrown away) and keep it where ``mask`` is set, all without a host read.
        canvas, table, target, digits, corners = self._draw_episodes(self._all)
        rows = mask[:, None, None]
        torch.where(rows, canvas, self.canvas, out=self.canvas)
        torch.where(rows, table, self.table, out=self.table)
        torch.where(mask, target, self.target, out=self.target)
        torch.where(mask[:, None], digits, self.digits, out=self.digits)
        torch.where(rows, corners, self.corners, out=self.corners)
        torch.where(mask, self._first_reached(corners), self.reached, out=self.reached)
        self.t.masked_fill_(mask, 0)
        self.path.masked_fill_(rows, 0.0)

    # --- dynamics ----------------------------------------------------------------------------
    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        # Tensor operations only: nothing here reads a value on the host.
        self.t += 1
        if self.action_mode == "continuous":
            location, declare = action[:, :2], action[:, 2] > 0
        else:
            g2 = self.grid_size**2
            location, declare = self.cell_locations[action % g2], action >= g2
        location = location.to(self.path.dtype)
        # The gaze goes to the location in both cases (a declaration looks where it points);
        # episodes end by step n_glimpses, so t stays within the path's n_glimpses + 1.
        self.path.scatter_(1, self._at(self.t), location[:, None, :])
        on_target = self.on_target(location)
        # Saccades made so far: one per step but a declaration's.
        saccades = self.t - declare.long()
        never = self.reached > self.n_glimpses
        torch.where(never & on_target, saccades, self.reached, out=self.reached)

        found = declare & on_target
        reward = torch.where(declare, found.float(), -self.saccade_cost)
        truncated = ~declare & (self.t >= self.n_glimpses)
        done = declare | truncated
        info = {
            "found": found,
            "_found": done,
            "saccades": saccades,
            "_saccades": done,
            "saccades_to_target": self.reached.clone(),
            "_saccades_to_target": done,
            "target": self.target.clone(),
            "_target": done,
        }
        if self.action_mode == "discrete":
            # The declaration on the target (a new tensor), due where the episode ends.
            cell, exists = self.target_cell()
            info["answer"] = cell + self.grid_size**2
            info["_answer"] = done & exists
        return reward, declare, truncated, info

    def _observe(self, index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        obs = super()._observe(index)
        target = self.target if index is None else self.target[index]
        # One-hot by comparison (F.one_hot checks its input's range on the host).
        obs["target"] = (target[:, None] == self._classes).float()
        return obs

    # --- rendering ---------------------------------------------------------------------------
    def render(self, index: int = 0) -> np.ndarray:
        """The canvas of environment ``index`` with the scanpath, the glimpse's patches, the
        target's box (magenta) and, along the top edge, a bar of the steps used so far."""
        frame = super().render(index)
        zoom = frame.shape[0] // self.canvas_size
        top, left = (self.corners[index, 0].cpu().numpy() * zoom).tolist()
        _rectangle(frame, top, left, DIGIT_SIZE * zoom, _TARGET_COLOUR)
        used = int(self.t[index]) * frame.shape[1] // self.n_glimpses
        frame[:2, :used] = _STEPS_COLOUR
        return frame


def _inside(corner: torch.Tensor, locations: torch.Tensor, canvas_size: int) -> torch.Tensor:
    """Whether locations (M, 2) (x, y) in [-1, 1] lie in the 28 x 28 boxes whose top-left
    pixels are ``corner`` (M, 2) (row, col) on a canvas ``canvas_size`` wide, (M,) bool."""
    pixel = (locations + 1.0) * (0.5 * canvas_size)  # (x, y) in pixels
    start = corner.flip(-1).to(pixel.dtype)
    return ((pixel >= start) & (pixel < start + DIGIT_SIZE)).all(-1)


# --- the saliency-guided baseline ----------------------------------------------------------------

#: The smallest side the saliency maps are computed at: Itti-Koch's map lives at 1/16 of
#: the image's width and needs 8 x 8 pixels there (:mod:`cogrl.saliency.itti_koch`).
SALIENCY_MIN_SIZE = 128


class SaliencySearch:
    """The saliency-guided search baseline over a :class:`VisualSearch` core; made by
    :func:`saliency_search`, which says what it does. Call it for the actions of every
    environment's current step."""

    def __init__(
        self,
        core: VisualSearch,
        saliency: str = "itti_koch",
        n_fixations: int | None = None,
        radius: float | None = None,
    ) -> None:
        from cogrl.saliency import MODELS

        if not isinstance(core, VisualSearch):
            raise ValueError(
                f"saliency_search needs a VisualSearch core, got {type(core).__name__}"
            )
        if saliency not in MODELS:
            raise ValueError(f"saliency must be one of {sorted(MODELS)}, got {saliency!r}")
        if n_fixations is None:
            n_fixations = min(core.n_digits, core.n_glimpses - 1)
        check_int("n_fixations", n_fixations, low=0)
        if n_fixations > core.n_glimpses - 1:
            raise ValueError(
                f"n_fixations must lie in [0, {core.n_glimpses - 1}] (a step of the core's "
                f"n_glimpses={core.n_glimpses} is left to declare), got {n_fixations}"
            )
        if radius is None:
            radius = DIGIT_SIZE / core.canvas_size
        check_number("radius", radius, low_open=True, high=2.0)
        self.core, self.saliency, self.model = core, saliency, MODELS[saliency]
        self.n_fixations, self.radius = int(n_fixations), float(radius)
        # Each environment's winners in order, (N, W, 2): saccade s goes to winner s - 1,
        # the declaration to winner 0.
        n = core.num_envs
        self.winners = torch.zeros(n, max(self.n_fixations, 1), 2, device=core.device)
        self._planned = torch.zeros(n, dtype=torch.bool, device=core.device)

    def maps(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """Saliency maps (M, H, W) of the canvases of the environments in ``index`` (default
        all), on the canvas upsampled by a whole factor to at least 128 pixels a side."""
        canvases = self.core.canvas_images(index)[:, None]
        zoom = math.ceil(SALIENCY_MIN_SIZE / self.core.canvas_size)
        if zoom > 1:
            canvases = F.interpolate(canvases, scale_factor=zoom, mode="bilinear").clamp_(0, 1)
        return self.model(canvases)

    def __call__(self, obs: Any = None) -> torch.Tensor:
        """The actions (N, 3) or (N,) of every environment's current step, read from the
        core's state (``obs`` is not needed: the baseline sees the whole canvas). Plans the
        episodes that have just started (one host read, to find them)."""
        core = self.core
        start = (core.t == 0) | ~self._planned
        new = start.nonzero().squeeze(1)
        if new.numel() > 0:
            from cogrl.saliency import winner_take_all

            self.winners[new] = winner_take_all(self.maps(new), self.winners.shape[1], self.radius)
            self._planned[new] = True
        declare = core.t >= self.n_fixations
        step = torch.where(declare, 0, core.t).clamp(max=self.winners.shape[1] - 1)
        location = self.winners.gather(1, step[:, None, None].expand(-1, 1, 2)).squeeze(1)
        if core.action_mode == "continuous":
            sign = torch.where(declare, 1.0, -1.0)[:, None]
            return torch.cat([location, sign], 1)
        # Discrete: the grid cell whose centre is nearest.
        cell = torch.cdist(location, core.cell_locations).argmin(1)
        return cell + declare.long() * core.grid_size**2

    def predict(
        self,
        obs: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[torch.Tensor, None]:
        """The agents' ``predict`` interface: ``(actions, None)``; the baseline is
        deterministic and holds no recurrent state."""
        return self(obs), None


def saliency_search(
    core: VisualSearch,
    saliency: str = "itti_koch",
    n_fixations: int | None = None,
    radius: float | None = None,
) -> SaliencySearch:
    """A bottom-up search baseline for ``core``: Itti and Koch's (2000, "A saliency-based
    search mechanism for overt and covert shifts of visual attention", Vision Research 40)
    saliency-driven search, as a batched policy.

    At the start of each episode it computes the saliency map of the whole canvas
    (``saliency``, a name of :data:`cogrl.saliency.MODELS`; on the canvas upsampled by a
    whole factor to at least 128 pixels a side, the least Itti-Koch takes) and its
    winner-take-all fixations with inhibition of return
    (:func:`cogrl.saliency.winner_take_all`; ``radius``, a fraction of the canvas side,
    default one digit's width, so that one digit is inhibited at a time).

    The rule, which a reader can hold against the task: a bottom-up model has no template
    of the target, so it cannot tell the target when it sees it. It saccades to the first
    ``n_fixations`` winners in order (default one per digit on the canvas, ``k + 1``, or
    ``n_glimpses - 1`` if fewer, the most that leave a step to declare), and then declares
    at the first winner, the most salient location: its one guess at which digit is the
    target is the one that pops out. ``saccades_to_target`` then measures how many
    saccades salience needs to bring the gaze to the target, and the success rate how
    often the target is the most salient digit (1 / (k + 1) when salience does not favour
    it). The target cue is not used.

    Returns a :class:`SaliencySearch`: call it (or its ``predict``) before each step for the
    actions of every environment; in the discrete mode each location goes to the grid cell
    whose centre is nearest.
    """
    return SaliencySearch(core, saliency, n_fixations, radius)
