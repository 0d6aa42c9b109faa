"""Composed policies: an encoder, a core and heads, as one policy configuration describes.

A policy is composed, not written per task (docs/architecture.md, "A core"): an
*encoder* for the observation space (:mod:`cogrl.nn.encoders`), a *core* that carries
memory across steps
(:mod:`cogrl.nn.cores`) and *heads* for the action space (:mod:`cogrl.nn.distributions`).
:class:`PolicyConfig` is the one description every learner shares (``policy=`` in Python,
``--set policy.NAME=VALUE`` on the command line):

- :class:`Torso`: encoder then core, one step or a whole (T, B) sequence.
- :class:`ActorCriticPolicy` (PPO, A2C, REINFORCE): action head and value head.
- :class:`QNetwork` (DQN): one Q-value per discrete action.
- :class:`RAMPolicy`: the recurrent attention model's glimpse network, core, location
  head, classifier and baseline (Mnih et al. 2014).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from cogrl.checks import check_bools, check_choice, check_int, check_number
from cogrl.nn.cores import Core, IdentityCore, core_class, core_hyperparameters, make_core
from cogrl.nn.distributions import (
    CategoricalHead,
    TanhGaussianHead,
    ValueHead,
    make_action_head,
)
from cogrl.nn.encoders import ACTIVATIONS, ENCODERS, GlimpseNetwork, build_encoder
from cogrl.nn.sequences import Segments
from cogrl.nn.state import State, index_state, reset_state

__all__ = [
    "ActorCriticPolicy",
    "DRAMPolicy",
    "PolicyConfig",
    "QNetwork",
    "RAMPolicy",
    "Torso",
    "flatten_time",
    "make_torso",
    "orthogonal_init",
]

Observation = torch.Tensor | Mapping[str, torch.Tensor]


@dataclass
class PolicyConfig:
    """What a policy is made of; every learner has one as its ``policy`` hyperparameter.

    - ``encoder``: ``"auto"`` (chosen from the observation space: MLP, CNN, embeddings,
      every key of a ``Dict``) or a registered name such as ``"glimpse"`` (RAM's glimpse
      network) or ``"bow"`` (sentences as position-encoded bags of words, MemN2N's);
      ``hidden_sizes``: the MLP's layer widths, and ``hidden_sizes[-1]`` the
      feature width of the other encoders; ``activation``: ``"tanh"`` or ``"relu"``;
      ``glimpse_hidden``, ``location_hidden``: the glimpse network's ``h_g`` and ``h_l``.
    - ``core``: a registered core (``"none"``, ``"rnn"``, ``"gru"``, ``"lstm"``, the
      memory cores ``"ntm"``, ``"dnc"``, ``"memn2n"``, or a user's, also as
      ``"module:name"``); ``core_size``: the width of its output;
      ``core_kwargs``: the core's own hyperparameters. Given flat (``policy={"core":
      "ntm", "memory_size": 64}``, ``--set policy.memory_size=64``), a name the chosen core
      takes lands in ``core_kwargs``.
    - ``share_torso``: one encoder and core for actor and critic, or one each (as SB3's
      and CleanRL's MLP policies); ``ortho_init``: orthogonal initialisation (SB3, CleanRL).
    - heads: ``log_std_init`` (Gaussian head for ``Box`` actions), ``location_std`` (RAM's
      location head).
    """

    encoder: str = "auto"
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "tanh"
    glimpse_hidden: int = 128
    location_hidden: int = 128
    core: str = "none"
    core_size: int = 128
    core_kwargs: dict[str, Any] = field(default_factory=dict)
    share_torso: bool = False
    ortho_init: bool = False
    log_std_init: float = 0.0
    location_std: float = 0.2

    def __post_init__(self) -> None:
        check_choice("policy.encoder", self.encoder, ENCODERS)
        if not isinstance(self.hidden_sizes, (list, tuple)):
            raise ValueError(
                f"policy.hidden_sizes must be a list of ints, got {self.hidden_sizes!r}"
            )
        for size in self.hidden_sizes:
            check_int("policy.hidden_sizes entries", size)
        self.hidden_sizes = [int(s) for s in self.hidden_sizes]
        check_choice("policy.activation", self.activation, ACTIVATIONS)
        for name in ("glimpse_hidden", "location_hidden", "core_size"):
            check_int(f"policy.{name}", getattr(self, name))
        try:
            core_class(self.core)
        except ValueError as e:
            raise ValueError(f"policy.core: {e}") from None
        if not isinstance(self.core_kwargs, Mapping):
            raise ValueError(f"policy.core_kwargs must be a mapping, got {self.core_kwargs!r}")
        own = core_hyperparameters(self.core)
        unknown = sorted(set(self.core_kwargs) - set(own))
        if unknown:
            raise ValueError(
                f"unknown hyperparameter(s) {unknown} for core {self.core!r}; it takes "
                f"{sorted(own)}"
            )
        self.core_kwargs = dict(self.core_kwargs)
        check_bools(self, "share_torso", "ortho_init")
        check_number("policy.log_std_init", self.log_std_init, low=-math.inf)
        check_number("policy.location_std", self.location_std, low_open=True)

    @property
    def recurrent(self) -> bool:
        return self.core != "none"

    def replace(self, values: Mapping[str, Any]) -> PolicyConfig:
        """A copy with ``values`` set; a name that is neither a field nor a hyperparameter
        of the (new) core is a ValueError listing both."""
        values = dict(values)
        known = {f.name for f in fields(self)}
        current = asdict(self)
        core = values.get("core", current["core"])
        if core != current["core"]:
            current["core_kwargs"] = {}  # the old core's own settings do not carry over
        core_kwargs = {**current["core_kwargs"], **dict(values.pop("core_kwargs", {}) or {})}
        rest = {k: v for k, v in values.items() if k not in known}
        if rest:
            try:
                own = core_hyperparameters(core)
            except ValueError as e:
                raise ValueError(f"policy.core: {e}") from None
            unknown = sorted(set(rest) - set(own))
            if unknown:
                raise ValueError(
                    f"unknown policy setting(s) {unknown}; expected some of {sorted(known)} "
                    f"or a hyperparameter of core {core!r}: {sorted(own)}"
                )
            core_kwargs.update(rest)
        merged = {**current, **{k: v for k, v in values.items() if k in known}}
        merged["core_kwargs"] = core_kwargs
        return PolicyConfig(**merged)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def flatten_time(obs: Observation) -> Observation:
    """(T, B, ...) -> (T * B, ...), also inside dicts."""
    if isinstance(obs, Mapping):
        return {k: v.flatten(0, 1) for k, v in obs.items()}
    return obs.flatten(0, 1)


class Torso(nn.Module):
    """An encoder followed by a core: ``h_t, state_t = core(encoder(obs_t), state_{t-1})``.

    :meth:`step` runs one time step (B, ...); :meth:`sequence` runs (T, B, ...) observations
    from a state, restarting it where ``episode_start`` is true. The encoder runs over all
    T * B observations at once; the core runs over the segments between episode starts
    all together (:mod:`cogrl.nn.sequences`; fused ``nn.GRU``/``nn.LSTM`` kernels for the
    built-in cores).
    """

    def __init__(self, encoder: nn.Module, core: Core) -> None:
        super().__init__()
        self.encoder = encoder
        self.core = core
        self.hidden_size = core.hidden_size
        self.recurrent = not isinstance(core, IdentityCore)

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        return self.core.initial_state(batch_size, device)

    def memory_weights(self, state: State) -> dict[str, torch.Tensor]:
        """The core's weightings over its memory in ``state`` (:meth:`Core.memory_weights`)."""
        return self.core.memory_weights(state)

    def step(
        self, obs: Observation, state: State, episode_start: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State]:
        if episode_start is not None and self.recurrent:
            state = self.core.reset(state, episode_start)
        return self.core(self.encoder(obs), state)

    def sequence(
        self, obs: Observation, state: State, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, State]:
        """``h`` (T, B, hidden) for observations (T, B, ...), and the state after step T."""
        T, B = episode_start.shape
        x = self.encoder(flatten_time(obs))
        if not self.recurrent:
            return x.view(T, B, -1), state
        segments = Segments.split(episode_start)
        h, last = self.segments(x, index_state(state, segments.column), segments)
        return h.view(T, B, -1), index_state(last, segments.last())

    def segments(
        self, x: torch.Tensor, state: State, segments: Segments, final: bool = True
    ) -> tuple[torch.Tensor, State]:
        """Run the core over ``segments``: ``x`` (n, F) holds the encoded steps in the
        segments' ``rows`` order, ``state`` (S, ...) the state each segment goes on from
        (the fresh ones start from the initial state instead). Returns ``h`` (n, hidden)
        and, if ``final``, the state after each segment's last step (S, ...)."""
        start = self.core.reset(state, segments.fresh)
        lengths = segments.lengths if final else None
        h, last = self.core.sequence(segments.pad(x), start, lengths)
        return segments.unpad(h), last


def make_torso(observation_space: spaces.Space, config: PolicyConfig) -> Torso:
    """The encoder ``config.encoder`` for ``observation_space`` followed by the core
    ``config.core`` of ``config.core_size`` with its own ``config.core_kwargs``."""
    encoder = build_encoder(config.encoder, observation_space, config)
    core = make_core(config.core, encoder.output_size, config.core_size, **config.core_kwargs)
    return Torso(encoder, core)


def orthogonal_init(module: nn.Module, gain: float) -> None:
    """Orthogonal weights with ``gain`` and zero biases for every linear and convolutional
    layer of ``module``."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.orthogonal_(layer.weight, gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _config(config: PolicyConfig | None, overrides: Mapping[str, Any]) -> PolicyConfig:
    return (config or PolicyConfig()).replace(overrides) if overrides else config or PolicyConfig()


class ActorCriticPolicy(nn.Module):
    """An actor (action head) and a critic (value head) over torsos: one each by default
    (as SB3's and CleanRL's MLP policies), or shared (``share_torso``).

    The recurrent state is ``(actor_state, critic_state)`` in both cases (the critic's is
    an empty tensor when the torso is shared). Settings come from ``config`` with
    ``overrides`` (fields of :class:`PolicyConfig`) on top. ``value_parts > 1`` gives the
    critic one value per part of a factored reward: values are then (B, value_parts).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        config: PolicyConfig | None = None,
        value_parts: int = 1,
        **overrides: Any,
    ) -> None:
        super().__init__()
        self.config = config = _config(config, overrides)
        self.actor_torso = make_torso(observation_space, config)
        self.critic_torso = None if config.share_torso else make_torso(observation_space, config)
        hidden = self.actor_torso.hidden_size
        self.action_head = make_action_head(action_space, hidden, config.log_std_init)
        self.value_head = ValueHead(hidden, value_parts)
        self.recurrent = self.actor_torso.recurrent
        if config.ortho_init:
            # Orthogonal initialisation as in the PPO paper's code, SB3 and CleanRL: gain
            # sqrt(2) in the encoders, 0.01 for the action head (a near-uniform first
            # policy), 1 for the value head; zero biases. Recurrent cores keep theirs.
            for torso in (self.actor_torso, self.critic_torso):
                if torso is not None:
                    orthogonal_init(torso.encoder, math.sqrt(2))
            orthogonal_init(self.action_head, 0.01)
            orthogonal_init(self.value_head, 1.0)

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        critic = (
            torch.zeros(batch_size, 0, device=device)
            if self.critic_torso is None
            else self.critic_torso.initial_state(batch_size, device)
        )
        return (self.actor_torso.initial_state(batch_size, device), critic)

    def memory_weights(self, state: State) -> dict[str, torch.Tensor]:
        """What the actor's core attends to in its memory (see :meth:`Core.memory_weights`)."""
        return self.actor_torso.memory_weights(state[0])

    def step(self, obs, state, episode_start=None):
        """One step: action parameters (B, ...), values (B,) and the next state."""
        h, actor_state = self.actor_torso.step(obs, state[0], episode_start)
        if self.critic_torso is None:
            hv, critic_state = h, state[1]
        else:
            hv, critic_state = self.critic_torso.step(obs, state[1], episode_start)
        return self.action_head(h), self.value_head(hv), (actor_state, critic_state)

    def sequence(self, obs, state, episode_start):
        """(T, B) steps: action parameters (T, B, ...), values (T, B) and the last state."""
        h, actor_state = self.actor_torso.sequence(obs, state[0], episode_start)
        if self.critic_torso is None:
            hv, critic_state = h, state[1]
        else:
            hv, critic_state = self.critic_torso.sequence(obs, state[1], episode_start)
        return self.action_head(h), self.value_head(hv), (actor_state, critic_state)

    def segments(self, obs, state, segments):
        """Action parameters (n, ...) and values (n,) of the steps of ``segments`` (see
        :meth:`Torso.segments`); ``obs`` (n, ...) are their observations, ``state`` the
        ``(actor, critic)`` state each segment goes on from."""
        h, _ = self.actor_torso.segments(self.actor_torso.encoder(obs), state[0], segments, False)
        if self.critic_torso is None:
            hv = h
        else:
            torso = self.critic_torso
            hv, _ = torso.segments(torso.encoder(obs), state[1], segments, False)
        return self.action_head(h), self.value_head(hv)


class QNetwork(nn.Module):
    """Q-values for ``Discrete`` actions: ``Q(s, .) = Linear(torso(s))`` (B, n)."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        config: PolicyConfig | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"Q-learning needs a Discrete action space, got {action_space}")
        self.config = config = _config(config, overrides)
        self.torso = make_torso(observation_space, config)
        self.q = nn.Linear(self.torso.hidden_size, int(action_space.n))
        self.start = int(action_space.start)
        self.recurrent = self.torso.recurrent

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        return self.torso.initial_state(batch_size, device)

    def memory_weights(self, state: State) -> dict[str, torch.Tensor]:
        return self.torso.memory_weights(state)

    def step(self, obs, state, episode_start=None):
        h, state = self.torso.step(obs, state, episode_start)
        return self.q(h), state

    def sequence(self, obs, state, episode_start):
        h, state = self.torso.sequence(obs, state, episode_start)
        return self.q(h), state


class RAMPolicy(nn.Module):
    """The recurrent attention model's networks (Mnih et al. 2014), from shared parts.

    ``g_t = f_g(glimpse_t, l_{t-1})`` (encoder), ``h_t = f_h(h_{t-1}, g_t)`` (core),
    ``l_t ~ f_l(h_t)`` (:class:`~cogrl.nn.distributions.TanhGaussianHead`),
    ``logits_t = f_a(h_t)`` (classifier) and ``b_t = baseline(h_t)``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        n_classes: int,
        location_size: int = 2,
        config: PolicyConfig | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        self.config = config = _config(config, overrides)
        self.torso = make_torso(observation_space, config)
        hidden = self.torso.hidden_size
        self.location = TanhGaussianHead(hidden, location_size, config.location_std)
        self.classifier = CategoricalHead(hidden, n_classes)
        self.baseline = ValueHead(hidden)

    def initial_state(self, batch_size: int, device: torch.device | str) -> State:
        return self.torso.initial_state(batch_size, device)

    def memory_weights(self, state: State) -> dict[str, torch.Tensor]:
        return self.torso.memory_weights(state)

    def forward(
        self, obs: Any, state: State, episode_start: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State]:
        """One step of the encoder and core: ``h_t`` and the next state."""
        return self.torso.step(obs, state, episode_start)

    @staticmethod
    def class_scores(logits: torch.Tensor) -> torch.Tensor:
        """The action's class scores ``2 softmax(logits) - 1``: in [-1, 1], argmax unchanged."""
        return 2.0 * torch.softmax(logits, dim=-1) - 1.0


class DRAMPolicy(nn.Module):
    """The deep recurrent attention model's networks (Ba, Mnih and Kavukcuoglu 2015, 3).

    - Glimpse network: ``g_n = G_image(x_n) * G_loc(l_n)`` (:class:`GlimpseNetwork` with
      ``combine="product"``); ``G_image`` is one fully connected layer, or with
      ``glimpse_image="conv"`` and ``patches=(k, g)`` the paper's three convolutions and a
      fully connected layer.
    - Recurrent network of two LSTM layers: ``r1_n = R1(g_n, r1_{n-1})`` feeds the
      classification network, ``r2_n = R2(r1_n, r2_{n-1})`` the emission network. With
      ``layers=1``, one LSTM serves both (RAM's single core, as the paper's RAM baseline).
    - Context network: a small CNN on the ``context`` observation (the whole canvas,
      coarse) gives ``r2_0 = tanh(Context(x_coarse))``, the top layer's initial state, so
      that the first glimpse location is chosen from a view of the whole image.
    - Emission network: ``l_{n+1} ~ N(E(r2_n), std)``, squashed by tanh
      (:class:`~cogrl.nn.distributions.TanhGaussianHead`).
    - Classification network: ``logits = C(r1_n)`` (none with ``n_classes=None``, for a
      task that names no class); the baseline ``b_n = B(r2_n)`` (on a detached ``r2_n``).

    Visual search (``cogrl/VisualSearch-v0``) is not in the paper: there the observation
    holds a ``target`` cue (the one-hot class to find), and the policy takes it, when
    present, in two places, because the two layers need it for different things:

    - the first state: ``r2_0 = tanh(Context(x_coarse) + W_cue c)`` (``tanh(W_cue c)``
      without a context network; at one layer ``r1_0 = r2_0``). The emission network, which
      steers, then picks the first saccade knowing what it looks for, and the cue is held
      in ``r2``'s memory for the declaration;
    - a gain on the glimpse feature: ``g_n = G_image(x_n) * G_loc(l_n) * 2 sigmoid(G_cue(c))``,
      feature-based attention as in Treue and Martinez-Trujillo's (1999) feature-similarity
      gain. The recognising layer ``R1`` then gets features already weighted by what is
      searched for, so "the target is here" is a readout of ``g_n``, not a product of the
      glimpse's class and a cue that the LSTM would have to learn to form. ``G_cue``
      starts at zero: the gain starts at 1, as DRAM's glimpse network.

    The recurrent state is ``(h1, c1, h2, c2, t)``: ``t`` (B,) counts the steps of the
    episode, so the context network and the cue set ``r2`` at ``t = 0`` and a learner knows
    when to emit. At one layer, ``h2 = h1``.
    """

    #: The observation key of the search cue.
    CUE_KEY = "target"

    def __init__(
        self,
        observation_space: spaces.Dict,
        n_classes: int | None,
        hidden_size: int = 256,
        glimpse_hidden: int = 128,
        location_hidden: int = 128,
        location_std: float = 0.2,
        layers: int = 2,
        context_network: bool = True,
        glimpse_image: str = "fc",
        patches: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        check_choice("layers", layers, {1, 2})
        keys = set(getattr(observation_space, "spaces", {}))
        needed = {"glimpse", "location"} | ({"context"} if context_network else set())
        if not needed <= keys:
            raise ValueError(
                f"DRAM needs the observation keys {sorted(needed)}, got {sorted(keys)}"
            )
        self.hidden_size, self.layers = hidden_size, layers
        self.glimpse = GlimpseNetwork(
            observation_space["glimpse"].shape[0],
            observation_space["location"].shape[0],
            glimpse_hidden,
            location_hidden,
            hidden_size,
            combine="product",
            image=glimpse_image,
            patches=patches,
        )
        self.r1 = nn.LSTMCell(hidden_size, hidden_size)
        self.r2 = nn.LSTMCell(hidden_size, hidden_size) if layers == 2 else None
        self.context = None
        if context_network:
            side = math.isqrt(observation_space["context"].shape[0])
            if side * side != observation_space["context"].shape[0]:
                raise ValueError(
                    f"the context must be a flat square image, got {side} x {side} != "
                    f"{observation_space['context'].shape[0]} values"
                )
            self.context_side = side
            # Its output is r2_0 before the tanh (first_state adds the cue's part).
            self.context = nn.Sequential(
                nn.Unflatten(1, (1, side, side)),
                nn.Conv2d(1, 16, 5, padding=2),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(4),
                nn.Flatten(),
                nn.Linear(32 * 16, hidden_size),
            )
        self.cue = self.cue_gain = None
        if self.CUE_KEY in keys:
            cue_space = observation_space[self.CUE_KEY]
            if not (isinstance(cue_space, spaces.Box) and len(cue_space.shape) == 1):
                raise ValueError(
                    f"DRAM reads the observation {self.CUE_KEY!r} as a flat search cue (a "
                    f"one-hot Box), got {cue_space}"
                )
            n_cues = cue_space.shape[0]
            self.cue = nn.Linear(n_cues, hidden_size)  # W_cue: its part of r2_0
            self.cue_gain = nn.Linear(n_cues, hidden_size)  # G_cue: the glimpse's gain
            nn.init.zeros_(self.cue_gain.weight)
            nn.init.zeros_(self.cue_gain.bias)
        self.location = TanhGaussianHead(hidden_size, 2, location_std)
        self.classifier = None if n_classes is None else CategoricalHead(hidden_size, n_classes)
        self.baseline = ValueHead(hidden_size)

    def initial_state(self, batch_size: int, device: torch.device | str) -> State:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device)
        t = torch.zeros(batch_size, dtype=torch.long, device=device)
        return (zeros, zeros, zeros, zeros, t)

    def memory_weights(self, state: State) -> dict[str, torch.Tensor]:
        return {}

    def first_state(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``r2_0`` (B, hidden): ``tanh`` of the context network's output plus the cue's
        ``W_cue c``, of whichever of the two this policy has."""
        drive = torch.zeros((), device=obs["location"].device)
        if self.context is not None:
            drive = drive + self.context(obs["context"])
        if self.cue is not None:
            drive = drive + self.cue(obs[self.CUE_KEY])
        return torch.tanh(drive)

    def forward(
        self,
        obs: Mapping[str, torch.Tensor],
        state: State,
        episode_start: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, State]:
        """One glimpse: ``(r1_n, r2_n)`` (each (B, hidden)) and the next state."""
        if episode_start is not None:
            fresh = self.initial_state(episode_start.shape[0], episode_start.device)
            state = reset_state(state, episode_start, fresh)
        h1, c1, h2, c2, t = state
        first = (t == 0)[:, None]
        # r2_0 from the context network and the cue, at each episode's first step. On the
        # CPU, where asking is free, it runs only at steps where some episode starts.
        sets_first = self.context is not None or self.cue is not None
        if sets_first and (first.is_cuda or bool(first.any())):
            h2 = torch.where(first, self.first_state(obs), h2)
            if self.r2 is None:
                h1 = torch.where(first, h2, h1)
        g = self.glimpse(obs)
        if self.cue_gain is not None:
            g = g * (2.0 * torch.sigmoid(self.cue_gain(obs[self.CUE_KEY])))
        h1, c1 = self.r1(g, (h1, c1))
        if self.r2 is None:
            h2, c2 = h1, c1
        else:
            h2, c2 = self.r2(h1, (h2, c2))
        return h1, h2, (h1, c1, h2, c2, t + 1)

    @staticmethod
    def class_scores(logits: torch.Tensor) -> torch.Tensor:
        """The action's class scores ``2 softmax(logits) - 1``: in [-1, 1], argmax unchanged."""
        return RAMPolicy.class_scores(logits)
