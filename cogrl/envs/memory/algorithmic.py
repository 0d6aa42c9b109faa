"""The algorithmic memory tasks of the Neural Turing Machine: copy, repeat copy, associative
recall.

## Description

Graves, Wayne and Danihelka (2014), "Neural Turing Machines", section 4: a controller sees a
sequence of random binary vectors, one per step, and must then write out a function of it,
one vector per step. Framed as an MDP, the observation of step ``t`` is the input vector of
step ``t`` and the action of step ``t`` the output vector of step ``t``; actions before the
output phase are ignored.

- ``cogrl/Copy-v0`` (section 4.1): a sequence of ``length`` random ``bits``-bit vectors,
  then a delimiter step; then the agent writes the sequence back, one vector per step.
- ``cogrl/RepeatCopy-v0`` (section 4.2): a sequence, a delimiter step, then a step that
  gives the repeat count ``repeats`` on its own channel; then the agent writes the sequence
  ``repeats`` times and, at the step after, an end marker on an extra output channel.
- ``cogrl/AssociativeRecall-v0`` (section 4.3): ``items`` items, each ``item_length``
  random vectors after an item-delimiter step; then a query item between two
  query-delimiter steps; then the agent writes the item that followed the query item in
  the sequence. The items of an episode are distinct and the query is never the last item,
  so the answer is always defined and unique.

Step layouts (``L`` = length, ``R`` = repeats, ``K`` = items, ``I`` = item_length):

| task | input steps | output steps | episode steps |
|---|---|---|---|
| Copy | L vectors, 1 delimiter | L | 2L + 1 |
| RepeatCopy | L vectors, 1 delimiter, 1 count | L R + 1 | L (R + 1) + 3 |
| AssociativeRecall | K (1 + I), then 1 + I + 1 for the query | I | K (I + 1) + 2 I + 2 |

## Action Space

``MultiBinary(n)``: the output vector of the step (an int8, any-integer or bool array of 0s
and 1s, as Gymnasium's ``MultiBinary``); ``n = bits`` for Copy and AssociativeRecall,
``bits + 1`` for RepeatCopy (the last channel is the end marker). It is read at output
steps only. An action of the wrong shape or dtype, or with a value other than 0 and 1, is a
``ValueError`` (:func:`cogrl.spaces.check_actions`).

## Observation Space

``Box(low, high, (bits + 2,), float32)``, the input vector of the step:

| task | channels ``0 .. bits - 1`` | channel ``bits`` | channel ``bits + 1`` |
|---|---|---|---|
| Copy | the data bits | delimiter flag | "answer now" flag (set at every output step) |
| RepeatCopy | the data bits | delimiter flag | the normalised repeat count (count step only) |
| AssociativeRecall | the data bits | item delimiter flag | query delimiter flag |

Bits and flags are 0 or 1 (``low = 0``, ``high = 1``); at output steps the data bits are 0.
RepeatCopy's count channel holds ``(R - mean) / std``, where ``mean`` and ``std`` are those
of the uniform distribution over the counts ``normalise_repeats = (low, high)`` (by default
the training range ``(min_repeats, max_repeats)``): ``mean = (low + high) / 2`` and
``std = sqrt(((high - low + 1)**2 - 1) / 12)``. This is the paper's "normalised to have mean
zero and variance one", with the constants of pytorch-ntm's ``repeatcopytask.py``
(loudinthecloud/pytorch-ntm). The channel's bounds in the space are those of the counts the
environment draws (and 0, its value at other steps).

## Rewards

At each output step, the fraction of the output channels the action got right (1 for a
perfect vector); 0 at input steps. A perfect episode of Copy returns ``length``.

Each channel is scored on its own, so the reward comes in parts:
``metadata["reward_parts"] = n`` (the action's channels) and, at every step,
``info["reward_parts"]``, a float32 (num_envs, n) whose part ``i`` is ``1 / n`` where
channel ``i`` of the action is right at an output step, 0 elsewhere (and 0 at input
steps). The parts sum to the reward (within float32 rounding, 1e-6).

## Starting State

Lengths, repeat counts and item counts are drawn uniformly from their ranges, data bits
uniformly from {0, 1}; AssociativeRecall's query uniformly from the items but the last.
The first observation is the first input vector.

## Episode End

The episode terminates after its last output step. At that step ``info`` reports
``bit_errors`` (output bits wrong in the whole output phase), ``correct`` (no bit wrong)
and the episode's sizes (``length``; RepeatCopy also ``repeats``; AssociativeRecall
``items`` instead of ``length``), each with its Gymnasium vector-style mask ``_bit_errors``,
``_correct``, ... . ``metadata["episode_metrics"] = {"bit_errors": "bit_errors",
"accuracy": "correct"}`` tells learners to report the mean bits wrong per sequence and the
fraction of sequences without error.

At every step ``info`` also reports, for learners that assign credit or supervise answers:

- ``action_ignored`` (bool (num_envs,), no mask; ``metadata["ignored_key"] =
  "action_ignored"``): true where the action just taken was ignored, at every input
  step: Copy's sequence and delimiter steps, RepeatCopy's sequence, delimiter and count
  steps, AssociativeRecall's item and query steps (delimiters included). The action then
  changes nothing: not the observations, the rewards nor the episode's end.
- ``answer`` (int8 (num_envs, n), as the action space's batches; ``metadata["answer_key"]
  = "answer"``): the target vector of the step just taken, the action that earns the full
  reward 1, with mask ``_answer``, true at output steps (``answer`` is all zeros
  elsewhere). At the step an episode ends it is the finished episode's target, not the
  next episode's.

There are no data splits (``metadata["splits"] == ()``): the tasks are generated;
generalisation is tested by lengths, counts and item counts beyond those trained on, which
the arguments set.

## Arguments

```python
gym.make("cogrl/Copy-v0", bits=8, min_length=1, max_length=20, render_mode=None)
gym.make("cogrl/RepeatCopy-v0", bits=8, min_length=1, max_length=10, min_repeats=1,
         max_repeats=10, normalise_repeats=None, render_mode=None)
gym.make("cogrl/AssociativeRecall-v0", bits=6, item_length=3, min_items=2, max_items=6,
         render_mode=None)
```

Defaults are the paper's training settings. Any sizes may be set for evaluation (Copy with
``min_length=max_length=120``, AssociativeRecall with 12 items); sizes whose tensors would
need more memory than the device has are a ``ValueError`` raised before anything is
allocated. With a single repeat count (``min_repeats == max_repeats``), RepeatCopy needs
``normalise_repeats``: the training range, so that the agent sees the count on the scale it
learnt.

The ranges may change while the core runs, per environment, for a curriculum
(:meth:`cogrl.core.BatchedEnv.configure`, :mod:`cogrl.curriculum`): Copy's ``min_length``
and ``max_length``, RepeatCopy's and its ``min_repeats`` and ``max_repeats``,
AssociativeRecall's ``min_items`` and ``max_items``, each from the environment's next
episode on. They stay within what the core was built for: lengths and item counts up to
the ``max_length`` and ``max_items`` its tapes hold (build it with the largest), repeat
counts within the built ``[min_repeats, max_repeats]`` (the count channel's bounds;
the count is normalised by the built range whatever the configured one), ``min <= max``.
A configured range draws from the same uniforms as a core built with it (its lengths;
Copy's and RepeatCopy's bits too).

``render_mode="rgb_array"`` draws the episode so far as in the paper's figures: the inputs
above, the targets and the agent's outputs below (wrong output bits in red), time running
to the right.

## Version History

- v0: initial version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces

from cogrl.checks import check_int
from cogrl.core import (
    BatchedEnv,
    Info,
    check_configured,
    check_configured_order,
    check_memory,
    check_num_envs,
    resolve_device,
)

__all__ = [
    "AlgorithmicTask",
    "Copy",
    "RepeatCopy",
    "AssociativeRecall",
    "check_env_index",
    "render_tape",
]

# Draws of an episode from the environment's random stream (cogrl.rng): the sizes come
# first, the bits after them, so that an episode depends on its seed alone.
_SIZE_DRAWS = 4

# Rendering: pixels per cell, colours.
_CELL = 8
_UNUSED = np.array([45, 45, 55], np.uint8)  # steps not reached yet, or no value there
_GRID = np.array([20, 20, 20], np.uint8)
_WRONG_ONE = np.array([255, 70, 70], np.uint8)  # output 1 where the target is 0
_WRONG_ZERO = np.array([120, 0, 0], np.uint8)  # output 0 where the target is 1
_NOW = np.array([255, 200, 0], np.uint8)


class AlgorithmicTask(BatchedEnv):
    """Base of the NTM's algorithmic tasks: a core whose episodes are a fixed input tape and
    a target tape, drawn whole at reset.

    A subclass draws episodes in :meth:`_draw` and declares its sizes; this base holds the
    tapes in padded per-environment tensors (``inputs`` (N, T + 1, C_in), ``targets`` (N,
    T + 1, C_out), ``T = max_episode_steps``; step ``steps``, after the last, is the
    all-zero final observation), so that a step indexes them by the step counter:
    the same few tensor operations whatever the lengths. It scores outputs (and their
    parts, channel by channel), reports ``bit_errors``, ``correct`` and the sizes at
    episode ends and the ignored steps and targets at every step, keeps the agent's
    outputs for rendering and resets under a mask without host reads (sync-free devices).
    """

    metadata: dict[str, Any] = {
        **BatchedEnv.metadata,
        "render_fps": 8,
        "episode_metrics": {"bit_errors": "bit_errors", "accuracy": "correct"},
        "splits": (),
        "ignored_key": "action_ignored",
        "answer_key": "answer",
        # "reward_parts": the output channels, set per instance (see _setup)
    }
    #: The per-episode sizes (int tensors (N,) of the same names) reported in ``info`` at
    #: episode ends.
    episode_sizes: ClassVar[tuple[str, ...]] = ()
    # The episodes in progress (see BatchedEnv.state_dict): the tapes, where the output
    # phase starts and how many steps the episode has, the agent's outputs, the step
    # counter and the errors so far; subclasses add their episode sizes.
    state_attributes: ClassVar[tuple[str, ...]] = (
        "inputs",
        "targets",
        "answer_start",
        "steps",
        "outputs",
        "t",
        "bit_errors",
    )

    def _setup(
        self,
        num_envs: int,
        device: str | torch.device,
        render_mode: str | None,
        autoreset: bool,
        *,
        n_inputs: int,
        n_outputs: int,
        max_steps: int,
        draws: int,
        arguments: Mapping[str, Any],
    ) -> None:
        """The base's constructor: checks that the tapes fit on the device (naming
        ``arguments``), then allocates them. ``draws``: uniforms an episode draws."""
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        self.max_episode_steps = max_steps
        # One reward part per output channel (element i of the flattened action).
        self.metadata = {**type(self).metadata, "reward_parts": n_outputs}
        self._draws = draws
        num_envs = check_num_envs(num_envs)
        check_memory(
            resolve_device(device),
            self.memory_estimate(num_envs),
            {"num_envs": num_envs, **arguments},
        )
        BatchedEnv.__init__(self, num_envs, device, render_mode, autoreset)
        # One step more than the longest episode: the final observation (all zeros).
        n, t, dev = self.num_envs, max_steps + 1, self.device
        self.inputs = torch.zeros(n, t, n_inputs, device=dev)
        self.targets = torch.zeros(n, t, n_outputs, dtype=torch.int8, device=dev)
        # The agent's outputs at the output steps so far (0 elsewhere), for rendering.
        self.outputs = torch.zeros(n, t, n_outputs, dtype=torch.int8, device=dev)
        self.answer_start = torch.zeros(n, dtype=torch.int64, device=dev)
        self.steps = torch.ones(n, dtype=torch.int64, device=dev)
        self.t = torch.zeros(n, dtype=torch.int64, device=dev)
        self.bit_errors = torch.zeros(n, dtype=torch.int64, device=dev)
        for name in self.episode_sizes:
            setattr(self, name, torch.zeros(n, dtype=torch.int64, device=dev))
        low, high = self._observation_bounds()
        self.single_observation_space = spaces.Box(low, high, (n_inputs,), np.float32)
        self.single_action_space = spaces.MultiBinary(n_outputs)

    def memory_estimate(self, num_envs: int) -> int:
        """About how many bytes a core of ``num_envs`` environments holds and touches: the
        tapes and outputs, a reset's freshly drawn tapes, the index and mask tensors that
        compose them, and its random draws (with the hash's temporaries)."""
        t, c_in, c_out = self.max_episode_steps + 1, self.n_inputs, self.n_outputs
        tapes = t * (4 * c_in + 2 * c_out)  # inputs (float32), targets and outputs (int8)
        composing = t * (8 * 4 + 4 * (c_in + c_out))  # step indices, masks, gathered rows
        draws = self._draws * 40
        return num_envs * (3 * tapes + composing + draws + 64)

    def _observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Low and high of each input channel: bits and flags lie in [0, 1]."""
        return np.zeros(self.n_inputs, np.float32), np.ones(self.n_inputs, np.float32)

    # --- episode sampling (subclasses) -------------------------------------------------------
    def _draw(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """New episodes for the environments of ``index`` (M,): ``inputs`` (M, T + 1, C_in)
        float32 and ``targets`` (M, T + 1, C_out) int8 (zero from step ``steps`` on),
        ``answer_start`` (the first output step) and ``steps`` (M,), and each of
        ``episode_sizes`` (M,)."""
        raise NotImplementedError

    def _draw_sizes(
        self, index: torch.Tensor, ranges: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        """Ints (M, len(ranges)), column j uniform in ``ranges[j]`` (inclusive), from the
        episode's first draws. The bounds are int64 tensors (M,), each environment's own
        (the configured ranges): the same uniforms, scaled by each environment's range."""
        u = self.rng.uniform(index, len(ranges), start=0).double()
        low = torch.stack([lo for lo, _ in ranges], dim=1)
        span = torch.stack([hi - lo + 1 for lo, hi in ranges], dim=1)
        return low + torch.minimum((u * span).long(), span - 1)

    def _configured_range(
        self, index: torch.Tensor, low: str, high: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The configured range ``(low, high)`` of the environments of ``index`` (M,)."""
        return self._configured(low)[index], self._configured(high)[index]

    def _draw_bits(self, index: torch.Tensor, shape: tuple[int, ...], start: int) -> torch.Tensor:
        """Uniform random bits (M, *shape) as int8, from the draws ``start`` on."""
        u = self.rng.uniform(index, math.prod(shape), start=_SIZE_DRAWS + start)
        return (u < 0.5).to(torch.int8).view(len(index), *shape)

    def _step_index(self) -> torch.Tensor:
        """The steps ``0 .. T`` of the tapes as a row (1, T + 1), to compare with sizes
        (M, 1)."""
        return torch.arange(self.max_episode_steps + 1, device=self.device)[None]

    # --- resets ----------------------------------------------------------------------------------
    def _reset_envs(self, index: torch.Tensor) -> None:
        for name, value in self._draw(index).items():
            getattr(self, name)[index] = value
        self.outputs[index] = 0
        self.t[index] = 0
        self.bit_errors[index] = 0

    def _reset_where(self, mask: torch.Tensor) -> None:
        # Sync-free: draw a new episode for every environment (the draws of those that go on
        # are thrown away) and keep it where ``mask`` is set, without a host read.
        for name, value in self._draw(self._all).items():
            target = getattr(self, name)
            rows = mask.view(-1, *[1] * (target.ndim - 1))
            torch.where(rows, value, target, out=target)
        self.outputs.masked_fill_(mask[:, None, None], 0)
        self.t.masked_fill_(mask, 0)
        self.bit_errors.masked_fill_(mask, 0)

    # --- dynamics --------------------------------------------------------------------------------
    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        # Tensor operations only: nothing here reads a value on the host. Episodes end by
        # step `steps` <= T and the base never steps a finished one, so t < T here (and
        # t <= T when observing).
        answering = self.t >= self.answer_start
        target = self.targets[self._all, self.t]
        output = action.to(torch.int8)
        errors = ((output != target) & answering[:, None]).sum(1)
        self.bit_errors += errors
        self.outputs[self._all, self.t] = torch.where(answering[:, None], output, 0)
        # Reward: the fraction of the output channels right, at output steps only.
        right = 1.0 - errors.float() / self.n_outputs
        reward = torch.where(answering, right, torch.zeros_like(right))
        # The reward's parts, channel by channel (they sum to it within float rounding).
        parts = (answering[:, None] & (output == target)).float() / self.n_outputs
        self.t += 1
        terminated = self.t >= self.steps
        info: Info = {
            "bit_errors": self.bit_errors.clone(),
            "_bit_errors": terminated,
            "correct": self.bit_errors == 0,
            "_correct": terminated,
            "reward_parts": parts,
            "action_ignored": ~answering,
            # The targets (a new tensor: resets do not touch it); valid at output steps.
            "answer": target,
            "_answer": answering,
        }
        for name in self.episode_sizes:
            info[name] = getattr(self, name).clone()
            info["_" + name] = terminated
        return reward, terminated, torch.zeros_like(terminated), info

    def _observe(self, index: torch.Tensor | None = None) -> torch.Tensor:
        if index is None:
            return self.inputs[self._all, self.t]
        return self.inputs[index, self.t[index]]

    # --- rendering -------------------------------------------------------------------------------
    def render(self, index: int = 0) -> np.ndarray:
        """Environment ``index``'s episode so far: inputs (to the current step) above, the
        targets and the agent's outputs of the output steps taken below."""
        check_env_index(index, self.num_envs)
        t = int(self.t[index])
        start, steps = int(self.answer_start[index]), int(self.steps[index])
        low, high = self._observation_bounds()
        tape = slice(0, self.max_episode_steps)
        inputs = self.inputs[index, tape].cpu().numpy()
        span = np.where(high > low, high - low, 1.0)
        answered = np.zeros(self.max_episode_steps, bool)
        answered[start : min(t, steps)] = True
        return render_tape(
            np.clip((inputs - low) / span, 0.0, 1.0),
            self.targets[index, tape].cpu().numpy(),
            self.outputs[index, tape].cpu().numpy(),
            answered,
            seen=min(t + 1, steps),
            now=t if t < steps else None,
        )


class Copy(AlgorithmicTask):
    """The NTM's copy task (see the module docstring)."""

    episode_sizes = ("length",)
    state_attributes = (*AlgorithmicTask.state_attributes, *episode_sizes)
    configurable = ("min_length", "max_length")

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        render_mode: str | None = None,
        autoreset: bool = True,
        bits: int = 8,
        min_length: int = 1,
        max_length: int = 20,
    ) -> None:
        check_int("bits", bits)
        check_int("min_length", min_length)
        check_int("max_length", max_length)
        _check_range("min_length", min_length, "max_length", max_length)
        self.bits, self.min_length, self.max_length = int(bits), int(min_length), int(max_length)
        self._setup(
            num_envs,
            device,
            render_mode,
            autoreset,
            n_inputs=self.bits + 2,
            n_outputs=self.bits,
            max_steps=2 * self.max_length + 1,
            draws=_SIZE_DRAWS + self.max_length * self.bits,
            arguments={"bits": bits, "max_length": max_length},
        )

    def _check_configuration(self, values: Mapping[str, torch.Tensor]) -> None:
        _check_lengths(self, values)

    def _draw(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        lengths = self._configured_range(index, "min_length", "max_length")
        length = self._draw_sizes(index, [lengths])[:, 0]
        sequence = self._draw_bits(index, (self.max_length, self.bits), start=0)
        s, n = self._step_index(), length[:, None]
        answer = (s > n) & (s <= 2 * n)
        data = _gather_steps(sequence, s.expand(len(index), -1), s < n)
        inputs = torch.cat([data, (s == n)[..., None], answer[..., None]], dim=2)
        # Output step L + 1 + j asks for input vector j.
        targets = _gather_steps(sequence, s - n - 1, answer)
        return {
            "inputs": inputs.float(),
            "targets": targets,
            "answer_start": length + 1,
            "steps": 2 * length + 1,
            "length": length,
        }


class RepeatCopy(AlgorithmicTask):
    """The NTM's repeat copy task (see the module docstring)."""

    episode_sizes = ("length", "repeats")
    state_attributes = (*AlgorithmicTask.state_attributes, *episode_sizes)
    configurable = ("min_length", "max_length", "min_repeats", "max_repeats")

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        render_mode: str | None = None,
        autoreset: bool = True,
        bits: int = 8,
        min_length: int = 1,
        max_length: int = 10,
        min_repeats: int = 1,
        max_repeats: int = 10,
        normalise_repeats: tuple[int, int] | None = None,
    ) -> None:
        for name, value in (
            ("bits", bits),
            ("min_length", min_length),
            ("max_length", max_length),
            ("min_repeats", min_repeats),
            ("max_repeats", max_repeats),
        ):
            check_int(name, value)
        _check_range("min_length", min_length, "max_length", max_length)
        _check_range("min_repeats", min_repeats, "max_repeats", max_repeats)
        self.bits, self.min_length, self.max_length = int(bits), int(min_length), int(max_length)
        self.min_repeats, self.max_repeats = int(min_repeats), int(max_repeats)
        self.normalise_repeats = _check_normalisation(normalise_repeats, min_repeats, max_repeats)
        self._setup(
            num_envs,
            device,
            render_mode,
            autoreset,
            n_inputs=self.bits + 2,
            n_outputs=self.bits + 1,
            max_steps=self.max_length * (self.max_repeats + 1) + 3,
            draws=_SIZE_DRAWS + self.max_length * self.bits,
            arguments={"bits": bits, "max_length": max_length, "max_repeats": max_repeats},
        )

    def _check_configuration(self, values: Mapping[str, torch.Tensor]) -> None:
        _check_lengths(self, values)
        # The count channel's bounds in the observation space are those of the built range.
        why = (
            f"RepeatCopy was built with repeats in [{self.min_repeats}, {self.max_repeats}], "
            "the count channel's bounds in its observation space"
        )
        check_configured("min_repeats", values["min_repeats"], self.min_repeats, None, why)
        check_configured("max_repeats", values["max_repeats"], None, self.max_repeats, why)
        check_configured_order(
            "min_repeats", values["min_repeats"], "max_repeats", values["max_repeats"]
        )

    def normalised_count(self, repeats: torch.Tensor) -> torch.Tensor:
        """The count channel's value for ``repeats``: ``(R - mean) / std`` of the uniform
        distribution over ``normalise_repeats`` (see the module docstring), float32."""
        low, high = self.normalise_repeats
        mean = (low + high) / 2
        std = math.sqrt(((high - low + 1) ** 2 - 1) / 12)
        return (repeats.float() - mean) / std

    def _observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        low, high = super()._observation_bounds()
        drawn = self.normalised_count(torch.tensor([self.min_repeats, self.max_repeats]))
        # The count channel is 0 at every step but the count step.
        low[-1], high[-1] = min(0.0, float(drawn[0])), max(0.0, float(drawn[1]))
        return low, high

    def _draw(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        sizes = self._draw_sizes(
            index,
            [
                self._configured_range(index, "min_length", "max_length"),
                self._configured_range(index, "min_repeats", "max_repeats"),
            ],
        )
        length, repeats = sizes[:, 0], sizes[:, 1]
        sequence = self._draw_bits(index, (self.max_length, self.bits), start=0)
        s, n, r = self._step_index(), length[:, None], repeats[:, None]
        data = _gather_steps(sequence, s.expand(len(index), -1), s < n)
        count = torch.where(s == n + 1, self.normalised_count(r), 0.0)
        inputs = torch.cat([data.float(), (s == n)[..., None].float(), count[..., None]], dim=2)
        # Output steps L + 2 .. L + 1 + L R repeat the sequence; step L + 2 + L R is the end.
        start, end = n + 2, n + 2 + n * r
        repeated = _gather_steps(sequence, (s - start) % n, (s >= start) & (s < end))
        targets = torch.cat([repeated, (s == end)[..., None].to(torch.int8)], dim=2)
        return {
            "inputs": inputs,
            "targets": targets,
            "answer_start": length + 2,
            "steps": length * (repeats + 1) + 3,
            "length": length,
            "repeats": repeats,
        }


class AssociativeRecall(AlgorithmicTask):
    """The NTM's associative recall task (see the module docstring)."""

    episode_sizes = ("items",)
    state_attributes = (*AlgorithmicTask.state_attributes, *episode_sizes)
    configurable = ("min_items", "max_items")

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        render_mode: str | None = None,
        autoreset: bool = True,
        bits: int = 6,
        item_length: int = 3,
        min_items: int = 2,
        max_items: int = 6,
    ) -> None:
        check_int("bits", bits)
        check_int("item_length", item_length)
        check_int("min_items", min_items, low=2)  # a query that is not the last item
        check_int("max_items", max_items, low=2)
        _check_range("min_items", min_items, "max_items", max_items)
        item_bits = int(bits) * int(item_length)
        if item_bits < 63 and 2**item_bits < max_items:
            raise ValueError(
                f"max_items={max_items!r} distinct items do not exist with bits={bits!r} and "
                f"item_length={item_length!r} ({2**item_bits} items); raise bits or "
                "item_length, or lower max_items"
            )
        self.bits, self.item_length = int(bits), int(item_length)
        self.min_items, self.max_items = int(min_items), int(max_items)
        # Items are distinct in their first `_code_bits` bits (drawn without replacement):
        # 24, the uniform draws' resolution, or more where more items are asked for.
        self._code_bits = min(item_bits, max(24, (self.max_items - 1).bit_length()))
        self._setup(
            num_envs,
            device,
            render_mode,
            autoreset,
            n_inputs=self.bits + 2,
            n_outputs=self.bits,
            max_steps=self.max_items * (self.item_length + 1) + 2 * self.item_length + 2,
            draws=_SIZE_DRAWS + self.max_items * (2 + item_bits),
            arguments={"bits": bits, "item_length": item_length, "max_items": max_items},
        )

    def _check_configuration(self, values: Mapping[str, torch.Tensor]) -> None:
        why = "the max_items AssociativeRecall was built with; its tapes hold no more items"
        check_configured("min_items", values["min_items"], 2, None, "a query before the last item")
        check_configured("max_items", values["max_items"], None, self.max_items, why)
        check_configured_order("min_items", values["min_items"], "max_items", values["max_items"])

    def _draw_items(self, index: torch.Tensor) -> torch.Tensor:
        """``max_items`` distinct random items (M, max_items, item_length, bits), int8.

        The first ``c`` bits of the items (``c = min(item bits, 24)``, more if ``max_items``
        needs more codes) are a uniformly random sequence of distinct c-bit codes (Floyd's
        sampling without replacement, then a shuffle); the other bits are independent fair
        bits. Every item is therefore uniform
        and no two are equal, so that "the item after the query" is defined. Floyd's
        algorithm takes ``max_items`` batched steps (a loop over items, not environments).
        """
        k, c = self.max_items, self._code_bits
        n = 2**c
        u = self.rng.uniform(index, 2 * k, start=_SIZE_DRAWS).double()
        # Floyd: for i = n - k .. n - 1, take a uniform j in [0, i]; if taken already, take i.
        codes = torch.zeros(len(index), k, dtype=torch.int64, device=self.device)
        for step, i in enumerate(range(n - k, n)):
            j = torch.minimum((u[:, step] * (i + 1)).long(), torch.tensor(i, device=self.device))
            taken = (codes[:, :step] == j[:, None]).any(1)
            codes[:, step] = torch.where(taken, i, j)
        # Floyd's order is not uniform: shuffle by sorting uniform keys.
        codes = codes.gather(1, u[:, k:].argsort(dim=1))
        code_bits = (codes[..., None] >> torch.arange(c, device=self.device)) & 1
        item_bits = self.bits * self.item_length
        rest = self._draw_bits(index, (k, item_bits - c), start=2 * k)
        items = torch.cat([code_bits.to(torch.int8), rest], dim=2)
        return items.view(-1, k, self.item_length, self.bits)

    def _draw(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        counts = self._configured_range(index, "min_items", "max_items")
        items = self._draw_sizes(index, [counts])[:, 0]
        # The query: uniform among items 0 .. K - 2 (never the last), from the second draw.
        u = self.rng.uniform(index, 1, start=1)[:, 0].double()
        query = torch.minimum((u * (items - 1)).long(), items - 2)
        # Item vectors in order, (M, max_items * I, bits): item k's vector j is row k I + j.
        vectors = self._draw_items(index).flatten(1, 2)
        i = self.item_length
        s, n, q = self._step_index(), items[:, None], query[:, None]
        # Item k: a delimiter step, then its I vectors; then the query between two
        # query-delimiter steps; then I output steps for the item after the query.
        item_phase = s < n * (i + 1)
        k, j = s // (i + 1), s % (i + 1) - 1
        query_start = n * (i + 1)
        in_query = (s > query_start) & (s <= query_start + i)
        row = torch.where(item_phase, k * i + j, q * i + s - query_start - 1)
        data = _gather_steps(vectors, row, (item_phase & (j >= 0)) | in_query)
        item_delimiter = item_phase & (j < 0)
        query_delimiter = (s == query_start) | (s == query_start + i + 1)
        inputs = torch.cat([data, item_delimiter[..., None], query_delimiter[..., None]], dim=2)
        answer_start = query_start + i + 2
        answer = (s >= answer_start) & (s < answer_start + i)
        targets = _gather_steps(vectors, (q + 1) * i + s - answer_start, answer)
        return {
            "inputs": inputs.float(),
            "targets": targets,
            "answer_start": answer_start[:, 0],
            "steps": answer_start[:, 0] + i,
            "items": items,
        }


# --- helpers ----------------------------------------------------------------------------------


def _check_lengths(core: Copy | RepeatCopy, values: Mapping[str, torch.Tensor]) -> None:
    """Configured lengths lie in [1, the max_length the core was built with] (its tapes)."""
    why = f"the max_length {type(core).__name__} was built with; its tapes hold no longer sequences"
    check_configured("min_length", values["min_length"], 1, None)
    check_configured("max_length", values["max_length"], None, core.max_length, why)
    check_configured_order("min_length", values["min_length"], "max_length", values["max_length"])


def _check_range(low_name: str, low: int, high_name: str, high: int) -> None:
    if low > high:
        raise ValueError(f"{low_name}={low!r} must be <= {high_name}={high!r}")


def _check_normalisation(value: Any, min_repeats: int, max_repeats: int) -> tuple[int, int]:
    """``normalise_repeats`` as (low, high): two ints, low < high; None means the drawn range,
    which must then hold more than one count (its standard deviation is 0)."""
    if value is None:
        if min_repeats == max_repeats:
            raise ValueError(
                f"min_repeats = max_repeats = {min_repeats!r} has no spread to normalise the "
                "count by: pass normalise_repeats=(low, high), the range of counts trained "
                "on (the default training range is (1, 10))"
            )
        return int(min_repeats), int(max_repeats)
    ok = isinstance(value, (tuple, list)) and len(value) == 2
    ok = ok and all(not isinstance(v, bool) and isinstance(v, (int, np.integer)) for v in value)
    if not ok or not 1 <= value[0] < value[1]:
        raise ValueError(
            f"normalise_repeats must be None or two ints (low, high) with 1 <= low < high, "
            f"got {value!r}"
        )
    return int(value[0]), int(value[1])


def check_env_index(index: Any, num_envs: int) -> None:
    """ValueError unless ``index`` is an int naming one of ``num_envs`` environments."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise ValueError(f"index must be an int in [0, {num_envs}), got {index!r}")
    if not 0 <= index < num_envs:
        raise ValueError(f"index must lie in [0, {num_envs}), got {index}")


def _gather_steps(source: torch.Tensor, row: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Rows ``row`` (M, T) of ``source`` (M, S, C) where ``valid`` (M, T), zero elsewhere:
    (M, T, C). Rows outside [0, S) are allowed where ``valid`` is false."""
    index = row.clamp(0, source.shape[1] - 1)[..., None].expand(-1, -1, source.shape[2])
    gathered = source.gather(1, index)
    return torch.where(valid[..., None], gathered, torch.zeros_like(gathered))


def render_tape(
    inputs: np.ndarray,
    targets: np.ndarray,
    outputs: np.ndarray,
    answered: np.ndarray,
    seen: int,
    now: int | None,
    cell: int = _CELL,
) -> np.ndarray:
    """An RGB frame (H, W, 3) uint8 of a tape episode, as the NTM paper draws them.

    ``inputs`` (T, C_in) in [0, 1] (brightness) are drawn for the first ``seen`` steps;
    ``targets`` and ``outputs`` (T, C_out) of 0s and 1s at the steps where
    ``answered`` (T,) is set, outputs that miss their target in red. Time runs to the right,
    one column per step; channels are rows of ``cell`` x ``cell`` pixels. A yellow mark
    above the inputs shows the current step ``now``. The frame's size depends on T and the
    channel counts only, so that the frames of a video agree.
    """
    t_max, c_in = inputs.shape
    c_out = targets.shape[1]
    panels = []

    shown = np.zeros((t_max, c_in), bool)
    shown[:seen] = True
    panels.append(_cells(inputs, shown, cell))
    shown_out = np.repeat(answered[:, None], c_out, 1)
    panels.append(_cells(targets.astype(np.float32), shown_out, cell))
    out = _cells(outputs.astype(np.float32), shown_out, cell)
    wrong = shown_out & (outputs != targets)
    for mask, colour in (
        (wrong & (outputs == 1), _WRONG_ONE),
        (wrong & (outputs == 0), _WRONG_ZERO),
    ):
        out[_upscale(mask, cell)] = colour
    panels.append(out)

    marker = np.zeros((cell // 2, t_max * cell, 3), np.uint8)
    if now is not None:
        marker[:, now * cell : (now + 1) * cell - 1] = _NOW
    gap = np.zeros((cell, t_max * cell, 3), np.uint8)
    frame = np.concatenate([marker, panels[0], gap, panels[1], gap, panels[2]], axis=0)
    return np.ascontiguousarray(frame)


def _cells(values: np.ndarray, shown: np.ndarray, cell: int) -> np.ndarray:
    """(T, C) values in [0, 1] as a (C * cell, T * cell, 3) image: channel c is row c, step t
    column t; grey where not ``shown``; a dark line between cells."""
    grey = (np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)
    image = np.repeat(grey[:, :, None], 3, 2)
    image[~shown] = _UNUSED
    image = image.transpose(1, 0, 2)  # channels down, time across
    big = np.repeat(np.repeat(image, cell, 0), cell, 1)
    big[cell - 1 :: cell, :] = _GRID
    big[:, cell - 1 :: cell] = _GRID
    return big


def _upscale(mask: np.ndarray, cell: int) -> np.ndarray:
    """A (T, C) mask as the (C * cell, T * cell) pixel mask of its cells (grid lines out)."""
    big = np.repeat(np.repeat(mask.T, cell, 0), cell, 1)
    big[cell - 1 :: cell, :] = False
    big[:, cell - 1 :: cell] = False
    return big
