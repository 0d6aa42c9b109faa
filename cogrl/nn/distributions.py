"""Action heads: a distribution over actions given the core's output ``h``, one per kind
of action space, all behind one API so that every learner works with any of them.

``params = head(h)`` gives the distribution's parameters; then

- ``sample(params, generator)``: an action as the learner stores it (not differentiable);
- ``log_prob(params, action)`` and ``entropy(params)``: (B,), differentiable in ``params``;
- ``mode(params)``: the deterministic action;
- ``to_env(action)``: the action as the environment takes it. For most heads the same;
  the Gaussian clips its unbounded samples to the space's bounds (the learner keeps the
  unclipped sample for the log-probability, as Stable-Baselines3 does) and RAM's
  location head squashes its pre-tanh sample with ``tanh``.

Heads: :class:`CategoricalHead` (``Discrete``; also RAM's classifier ``f_a``),
:class:`MultiCategoricalHead` (``MultiDiscrete``), :class:`BernoulliHead` (``MultiBinary``),
:class:`GaussianHead` (``Box``), :class:`TanhGaussianHead` (RAM's location network ``f_l``)
and :class:`ValueHead` (a state value, or RAM's baseline ``b_t``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

__all__ = [
    "ActionHead",
    "BernoulliHead",
    "CategoricalHead",
    "GaussianHead",
    "MultiCategoricalHead",
    "TanhGaussianHead",
    "ValueHead",
    "categorical_entropy",
    "categorical_log_prob",
    "categorical_sample",
    "make_action_head",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


def categorical_sample(
    logits: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Categories (...,) drawn from ``softmax(logits)`` (..., n), by the Gumbel-max trick:
    ``argmax(logits + g)`` with ``g = -log(-log(u))``, ``u ~ U(0, 1)``, is distributed as
    the softmax (and needs fewer kernels than ``torch.multinomial`` on small batches)."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device)
    return (logits - torch.log(-torch.log(u))).argmax(-1)


def categorical_log_prob(logits: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[value]`` (...,)."""
    return torch.log_softmax(logits, -1).gather(-1, value[..., None].long()).squeeze(-1)


def categorical_entropy(logits: torch.Tensor) -> torch.Tensor:
    log_p = torch.log_softmax(logits, -1)
    return -(log_p.exp() * log_p).sum(-1)


class ActionHead(nn.Module):
    """A distribution over actions given ``h`` (see the module docstring)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, params: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    #: The independent parts the distribution factorises over (``log_prob`` is the sum of
    #: :meth:`log_prob_parts` over them): 1 unless a head says otherwise.
    parts = 1

    def log_prob_parts(self, params: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``log pi(a_k | s)`` of each of the :attr:`parts` (..., parts), summing to
        :meth:`log_prob`: per-part credit (``factored_credit``) takes one ratio per part."""
        return self.log_prob(params, action)[..., None]

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        """The action as the environment takes it."""
        return action


class CategoricalHead(ActionHead):
    """``Discrete(n)``: logits ``Linear(h)`` (B, n); actions (B,) int64 (with the space's
    ``start``)."""

    def __init__(self, input_size: int, n: int, start: int = 0) -> None:
        super().__init__()
        self.fc = nn.Linear(input_size, n)
        self.n = int(n)
        self.start = int(start)

    def sample(self, params, generator=None):
        return categorical_sample(params, generator) + self.start

    def log_prob(self, params, action):
        return categorical_log_prob(params, action - self.start)

    def entropy(self, params):
        return categorical_entropy(params)

    def mode(self, params):
        return params.argmax(-1) + self.start


class MultiCategoricalHead(ActionHead):
    """``MultiDiscrete(nvec)``: independent categoricals, one per position; actions int64
    (B, *shape), ``shape`` being the space's (default: (k,) for k positions)."""

    def __init__(
        self, input_size: int, nvec: Sequence[int], shape: Sequence[int] | None = None
    ) -> None:
        super().__init__()
        self.nvec = [int(n) for n in nvec]
        self.shape = (len(self.nvec),) if shape is None else tuple(int(s) for s in shape)
        self.fc = nn.Linear(input_size, sum(self.nvec))
        self.parts = len(self.nvec)

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(params, self.nvec, dim=-1)

    def sample(self, params, generator=None):
        parts = self._split(params)
        action = torch.stack([categorical_sample(p, generator) for p in parts], -1)
        return action.reshape(*params.shape[:-1], *self.shape)

    def log_prob(self, params, action):
        parts = self._split(params)
        action = action.reshape(*params.shape[:-1], len(self.nvec))
        return sum(categorical_log_prob(p, action[..., i]) for i, p in enumerate(parts))

    def log_prob_parts(self, params, action):
        parts = self._split(params)
        action = action.reshape(*params.shape[:-1], len(self.nvec))
        return torch.stack(
            [categorical_log_prob(p, action[..., i]) for i, p in enumerate(parts)], -1
        )

    def entropy(self, params):
        return sum(categorical_entropy(p) for p in self._split(params))

    def mode(self, params):
        action = torch.stack([p.argmax(-1) for p in self._split(params)], -1)
        return action.reshape(*params.shape[:-1], *self.shape)


class BernoulliHead(ActionHead):
    """``MultiBinary(n)``: independent Bernoullis, logits ``Linear(h)`` (B, n); actions int8
    (B, *shape), ``shape`` being the space's (default: (n,))."""

    def __init__(self, input_size: int, n: int, shape: Sequence[int] | None = None) -> None:
        super().__init__()
        self.fc = nn.Linear(input_size, n)
        self.shape = (n,) if shape is None else tuple(int(s) for s in shape)
        self.parts = n

    def sample(self, params, generator=None):
        u = torch.rand(params.shape, generator=generator, device=params.device)
        action = (u < torch.sigmoid(params)).to(torch.int8)
        return action.reshape(*params.shape[:-1], *self.shape)

    def log_prob(self, params, action):
        # log p(a) = a log sigmoid(z) + (1 - a) log sigmoid(-z) = -BCE(z, a)
        return self.log_prob_parts(params, action).sum(-1)

    def log_prob_parts(self, params, action):
        a = action.reshape(params.shape).to(params.dtype)
        return -F.binary_cross_entropy_with_logits(params, a, reduction="none")

    def entropy(self, params):
        p = torch.sigmoid(params)
        return F.binary_cross_entropy_with_logits(params, p, reduction="none").sum(-1)

    def mode(self, params):
        return (params > 0).to(torch.int8).reshape(*params.shape[:-1], *self.shape)


class GaussianHead(ActionHead):
    """``Box`` actions: a diagonal Gaussian with mean ``Linear(h)`` and a learned,
    state-independent ``log_std`` (as in PPO's paper and Stable-Baselines3).

    Samples are unbounded; :meth:`to_env` clips them to ``low``/``high`` (the space's
    bounds) and the learner keeps the unclipped sample for the log-probability.
    """

    def __init__(
        self,
        input_size: int,
        shape: Sequence[int],
        log_std_init: float = 0.0,
        low: np.ndarray | float | None = None,
        high: np.ndarray | float | None = None,
    ) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        size = int(np.prod(self.shape))
        self.fc = nn.Linear(input_size, size)
        self.log_std = nn.Parameter(torch.full((size,), float(log_std_init)))
        # Bounds are the space's, not weights: kept out of the state dict.
        bound = np.broadcast_to
        low_t = torch.as_tensor(bound(-np.inf if low is None else low, self.shape).copy())
        high_t = torch.as_tensor(bound(np.inf if high is None else high, self.shape).copy())
        self.register_buffer("low", low_t.float(), persistent=False)
        self.register_buffer("high", high_t.float(), persistent=False)

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

    def to_env(self, action):
        low, high = self.low.to(action.dtype), self.high.to(action.dtype)
        return torch.maximum(torch.minimum(action, high), low)


class TanhGaussianHead(ActionHead):
    """RAM's location network ``f_l``: where to look next, as a squashed Gaussian.

    ``mean = Linear(h)``; the action the learner keeps is ``u ~ N(mean, std^2 I)``, and the
    location sent to the environment is ``l = tanh(u)`` (:meth:`to_env`), in (-1, 1).
    ``std`` is a hyperparameter (an attribute a learner may anneal, not a weight). The
    log-probability is that of the location actually sampled (change of variables):
    ``log p(l) = log N(u; mean, std) - sum log(1 - tanh(u)^2)``, with
    ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))`` computed without cancellation.
    The deterministic location is ``tanh(mean)``.

    In float32, ``tanh(u)`` rounds to exactly +-1 for ``|u| > 9``; such locations are moved
    one float32 step inside, to ``+-(1 - 2^-24)``, so every location lies strictly in
    (-1, 1). The log-probability stays that of ``u`` (it is not clamped, so its gradient
    keeps pulling a runaway mean back); the two differ only in that rounding.
    """

    #: The largest float32 below 1: the bound locations are kept within.
    LIMIT = 1.0 - 2.0**-24

    def __init__(self, input_size: int, size: int = 2, std: float = 0.2) -> None:
        super().__init__()
        if not (isinstance(std, (int, float)) and math.isfinite(std) and std > 0):
            raise ValueError(f"std must be a finite number > 0, got {std!r}")
        self.fc = nn.Linear(input_size, size)
        self.std = float(std)

    def sample(self, params, generator=None):
        noise = torch.randn(
            params.shape, generator=generator, device=params.device, dtype=params.dtype
        )
        return params.detach() + self.std * noise

    def log_prob(self, params, action):
        """``log p(tanh(u))`` (B,) for pre-tanh actions ``u`` (B, d) under ``N(mean, std)``."""
        z = (action - params) / self.std
        log_normal = -0.5 * z.pow(2) - math.log(self.std) - _LOG_SQRT_2PI
        log_det = 2.0 * (_LOG_2 - action - F.softplus(-2.0 * action))  # log(1 - tanh(u)^2)
        return (log_normal - log_det).sum(-1)

    def log_prob_location(self, params: torch.Tensor, location: torch.Tensor) -> torch.Tensor:
        """``log p(location)`` (B,) for locations in (-1, 1) (e.g. replayed ones)."""
        return self.log_prob(params, torch.atanh(location.clamp(-self.LIMIT, self.LIMIT)))

    def entropy(self, params):
        """The entropy of ``u``'s Gaussian: a constant, since ``std`` is not learned."""
        per_dim = 0.5 + _LOG_SQRT_2PI + math.log(self.std)
        return torch.full(params.shape[:-1], per_dim * params.shape[-1], device=params.device)

    def mode(self, params):
        return params

    def to_env(self, action):
        """``tanh(u)``, kept strictly inside (-1, 1)."""
        return torch.tanh(action).clamp(-self.LIMIT, self.LIMIT)


class ValueHead(nn.Module):
    """A scalar per row, ``Linear(h)`` (B,): a state value or RAM's baseline ``b_t``; with
    ``size > 1``, one value per part of a factored reward (B, size)."""

    def __init__(self, input_size: int, size: int = 1) -> None:
        super().__init__()
        self.fc = nn.Linear(input_size, size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h).squeeze(-1)


def make_action_head(
    action_space: spaces.Space, input_size: int, log_std_init: float = 0.0
) -> ActionHead:
    """The head for ``action_space``: categorical, multi-categorical, Bernoulli or Gaussian."""
    if isinstance(action_space, spaces.Discrete):
        return CategoricalHead(input_size, int(action_space.n), int(action_space.start))
    if isinstance(action_space, spaces.MultiDiscrete):
        if np.any(action_space.start != 0):
            raise ValueError(
                f"MultiDiscrete with a non-zero start is not supported: {action_space}"
            )
        return MultiCategoricalHead(
            input_size, action_space.nvec.reshape(-1).tolist(), action_space.shape
        )
    if isinstance(action_space, spaces.MultiBinary):
        n = int(np.prod(action_space.shape))
        return BernoulliHead(input_size, n, action_space.shape)
    if isinstance(action_space, spaces.Box):
        return GaussianHead(
            input_size, action_space.shape, log_std_init, action_space.low, action_space.high
        )
    raise ValueError(
        f"no action head for action space {action_space}: expected Discrete, MultiDiscrete, "
        "MultiBinary or Box"
    )
