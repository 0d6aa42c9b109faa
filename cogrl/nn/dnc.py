"""The Differentiable Neural Computer (Graves et al. 2016, "Hybrid computing using a neural
network with dynamic external memory", Methods), registered as ``policy.core="dnc"``.

An LSTM controller reads its input with the last step's read vectors, emits an interface
vector that drives one write head and R read heads over a memory of N words of width W, and
outputs ``y = W_y [h; r]``. Beyond the NTM's content lookup (:mod:`cogrl.nn.memory`, used
here for the content weightings, the erase-then-add write and the reads), the DNC keeps

- a *usage* per location, raised by writing and lowered by the free gates after reading,
  from which it *allocates* the least-used locations (dynamic memory allocation), and
- a *temporal link matrix* ``L[i, j]``: how much location i was written right after j, which
  read heads follow forward (in write order) or backward (temporal memory linkage).

Its memory updates are plain batched functions named as in the paper, each with its
equation (B batch rows, N locations, R read heads):

- :func:`retention`: ``psi = prod_i (1 - f^i w^{r,i}_{t-1})``
- :func:`usage`: ``u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} * w^w_{t-1}) * psi_t``
- :func:`free_list` and :func:`allocation`: ``a[phi_j] = (1 - u[phi_j]) prod_{i<j} u[phi_i]``
- :func:`write_weighting`: ``w^w = g^w (g^a a + (1 - g^a) c^w)``
- :func:`precedence`: ``p_t = (1 - sum_i w^w_t[i]) p_{t-1} + w^w_t``
- :func:`link`: ``L_t[i, j] = (1 - w^w[i] - w^w[j]) L_{t-1}[i, j] + w^w[i] p_{t-1}[j]``
- :func:`directional_weights`: ``f = L w^r``, ``b = L^T w^r``
- :func:`read_weighting`: ``w^r = pi_1 b + pi_2 c^r + pi_3 f``
- :func:`access`: one step of all of them, in the paper's order, from an :class:`Interface`.

Where this follows DeepMind's implementation (github.com/deepmind/dnc, ``addressing.py``)
rather than the paper's text, the docstring says so: the usage nudged away from 0 before the
allocation's product, and the optional ``clip_value``. Where the two differ, this follows
the paper: strengths are ``oneplus`` (DeepMind's are a softplus), and the usage is
differentiable with respect to the last write weighting (DeepMind stops that gradient).

:meth:`DNCCore.sequence`, which learners replay their sequences through, runs the steps
fused: the same function as stepping :meth:`DNCCore.forward`, as one autograd node whose
backward is written out by hand (the module's last section). Up to float rounding: where
two locations' usages are within rounding of each other, the free list may order them
either way, as stepping itself does for the same rows in another batch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from cogrl.checks import check_int, check_number
from cogrl.nn.cores import Core, register_core
from cogrl.nn.memory import EPS, content_address, read, write
from cogrl.nn.sequences import rows_ending

__all__ = [
    "EPSILON",
    "DNCCore",
    "DNCState",
    "Interface",
    "access",
    "allocation",
    "directional_weights",
    "free_list",
    "interface_size",
    "link",
    "oneplus",
    "precedence",
    "read_weighting",
    "retention",
    "split_interface",
    "usage",
    "write_weighting",
]

#: DeepMind's ``_EPSILON``: usage is mapped into [EPSILON, 1] before the allocation's
#: product (see :func:`allocation`).
EPSILON = 1e-6


def _check_shape(name: str, x: torch.Tensor, shape: tuple[int, ...], what: str) -> None:
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != tuple(shape):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be {what} = {tuple(shape)}, got {got}")


def _check_ndim(name: str, x: torch.Tensor, ndim: int, what: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != ndim:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a {ndim}-d tensor {what}, got {got}")


def oneplus(x: torch.Tensor) -> torch.Tensor:
    """``oneplus(x) = 1 + log(1 + e^x)``: the paper's map to strengths in [1, inf)."""
    return 1 + F.softplus(x)


# --- dynamic memory allocation ---------------------------------------------------------------


def retention(free_gates: torch.Tensor, read_weights_prev: torch.Tensor) -> torch.Tensor:
    """The memory retention vector ``psi_t = prod_{i=1}^R (1 - f^i_t w^{r,i}_{t-1})`` (B, N):
    how much of each location is *not* freed, by the free gates ``f`` (B, R) in [0, 1]
    applied to where each read head read last step (``read_weights_prev`` (B, R, N))."""
    _check_ndim("free_gates", free_gates, 2, "(B, R)")
    B, R = free_gates.shape
    _check_ndim("read_weights_prev", read_weights_prev, 3, "(B, R, N)")
    N = read_weights_prev.shape[-1]
    _check_shape("read_weights_prev", read_weights_prev, (B, R, N), "(B, R, N)")
    return torch.prod(1 - free_gates.unsqueeze(-1) * read_weights_prev, dim=1)


def usage(
    u_prev: torch.Tensor, write_weights_prev: torch.Tensor, psi: torch.Tensor
) -> torch.Tensor:
    """The usage vector ``u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} * w^w_{t-1}) * psi_t`` (B, N):
    writing raises a location's usage towards 1, freeing (``psi`` from :func:`retention`)
    lowers it. All three are (B, N) in [0, 1]."""
    _check_ndim("u_prev", u_prev, 2, "(B, N)")
    _check_shape("write_weights_prev", write_weights_prev, tuple(u_prev.shape), "(B, N)")
    _check_shape("psi", psi, tuple(u_prev.shape), "(B, N)")
    return (u_prev + write_weights_prev - u_prev * write_weights_prev) * psi


def free_list(u: torch.Tensor) -> torch.Tensor:
    """The free list ``phi_t`` (B, N): the locations by ascending usage ``u`` (B, N), the
    least used first. Ties keep location order (a stable sort), so an empty memory fills
    from location 0 upwards."""
    _check_ndim("u", u, 2, "(B, N)")
    return torch.sort(u, dim=-1, stable=True).indices


def allocation(u: torch.Tensor) -> torch.Tensor:
    """The allocation weighting ``a_t[phi_j] = (1 - u[phi_j]) prod_{i<j} u[phi_i]`` (B, N)
    for the usage ``u`` (B, N) in [0, 1], ``phi`` the :func:`free_list`: the least-used
    location gets most of the weight; with all locations used (``u = 1``) it is 0.

    As DeepMind's ``Freeness._allocation``, the usage is first mapped to
    ``EPSILON + (1 - EPSILON) u``. There it keeps TensorFlow's cumprod gradient (which
    divides by its input) finite at zero usage; torch's cumprod backward handles zeros
    itself (and reads nothing on the host), so here the nudge keeps the values DeepMind's
    (each factor moves by at most ``EPSILON``) and leaves every location a little weight,
    and gradient, behind a free one. Sorting is differentiable almost everywhere; at ties
    the gradient follows the stable order.
    """
    _check_ndim("u", u, 2, "(B, N)")
    u = EPSILON + (1 - EPSILON) * u
    sorted_u, phi = torch.sort(u, dim=-1, stable=True)
    # prod_{i<j} u[phi_i]: the exclusive cumulative product along the free list.
    ones = torch.ones_like(sorted_u[:, :1])
    before = torch.cumprod(torch.cat([ones, sorted_u[:, :-1]], dim=-1), dim=-1)
    sorted_a = (1 - sorted_u) * before
    # Back from free-list order to location order: a[phi_j] = sorted_a[j].
    return torch.zeros_like(sorted_a).scatter(-1, phi, sorted_a)


def write_weighting(
    write_gate: torch.Tensor,
    allocation_gate: torch.Tensor,
    a: torch.Tensor,
    content_weights: torch.Tensor,
) -> torch.Tensor:
    """The write weighting ``w^w_t = g^w (g^a a_t + (1 - g^a) c^w_t)`` (B, N): the
    allocation gate ``g^a`` (B, 1) chooses between a fresh location (the allocation ``a``)
    and the content lookup ``c^w`` (B, N); the write gate ``g^w`` (B, 1) whether to write
    at all."""
    _check_ndim("a", a, 2, "(B, N)")
    _check_shape("content_weights", content_weights, tuple(a.shape), "(B, N)")
    _check_shape("write_gate", write_gate, (a.shape[0], 1), "(B, 1)")
    _check_shape("allocation_gate", allocation_gate, (a.shape[0], 1), "(B, 1)")
    return write_gate * (allocation_gate * a + (1 - allocation_gate) * content_weights)


# --- temporal memory linkage -----------------------------------------------------------------


def precedence(p_prev: torch.Tensor, w_write: torch.Tensor) -> torch.Tensor:
    """The precedence weighting ``p_t = (1 - sum_i w^w_t[i]) p_{t-1} + w^w_t`` (B, N): how
    much each location was the last one written. A full write replaces it; no write keeps
    it."""
    _check_ndim("p_prev", p_prev, 2, "(B, N)")
    _check_shape("w_write", w_write, tuple(p_prev.shape), "(B, N)")
    return (1 - w_write.sum(-1, keepdim=True)) * p_prev + w_write


def link(L_prev: torch.Tensor, p_prev: torch.Tensor, w_write: torch.Tensor) -> torch.Tensor:
    """The temporal link matrix ``L_t[i, j] = (1 - w^w[i] - w^w[j]) L_{t-1}[i, j] +
    w^w[i] p_{t-1}[j]`` (B, N, N), with ``L_t[i, i] = 0``: ``L[i, j]`` near 1 says location
    i was written right after location j. ``p_prev`` is the precedence *before* this
    step's write (:func:`precedence` of the step before)."""
    _check_ndim("w_write", w_write, 2, "(B, N)")
    B, N = w_write.shape
    _check_shape("L_prev", L_prev, (B, N, N), "(B, N, N)")
    _check_shape("p_prev", p_prev, (B, N), "(B, N)")
    w_i = w_write.unsqueeze(-1)  # (B, N, 1)
    w_j = w_write.unsqueeze(-2)  # (B, 1, N)
    L = (1 - w_i - w_j) * L_prev + w_i * p_prev.unsqueeze(-2)
    # No self-links: a location never follows itself.
    return L * (1 - torch.eye(N, dtype=L.dtype, device=L.device))


def directional_weights(
    L: torch.Tensor, w_read_prev: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The forward and backward weightings ``f^i_t = L_t w^{r,i}_{t-1}``,
    ``b^i_t = L_t^T w^{r,i}_{t-1}``, each (B, R, N) for read weightings ``w_read_prev``
    (B, R, N): from where each head read last step, one write later (forward) or one write
    earlier (backward)."""
    _check_ndim("w_read_prev", w_read_prev, 3, "(B, R, N)")
    B, _, N = w_read_prev.shape
    _check_shape("L", L, (B, N, N), "(B, N, N)")
    forward = torch.einsum("bij,brj->bri", L, w_read_prev)
    backward = torch.einsum("bji,brj->bri", L, w_read_prev)
    return forward, backward


def read_weighting(
    read_modes: torch.Tensor,
    backward: torch.Tensor,
    content_weights: torch.Tensor,
    forward: torch.Tensor,
) -> torch.Tensor:
    """The read weighting ``w^{r,i}_t = pi^i[1] b^i_t + pi^i[2] c^{r,i}_t + pi^i[3] f^i_t``
    (B, R, N): the read modes ``pi`` (B, R, 3), on the simplex in the order (backward,
    content, forward), mix the three weightings (B, R, N)."""
    _check_ndim("content_weights", content_weights, 3, "(B, R, N)")
    B, R, _ = content_weights.shape
    _check_shape("read_modes", read_modes, (B, R, 3), "(B, R, 3)")
    _check_shape("backward", backward, tuple(content_weights.shape), "(B, R, N)")
    _check_shape("forward", forward, tuple(content_weights.shape), "(B, R, N)")
    pi = read_modes.unsqueeze(-1)  # (B, R, 3, 1)
    return pi[:, :, 0] * backward + pi[:, :, 1] * content_weights + pi[:, :, 2] * forward


# --- the interface and one memory step -------------------------------------------------------


class Interface(NamedTuple):
    """The interface vector ``xi_t`` split into its parts, each already in its range
    (Methods, "Interface parameters"); R read heads, words of width W."""

    read_keys: torch.Tensor  # k^{r,i} (B, R, W)
    read_strengths: torch.Tensor  # beta^{r,i} (B, R), in [1, inf) by oneplus
    write_key: torch.Tensor  # k^w (B, W)
    write_strength: torch.Tensor  # beta^w (B, 1), in [1, inf)
    erase: torch.Tensor  # e (B, W), in [0, 1] by a sigmoid
    write_vector: torch.Tensor  # v (B, W)
    free_gates: torch.Tensor  # f^i (B, R), in [0, 1]
    allocation_gate: torch.Tensor  # g^a (B, 1), in [0, 1]
    write_gate: torch.Tensor  # g^w (B, 1), in [0, 1]
    read_modes: torch.Tensor  # pi^i (B, R, 3): (backward, content, forward), softmax


def interface_size(read_heads: int, word_size: int) -> int:
    """The width of the interface vector: ``W R + 3 W + 5 R + 3``."""
    return word_size * read_heads + 3 * word_size + 5 * read_heads + 3


def split_interface(xi: torch.Tensor, read_heads: int, word_size: int) -> Interface:
    """The :class:`Interface` from the raw interface vector ``xi`` (B, ``interface_size``):
    strengths through :func:`oneplus`, erase and gates through a sigmoid, read modes through
    a softmax over the three modes of each head; keys and the write vector as they are."""
    R, W = read_heads, word_size
    _check_ndim("xi", xi, 2, "(B, interface_size)")
    _check_shape("xi", xi, (xi.shape[0], interface_size(R, W)), "(B, W R + 3 W + 5 R + 3)")
    B = xi.shape[0]
    # The parts in Interface's field order, as the paper lists them.
    raw = Interface(*torch.split(xi, [R * W, R, W, 1, W, W, R, 1, 1, 3 * R], dim=-1))
    return Interface(
        read_keys=raw.read_keys.reshape(B, R, W),
        read_strengths=oneplus(raw.read_strengths),
        write_key=raw.write_key,
        write_strength=oneplus(raw.write_strength),
        erase=torch.sigmoid(raw.erase),
        write_vector=raw.write_vector,
        free_gates=torch.sigmoid(raw.free_gates),
        allocation_gate=torch.sigmoid(raw.allocation_gate),
        write_gate=torch.sigmoid(raw.write_gate),
        read_modes=torch.softmax(raw.read_modes.reshape(B, R, 3), dim=-1),
    )


class DNCState(NamedTuple):
    """The DNC's recurrent state (B batch rows, N locations of width W, R read heads)."""

    controller: tuple[torch.Tensor, torch.Tensor]  # the LSTM's (h, c), (B, controller_size)
    memory: torch.Tensor  # M_t (B, N, W)
    usage: torch.Tensor  # u_t (B, N)
    link: torch.Tensor  # L_t (B, N, N)
    precedence: torch.Tensor  # p_t (B, N)
    read_weights: torch.Tensor  # w^r_t (B, R, N)
    write_weights: torch.Tensor  # w^w_t (B, N)
    read_vectors: torch.Tensor  # r_t, the R read vectors side by side (B, R W)


def access(state: DNCState, interface: Interface) -> DNCState:
    """One step of the DNC's memory, in the paper's order, from the controller's
    ``interface``: usage (from the last step's weightings and the free gates), allocation,
    write weighting, erase and write, precedence and link, then the read weightings and
    read vectors on the memory just written. The controller state is passed through."""
    B, N, W = state.memory.shape
    R = state.read_weights.shape[1]
    _check_shape("interface.read_keys", interface.read_keys, (B, R, W), "(B, R, W)")
    _check_shape("interface.read_strengths", interface.read_strengths, (B, R), "(B, R)")
    _check_shape("interface.read_modes", interface.read_modes, (B, R, 3), "(B, R, 3)")

    # Dynamic memory allocation.
    psi = retention(interface.free_gates, state.read_weights)
    u = usage(state.usage, state.write_weights, psi)
    a = allocation(u)

    # Write: content lookup on M_{t-1}, interpolated with the allocation.
    write_content = content_address(state.memory, interface.write_key, interface.write_strength)
    w_write = write_weighting(interface.write_gate, interface.allocation_gate, a, write_content)
    memory = write(state.memory, w_write, interface.erase, interface.write_vector)

    # Temporal linkage: L_t from the precedence p_{t-1} before it becomes p_t.
    L = link(state.link, state.precedence, w_write)
    p = precedence(state.precedence, w_write)

    # Read on M_t: content lookup of each head, mixed with the link's directions.
    read_content = content_address(
        memory, interface.read_keys, interface.read_strengths.unsqueeze(-1)
    )  # (B, R, N), the heads sharing the memory
    forward, backward = directional_weights(L, state.read_weights)
    w_read = read_weighting(interface.read_modes, backward, read_content, forward)
    read_vectors = read(memory, w_read).reshape(B, R * W)

    return DNCState(state.controller, memory, u, L, p, w_read, w_write, read_vectors)


# --- the core --------------------------------------------------------------------------------


@register_core("dnc")
class DNCCore(Core):
    """The Differentiable Neural Computer as a core: an LSTM controller over
    ``[x_t; r_{t-1}]``, its output ``h_t`` emitting the interface vector, one memory
    :func:`access`, and the output ``y_t = W_y [h_t; r_t]`` of width ``hidden_size``.

    Hyperparameters: ``memory_size`` N locations of ``word_size`` W, ``read_heads`` R,
    ``controller_size`` (the LSTM's width; ``None``: ``hidden_size``) and ``clip_value``
    (DeepMind's: when set, the controller's output and state and the core's output are
    clipped to ``[-clip_value, clip_value]``; ``None`` does not clip). The defaults
    (32 x 16, R = 2) are small enough for reinforcement learning on a CPU; the paper's
    bAbI model had N = 256, W = 64, R = 4. The state holds the (N, N) link matrix per
    row, so memory grows with N^2.

    An episode starts from zeros (memory, usage, link, precedence, weightings, read
    vectors, controller), as in the paper and DeepMind's code; a zero
    memory's content weighting is uniform (:func:`cogrl.nn.memory.cosine_similarity` is
    0 there, not NaN).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int = 128,
        memory_size: int = 32,
        word_size: int = 16,
        read_heads: int = 2,
        controller_size: int | None = None,
        clip_value: float | None = None,
    ) -> None:
        super().__init__()
        check_int("input_size", input_size)
        check_int("hidden_size", hidden_size)
        check_int("memory_size", memory_size)
        check_int("word_size", word_size)
        check_int("read_heads", read_heads)
        if controller_size is None:
            controller_size = hidden_size
        check_int("controller_size", controller_size)
        if clip_value is not None:
            check_number("clip_value", clip_value, low_open=True)
        self.hidden_size = int(hidden_size)
        self.memory_size = int(memory_size)
        self.word_size = int(word_size)
        self.read_heads = int(read_heads)
        self.controller_size = int(controller_size)
        self.clip_value = None if clip_value is None else float(clip_value)
        read_width = self.read_heads * self.word_size
        self.controller = nn.LSTMCell(input_size + read_width, self.controller_size)
        self.interface = nn.Linear(
            self.controller_size, interface_size(self.read_heads, self.word_size)
        )
        self.output = nn.Linear(self.controller_size + read_width, self.hidden_size)

    def _clip(self, x: torch.Tensor) -> torch.Tensor:
        if self.clip_value is None:
            return x
        return x.clamp(-self.clip_value, self.clip_value)

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> DNCState:
        B, N, W, R = batch_size, self.memory_size, self.word_size, self.read_heads
        zeros = torch.zeros(B, self.controller_size, device=device)
        return DNCState(
            controller=(zeros, zeros.clone()),
            memory=torch.zeros(B, N, W, device=device),
            usage=torch.zeros(B, N, device=device),
            link=torch.zeros(B, N, N, device=device),
            precedence=torch.zeros(B, N, device=device),
            read_weights=torch.zeros(B, R, N, device=device),
            write_weights=torch.zeros(B, N, device=device),
            read_vectors=torch.zeros(B, R * W, device=device),
        )

    def forward(self, x: torch.Tensor, state: DNCState) -> tuple[torch.Tensor, DNCState]:
        h, c = self.controller(torch.cat([x, state.read_vectors], dim=-1), tuple(state.controller))
        h, c = self._clip(h), self._clip(c)
        xi = self.interface(h)
        state = access(
            state._replace(controller=(h, c)),
            split_interface(xi, self.read_heads, self.word_size),
        )
        y = self._clip(self.output(torch.cat([h, state.read_vectors], dim=-1)))
        return y, state

    def sequence(
        self, x: torch.Tensor, state: DNCState, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, DNCState]:
        """:meth:`forward` over L steps of ``x`` (L, S, F), fused (see the module's last
        section): the same function, with one autograd node for the whole recurrence."""
        L, S = x.shape[:2]
        C, F_in, cell = self.controller_size, x.shape[-1], self.controller
        # The controller's input projection W_x x_t + b for all L steps at once; the
        # recurrent inputs [h_{t-1}, r_{t-1}] go in the loop.
        xg = F.linear(x, cell.weight_ih[:, :F_in], cell.bias_ih + cell.bias_hh)
        recurrent = torch.cat([cell.weight_hh, cell.weight_ih[:, F_in:]], dim=1)
        order = self._interface_order(x.device)
        h0, c0 = state.controller
        parts = (c0, torch.cat([h0, state.read_vectors], dim=-1), *state[1:-1])
        z, c, last, *memory = _FusedSteps.apply(
            self._dims(),
            xg,
            recurrent,
            self.interface.weight[order],
            self.interface.bias[order],
            rows_ending(lengths, L, S, x.device),
            *(s.to(xg.dtype) for s in parts),  # the state's, promoted as forward() would
        )
        # z_t = [h_t, r_t]: the output layer, all steps at once.
        y = self._clip(self.output(z))
        return y, DNCState((last[:, :C], c), *memory, last[:, C:])

    def _dims(self) -> _Dims:
        return _Dims(self.controller_size, self.read_heads, self.word_size, self.clip_value)

    def _interface_order(self, device: torch.device) -> torch.Tensor:
        """The rows of ``interface`` regrouped by activation (see :class:`_Dims`)."""
        R, W = self.read_heads, self.word_size
        # split_interface's parts, in the paper's order, as index ranges.
        rows = torch.arange(interface_size(R, W)).split([R * W, R, W, 1, W, W, R, 1, 1, 3 * R])
        rk, rs, wk, ws, e, v, f, a, g, modes = rows
        return torch.cat([rk, wk, v, rs, ws, e, f, a, g, modes]).to(device)

    def memory_weights(self, state: DNCState) -> dict[str, torch.Tensor]:
        """The read weightings (B, R, N) and the write weighting (B, 1, N) of the last
        step."""
        return {"read": state.read_weights, "write": state.write_weights.unsqueeze(1)}


# --- the fused sequence ----------------------------------------------------------------------
#
# As the NTM's (cogrl.nn.ntm, whose last section says why): DNCCore.sequence runs the same
# steps as forward() as one autograd node, _FusedSteps. _forward runs them without
# autograd, writing every step's tensors into per-sequence buffers; _backward goes back
# through them by hand, each equation's derivative in reverse order; the controller's
# input projection, the output layer, the activations' derivatives and the weight
# gradients run once for all steps.


class _Dims(NamedTuple):
    """What the fused steps need of the core. The interface layer arrives with its rows
    regrouped by activation (``DNCCore._interface_order``): none (the read keys, the write
    key, the write vector), oneplus (the read strengths, the write strength), sigmoid (the
    erase vector, the free gates, the allocation gate, the write gate) and softmax (the
    read modes)."""

    controller: int  # C
    read_heads: int  # R
    width: int  # W
    clip: float | None

    def groups(self) -> tuple[int, int, int]:
        """Where the identity, oneplus and sigmoid groups of the interface end."""
        R, W = self.read_heads, self.width
        raw_end = R * W + 2 * W
        oneplus_end = raw_end + R + 1
        return raw_end, oneplus_end, oneplus_end + W + R + 2


class _Interface(NamedTuple):
    """The interface's parts, each a tuple of per-step views: of the regrouped interface
    vector (keys, write vector) and of its oneplus and sigmoid groups, activated
    (strengths, erase vector, gates)."""

    read_keys: tuple  # (S, R, W)
    write_key: tuple  # (S, 1, W)
    write_vector: tuple  # (S, 1, W)
    read_strengths: tuple  # (S, R, 1)
    write_strength: tuple  # (S, 1, 1)
    erase: tuple  # (S, 1, W)
    free_gates: tuple  # (S, R, 1)
    allocation_gate: tuple  # (S, 1)
    write_gate: tuple  # (S, 1)


def _interface(xi: torch.Tensor, act: torch.Tensor, R: int, W: int) -> _Interface:
    raw_end = R * W + 2 * W
    sig = R + 1  # where the sigmoid group starts in act
    return _Interface(
        xi[..., : R * W].unflatten(-1, (R, W)).unbind(0),
        xi[..., R * W : R * W + W].unsqueeze(-2).unbind(0),
        xi[..., R * W + W : raw_end].unsqueeze(-2).unbind(0),
        act[..., :R, None].unbind(0),
        act[..., R, None, None].unbind(0),
        act[..., sig : sig + W].unsqueeze(-2).unbind(0),
        act[..., sig + W : sig + W + R, None].unbind(0),
        act[..., sig + W + R, None].unbind(0),
        act[..., sig + W + R + 1, None].unbind(0),
    )


class _FusedSteps(torch.autograd.Function):
    """The DNC's recurrence over L steps as one autograd node.

    In: the controller's input projections ``xg`` (L, S, 4C) (biases included), its
    recurrent weights (4C, C + R W) for ``[h_{t-1}, r_{t-1}]``, the regrouped interface
    layer (:class:`_Dims`), ``ends`` (:func:`cogrl.nn.sequences.rows_ending`) and the
    state: the LSTM's cell, ``z = [h, r]`` (S, C + R W), memory, usage, link, precedence,
    read and write weightings. Out: ``z_t = [h_t, r_t]`` (L, S, C + R W) and each row's
    final state, in that order.
    """

    @staticmethod
    def forward(ctx, dims, xg, recurrent, interface_weight, interface_bias, ends, *state):
        ctx.set_materialize_grads(False)
        save = any(ctx.needs_input_grad)
        z, finals, saved = _forward(
            dims, xg, recurrent, interface_weight, interface_bias, ends, state, save
        )
        if save:
            ctx.dims, ctx.ends, ctx.saved = dims, ends, saved
            ctx.save_for_backward(recurrent, interface_weight, z, *state)
        return (z, *finals)

    @staticmethod
    @once_differentiable
    def backward(ctx, dz, *d_finals):
        recurrent, interface_weight, z, *state = ctx.saved_tensors
        grads = _backward(
            ctx.dims, ctx.ends, ctx.saved, recurrent, interface_weight, z, state, dz, d_finals
        )
        return (None, *grads[:4], None, *grads[4:])


_STATE = ("cell", "z", "memory", "usage", "link", "precedence", "read_weights", "write_weights")


def _forward(dims, xg, recurrent, interface_weight, interface_bias, ends, state, save):
    """The steps of :meth:`DNCCore.forward`. With ``save``, every step's tensors stay in
    per-sequence buffers for :func:`_backward` (returned as a dict); without, two steps'
    worth are reused in turn."""
    L, S = xg.shape[:2]
    C, R, W, clip = dims
    c0, z0, M0 = state[:3]
    N = M0.shape[1]
    raw_end, oneplus_end, sigmoid_end = dims.groups()
    recurrent_t, interface_t = recurrent.t(), interface_weight.t()
    slots = L if save else 2
    new = xg.new_empty
    z = new(L, S, C + R * W)
    b = {
        "gates": new(slots, S, 4 * C),  # the LSTM's, after their sigmoid
        "g": new(slots, S, C),  # tanh(gate g)
        "cell_tanh": new(slots, S, C),  # tanh of the cell before its clip
        "xi": new(slots, S, interface_weight.shape[0]),  # the interface vector
        "act": new(slots, S, sigmoid_end - raw_end),  # its oneplus and sigmoid groups
        "factors": new(slots, S, R, N),  # 1 - f^i w^{r,i}_{t-1}
        "psi": new(slots, S, N),
        "kept": new(slots, S, N),  # u_{t-1} + w^w_{t-1} - u_{t-1} w^w_{t-1}
        "sorted": new(slots, S, N),  # the nudged usage in free-list order
        "phi": torch.empty(slots, S, N, dtype=torch.long, device=xg.device),  # the free list
        "before": new(slots, S, N),  # prod_{i<j} of the sorted usage
        "allocation": new(slots, S, N),
        "write_content": new(slots, S, N),  # c^w
        "mix": new(slots, S, N),  # g^a a + (1 - g^a) c^w
        "key_sq": new(slots, S, R + 1),  # |k|^2 + EPS of the read keys, the write key
        "write_denominator": new(slots, S, 1, N),
        "write_cosine": new(slots, S, 1, N),
        "read_denominator": new(slots, S, R, N),
        "read_cosine": new(slots, S, R, N),
        "modes_in": new(slots, S, R, 3, N),  # the backward, content and forward weightings
        # The state before each step and after the last (index t: before step t), and
        # sqrt(|M(i)|^2 + EPS) of each memory.
        "cell": new(slots + 1, S, C),
        "memory": new(slots + 1, S, N, W),
        "norm": new(slots + 1, S, 1, N),
        "usage": new(slots + 1, S, N),
        "link": new(slots + 1, S, N, N),
        "precedence": new(slots + 1, S, N),
        "read_weights": new(slots + 1, S, R, N),
        "write_weights": new(slots + 1, S, N),
    }
    if clip is not None:
        b["h_raw"], b["c_raw"] = new(slots, S, C), new(slots, S, C)
    for name, s0 in zip(_STATE, state, strict=True):
        if name != "z":
            b[name][0] = s0
    torch.linalg.vecdot(M0, M0, out=b["norm"][0, :, 0]).add_(EPS).sqrt_()
    v = {name: buf.unbind(0) for name, buf in b.items()}
    gate_in, gate_f, gate_o = (b["gates"][..., j * C : (j + 1) * C].unbind(0) for j in (0, 1, 3))
    xi, act = b["xi"], b["act"]
    x_oneplus = xi[..., raw_end:oneplus_end].unbind(0)
    x_sigmoid = xi[..., oneplus_end:sigmoid_end].unbind(0)
    x_modes = xi[..., sigmoid_end:].unflatten(-1, (R, 3)).unbind(0)
    a_oneplus, a_sigmoid = act[..., : R + 1].unbind(0), act[..., R + 1 :].unbind(0)
    face = _interface(xi, act, R, W)
    reads = z[..., C:].unflatten(-1, (R, W)).unbind(0)
    off_diagonal = 1 - torch.eye(N, dtype=xg.dtype, device=xg.device)
    erased = torch.empty_like(M0)  # v - e M, the write's temporary
    modes = []

    finals = [torch.empty_like(s) for s in state]
    now = state
    for t in range(-1, L):
        if t >= 0:
            i = t % slots  # this step's tensors and the state before it
            j = i + 1 if save else 1 - i  # the state after it
            z_prev, z_t = (z0 if t == 0 else z[t - 1]), z[t]
            c_prev, M_prev, u_prev = v["cell"][i], v["memory"][i], v["usage"][i]
            link_prev, p_prev = v["link"][i], v["precedence"][i]
            wr_prev, ww_prev = v["read_weights"][i], v["write_weights"][i]

            # The LSTM controller on [x_t, r_{t-1}] and h_{t-1}; its output and cell clipped.
            pre = torch.addmm(xg[t], z_prev, recurrent_t)
            torch.sigmoid(pre, out=v["gates"][i])
            g = torch.tanh(pre[:, 2 * C : 3 * C], out=v["g"][i])
            c_raw = v["cell"][j] if clip is None else v["c_raw"][i]
            torch.addcmul(gate_f[i] * c_prev, gate_in[i], g, out=c_raw)
            cell_tanh = torch.tanh(c_raw, out=v["cell_tanh"][i])
            if clip is None:
                h = torch.mul(gate_o[i], cell_tanh, out=z_t[:, :C])
            else:
                h_raw = torch.mul(gate_o[i], cell_tanh, out=v["h_raw"][i])
                h = torch.clamp(h_raw, -clip, clip, out=z_t[:, :C])
                torch.clamp(c_raw, -clip, clip, out=v["cell"][j])

            # The interface vector, each kind through its activation at once.
            torch.addmm(interface_bias, h, interface_t, out=v["xi"][i])
            torch.add(F.softplus(x_oneplus[i]), 1, out=a_oneplus[i])
            torch.sigmoid(x_sigmoid[i], out=a_sigmoid[i])
            read_modes = torch.softmax(x_modes[i], dim=-1)  # (S, R, 3)

            # Dynamic memory allocation: retention psi, usage u, allocation weighting a.
            factors = torch.mul(face.free_gates[i], wr_prev, out=v["factors"][i])
            psi = torch.prod(factors.neg_().add_(1), 1, out=v["psi"][i])
            kept = torch.addcmul(u_prev + ww_prev, u_prev, ww_prev, value=-1, out=v["kept"][i])
            u = torch.mul(kept, psi, out=v["usage"][j])
            nudged = torch.mul(u, 1 - EPSILON).add_(EPSILON)
            sorted_u, phi = torch.sort(
                nudged, dim=-1, stable=True, out=(v["sorted"][i], v["phi"][i])
            )
            before = v["before"][i]
            before[:, 0] = 1
            torch.cumprod(sorted_u[:, :-1], -1, out=before[:, 1:])
            sorted_a = torch.addcmul(before, sorted_u, before, value=-1)  # (1 - u) before
            a = v["allocation"][i].zero_().scatter_(-1, phi, sorted_a)

            # The write weighting from the allocation and a content lookup on M_{t-1}.
            key_sq = v["key_sq"][i]
            key = face.write_key[i]
            torch.linalg.vecdot(key, key, out=key_sq[:, R:]).add_(EPS)
            denominator = torch.mul(
                key_sq[:, R:, None].sqrt(), v["norm"][i], out=v["write_denominator"][i]
            )
            cosine = torch.bmm(key, M_prev.transpose(1, 2), out=v["write_cosine"][i])
            content = v["write_content"][i]
            content.copy_(
                torch.softmax(face.write_strength[i] * cosine.div_(denominator), -1)[:, 0]
            )
            mix = torch.lerp(content, a, face.allocation_gate[i], out=v["mix"][i])
            ww = torch.mul(face.write_gate[i], mix, out=v["write_weights"][j])

            # Erase and write, M_t = M_{t-1} + w^w (v - e M_{t-1}) (cogrl.nn.memory.write).
            M = v["memory"][j]
            torch.addcmul(face.write_vector[i], face.erase[i], M_prev, value=-1, out=erased)
            torch.addcmul(M_prev, ww.unsqueeze(-1), erased, out=M)
            norm = v["norm"][j]
            torch.linalg.vecdot(M, M, out=norm[:, 0]).add_(EPS).sqrt_()

            # Temporal linkage: L_t from p_{t-1}, then p_t.
            link = v["link"][j]
            torch.mul(1 - ww.unsqueeze(-1) - ww.unsqueeze(-2), link_prev, out=link)
            link.addcmul_(ww.unsqueeze(-1), p_prev.unsqueeze(-2)).mul_(off_diagonal)
            p = torch.addcmul(ww, 1 - ww.sum(-1, keepdim=True), p_prev, out=v["precedence"][j])

            # Read M_t: each head's content lookup and the link's two directions, mixed.
            keys = face.read_keys[i]
            torch.linalg.vecdot(keys, keys, out=key_sq[:, :R]).add_(EPS)
            denominator = torch.mul(key_sq[:, :R, None].sqrt(), norm, out=v["read_denominator"][i])
            cosine = torch.bmm(keys, M.transpose(1, 2), out=v["read_cosine"][i])
            modes_in = v["modes_in"][i]
            torch.bmm(wr_prev, link, out=modes_in[:, :, 0])  # backward: L^T w^r
            modes_in[:, :, 1] = torch.softmax(face.read_strengths[i] * cosine.div_(denominator), -1)
            torch.bmm(wr_prev, link.transpose(1, 2), out=modes_in[:, :, 2])  # forward: L w^r
            wr = v["read_weights"][j]
            torch.matmul(read_modes.unsqueeze(-2), modes_in, out=wr.unsqueeze(-2))
            torch.bmm(wr, M, out=reads[t])
            if save:
                modes.append(read_modes)
            now = (v["cell"][j], z_t, M, u, link, p, wr, ww)
        rows = ends.get(t)
        if rows is not None:
            for final, value in zip(finals, now, strict=True):
                final[rows] = value[rows]
    if not save:
        return z, finals, None
    b.update(modes=modes, off_diagonal=off_diagonal)
    return z, finals, b


def _backward(dims, ends, b, recurrent, interface_weight, z, state, dz, d_finals):
    """The gradients of :func:`_forward`'s inputs, back through time. Step t turns the
    gradients of what it leaves (its output ``z_t``, which the next step's controller
    also reads, and the rest of the state) into those of the state before it."""
    L, S = z.shape[:2]
    C, R, W, clip = dims
    raw_end, oneplus_end, sigmoid_end = dims.groups()

    # What the chain rule multiplies by that does not recur, for all steps at once.
    gates, g, cell_tanh = b["gates"], b["g"], b["cell_tanh"]
    # d c_t / d h_t through the output gate, o (1 - tanh(c)^2); d [c_t, h_t] / d gates:
    # sigma' of gates i, f, o and 1 - g^2 of gate g, times g, c_{t-1}, i and tanh(c).
    out_gate = gates[..., 3 * C :] * (1 - cell_tanh.square())
    gate_derivative = gates * (1 - gates)
    gate_derivative[..., 2 * C : 3 * C] = 1 - g.square()
    gate_derivative *= torch.cat([g, b["cell"][:-1], gates[..., :C], cell_tanh], -1)
    c_kept = None
    if clip is not None:
        # A clip passes the gradient where it did not bind.
        h_kept = b["h_raw"] == z[..., :C]
        out_gate *= h_kept
        gate_derivative[..., 3 * C :] *= h_kept
        c_kept = (b["c_raw"] == b["cell"][1:]).unbind(0)
    out_gates, gate_derivatives = out_gate.unbind(0), gate_derivative.unbind(0)
    forget = gates[..., C : 2 * C].unbind(0)
    # oneplus' = sigmoid of its input, sigmoid' = s (1 - s).
    xi, act = b["xi"], b["act"]
    act_derivative = torch.cat(
        [torch.sigmoid(xi[..., raw_end:oneplus_end]), act[..., R + 1 :] * (1 - act[..., R + 1 :])],
        -1,
    ).unbind(0)
    face = _interface(xi, act, R, W)
    v = {name: buf.unbind(0) for name, buf in b.items() if isinstance(buf, torch.Tensor)}
    modes, off_diagonal = b["modes"], b["off_diagonal"]

    d_gates = z.new_empty(L, S, 4 * C)
    d_xi = z.new_empty(L, S, interface_weight.shape[0])
    d_gate_steps, d_xi_steps = d_gates.unbind(0), d_xi.unbind(0)
    d_xi_acts = d_xi[..., raw_end:sigmoid_end].unbind(0)
    d_xi_modes = d_xi[..., sigmoid_end:].unflatten(-1, (R, 3)).unbind(0)
    dz_steps = None if dz is None else dz.unbind(0)
    # The gradients of the state after step t, in the state's order.
    d_c, d_z, d_M, d_u, d_link, d_p, d_wr, d_ww = (torch.zeros_like(s) for s in state)
    for t in range(L - 1, -2, -1):
        rows = ends.get(t)
        if rows is not None:
            grads = (d_c, d_z, d_M, d_u, d_link, d_p, d_wr, d_ww)
            for grad, final in zip(grads, d_finals, strict=True):
                if final is not None:
                    grad.index_add_(0, rows, final[rows])
        if t < 0:
            break
        d_out = d_z if dz_steps is None else d_z + dz_steps[t]
        d_r = d_out[:, C:].unflatten(-1, (R, W))
        M, M_prev = v["memory"][t + 1], v["memory"][t]
        wr, wr_prev = v["read_weights"][t + 1], v["read_weights"][t]
        ww, ww_prev = v["write_weights"][t + 1], v["write_weights"][t]
        link, link_prev, p_prev = v["link"][t + 1], v["link"][t], v["precedence"][t]
        modes_in, read_modes, key_sq = v["modes_in"][t], modes[t], v["key_sq"][t]

        # The read r_t = w^r M_t, with w^r = pi_1 b + pi_2 c^r + pi_3 f.
        d_wr = torch.baddbmm(d_wr, d_r, M.transpose(1, 2))
        d_modes = torch.matmul(modes_in, d_wr.unsqueeze(-1)).squeeze(-1)  # (S, R, 3)
        d_back, d_content, d_forth = (read_modes.unsqueeze(-1) * d_wr.unsqueeze(-2)).unbind(-2)
        # The directions b = L^T w^r_{t-1} and f = L w^r_{t-1}.
        d_wr_prev = torch.bmm(d_back, link.transpose(1, 2)).baddbmm_(d_forth, link)
        d_link = torch.baddbmm(
            d_link,
            torch.cat([wr_prev, d_forth], 1).transpose(1, 2),
            torch.cat([d_back, wr_prev], 1),
        )
        # The read heads' content lookup on M_t: softmax, the cosine's dot product and norms.
        content, cosine = modes_in[:, :, 1], v["read_cosine"][t]
        d_logits = d_content - torch.linalg.vecdot(d_content, content).unsqueeze(-1)
        d_logits *= content
        d_read_strengths = torch.linalg.vecdot(d_logits, cosine)
        d_cosine = d_logits.mul_(face.read_strengths[t])
        d_dot = d_cosine / v["read_denominator"][t]
        along = d_cosine.mul_(cosine)
        keys = face.read_keys[t]
        key_scale = along.sum(-1, keepdim=True).div_(key_sq[:, :R, None])
        d_read_keys = torch.baddbmm(keys * key_scale, d_dot, M, beta=-1)
        d_M = torch.baddbmm(
            d_M, torch.cat([wr, d_dot], 1).transpose(1, 2), torch.cat([d_r, keys], 1)
        )
        norm_scale = along.sum(1, keepdim=True).div_(v["norm"][t + 1].square())
        d_M.addcmul_(M, norm_scale.transpose(1, 2), value=-1)

        # The precedence p_t = (1 - sum w^w) p_{t-1} + w^w.
        d_p_prev = d_p * (1 - ww.sum(-1, keepdim=True))
        d_ww = d_ww + d_p - torch.linalg.vecdot(d_p, p_prev).unsqueeze(-1)
        # The link L_t = (1 - w^w_i - w^w_j) L_{t-1} + w^w_i p_{t-1, j}, off the diagonal.
        d_link = d_link.mul_(off_diagonal)
        moved = d_link * link_prev
        d_ww += torch.bmm(d_link, p_prev.unsqueeze(-1)).squeeze(-1)
        d_ww -= moved.sum(-1) + moved.sum(-2)
        d_p_prev += torch.bmm(ww.unsqueeze(1), d_link).squeeze(1)
        d_link_prev = d_link.mul_(1 - ww.unsqueeze(-1) - ww.unsqueeze(-2))
        # The write M_t = M_{t-1} + w^w (v - e M_{t-1}).
        erase = face.erase[t]
        d_keep = d_M * M_prev
        d_write_vector = torch.bmm(ww.unsqueeze(1), d_M)
        d_erase = torch.bmm(ww.unsqueeze(1), d_keep).neg_()
        d_ww += torch.bmm(face.write_vector[t], d_M.transpose(1, 2)).squeeze(1)
        d_ww -= torch.bmm(erase, d_keep.transpose(1, 2)).squeeze(1)
        d_M = torch.addcmul(d_M, ww.unsqueeze(-1), d_M * erase, value=-1)

        # The write weighting w^w = g^w (c^w + g^a (a - c^w)).
        content, allocation = v["write_content"][t], v["allocation"][t]
        d_write_gate = torch.linalg.vecdot(d_ww, v["mix"][t])
        d_mix = d_ww * face.write_gate[t]
        d_allocation_gate = torch.linalg.vecdot(d_mix, allocation - content)
        d_allocation = d_mix * face.allocation_gate[t]
        d_content = d_mix - d_allocation
        # The write key's content lookup on M_{t-1}.
        cosine = v["write_cosine"][t][:, 0]
        d_logits = d_content - torch.linalg.vecdot(d_content, content).unsqueeze(-1)
        d_logits *= content
        d_write_strength = torch.linalg.vecdot(d_logits, cosine)
        d_cosine = d_logits.mul_(face.write_strength[t][:, 0])
        d_dot = (d_cosine / v["write_denominator"][t][:, 0]).unsqueeze(1)
        along = d_cosine.mul_(cosine)
        key = face.write_key[t]
        key_scale = along.sum(-1, keepdim=True).div_(key_sq[:, R:]).unsqueeze(-1)
        d_write_key = torch.baddbmm(key * key_scale, d_dot, M_prev, beta=-1)
        d_M.baddbmm_(d_dot.transpose(1, 2), key)
        d_M.addcmul_(M_prev, along.div_(v["norm"][t][:, 0].square()).unsqueeze(-1), value=-1)

        # The allocation a[phi_j] = (1 - u[phi_j]) prod_{i<j} u[phi_i] of the nudged usage:
        # the exclusive cumulative product's derivative sums the later terms over u[phi_i].
        sorted_u, phi, before = v["sorted"][t], v["phi"][t], v["before"][t]
        d_sorted_a = d_allocation.gather(-1, phi)
        later = (d_sorted_a * (1 - sorted_u) * before).flip(-1).cumsum(-1).flip(-1)
        d_sorted = (d_sorted_a * before).neg_()
        d_sorted[:, :-1] += later[:, 1:] / sorted_u[:, :-1]
        d_u_t = torch.zeros_like(d_sorted).scatter_(-1, phi, d_sorted).mul_(1 - EPSILON).add_(d_u)
        # The usage u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} w^w_{t-1}) psi_t, and the retention
        # psi_t = prod_i (1 - f^i w^{r,i}_{t-1}): each factor times the product of the others.
        d_psi = d_u_t * v["kept"][t]
        d_kept = d_u_t * v["psi"][t]
        d_u = d_kept * (1 - ww_prev)
        d_ww_prev = d_kept * (1 - v["usage"][t])
        factors = v["factors"][t]
        ones = torch.ones_like(factors[:, :1])
        others = torch.cat([ones, factors[:, :-1]], 1).cumprod(1)
        others *= torch.cat([ones, factors.flip(1)[:, :-1]], 1).cumprod(1).flip(1)
        d_factors = others.mul_(d_psi.unsqueeze(1))
        d_free_gates = torch.linalg.vecdot(d_factors, wr_prev).neg_()
        d_wr_prev.addcmul_(d_factors, face.free_gates[t], value=-1)

        # The interface: its raw, oneplus, sigmoid and softmax parts, then h_t.
        parts = [
            d_read_keys, d_write_key, d_write_vector, d_read_strengths, d_write_strength,
            d_erase, d_free_gates, d_allocation_gate, d_write_gate,
        ]  # fmt: skip
        torch.cat([p.reshape(S, -1) for p in parts], 1, out=d_xi_steps[t][:, :sigmoid_end])
        d_xi_acts[t].mul_(act_derivative[t])
        d_modes.sub_(torch.linalg.vecdot(d_modes, read_modes).unsqueeze(-1))
        torch.mul(d_modes, read_modes, out=d_xi_modes[t])
        d_h = torch.addmm(d_out[:, :C], d_xi_steps[t], interface_weight)

        # The controller.
        d_c_raw = d_c if c_kept is None else d_c * c_kept[t]
        d_c_raw = torch.addcmul(d_c_raw, d_h, out_gates[t])
        d_G = d_gate_steps[t]
        torch.cat([d_c_raw, d_c_raw, d_c_raw, d_h], 1, out=d_G).mul_(gate_derivatives[t])
        d_c = d_c_raw * forget[t]
        d_z = torch.mm(d_G, recurrent)
        d_link, d_p, d_wr, d_ww = d_link_prev, d_p_prev, d_wr_prev, d_ww_prev

    h = z[..., :C]
    z_in = torch.cat([state[1].unsqueeze(0), z[:-1]])
    d_recurrent = d_gates.flatten(0, 1).t() @ z_in.flatten(0, 1)
    d_interface_weight = d_xi.flatten(0, 1).t() @ h.flatten(0, 1)
    d_interface_bias = d_xi.sum((0, 1))
    return (
        d_gates, d_recurrent, d_interface_weight, d_interface_bias,
        d_c, d_z, d_M, d_u, d_link, d_p, d_wr, d_ww,
    )  # fmt: skip
