"""Policy parts every cogrl learner composes: encoders, cores and heads.

A policy is composed, not written per task (see DESIGN.md): an *encoder* chosen from the
observation space (:func:`make_encoder`), a *core* that carries memory across steps
(:func:`make_core`), and *heads* chosen from the action space. Names follow Mnih, Heess,
Graves and Kavukcuoglu (2014), "Recurrent Models of Visual Attention" (RAM):

- :class:`GlimpseNetwork` ``f_g``: the glimpse feature ``g_t`` from the retina's patches
  ``rho(x_t, l_{t-1})`` and their location ``l_{t-1}``.
- cores ``f_h``: ``"none"``, ``"rnn"`` (the paper's ``h_t = ReLU(Linear(h_{t-1}) +
  Linear(g_t))``), ``"gru"`` and ``"lstm"``, all stepping one time step at a time with an
  explicit recurrent state that learners reset at episode starts.
- heads: :class:`GaussianLocationHead` ``f_l`` (where to look next),
  :class:`CategoricalHead` (e.g. the classifier ``f_a``) and :class:`ValueHead` (e.g. the
  baseline ``b_t``).

Every part is an ``nn.Module`` working on batches: ``(B, ...)`` in, ``(B, ...)`` out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

__all__ = [
    "CORES",
    "CategoricalHead",
    "Core",
    "GRUCore",
    "GaussianLocationHead",
    "GlimpseNetwork",
    "IdentityCore",
    "LSTMCore",
    "MLPEncoder",
    "RNNCore",
    "State",
    "ValueHead",
    "make_core",
    "make_encoder",
    "reset_state",
]

#: A core's recurrent state: a tensor (B, ...) or a tuple of them (the LSTM's (h, c)).
State = torch.Tensor | tuple[torch.Tensor, ...]
Observation = torch.Tensor | Mapping[str, torch.Tensor]


# ---------------------------------------------------------------------------------------
# Encoders


class GlimpseNetwork(nn.Module):
    """RAM's glimpse network ``f_g``: the feature ``g_t`` of a glimpse and its location.

    ``h_g = ReLU(Linear(glimpse))``, ``h_l = ReLU(Linear(location))``,
    ``g = ReLU(Linear(h_g) + Linear(h_l))``; the paper's sizes are 128, 128 and 256.
    Takes the glimpse tasks' observation dict ``{"glimpse": (B, k*g*g), "location": (B, 2)}``.
    """

    def __init__(
        self,
        glimpse_size: int,
        location_size: int = 2,
        glimpse_hidden: int = 128,
        location_hidden: int = 128,
        output_size: int = 256,
    ) -> None:
        super().__init__()
        self.glimpse_fc = nn.Linear(glimpse_size, glimpse_hidden)
        self.location_fc = nn.Linear(location_size, location_hidden)
        self.glimpse_out = nn.Linear(glimpse_hidden, output_size)
        self.location_out = nn.Linear(location_hidden, output_size)
        self.output_size = output_size

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        h_g = F.relu(self.glimpse_fc(obs["glimpse"]))
        h_l = F.relu(self.location_fc(obs["location"]))
        return F.relu(self.glimpse_out(h_g) + self.location_out(h_l))


ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


class MLPEncoder(nn.Module):
    """A multilayer perceptron for flat ``Box`` observations (B, n) -> (B, output)."""

    def __init__(
        self, input_size: int, hidden_sizes: Sequence[int] = (256,), activation: str = "relu"
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}"
            )
        layers: list[nn.Module] = []
        size = input_size
        for hidden in hidden_sizes:
            layers += [nn.Linear(size, hidden), ACTIVATIONS[activation]()]
            size = hidden
        self.net = nn.Sequential(*layers)
        self.output_size = size

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.flatten(1).float())


class CNNEncoder(nn.Module):
    """The Nature-DQN convolutional torso (Mnih et al. 2015) for image observations.

    Takes (B, C, H, W) or, when ``channels_last``, (B, H, W, C); ``uint8`` images are scaled
    to [0, 1]. Three convolutions (32 8x8/4, 64 4x4/2, 64 3x3/1) for images of at least
    36 x 36 pixels, two smaller ones (32 3x3/1, 64 3x3/2) below that, then a linear layer
    to ``output_size``.
    """

    def __init__(self, space: spaces.Box, output_size: int = 256) -> None:
        super().__init__()
        shape = space.shape
        # Channels are the smallest axis: (H, W, C) images are moved to (C, H, W).
        self.channels_last = shape[-1] < shape[0]
        c, h, w = (shape[2], shape[0], shape[1]) if self.channels_last else shape
        self.scale = 1.0 / 255.0 if space.dtype == np.uint8 else 1.0
        if min(h, w) >= 36:
            convs = [nn.Conv2d(c, 32, 8, 4), nn.ReLU(), nn.Conv2d(32, 64, 4, 2), nn.ReLU()]
            convs += [nn.Conv2d(64, 64, 3, 1), nn.ReLU()]
        else:
            convs = [nn.Conv2d(c, 32, 3, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2), nn.ReLU()]
        self.convs = nn.Sequential(*convs, nn.Flatten())
        with torch.no_grad():
            n = self.convs(torch.zeros(1, c, h, w)).shape[1]
        self.fc = nn.Sequential(nn.Linear(n, output_size), nn.ReLU())
        self.output_size = output_size

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.float() * self.scale
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        return self.fc(self.convs(x))


class EmbeddingEncoder(nn.Module):
    """Token ids to vectors: ``Discrete(n)`` (B,) -> (B, d); ``MultiDiscrete(nvec)`` (B, k)
    -> the concatenation of one embedding per position (B, k * d)."""

    def __init__(self, space: spaces.Discrete | spaces.MultiDiscrete, embedding_size: int) -> None:
        super().__init__()
        if isinstance(space, spaces.Discrete):
            nvec, self.start = np.array([space.n]), np.array([space.start])
        else:
            nvec, self.start = space.nvec.reshape(-1), space.start.reshape(-1).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
        # One table for all positions; position i's ids are shifted by offsets[i].
        self.register_buffer(
            "offsets", torch.as_tensor(offsets - self.start, dtype=torch.int64), persistent=False
        )
        self.embedding = nn.Embedding(int(nvec.sum()), embedding_size)
        self.output_size = embedding_size * len(nvec)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        ids = obs.long().reshape(obs.shape[0], -1) + self.offsets
        return self.embedding(ids).flatten(1)


class DictEncoder(nn.Module):
    """A ``Dict`` observation: one encoder per key, their features concatenated (sorted keys)."""

    def __init__(self, encoders: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(dict(sorted(encoders.items())))
        self.output_size = sum(e.output_size for e in self.encoders.values())

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([e(obs[k]) for k, e in self.encoders.items()], dim=-1)


Encoder = GlimpseNetwork | MLPEncoder | CNNEncoder | EmbeddingEncoder | DictEncoder


def make_encoder(
    observation_space: spaces.Space,
    output_size: int = 256,
    glimpse_hidden: int = 128,
    location_hidden: int = 128,
    hidden_sizes: Sequence[int] | None = None,
    activation: str = "relu",
) -> Encoder:
    """The encoder for ``observation_space``; its ``output_size`` is the feature's width.

    - ``Dict`` with flat ``Box`` ``"glimpse"`` and ``"location"``: :class:`GlimpseNetwork`.
    - other ``Dict``: :class:`DictEncoder` over the encoders of its entries.
    - flat (1-D) ``Box`` or ``MultiBinary``: :class:`MLPEncoder` with ``hidden_sizes``
      (default: one layer of ``output_size``).
    - ``Box`` of 3 dims (an image, channels first or last): :class:`CNNEncoder`.
    - ``Discrete`` / ``MultiDiscrete`` (token ids): :class:`EmbeddingEncoder`.

    Any other space is a ``ValueError`` that names it.
    """
    sizes = tuple(hidden_sizes) if hidden_sizes is not None else (output_size,)
    if isinstance(observation_space, spaces.Dict):
        entries = observation_space.spaces
        glimpse, location = entries.get("glimpse"), entries.get("location")
        if (
            isinstance(glimpse, spaces.Box)
            and isinstance(location, spaces.Box)
            and len(glimpse.shape) == 1
            and len(location.shape) == 1
        ):
            return GlimpseNetwork(
                glimpse.shape[0], location.shape[0], glimpse_hidden, location_hidden, output_size
            )
        return DictEncoder(
            {
                key: make_encoder(
                    space, output_size, glimpse_hidden, location_hidden, sizes, activation
                )
                for key, space in entries.items()
            }
        )
    if isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1:
        return MLPEncoder(observation_space.shape[0], sizes, activation)
    if isinstance(observation_space, spaces.MultiBinary):
        return MLPEncoder(int(np.prod(observation_space.shape)), sizes, activation)
    if isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 3:
        return CNNEncoder(observation_space, output_size)
    if isinstance(observation_space, (spaces.Discrete, spaces.MultiDiscrete)):
        return EmbeddingEncoder(observation_space, output_size)
    raise ValueError(
        f"no encoder for observation space {observation_space}: expected a flat Box, an "
        "image Box (3 dims), MultiBinary, Discrete, MultiDiscrete, or a Dict of these"
    )


# ---------------------------------------------------------------------------------------
# Cores


def map_state(fn, state):
    """Apply ``fn`` to every tensor of a (possibly nested) recurrent state."""
    if isinstance(state, tuple):
        return tuple(map_state(fn, s) for s in state)
    return fn(state)


def reset_state(state: State, episode_start: torch.Tensor) -> State:
    """``state * (1 - start)``: zero the recurrent state of environments starting an episode.

    ``episode_start`` is a (B,) bool or float tensor; works on tensors and (nested) tuples.
    """
    keep = 1.0 - episode_start.to(torch.float32)
    return map_state(lambda s: s * keep.view(-1, *([1] * (s.ndim - 1))).to(s.dtype), state)


class Core(nn.Module):
    """The recurrent core ``f_h``: one step ``(x_t, state_{t-1}) -> (h_t, state_t)``.

    ``initial_state`` is all zeros, so :meth:`reset` (``state * (1 - start)``) restarts the
    environments where ``episode_start`` is true. ``hidden_size`` is the width of ``h_t``.
    """

    hidden_size: int

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    @staticmethod
    def reset(state: State, episode_start: torch.Tensor) -> State:
        """``state * (1 - episode_start)``: see :func:`reset_state`."""
        return reset_state(state, episode_start)


class IdentityCore(Core):
    """No memory: ``h_t = x_t``. Its state is an empty (B, 0) tensor."""

    def __init__(self, input_size: int, hidden_size: int | None = None) -> None:
        super().__init__()
        self.hidden_size = input_size

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        return torch.zeros(batch_size, 0, device=device)

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        return x, state


class RNNCore(Core):
    """RAM's core network: ``h_t = ReLU(Linear(h_{t-1}) + Linear(g_t))``."""

    def __init__(self, input_size: int, hidden_size: int = 256) -> None:
        super().__init__()
        self.input_to_hidden = nn.Linear(input_size, hidden_size)
        self.hidden_to_hidden = nn.Linear(hidden_size, hidden_size)
        self.hidden_size = hidden_size

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        return torch.zeros(batch_size, self.hidden_size, device=device)

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h = F.relu(self.hidden_to_hidden(state) + self.input_to_hidden(x))
        return h, h


class GRUCore(Core):
    """A gated recurrent unit (Cho et al. 2014); the state is ``h_t``."""

    def __init__(self, input_size: int, hidden_size: int = 256) -> None:
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)
        self.hidden_size = hidden_size

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        return torch.zeros(batch_size, self.hidden_size, device=device)

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h = self.cell(x, state)
        return h, h


class LSTMCore(Core):
    """A long short-term memory (Hochreiter and Schmidhuber 1997); the state is ``(h, c)``."""

    def __init__(self, input_size: int, hidden_size: int = 256) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(input_size, hidden_size)
        self.hidden_size = hidden_size

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device)
        return (zeros, zeros.clone())

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h, c = self.cell(x, state)
        return h, (h, c)


CORES: dict[str, type[Core]] = {
    "none": IdentityCore,
    "rnn": RNNCore,
    "gru": GRUCore,
    "lstm": LSTMCore,
}


def make_core(name: str, input_size: int, hidden_size: int = 256) -> Core:
    """The core ``name`` (one of :data:`CORES`) from ``input_size`` to ``hidden_size``.

    ``"none"`` passes its input through (its ``hidden_size`` is ``input_size``).
    """
    if name not in CORES:
        raise ValueError(f"unknown core {name!r}; expected one of {sorted(CORES)}")
    return CORES[name](input_size, hidden_size)


# ---------------------------------------------------------------------------------------
# Heads

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


class GaussianLocationHead(nn.Module):
    """RAM's location network ``f_l``: where to look next, as a squashed Gaussian.

    ``mean = Linear(h)``; the location is ``l = tanh(u)`` with ``u ~ N(mean, std^2 I)``, so it
    lies in (-1, 1). ``std`` is a hyperparameter (an attribute a learner may anneal, not a
    weight). The log-probability is that of the location actually sampled (change of
    variables): ``log p(l) = log N(u; mean, std) - sum log(1 - tanh(u)^2)``, with
    ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))`` computed without cancellation.
    The deterministic location is ``tanh(mean)``.

    In float32, ``tanh(u)`` rounds to exactly +-1 for ``|u| > 9``; such locations are moved
    one float32 step inside, to ``+-(1 - 2^-24)``, so every location lies strictly in
    (-1, 1). The log-probability stays that of ``u`` (it is not clamped, so its gradient
    keeps pulling a runaway mean back); the two differ only in that rounding.
    """

    #: The largest float32 below 1: the bound locations are kept within.
    LIMIT = 1.0 - 2.0**-24

    def __init__(self, input_size: int, location_size: int = 2, std: float = 0.2) -> None:
        super().__init__()
        if not (isinstance(std, (int, float)) and math.isfinite(std) and std > 0):
            raise ValueError(f"std must be a finite number > 0, got {std!r}")
        self.fc = nn.Linear(input_size, location_size)
        self.std = float(std)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """The mean ``(B, location_size)`` of the pre-tanh Gaussian."""
        return self.fc(h)

    def sample(
        self, h: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A location ``l = tanh(u)`` and its log-probability ``log p(l)`` (B,).

        The sample is not differentiable (REINFORCE); the log-probability is, w.r.t. the mean.
        """
        mean = self(h)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        u = mean.detach() + self.std * noise
        return self.squash(u), self.log_prob_pre_tanh(mean, u)

    def squash(self, u: torch.Tensor) -> torch.Tensor:
        """``tanh(u)``, kept strictly inside (-1, 1)."""
        return torch.tanh(u).clamp(-self.LIMIT, self.LIMIT)

    def log_prob_pre_tanh(self, mean: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``log p(tanh(u))`` for pre-tanh values ``u`` (B, d) under ``N(mean, std)``: (B,)."""
        z = (u - mean) / self.std
        log_normal = -0.5 * z.pow(2) - math.log(self.std) - _LOG_SQRT_2PI
        log_det = 2.0 * (_LOG_2 - u - F.softplus(-2.0 * u))  # log(1 - tanh(u)^2)
        return (log_normal - log_det).sum(-1)

    def log_prob(self, mean: torch.Tensor, location: torch.Tensor) -> torch.Tensor:
        """``log p(location)`` (B,) for locations in (-1, 1) (e.g. replayed ones)."""
        u = torch.atanh(location.clamp(-self.LIMIT, self.LIMIT))
        return self.log_prob_pre_tanh(mean, u)

    def deterministic(self, h: torch.Tensor) -> torch.Tensor:
        """The location ``tanh(mean)`` (B, d)."""
        return self.squash(self(h))


class CategoricalHead(nn.Module):
    """Logits ``Linear(h)`` (B, n) of a categorical distribution (e.g. RAM's classifier ``f_a``)."""

    def __init__(self, input_size: int, n: int) -> None:
        super().__init__()
        self.fc = nn.Linear(input_size, n)
        self.n = n

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)

    @staticmethod
    def sample(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Categories (...,) drawn from ``softmax(logits)`` (..., n), by the Gumbel-max trick:
        ``argmax(logits + g)`` with ``g = -log(-log(u))``, ``u ~ U(0, 1)``, is distributed as
        the softmax (and needs fewer kernels than ``torch.multinomial`` on small batches)."""
        u = torch.rand(logits.shape, generator=generator, device=logits.device)
        return (logits - torch.log(-torch.log(u))).argmax(-1)

    @staticmethod
    def log_prob(logits: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """``log softmax(logits)[value]`` (B,)."""
        return torch.log_softmax(logits, -1).gather(-1, value[..., None].long()).squeeze(-1)

    @staticmethod
    def entropy(logits: torch.Tensor) -> torch.Tensor:
        log_p = torch.log_softmax(logits, -1)
        return -(log_p.exp() * log_p).sum(-1)


class ValueHead(nn.Module):
    """A scalar per row, ``Linear(h)`` (B,): a state value or RAM's baseline ``b_t``."""

    def __init__(self, input_size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(input_size, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h).squeeze(-1)


# ---------------------------------------------------------------------------------------
# Action heads: one per kind of action space, all with the same methods, so that a learner
# works with any of them. ``forward(h)`` gives the distribution's parameters; the other
# methods take those parameters.


class ActionHead(nn.Module):
    """A distribution over actions given ``h``: ``params = head(h)``; then ``sample``,
    ``log_prob``, ``entropy`` and ``mode`` (the deterministic action) on ``params``."""

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None):
        raise NotImplementedError

    def log_prob(self, params: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class CategoricalActionHead(ActionHead):
    """``Discrete(n)``: logits ``Linear(h)`` (B, n); actions (B,) int64 (with the space's start)."""

    def __init__(self, input_size: int, n: int, start: int = 0) -> None:
        super().__init__()
        self.fc = nn.Linear(input_size, n)
        self.start = int(start)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)

    def sample(self, params, generator=None):
        return CategoricalHead.sample(params, generator) + self.start

    def log_prob(self, params, action):
        return CategoricalHead.log_prob(params, action - self.start)

    def entropy(self, params):
        return CategoricalHead.entropy(params)

    def mode(self, params):
        return params.argmax(-1) + self.start


class MultiCategoricalActionHead(ActionHead):
    """``MultiDiscrete(nvec)``: independent categoricals, one per position; actions int64
    (B, *shape), ``shape`` being the space's (default: (k,) for k positions)."""

    def __init__(
        self, input_size: int, nvec: Sequence[int], shape: Sequence[int] | None = None
    ) -> None:
        super().__init__()
        self.nvec = [int(n) for n in nvec]
        self.shape = (len(self.nvec),) if shape is None else tuple(int(s) for s in shape)
        self.fc = nn.Linear(input_size, sum(self.nvec))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(params, self.nvec, dim=-1)

    def sample(self, params, generator=None):
        parts = self._split(params)
        action = torch.stack([CategoricalHead.sample(p, generator) for p in parts], -1)
        return action.reshape(*params.shape[:-1], *self.shape)

    def log_prob(self, params, action):
        parts = self._split(params)
        action = action.reshape(*params.shape[:-1], len(self.nvec))
        return sum(CategoricalHead.log_prob(p, action[..., i]) for i, p in enumerate(parts))

    def entropy(self, params):
        return sum(CategoricalHead.entropy(p) for p in self._split(params))

    def mode(self, params):
        action = torch.stack([p.argmax(-1) for p in self._split(params)], -1)
        return action.reshape(*params.shape[:-1], *self.shape)


class BernoulliActionHead(ActionHead):
    """``MultiBinary(n)``: independent Bernoullis, logits ``Linear(h)`` (B, n); actions int8
    (B, *shape), ``shape`` being the space's (default: (n,))."""

    def __init__(self, input_size: int, n: int, shape: Sequence[int] | None = None) -> None:
        super().__init__()
        self.fc = nn.Linear(input_size, n)
        self.shape = (n,) if shape is None else tuple(int(s) for s in shape)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)

    def sample(self, params, generator=None):
        u = torch.rand(params.shape, generator=generator, device=params.device)
        action = (u < torch.sigmoid(params)).to(torch.int8)
        return action.reshape(*params.shape[:-1], *self.shape)

    def log_prob(self, params, action):
        # log p(a) = a log sigmoid(z) + (1 - a) log sigmoid(-z) = -BCE(z, a)
        a = action.reshape(params.shape).to(params.dtype)
        return -F.binary_cross_entropy_with_logits(params, a, reduction="none").sum(-1)

    def entropy(self, params):
        p = torch.sigmoid(params)
        return F.binary_cross_entropy_with_logits(params, p, reduction="none").sum(-1)

    def mode(self, params):
        return (params > 0).to(torch.int8).reshape(*params.shape[:-1], *self.shape)


class GaussianActionHead(ActionHead):
    """``Box`` actions: a diagonal Gaussian with mean ``Linear(h)`` and a learned,
    state-independent ``log_std`` (as in PPO's paper and Stable-Baselines3).

    Samples are unbounded; a learner clips them to the space's bounds when it sends them to
    the environment and keeps the unclipped sample for the log-probability (as SB3 does).
    """

    def __init__(self, input_size: int, shape: Sequence[int], log_std_init: float = 0.0) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        size = int(np.prod(self.shape))
        self.fc = nn.Linear(input_size, size)
        self.log_std = nn.Parameter(torch.full((size,), float(log_std_init)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)

    def sample(self, params, generator=None):
        noise = torch.randn(params.shape, generator=generator, device=params.device)
        sample = params.detach() + self.log_std.detach().exp() * noise  # not differentiable
        return sample.reshape(*params.shape[:-1], *self.shape)

    def log_prob(self, params, action):
        z = (action.reshape(params.shape) - params) / self.log_std.exp()
        return (-0.5 * z.pow(2) - self.log_std - _LOG_SQRT_2PI).sum(-1)

    def entropy(self, params):
        return (0.5 + _LOG_SQRT_2PI + self.log_std).sum().expand(params.shape[:-1])

    def mode(self, params):
        return params.reshape(*params.shape[:-1], *self.shape)


def make_action_head(action_space: spaces.Space, input_size: int) -> ActionHead:
    """The head for ``action_space``: categorical, multi-categorical, Bernoulli or Gaussian."""
    if isinstance(action_space, spaces.Discrete):
        return CategoricalActionHead(input_size, int(action_space.n), int(action_space.start))
    if isinstance(action_space, spaces.MultiDiscrete):
        if np.any(action_space.start != 0):
            raise ValueError(
                f"MultiDiscrete with a non-zero start is not supported: {action_space}"
            )
        return MultiCategoricalActionHead(
            input_size, action_space.nvec.reshape(-1).tolist(), action_space.shape
        )
    if isinstance(action_space, spaces.MultiBinary):
        n = int(np.prod(action_space.shape))
        return BernoulliActionHead(input_size, n, action_space.shape)
    if isinstance(action_space, spaces.Box):
        return GaussianActionHead(input_size, action_space.shape)
    raise ValueError(
        f"no action head for action space {action_space}: expected Discrete, MultiDiscrete, "
        "MultiBinary or Box"
    )


# ---------------------------------------------------------------------------------------
# Composed policies


def flatten_time(obs: Observation) -> Observation:
    """(T, B, ...) -> (T * B, ...), also inside dicts."""
    if isinstance(obs, Mapping):
        return {k: v.flatten(0, 1) for k, v in obs.items()}
    return obs.flatten(0, 1)


class Torso(nn.Module):
    """An encoder followed by a core: ``h_t, state_t = core(encoder(obs_t), state_{t-1})``.

    :meth:`step` runs one time step (B, ...); :meth:`sequence` runs (T, B, ...) observations
    from a state, restarting it where ``episode_start`` is true. The encoder runs over all
    T * B observations at once; only the core steps through time, and a core of ``"none"``
    not at all.
    """

    def __init__(self, encoder: nn.Module, core: Core) -> None:
        super().__init__()
        self.encoder = encoder
        self.core = core
        self.hidden_size = core.hidden_size
        self.recurrent = not isinstance(core, IdentityCore)

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        return self.core.initial_state(batch_size, device)

    def step(
        self, obs: Observation, state: State, episode_start: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State]:
        if episode_start is not None and self.recurrent:
            state = reset_state(state, episode_start)
        return self.core(self.encoder(obs), state)

    def sequence(
        self, obs: Observation, state: State, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, State]:
        """``h`` (T, B, hidden) for observations (T, B, ...), and the state after step T."""
        T, B = episode_start.shape
        x = self.encoder(flatten_time(obs))
        if not self.recurrent:
            return x.view(T, B, -1), state
        x = x.view(T, B, -1)
        hs = []
        for t in range(T):
            h, state = self.core(x[t], reset_state(state, episode_start[t]))
            hs.append(h)
        return torch.stack(hs), state


def make_torso(
    observation_space: spaces.Space,
    core: str = "none",
    hidden_sizes: Sequence[int] = (64, 64),
    core_size: int = 128,
    activation: str = "tanh",
) -> Torso:
    """Encoder for ``observation_space`` (an MLP of ``hidden_sizes`` for flat ``Box``es, a
    feature of ``hidden_sizes[-1]`` otherwise) followed by core ``core`` of ``core_size``."""
    feature = hidden_sizes[-1] if hidden_sizes else core_size
    encoder = make_encoder(
        observation_space, feature, hidden_sizes=hidden_sizes, activation=activation
    )
    return Torso(encoder, make_core(core, encoder.output_size, core_size))


def orthogonal_init(module: nn.Module, gain: float) -> None:
    """Orthogonal weights with ``gain`` and zero biases for every linear and convolutional
    layer of ``module``."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.orthogonal_(layer.weight, gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class ActorCriticPolicy(nn.Module):
    """An actor (action head) and a critic (value head) over torsos: shared by default,
    or one torso each (``share_torso=False``, as SB3's and CleanRL's MLP policies do).

    The recurrent state is ``(actor_state, critic_state)`` in both cases (the critic's is
    an empty tensor when the torso is shared).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        core: str = "none",
        hidden_sizes: Sequence[int] = (64, 64),
        core_size: int = 128,
        activation: str = "tanh",
        share_torso: bool = False,
        ortho_init: bool = False,
    ) -> None:
        super().__init__()
        self.actor_torso = make_torso(observation_space, core, hidden_sizes, core_size, activation)
        self.critic_torso = (
            None
            if share_torso
            else make_torso(observation_space, core, hidden_sizes, core_size, activation)
        )
        self.action_head = make_action_head(action_space, self.actor_torso.hidden_size)
        self.value_head = ValueHead(self.actor_torso.hidden_size)
        self.recurrent = self.actor_torso.recurrent
        if ortho_init:
            # Orthogonal initialisation as in the PPO paper's code, SB3 and CleanRL: gain
            # sqrt(2) in the encoders, 0.01 for the action head (a near-uniform first
            # policy), 1 for the value head; zero biases. Recurrent cores keep theirs.
            for torso in (self.actor_torso, self.critic_torso):
                if torso is not None:
                    orthogonal_init(torso.encoder, math.sqrt(2))
            orthogonal_init(self.action_head, 0.01)
            orthogonal_init(self.value_head, 1.0)

    @classmethod
    def from_config(
        cls, observation_space: spaces.Space, action_space: spaces.Space, config
    ) -> ActorCriticPolicy:
        """The policy a learner's hyperparameters describe (``core``, ``hidden_sizes``,
        ``core_size``, ``activation``, ``share_torso``, ``ortho_init``)."""
        return cls(
            observation_space,
            action_space,
            core=config.core,
            hidden_sizes=config.hidden_sizes,
            core_size=config.core_size,
            activation=config.activation,
            share_torso=config.share_torso,
            ortho_init=config.ortho_init,
        )

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        critic = (
            torch.zeros(batch_size, 0, device=device)
            if self.critic_torso is None
            else self.critic_torso.initial_state(batch_size, device)
        )
        return (self.actor_torso.initial_state(batch_size, device), critic)

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


class QNetwork(nn.Module):
    """Q-values for ``Discrete`` actions: ``Q(s, .) = Linear(torso(s))`` (B, n)."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        core: str = "none",
        hidden_sizes: Sequence[int] = (256, 256),
        core_size: int = 128,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"Q-learning needs a Discrete action space, got {action_space}")
        self.torso = make_torso(observation_space, core, hidden_sizes, core_size, activation)
        self.q = nn.Linear(self.torso.hidden_size, int(action_space.n))
        self.start = int(action_space.start)
        self.recurrent = self.torso.recurrent

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        return self.torso.initial_state(batch_size, device)

    def step(self, obs, state, episode_start=None):
        h, state = self.torso.step(obs, state, episode_start)
        return self.q(h), state

    def sequence(self, obs, state, episode_start):
        h, state = self.torso.sequence(obs, state, episode_start)
        return self.q(h), state
