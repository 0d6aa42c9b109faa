"""The Differentiable Neural Computer (cogrl.nn.dnc): its memory updates against values
worked by hand from the paper's equations, a whole memory step driven by hand-set
interface values, finite gradients where sorting and zero usage could break them, and the
registered ``dnc`` core in cogrl's policies and learners."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import cogrl.agents
from cogrl.agents.evaluation import memory_image, memory_trace
from cogrl.nn import Core, DNCCore, PolicyConfig, make_core, make_torso
from cogrl.nn.dnc import (
    EPSILON,
    DNCState,
    Interface,
    access,
    allocation,
    directional_weights,
    free_list,
    interface_size,
    link,
    precedence,
    read_weighting,
    retention,
    split_interface,
    usage,
    write_weighting,
)
from cogrl.nn.state import leaves, reset_state


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def close(actual, expected, atol=1e-5):
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)


# --- dynamic memory allocation ---------------------------------------------------------------


def test_allocation_follows_the_free_list_of_ascending_usage():
    u = t([0.4, 0.1, 0.9])
    assert free_list(u).tolist() == [[1, 0, 2]]
    # a[phi_j] = (1 - u[phi_j]) prod_{i<j} u[phi_i], phi = [1, 0, 2]:
    # a[1] = 0.9; a[0] = 0.6 * 0.1; a[2] = 0.1 * 0.1 * 0.4.
    close(allocation(u), t([0.6 * 0.1, 0.9, 0.1 * 0.1 * 0.4]))
    close(allocation(u), t([0.06, 0.9, 0.004]))


def test_allocation_is_batched_row_by_row():
    u = t([0.4, 0.1, 0.9], [0.5, 0.2, 0.2], [0.0, 0.0, 0.0])
    assert free_list(u).tolist() == [[1, 0, 2], [1, 2, 0], [0, 1, 2]]
    a = allocation(u)
    for row in range(3):
        close(a[row : row + 1], allocation(u[row : row + 1]))


def test_allocation_breaks_ties_by_location():
    # Usage [0.5, 0.2, 0.2]: locations 1 and 2 tie; the stable order is [1, 2, 0].
    # a[1] = 0.8, a[2] = 0.8 * 0.2, a[0] = 0.5 * 0.2 * 0.2.
    close(allocation(t([0.5, 0.2, 0.2])), t([0.02, 0.8, 0.16]))
    # All equal: the first location gets 1 - u, the next u (1 - u), and so on.
    close(allocation(t([0.5, 0.5, 0.5])), t([0.5, 0.25, 0.125]))


def test_an_empty_memory_allocates_its_first_location():
    a = allocation(torch.zeros(1, 4))
    # (1 - EPSILON) at location 0; EPSILON (1 - EPSILON) at location 1, and so on.
    close(a, t([1.0, 0.0, 0.0, 0.0]))
    assert a[0, 1] == pytest.approx(EPSILON * (1 - EPSILON), rel=1e-3)


def test_a_fully_used_memory_allocates_nothing():
    close(allocation(torch.ones(2, 5)), torch.zeros(2, 5), atol=1e-6)
    # Nearly full: only the one location with room gets anything, and only its room.
    close(allocation(t([1.0, 0.7, 1.0])), t([0.0, 0.3, 0.0]))


def test_retention_and_usage_free_what_was_read_and_keep_what_was_written():
    # Two read heads: head 1 read location 0, head 2 location 1; free gates 1 and 0.5.
    read_prev = t([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    psi = retention(t([1.0, 0.5]), read_prev)
    # psi = (1 - 1 * w^{r,1}) (1 - 0.5 * w^{r,2}) = [0 * 1, 1 * 0.5, 1 * 1].
    close(psi, t([0.0, 0.5, 1.0]))
    u_prev = t([0.8, 0.6, 0.3])
    write_prev = t([0.0, 0.0, 0.5])
    # u + w - u w = [0.8, 0.6, 0.3 + 0.5 - 0.15 = 0.65]; times psi.
    u = usage(u_prev, write_prev, psi)
    close(u, t([0.0, 0.3, 0.65]))
    assert u[0, 0] < u_prev[0, 0]  # read and freed: usage drops
    assert u[0, 2] > u_prev[0, 2]  # written and not freed: usage rises
    # Free gates at 0 free nothing: usage only grows by writing.
    close(retention(t([0.0, 0.0]), read_prev), torch.ones(1, 3))


def test_write_weighting_gates_between_allocation_and_content():
    a, c = t([1.0, 0.0, 0.0]), t([0.0, 0.5, 0.5])
    # g^w (g^a a + (1 - g^a) c) with g^w = 0.8, g^a = 0.25:
    # 0.8 * [0.25, 0.375, 0.375] = [0.2, 0.3, 0.3].
    close(write_weighting(t([0.8]), t([0.25]), a, c), t([0.2, 0.3, 0.3]))
    close(write_weighting(t([0.0]), t([0.25]), a, c), torch.zeros(1, 3))


# --- temporal memory linkage -----------------------------------------------------------------


def test_two_writes_link_the_second_location_after_the_first():
    N = 3
    L, p = torch.zeros(1, N, N), torch.zeros(1, N)
    for location in (0, 2):  # a one-hot write at 0, then one at 2
        w = torch.zeros(1, N)
        w[0, location] = 1.0
        L, p = link(L, p, w), precedence(p, w)
    expected = torch.zeros(1, N, N)
    expected[0, 2, 0] = 1.0  # L[2, 0]: location 2 was written right after 0
    close(L, expected)
    close(p, t([0.0, 0.0, 1.0]))  # the last write was at 2
    # Following the link: forward from a read at 0 lands on 2, backward from 2 on 0.
    forward, backward = directional_weights(L, t([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    close(forward[0, 0], t([0.0, 0.0, 1.0])[0])
    close(backward[0, 1], t([1.0, 0.0, 0.0])[0])
    close(backward[0, 0], torch.zeros(3))  # nothing was written before 0
    close(forward[0, 1], torch.zeros(3))  # nor after 2


def test_a_partial_write_decays_old_links_and_adds_new_ones():
    L_prev = t([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    p_prev = t([0.0, 0.0, 1.0])
    w = t([0.5, 0.0, 0.0])
    # L[i, j] = (1 - w[i] - w[j]) L_prev[i, j] + w[i] p_prev[j]:
    # L[2, 0] = (1 - 0 - 0.5) * 1 + 0 = 0.5;  L[0, 2] = (1 - 0.5 - 0) * 0 + 0.5 * 1 = 0.5.
    close(link(L_prev, p_prev, w), t([[0.0, 0.0, 0.5], [0.0, 0.0, 0.0], [0.5, 0.0, 0.0]]))
    # p = (1 - 0.5) p_prev + w.
    close(precedence(p_prev, w), t([0.5, 0.0, 0.5]))
    # The diagonal stays 0 even where the formula would put weight on it.
    self_linked = link(torch.ones(1, 3, 3), torch.ones(1, 3), t([0.2, 0.2, 0.2]))
    close(torch.diagonal(self_linked, dim1=-2, dim2=-1), torch.zeros(1, 3))


def test_read_modes_mix_backward_content_and_forward():
    b = t([[1.0, 0.0, 0.0]])
    c = t([[0.0, 1.0, 0.0]])
    f = t([[0.0, 0.0, 1.0]])
    pi = t([[0.2, 0.5, 0.3]])  # (backward, content, forward)
    close(read_weighting(pi, b, c, f), t([[0.2, 0.5, 0.3]]))
    close(read_weighting(t([[0.0, 0.0, 1.0]]), b, c, f), f)


# --- the interface and whole memory steps ----------------------------------------------------


def test_the_interface_vector_splits_in_the_papers_order():
    R, W = 2, 3
    assert interface_size(R, W) == R * W + R + W + 1 + W + W + R + 1 + 1 + 3 * R == 28
    # Each part filled with its own value, in the paper's order.
    sizes = [R * W, R, W, 1, W, W, R, 1, 1, 3 * R]
    values = [1.0, -2.0, 3.0, 0.5, -1.0, 4.0, 2.0, -3.0, 1.5, 0.0]
    xi = torch.cat([torch.full((2, n), v) for n, v in zip(sizes, values, strict=True)], -1)
    parts = split_interface(xi, R, W)

    def sigmoid(x):
        return 1 / (1 + math.exp(-x))

    def oneplus(x):
        return 1 + math.log(1 + math.exp(x))

    close(parts.read_keys, torch.full((2, R, W), 1.0))
    close(parts.read_strengths, torch.full((2, R), oneplus(-2.0)))
    close(parts.write_key, torch.full((2, W), 3.0))
    close(parts.write_strength, torch.full((2, 1), oneplus(0.5)))
    close(parts.erase, torch.full((2, W), sigmoid(-1.0)))
    close(parts.write_vector, torch.full((2, W), 4.0))
    close(parts.free_gates, torch.full((2, R), sigmoid(2.0)))
    close(parts.allocation_gate, torch.full((2, 1), sigmoid(-3.0)))
    close(parts.write_gate, torch.full((2, 1), sigmoid(1.5)))
    close(parts.read_modes, torch.full((2, R, 3), 1 / 3))


def interface(B: int = 1, R: int = 1, W: int = 2, **parts: torch.Tensor) -> Interface:
    """An interface from named parts (already in range); the rest: no write, no freeing,
    zero keys of strength 1, content reads."""
    defaults = {
        "read_keys": torch.zeros(B, R, W),
        "read_strengths": torch.ones(B, R),
        "write_key": torch.zeros(B, W),
        "write_strength": torch.ones(B, 1),
        "erase": torch.zeros(B, W),
        "write_vector": torch.zeros(B, W),
        "free_gates": torch.zeros(B, R),
        "allocation_gate": torch.zeros(B, 1),
        "write_gate": torch.zeros(B, 1),
        "read_modes": torch.tensor([0.0, 1.0, 0.0]).expand(B, R, 3),
    }
    unknown = set(parts) - set(defaults)
    assert not unknown, unknown
    return Interface(**{**defaults, **parts})


def test_a_hand_driven_sequence_writes_links_follows_frees_and_reuses():
    N, W = 2, 2  # two locations: after two writes the memory is full
    state = DNCCore(1, 4, memory_size=N, word_size=W, read_heads=1).initial_state(1)
    allocate = {"write_gate": t([1.0]), "allocation_gate": t([1.0]), "erase": t([1.0, 1.0])}

    # Step 1: write [1, 2] where allocation points (the empty memory's first location) and
    # read it back by content with a sharp key.
    state = access(
        state,
        interface(
            write_vector=t([1.0, 2.0]),
            read_keys=t([[1.0, 2.0]]),
            read_strengths=t([100.0]),
            **allocate,
        ),
    )
    close(state.write_weights, t([1.0, 0.0]), atol=1e-4)
    close(state.memory, t([[1.0, 2.0], [0.0, 0.0]]), atol=1e-4)
    close(state.read_weights, t([[1.0, 0.0]]), atol=1e-4)
    close(state.read_vectors, t([1.0, 2.0]), atol=1e-4)
    close(state.usage, torch.zeros(1, N))  # usage counts a write from the next step on
    close(state.precedence, t([1.0, 0.0]), atol=1e-4)

    # Step 2: location 0 is now used, so the allocation writes [3, -1] at location 1; the
    # head reads forward from location 0 along the link to location 1.
    state = access(
        state,
        interface(write_vector=t([3.0, -1.0]), read_modes=t([[0.0, 0.0, 1.0]]), **allocate),
    )
    close(state.usage, t([1.0, 0.0]), atol=1e-4)
    close(state.write_weights, t([0.0, 1.0]), atol=1e-4)
    close(state.memory, t([[1.0, 2.0], [3.0, -1.0]]), atol=1e-4)
    close(state.link, t([[0.0, 0.0], [1.0, 0.0]]), atol=1e-4)  # 1 was written after 0
    close(state.read_weights, t([[0.0, 1.0]]), atol=1e-4)
    close(state.read_vectors, t([3.0, -1.0]), atol=1e-4)

    # Step 3: no write; the free gate releases location 1 (read last step), and the head
    # reads backward from 1 to 0.
    state = access(state, interface(free_gates=t([1.0]), read_modes=t([[1.0, 0.0, 0.0]])))
    # u = (u_prev + w_prev - u_prev w_prev) psi = [1, 1] * [1 - 0, 1 - 1].
    close(state.usage, t([1.0, 0.0]), atol=1e-4)
    close(state.write_weights, torch.zeros(1, N))
    close(state.memory, t([[1.0, 2.0], [3.0, -1.0]]), atol=1e-4)
    close(state.read_weights, t([[1.0, 0.0]]), atol=1e-4)
    close(state.read_vectors, t([1.0, 2.0]), atol=1e-4)

    # Step 4: the freed location is allocated again: [5, 5] replaces [3, -1], and location
    # 0 keeps its word.
    state = access(state, interface(write_vector=t([5.0, 5.0]), **allocate))
    close(state.write_weights, t([0.0, 1.0]), atol=1e-4)
    close(state.memory, t([[1.0, 2.0], [5.0, 5.0]]), atol=1e-4)


def test_batch_rows_do_not_mix():
    torch.manual_seed(0)
    core = DNCCore(3, 8, memory_size=5, word_size=3, read_heads=2)
    x = torch.randn(4, 3, 3)  # 4 steps, 3 rows
    state = core.initial_state(3)
    alone = [core.initial_state(1) for _ in range(3)]
    for step in range(4):
        h, state = core(x[step], state)
        for row in range(3):
            h_row, alone[row] = core(x[step, row : row + 1], alone[row])
            close(h[row : row + 1], h_row)
    for row in range(3):
        for batched, single in zip(leaves(state), leaves(alone[row]), strict=True):
            close(batched[row : row + 1], single)


# --- gradients and host reads ----------------------------------------------------------------


def test_allocation_gradients_are_finite_at_ties_and_zero_usage():
    for u0 in (torch.zeros(2, 4), torch.full((2, 4), 0.3), torch.ones(2, 4), t([0.0, 1.0, 0.0])):
        u = u0.clone().requires_grad_(True)
        (allocation(u) * torch.arange(1.0, u.shape[1] + 1)).sum().backward()
        assert torch.isfinite(u.grad).all(), (u0, u.grad)
    # At zero usage (all tied) the order is [0, 1, 2], so a[1] = (1 - u'[1]) u'[0] with
    # u' = EPSILON + (1 - EPSILON) u: d a[1] / d u[0] = (1 - EPSILON)^2, and the gradient
    # reaches the location before it in the free list.
    u = torch.zeros(1, 3, requires_grad=True)
    allocation(u)[0, 1].backward()
    close(u.grad, t([(1 - EPSILON) ** 2, -EPSILON * (1 - EPSILON), 0.0]), atol=1e-9)


def test_gradients_stay_finite_over_a_long_random_sequence_with_zero_inputs():
    torch.manual_seed(1)
    core = DNCCore(6, 16, memory_size=8, word_size=4, read_heads=2)
    x = torch.randn(50, 4, 6) * 3
    x[::3] = 0.0  # zero inputs every third step
    x[:, 0] = 0.0  # and one row of zeros throughout
    h, _ = core.sequence(x, core.initial_state(4))
    assert torch.isfinite(h).all()
    h.pow(2).mean().backward()
    for name, p in core.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # The gradient reaches the interface: memory takes part in the output.
    assert core.interface.weight.grad.abs().sum() > 0


class _HostReads(TorchDispatchMode):
    """Counts the operators that copy a tensor's value to the host (``item``, ``bool``,
    ``float``, ``int`` and ``nonzero`` dispatch to them; ``tolist`` and ``numpy`` do not,
    and the test watches those separately)."""

    READS = ("aten._local_scalar_dense", "aten.nonzero", "aten.item")

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if any(str(func).startswith(name) for name in self.READS):
            self.reads.append(str(func))
        return func(*args, **(kwargs or {}))


def test_steps_and_their_gradients_read_nothing_on_the_host(monkeypatch):
    core = DNCCore(3, 8, memory_size=6, word_size=2, read_heads=2, clip_value=20.0)
    x = torch.randn(5, 4, 3)
    state = core.initial_state(4)
    with _HostReads() as mode:
        for name in ("tolist", "numpy"):
            monkeypatch.setattr(torch.Tensor, name, lambda *a, _n=name, **k: mode.reads.append(_n))
        for step in range(5):
            h, state = core(x[step], state)
        h.sum().backward()
    assert mode.reads == []
    # The counter sees a read when there is one.
    with _HostReads() as mode:
        (h.sum() > 0).item()
        h.tolist()
    assert mode.reads == ["aten._local_scalar_dense.default", "tolist"]


# --- the registered core ---------------------------------------------------------------------


def test_the_core_is_registered_and_reports_its_weightings():
    core = make_core("dnc", 5, 16, memory_size=8, word_size=4, read_heads=3)
    assert isinstance(core, DNCCore) and core.hidden_size == 16
    state = core.initial_state(2)
    h, state = core(torch.randn(2, 5), state)
    assert h.shape == (2, 16)
    assert isinstance(state, DNCState)
    shapes = {
        "controller": [(2, 16), (2, 16)],
        "memory": (2, 8, 4),
        "usage": (2, 8),
        "link": (2, 8, 8),
        "precedence": (2, 8),
        "read_weights": (2, 3, 8),
        "write_weights": (2, 8),
        "read_vectors": (2, 12),
    }
    for field, shape in shapes.items():
        value = getattr(state, field)
        got = [tuple(v.shape) for v in value] if field == "controller" else tuple(value.shape)
        assert got == shape, field
    weights = core.memory_weights(state)
    assert set(weights) == {"read", "write"}
    assert weights["read"].shape == (2, 3, 8) and weights["write"].shape == (2, 1, 8)
    # Weightings: non-negative, each summing to at most 1.
    for w in weights.values():
        assert (w >= 0).all() and (w.sum(-1) <= 1 + 1e-5).all()


def test_policy_config_passes_the_dncs_settings_to_the_core():
    config = PolicyConfig().replace(
        {"core": "dnc", "core_size": 12, "memory_size": 6, "word_size": 5, "read_heads": 1}
    )
    assert config.core_kwargs == {"memory_size": 6, "word_size": 5, "read_heads": 1}
    torso = make_torso(gym.spaces.Box(-1, 1, (4,)), config)
    core = torso.core
    assert isinstance(core, DNCCore)
    assert (core.hidden_size, core.memory_size, core.word_size, core.read_heads) == (12, 6, 5, 1)
    with pytest.raises(ValueError, match="memory_slots"):
        PolicyConfig().replace({"core": "dnc", "memory_slots": 6})


def test_sequence_with_lengths_equals_stepping():
    torch.manual_seed(2)
    core = DNCCore(3, 8, memory_size=5, word_size=3, read_heads=2)
    L, S = 5, 3
    x = torch.randn(L, S, 3)
    lengths = torch.tensor([5, 2, 4])
    state0 = core.initial_state(S)
    h, last = core.sequence(x, state0, lengths)
    for s in range(S):
        state = core.initial_state(1)
        for step in range(int(lengths[s])):
            h_step, state = core(x[step, s : s + 1], state)
            close(h[step, s : s + 1], h_step)
        for got, want in zip(leaves(last), leaves(state), strict=True):
            close(got[s : s + 1], want)


def test_reset_restores_the_initial_state_of_the_starting_rows_only():
    torch.manual_seed(3)
    core = DNCCore(3, 8, memory_size=4, word_size=2)
    state = core.initial_state(2)
    for _ in range(3):
        _, state = core(torch.randn(2, 3), state)
    reset = core.reset(state, torch.tensor([True, False]))
    initial = core.initial_state(2)
    for after, before, init in zip(leaves(reset), leaves(state), leaves(initial), strict=True):
        close(after[0], init[0])
        close(after[1], before[1])
    # And the same as the state utilities' reset, which learners use.
    expected = reset_state(state, torch.tensor([True, False]), initial)
    for a, b in zip(leaves(reset), leaves(expected), strict=True):
        close(a, b)


def test_clip_value_bounds_the_controller_and_the_output():
    torch.manual_seed(4)
    core = DNCCore(3, 8, memory_size=4, word_size=2, clip_value=0.05)
    with torch.no_grad():
        for p in core.parameters():
            p.mul_(50.0)
    state = core.initial_state(2)
    for _ in range(3):
        with torch.no_grad():
            h, state = core(torch.randn(2, 3) * 10, state)
        assert h.abs().max() <= 0.05
        assert all(s.abs().max() <= 0.05 for s in state.controller)
    assert h.abs().max() == pytest.approx(0.05)  # the clip was needed


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"memory_size": 0}, "memory_size must be an int >= 1, got 0"),
        ({"word_size": 2.5}, "word_size must be an int >= 1, got 2.5"),
        ({"read_heads": -1}, "read_heads must be an int >= 1, got -1"),
        ({"controller_size": 0}, "controller_size must be an int >= 1, got 0"),
        ({"clip_value": 0.0}, r"clip_value must be a finite number in \(0.0, inf\], got 0.0"),
        ({"clip_value": float("nan")}, "clip_value must be a finite number"),
    ],
)
def test_bad_hyperparameters_are_value_errors_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DNCCore(3, 8, **kwargs)


def test_misshapen_inputs_to_the_memory_functions_are_value_errors():
    with pytest.raises(ValueError, match=r"u must be a 2-d tensor \(B, N\), got \(3,\)"):
        allocation(torch.zeros(3))
    with pytest.raises(ValueError, match=r"read_weights_prev must be \(B, R, N\) = \(1, 2, 3\)"):
        retention(torch.zeros(1, 2), torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match=r"L_prev must be \(B, N, N\) = \(1, 3, 3\)"):
        link(torch.zeros(1, 3, 4), torch.zeros(1, 3), torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"read_modes must be \(B, R, 3\) = \(1, 1, 3\)"):
        read_weighting(torch.zeros(1, 1, 2), *[torch.zeros(1, 1, 3)] * 3)
    with pytest.raises(ValueError, match=r"xi must be \(B, W R \+ 3 W \+ 5 R \+ 3\)"):
        split_interface(torch.zeros(2, 10), read_heads=1, word_size=2)


def test_ppo_trains_a_dnc_policy_end_to_end():
    agent = cogrl.agents.make(
        "ppo",
        "CartPole-v1",
        seed=0,
        policy={"core": "dnc", "core_size": 32, "memory_size": 8, "word_size": 4},
        num_envs=4,
        n_steps=16,
        batch_size=32,  # PPO's default minibatch (256) is more than a rollout of 4 x 16
    )
    before = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    agent.learn(256)
    after = agent.policy.state_dict()
    dnc = [k for k in before if ".core.interface." in k]
    assert dnc, sorted(before)
    # The interface layer learns: the memory's gradients flow back through PPO's loss.
    assert any(not torch.equal(before[k], after[k]) for k in dnc)
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    # Its weightings reach the memory heatmaps of TensorBoard's rollouts.
    trace = memory_trace(agent, seed=0)
    T = len(trace.rewards)
    assert trace.weights["read"].shape == (T, 2, 8)
    assert trace.weights["write"].shape == (T, 1, 8)
    assert memory_image(trace).ndim == 3


# --- the fused sequence ----------------------------------------------------------------------


@pytest.fixture
def float64():
    """Double precision, for comparisons tighter than float32's rounding."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def moved_state(core: DNCCore, rows: int) -> DNCState:
    """A state in the middle of an episode: used locations, links, weightings, each a leaf
    that wants its gradient."""
    torch.manual_seed(3)
    state = core.initial_state(rows)
    N = core.memory_size

    def weighting(like: torch.Tensor, total: float = 1.0) -> torch.Tensor:
        return total * torch.softmax(2 * torch.randn_like(like), -1)

    state = DNCState(
        controller=tuple(0.5 * torch.randn_like(c) for c in state.controller),
        memory=0.5 * torch.randn_like(state.memory),
        usage=torch.rand_like(state.usage),
        link=torch.rand_like(state.link) / N * (1 - torch.eye(N)),
        precedence=weighting(state.precedence, 0.9),
        read_weights=weighting(state.read_weights),
        write_weights=weighting(state.write_weights, 0.8),
        read_vectors=0.5 * torch.randn_like(state.read_vectors),
    )
    for s in leaves(state):
        s.requires_grad_()
    return state


def stepped(core: DNCCore, x: torch.Tensor, state, lengths=None):
    """The reference: Core.sequence, stepping forward() under autograd."""
    return Core.sequence(core, x, state, lengths)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"read_heads": 1},
        {"read_heads": 3, "clip_value": 0.3},  # the controller's output and cell clipped
    ],
)
@pytest.mark.parametrize("lengths", [None, torch.tensor([7, 2, 4, 0])])
def test_fused_sequence_is_stepping_forward_in_values_and_gradients(float64, settings, lengths):
    torch.manual_seed(0)
    core = DNCCore(5, 12, memory_size=6, word_size=3, **settings)
    x = torch.randn(7, 4, 5)
    results = []
    for run in (DNCCore.sequence, stepped):
        core.zero_grad()
        inputs, state = x.clone().requires_grad_(), moved_state(core, 4)
        h, last = run(core, inputs, state, lengths)
        torch.manual_seed(5)
        weights = torch.randn_like(h)
        if lengths is not None:  # outputs past the end are unspecified
            weights = weights * (torch.arange(7)[:, None] < lengths).unsqueeze(-1)
        loss = (weights * h).sum() + sum((torch.randn_like(s) * s).sum() for s in leaves(last))
        loss.backward()
        grads = [
            inputs.grad,
            *(p.grad for p in core.parameters()),
            *(s.grad for s in leaves(state)),
        ]
        results.append(((weights != 0) * h, leaves(last), grads))
    (h, last, grads), (h_ref, last_ref, grads_ref) = results
    torch.testing.assert_close(h, h_ref, rtol=1e-10, atol=1e-12)
    for got, want in zip(last, last_ref, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    for got, want in zip(grads, grads_ref, strict=True):
        assert want.abs().sum() > 0
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_fused_sequence_in_float32_without_gradients_or_host_reads(monkeypatch):
    torch.manual_seed(0)
    core = DNCCore(3, 8, memory_size=6, word_size=2, read_heads=2, clip_value=20.0)
    x = torch.randn(12, 4, 3)
    state = core.initial_state(4)
    with _HostReads() as mode:
        for name in ("tolist", "numpy"):
            monkeypatch.setattr(torch.Tensor, name, lambda *a, _n=name, **k: mode.reads.append(_n))
        h, last = core.sequence(x, state)
        h.sum().backward()
    assert mode.reads == []
    close(h, stepped(core, x, state)[0])
    with torch.no_grad():
        h_free, last_free = core.sequence(x, state)
    torch.testing.assert_close(h_free, h)
    for a, b in zip(leaves(last_free), leaves(last), strict=True):
        torch.testing.assert_close(a, b)
