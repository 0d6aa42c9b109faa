"""The end-to-end memory network (Sukhbaatar et al. 2015): ``policy.encoder=bow`` and
``policy.core=memn2n``.

- The position encoding is the paper's ``l_kj`` (hand-computed), ignores padding and makes
  word order matter.
- The core attends over the sentences before the query (not the query itself), masks
  empty slots, keeps the most recent ``memory_size`` inputs in recency order, ties its
  matrices as the paper says, runs whole sequences exactly as it steps, and stays finite.
- End to end: PPO with ``encoder=bow, core=memn2n`` learns a small story task (three
  "person is in place" sentences, then "where is person?") that a memoryless policy cannot.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import cogrl.agents
import cogrl.envs
from cogrl.agents import evaluate
from cogrl.core import BatchedEnv, Info
from cogrl.nn import BoWEncoder, MemN2N, PolicyConfig, make_core, make_torso
from cogrl.nn.memn2n import MemN2NState, position_encoding

# --- position encoding ------------------------------------------------------------------------


def test_position_encoding_is_the_papers_formula() -> None:
    # l_kj = (1 - j/J) - (k/d)(1 - 2j/J), J = 3 words, d = 2 dimensions, by hand:
    # j=1: 2/3 - k/2 * 1/3  -> (1/2, 1/3);   j=2: 1/3 + k/2 * 1/3 -> (1/2, 2/3);
    # j=3: 0 + k/2 * 1      -> (1/2, 1).
    expected = torch.tensor([[1 / 2, 1 / 3], [1 / 2, 2 / 3], [1 / 2, 1.0]])
    words = torch.tensor([[True, True, True]])
    torch.testing.assert_close(position_encoding(words, 2)[0], expected)
    # Padding (anywhere) neither takes a place nor gets a weight: J counts real words only.
    padded = torch.tensor([[True, False, True, True, False]])
    l = position_encoding(padded, 2)[0]  # noqa: E741 (paper's l)
    torch.testing.assert_close(l[[0, 2, 3]], expected)
    assert torch.equal(l[[1, 4]], torch.zeros(2, 2))
    # One word (J = 1): l_k1 = k/d; no word at all: zeros, not NaN.
    torch.testing.assert_close(
        position_encoding(torch.tensor([[True, False]]), 4)[0, 0],
        torch.tensor([0.25, 0.5, 0.75, 1]),
    )
    assert torch.equal(
        position_encoding(torch.zeros(1, 3, dtype=torch.bool), 2), torch.zeros(1, 3, 2)
    )


def test_bow_encoder_sums_position_weighted_embeddings_and_ignores_padding() -> None:
    encoder = BoWEncoder(spaces.MultiDiscrete(np.full(4, 5)), embedding_size=2)
    with torch.no_grad():
        encoder.words["sentence"].weight.copy_(
            torch.tensor([[9.0, 9.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])
        )
    # Sentence [3, 1, 2] padded with 0: x = sum_j l_j * E w_j with l from the test above.
    x = encoder(torch.tensor([[3, 1, 2, 0]]))
    by_hand = (
        torch.tensor([1 / 2, 1 / 3]) * torch.tensor([1.0, 1.0])
        + torch.tensor([1 / 2, 2 / 3]) * torch.tensor([1.0, 0.0])
        + torch.tensor([1 / 2, 1.0]) * torch.tensor([0.0, 1.0])
    )
    torch.testing.assert_close(x[0], by_hand)
    # Word order matters with PE: the same words in another order give another vector.
    same_words = encoder(torch.tensor([[1, 3, 2, 0], [3, 1, 2, 0]]))
    assert not torch.allclose(same_words[0], same_words[1])
    torch.testing.assert_close(same_words[1], x[0])


def test_bow_encoder_of_a_story_observation_sums_sentence_and_question_flag() -> None:
    space = spaces.Dict(
        {
            "words": spaces.MultiDiscrete(np.full(3, 6)),
            "question": spaces.Box(0.0, 1.0, (1,), np.float32),
        }
    )
    config = PolicyConfig(encoder="bow", hidden_sizes=[8])
    torso = make_torso(space, config.replace({"core": "memn2n"}))
    encoder = torso.encoder
    assert isinstance(encoder, BoWEncoder) and encoder.output_size == 8
    assert isinstance(torso.core, MemN2N) and torso.core.input_size == 8
    words = torch.tensor([[2, 5, 0], [2, 5, 0]])
    x = encoder({"words": words, "question": torch.tensor([[0.0], [1.0]])})
    story = encoder.encode_sentence(words[:1], encoder.words["words"])
    torch.testing.assert_close(x[0], story[0])  # flag 0: the sentence's PE vector alone
    torch.testing.assert_close(x[1] - x[0], encoder.others["question"].weight[:, 0])


def test_bow_encoder_rejects_spaces_without_a_sentence() -> None:
    with pytest.raises(ValueError, match="MultiDiscrete"):
        BoWEncoder(spaces.Box(0.0, 1.0, (3,)), 4)
    nested = spaces.Dict({"flag": spaces.Discrete(2)})
    with pytest.raises(ValueError, match="'nested'"):
        BoWEncoder(spaces.Dict({"words": spaces.MultiDiscrete([3, 3]), "nested": nested}), 4)
    with pytest.raises(ValueError, match="needs a MultiDiscrete"):
        BoWEncoder(spaces.Dict({"question": spaces.Box(0.0, 1.0, (1,))}), 4)
    with pytest.raises(ValueError, match="1-D MultiDiscrete"):
        BoWEncoder(spaces.MultiDiscrete(np.full((2, 3), 4)), 4)
    with pytest.raises(ValueError, match="embedding_size"):
        BoWEncoder(spaces.MultiDiscrete([3, 3]), 0)


# --- the core ---------------------------------------------------------------------------------


def hand_set_core(size: int = 4, memory_size: int = 3, hops: int = 1, **kwargs: Any) -> MemN2N:
    """A core whose A, B, C are scaled identities and whose temporal encoding is zero: the
    attention logit of slot i is ``scale^2 x_t . x_i``."""
    core = MemN2N(size, size, memory_size=memory_size, hops=hops, **kwargs)
    with torch.no_grad():
        for layer in core.embeddings:
            layer.weight.copy_(4.0 * torch.eye(size))
        core.temporal.zero_()
    return core


def one_hot(*ids: int, size: int = 4) -> torch.Tensor:
    return torch.eye(size)[list(ids)]


def test_query_attends_to_the_matching_earlier_sentence_not_to_itself() -> None:
    core = hand_set_core()
    state = core.initial_state(1)
    # The first step: empty memory, no attention, o = 0: h = u^1 = B x, finite.
    h, state = core(one_hot(0), state)
    torch.testing.assert_close(h, 4.0 * one_hot(0))
    assert torch.equal(core.memory_weights(state)["attention"], torch.zeros(1, 1, 3))
    _, state = core(one_hot(1), state)
    _, state = core(one_hot(2), state)
    # Query x = e_1 (as the sentence two steps ago): logits 16 * x . x_i over slots
    # (e_2, e_1, e_0): p ~ softmax(0, 16, 0); the query itself is not in memory yet.
    h, state = core(one_hot(1), state)
    p = core.memory_weights(state)["attention"]
    assert p.shape == (1, 1, 3)
    expected = torch.softmax(torch.tensor([0.0, 16.0, 0.0]), 0)
    torch.testing.assert_close(p[0, 0], expected)
    assert p[0, 0, 1] > 0.99
    # u^2 = u^1 + o^1, o^1 = sum_i p_i C x_i.
    memory = torch.stack([one_hot(2)[0], one_hot(1)[0], one_hot(0)[0]])
    torch.testing.assert_close(h[0], 4.0 * one_hot(1)[0] + expected @ (4.0 * memory))


def test_memory_keeps_the_most_recent_inputs_in_recency_order_and_masks_empty_slots() -> None:
    core = hand_set_core(memory_size=3)
    state = core.initial_state(2)
    xs = [torch.full((2, 4), float(t + 1)) for t in range(5)]
    for t, x in enumerate(xs):
        _, state = core(x, state)
        n = min(t + 1, 3)
        expected_filled = torch.tensor([True] * n + [False] * (3 - n)).expand(2, 3)
        assert torch.equal(state.filled, expected_filled)
        # slot 0 holds x_t, slot 1 x_{t-1}, ...: the oldest drop out past memory_size
        for i in range(n):
            assert torch.equal(state.memory[:, i], xs[t - i])
        attention = core.memory_weights(state)["attention"]
        # The attention at step t is over the slots filled before x_t was written.
        before = torch.tensor([True] * t + [False] * (3 - t))[:3]
        assert torch.equal(attention[:, 0, ~before], torch.zeros(2, int((~before).sum())))
        if t > 0:
            torch.testing.assert_close(attention.sum(-1), torch.ones(2, 1))


def test_empty_slots_get_no_attention_even_with_the_largest_scores() -> None:
    core = hand_set_core(memory_size=3)
    state = MemN2NState(
        memory=torch.stack([one_hot(1), one_hot(0), one_hot(0)], 1),  # slots 1, 2 match query
        filled=torch.tensor([[True, False, False]]),
        attention=torch.zeros(1, 1, 3),
    )
    _, state = core(one_hot(0), state)
    assert torch.equal(state.attention[0, 0], torch.tensor([1.0, 0.0, 0.0]))


def test_memory_weights_per_hop_rows_sum_to_one() -> None:
    torch.manual_seed(0)
    core = MemN2N(5, 7, memory_size=4, hops=3)
    state = core.initial_state(3)
    for t in range(6):
        _, state = core(torch.randn(3, 5), state)
        weights = core.memory_weights(state)
        assert list(weights) == ["attention"] and weights["attention"].shape == (3, 3, 4)
        expected = torch.zeros(3, 3) if t == 0 else torch.ones(3, 3)
        torch.testing.assert_close(weights["attention"].sum(-1), expected)


def test_adjacent_tying_shares_a_k_plus_one_with_c_k_and_b_with_a_one() -> None:
    core = MemN2N(6, 8, hops=3)
    assert core.B is core.A(1)
    for k in (1, 2):
        assert core.A(k + 1) is core.C(k)
        assert core.T_A(k + 1) is not None
        assert core.T_A(k + 1).data_ptr() == core.T_C(k).data_ptr()
    # K + 1 embedding matrices and temporal tables, each held once.
    assert len(core.embeddings) == 4 and core.temporal.shape == (4, 50, 8)
    distinct = {id(core.A(k)) for k in (1, 2, 3)} | {id(core.C(3))}
    assert len(distinct) == 4
    names = [name for name, _ in core.named_parameters()]
    assert len(names) == len(set(names)) == 5  # 4 embeddings + temporal; no H, no output

    layerwise = MemN2N(6, 8, hops=3, weight_tying="layerwise")
    assert layerwise.A(1) is layerwise.A(3) and layerwise.C(1) is layerwise.C(2)
    assert layerwise.A(1) is not layerwise.C(1) and layerwise.B is not layerwise.A(1)
    assert layerwise.H is not None
    # Layer-wise: u^{k+1} = H u^k + o^k; with an empty memory, h = H^K B x.
    x = torch.randn(2, 6)
    h, _ = layerwise(x, layerwise.initial_state(2))
    H, B = layerwise.H.weight, layerwise.B.weight
    torch.testing.assert_close(h, x @ B.T @ H.T @ H.T @ H.T)


def test_output_is_projected_when_embedding_size_differs() -> None:
    core = make_core("memn2n", 6, 10, embedding_size=4, hops=2, memory_size=5)
    assert core.output is not None and core.embedding_size == 4 and core.hidden_size == 10
    h, state = core(torch.randn(3, 6), core.initial_state(3))
    assert h.shape == (3, 10) and state.memory.shape == (3, 5, 6)
    no_time = MemN2N(6, 6, temporal_encoding=False)
    assert no_time.T_A(1) is None and no_time.output is None


def random_state(core: MemN2N, batch: int, generator: torch.Generator) -> MemN2NState:
    N, F = core.memory_size, core.input_size
    filled = torch.arange(N)[None, :] < torch.randint(0, N + 1, (batch, 1), generator=generator)
    return MemN2NState(
        torch.randn(batch, N, F, generator=generator) * filled[..., None],
        filled,
        torch.zeros(batch, core.hops, N),
    )


@pytest.mark.parametrize("weight_tying", ["adjacent", "layerwise"])
def test_sequence_with_lengths_equals_stepping(weight_tying: str) -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    core = MemN2N(5, 7, memory_size=4, hops=2, embedding_size=6, weight_tying=weight_tying)
    L, S = 9, 5
    x = torch.randn(L, S, 5, generator=g)
    start = random_state(core, S, g)
    lengths = torch.tensor([9, 1, 4, 6, 3])
    h, last = core.sequence(x, start, lengths)
    assert h.shape == (L, S, 7)
    for s in range(S):
        state = MemN2NState(*(part[s : s + 1] for part in start))
        for t in range(int(lengths[s])):
            h_t, state = core(x[t, s : s + 1], state)
            torch.testing.assert_close(h[t, s], h_t[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(last.memory[s], state.memory[0])
        assert torch.equal(last.filled[s], state.filled[0])
        torch.testing.assert_close(last.attention[s], state.attention[0], atol=1e-6, rtol=1e-5)
    # Without lengths: every sequence runs all L steps.
    h_all, last_all = core.sequence(x, start)
    torch.testing.assert_close(h_all[:, 0], h[:, 0])
    torch.testing.assert_close(last_all.memory[0], last.memory[0])


def paper_step(
    core: MemN2N, x: torch.Tensor, state: MemN2NState
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step as section 2 writes it: every memory embedded by every hop's matrices,
    ``m^k_i = A^k x_i + T_A^k(i)``, ``c^k_i = C^k x_i + T_C^k(i)``, ``p^k = softmax(u . m^k)``
    over the filled slots, ``o^k = sum_i p^k_i c^k_i``: h and the attention (B, K, N)."""
    u = core.B(x)
    attention = []
    for k in range(1, core.hops + 1):
        m, c = core.A(k)(state.memory), core.C(k)(state.memory)
        if core.temporal_encoding:
            m, c = m + core.T_A(k), c + core.T_C(k)
        logits = (m * u[:, None]).sum(-1).masked_fill(~state.filled, float("-inf"))
        p = torch.softmax(logits, -1).nan_to_num(0.0)  # an empty memory: p = 0
        o = (p[..., None] * c).sum(1)
        u = (u if core.H is None else core.H(u)) + o
        attention.append(p)
    return (u if core.output is None else core.output(u)), torch.stack(attention, 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weight_tying": "adjacent"},
        {"weight_tying": "layerwise"},
        {"weight_tying": "adjacent", "temporal_encoding": False, "embedding_size": 6},
    ],
)
def test_step_equals_the_papers_hops_over_embedded_memories(kwargs: dict) -> None:
    # The core scores (u A^k) . x_i and reads C^k (sum_i p_i x_i) on the raw memory instead
    # of embedding every slot: the same numbers as the paper's m^k_i and c^k_i.
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    core = MemN2N(5, 7, memory_size=4, hops=3, **kwargs)
    state = random_state(core, 6, g)
    empty = torch.tensor([True, False, False, False, False, False])  # row 0: an empty memory
    state = MemN2NState(
        state.memory * ~empty[:, None, None], state.filled & ~empty[:, None], state.attention
    )
    assert bool(state.filled[1:].any(1).all())
    for _ in range(3):  # from partly filled memories, through writes
        x = torch.randn(6, 5, generator=g)
        h_paper, p_paper = paper_step(core, x, state)
        h, state = core(x, state)
        torch.testing.assert_close(h, h_paper, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(state.attention, p_paper, atol=1e-6, rtol=1e-5)


def test_reset_restarts_from_the_initial_state() -> None:
    core = MemN2N(3, 4, memory_size=3, hops=2)
    state = core.initial_state(2)
    for _ in range(2):
        _, state = core(torch.randn(2, 3), state)
    assert bool(state.filled.any())
    reset = core.reset(state, torch.tensor([True, False]))
    fresh = core.initial_state(1)
    for part, init, old in zip(reset, fresh, state, strict=True):
        assert torch.equal(part[0], init[0].to(part.dtype))
        assert torch.equal(part[1], old[1])
    # From a reset row, the output is what a fresh core gives on the same input.
    x = torch.randn(2, 3)
    h, _ = core(x, reset)
    h_fresh, _ = core(x[:1], fresh)
    torch.testing.assert_close(h[0], h_fresh[0])


def test_values_and_gradients_are_finite_from_an_empty_memory() -> None:
    torch.manual_seed(0)
    core = MemN2N(4, 6, memory_size=3, hops=3)
    x = torch.randn(5, 2, 4, requires_grad=True)
    h, state = core.sequence(x, core.initial_state(2))
    stepped, s = [], core.initial_state(2)
    for t in range(5):
        h_t, s = core(x[t], s)
        stepped.append(h_t)
    loss = h.square().sum() + torch.stack(stepped).square().sum() + state.attention.sum()
    loss.backward()
    assert torch.isfinite(h).all() and torch.isfinite(x.grad).all()
    for name, p in core.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_random_noise_inserts_empty_slots_in_training_only() -> None:
    core = hand_set_core(memory_size=4, random_noise=0.5)
    torch.manual_seed(0)
    state = core.initial_state(64)
    for _ in range(2):
        _, state = core(torch.ones(64, 4), state)
    # Second write: half the rows (about) put an empty slot between the two sentences.
    gaps = state.filled[:, 1] == 0
    assert 10 < int(gaps.sum()) < 54
    assert torch.equal(
        state.filled[gaps, :3], torch.tensor([True, False, True]).expand(int(gaps.sum()), 3)
    )
    assert torch.equal(state.memory[gaps, 1], torch.zeros(int(gaps.sum()), 4))
    # In eval mode the noise is off: stepping and sequence equal the noiseless core.
    core.eval()
    quiet = hand_set_core(memory_size=4)
    x = torch.randn(6, 3, 4)
    h, last = core.sequence(x, core.initial_state(3))
    h_quiet, last_quiet = quiet.sequence(x, quiet.initial_state(3))
    torch.testing.assert_close(h, h_quiet)
    assert torch.equal(last.filled, last_quiet.filled)


@pytest.mark.parametrize("memory_size", [1, 2, 4])
def test_random_noise_write_puts_an_empty_slot_after_the_new_sentence(memory_size: int) -> None:
    core = MemN2N(3, 3, memory_size=memory_size, random_noise=0.5)
    g = torch.Generator().manual_seed(3)
    torch.manual_seed(1)
    memory = torch.randn(32, memory_size, 3, generator=g)
    filled = torch.rand(32, memory_size, generator=g) < 0.7
    start = MemN2NState(memory, filled, torch.zeros(32, 1, memory_size))
    x = torch.randn(32, 3, generator=g)
    _, state = core(x, start)
    assert state.memory.shape == memory.shape and state.filled.shape == filled.shape
    new = torch.ones(1, dtype=torch.bool)
    gap_rows = 0
    for b in range(32):  # row by row: x_t, then (an empty slot and) the older sentences
        shifted = (
            torch.cat([x[b : b + 1], memory[b]])[:memory_size],
            torch.cat([new, filled[b]])[:memory_size],
        )
        with_gap = (
            torch.cat([x[b : b + 1], torch.zeros(1, 3), memory[b]])[:memory_size],
            torch.cat([new, ~new, filled[b]])[:memory_size],
        )
        row = (state.memory[b], state.filled[b])
        is_shifted = all(map(torch.equal, row, shifted))
        assert is_shifted or all(map(torch.equal, row, with_gap)), b
        gap_rows += not is_shifted
    if memory_size > 1:
        assert 6 < gap_rows < 26  # about half the rows


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"memory_size": 0}, "memory_size"),
        ({"hops": 0}, "hops"),
        ({"hops": 2.5}, "hops"),
        ({"embedding_size": -1}, "embedding_size"),
        ({"weight_tying": "rnn"}, "weight_tying"),
        ({"temporal_encoding": 1}, "temporal_encoding"),
        ({"random_noise": 1.0}, "random_noise"),
        ({"random_noise": -0.1}, "random_noise"),
    ],
)
def test_bad_hyperparameters_are_value_errors_naming_them(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MemN2N(4, 4, **kwargs)


def test_bad_inputs_and_hops_are_value_errors() -> None:
    core = MemN2N(4, 4, hops=2)
    with pytest.raises(ValueError, match="input_size = 4"):
        core(torch.zeros(2, 5), core.initial_state(2))
    with pytest.raises(ValueError, match=r"\(L, S, F\)"):
        core.sequence(torch.zeros(2, 4), core.initial_state(2))
    with pytest.raises(ValueError, match="hop k"):
        core.A(3)


# --- end to end: a story task -----------------------------------------------------------------

PERSONS, PLACES = 3, 3
VOCAB = 1 + PERSONS + PLACES  # 0 padding, persons 1..3, places 4..6


class WhereIsPerson(BatchedEnv):
    """A tiny story: steps 0-2 show "person p is in place q" as words ``[p, q]`` (three
    different persons, places drawn at random), step 3 asks ``[p, 0]`` with the question
    flag set; the action names a word, reward 1 if it is p's place, and the episode ends.
    A policy without memory answers right one time in three at best."""

    metadata = {**BatchedEnv.metadata, "episode_metrics": {"accuracy": "correct"}}
    max_episode_steps = PERSONS + 1

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        render_mode: str | None = None,
        autoreset: bool = True,
    ) -> None:
        super().__init__(num_envs, device, render_mode, autoreset)
        self.single_observation_space = spaces.Dict(
            {
                "words": spaces.MultiDiscrete(np.full(2, VOCAB)),
                "question": spaces.Box(0.0, 1.0, (1,), np.float32),
            }
        )
        self.single_action_space = spaces.Discrete(VOCAB)
        n = self.num_envs
        self.persons = torch.zeros(n, PERSONS, dtype=torch.int64, device=self.device)
        self.places = torch.zeros(n, PERSONS, dtype=torch.int64, device=self.device)
        self.asked = torch.zeros(n, dtype=torch.int64, device=self.device)
        self.t = torch.zeros(n, dtype=torch.int64, device=self.device)

    def _reset_envs(self, index: torch.Tensor) -> None:
        order = self.rng.uniform(index, PERSONS, 0).argsort(1)
        self.persons[index] = 1 + order
        self.places[index] = 1 + PERSONS + self.rng.integers(index, PERSONS, PLACES, PERSONS)
        self.asked[index] = self.rng.integers(index, 1, PERSONS, 2 * PERSONS)[:, 0]
        self.t[index] = 0

    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        question = self.t == PERSONS
        answer = self.places.gather(1, self.asked[:, None])[:, 0]
        correct = question & (action == answer)
        self.t += 1
        info = {"correct": correct, "_correct": question}
        return correct.float(), question, torch.zeros_like(question), info

    def _observe(self, index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        index = self._all if index is None else index
        t = self.t[index]
        question = t == PERSONS
        shown = torch.where(question, self.asked[index], t.clamp(max=PERSONS - 1))
        person = self.persons[index].gather(1, shown[:, None])[:, 0]
        place = self.places[index].gather(1, shown[:, None])[:, 0]
        words = torch.stack([person, torch.where(question, 0, place)], 1)
        return {"words": words, "question": question[:, None].float()}


STORY_ID = "test/WhereIsPerson-v0"
if STORY_ID not in gym.registry:
    cogrl.envs.register_core(STORY_ID, WhereIsPerson)

MEMN2N_POLICY = {
    "encoder": "bow",
    "core": "memn2n",
    "hidden_sizes": [32],
    "core_size": 32,
    "memory_size": 4,
    "hops": 2,
    "share_torso": True,
}


def test_story_task_shows_sentences_then_the_question() -> None:
    env = WhereIsPerson(num_envs=2)
    obs, _ = env.reset(seed=0)
    seen = []
    for _ in range(3):
        seen.append(obs["words"].clone())
        assert torch.equal(obs["question"], torch.zeros(2, 1))
        obs, reward, terminated, _, _ = env.step(torch.zeros(2, dtype=torch.int64))
        assert not bool(terminated.any()) and torch.equal(reward, torch.zeros(2))
    story = torch.stack(seen, 1)  # (2, 3, 2): three (person, place) sentences
    assert torch.equal(story[..., 0].sort(1).values, torch.tensor([[1, 2, 3], [1, 2, 3]]))
    assert bool(((story[..., 1] >= 4) & (story[..., 1] <= 6)).all())
    assert torch.equal(obs["question"], torch.ones(2, 1)) and bool((obs["words"][:, 1] == 0).all())
    # The answer is the place of the asked person's sentence.
    asked = obs["words"][:, 0]
    answer = (story[..., 1] * (story[..., 0] == asked[:, None])).sum(1)
    _, reward, terminated, _, info = env.step(answer)
    assert torch.equal(reward, torch.ones(2)) and bool(terminated.all())
    assert bool(info["correct"].all())


def test_ppo_with_memn2n_policy_learns_where_is_person_a_memoryless_one_cannot() -> None:
    # 40k steps (about 5 s): seeds 0-6 all reach 0.96 or more (0.99 typical).
    results = {}
    for core in ("memn2n", "none"):
        policy = MEMN2N_POLICY if core == "memn2n" else {"encoder": "bow", "core": "none"}
        agent = cogrl.agents.make(
            "ppo",
            STORY_ID,
            device="cpu",
            seed=0,
            num_envs=32,
            n_steps=16,
            batch_size=256,
            learning_rate=3e-3,
            policy={**policy, "hidden_sizes": [32], "share_torso": True},
        )
        assert agent.config.policy.encoder == "bow" and agent.config.policy.core == core
        if core == "memn2n":
            memn2n = agent.policy.actor_torso.core
            assert isinstance(memn2n, MemN2N) and memn2n.memory_size == 4 and memn2n.hops == 2
            before = {k: v.clone() for k, v in agent.policy.state_dict().items()}
            agent.learn(512)
            changed = {
                k for k, v in agent.policy.state_dict().items() if not torch.equal(v, before[k])
            }
            assert {"actor_torso.core.embeddings.0.weight", "actor_torso.core.temporal"} <= changed
            assert "actor_torso.encoder.words.words.weight" in changed
        agent.learn(40_000, reset_num_timesteps=False)
        results[core] = evaluate(agent, episodes=200, seed=1)
    for result in results.values():
        assert result["episodes"] == 200 and result["mean_length"] == 4.0
        assert result["accuracy"] == pytest.approx(result["mean_return"])
    assert results["memn2n"]["accuracy"] >= 0.9, results
    assert results["none"]["accuracy"] <= 0.45, results  # a place, at best one in three


@pytest.mark.parametrize(
    "name, hyperparameters",
    [
        ("ppo", {"num_envs": 8, "n_steps": 16, "batch_size": 64}),
        ("a2c", {"num_envs": 8}),
        ("reinforce", {"num_envs": 8}),
        ("dqn", {"num_envs": 4, "learning_starts": 100, "batch_size": 16, "sequence_length": 6}),
    ],
)
def test_every_learner_trains_memn2n_and_a_loaded_agent_acts_the_same(
    name: str, hyperparameters: dict[str, Any], tmp_path
) -> None:
    def make() -> cogrl.agents.Agent:
        return cogrl.agents.make(
            name, STORY_ID, device="cpu", seed=0, policy=MEMN2N_POLICY, **hyperparameters
        )

    agent, fresh = make(), make()
    agent.learn(400)

    def weights(agent: cogrl.agents.Agent) -> dict[str, torch.Tensor]:
        modules = agent.modules().items()
        return {f"{n}.{k}": v for n, m in modules for k, v in m.state_dict().items()}

    trained, initial = weights(agent), weights(fresh)
    moved = [k for k, v in trained.items() if not torch.equal(v, initial[k])]
    assert any("core.embeddings" in k for k in moved), moved
    loaded = cogrl.agents.load(agent.save(tmp_path / "model"))
    # The same story episodes through both, state fed back and reset at episode starts.
    env = cogrl.envs.make_core(STORY_ID, num_envs=4)
    obs, _ = env.reset(seed=0)
    state_a = state_b = None
    start = torch.ones(4, dtype=torch.bool)
    for _ in range(8):
        a, state_a = agent.predict(obs, state_a, start, deterministic=True)
        b, state_b = loaded.predict(obs, state_b, start, deterministic=True)
        assert torch.equal(a, b)
        torch.testing.assert_close(state_b, state_a, rtol=0, atol=0)
        obs, _, terminated, truncated, _ = env.step(a)
        start = terminated | truncated
