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

## Arguments

```python
gym.make("cogrl/DelayedRecall-v0", delay=3, n_choices=2, render_mode=None)
```

- ``delay``: blank steps between the cue and the query (an int >= 0).
- ``n_choices``: how many cues there are (an int >= 2).

``render_mode="rgb_array"`` draws the episode so far as the algorithmic tasks do: the
observations above, the right answer and the agent's answer (red when wrong) below, time
running to the right.

## Version History

- v0: initial version (promoted from the test suite's memory task, same episodes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from cogrl.checks import check_int
from cogrl.core import BatchedEnv, Info, check_memory, check_num_envs, resolve_device
from cogrl.envs.memory.algorithmic import check_env_index, render_tape

__all__ = ["DelayedRecall"]


class DelayedRecall(BatchedEnv):
    """Batched core of the delayed-recall task (see the module docstring)."""

    metadata: dict[str, Any] = {
        **BatchedEnv.metadata,
        "episode_metrics": {"accuracy": "correct"},
        "splits": (),
    }
    # The episodes in progress: the cue, the step counter, the agent's answer (-1: none yet).
    state_attributes = ("cue", "t", "answer")

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

    def _draw_cue(self, index: torch.Tensor) -> torch.Tensor:
        # The episode's first draw (as the test suite's version drew its bit).
        return self.rng.integers(index, 1, self.n_choices)[:, 0]

    def _reset_envs(self, index: torch.Tensor) -> None:
        self.cue[index] = self._draw_cue(index)
        self.t[index] = 0
        self.answer[index] = -1

    def _reset_where(self, mask: torch.Tensor) -> None:
        # Sync-free: draw for every environment, keep the draws where ``mask`` is set.
        torch.where(mask, self._draw_cue(self._all), self.cue, out=self.cue)
        self.t.masked_fill_(mask, 0)
        self.answer.masked_fill_(mask, -1)

    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        query = self.t == self.delay + 1
        correct = query & (action == self.cue)
        torch.where(query, action, self.answer, out=self.answer)
        self.t += 1
        info: Info = {"correct": correct, "_correct": query}
        return correct.float(), query, torch.zeros_like(query), info

    def _observe(self, index: torch.Tensor | None = None) -> torch.Tensor:
        t = self.t if index is None else self.t[index]
        cue = self.cue if index is None else self.cue[index]
        first = t == 0
        shown = torch.nn.functional.one_hot(cue, self.n_choices).bool() & first[:, None]
        flags = torch.stack([first, t == self.delay + 1], dim=1)
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
        target and the agent's answer (once given) below, one column per step."""
        check_env_index(index, self.num_envs)
        steps, k = self.delay + 2, self.n_choices
        t, cue, answer = int(self.t[index]), int(self.cue[index]), int(self.answer[index])
        inputs = np.zeros((steps, k + 2), np.float32)
        inputs[0, cue] = inputs[0, k] = inputs[steps - 1, k + 1] = 1.0
        targets = np.zeros((steps, k), np.int8)
        targets[steps - 1, cue] = 1
        outputs = np.zeros((steps, k), np.int8)
        answered = np.zeros(steps, bool)
        if answer >= 0:
            outputs[steps - 1, answer] = 1
            answered[steps - 1] = True
        return render_tape(
            inputs, targets, outputs, answered, seen=min(t + 1, steps), now=t if t < steps else None
        )
