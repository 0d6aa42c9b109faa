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

:meth:`NTMCore.sequence`, which learners replay their sequences through, runs these steps
fused: the same function as stepping :meth:`NTMCore.forward` (the same parameters, state
and outputs, up to float rounding), as one autograd node whose backward is written out by
hand, in far fewer operations per step (the module's last section).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from cogrl.checks import check_choice, check_int, check_number
from cogrl.nn.cores import Core, register_core
from cogrl.nn.memory import EPS, address, read, write
from cogrl.nn.sequences import rows_ending

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

    def sequence(
        self, x: torch.Tensor, state: NTMState, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, NTMState]:
        """:meth:`forward` over L steps of ``x`` (L, S, F), fused (see the module's last
        section): the same function, with one autograd node for the whole recurrence."""
        L, S = x.shape[:2]
        C, R = self.controller_size, self.read_heads
        lstm = self.controller_kind == "lstm"
        F_in = x.shape[-1]
        weight = self.controller.weight_ih if lstm else self.controller.weight
        # The controller's input projection W_x x_t + b for all L steps at once; the
        # recurrent inputs [h_{t-1}, r_{t-1}] (LSTM) or r_{t-1} go in the loop.
        if lstm:
            bias = self.controller.bias_ih + self.controller.bias_hh
            recurrent = torch.cat([self.controller.weight_hh, weight[:, F_in:]], dim=1)
            z0 = torch.cat([state.controller[0], state.reads], dim=-1)
            c0 = state.controller[1]
        else:
            bias = self.controller.bias
            recurrent = weight[:, F_in:]
            z0, c0 = state.reads, None
        xg = F.linear(x, weight[:, :F_in], bias)
        order = self._head_order(x.device)
        w0 = torch.cat([state.read_weights, state.write_weights], dim=1)
        if not lstm:
            z0 = torch.cat([z0.new_zeros(S, C), z0], dim=-1)  # no h_0: r_0 alone recurs
        dtype = xg.dtype  # the state's, promoted as forward() would
        z, last, c, memory, w = _FusedSteps.apply(
            self._dims(),
            xg,
            recurrent,
            self.head_parameters.weight[order],
            self.head_parameters.bias[order],
            None if c0 is None else c0.to(dtype),
            z0.to(dtype),
            state.memory.to(dtype),
            w0.to(dtype),
            rows_ending(lengths, L, S, x.device),
        )
        # z_t = [h_t, r_t] (L, S, C + R W): the output layer, all steps at once.
        h = self._clip(self.output(z))
        controller = (last[:, :C], c) if lstm else state.controller
        final = NTMState(controller, memory, w[:, :R], w[:, R:], last[:, C:])
        return h, final

    def _dims(self) -> _Dims:
        return _Dims(
            self.controller_size,
            self.read_heads,
            self.write_heads,
            self.memory_width,
            2 * self.shift_range + 1,
            self.controller_kind == "lstm",
            self.clip,
        )

    def _head_order(self, device: torch.device) -> torch.Tensor:
        """The rows of ``head_parameters`` regrouped by activation (see :class:`_Dims`)."""
        H, Wr, W = self.read_heads + self.write_heads, self.write_heads, self.memory_width
        A, K = self._address_size, 2 * self.shift_range + 1
        head = [h * A for h in range(H)]  # where each head's k, beta, g, s, gamma start
        tail = [H * A + i * 2 * W for i in range(Wr)]  # each write head's e, a
        order = [i + j for i in head for j in range(W)]  # k
        order += [i + W + j for i in tail for j in range(W)]  # a
        order += [i + W + 1 for i in head]  # g
        order += [i + j for i in tail for j in range(W)]  # e
        order += [i + W for i in head]  # beta
        order += [i + W + 2 + K for i in head]  # gamma
        order += [i + W + 2 + j for i in head for j in reversed(range(K))]  # s, reversed
        return torch.tensor(order, device=device)

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


# --- The fused sequence ----------------------------------------------------------------------
#
# A learner replays minibatches of short segments (PPO on Copy: some 30 side by side, 40
# steps long), where a step costs its number of operations more than their arithmetic:
# stepped under autograd, forward() makes some 60 calls into torch and its backward some
# 200, a few microseconds each on a CPU. NTMCore.sequence runs the same function as one
# autograd node (_FusedSteps): _forward steps without autograd, and _backward goes back
# through the steps by hand, each equation's derivative in reverse order. Both keep the
# number of calls per step small: all heads and all head parameters of a kind at once,
# the shift as shifted views of one padded copy, every step's tensors written into
# per-sequence buffers (whose per-step views are made once), and what does not recur done
# once for all steps: the controller's input projection, the output layer, the
# activations' derivatives, the weight gradients of the recurrent and head layers.


class _Dims(NamedTuple):
    """What the fused steps need of the core. ``head_parameters`` arrives with its rows
    regrouped by activation (``NTMCore._head_order``): tanh (every head's key k, then each
    write head's add a), sigmoid (the gates g, then the erases e), softplus (beta, then
    gamma - 1) and softmax (each head's shift weighting s, the shifts in reverse order,
    ``k..-k``)."""

    controller: int  # C
    read_heads: int  # R
    write_heads: int
    width: int  # W
    shifts: int  # 2k + 1
    lstm: bool
    clip: float | None

    def groups(self) -> tuple[int, int, int]:
        """Where the tanh, sigmoid and softplus groups of the head layer end."""
        H, Wr, W = self.read_heads + self.write_heads, self.write_heads, self.width
        tanh_end = (H + Wr) * W
        sigmoid_end = tanh_end + H + Wr * W
        return tanh_end, sigmoid_end, sigmoid_end + 2 * H


def _pad(w: torch.Tensor, k: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """``w`` (..., N) with k locations wrapped around on each side (..., N + 2k): its
    window ``j``, ``[j, j + N)``, holds ``w[(i + j - k) mod N]`` at ``i``."""
    N = w.shape[-1]
    return torch.cat([w[..., N - k :], w, w[..., :k]], dim=-1, out=out)


def _shift(padded: torch.Tensor, weights: tuple[torch.Tensor, ...], start: torch.Tensor):
    """``start + sum_j weights[j] window_j(padded)`` (..., N): the circular convolution
    of eq. 8 with each shift's weight (..., 1), ``weights[j]`` for window ``j``."""
    windows = padded.unfold(-1, padded.shape[-1] - len(weights) + 1, 1).unbind(-2)
    out = torch.addcmul(start, windows[0], weights[0])
    for window, weight in zip(windows[1:], weights[1:], strict=True):
        out.addcmul_(window, weight)
    return out


class _FusedSteps(torch.autograd.Function):
    """The NTM's recurrence over L steps as one autograd node.

    In: the controller's input projections ``xg`` (L, S, G) (biases included); its
    recurrent weights, (G, C + R W) for ``[h_{t-1}, r_{t-1}]`` (LSTM) or (G, R W) for
    ``r_{t-1}`` (feedforward); the regrouped head layer (:class:`_Dims`); the state ``c0``
    (the LSTM's cell, else None), ``z0 = [h_0, r_0]`` (S, C + R W), ``M0`` (S, N, W) and
    ``w0`` (S, heads, N); ``ends`` (:func:`cogrl.nn.sequences.rows_ending`). Out:
    ``z_t = [h_t, r_t]`` (L, S, C + R W) and each row's final ``z``, ``c``, ``M`` and ``w``.
    """

    @staticmethod
    def forward(ctx, dims, xg, recurrent, head_weight, head_bias, c0, z0, M0, w0, ends):
        ctx.set_materialize_grads(False)
        save = any(ctx.needs_input_grad)
        z, finals, saved = _forward(
            dims, xg, recurrent, head_weight, head_bias, c0, z0, M0, w0, ends, save
        )
        if save:
            ctx.dims, ctx.ends, ctx.saved = dims, ends, saved
            ctx.save_for_backward(recurrent, head_weight, c0, z0, M0, w0, z)
        return (z, *finals)

    @staticmethod
    @once_differentiable
    def backward(ctx, dz, *d_finals):
        grads = _backward(ctx.dims, ctx.ends, ctx.saved, *ctx.saved_tensors, dz, d_finals)
        return (None, *grads, None)


def _forward(dims, xg, recurrent, head_weight, head_bias, c0, z0, M0, w0, ends, save):
    """The steps of :meth:`NTMCore.forward`. With ``save``, every step's tensors stay in
    per-sequence buffers for :func:`_backward` (returned as a dict); without, two steps'
    worth are reused in turn."""
    L, S = xg.shape[:2]
    C, R, Wr, W, K, lstm, clip = dims
    H, k, N = R + Wr, K // 2, M0.shape[1]
    tanh_end, sigmoid_end, softplus_end = dims.groups()
    recurrent_t, head_weight_t = recurrent.t(), head_weight.t()
    slots = L if save else 2
    new = xg.new_empty
    z = new(L, S, C + R * W)
    b = {
        "raw": new(slots, S, head_weight.shape[0]),  # the head layer's output
        "act": new(slots, S, sigmoid_end),  # its tanh and sigmoid groups, activated
        "key_sq": new(slots, S, H),  # |k|^2 + EPS
        "denominator": new(slots, S, H, N),  # |k| |M_{t-1}(i)|
        "cosine": new(slots, S, H, N),
        "padded": new(slots, S, H, N + 2 * k),  # w_g, padded for the shift
        "log_base": new(slots, S, H, N),
        # The state before each step and after the last: w_0 .. w_L, M_0 .. M_L, and
        # sqrt(|M_t(i)|^2 + EPS).
        "w": new(slots + 1, S, H, N),
        "memory": new(slots + 1, *M0.shape),
        "norm": new(slots + 1, S, 1, N),
    }
    if lstm:
        b["gates"] = new(slots, S, recurrent.shape[0])  # after their sigmoid
        b["g"] = new(slots, S, C)  # tanh(gate g)
        b["cell"], b["cell_tanh"] = new(slots, S, C), new(slots, S, C)
        gate_in, gate_f, gate_o = (
            b["gates"][..., j * C : (j + 1) * C].unbind(0) for j in (0, 1, 3)
        )
    b["P"] = b["raw"] if clip is None else torch.empty_like(b["raw"])
    b["w"][0], b["memory"][0] = w0, M0
    torch.linalg.vecdot(M0, M0, out=b["norm"][0, :, 0]).add_(EPS).sqrt_()
    v = {name: buf.unbind(0) for name, buf in b.items()}
    # Per-step views of the head layer's groups and of the reads.
    P, act = b["P"], b["act"]
    p_tanh, p_sigmoid = P[..., :tanh_end].unbind(0), P[..., tanh_end:sigmoid_end].unbind(0)
    p_softplus = P[..., sigmoid_end:softplus_end].unbind(0)
    p_shift = P[..., softplus_end:].unflatten(-1, (H, K)).unbind(0)
    a_tanh, a_sigmoid = act[..., :tanh_end].unbind(0), act[..., tanh_end:].unbind(0)
    keys = act[..., : H * W].unflatten(-1, (H, W)).unbind(0)
    adds = act[..., H * W : tanh_end].unflatten(-1, (Wr, W)).unbind(0)
    interpolation = act[..., tanh_end : tanh_end + H, None].unbind(0)
    erases = act[..., tanh_end + H :].unflatten(-1, (Wr, W)).unbind(0)
    reads = z[..., C:].unflatten(-1, (R, W)).unbind(0)
    softpluses, shifts, contents, bases = [], [], [], []
    erased = torch.empty_like(M0)  # a - e M, the write's temporary
    eps = xg.new_tensor(EPS)

    finals = [torch.empty_like(z0), xg.new_empty(S, 0) if c0 is None else torch.empty_like(c0)]
    finals += [torch.empty_like(M0), torch.empty_like(w0)]
    c, z_t, M, w = c0, z0, M0, w0
    for t in range(-1, L):
        if t >= 0:
            # Slot i holds step t's tensors, slot i + 1 of w, memory and norm the state after.
            i = t % slots
            j = i + 1 if save else 1 - i
            z_prev, z_t = z_t, z[t]
            if lstm:
                # The LSTM cell (gates i, f, g, o) on [x_t, r_{t-1}] and h_{t-1}.
                pre = torch.addmm(xg[t], z_prev, recurrent_t)
                torch.sigmoid(pre, out=v["gates"][i])
                g = torch.tanh(pre[:, 2 * C : 3 * C], out=v["g"][i])
                c = torch.addcmul(gate_f[i] * c, gate_in[i], g, out=v["cell"][i])
                h = torch.mul(gate_o[i], torch.tanh(c, out=v["cell_tanh"][i]), out=z_t[:, :C])
            else:
                h = torch.tanh(torch.addmm(xg[t], z_prev[:, C:], recurrent_t), out=z_t[:, :C])

            # The heads' parameters: each kind through its activation at once.
            raw = torch.addmm(head_bias, h, head_weight_t, out=v["raw"][i])
            if clip is not None:
                torch.clamp(raw, -clip, clip, out=v["P"][i])
            torch.tanh(p_tanh[i], out=a_tanh[i])
            torch.sigmoid(p_sigmoid[i], out=a_sigmoid[i])
            beta, gamma_1 = F.softplus(p_softplus[i]).unsqueeze(-1).split(H, 1)
            s_rev = torch.softmax(p_shift[i], dim=-1)
            key = keys[i]

            # Addressing M_{t-1} (eqs. 5-9), as cogrl.nn.memory.address.
            key_sq = torch.linalg.vecdot(key, key, out=v["key_sq"][i]).add_(EPS)
            denominator = torch.mul(
                key_sq.sqrt().unsqueeze(-1), v["norm"][i], out=v["denominator"][i]
            )
            cosine = torch.bmm(key, M.transpose(1, 2), out=v["cosine"][i]).div_(denominator)
            content = torch.softmax(beta * cosine, dim=-1)
            padded = _pad(torch.lerp(w, content, interpolation[i]), k, out=v["padded"][i])
            base = _shift(padded, s_rev.unsqueeze(-1).unbind(-2), eps)
            log_base = torch.log(base, out=v["log_base"][i])
            # base^gamma = exp((1 + (gamma - 1)) log base), normalised.
            w = torch.addcmul(log_base, gamma_1, log_base).exp_()
            w = torch.div(w, w.sum(-1, keepdim=True), out=v["w"][j])

            # Read M_{t-1} (eq. 2), then erase and add (eqs. 3-4).
            torch.bmm(w[:, :R], M, out=reads[t])
            M_prev, M = M, v["memory"][j]
            w_write_t = w[:, R:].transpose(1, 2)
            if Wr == 1:
                # M (1 - w e) + w a = M + w (a - e M): two passes over the memory.
                torch.addcmul(adds[i], erases[i], M_prev, value=-1, out=erased)
                torch.addcmul(M_prev, w_write_t, erased, out=M)
            else:
                keep = (1 - w[:, R:, :, None] * erases[i][:, :, None]).prod(1)
                torch.mul(M_prev, keep, out=M).baddbmm_(w_write_t, adds[i])
            torch.linalg.vecdot(M, M, out=v["norm"][j][:, 0]).add_(EPS).sqrt_()
            if save:
                softpluses.append((beta, gamma_1))
                shifts.append(s_rev)
                contents.append(content)
                bases.append(base)
        rows = ends.get(t)
        if rows is not None:
            for final, now in zip(finals, (z_t, c, M, w), strict=True):
                if now is not None:
                    final[rows] = now[rows]
    if not save:
        return z, finals, None
    b.update(softpluses=softpluses, shifts=shifts, contents=contents, bases=bases)
    return z, finals, b


def _backward(dims, ends, b, recurrent, head_weight, c0, z0, M0, w0, z, dz, d_finals):
    """The gradients of :func:`_forward`'s inputs, back through time. Step t turns the
    gradients of what it leaves (its output ``z_t``, which the next step's controller
    also reads, and ``c_t``, ``M_t``, ``w_t``) into those of the state before it."""
    L, S = z.shape[:2]
    C, R, Wr, W, K, lstm, clip = dims
    H, k, N = R + Wr, K // 2, M0.shape[1]
    tanh_end, sigmoid_end, softplus_end = dims.groups()

    # What the chain rule multiplies by that does not recur, for all steps at once.
    P, act = b["P"], b["act"]
    if lstm:
        # d c_t / d h_t through the output gate, o (1 - tanh(c)^2); d [c_t, h_t] / d gates:
        # sigma' of gates i, f, o and 1 - g^2 of gate g, times g, c_{t-1}, i and tanh(c).
        gates, g, cell_tanh = b["gates"], b["g"], b["cell_tanh"]
        out_gate = gates[..., 3 * C :] * (1 - cell_tanh.square())
        gate_derivative = gates * (1 - gates)
        gate_derivative[..., 2 * C : 3 * C] = 1 - g.square()
        c_prev = torch.cat([c0.unsqueeze(0), b["cell"][:-1]])
        gate_derivative *= torch.cat([g, c_prev, gates[..., :C], cell_tanh], -1)
        out_gates, gate_derivatives = out_gate.unbind(0), gate_derivative.unbind(0)
        forget = gates[..., C : 2 * C].unbind(0)
    else:
        gate_derivatives = (1 - z[..., :C].square()).unbind(0)
    # The head layer's activations (tanh, sigmoid, softplus) and softmax, and its clip.
    act_derivative = torch.cat(
        [
            1 - act[..., :tanh_end].square(),
            act[..., tanh_end:] * (1 - act[..., tanh_end:]),
            torch.sigmoid(P[..., sigmoid_end:softplus_end]),
        ],
        -1,
    )
    s_rev = torch.stack(b["shifts"])  # (L, S, H, 2k + 1)
    if clip is not None:
        unclipped = b["raw"] == P
        act_derivative *= unclipped[..., :softplus_end]
        s_masked = s_rev * unclipped[..., softplus_end:].unflatten(-1, (H, K))
    else:
        s_masked = s_rev
    act_derivatives, s_masked = act_derivative.unbind(0), s_masked.unbind(0)
    s_forward = s_rev.flip(-1).unsqueeze(-1).unbind(0)  # s in shift order -k..k
    s_rev = s_rev.unbind(0)
    keys = act[..., : H * W].unflatten(-1, (H, W)).unbind(0)
    adds = act[..., H * W : tanh_end].unflatten(-1, (Wr, W)).unbind(0)
    interpolation = act[..., tanh_end : tanh_end + H, None].unbind(0)
    erases = act[..., tanh_end + H :].unflatten(-1, (Wr, W)).unbind(0)
    contents = b["contents"]
    content_change = (torch.stack(contents) - b["w"][:-1]).unbind(0)  # w_c - w_{t-1}
    norm_sq = b["norm"].square().squeeze(-2).unbind(0)
    key_sq = b["key_sq"].unsqueeze(-1).unbind(0)
    memory, w_all = b["memory"].unbind(0), b["w"].unbind(0)
    denominator, cosine = b["denominator"].unbind(0), b["cosine"].unbind(0)
    padded, log_base, bases = b["padded"].unbind(0), b["log_base"].unbind(0), b["bases"]

    d_gates = z.new_empty(L, S, recurrent.shape[0])
    d_head = z.new_empty(L, S, head_weight.shape[0])
    d_gate_steps, d_head_steps = d_gates.unbind(0), d_head.unbind(0)
    d_head_sp = d_head[..., :softplus_end].unbind(0)
    d_head_shift = d_head[..., softplus_end:].unflatten(-1, (H, K)).unbind(0)
    dz_steps = None if dz is None else dz.unbind(0)
    d_z = torch.zeros_like(z0)
    d_c = torch.zeros_like(c0) if lstm else None
    # dL/dM_t and dL/dM_{t-1} in two buffers in turn; two more for temporaries.
    d_M, d_M_prev = torch.zeros_like(M0), torch.empty_like(M0)
    d_keep, scratch = torch.empty_like(M0), torch.empty_like(M0)
    d_w = torch.zeros_like(w0)
    zero = z.new_zeros(())
    for t in range(L - 1, -2, -1):
        rows = ends.get(t)
        if rows is not None:
            for grad, final in zip((d_z, d_c, d_M, d_w), d_finals, strict=True):
                if final is not None and grad is not None:
                    grad.index_add_(0, rows, final[rows])
        if t < 0:
            break
        d_out = d_z if dz_steps is None else d_z + dz_steps[t]
        d_r = d_out[:, C:].unflatten(-1, (R, W))
        M_prev, w = memory[t], w_all[t + 1]
        w_read, w_write = w[:, :R], w[:, R:]
        key, add, erase = keys[t], adds[t], erases[t]

        # The write M_t = M_{t-1} keep + w^T a, keep = prod (1 - w^T e) (eqs. 3-4), and the
        # read r_t = w_r M_{t-1} (eq. 2).
        torch.mul(d_M, M_prev, out=d_keep)
        d_add = torch.bmm(w_write, d_M)
        d_erase = torch.bmm(w_write, d_keep)  # minus the erase's gradient
        d_w_write = torch.bmm(add, d_M.transpose(1, 2))
        if Wr == 1:
            d_w_write.baddbmm_(erase, d_keep.transpose(1, 2), alpha=-1)
            torch.mul(d_M, erase, out=scratch)
            torch.addcmul(d_M, w_write.transpose(1, 2), scratch, value=-1, out=d_M_prev)
        else:
            # Each head's factor (1 - w^T e) times the product of the others'.
            factors = 1 - w_write[..., None] * erase[:, :, None]  # (S, Wr, N, W)
            ones = torch.ones_like(factors[:, :1])
            before = torch.cat([ones, factors[:, :-1]], 1).cumprod(1)
            after = torch.cat([ones, factors.flip(1)[:, :-1]], 1).cumprod(1).flip(1)
            d_factor = d_keep.unsqueeze(1) * before * after
            d_w_write -= (d_factor * erase[:, :, None]).sum(-1)
            d_erase = (d_factor * w_write[..., None]).sum(2)
            torch.mul(d_M, factors.prod(1), out=d_M_prev)
        d_weights = torch.cat([torch.bmm(d_r, M_prev.transpose(1, 2)), d_w_write], 1).add_(d_w)

        # Sharpening w = base^gamma / sum base^gamma (eq. 9): with v = (d_w - <d_w, w>) w,
        # d gamma = <v, log base> and d base = v gamma / base.
        beta, gamma_1 = b["softpluses"][t]
        v = (d_weights - torch.linalg.vecdot(d_weights, w).unsqueeze(-1)).mul_(w)
        d_gamma = torch.linalg.vecdot(v, log_base[t])
        d_base = torch.addcmul(v, v, gamma_1).div_(bases[t])
        # The shift (eq. 8): the windows for s, the transposed shift for w_g.
        d_s = torch.linalg.vecdot(padded[t].unfold(-1, N, 1), d_base.unsqueeze(-2))
        d_interpolated = _shift(_pad(d_base, k), s_forward[t].unbind(-2), zero)
        # The interpolation (eq. 7).
        gate = interpolation[t]
        d_gate = torch.linalg.vecdot(d_interpolated, content_change[t])
        d_content = d_interpolated * gate
        d_w = d_interpolated.sub_(d_content)
        # Content addressing (eqs. 5-6): the softmax, the cosine's dot product and norms.
        content = contents[t]
        d_logits = d_content.sub_(torch.linalg.vecdot(d_content, content).unsqueeze(-1))
        d_logits *= content
        d_beta = torch.linalg.vecdot(d_logits, cosine[t])
        d_cosine = d_logits.mul_(beta)
        d_dot = d_cosine / denominator[t]
        along = d_cosine.mul_(cosine[t])
        key_scale = along.sum(-1, keepdim=True).div_(key_sq[t])
        d_key = torch.baddbmm(key * key_scale, d_dot, M_prev, beta=-1)
        d_M_prev.baddbmm_(torch.cat([w_read, d_dot], 1).transpose(1, 2), torch.cat([d_r, key], 1))
        d_M_prev.addcmul_(M_prev, along.sum(1).div_(norm_sq[t]).unsqueeze(-1), value=-1)
        d_M, d_M_prev = d_M_prev, d_M

        # The head layer: its activations, its clip, its input h_t.
        parts = [d_key, d_add, d_gate, d_erase.neg_(), d_beta, d_gamma]
        torch.cat([p.flatten(1) for p in parts], 1, out=d_head_sp[t]).mul_(act_derivatives[t])
        d_s.sub_(torch.linalg.vecdot(d_s, s_rev[t]).unsqueeze(-1))
        torch.mul(d_s, s_masked[t], out=d_head_shift[t])
        d_h = torch.addmm(d_out[:, :C], d_head_steps[t], head_weight)

        # The controller.
        d_G = d_gate_steps[t]
        if lstm:
            d_c = torch.addcmul(d_c, d_h, out_gates[t])
            torch.cat([d_c, d_c, d_c, d_h], 1, out=d_G).mul_(gate_derivatives[t])
            d_c = d_c * forget[t]
            d_z = torch.mm(d_G, recurrent)
        else:
            torch.mul(d_h, gate_derivatives[t], out=d_G)
            d_z = F.pad(torch.mm(d_G, recurrent), (C, 0))

    z_in = torch.cat([z0.unsqueeze(0), z[:-1]])
    if not lstm:
        z_in = z_in[..., C:]
    d_recurrent = d_gates.flatten(0, 1).t() @ z_in.flatten(0, 1)
    d_head_weight = d_head.flatten(0, 1).t() @ z[..., :C].flatten(0, 1)
    return d_gates, d_recurrent, d_head_weight, d_head.sum((0, 1)), d_c, d_z, d_M, d_w
