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
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cogrl.checks import check_int, check_number
from cogrl.nn.cores import Core, register_core
from cogrl.nn.memory import content_address, read, write

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

    def memory_weights(self, state: DNCState) -> dict[str, torch.Tensor]:
        """The read weightings (B, R, N) and the write weighting (B, 1, N) of the last
        step."""
        return {"read": state.read_weights, "write": state.write_weights.unsqueeze(1)}
