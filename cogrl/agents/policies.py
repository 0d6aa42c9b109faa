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


class MLPEncoder(nn.Module):
    """A multilayer perceptron (ReLU) for flat ``Box`` observations (B, n) -> (B, output)."""

    def __init__(self, input_size: int, hidden_sizes: Sequence[int] = (256,)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = input_size
        for hidden in hidden_sizes:
            layers += [nn.Linear(size, hidden), nn.ReLU()]
            size = hidden
        self.net = nn.Sequential(*layers)
        self.output_size = size

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


def make_encoder(
    observation_space: spaces.Space,
    output_size: int = 256,
    glimpse_hidden: int = 128,
    location_hidden: int = 128,
) -> GlimpseNetwork | MLPEncoder:
    """The encoder for ``observation_space``: a glimpse network or an MLP.

    ``Dict`` with ``"glimpse"`` and ``"location"`` (flat ``Box`` es) -> :class:`GlimpseNetwork`;
    a flat (1-D) ``Box`` -> :class:`MLPEncoder` with one hidden layer of ``output_size``.
    Any other space is a ``ValueError`` that names it. The encoder's ``output_size`` is the
    width of its feature.
    """
    if isinstance(observation_space, spaces.Dict):
        keys = set(observation_space.spaces)
        if {"glimpse", "location"} <= keys:
            glimpse, location = observation_space["glimpse"], observation_space["location"]
            if (
                isinstance(glimpse, spaces.Box)
                and isinstance(location, spaces.Box)
                and len(glimpse.shape) == 1
                and len(location.shape) == 1
            ):
                return GlimpseNetwork(
                    glimpse.shape[0],
                    location.shape[0],
                    glimpse_hidden,
                    location_hidden,
                    output_size,
                )
    elif isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1:
        return MLPEncoder(observation_space.shape[0], (output_size,))
    raise ValueError(
        f"no encoder for observation space {observation_space}: expected a Dict with flat Box "
        "'glimpse' and 'location' entries (glimpse network) or a flat 1-D Box (MLP)"
    )


# ---------------------------------------------------------------------------------------
# Cores


def reset_state(state: State, episode_start: torch.Tensor) -> State:
    """``state * (1 - start)``: zero the recurrent state of environments starting an episode.

    ``episode_start`` is a (B,) bool or float tensor; works on tensors and tuples of them.
    """
    keep = 1.0 - episode_start.to(torch.float32)
    if isinstance(state, tuple):
        return tuple(s * keep.view(-1, *([1] * (s.ndim - 1))).to(s.dtype) for s in state)
    return state * keep.view(-1, *([1] * (state.ndim - 1))).to(state.dtype)


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
        """Categories (B,) drawn from ``softmax(logits)``."""
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)

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
