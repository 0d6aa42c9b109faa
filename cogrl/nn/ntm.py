"""The Neural Turing Machine as a core: ``policy.core="ntm"`` (Graves, Wayne and Danihelka
2014, "Neural Turing Machines"), with the choices Collier and Beel (2018, "Implementing
Neural Turing Machines") found to make it train reliably.

One step ``(x_t, state_{t-1}) -> (h_t, state_t)``:

1. The controller (an LSTM, or a feedforward layer) reads ``cat(x_t, r_{t-1})``: the input
   and the previous step's read vectors.
2. One linear layer maps its output to every head's parameters, clipped to
   ``[-clip, clip]`` (Collier and Beel clip the controller's head parameters, before their
   activations, and the NTM's output): per head a key ``k = tanh(.)`` (W), key strength
   ``beta = softplus(.)``, interpolation gate ``g = sigmoid(.)``, shift weighting
   ``s = softmax(.)`` over the shifts ``-k..k`` and sharpening ``gamma = 1 + softplus(.)``;
   per write head also an erase vector ``e = sigmoid(.)`` and an add vector
   ``a = tanh(.)`` (W).
3. Every head addresses the memory ``M_{t-1}`` (:func:`cogrl.nn.memory.address`: content,
   interpolation with its previous weighting, shift, sharpening), all heads at once.
4. Read, then write: the read heads read ``M_{t-1}`` (eq. 2), then the write heads erase
   and add (eqs. 3-4) to give ``M_t``. This is Collier and Beel's order, and pytorch-ntm's
   (its read head runs before its write head); what is written at step t is read from
   step t + 1 on.
5. ``h_t = clip(Linear(cat(controller output, r_t)))``: pytorch-ntm's and Collier and
   Beel's output layer, without pytorch-ntm's sigmoid (the policy's heads follow).

Memory starts as a small constant (``memory_init``, 1e-6: Collier and Beel's best scheme,
better than random or learned memory); the initial read vectors ``tanh(r_0)`` and
weightings ``softmax(w_0)`` are learned, as in their code; the LSTM starts from zeros.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cogrl.checks import check_choice, check_int, check_number
from cogrl.nn.cores import Core, register_core
from cogrl.nn.memory import address, read, write

__all__ = ["NTMCore", "NTMState"]

CONTROLLERS = ("lstm", "feedforward")


class NTMState(NamedTuple):
    """An NTM's recurrent state, batch first."""

    controller: tuple[torch.Tensor, torch.Tensor] | torch.Tensor  # LSTM (h, c); else (B, 0)
    memory: torch.Tensor  # M_t (B, N, W)
    read_weights: torch.Tensor  # (B, read_heads, N)
    write_weights: torch.Tensor  # (B, write_heads, N)
    reads: torch.Tensor  # r_t, the read vectors side by side (B, read_heads * W)


@register_core("ntm")
class NTMCore(Core):
    """A Neural Turing Machine: a controller with ``read_heads`` and ``write_heads`` on a
    memory of ``memory_size`` locations of width ``memory_width``.

    - ``controller``: ``"lstm"`` or ``"feedforward"`` (one tanh layer, bounded as the
      LSTM's output is); ``controller_size``: its width (default ``hidden_size``).
    - ``shift_range``: k, the location shifts ``-k..k`` a head may make (1: -1, 0, +1).
    - ``memory_init``: the constant every memory entry starts from.
    - ``clip``: the head parameters and the output are clipped to ``[-clip, clip]``
      (``None``: not clipped).

    Defaults are the paper's copy task (128 x 20 memory, one read and one write head,
    shifts -1..1) and Collier and Beel's (memory 1e-6, clip 20).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int = 128,
        memory_size: int = 128,
        memory_width: int = 20,
        read_heads: int = 1,
        write_heads: int = 1,
        shift_range: int = 1,
        controller: str = "lstm",
        controller_size: int | None = None,
        memory_init: float = 1e-6,
        clip: float | None = 20.0,
    ) -> None:
        super().__init__()
        check_int("input_size", input_size)
        check_int("hidden_size", hidden_size)
        check_int("memory_size", memory_size)
        check_int("memory_width", memory_width)
        check_int("read_heads", read_heads)
        check_int("write_heads", write_heads)
        check_int("shift_range", shift_range, low=0)
        if 2 * shift_range + 1 > memory_size:
            raise ValueError(
                f"shift_range {shift_range} gives {2 * shift_range + 1} shifts, more than the "
                f"memory_size {memory_size} locations; expected 2 * shift_range + 1 <= "
                f"memory_size"
            )
        check_choice("controller", controller, CONTROLLERS)
        if controller_size is None:
            controller_size = hidden_size
        check_int("controller_size", controller_size)
        check_number("memory_init", memory_init, low=-math.inf)
        if clip is not None:
            check_number("clip", clip, low=0.0, low_open=True)

        self.hidden_size = hidden_size
        self.memory_size = N = memory_size
        self.memory_width = W = memory_width
        self.read_heads = read_heads
        self.write_heads = write_heads
        self.shift_range = shift_range
        self.controller_kind = controller
        self.controller_size = controller_size
        self.memory_init = float(memory_init)
        self.clip = None if clip is None else float(clip)

        controller_input = input_size + read_heads * W
        if controller == "lstm":
            self.controller = nn.LSTMCell(controller_input, controller_size)
            with torch.no_grad():
                # Forget-gate bias 1, as Collier and Beel's LSTM (gates i, f, g, o in torch).
                self.controller.bias_ih[controller_size : 2 * controller_size].fill_(1.0)
        else:
            self.controller = nn.Linear(controller_input, controller_size)

        # Per head: k (W), beta, g, s (2k + 1), gamma; per write head: e (W), a (W).
        self._address_size = W + 3 + (2 * shift_range + 1)
        heads = read_heads + write_heads
        self.head_parameters = nn.Linear(
            controller_size, heads * self._address_size + write_heads * 2 * W
        )
        self.output = nn.Linear(controller_size + read_heads * W, hidden_size)
        for layer in (self.head_parameters, self.output):
            # Collier and Beel's initialiser: truncated normal, std 1/sqrt(fan_in); zero bias.
            std = 1.0 / math.sqrt(layer.in_features)
            nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(layer.bias)

        # Learned initial read vectors r_0 = tanh(.) and weightings w_0 = softmax(.), drawn
        # as Collier and Beel's learned_init (Glorot uniform over a 1 x units layer).
        self.initial_reads = nn.Parameter(_glorot_row(read_heads, W))
        self.initial_weight_logits = nn.Parameter(_glorot_row(heads, N))

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> NTMState:
        B, R, N, W = batch_size, self.read_heads, self.memory_size, self.memory_width
        if self.controller_kind == "lstm":
            zeros = torch.zeros(B, self.controller_size, device=device)
            controller = (zeros, zeros.clone())
        else:
            controller = torch.zeros(B, 0, device=device)
        weights = torch.softmax(self.initial_weight_logits.to(device), dim=-1)
        weights = weights.unsqueeze(0).expand(B, -1, -1)
        reads = torch.tanh(self.initial_reads.to(device)).reshape(1, R * W).expand(B, -1)
        return NTMState(
            controller=controller,
            memory=torch.full((B, N, W), self.memory_init, device=device),
            read_weights=weights[:, :R],
            write_weights=weights[:, R:],
            reads=reads,
        )

    def forward(self, x: torch.Tensor, state: NTMState) -> tuple[torch.Tensor, NTMState]:
        B, R, Wr = x.shape[0], self.read_heads, self.write_heads
        W, H = self.memory_width, R + Wr
        M = state.memory

        # 1. The controller sees the input and the previous step's reads.
        controller_input = torch.cat([x, state.reads], dim=-1)
        if self.controller_kind == "lstm":
            out, c = self.controller(controller_input, state.controller)
            controller_state = (out, c)
        else:
            out = torch.tanh(self.controller(controller_input))
            controller_state = state.controller

        # 2. Every head's parameters from one layer, clipped before their activations.
        params = self._clip(self.head_parameters(out))
        addressing = params[:, : H * self._address_size].reshape(B, H, self._address_size)
        key, beta, gate, s, gamma = addressing.split([W, 1, 1, 2 * self.shift_range + 1, 1], -1)
        erase, add = params[:, H * self._address_size :].reshape(B, Wr, 2 * W).split(W, -1)

        # 3. Address M_{t-1}, all heads at once (B, H, N), sharing the memory.
        w_prev = torch.cat([state.read_weights, state.write_weights], dim=1)
        w = address(
            M,
            w_prev,
            key=torch.tanh(key),
            beta=F.softplus(beta),
            gate=torch.sigmoid(gate),
            s=torch.softmax(s, dim=-1),
            gamma=1 + F.softplus(gamma),
        )
        read_weights, write_weights = w[:, :R], w[:, R:]

        # 4. Read M_{t-1} (eq. 2), then erase and add (eqs. 3-4).
        reads = read(M, read_weights).reshape(B, R * W)
        memory = write(M, write_weights, torch.sigmoid(erase), torch.tanh(add))

        # 5. The output from the controller's output and this step's reads.
        h = self._clip(self.output(torch.cat([out, reads], dim=-1)))
        return h, NTMState(controller_state, memory, read_weights, write_weights, reads)

    def memory_weights(self, state: NTMState) -> dict[str, torch.Tensor]:
        """The read and write heads' weightings over the memory locations (B, heads, N)."""
        return {"read": state.read_weights, "write": state.write_weights}

    def _clip(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.clip is None else x.clamp(-self.clip, self.clip)

    def extra_repr(self) -> str:
        return (
            f"memory={self.memory_size}x{self.memory_width}, read_heads={self.read_heads}, "
            f"write_heads={self.write_heads}, shift_range={self.shift_range}, "
            f"controller={self.controller_kind!r}, memory_init={self.memory_init}, "
            f"clip={self.clip}"
        )


def _glorot_row(rows: int, units: int) -> torch.Tensor:
    """``rows`` vectors drawn as Glorot uniform weights of a 1 -> ``units`` layer."""
    bound = math.sqrt(6.0 / (1 + units))
    return torch.empty(rows, units).uniform_(-bound, bound)
