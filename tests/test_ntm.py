"""The Neural Turing Machine core (``policy.core="ntm"``): built by name, one step checked
by hand against the paper's equations, sequences, resets, finite values and gradients, and
training inside the learners."""

from __future__ import annotations

import math

import pytest
import torch

import cogrl.agents
from cogrl.nn import Core, NTMCore, PolicyConfig, make_core
from cogrl.nn.ntm import NTMState
from cogrl.nn.state import index_state, leaves, pack_state, unpack_state


def small(**kwargs) -> NTMCore:
    torch.manual_seed(0)
    settings = dict(memory_size=8, memory_width=4, read_heads=2, write_heads=2)
    return make_core("ntm", 5, 12, **{**settings, **kwargs})


def run(core: NTMCore, x: torch.Tensor, state) -> tuple[torch.Tensor, NTMState]:
    hs = []
    for t in range(x.shape[0]):
        h, state = core(x[t], state)
        hs.append(h)
    return torch.stack(hs), state


# Registration and settings


def test_ntm_is_built_by_name_with_its_own_settings():
    core = make_core("ntm", 10, 32, memory_size=16, memory_width=6, read_heads=3, shift_range=2)
    assert isinstance(core, NTMCore) and core.hidden_size == 32
    h, state = core(torch.randn(4, 10), core.initial_state(4))
    assert h.shape == (4, 32)
    assert state.memory.shape == (4, 16, 6)
    assert state.read_weights.shape == (4, 3, 16) and state.write_weights.shape == (4, 1, 16)
    assert state.reads.shape == (4, 3 * 6)
    assert tuple(s.shape for s in state.controller) == ((4, 32), (4, 32))
    with pytest.raises(ValueError, match="memory_slots"):
        make_core("ntm", 10, 32, memory_slots=16)


def test_policy_settings_reach_the_ntm():
    config = PolicyConfig(core="ntm", core_size=16, core_kwargs={"memory_size": 8})
    assert config.core_kwargs == {"memory_size": 8}
    flat = PolicyConfig().replace({"core": "ntm", "memory_width": 3, "clip": 5.0})
    assert flat.core_kwargs == {"memory_width": 3, "clip": 5.0}
    with pytest.raises(ValueError, match="memory_slots"):
        PolicyConfig(core="ntm", core_kwargs={"memory_slots": 8})


@pytest.mark.parametrize(
    "setting, value, expected",
    [
        ("memory_size", 0, "int >= 1"),
        ("memory_width", 2.5, "int >= 1"),
        ("read_heads", 0, "int >= 1"),
        ("write_heads", True, "int >= 1"),
        ("shift_range", -1, "int >= 0"),
        ("shift_range", 4, "2 \\* shift_range \\+ 1 <= memory_size"),  # 9 shifts, 8 locations
        ("controller", "gru", "one of"),
        ("controller_size", 0, "int >= 1"),
        ("memory_init", math.nan, "finite"),
        ("clip", 0.0, "finite number in \\(0"),
        ("clip", -1.0, "finite number in \\(0"),
    ],
)
def test_bad_settings_are_value_errors_naming_them(setting, value, expected):
    with pytest.raises(ValueError, match=f"{setting}.*{expected}|{expected}.*{setting}") as e:
        make_core("ntm", 5, 12, **{"memory_size": 8, setting: value})
    assert repr(value) in str(e.value) or str(value) in str(e.value)


# Weightings


def test_memory_weights_are_the_heads_distributions_over_locations():
    core = small()
    state = core.initial_state(3)
    for _ in range(3):
        _, state = core(torch.randn(3, 5), state)
        weights = core.memory_weights(state)
        assert sorted(weights) == ["read", "write"]
        assert weights["read"].shape == (3, 2, 8) and weights["write"].shape == (3, 2, 8)
        for w in weights.values():
            assert (w >= 0).all()
            torch.testing.assert_close(w.sum(-1), torch.ones(3, 2))
    # The learned initial weightings are distributions too.
    first = core.memory_weights(core.initial_state(2))
    torch.testing.assert_close(first["read"].sum(-1), torch.ones(2, 2))


# One step by hand


def inverse_softplus(y: float) -> float:
    return math.log(math.expm1(y))


def test_one_step_by_hand_follows_the_papers_equations():
    """Memory (N = 4, W = 2) rows (1, 0), (0, 1), (-1, 0), (0, -1); the controller's
    head-parameter layer zeroed, its biases set so every head parameter is known; values
    worked by hand from eqs. 2-9 (read before write)."""
    torch.manual_seed(0)
    core = NTMCore(3, 2, memory_size=4, memory_width=2, shift_range=1)
    # The layer's layout: per head (read heads, then write heads) k (W), beta, g, s (2k+1),
    # gamma; then per write head erase (W), add (W).
    gamma_2 = inverse_softplus(1.0)  # gamma = 1 + softplus(.) = 2
    read_head = [0.0, 1.0, 0.0, math.log(3), math.log(2), 0.0, 0.0, gamma_2]
    write_head = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, math.log(2), gamma_2]
    erase_add = [0.0, 0.0, math.atanh(0.5), math.atanh(-0.5)]
    with torch.no_grad():
        core.head_parameters.weight.zero_()
        core.head_parameters.bias.copy_(torch.tensor(read_head + write_head + erase_add))
        # h_0 = r_0 (the first read vector's first entry), h_1 = 100 clipped to 20.
        core.output.weight.zero_()
        core.output.weight[0, 2] = 1.0  # input cat(controller output (2), r (2))
        core.output.bias.copy_(torch.tensor([0.0, 100.0]))
    M = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]])
    state = core.initial_state(1)._replace(
        memory=M,
        read_weights=torch.tensor([[[1.0, 0.0, 0.0, 0.0]]]),
        write_weights=torch.tensor([[[0.0, 0.0, 0.0, 1.0]]]),
    )
    h, new = core(torch.randn(1, 3), state)

    # Read head. k = tanh(0, 1): cosines (0, 1, 0, -1); beta = softplus(0) = ln 2, so
    # w_c = (1, 2, 1, 1/2) / 4.5 = (2, 4, 2, 1) / 9. g = sigmoid(ln 3) = 3/4 with
    # w_prev = (1, 0, 0, 0): w_g = (15, 12, 6, 3) / 36. s = softmax(ln 2, 0, 0) over
    # shifts (-1, 0, +1) = (1/2, 1/4, 1/4): w~(i) = w_g(i+1)/2 + w_g(i)/4 + w_g(i-1)/4
    # = (42, 39, 24, 39) / 144. gamma = 2: w = (42^2, 39^2, 24^2, 39^2) / 5382.
    w_read = torch.tensor([1764.0, 1521.0, 576.0, 1521.0]) / 5382
    torch.testing.assert_close(new.read_weights[0, 0], w_read)
    # r = sum_i w(i) M_{t-1}(i), from the memory before this step's write.
    r = torch.tensor([(1764.0 - 576.0) / 5382, 0.0])
    torch.testing.assert_close(new.reads[0], r)

    # Write head. k along (1, 0): cosines (1, 0, -1, 0); w_c = (2, 1, 1/2, 1) / 4.5
    # = (4, 2, 1, 2) / 9. g = 1/2 with w_prev = (0, 0, 0, 1): w_g = (4, 2, 1, 11) / 18.
    # s = softmax(0, 0, ln 2) = (1/4, 1/4, 1/2): w~(i) = w_g(i+1)/4 + w_g(i)/4 + w_g(i-1)/2
    # = (28, 11, 16, 17) / 72. gamma = 2: w = (28^2, 11^2, 16^2, 17^2) / 1450.
    w_write = torch.tensor([784.0, 121.0, 256.0, 289.0]) / 1450
    torch.testing.assert_close(new.write_weights[0, 0], w_write)
    # e = sigmoid(0) = 1/2, a = (1/2, -1/2): M_t(i) = M(i) (1 - w(i)/2) + w(i) a.
    w = w_write[:, None]
    expected = M[0] * (1 - w / 2) + w * torch.tensor([0.5, -0.5])
    torch.testing.assert_close(new.memory[0], expected)
    # Row by row: (1 - w0/2 + w0/2, -w0/2) = (1, -0.2703...), and so on.
    torch.testing.assert_close(new.memory[0, 0], torch.tensor([1.0, -392.0 / 1450]))

    # The output reads this step's read vector; the other unit is clipped at 20.
    torch.testing.assert_close(h[0], torch.tensor([r[0].item(), 20.0]))


# Sequences and resets


def test_sequence_with_lengths_equals_stepping_each_sequence():
    core = small()
    x = torch.randn(6, 3, 5)
    start = core.initial_state(3)
    lengths = torch.tensor([6, 2, 4])
    h, last = core.sequence(x, start, lengths)
    for s in range(3):
        n = int(lengths[s])
        hs, state = run(core, x[:n, s : s + 1], index_state(start, slice(s, s + 1)))
        torch.testing.assert_close(h[:n, s : s + 1], hs)
        for got, want in zip(
            leaves(index_state(last, slice(s, s + 1))), leaves(state), strict=True
        ):
            torch.testing.assert_close(got, want)


def test_reset_restarts_rows_from_the_learned_initial_state():
    core = small()
    _, state = run(core, torch.randn(4, 2, 5), core.initial_state(2))
    restarted = core.reset(state, torch.tensor([True, False]))
    first = core.initial_state(2)
    for got, fresh, old in zip(leaves(restarted), leaves(first), leaves(state), strict=True):
        torch.testing.assert_close(got[0], fresh[0])
        torch.testing.assert_close(got[1], old[1])
    assert not torch.allclose(state.memory[0], first.memory[0])  # the step did write
    # The learned initial reads and weightings get gradients through the restarted rows.
    h, _ = core(torch.randn(2, 5), restarted)
    h[0].sum().backward()
    assert core.initial_reads.grad.abs().sum() > 0
    assert core.initial_weight_logits.grad.abs().sum() > 0


def test_initial_memory_is_the_constant_and_state_packs_for_replay():
    core = small(memory_init=1e-6)
    state = core.initial_state(3)
    torch.testing.assert_close(state.memory, torch.full((3, 8, 4), 1e-6))
    torch.testing.assert_close(
        state.reads, torch.tanh(core.initial_reads).reshape(1, 8).expand(3, 8)
    )
    _, state = core(torch.randn(3, 5), state)
    back = unpack_state(pack_state(state), core.initial_state(1))
    assert isinstance(back, NTMState)
    for got, want in zip(leaves(back), leaves(state), strict=True):
        torch.testing.assert_close(got, want)


# Finite values and gradients


@pytest.mark.parametrize("inputs", ["random", "zero keys"])
def test_values_and_gradients_stay_finite_over_a_long_sequence(inputs):
    torch.manual_seed(1)
    core = make_core("ntm", 6, 16, memory_size=32, memory_width=8, read_heads=2)
    if inputs == "random":
        x = 3 * torch.randn(50, 4, 6)
    else:
        # All-zero inputs and a zeroed head layer: zero keys on a near-zero memory, and
        # erase 1/2, add 0: the memory shrinks towards 0.
        x = torch.zeros(50, 4, 6)
        with torch.no_grad():
            core.head_parameters.weight.zero_()
            core.head_parameters.bias.zero_()
    h, state = core.sequence(x, core.initial_state(4))
    assert torch.isfinite(h).all()
    assert all(torch.isfinite(s).all() for s in leaves(state))
    (h.square().mean() + state.memory.sum() + state.reads.sum()).backward()
    for name, p in core.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


# The feedforward controller


def test_feedforward_controller_remembers_through_its_memory_alone():
    core = small(controller="feedforward")
    state = core.initial_state(2)
    assert state.controller.shape == (2, 0)
    x = torch.randn(5, 2, 5)
    h, last = core.sequence(x, state)
    assert h.shape == (5, 2, 12) and last.memory.shape == (2, 8, 4)
    # A different first input changes a later output: only the memory and reads carry it.
    changed = x.clone()
    changed[0] += 1.0
    h2, _ = core.sequence(changed, state)
    assert not torch.allclose(h[3], h2[3])
    # Each step's output is a function of that step's input and the previous state.
    torch.testing.assert_close(core(x[0], state)[0], h[0])


# The fused sequence


def stepped(core: NTMCore, x: torch.Tensor, state, lengths=None):
    """The reference: Core.sequence, stepping forward() under autograd."""
    return Core.sequence(core, x, state, lengths)


def moved_state(core: NTMCore, rows: int) -> NTMState:
    """A state away from the initial one that still depends on the learned initial reads
    and weightings (as the replayed segments' starts do), rows 0, 2, ... restarted."""
    torch.manual_seed(3)
    state = core.reset(core.initial_state(rows), torch.arange(rows) % 2 == 0)
    lstm = isinstance(state.controller, tuple)
    return state._replace(
        controller=tuple(c + torch.randn_like(c) for c in state.controller)
        if lstm
        else state.controller,
        memory=state.memory + 0.3 * torch.randn_like(state.memory),
        reads=state.reads + 0.3 * torch.randn_like(state.reads),
        read_weights=torch.softmax(
            state.read_weights.log() + torch.randn_like(state.read_weights), -1
        ),
        write_weights=torch.softmax(
            state.write_weights.log() + torch.randn_like(state.write_weights), -1
        ),
    )


def values_and_gradients(core, run, x, lengths=None):
    """Outputs (past each sequence's end masked out), the final state, and the gradients
    of a random function of both with respect to x and every parameter."""
    x = x.clone().requires_grad_()
    core.zero_grad()
    h, last = run(core, x, moved_state(core, x.shape[1]), lengths)
    torch.manual_seed(5)
    weights = torch.randn_like(h)
    if lengths is not None:  # outputs past the end are unspecified
        weights = weights * (torch.arange(x.shape[0])[:, None] < lengths).unsqueeze(-1)
    loss = (weights * h).sum() + sum((torch.randn_like(s) * s).sum() for s in leaves(last))
    loss.backward()
    grads = {"x": x.grad, **{n: p.grad for n, p in core.named_parameters()}}
    return (h * (weights != 0)).detach(), [s.detach() for s in leaves(last)], grads


@pytest.fixture
def float64():
    """Double precision, for comparisons tighter than float32's rounding."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"read_heads": 2, "write_heads": 3, "shift_range": 2},
        {"read_heads": 1, "write_heads": 1, "shift_range": 0},
        {"controller": "feedforward"},
        {"clip": 0.05},  # most head parameters and outputs clipped
        {"clip": None},
    ],
)
@pytest.mark.parametrize("lengths", [None, torch.tensor([6, 2, 4, 0])])
def test_fused_sequence_is_stepping_forward_in_values_and_gradients(float64, settings, lengths):
    core = small(**settings)
    x = 3 * torch.randn(6, 4, 5)
    h, last, grads = values_and_gradients(core, NTMCore.sequence, x, lengths)
    h_ref, last_ref, grads_ref = values_and_gradients(core, stepped, x, lengths)
    torch.testing.assert_close(h, h_ref, rtol=1e-10, atol=1e-12)
    for got, want in zip(last, last_ref, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    for name, want in grads_ref.items():
        assert want is not None and want.abs().sum() > 0, name
        torch.testing.assert_close(grads[name], want, rtol=1e-9, atol=1e-12, msg=name)


def test_fused_sequence_in_float32_and_without_gradients():
    core = make_core("ntm", 6, 16, memory_size=32, memory_width=8)
    x = torch.randn(20, 5, 6)
    state = core.initial_state(5)
    h, last = core.sequence(x, state)
    h_ref, last_ref = stepped(core, x, state)
    torch.testing.assert_close(h, h_ref, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        h_free, last_free = core.sequence(x, state)
    torch.testing.assert_close(h_free, h)
    for a, b, c in zip(leaves(last_free), leaves(last), leaves(last_ref), strict=True):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-6)


# Inside the learners


def parameters(agent) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in agent.policy.parameters()])


NTM_POLICY = {"core": "ntm", "core_size": 16, "memory_size": 8, "memory_width": 4}


@pytest.mark.parametrize(
    "agent, settings",
    [
        ("ppo", dict(num_envs=4, n_steps=16, batch_size=32, n_epochs=2)),
        ("a2c", dict(num_envs=4, n_steps=8)),
        (
            "dqn",
            dict(
                num_envs=4, learning_starts=64, batch_size=8, sequence_length=4, burn_in=2,
                train_freq=8, buffer_size=1000,
            ),
        ),
    ],
)  # fmt: skip
def test_learners_train_an_ntm_policy(agent, settings):
    model = cogrl.agents.make(
        agent, "CartPole-v1", device="cpu", seed=0, policy=dict(NTM_POLICY), **settings
    )
    torso = model.policy.actor_torso if agent != "dqn" else model.policy.torso
    assert isinstance(torso.core, NTMCore)
    before = parameters(model)
    model.learn(256, progress_bar=False)
    after = parameters(model)
    assert torch.isfinite(after).all()
    assert not torch.equal(before, after)
    # The NTM's own layers were among those trained.
    trained = {n for n, p in torso.core.named_parameters() if p.grad is not None}
    assert "head_parameters.weight" in trained
