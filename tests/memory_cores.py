"""A user's memory core, registered when this module is imported: ``test_user_core.py``
trains it from the command line as ``--set policy.core=memory_cores:tiny_memory``.

Its state is shaped as an NTM's is (a NamedTuple of the controller's LSTM state, a memory
matrix with its read weighting, and the last read), and its initial state is learned.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cogrl.nn import Core, register_core


class Memory(NamedTuple):
    matrix: torch.Tensor  # (B, slots, width)
    read_weights: torch.Tensor  # (B, slots)


class MemoryState(NamedTuple):
    controller: tuple[torch.Tensor, torch.Tensor]  # the LSTM's (h, c)
    memory: Memory
    last_read: torch.Tensor  # (B, width)


@register_core("tiny_memory")
class TinyMemory(Core):
    """An LSTM controller that writes its output into one slot of a small memory (by a
    softmax over slots) and reads it back by content; the initial memory is learned."""

    def __init__(self, input_size: int, hidden_size: int = 32, slots: int = 4) -> None:
        super().__init__()
        self.width = hidden_size
        self.controller = nn.LSTMCell(input_size + hidden_size, hidden_size)
        self.address = nn.Linear(hidden_size, slots)
        self.initial_memory = nn.Parameter(0.1 * torch.randn(slots, hidden_size))
        self.hidden_size = hidden_size

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> MemoryState:
        zeros = torch.zeros(batch_size, self.width, device=device)
        slots = self.initial_memory.shape[0]
        return MemoryState(
            (zeros, zeros.clone()),
            Memory(
                self.initial_memory.to(device).expand(batch_size, -1, -1),
                torch.full((batch_size, slots), 1.0 / slots, device=device),
            ),
            zeros.clone(),
        )

    def memory_weights(self, state: MemoryState) -> dict[str, torch.Tensor]:
        # One read head: (B, 1, slots), shown as a heatmap in TensorBoard.
        return {"read": state.memory.read_weights[:, None, :]}

    def forward(self, x: torch.Tensor, state: MemoryState) -> tuple[torch.Tensor, MemoryState]:
        h, c = self.controller(torch.cat([x, state.last_read], -1), state.controller)
        write = F.softmax(self.address(h), -1)  # (B, slots)
        matrix = state.memory.matrix + write[..., None] * (h[:, None, :] - state.memory.matrix)
        read_weights = F.softmax((matrix * h[:, None, :]).sum(-1), -1)
        read = (read_weights[..., None] * matrix).sum(1)
        return h + read, MemoryState((h, c), Memory(matrix, read_weights), read)
