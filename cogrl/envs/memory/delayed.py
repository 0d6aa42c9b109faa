"""Delayed recall: report a cue seen ``delay`` steps ago.

## Description

The smallest memory task (a delayed match, as bsuite's ``memory_len`` with its
``memory_length`` swept): step 0 shows a cue, one of ``n_choices`` symbols; ``delay``
blank steps follow; at the query step the agent must name the cue. The blank and query
observations are the same in every episode, so a policy without memory answers at chance
(``1 / n_choices``); sweeping ``delay`` measures how long a memory holds.

## Action Space

``Discrete(n_choices)``: the answer, read at the query step only. An action of the wrong
shape or dtype, or outside ``[0, n_choices)``, is a ``ValueError``.

## Observation Space

``Box(0, 1, (n_choices + 2,), float32)``: ``[cue == 0, ..., cue == n_choices - 1, cue
flag, query flag]``. The cue's one-hot code and the cue flag are set at step 0 only, the
query flag at the query step (step ``delay + 1``) only; every other step is all zeros. With
the default ``n_choices=2`` this is ``[bit == 0, bit == 1, cue, query]``.

## Rewards

1 at the query step if the answer names the cue, otherwise 0.

## Starting State

The cue is drawn uniformly from the ``n_choices`` symbols.

## Episode End

The episode terminates at the query step: every episode lasts ``delay + 2`` steps. At that
step ``info["correct"]`` (with mask ``info["_correct"]``) says whether the answer was right;
``metadata["episode_metrics"] = {"accuracy": "correct"}`` tells learners to report its mean.
There are no data splits (``metadata["splits"] == ()``).

At every step ``info`` also reports, for learners that assign credit or supervise answers:

- ``action_ignored`` (bool (num_envs,), no mask; ``metadata["ignored_key"] =
  "action_ignored"``): true at the cue step and the blank steps, whose action changes
  nothing (not the observations, the rewards nor the episode's end); false at the query
  step.
- ``answer`` (int64 (num_envs,), a ``Discrete(n_choices)`` action;
  ``metadata["answer_key"] = "answer"``): the cue, the action that earns the reward 1,
  with mask ``_answer``, true at the query step only. At that step (the episode's last) it
  is the finished episode's cue, not the next episode's.

## Arguments

```python
gym.make("cogrl/DelayedRecall-v0", delay=3, n_choices=2, render_mode=None)
```

- ``delay``: blank steps between the cue and the query (an int >= 0).
- ``n_choices``: how many cues there are (an int >= 2).

``delay`` may change while the core runs, per environment, for a curriculum
(``core.configure({"delay": d})``, :meth:`cogrl.core.BatchedEnv.configure`): from 0 up to
the delay the core was built with, which bounds its episodes (``max_episode_steps = delay +
2``). A new delay applies from the environment's next episode.

``render_mode="rgb_array"`` draws the episode so far as the algorithmic tasks do: the
observations above, the right answer and the agent's answer (red when wrong) below, time
running to the right.

## Version History

- v0: initial version (promoted from the test suite's memory task, same episodes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from cogrl.checks import check_int
from cogrl.core import (
    BatchedEnv,
    Info,
    check_configured,
    check_memory,
    check_num_envs,
    resolve_device,
)
from cogrl.envs.memory.algorithmic import check_env_index, render_tape

__all__ = ["DelayedRecall"]


class DelayedRecall(BatchedEnv):
    """Batched core of the delayed-recall task (see the module docstring)."""

    metadata: dict[str, Any] = {
        **BatchedEnv.metadata,
        "episode_metrics": {"accuracy": "correct"},
        "splits": (),
        "ignored_key": "action_ignored",
        "answer_key": "answer",
    }
    # The episodes in progress: the cue, the step counter, the agent's answer (-1: none yet)
    # and the episode's delay (the configured delay at its reset).
    state_attributes = ("cue", "t", "answer", "episode_delay")
    configurable = ("delay",)

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        render_mode: str | None = None,
        autoreset: bool = True,
        delay: int = 3,
        n_choices: int = 2,
    ) -> None:
        check_int("delay", delay, low=0)
        check_int("n_choices", n_choices, low=2)
        self.delay, self.n_choices = int(delay), int(n_choices)
        # Sizes that cannot fit are an error before anything (the spaces' bounds) is allocated.
        num_envs = check_num_envs(num_envs)
        check_memory(
            resolve_device(device),
            self.memory_estimate(num_envs),
            {"num_envs": num_envs, "n_choices": self.n_choices},
        )
        super().__init__(num_envs, device, render_mode, autoreset)
        self.max_episode_steps = self.delay + 2
        self.single_observation_space = spaces.Box(0.0, 1.0, (self.n_choices + 2,), np.float32)
        self.single_action_space = spaces.Discrete(self.n_choices)
        n = self.num_envs
        self.cue = torch.zeros(n, dtype=torch.int64, device=self.device)
        self.t = torch.zeros(n, dtype=torch.int64, device=self.device)
        self.answer = torch.full((n,), -1, dtype=torch.int64, device=self.device)
        self.episode_delay = torch.full((n,), self.delay, dtype=torch.int64, device=self.device)

    def _check_configuration(self, values: Mapping[str, torch.Tensor]) -> None:
        why = f"the delay DelayedRecall was built with; its episodes last {self.delay + 2} steps"
        check_configured("delay", values["delay"], 0, None)
        check_configured("delay", values["delay"], None, self.delay, why)

    def _draw_cue(self, index: torch.Tensor) -> torch.Tensor:
        # The episode's first draw (as the test suite's version drew its bit).
        return self.rng.integers(index, 1, self.n_choices)[:, 0]

    def _reset_envs(self, index: torch.Tensor) -> None:
        self.cue[index] = self._draw_cue(index)
        self.t[index] = 0
        self.answer[index] = -1
        self.episode_delay[index] = self._configured("delay")[index]

    def _reset_where(self, mask: torch.Tensor) -> None:
        # Sync-free: draw for every environment, keep the draws where ``mask`` is set.
        torch.where(mask, self._draw_cue(self._all), self.cue, out=self.cue)
        self.t.masked_fill_(mask, 0)
        self.answer.masked_fill_(mask, -1)
        delay = self._configured("delay")
        torch.where(mask, delay, self.episode_delay, out=self.episode_delay)

    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        query = self.t == self.episode_delay + 1
        correct = query & (action == self.cue)
        torch.where(query, action, self.answer, out=self.answer)
        self.t += 1
        info: Info = {
            "correct": correct,
            "_correct": query,
            "action_ignored": ~query,
            # The cue (a copy: resets overwrite self.cue in place); due at the query step.
            "answer": self.cue.clone(),
            "_answer": query,
        }
        return correct.float(), query, torch.zeros_like(query), info

    def _observe(self, index: torch.Tensor | None = None) -> torch.Tensor:
        t = self.t if index is None else self.t[index]
        cue = self.cue if index is None else self.cue[index]
        delay = self.episode_delay if index is None else self.episode_delay[index]
        first = t == 0
        shown = torch.nn.functional.one_hot(cue, self.n_choices).bool() & first[:, None]
        flags = torch.stack([first, t == delay + 1], dim=1)
        return torch.cat([shown, flags], dim=1).float()

    def memory_estimate(self, num_envs: int) -> int:
        """About how many bytes a core of ``num_envs`` environments holds and touches in a
        step: the observation (as observation, final observation and autoreset's choice), the
        one-hot cue and the counters; and the observation space's bounds, whatever
        ``num_envs``."""
        k = self.n_choices
        return num_envs * (3 * 4 * (k + 2) + 9 * k + 64) + 10 * (k + 2)

    def render(self, index: int = 0) -> np.ndarray:
        """Environment ``index``'s episode so far: the observations above, the cue as the
        target and the agent's answer (once given) below, one column per step (as many
        columns as the longest episode, whatever the episode's configured delay)."""
        check_env_index(index, self.num_envs)
        columns, k = self.delay + 2, self.n_choices
        t, cue, answer = int(self.t[index]), int(self.cue[index]), int(self.answer[index])
        steps = int(self.episode_delay[index]) + 2  # this episode's
        inputs = np.zeros((columns, k + 2), np.float32)
        inputs[0, cue] = inputs[0, k] = inputs[steps - 1, k + 1] = 1.0
        targets = np.zeros((columns, k), np.int8)
        targets[steps - 1, cue] = 1
        outputs = np.zeros((columns, k), np.int8)
        answered = np.zeros(columns, bool)
        if answer >= 0:
            outputs[steps - 1, answer] = 1
            answered[steps - 1] = True
        return render_tape(
            inputs, targets, outputs, answered, seen=min(t + 1, steps), now=t if t < steps else None
        )
