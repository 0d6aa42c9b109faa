"""Sequences cut at episode starts (cogrl.nn.sequences) and the cores' fused sequence path:
what a recurrent learner's update computes must equal stepping the core one step at a time,
values and gradients, for every cut, subset and core."""

from __future__ import annotations

import pytest
import torch
from gymnasium import spaces

from cogrl.nn import ActorCriticPolicy, PolicyConfig, make_core
from cogrl.nn.sequences import Segments
from cogrl.nn.state import index_state, leaves, map_state


def test_split_cuts_columns_at_episode_starts_and_lists_every_step():
    start = torch.tensor(
        [[False, True], [False, False], [True, False], [False, True], [False, False]]
    )  # (T=5, B=2)
    seg = Segments.split(start)
    # Column 0: steps 0-1 (carried), 2-4 (fresh); column 1: 0-2 (fresh), 3-4 (fresh).
    assert seg.column.tolist() == [0, 0, 1, 1]
    assert seg.begin.tolist() == [0, 2, 0, 3]
    assert seg.lengths.tolist() == [2, 3, 3, 2]
    assert seg.fresh.tolist() == [False, True, True, True]
    assert seg.rows.tolist() == list(range(10))
    x = torch.arange(10.0).view(5, 2)
    padded = seg.pad(x.flatten())
    assert padded.shape == (3, 4)
    assert padded[:, 1].tolist() == [4.0, 6.0, 8.0]  # column 0 from step 2
    assert padded[:, 3].tolist() == [7.0, 9.0, 0.0]  # column 1 from step 3, padded
    assert torch.equal(seg.unpad(padded).view(5, 2), x)
    assert seg.last().tolist() == [1, 3]
    assert seg.end().tolist() == [1, 4, 2, 4]


def test_split_also_cuts_every_max_length_steps_after_a_cut():
    start = torch.zeros(7, 1, dtype=torch.bool)
    start[3, 0] = True
    seg = Segments.split(start, max_length=2)
    assert seg.begin.tolist() == [0, 2, 3, 5]
    assert seg.lengths.tolist() == [2, 1, 2, 2]
    assert seg.fresh.tolist() == [False, False, True, False]
    with pytest.raises(ValueError, match="max_length must be a positive int, got 0"):
        Segments.split(start, max_length=0)
    with pytest.raises(ValueError, match=r"episode_start must be \(T, B\)"):
        Segments.split(torch.zeros(3, dtype=torch.bool))


def test_select_holds_the_chosen_segments_steps():
    torch.manual_seed(0)
    start = torch.rand(9, 4) < 0.3
    seg = Segments.split(start)
    chosen = torch.tensor([3, 0, seg.count - 1])
    sub = seg.select(chosen)
    assert sub.lengths.tolist() == seg.lengths[chosen].tolist()
    x = torch.randn(9 * 4, 3)
    full = seg.pad(x)
    # The subset's padded batch is the full one's chosen columns.
    torch.testing.assert_close(sub.pad(x[sub.rows]), full[: sub.max_length, chosen])
    # Every step of the chosen segments, each once.
    expected = sorted(r for r in range(36) if int(seg.segment[r]) in chosen.tolist())
    assert sorted(sub.rows.tolist()) == expected


def stepped(core, x, state, start):
    """The reference: the core one step at a time, restarting where an episode starts."""
    hs = []
    for t in range(x.shape[0]):
        h, state = core(x[t], core.reset(state, start[t]))
        hs.append(h)
    return torch.stack(hs), state


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm"])
def test_core_sequences_over_segments_equal_stepping_values_and_gradients(name):
    torch.manual_seed(1)
    core = make_core(name, 5, 7)
    T, B = 12, 6
    x = torch.randn(T, B, 5, requires_grad=True)
    start = torch.rand(T, B) < 0.2
    state = map_state(lambda s: torch.randn_like(s), core.initial_state(B))

    h_ref, last_ref = stepped(core, x, state, start)
    grads_ref = torch.autograd.grad(h_ref.square().sum(), [x, *core.parameters()])

    seg = Segments.split(start)
    start_states = core.reset(index_state(state, seg.column), seg.fresh)
    h_pad, last = core.sequence(seg.pad(x.flatten(0, 1)), start_states, seg.lengths)
    h = seg.unpad(h_pad).view(T, B, -1)
    grads = torch.autograd.grad(h.square().sum(), [x, *core.parameters()])

    torch.testing.assert_close(h, h_ref)
    for a, b in zip(leaves(index_state(last, seg.last())), leaves(last_ref), strict=True):
        torch.testing.assert_close(a, b)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_policy_over_a_minibatch_of_segments_equals_its_sequence():
    torch.manual_seed(2)
    obs_space, action_space = spaces.Box(-1, 1, (3,)), spaces.Discrete(4)
    config = PolicyConfig(core="lstm", core_size=8, hidden_sizes=[16])
    policy = ActorCriticPolicy(obs_space, action_space, config)
    T, B = 10, 5
    obs = torch.rand(T, B, 3) * 2 - 1
    start = torch.rand(T, B) < 0.25
    state = map_state(lambda s: torch.randn_like(s), policy.initial_state(B))
    params, values, _ = policy.sequence(obs, state, start)

    seg = Segments.split(start)
    sub = seg.select(torch.tensor([1, 4, 2]))
    params_sub, values_sub = policy.segments(
        obs.flatten(0, 1)[sub.rows], index_state(state, sub.column), sub
    )
    torch.testing.assert_close(params_sub, params.flatten(0, 1)[sub.rows])
    torch.testing.assert_close(values_sub, values.flatten(0, 1)[sub.rows])


def test_gru_and_lstm_cores_load_the_parameter_names_of_older_model_files():
    for name, cell in (("gru", torch.nn.GRUCell(5, 7)), ("lstm", torch.nn.LSTMCell(5, 7))):
        core = make_core(name, 5, 7)
        old = {f"cell.{k}": v for k, v in cell.state_dict().items()}
        core.load_state_dict(old)
        x, h = torch.randn(3, 5), torch.randn(3, 7)
        state = h if name == "gru" else (h, torch.randn(3, 7))
        expected = cell(x, state)
        out, _ = core(x, state)
        torch.testing.assert_close(out, expected if name == "gru" else expected[0])


@pytest.mark.parametrize("sequence_length", [None, 5])
@pytest.mark.parametrize("agent_name", ["ppo", "a2c"])
def test_an_update_replays_the_rollouts_log_probs_and_values(agent_name, sequence_length):
    """Before any gradient step, the update's replay of the rollout's segments gives the
    log-probabilities and values the rollout computed step by step; with
    ``sequence_length``, pieces cut mid-episode start from the stored state."""
    import cogrl.agents

    extra = {"batch_size": 12} if agent_name == "ppo" else {}
    agent = cogrl.agents.make(
        agent_name,
        "CartPole-v1",
        **extra,
        seed=0,
        device="cpu",
        num_envs=3,
        n_steps=12,
        sequence_length=sequence_length,
        policy={"core": "gru", "core_size": 8},
    )
    agent._start()
    rollout = agent.collect_rollout()
    segments = rollout.segments
    if sequence_length is not None:
        assert int(segments.lengths.max()) <= 5
        assert bool((~segments.fresh & (segments.begin > 0)).any())  # cut mid-episode
    everything = torch.arange(segments.count)
    with torch.no_grad():
        replayed = agent.evaluate_actions(rollout, everything)
    rows = replayed.rows
    torch.testing.assert_close(replayed.log_prob, rollout.log_probs.flatten()[rows])
    torch.testing.assert_close(replayed.value, rollout.values.flatten()[rows])
