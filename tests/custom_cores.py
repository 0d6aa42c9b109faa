"""A user's core, registered when this module is imported: test_nn.py builds it by name as
``"custom_cores:counting_gru"`` (the ``module:name`` form imports the module first).

Its state is nested, as a memory core's is: a NamedTuple holding the GRU's ``h`` and a dict
with an int64 step counter, so that it exercises every state utility learners use.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from cogrl.nn import Core, register_core

NAME = "counting_gru"


class CountingState(NamedTuple):
    h: torch.Tensor  # (B, hidden_size)
    extra: dict[str, torch.Tensor]  # {"steps": (B, 1) int64, steps since the episode start}


@register_core(NAME)
class CountingGRU(Core):
    """A GRU that is also told how many steps its episode has run (up to ``max_count``)."""

    def __init__(self, input_size: int, hidden_size: int = 32, max_count: int = 10) -> None:
        super().__init__()
        self.cell = nn.GRUCell(input_size + 1, hidden_size)
        self.hidden_size = hidden_size
        self.max_count = max_count

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> CountingState:
        return CountingState(
            torch.zeros(batch_size, self.hidden_size, device=device),
            {"steps": torch.zeros(batch_size, 1, dtype=torch.int64, device=device)},
        )

    def forward(self, x: torch.Tensor, state: CountingState) -> tuple[torch.Tensor, CountingState]:
        steps = state.extra["steps"]
        t = steps.clamp(max=self.max_count).to(x.dtype) / self.max_count
        h = self.cell(torch.cat([x, t], dim=-1), state.h)
        return h, CountingState(h, {"steps": steps + 1})
