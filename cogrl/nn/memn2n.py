"""End-to-end memory networks (Sukhbaatar, Szlam, Weston and Fergus 2015, "End-to-end
memory networks"): the position-encoding sentence encoder ``bow`` and the core ``memn2n``.

The story tasks show one sentence per step and then a question; the policy answers at the
question step. With ``policy={"encoder": "bow", "core": "memn2n"}``:

- the encoder (:class:`BoWEncoder`, ``policy.encoder=bow``) turns each step's sentence
  (a ``MultiDiscrete`` of word ids, padded with 0) into one vector with the paper's
  position encoding (PE, section 4.1): ``x = sum_j l_j * E w_j``;
- the core (:class:`MemN2N`, ``policy.core=memn2n``) keeps the last ``memory_size``
  sentence vectors and answers each step's input as a query over them with ``hops``
  attention hops (section 2): ``p^k_i = softmax_i(u^k . m^k_i)``,
  ``o^k = sum_i p^k_i c^k_i``, ``u^{k+1} = u^k + o^k``;
- the answer ``a = softmax(W u^{K+1})`` is the policy's action head.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from cogrl.checks import check_bools, check_choice, check_int, is_number
from cogrl.nn.cores import Core, register_core
from cogrl.nn.encoders import register_encoder

__all__ = [
    "BoWEncoder",
    "MemN2N",
    "MemN2NState",
    "WEIGHT_TYING",
    "position_encoding",
]

#: The paper's weight-tying schemes (section 2.2).
WEIGHT_TYING = ("adjacent", "layerwise")

#: The paper initialises every weight from N(0, 0.1) (section 4.2).
INIT_STD = 0.1


def position_encoding(words: torch.Tensor, embedding_size: int) -> torch.Tensor:
    """The paper's position-encoding weights ``l_kj`` (section 4.1) for every word.

    ``l_kj = (1 - j/J) - (k/d)(1 - 2j/J)`` with ``j = 1..J`` the word's place in its
    sentence, ``k = 1..d`` the dimension and ``d = embedding_size``. ``words`` (B, W) bool
    marks the real (non-pad) words; ``J`` is each sentence's own number of them (the paper's
    sentence length), and ``j`` counts real words only, so padding anywhere neither takes a
    place nor gets a weight. Returns (B, W, d), zero at padding.
    """
    mask = words.to(torch.float32)
    j = mask.cumsum(1)  # 1-based place among the sentence's real words
    # An empty sentence (J = 0) has no word to weight; J >= 1 keeps j/J finite there.
    J = mask.sum(1, keepdim=True).clamp(min=1.0)
    k = torch.arange(1, embedding_size + 1, dtype=torch.float32, device=words.device)
    k = k / embedding_size
    l = (1.0 - j / J)[..., None] - k * (1.0 - 2.0 * j / J)[..., None]  # noqa: E741 (paper's l)
    return l * mask[..., None]


class BoWEncoder(nn.Module):
    """Sentences to vectors by the paper's position encoding (PE): the ``bow`` encoder.

    A ``MultiDiscrete`` observation (one sentence: word ids, ``0`` the padding) becomes
    ``x = sum_j l_j * E w_j`` (:func:`position_encoding`), ``E`` a word embedding of width
    ``embedding_size``. Word order matters (the paper's point against a plain bag of words)
    and padding adds nothing. The encoding is linear, as the paper's: a core's linear map
    ``A`` on ``x`` is the paper's ``A`` on words, factored as ``A E``.

    A ``Dict`` observation: every ``MultiDiscrete`` entry is PE-encoded with its own word
    embedding, every other entry (a ``Box`` or ``MultiBinary`` flag such as StoryQA's
    ``question``; a ``Discrete`` id) goes through a small linear map without bias, and the
    vectors are *summed*: the width stays ``embedding_size``, a story sentence (flag 0)
    is exactly its PE vector and the question flag adds one learned vector to the query.
    """

    def __init__(self, observation_space: spaces.Space, embedding_size: int) -> None:
        super().__init__()
        check_int("embedding_size", embedding_size)
        self.output_size = int(embedding_size)
        is_dict = isinstance(observation_space, spaces.Dict)
        entries = dict(observation_space.spaces) if is_dict else {"sentence": observation_space}
        words, others = {}, {}
        for key, space in sorted(entries.items()):
            if isinstance(space, spaces.MultiDiscrete):
                words[key] = self._word_embedding(key, space)
            elif isinstance(space, (spaces.Box, spaces.MultiBinary)) and is_dict:
                others[key] = nn.Linear(int(np.prod(space.shape)), self.output_size, bias=False)
            elif isinstance(space, spaces.Discrete) and is_dict:
                others[key] = nn.Embedding(int(space.n), self.output_size)
            else:
                where = f"entry {key!r} is" if is_dict else "got"
                raise ValueError(
                    f"the bow encoder takes a MultiDiscrete sentence of word ids, or a Dict "
                    f"of them with Box, MultiBinary or Discrete entries; {where} {space}"
                )
        if not words:
            raise ValueError(
                f"the bow encoder needs a MultiDiscrete entry of word ids, got {observation_space}"
            )
        self.is_dict = is_dict
        self.words = nn.ModuleDict(words)
        self.others = nn.ModuleDict(others)
        self.starts = {
            k: int(entries[k].start) for k in others if isinstance(entries[k], spaces.Discrete)
        }

    def _word_embedding(self, key: str, space: spaces.MultiDiscrete) -> nn.Embedding:
        if space.nvec.ndim != 1 or np.any(space.start != 0):
            raise ValueError(
                f"the bow encoder takes a sentence as a 1-D MultiDiscrete of word ids from 0 "
                f"(0: padding); entry {key!r} is {space}"
            )
        # One table for every place in the sentence: they hold words of one vocabulary.
        embedding = nn.Embedding(int(space.nvec.max()), self.output_size)
        nn.init.normal_(embedding.weight, std=INIT_STD)
        return embedding

    def encode_sentence(self, ids: torch.Tensor, embedding: nn.Embedding) -> torch.Tensor:
        """``sum_j l_j * E w_j`` for word ids (B, W), 0 the padding: (B, embedding_size)."""
        ids = ids.long()
        l = position_encoding(ids != 0, self.output_size)  # noqa: E741 (paper's l)
        return (l * embedding(ids)).sum(1)

    def forward(self, obs: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        if not self.is_dict:
            return self.encode_sentence(obs, self.words["sentence"])
        x = sum(self.encode_sentence(obs[k], e) for k, e in self.words.items())
        for key, layer in self.others.items():
            value = obs[key]
            if isinstance(layer, nn.Embedding):
                x = x + layer(value.long().reshape(-1) - self.starts[key])
            else:
                x = x + layer(value.reshape(value.shape[0], -1).float())
        return x


@register_encoder("bow")
def _bow(observation_space: spaces.Space, config) -> BoWEncoder:
    # hidden_sizes[-1] (or core_size where there is none) is the feature width, as for
    # the other encoders.
    sizes = tuple(config.hidden_sizes)
    return BoWEncoder(observation_space, sizes[-1] if sizes else config.core_size)


class MemN2NState(NamedTuple):
    """A memory network's state: the sentences so far, most recent first."""

    memory: torch.Tensor  # (B, memory_size, F): the inputs x_i, slot 0 the most recent
    filled: torch.Tensor  # (B, memory_size) bool: slots holding a sentence
    attention: torch.Tensor  # (B, hops, memory_size): p^k of the last step


def _attend(logits: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
    """``p_i = softmax_i(logits)`` over the filled slots only; an empty memory gets p = 0
    (not NaN: the softmax runs over finite values and is then masked)."""
    masked = logits.masked_fill(~filled, torch.finfo(logits.dtype).min)
    return torch.softmax(masked, dim=-1) * filled


@register_core("memn2n")
class MemN2N(Core):
    """The end-to-end memory network as a core (Sukhbaatar et al. 2015, section 2).

    Memory: the inputs of the last ``memory_size`` steps (the paper's 50 sentences),
    ``x_i`` with ``i = 0`` the most recent (the paper indexes memories in reverse order).
    At step t the current input is the question: ``u^1 = B x_t``; for hops k = 1..K:

    - ``m^k_i = A^k x_i + T_A^k(i)``, ``c^k_i = C^k x_i + T_C^k(i)`` (input and output
      memories; ``T`` the temporal encoding by recency, section 4.1, if
      ``temporal_encoding``);
    - ``p^k_i = softmax_i(u^k . m^k_i)`` over the slots holding a sentence (empty slots get
      no attention; with none, ``o^k = 0``);
    - ``o^k = sum_i p^k_i c^k_i``, ``u^{k+1} = u^k + o^k`` (or ``H u^k + o^k``, layer-wise).

    Then ``x_t`` is written to memory, so a question attends over the sentences before
    it, not to itself. The output is ``h_t = u^{K+1}``, projected linearly to
    ``hidden_size`` where that differs from ``embedding_size`` (default: equal).

    Weight tying (section 2.2): ``"adjacent"``: ``A^{k+1} = C^k``, ``B = A^1`` (and
    ``T_A^{k+1} = T_C^k``); ``"layerwise"``: one ``A``, one ``C`` (and one ``T_A``,
    ``T_C``) for every hop, a separate ``B`` and ``u^{k+1} = H u^k + o^k``. The answer
    matrix ``W`` is the policy's action head, so the paper's ``W^T = C^K`` tying is not
    applied.

    ``A^k``, ``B``, ``C^k`` act on the encoder's sentence vector ``x_i`` rather than on each
    word: with ``encoder=bow`` (the linear PE bag of words ``x = sum_j l_j E w_j``) and
    linear maps this is the paper's PE model with its word embedding factored as
    ``A^k E`` (likewise ``B E``, ``C^k E``); with another encoder, the memories are linear
    maps of its features.

    Random noise (RN, section 4.1): with ``random_noise = q > 0``, while the module is in
    training mode each write adds an empty (never attended) slot after the new sentence
    with probability q, so older sentences' temporal indices jitter as with the paper's
    10% of empty memories. It is off in ``eval()`` mode. cogrl's learners keep policies
    in training mode, so a rollout and its update see different noise; default 0.

    State (:class:`MemN2NState`): the raw inputs ``(B, memory_size, F)``, most recent first
    (``cat(x_t, M[:, :-1])`` per step), which slots are filled, and the last step's
    attention (for :meth:`memory_weights`). :meth:`sequence` runs all steps of a sequence at
    once (each step attends over a window of the inputs before it), exactly as stepping.

    Cost: the maps are linear, so a hop never embeds the memory. The score is taken as
    ``u . A^k x_i = (u A^k) . x_i`` (the query mapped back to the input width once) and the
    read as ``sum_i p_i C^k x_i = C^k (sum_i p_i x_i)``; the temporal terms are
    ``u T_A^k^T`` (B, N) and ``p T_C^k`` (B, d). A step is thus two passes over the
    (B, N, F) memory per hop plus (B, d)-wide products, not ``(hops + 1) B N F d``
    multiply-adds, and the state holds no parameter-dependent embeddings: a stored state
    (a rollout's, a replay's) is read with the current parameters, and it stays
    ``N x F`` per environment whatever the number of hops.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int = 256,
        memory_size: int = 50,
        hops: int = 3,
        embedding_size: int | None = None,
        weight_tying: str = "adjacent",
        temporal_encoding: bool = True,
        random_noise: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("input_size", input_size)
        check_int("hidden_size", hidden_size)
        check_int("memory_size", memory_size)
        check_int("hops", hops)
        if embedding_size is not None:
            check_int("embedding_size", embedding_size)
        check_choice("weight_tying", weight_tying, WEIGHT_TYING)
        self.temporal_encoding = temporal_encoding
        check_bools(self, "temporal_encoding")
        if not (is_number(random_noise) and 0.0 <= random_noise < 1.0):
            raise ValueError(f"random_noise must be a number in [0, 1), got {random_noise!r}")

        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.memory_size = int(memory_size)
        self.hops = int(hops)
        self.embedding_size = d = int(embedding_size or hidden_size)
        self.weight_tying = weight_tying
        self.random_noise = float(random_noise)

        K, N = self.hops, self.memory_size
        # The embedding matrices, each held once: adjacent E^1..E^{K+1} with A^k = E^k,
        # C^k = E^{k+1}, B = E^1; layer-wise A, C and B.
        count = K + 1 if weight_tying == "adjacent" else 3
        self.embeddings = nn.ModuleList(nn.Linear(input_size, d, bias=False) for _ in range(count))
        # Temporal encodings T^1..T^{K+1} (adjacent: T_A^k = T^k, T_C^k = T^{k+1}) or
        # T_A, T_C (layer-wise), by recency: row i is the i-th most recent slot.
        tables = (K + 1 if weight_tying == "adjacent" else 2) if temporal_encoding else 0
        self.temporal = nn.Parameter(torch.zeros(tables, N, d))
        self.H = nn.Linear(d, d, bias=False) if weight_tying == "layerwise" else None
        self.output = nn.Linear(d, hidden_size) if d != hidden_size else None
        for layer in self.embeddings:
            nn.init.normal_(layer.weight, std=INIT_STD)
        nn.init.normal_(self.temporal, std=INIT_STD)
        if self.H is not None:
            nn.init.normal_(self.H.weight, std=INIT_STD)

    # --- the paper's matrices -------------------------------------------------------------

    def A(self, k: int) -> nn.Linear:
        """The input memory map ``A^k`` of hop ``k`` (1-based)."""
        self._check_hop(k)
        return self.embeddings[k - 1] if self.weight_tying == "adjacent" else self.embeddings[0]

    def C(self, k: int) -> nn.Linear:
        """The output memory map ``C^k`` of hop ``k`` (1-based)."""
        self._check_hop(k)
        return self.embeddings[k] if self.weight_tying == "adjacent" else self.embeddings[1]

    @property
    def B(self) -> nn.Linear:
        """The question map ``B`` (adjacent tying: ``A^1``)."""
        return self.embeddings[0] if self.weight_tying == "adjacent" else self.embeddings[2]

    def T_A(self, k: int) -> torch.Tensor | None:
        """``T_A^k`` (memory_size, d) of hop ``k``; None without temporal encoding."""
        self._check_hop(k)
        if not self.temporal_encoding:
            return None
        return self.temporal[k - 1] if self.weight_tying == "adjacent" else self.temporal[0]

    def T_C(self, k: int) -> torch.Tensor | None:
        """``T_C^k`` (memory_size, d) of hop ``k``; None without temporal encoding."""
        self._check_hop(k)
        if not self.temporal_encoding:
            return None
        return self.temporal[k] if self.weight_tying == "adjacent" else self.temporal[1]

    def _check_hop(self, k: int) -> None:
        if not 1 <= k <= self.hops:
            raise ValueError(f"hop k must be in 1..{self.hops}, got {k!r}")

    def _next_query(self, u: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        # u^{k+1} = u^k + o^k (adjacent) or H u^k + o^k (layer-wise), section 2.2.
        return (u if self.H is None else self.H(u)) + o

    def _answer(self, u: torch.Tensor) -> torch.Tensor:
        return u if self.output is None else self.output(u)

    def _check_input(self, x: torch.Tensor, ndim: int, what: str) -> None:
        if x.ndim != ndim or x.shape[-1] != self.input_size:
            raise ValueError(
                f"memn2n input must be {what} with F = input_size = {self.input_size}, "
                f"got {tuple(x.shape)}"
            )

    # --- the Core contract ----------------------------------------------------------------

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> MemN2NState:
        N = self.memory_size
        return MemN2NState(
            torch.zeros(batch_size, N, self.input_size, device=device),
            torch.zeros(batch_size, N, dtype=torch.bool, device=device),
            torch.zeros(batch_size, self.hops, N, device=device),
        )

    def memory_weights(self, state: MemN2NState) -> dict[str, torch.Tensor]:
        """``{"attention": p}``, (B, hops, memory_size): each hop's attention over the
        slots (slot 0 the most recent sentence) at the last step."""
        return {"attention": state.attention}

    def forward(self, x: torch.Tensor, state: MemN2NState) -> tuple[torch.Tensor, MemN2NState]:
        self._check_input(x, 2, "(B, F)")
        memory, filled = state.memory, state.filled
        u = self.B(x)  # u^1 = B x_t, the question
        attention = []
        for k in range(1, self.hops + 1):
            # p^k_i = softmax_i(u . A^k x_i (+ u . T_A^k(i))), the score taken as
            # (u A^k) . x_i: one (B, F) query against the raw memory, not A^k on all of it.
            logits = torch.bmm((u @ self.A(k).weight)[:, None], memory.mT)[:, 0]  # (B, N)
            if self.temporal_encoding:
                logits = logits + u @ self.T_A(k).T  # slot i is recency i: u . T_A^k(i)
            p = _attend(logits, filled)
            # o^k = sum_i p_i C^k x_i (+ sum_i p_i T_C^k(i)) = C^k (sum_i p_i x_i) (+ p T_C^k).
            o = self.C(k)(torch.bmm(p[:, None], memory)[:, 0])
            if self.temporal_encoding:
                o = o + p @ self.T_C(k)
            u = self._next_query(u, o)
            attention.append(p)
        return self._answer(u), MemN2NState(
            *self._write(x, memory, filled), torch.stack(attention, 1)
        )

    def _write(
        self, x: torch.Tensor, memory: torch.Tensor, filled: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x_t`` into slot 0, the rest one slot older (the oldest drops out); with random
        noise in training, sometimes two slots older, an empty slot between."""
        new = torch.ones_like(filled[:, :1])
        # The memory's rows cat as flat (B, N F) rows: one contiguous copy per row, as fast as
        # a clone (a cat over (B, N, F) slots runs about 2.5x slower on the CPU).
        F = self.input_size
        if not (self.training and self.random_noise > 0.0):
            shifted = torch.cat([x, memory.flatten(1)[:, :-F]], 1).unflatten(1, (-1, F))
            return shifted, torch.cat([new, filled[:, :-1]], 1)
        # Rows with noise hold x_t, an empty slot, M_0..M_{N-3}; the others x_t, M_0..M_{N-2}:
        # slot 1 and slots 2.. chosen per row, in one pass over the memory.
        noise = torch.rand(x.shape[0], device=x.device) < self.random_noise
        N = self.memory_size
        second = torch.where(noise[:, None], 0.0, memory[:, 0])
        older = torch.where(noise[:, None, None], memory[:, :-2], memory[:, 1:-1])
        second_filled = ~noise[:, None] & filled[:, :1]
        older_filled = torch.where(noise[:, None], filled[:, :-2], filled[:, 1:-1])
        return (
            torch.cat([x, second, older.flatten(1)], 1).unflatten(1, (-1, F))[:, :N],
            torch.cat([new, second_filled, older_filled], 1)[:, :N],
        )

    def sequence(
        self, x: torch.Tensor, state: MemN2NState, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, MemN2NState]:
        """All L steps of S sequences at once, exactly as stepping :meth:`forward`.

        Lay each sequence's memories and inputs out oldest first,
        ``z = [M_{N-1}, ..., M_0, x_0, ..., x_{L-1}]`` (N + L raw inputs): before writing
        ``x_t``, slot i holds ``z[N + t - 1 - i]``, a window. Each hop scores every step's
        query against all of ``z`` at once (``(u_t A^k) . z_j``), takes each step's N window
        entries, and reads ``C^k (sum_i p_ti z[window(t, i)])``, as :meth:`forward` does.
        (Random noise in training draws per step: it steps.)
        """
        if self.training and self.random_noise > 0.0:
            return super().sequence(x, state, lengths)
        self._check_input(x, 3, "(L, S, F)")
        L, S, _ = x.shape
        N = self.memory_size
        z = torch.cat([state.memory.flip(1), x.transpose(0, 1)], 1)  # (S, N + L, F)
        z_filled = torch.cat([state.filled.flip(1), state.filled.new_ones(S, L)], 1)
        t = torch.arange(L, device=x.device)
        i = torch.arange(N, device=x.device)
        window = N + t[:, None] - 1 - i[None, :]  # (L, N): slot i at step t is z[window]
        index = window.expand(S, L, N)
        filled = z_filled[:, window]  # (S, L, N)

        u = self.B(x.transpose(0, 1))  # (S, L, d)
        zT = z.mT
        attention = []
        for k in range(1, self.hops + 1):
            scores = torch.bmm(u @ self.A(k).weight, zT)  # (u_t A^k) . z_j: (S, L, N + L)
            logits = scores.gather(2, index)
            if self.temporal_encoding:
                logits = logits + u @ self.T_A(k).T  # u_t . T_A^k(i)
            p = _attend(logits, filled)  # (S, L, N)
            # o_t = C^k sum_i p_ti z[window(t, i)] (+ sum_i p_ti T_C^k(i)): p scattered back
            # onto z's positions (a window's positions are distinct).
            read = torch.bmm(torch.zeros_like(scores).scatter(2, index, p), z)  # (S, L, F)
            o = self.C(k)(read)
            if self.temporal_encoding:
                o = o + p @ self.T_C(k)
            u = self._next_query(u, o)
            attention.append(p)
        h = self._answer(u).transpose(0, 1)  # (L, S, hidden)

        # The state after each sequence's last step t = length - 1: slot i holds
        # z[N + length - 1 - i], the attention is that step's.
        last = torch.full((S,), L - 1, device=x.device)
        if lengths is not None:
            last = lengths.to(device=x.device, dtype=torch.long) - 1
        after = N + last[:, None] - i[None, :]  # (S, N)
        memory = z.gather(1, after[..., None].expand(S, N, z.shape[-1]))
        at_last = last.view(S, 1, 1, 1).expand(S, self.hops, 1, N)
        p_last = torch.stack(attention, 1).gather(2, at_last).squeeze(2)  # (S, K, N)
        return h, MemN2NState(memory, z_filled.gather(1, after), p_last)
