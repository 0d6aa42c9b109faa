"""Multi-object recognition: read every digit on a canvas, in order, one glimpse at a time.

## Description

Ba, Mnih and Kavukcuoglu (2015), "Multiple Object Recognition with Visual Attention":
several MNIST digits lie apart on a large canvas that the agent never sees whole. Each
step it sees one glimpse (a few patches of growing width, :mod:`cogrl.retina`) at the
location it chose, and at any step it may also *emit* a label. The answer is the digits'
labels in reading order (``target="sequence"``, the paper's "MNIST pairs" for two digits)
or their sum (``target="sum"``, the paper's MNIST addition).

Reading order is the order of text: the digits are laid out in lines from top to bottom
(``ceil(n / per_line)`` lines of at most ``canvas_size // 28`` digits each), and within
a line from left to right. Each line holds its digits apart (no two 28 x 28 boxes
overlap) at random horizontal positions and at a random height within the line's band:
on the default 100 x 100 canvas, two digits share one line, anywhere in it.

## Action Space

With ``K`` answer classes (10 for a sequence; ``9 n + 1`` for the sum of ``n`` digits):

``action_mode="continuous"`` (default, RAM and DRAM): ``Box(-1, 1, (2 + K + 2,), float32)``.
The first two values are the next glimpse location ``l = (x, y)`` ((0, 0) is the canvas
centre, (-1, -1) its top-left corner). The argmax of the other ``K + 2`` scores chooses
what the step emits: label ``c < K``, nothing (``K``: only look), or end-of-sequence
(``K + 1``).

``action_mode="discrete"`` (for Stable-Baselines3's PPO and DQN):
``Discrete(G*G + K + 1)``: ``a < G*G`` looks at the centre of grid cell ``a`` (row
``a // G``, column ``a % G``); ``G*G + c`` emits label ``c`` without moving;
``G*G + K`` ends the sequence.

An action of the wrong shape or dtype, outside the space, or not finite raises
``ValueError`` (:func:`cogrl.spaces.check_actions`).

## Observation Space

As the glimpse tasks (:mod:`cogrl.envs.attention.glimpse`): ``Dict`` of flat float32
``glimpse`` (k * g * g,), ``location`` (2,), and with ``context_size=s`` the ``context``
(s * s,), the canvas's mean in s x s blocks (DRAM's context network's input).

## Rewards

1 for each emitted label that equals the answer's label at its position (the i-th label
emitted is compared with the i-th digit in reading order, or with the sum), otherwise 0.

## Starting State

``n_digits`` digits drawn uniformly from the split, laid out as above, with
``n_clutter`` random 8 x 8 fragments of other digits; the first glimpse is at the centre.
The core's ``corners`` (N, n_digits, 2) hold each digit's box (top-left row and column
of its 28 x 28 pixels) in reading order.

## Episode End

The episode terminates when the agent has emitted as many labels as the answer has
(``n_digits`` for a sequence, 1 for the sum) or emits end-of-sequence; it is truncated
after ``n_glimpses`` steps. At the step an episode ends, ``info`` holds ``labels`` (the
answer, (n_answers,) int64), ``prediction`` (the labels emitted, -1 where none),
``correct`` (the whole answer right: every label, and no end-of-sequence before it) and
``labels_correct`` (the fraction of positions right), and ``on_digit``: the fraction of
the glimpses the agent chose whose centre lies in the ink box of one of the digits (as the
glimpse tasks': :mod:`cogrl.envs.attention.glimpse`). ``metadata["episode_metrics"]``
reports ``accuracy`` (sequences right), ``label_accuracy`` and ``on_digit``;
``metadata["label_key"]`` is ``"labels"``.

In the discrete mode the core also declares ``metadata["answer_key"] = "answer"`` and
reports at every step, for learners that supervise answers, ``info["answer"]``: the action
that emits the label due next (``G*G + c``, ``c`` the label at the position of the next
emission; int64 (num_envs,)), which earns the reward 1. Its mask ``_answer`` is true at the
steps that answer (an emission or end-of-sequence, whatever it emitted) and at the step the
episode ends (also when truncated while looking), false at looks: a look earns no less in
the end than an early emission, so a supervised loss at looks would teach the agent to emit
without looking. At an episode's last step it is the finished episode's answer, not the next
episode's. ``metadata["answer_actions"] = (G*G, G*G + K + 1)`` is the range of the answering
actions (emissions and end-of-sequence), for learners that supervise which answer given that
the agent answers (PPO's and A2C's ``answer_scope="answers"``). In the continuous mode there is no
``answer_key`` (the answer is scores, which no likelihood applies to). No action is ignored
(no ``ignored_key``). There are no ``reward_parts``: in either mode a step's action is one
choice (one emission, or a look), and its reward scores that one emission, not independent
parts of the action.

## Arguments

```python
gym.make("cogrl/MultiDigits-v0", n_digits=2, target="sequence", canvas_size=100,
         n_clutter=0, split="train", dataset="digits", root=None,
         action_mode="continuous", n_glimpses=None, glimpse_size=12, n_scales=3,
         scale=2.0, grid_size=5, context_size=0, render_mode=None)
```

- ``n_digits``: digits per canvas, at least 1 (5 fit the default canvas: two lines).
- ``target``: ``"sequence"`` (labels in reading order) or ``"sum"``.
- ``canvas_size``: the canvas side in pixels, at least 28; the digits' lines must fit.
- ``n_clutter``: clutter fragments (0 by default, as the paper's pairs).
- ``n_glimpses``: the most steps per episode (default ``5 * n_digits``: four glimpses and
  an emission per digit in the discrete mode).
- ``split``, ``dataset``, ``root``, ``glimpse_size``, ``n_scales``, ``scale``,
  ``grid_size``, ``context_size``: as the glimpse tasks.

## Version History

- v0: initial version; ``on_digit`` added to its info and episode metrics without a
  version change (the dynamics and rewards are unchanged).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from cogrl.checks import check_choice
from cogrl.core import Info
from cogrl.envs.attention.glimpse import DIGIT_SIZE, N_CLASSES, GlimpseDigits, _positive_int

TARGETS = ("sequence", "sum")


class MultiDigits(GlimpseDigits):
    """Batched core of the multi-digit task (see the module docstring)."""

    reset_options = ()  # an episode shows several images: they are not items

    canvas_is_argument = True

    metadata: dict[str, Any] = {
        **GlimpseDigits.metadata,
        "episode_metrics": {
            "accuracy": "correct",
            "label_accuracy": "labels_correct",
            "on_digit": "on_digit",
        },
        "label_key": "labels",
    }
    state_attributes = (*GlimpseDigits.state_attributes, "corners", "emitted", "n_emitted")

    translate = True
    defaults = {"n_glimpses": None, "glimpse_size": 12, "n_scales": 3, "grid_size": 5}

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
        n_digits: int = 2,
        target: str = "sequence",
        canvas_size: int = 100,
        n_clutter: int = 0,
        n_glimpses: int | None = None,
        glimpse_size: int | None = None,
        n_scales: int | None = None,
        scale: float = 2.0,
        grid_size: int | None = None,
        context_size: int = 0,
    ) -> None:
        check_choice("target", target, TARGETS)
        self.n_digits = _positive_int("n_digits", n_digits)
        self.canvas_size = _positive_int("canvas_size", canvas_size)
        if isinstance(n_clutter, bool) or not isinstance(n_clutter, int) or n_clutter < 0:
            raise ValueError(f"n_clutter must be an int >= 0, got {n_clutter!r}")
        self.n_clutter = n_clutter
        self.target = target
        # The layout: lines of at most per_line digits, as even as can be, in bands.
        per_line = self.canvas_size // DIGIT_SIZE
        n_lines = math.ceil(self.n_digits / per_line) if per_line else 0
        if per_line == 0 or n_lines * DIGIT_SIZE > self.canvas_size:
            fits = per_line * (self.canvas_size // DIGIT_SIZE)
            raise ValueError(
                f"{self.n_digits} digits of 28 x 28 do not fit apart on a {self.canvas_size} x "
                f"{self.canvas_size} canvas (it holds {fits}); raise canvas_size or lower "
                "n_digits"
            )
        counts = [self.n_digits // n_lines + (j < self.n_digits % n_lines) for j in range(n_lines)]
        self.line_counts, self.band = counts, self.canvas_size // n_lines
        self.n_answers = self.n_digits if target == "sequence" else 1
        self.n_classes = N_CLASSES if target == "sequence" else 9 * self.n_digits + 1
        if n_glimpses is None:
            n_glimpses = 5 * self.n_digits
        super().__init__(
            num_envs,
            device,
            render_mode,
            autoreset,
            split,
            dataset,
            root,
            action_mode,
            n_glimpses,
            glimpse_size,
            n_scales,
            scale,
            grid_size,
            context_size,
        )
        k = self.n_classes
        if action_mode == "continuous":
            self.single_action_space = spaces.Box(-1.0, 1.0, (2 + k + 2,), np.float32)
        else:
            self.single_action_space = spaces.Discrete(self.grid_size**2 + k + 1)
            self.metadata["answer_actions"] = (self.grid_size**2, self.single_action_space.n)
        n = self.num_envs
        self.label = torch.zeros(n, self.n_answers, dtype=torch.int64, device=self.device)
        self.emitted = torch.full_like(self.label, -1)
        self.n_emitted = torch.zeros(n, dtype=torch.int64, device=self.device)
        # Top-left pixel (row, col) of each digit's 28 x 28 box, in reading order.
        self.corners = torch.zeros(n, self.n_digits, 2, dtype=torch.int64, device=self.device)

    def memory_estimate(self, num_envs: int) -> int:
        """The glimpse tasks' estimate, plus a reset's pastes of the further digits and the
        answers (labels, emitted labels and their copies in ``info``)."""
        more = 40 * DIGIT_SIZE**2 * (self.n_digits - 1) + 8 * 6 * self.n_digits
        return super().memory_estimate(num_envs) + num_envs * more

    def answer(self, labels: torch.Tensor) -> torch.Tensor:
        """Actions (M, ...) that emit ``labels`` (M,) now: in the continuous mode the
        label's one-hot scores (and location 0), in the discrete mode ``G*G + label``."""
        if self.action_mode == "discrete":
            return labels.long() + self.grid_size**2
        scores = F.one_hot(labels.long(), self.n_classes + 2).float() * 2.0 - 1.0
        return torch.cat([torch.zeros(labels.shape[0], 2, device=labels.device), scores], 1)

    # --- episode sampling ------------------------------------------------------------------
    def _draw_episodes(self, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m, c, n = index.numel(), self.canvas_size, self.n_digits
        u = self.rng.uniform(index, 3 * n + 5 * self.n_clutter)
        digit = (u[:, :n] * self.n_images).long()
        corners, start = [], 0
        for line, count in enumerate(self.line_counts):
            # Left to right: sorted offsets into the line's free width, each digit 28 px
            # after the one before, so boxes never overlap and order is reading order.
            free = c - DIGIT_SIZE * count
            gaps = (u[:, n + start : n + start + count] * (free + 1)).long().sort(1).values
            cols = gaps + DIGIT_SIZE * torch.arange(count, device=self.device)
            v = u[:, 2 * n + start : 2 * n + start + count]
            rows = line * self.band + (v * (self.band - DIGIT_SIZE + 1)).long()
            corners.append(torch.stack([rows, cols], 2))
            start += count
        corner = torch.cat(corners, 1)  # (M, n, 2) in reading order
        self._drawn_corners = corner  # kept by the resets with the canvases
        self._drawn_boxes = self._boxes_of(digit, corner)

        canvas = self._scratch[0, :m].zero_()
        flat = canvas.view(m, c * c)
        self._paste_clutter(flat, u[:, 3 * n :])
        self._paste_digits(flat, digit, corner)
        labels = self.labels[digit]
        if self.target == "sum":
            labels = labels.sum(1, keepdim=True)
        return canvas, self._table_of(canvas), labels

    def _reset_envs(self, index: torch.Tensor) -> None:
        super()._reset_envs(index)
        self.corners[index] = self._drawn_corners
        self.emitted[index] = -1
        self.n_emitted[index] = 0

    def _reset_where(self, mask: torch.Tensor) -> None:
        super()._reset_where(mask)
        torch.where(mask[:, None, None], self._drawn_corners, self.corners, out=self.corners)
        self.emitted.masked_fill_(mask[:, None], -1)
        self.n_emitted.masked_fill_(mask, 0)

    # --- dynamics ----------------------------------------------------------------------------
    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        # Tensor operations only: nothing here reads a value on the host.
        self.t += 1
        k = self.n_classes
        previous = self.path.gather(1, self._at(self.t - 1)).squeeze(1)
        if self.action_mode == "continuous":
            location = action[:, :2]
            choice = action[:, 2:].argmax(dim=1)  # c < K: label c; K: nothing; K + 1: EOS
            eos = choice == k + 1
        else:
            g2 = self.grid_size**2
            look = action < g2
            location = torch.where(
                look[:, None], self.cell_locations[action.clamp(max=g2 - 1)], previous
            )
            eos = action == g2 + k
            choice = torch.where(look | eos, torch.full_like(action, k), action - g2)
        emit = choice < k
        # The i-th label emitted answers position i (the answer is never longer).
        position = self.n_emitted.clamp(max=self.n_answers - 1)[:, None]
        expected = self.label.gather(1, position).squeeze(1)
        reward = (emit & (choice == expected)).float()
        written = torch.where(emit, choice, self.emitted.gather(1, position).squeeze(1))
        self.emitted.scatter_(1, position, written[:, None])
        self.n_emitted += emit.long()
        self.path.scatter_(1, self._at(self.t), location[:, None, :].to(self.path.dtype))

        terminated = eos | (self.n_emitted >= self.n_answers)
        truncated = ~terminated & (self.t >= self.n_glimpses)
        done = terminated | truncated
        right = self.emitted == self.label
        info = {
            "labels": self.label.clone(),
            "_labels": done,
            "prediction": self.emitted.clone(),
            "_prediction": done,
            "correct": right.all(1),
            "_correct": done,
            "labels_correct": right.float().mean(1),
            "_labels_correct": done,
        }
        if self.action_mode == "discrete":
            # Emitting the label due at this position (a new tensor), due at the steps that
            # answer (an emission or end-of-sequence) and at the step the episode ends.
            info["answer"] = self.answer(expected)
            info["_answer"] = ~look | done
            looked = look & ~done
        else:
            looked = ~done  # the location sent at the last step is never seen
        self._count_looks(location, looked, info)
        return reward, terminated, truncated, info

    # --- rendering ---------------------------------------------------------------------------
    def render(self, index: int = 0) -> np.ndarray:
        """The glimpse tasks' frame (canvas, glimpse patches, scanpath) over a strip that
        shows the labels emitted so far, ``_`` for those still to come."""
        frame = super().render(index)
        from PIL import Image, ImageDraw

        strip = Image.new("RGB", (frame.shape[1], 20))
        emitted = self.emitted[index].tolist()
        text = " ".join("_" if c < 0 else str(c) for c in emitted)
        ImageDraw.Draw(strip).text((4, 4), f"answer: {text}", fill=(255, 255, 255))
        return np.concatenate([frame, np.asarray(strip)], 0)
