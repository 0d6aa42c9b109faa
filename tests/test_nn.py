"""What cogrl.nn promises to every learner and to users who add their own parts:

- recurrent state of any nesting (cogrl.nn.state): map, index, detach, reset, pack/unpack;
- the core registry: cores by name, with their own hyperparameters, also ``module:name``;
- cores with a learned initial state;
- PolicyConfig: its validation, and a core's own settings in ``core_kwargs``;
- one API for every action head (sample, log_prob, entropy, mode, to_env);
- agents take their policy settings as one ``policy`` hyperparameter.

(Encoders, heads and policies chosen by space are tested in test_policies.py.)
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Categorical

import cogrl.agents
from cogrl.nn import (
    CORES,
    BernoulliHead,
    CategoricalHead,
    Core,
    GaussianHead,
    IdentityCore,
    MultiCategoricalHead,
    PolicyConfig,
    TanhGaussianHead,
    ValueHead,
    available_cores,
    core_class,
    detach_state,
    index_state,
    make_core,
    make_torso,
    map_state,
    pack_state,
    register_core,
    reset_state,
    unpack_state,
)
from cogrl.nn.distributions import categorical_entropy, categorical_log_prob, categorical_sample
from cogrl.nn.state import leaves, state_from_leaves, state_size


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------
# Recurrent state of any nesting


class MemoryState(NamedTuple):
    """A memory core's state: the controller's LSTM state and a dict of memory parts."""

    controller: tuple[torch.Tensor, torch.Tensor]
    memory: dict[str, object]


def memory_state(batch: int, fill: float | None = None) -> MemoryState:
    """A nested state of ``batch`` rows: random floats and counters (or all ``fill``)."""

    def floats(*shape: int) -> torch.Tensor:
        return torch.full((batch, *shape), fill) if fill is not None else torch.randn(batch, *shape)

    def ints(dtype: torch.dtype, *shape: int) -> torch.Tensor:
        if fill is not None:
            return torch.full((batch, *shape), int(fill), dtype=dtype)
        return torch.randint(-50, 50, (batch, *shape), dtype=dtype)

    return MemoryState(
        controller=(floats(3), floats(3)),
        memory={
            "matrix": floats(4, 2),
            "reads": [floats(2), floats(2)],
            "usage": ints(torch.int64, 4),
            "writes": ints(torch.int32, 1),
        },
    )


def assert_same_structure(a, b) -> None:
    """``a`` and ``b`` have the same containers (types, keys, lengths) and tensor shapes and
    dtypes."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor)
        assert a.shape == b.shape and a.dtype == b.dtype
    elif isinstance(a, dict):
        assert type(b) is dict and list(a) == list(b)
        for key in a:
            assert_same_structure(a[key], b[key])
    else:
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_structure(x, y)


def assert_states_equal(a, b) -> None:
    assert_same_structure(a, b)
    for x, y in zip(leaves(a), leaves(b), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_map_state_keeps_namedtuples_tuples_lists_and_dicts():
    state = memory_state(5)
    doubled = map_state(lambda s: s * 2, state)
    assert_same_structure(doubled, state)
    assert isinstance(doubled, MemoryState)  # a NamedTuple stays its type
    assert isinstance(doubled.memory["reads"], list)
    for x, y in zip(leaves(doubled), leaves(state), strict=True):
        torch.testing.assert_close(x, y * 2)
    # With several states, fn gets the matching tensors of each.
    summed = map_state(lambda a, b: a + b, state, doubled)
    for x, y in zip(leaves(summed), leaves(state), strict=True):
        torch.testing.assert_close(x, y * 3)


def test_leaves_are_in_a_fixed_depth_first_order():
    state = memory_state(2)
    expected = [
        state.controller[0],
        state.controller[1],
        state.memory["matrix"],
        state.memory["reads"][0],
        state.memory["reads"][1],
        state.memory["usage"],
        state.memory["writes"],
    ]
    assert len(leaves(state)) == len(expected)
    assert all(x is y for x, y in zip(leaves(state), expected, strict=True))


def test_map_state_rejects_what_is_not_a_state_naming_its_type():
    with pytest.raises(TypeError, match="ndarray"):
        map_state(lambda s: s, (torch.zeros(2, 1), np.zeros((2, 1))))


@pytest.mark.parametrize(
    "index",
    [torch.tensor([4, 0, 2]), torch.tensor([True, False, True, False, True])],
    ids=["indices", "mask"],
)
def test_index_state_takes_the_same_rows_of_every_tensor(index):
    state = memory_state(5)
    rows = index_state(state, index)
    assert isinstance(rows, MemoryState)
    for part, whole in zip(leaves(rows), leaves(state), strict=True):
        assert part.shape[0] == 3
        torch.testing.assert_close(part, whole[index], rtol=0, atol=0)


def test_detach_state_cuts_the_graph_and_keeps_the_values():
    weight = torch.tensor(2.0, requires_grad=True)
    state = map_state(lambda s: s * weight if s.is_floating_point() else s, memory_state(3))
    assert state.controller[0].requires_grad
    detached = detach_state(state)
    assert isinstance(detached, MemoryState)
    assert not any(s.requires_grad for s in leaves(detached))
    for x, y in zip(leaves(detached), leaves(state), strict=True):
        torch.testing.assert_close(x, y.detach(), rtol=0, atol=0)


def test_reset_state_takes_the_initial_state_where_an_episode_starts():
    state = memory_state(4)
    initial = memory_state(4, fill=7.0)  # a non-zero initial state
    start = torch.tensor([True, False, False, True])
    out = reset_state(state, start, initial)
    assert_same_structure(out, state)  # dtypes kept, int counters included
    for new, old, init in zip(leaves(out), leaves(state), leaves(initial), strict=True):
        torch.testing.assert_close(new[start], init[start], rtol=0, atol=0)
        torch.testing.assert_close(new[~start], old[~start], rtol=0, atol=0)
    # episode_start may also be 0/1 numbers, as environments' done flags often are.
    assert_states_equal(reset_state(state, start.float(), initial), out)
    assert_states_equal(reset_state(state, start.long(), initial), out)


def test_reset_state_passes_gradients_to_the_initial_state_of_reset_rows_only():
    state = (torch.randn(3, 2), torch.randn(3, 2))
    h0 = torch.zeros(2, requires_grad=True)
    initial = (h0.expand(3, 2), h0.expand(3, 2))
    start = torch.tensor([False, True, False])
    h, c = reset_state(state, start, initial)
    (h.sum() + 2 * c.sum()).backward()
    torch.testing.assert_close(h0.grad, torch.full((2,), 3.0))  # one reset row, h and 2 c


@pytest.mark.parametrize("batch", [5, 1])
def test_pack_and_unpack_round_trip_with_their_dtypes(batch):
    state = memory_state(batch)
    packed = pack_state(state)
    assert packed.dtype == torch.float32
    assert packed.shape == (batch, state_size(state)) == (batch, 3 + 3 + 8 + 2 + 2 + 4 + 1)
    # Unpacked after a state with another batch size (a replay's stored states are
    # unpacked "like" the core's initial state of any batch).
    like = memory_state(batch + 2, fill=0.0)
    unpacked = unpack_state(packed, like)
    assert_states_equal(unpacked, state)


def test_pack_state_keeps_each_row_together():
    state = memory_state(6)
    packed = pack_state(state)
    rows = torch.tensor([5, 1])
    torch.testing.assert_close(packed[rows], pack_state(index_state(state, rows)))


def test_pack_and_unpack_per_row_scalars():
    # A leaf may be one number per row, (B,): an episode's step counter, say.
    state = {"h": torch.randn(4, 3), "steps": torch.arange(4)}
    packed = pack_state(state)
    assert packed.shape == (4, 4)
    assert_states_equal(unpack_state(packed, state), state)


def test_a_state_saved_as_its_leaves_is_rebuilt_with_its_structure(tmp_path):
    # Checkpoints hold a state as its list of tensors (weights_only loads lists, not
    # NamedTuples); state_from_leaves puts them back into the core's structure.
    state = memory_state(3)
    torch.save(leaves(state), tmp_path / "state.pt")
    saved = torch.load(tmp_path / "state.pt", weights_only=True)
    assert_states_equal(state_from_leaves(memory_state(3, fill=0.0), saved), state)
    with pytest.raises(ValueError, match="6 tensors"):
        state_from_leaves(state, saved[:-1])


def test_unpack_state_rejects_a_packed_state_of_another_width():
    like = memory_state(2)
    with pytest.raises(ValueError, match=f"width {state_size(like) - 1}"):
        unpack_state(torch.zeros(2, state_size(like) - 1), like)


def test_pack_state_needs_a_tensor():
    with pytest.raises(ValueError, match="at least one tensor"):
        pack_state({"empty": ()})


# ---------------------------------------------------------------------------------------
# Cores: the built-in ones, and the registry


@pytest.mark.parametrize("name", ["none", "rnn", "gru", "lstm"])
def test_cores_step_and_reset_to_their_initial_state(name):
    core = make_core(name, input_size=6, hidden_size=10)
    assert core.hidden_size == (6 if name == "none" else 10)
    state = core.initial_state(4, "cpu")
    x = torch.randn(4, 6)
    h, state = core(x, state)
    assert h.shape == (4, core.hidden_size)
    _, state = core(x, state)
    start = torch.tensor([True, False, True, False])
    reset = core.reset(state, start)
    h_reset, _ = core(x, reset)
    h_fresh, _ = core(x, core.initial_state(4, "cpu"))
    torch.testing.assert_close(h_reset[start], h_fresh[start])
    if name != "none":
        assert not torch.allclose(h_reset[~start], h_fresh[~start])


def test_identity_core_is_not_recurrent_and_passes_its_input_through():
    core = make_core("none", input_size=5)
    assert isinstance(core, IdentityCore)
    x = torch.randn(3, 5)
    h, state = core(x, core.initial_state(3))
    assert h is x and state.shape == (3, 0)


class ScaledRNN(Core):
    """A test core with a hyperparameter of its own, ``scale``."""

    def __init__(self, input_size: int, hidden_size: int = 8, scale: float = 1.0) -> None:
        super().__init__()
        self.fc = nn.Linear(input_size + hidden_size, hidden_size)
        self.hidden_size = hidden_size
        self.scale = scale

    def initial_state(self, batch_size, device="cpu"):
        return torch.zeros(batch_size, self.hidden_size, device=device)

    def forward(self, x, state):
        h = self.scale * torch.tanh(self.fc(torch.cat([x, state], -1)))
        return h, h


@pytest.fixture
def scaled_core():
    """``ScaledRNN`` registered as "test_scaled" for one test."""
    assert "test_scaled" not in CORES
    register_core("test_scaled")(ScaledRNN)
    yield "test_scaled"
    del CORES["test_scaled"]


def test_a_registered_core_is_made_by_name_with_its_own_hyperparameters(scaled_core):
    assert scaled_core in available_cores()
    assert core_class(scaled_core) is ScaledRNN
    core = make_core(scaled_core, input_size=4, hidden_size=6, scale=3.0)
    assert isinstance(core, ScaledRNN) and core.hidden_size == 6 and core.scale == 3.0
    h, _ = core(torch.randn(2, 4), core.initial_state(2))
    assert h.shape == (2, 6) and bool((h.abs() <= 3.0).all())
    assert float(h.detach().abs().max()) > 1.0  # the scale is applied, not the default 1
    # And through a policy's torso, from a PolicyConfig.
    config = PolicyConfig(
        core=scaled_core, core_size=6, hidden_sizes=[5], core_kwargs={"scale": 2.5}
    )
    torso = make_torso(spaces.Box(-1, 1, (4,)), config)
    assert isinstance(torso.core, ScaledRNN) and torso.core.scale == 2.5 and torso.recurrent


def test_make_core_rejects_a_keyword_the_core_does_not_take(scaled_core):
    with pytest.raises(ValueError, match=r"\['depth'\].*test_scaled.*\['scale'\]"):
        make_core(scaled_core, 4, 6, depth=2)
    with pytest.raises(ValueError, match=r"\['scale'\].*'gru'"):
        make_core("gru", 4, 6, scale=2.0)


def test_unknown_core_names_are_value_errors_listing_the_known():
    with pytest.raises(ValueError, match=r"unknown core 'transformer'.*'gru'"):
        make_core("transformer", 4, 4)
    with pytest.raises(ValueError, match="unknown core 'transformer'"):
        core_class("transformer")
    with pytest.raises(ValueError, match="policy.core: unknown core 'transformer'"):
        PolicyConfig(core="transformer")


def test_register_core_checks_the_name_and_the_class():
    with pytest.raises(ValueError, match="name"):
        register_core("a:b")
    with pytest.raises(ValueError, match="name"):
        register_core("")
    with pytest.raises(TypeError, match="Core subclass"):
        register_core("test_not_a_core")(nn.GRUCell)
    assert "test_not_a_core" not in CORES


def test_module_colon_name_imports_the_module_that_registers_the_core(monkeypatch):
    # custom_cores.py, next to this file, registers "counting_gru" when imported.
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.delitem(sys.modules, "custom_cores", raising=False)
    monkeypatch.delitem(CORES, "counting_gru", raising=False)

    cls = core_class("custom_cores:counting_gru")

    assert "custom_cores" in sys.modules
    assert cls is sys.modules["custom_cores"].CountingGRU
    assert CORES["counting_gru"] is cls
    core = make_core("custom_cores:counting_gru", 3, 5, max_count=4)
    assert core.max_count == 4 and core.hidden_size == 5
    config = PolicyConfig().replace({"core": "custom_cores:counting_gru", "max_count": 4})
    assert config.core_kwargs == {"max_count": 4}


def test_module_colon_name_errors_name_the_module_or_the_core(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    with pytest.raises(ValueError, match="cannot import module 'no_such_module_for_cores'"):
        core_class("no_such_module_for_cores:gru_like")
    with pytest.raises(ValueError, match="unknown core 'custom_cores:no_such_core'"):
        core_class("custom_cores:no_such_core")


# ---------------------------------------------------------------------------------------
# A learned initial state


class LearnedStartGRU(Core):
    """A GRU whose initial state ``h0`` is a parameter, learned with the rest."""

    def __init__(self, input_size: int, hidden_size: int = 4) -> None:
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)
        self.h0 = nn.Parameter(torch.randn(hidden_size))
        self.hidden_size = hidden_size

    def initial_state(self, batch_size, device="cpu"):
        return self.h0.to(device).expand(batch_size, -1)

    def forward(self, x, state):
        h = self.cell(x, state)
        return h, h


def test_core_reset_restarts_from_a_learned_initial_state_and_trains_it():
    core = LearnedStartGRU(3, 4)
    state = torch.randn(4, 4)
    start = torch.tensor([False, True, True, False])
    reset = core.reset(state, start)
    torch.testing.assert_close(reset[start], core.h0.detach().expand(2, 4))
    torch.testing.assert_close(reset[~start], state[~start])

    h, _ = core(torch.randn(4, 3), reset)
    h[~start].sum().backward()
    assert core.h0.grad is None or bool((core.h0.grad == 0).all())  # rows not reset
    h, _ = core(torch.randn(4, 3), core.reset(state, start))
    h[start].sum().backward()
    assert core.h0.grad is not None and bool(core.h0.grad.abs().sum() > 0)


def test_a_learned_initial_state_is_trained_through_a_torso_sequence():
    register_core("test_learned_start")(LearnedStartGRU)
    try:
        config = PolicyConfig(core="test_learned_start", core_size=4, hidden_sizes=[3])
        torso = make_torso(spaces.Box(-1, 1, (2,)), config)
    finally:
        del CORES["test_learned_start"]
    T, B = 5, 3
    starts = torch.zeros(T, B, dtype=torch.bool)
    starts[2, 1] = True  # an episode starts mid-sequence in env 1
    h, _ = torso.sequence(torch.randn(T, B, 2), torch.randn(B, 4), starts)
    h[2:, 1].sum().backward()
    assert torso.core.h0.grad is not None and bool(torso.core.h0.grad.abs().sum() > 0)


# ---------------------------------------------------------------------------------------
# PolicyConfig


def test_an_unknown_policy_setting_lists_the_known_ones():
    with pytest.raises(ValueError, match="core_sise") as error:
        PolicyConfig().replace({"core_sise": 32})
    for known in ("core_size", "hidden_sizes", "encoder", "share_torso"):
        assert known in str(error.value)


def test_a_cores_own_setting_lands_in_core_kwargs(scaled_core):
    config = PolicyConfig().replace({"core": scaled_core, "scale": 2.0, "core_size": 6})
    assert config.core == scaled_core and config.core_size == 6
    assert config.core_kwargs == {"scale": 2.0}
    assert not hasattr(config, "scale")
    # Later replacements update it, and core_kwargs may also be given whole.
    assert config.replace({"scale": 0.5}).core_kwargs == {"scale": 0.5}
    assert config.replace({"core_kwargs": {"scale": 4.0}}).core_kwargs == {"scale": 4.0}
    torso = make_torso(spaces.Box(-1, 1, (3,)), config.replace({"scale": 0.5}))
    assert torso.core.scale == 0.5


def test_changing_the_core_drops_the_old_cores_settings(scaled_core):
    config = PolicyConfig().replace({"core": scaled_core, "scale": 2.0})
    gru = config.replace({"core": "gru"})
    assert gru.core == "gru" and gru.core_kwargs == {}
    assert config.core_kwargs == {"scale": 2.0}  # replace makes a copy
    # The old core's setting given again with the new core is an error naming both.
    with pytest.raises(ValueError, match=r"\['scale'\].*'gru'"):
        config.replace({"core": "gru", "scale": 2.0})
    # Keeping the core keeps them.
    assert config.replace({"core": scaled_core}).core_kwargs == {"scale": 2.0}


def test_core_kwargs_the_core_does_not_take_are_rejected(scaled_core):
    with pytest.raises(ValueError, match=r"\['depth'\].*test_scaled.*\['scale'\]"):
        PolicyConfig(core=scaled_core, core_kwargs={"depth": 2})
    with pytest.raises(ValueError, match="core_kwargs"):
        PolicyConfig(core_kwargs=[("scale", 2.0)])


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"encoder": "transformer"}, "policy.encoder"),
        ({"hidden_sizes": 64}, "policy.hidden_sizes"),
        ({"hidden_sizes": [64, 0]}, "policy.hidden_sizes"),
        ({"activation": "gelu"}, "policy.activation"),
        ({"core_size": 0}, "policy.core_size"),
        ({"glimpse_hidden": 1.5}, "policy.glimpse_hidden"),
        ({"share_torso": "yes"}, "share_torso"),
        ({"ortho_init": 1}, "ortho_init"),
        ({"log_std_init": math.nan}, "policy.log_std_init"),
        ({"location_std": 0.0}, "policy.location_std"),
    ],
)
def test_bad_policy_values_are_value_errors_naming_the_setting(settings, named):
    with pytest.raises(ValueError, match=named):
        PolicyConfig(**settings)
    with pytest.raises(ValueError, match=named):
        PolicyConfig().replace(settings)


def test_policy_config_round_trips_through_json():
    config = PolicyConfig(core="lstm", hidden_sizes=(32, 16), share_torso=True)
    assert config.hidden_sizes == [32, 16]  # a list, as JSON keeps it
    assert config.recurrent and not PolicyConfig().recurrent
    assert PolicyConfig(**json.loads(json.dumps(config.to_dict()))) == config


# ---------------------------------------------------------------------------------------
# Action heads: one API


HEADS = {
    "categorical": lambda: CategoricalHead(8, 5, start=2),
    "multicategorical": lambda: MultiCategoricalHead(8, [2, 3, 4, 5], shape=(2, 2)),
    "bernoulli": lambda: BernoulliHead(8, 6, shape=(2, 3)),
    "gaussian": lambda: GaussianHead(8, (2, 2), low=-1.0, high=1.0),
    "tanh_gaussian": lambda: TanhGaussianHead(8, 2, std=0.3),
}
# The shape of one action, and its dtype.
ACTIONS = {
    "categorical": ((), torch.int64),
    "multicategorical": ((2, 2), torch.int64),
    "bernoulli": ((2, 3), torch.int8),
    "gaussian": ((2, 2), torch.float32),
    "tanh_gaussian": ((2,), torch.float32),
}


@pytest.mark.parametrize("batch", [(7,), (4, 3)], ids=["B", "TxB"])
@pytest.mark.parametrize("kind", list(HEADS))
def test_every_head_honours_the_action_head_api(kind, batch):
    head = HEADS[kind]()
    shape, dtype = ACTIONS[kind]
    params = head(torch.randn(*batch, 8))
    assert params.shape[:-1] == batch

    action = head.sample(params, torch.Generator().manual_seed(0))
    mode = head.mode(params)
    for a in (action, mode):
        assert a.shape == (*batch, *shape) and a.dtype == dtype
        assert head.to_env(a).shape == a.shape
    assert not action.requires_grad  # a sample is data, not a function of the parameters

    log_prob = head.log_prob(params, action)
    entropy = head.entropy(params)
    assert log_prob.shape == entropy.shape == batch
    assert bool(torch.isfinite(log_prob).all() and torch.isfinite(entropy).all())
    assert log_prob.requires_grad  # the policy gradient flows through log_prob
    log_prob.sum().backward()
    assert head.fc.weight.grad is not None and bool(head.fc.weight.grad.abs().sum() > 0)

    # A seeded generator reproduces a sample.
    again = head.sample(params, torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, action, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["categorical", "multicategorical", "bernoulli"])
def test_discrete_heads_send_the_action_they_keep(kind):
    head = HEADS[kind]()
    action = head.sample(head(torch.randn(16, 8)))
    torch.testing.assert_close(head.to_env(action), action, rtol=0, atol=0)


def test_gaussian_to_env_clips_to_the_bounds_and_keeps_what_is_inside():
    head = GaussianHead(4, (2,), low=np.array([-1.0, 0.0]), high=np.array([1.0, 2.0]))
    action = torch.tensor([[-3.0, 5.0], [0.5, 1.5], [2.0, -0.1]])
    expected = torch.tensor([[-1.0, 2.0], [0.5, 1.5], [1.0, 0.0]])
    torch.testing.assert_close(head.to_env(action), expected, rtol=0, atol=0)
    torch.testing.assert_close(head.to_env(action.double()), expected.double(), rtol=0, atol=0)
    # The log-probability is that of the unclipped sample the learner keeps.
    mean = torch.zeros(3, 2)
    assert not torch.allclose(head.log_prob(mean, action), head.log_prob(mean, expected))
    # Without bounds nothing is clipped.
    unbounded = GaussianHead(4, (2,))
    torch.testing.assert_close(unbounded.to_env(action), action, rtol=0, atol=0)


def test_gaussian_bounds_are_not_weights():
    head = GaussianHead(4, (2,), low=-1.0, high=1.0)
    assert set(head.state_dict()) == {"fc.weight", "fc.bias", "log_std"}


def reference_location_log_prob(mean: np.ndarray, std: float, location: np.ndarray) -> np.ndarray:
    """log density of l = tanh(u), u ~ N(mean, std^2 I), at ``location``, in float64."""
    u = np.arctanh(location)
    log_normal = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    return (log_normal - np.log(1.0 - location**2)).sum(-1)


@pytest.mark.parametrize("std", [0.05, 0.2, 0.7])
def test_tanh_gaussian_log_prob_is_that_of_the_sampled_location(std):
    head = TanhGaussianHead(8, 2, std=std).double()
    mean = head(torch.randn(4096, 8, dtype=torch.float64))
    u = head.sample(mean, torch.Generator().manual_seed(0))
    location = head.to_env(u)
    assert u.shape == location.shape == (4096, 2)
    assert bool((location > -1).all() and (location < 1).all())
    torch.testing.assert_close(location, torch.tanh(u))

    log_prob = head.log_prob(mean, u)
    assert log_prob.shape == (4096,)
    expected = reference_location_log_prob(mean.detach().numpy(), std, location.numpy())
    np.testing.assert_allclose(log_prob.detach().numpy(), expected, rtol=1e-6, atol=1e-6)
    # The same density from the location itself (e.g. a replayed one).
    again = head.log_prob_location(mean, location)
    np.testing.assert_allclose(again.detach().numpy(), expected, rtol=1e-6, atol=1e-6)
    # The gradient reaches the mean only through the log-probability.
    assert log_prob.requires_grad and not u.requires_grad and not location.requires_grad


def test_tanh_gaussian_samples_have_the_given_std_before_tanh():
    head = TanhGaussianHead(1, 2, std=0.3)
    mean = torch.tensor([0.4, -1.0]).expand(20_000, 2)
    u = head.sample(mean, torch.Generator().manual_seed(0))
    torch.testing.assert_close(u.mean(0), mean[0], atol=0.02, rtol=0)
    torch.testing.assert_close(u.std(0), torch.full((2,), 0.3), atol=0, rtol=0.05)


def test_tanh_gaussian_deterministic_location_is_tanh_of_the_mean():
    head = TanhGaussianHead(8, 2)
    mean = head(torch.randn(5, 8))
    torch.testing.assert_close(head.mode(mean), mean, rtol=0, atol=0)
    torch.testing.assert_close(head.to_env(head.mode(mean)), torch.tanh(mean))


def test_tanh_gaussian_stays_strictly_inside_even_for_extreme_means():
    head = TanhGaussianHead(1, 2, std=0.2)
    with torch.no_grad():
        head.fc.weight.zero_()
        head.fc.bias.copy_(torch.tensor([40.0, -40.0]))
    mean = head(torch.ones(1000, 1))
    u = head.sample(mean, torch.Generator().manual_seed(0))
    location = head.to_env(u)
    assert location.dtype == torch.float32
    assert bool((location > -1).all() and (location < 1).all())
    assert bool(torch.isfinite(head.log_prob(mean, u)).all())
    assert bool(torch.isfinite(head.log_prob_location(mean, location)).all())
    assert bool((head.to_env(head.mode(mean)).abs() < 1).all())


@pytest.mark.parametrize("std", [0.0, -0.1, math.inf, math.nan, "0.2"])
def test_tanh_gaussian_rejects_a_bad_std(std):
    with pytest.raises(ValueError, match="std"):
        TanhGaussianHead(4, std=std)


def test_categorical_functions_match_torch_distributions():
    logits = torch.randn(4, 6, 10)
    dist = Categorical(logits=logits)
    value = categorical_sample(logits, torch.Generator().manual_seed(0))
    assert value.shape == (4, 6) and bool(((value >= 0) & (value < 10)).all())
    torch.testing.assert_close(categorical_log_prob(logits, value), dist.log_prob(value))
    torch.testing.assert_close(categorical_entropy(logits), dist.entropy())


def test_categorical_head_is_rams_classifier_and_value_head_gives_one_number():
    classifier = CategoricalHead(5, 10)
    logits = classifier(torch.randn(4, 5))
    assert logits.shape == (4, 10)
    label = classifier.sample(logits, torch.Generator().manual_seed(0))
    assert label.shape == (4,) and bool(((label >= 0) & (label < 10)).all())
    torch.testing.assert_close(
        classifier.log_prob(logits, label), torch.log_softmax(logits, -1)[torch.arange(4), label]
    )
    assert ValueHead(5)(torch.randn(4, 5)).shape == (4,)


# ---------------------------------------------------------------------------------------
# Agents: one policy hyperparameter


def test_flat_policy_settings_are_an_error_pointing_at_policy():
    with pytest.raises(ValueError, match=r"\['core'\].*policy=.*policy\.core"):
        cogrl.agents.make("ppo", "CartPole-v1", core="gru")
    with pytest.raises(ValueError, match=r"\['core_size', 'hidden_sizes'\].*policy"):
        cogrl.agents.make("dqn", "CartPole-v1", core_size=8, hidden_sizes=[8])
    with pytest.raises(ValueError, match="core_sise"):
        cogrl.agents.make("a2c", "CartPole-v1", policy={"core_sise": 8})
    with pytest.raises(ValueError, match="policy must be"):
        cogrl.agents.make("reinforce", "CartPole-v1", policy="gru")


def test_policy_settings_go_over_the_learners_defaults():
    agent = cogrl.agents.make("ppo", "CartPole-v1", device="cpu", policy={"core": "gru"})
    config = agent.config.policy
    assert isinstance(config, PolicyConfig)
    assert config == PolicyConfig(core="gru")
    assert agent.policy.recurrent
    given = PolicyConfig(core="lstm", core_size=8, hidden_sizes=[8])
    agent = cogrl.agents.make("a2c", "CartPole-v1", device="cpu", policy=given)
    assert agent.config.policy == given and agent.policy.actor_torso.hidden_size == 8


LEARNER_SETTINGS = {
    "ppo": {"num_envs": 4, "n_steps": 16, "batch_size": 32},
    "a2c": {"num_envs": 4, "n_steps": 8},
    "reinforce": {"num_envs": 4},
    "dqn": {
        "num_envs": 4,
        "learning_starts": 64,
        "batch_size": 8,
        "sequence_length": 4,
        "burn_in": 2,
        "train_freq": 4,
    },
}


@pytest.mark.parametrize("name", list(LEARNER_SETTINGS))
def test_every_learner_trains_a_users_core_with_a_nested_state(name, monkeypatch, tmp_path):
    """A core registered elsewhere, named ``module:name``, with a NamedTuple-and-dict state
    holding an int counter: through rollouts (or R2D2 sequences), predict and checkpoints."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    policy = {"core": "custom_cores:counting_gru", "core_size": 8, "hidden_sizes": [8]}
    policy["max_count"] = 5
    agent = cogrl.agents.make(
        name, "CartPole-v1", device="cpu", seed=0, policy=policy, **LEARNER_SETTINGS[name]
    )
    assert agent.config.policy.core_kwargs == {"max_count": 5}
    infos: list[dict[str, float]] = []
    agent.learn(256, callback=lambda a, info: infos.append(info) and None)
    losses = [v for info in infos for k, v in info.items() if k.startswith("train/")]
    assert losses and np.isfinite(losses).all()

    obs = np.zeros((3, 4), dtype=np.float32)
    _, state = agent.predict(obs)
    _, state = agent.predict(obs, state, np.array([True, False, False]))
    counters = [s for s in leaves(state) if s.dtype == torch.int64]
    assert counters, state
    # One step since the reset in env 0, two in the others.
    assert counters[0][:, 0].tolist() == [1, 2, 2]

    agent.save(tmp_path / "model")
    loaded = cogrl.agents.load(tmp_path / "model", device="cpu")
    assert loaded.config == agent.config
    a, _ = agent.predict(obs, state, deterministic=True)
    b, _ = loaded.predict(obs, state, deterministic=True)
    np.testing.assert_array_equal(a, b)
