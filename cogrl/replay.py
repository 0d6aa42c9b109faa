"""The replay buffer every cogrl off-policy learner uses.

Off-policy learners (DQN-style value learners, recurrent R2D2-style learners, ...) learn from
transitions collected earlier, possibly by another policy. :class:`ReplayBuffer` is the one
store for them, so that they all see data the same way (docs/architecture.md: one replay, shared):

- It is written by all ``num_envs`` environments of a batched core at once, one time step per
  :meth:`ReplayBuffer.add`, and keeps the newest ``capacity`` transitions.
- It lives on the learner's device as preallocated tensors, so sampling needs no copies
  between host and device.
- It samples single transitions, uniformly or by priority (Schaul et al. 2016, "Prioritized
  Experience Replay"), optionally as n-step returns, and, for recurrent policies, fixed-length
  sequences with a burn-in and episode-boundary masks (Kapturowski et al. 2019, "Recurrent
  Experience Replay in Distributed Reinforcement Learning", R2D2).
- It is *shared*: sampling never changes it, so several learners can sample one buffer, each
  with its own ``torch.Generator``; and :meth:`ReplayBuffer.save` / :meth:`ReplayBuffer.load`
  let one agent's collected data seed another's. A saved file holds only tensors and a JSON
  string, so loading it runs no code (``torch.load(..., weights_only=True)``).
- It checks what it is given: a wrongly shaped or typed batch fails in :meth:`~ReplayBuffer.add`
  with a ``ValueError`` naming the field, rather than corrupting learning much later. Value
  checks (ranges, rewards finite in float32) cost one device synchronisation per call, so a
  learner storing its own environments' transitions may skip them (``check=False``). A
  buffer larger than the device's memory is refused before allocating, and a loaded buffer
  whose counters, priorities or tensors are inconsistent is refused with what is wrong.

Conventions
    ``next_obs`` of a step whose episode ended is the episode's final observation (with
    same-step autoreset the learner takes it from ``info["final_obs"]``). A *terminated* step
    does not bootstrap; a *truncated* one does, from its ``next_obs``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from cogrl.checkpoint import atomic_save
from cogrl.core import resolve_device

__all__ = ["ReplayBuffer", "ReplaySample", "SequenceSample"]

Obs = torch.Tensor | dict[str, torch.Tensor]
Extras = Mapping[str, tuple[tuple[int, ...], torch.dtype]]

_FORMAT = "cogrl.replay/1"
_FLOAT32_MAX = float(torch.finfo(torch.float32).max)
# Value checks of one add(): (all-ok device bool, message made only when it failed).
_Checks = list[tuple[torch.Tensor, Callable[[], str]]]


class ReplaySample(NamedTuple):
    """A batch of (n-step) transitions; every tensor has leading dim B (the batch size)."""

    obs: Obs  #: the observation at the first step
    action: torch.Tensor  #: the action at the first step
    reward: torch.Tensor  #: float32: sum_{k<K} gamma^k r_{t+k} over the K summed steps
    next_obs: Obs  #: the observation after the last summed step (its ``next_obs``)
    terminated: torch.Tensor  #: float32: 1 if the episode terminated within the steps
    discount: torch.Tensor  #: float32: gamma^K (1 - terminated), the bootstrap factor
    weights: torch.Tensor  #: float32 importance-sampling weights (ones when uniform)
    indices: torch.Tensor  #: int64 (B, 2): (time slot, env) of the first step
    extras: dict[str, torch.Tensor]  #: the declared extras at the first step


class SequenceSample(NamedTuple):
    """A batch of sequences, time-major: every per-step tensor is (L, B, ...), where
    ``L = burn_in + length``."""

    obs: Obs
    action: torch.Tensor
    reward: torch.Tensor  #: float32
    next_obs: Obs
    terminated: torch.Tensor  #: bool, as stored
    truncated: torch.Tensor  #: bool, as stored
    extras: dict[str, torch.Tensor]
    episode_start: torch.Tensor  #: bool: the step is the first of an episode
    mask: torch.Tensor  #: float32 learning mask (0 in the burn-in and after the episode ends)
    indices: torch.Tensor  #: int64 (B, 2): (time slot, env) of the sequence's first step


# ---------------------------------------------------------------------------------------
# Field specifications: what one transition's field looks like and what may be stored in it


@dataclass(frozen=True)
class _Field:
    """The shape (per environment) and dtype of one stored field, with the inclusive value
    range that integer fields of a ``Discrete``-like space must respect."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    low: torch.Tensor | None = None
    high: torch.Tensor | None = None
    space: str = ""  # how the field is named in messages, e.g. "Discrete(4)"


def _torch_dtype(dtype: Any) -> torch.dtype:
    try:
        return torch.from_numpy(np.empty(0, dtype=dtype)).dtype
    except TypeError as e:
        raise ValueError(f"dtype {dtype} cannot be stored in a torch tensor") from e


def _space_field(space: spaces.Space, what: str, device: torch.device) -> _Field:
    """The field storing one element of ``space`` (an observation or action space)."""

    def rng(low: Any, high: Any, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        lo = torch.as_tensor(np.broadcast_to(low, shape).copy(), dtype=torch.int64, device=device)
        hi = torch.as_tensor(np.broadcast_to(high, shape).copy(), dtype=torch.int64, device=device)
        return lo, hi

    if isinstance(space, spaces.Discrete):
        lo, hi = rng(space.start, space.start + space.n - 1, ())
        return _Field((), torch.int64, lo, hi, repr(space))
    if isinstance(space, spaces.MultiDiscrete):
        lo, hi = rng(space.start, space.start + space.nvec - 1, space.shape)
        return _Field(space.shape, torch.int64, lo, hi, repr(space))
    if isinstance(space, spaces.MultiBinary):
        # 0-d bounds (broadcast in the checks): a huge space must reach the memory check.
        lo, hi = rng(0, 1, ())
        return _Field(space.shape, _torch_dtype(space.dtype), lo, hi, repr(space))
    if isinstance(space, spaces.Box):
        dtype = torch.float32 if what == "action" else _torch_dtype(space.dtype)
        return _Field(space.shape, dtype, space=repr(space))
    raise ValueError(
        f"{what} space {space!r} is not supported; expected Box, Discrete, MultiDiscrete or "
        f"MultiBinary" + (" or a Dict of those" if what == "observation" else "")
    )


def _obs_fields(space: spaces.Space, device: torch.device) -> _Field | dict[str, _Field]:
    if isinstance(space, spaces.Dict):
        fields = {}
        for key, sub in space.spaces.items():
            if isinstance(sub, spaces.Dict):
                raise ValueError(
                    f"observation space {space!r}: nested Dict spaces are not supported"
                )
            fields[key] = _space_field(sub, "observation", device)
        return fields
    return _space_field(space, "observation", device)


def _dtype_kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    if dtype.is_complex:
        return "complex"
    if dtype.is_floating_point:
        return "float"
    return "int"


# The kinds of values a field of each kind accepts; floats are never stored in integer or bool
# fields (that would silently truncate them).
_SAFE_KINDS = {
    "bool": {"bool", "int"},
    "int": {"bool", "int"},
    "float": {"bool", "int", "float"},
    "complex": {"bool", "int", "float", "complex"},
}


def _map(fn: Callable[..., Any], *trees: Any) -> Any:
    """Apply ``fn`` to a tensor (or field), or key by key to dicts of them."""
    if isinstance(trees[0], dict):
        return {k: fn(*(t[k] for t in trees)) for k in trees[0]}
    return fn(*trees)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _field_bytes(field: _Field) -> int:
    return math.prod(field.shape) * field.dtype.itemsize


def _available_bytes(device: torch.device) -> int | None:
    """The memory a new buffer on ``device`` may take, or ``None`` where it cannot be told.

    CPU: the machine's physical memory (not the momentarily free part, which swings with
    other processes). CUDA: the device's free memory plus what this process's caching
    allocator holds unused (torch reuses that before asking the driver for more).
    """
    if device.type == "cpu":
        try:
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):  # not a POSIX system
            return None
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        unused = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return free + unused
    return None


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"


# ---------------------------------------------------------------------------------------
# Spaces <-> plain metadata (JSON + tensors), so that a saved buffer holds no pickled objects


def _space_state(space: spaces.Space) -> tuple[dict[str, Any], dict[str, Any]]:
    if isinstance(space, spaces.Dict):
        metas, tensors = {}, {}
        for key, sub in space.spaces.items():
            metas[key], tensors[key] = _space_state(sub)
        return {"kind": "Dict", "keys": list(space.spaces), "spaces": metas}, tensors
    if isinstance(space, spaces.Discrete):
        return {"kind": "Discrete", "n": int(space.n), "start": int(space.start)}, {}
    if isinstance(space, spaces.MultiDiscrete):
        t = {"nvec": torch.from_numpy(space.nvec.copy()), "start": torch.from_numpy(space.start)}
        return {"kind": "MultiDiscrete", "dtype": str(space.dtype)}, t
    if isinstance(space, spaces.MultiBinary):
        return {"kind": "MultiBinary", "n": np.asarray(space.n).tolist()}, {}
    if isinstance(space, spaces.Box):
        t = {"low": torch.from_numpy(space.low.copy()), "high": torch.from_numpy(space.high.copy())}
        return {"kind": "Box", "dtype": str(space.dtype)}, t
    raise ValueError(f"space {space!r} cannot be saved")


def _space_from_state(meta: dict[str, Any], tensors: dict[str, Any]) -> spaces.Space:
    kind = meta["kind"]
    if kind == "Dict":
        keys = meta["keys"]
        return spaces.Dict({k: _space_from_state(meta["spaces"][k], tensors[k]) for k in keys})
    if kind == "Discrete":
        return spaces.Discrete(meta["n"], start=meta["start"])
    if kind == "MultiDiscrete":
        nvec, start = tensors["nvec"].numpy(), tensors["start"].numpy()
        return spaces.MultiDiscrete(nvec, dtype=meta["dtype"], start=start)
    if kind == "MultiBinary":
        return spaces.MultiBinary(meta["n"])
    if kind == "Box":
        low, high = tensors["low"].numpy(), tensors["high"].numpy()
        return spaces.Box(low, high, shape=low.shape, dtype=np.dtype(meta["dtype"]))
    raise ValueError(f"unknown space kind {kind!r} in a saved replay buffer")


def _dtype_from_str(name: str) -> torch.dtype:
    dtype = getattr(torch, name.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r} in a saved replay buffer")
    return dtype


# ---------------------------------------------------------------------------------------
# The buffer


class ReplayBuffer:
    """A ring buffer of transitions from ``num_envs`` environments, on one device.

    Storage is a ring over time of ``T = capacity // num_envs`` slots; slot ``t`` holds the
    transitions of all environments written by one :meth:`add` call, so every stored tensor
    is shaped ``(T, num_envs, ...)``. Once full, each :meth:`add` overwrites the oldest slot.
    ``capacity`` is rounded down to a multiple of ``num_envs``.

    Args:
        capacity: the number of transitions kept (at least ``num_envs``).
        num_envs: the number of environments written by each :meth:`add`.
        observation_space: a single environment's ``Box``, ``Discrete``, ``MultiDiscrete``,
            ``MultiBinary`` or ``Dict`` of those (observations are then dicts of tensors).
        action_space: a single environment's ``Discrete``, ``MultiDiscrete``, ``MultiBinary``
            (stored in their dtypes) or ``Box`` (stored as float32).
        device: where the storage lives (``"auto"`` picks CUDA when available).
        prioritized: sample proportionally to priorities (Schaul et al. 2016).
        alpha: the priority exponent (0 is uniform).
        extras: further per-transition fields, ``{name: (shape, dtype)}``, e.g. a recurrent
            core's state at the step; :meth:`add` then requires them.
    """

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        device: str | torch.device = "cpu",
        prioritized: bool = False,
        alpha: float = 0.6,
        extras: Extras | None = None,
    ) -> None:
        num_envs = _positive_int("num_envs", num_envs)
        capacity = _positive_int("capacity", capacity)
        if capacity < num_envs:
            raise ValueError(
                f"capacity ({capacity}) must be at least num_envs ({num_envs}): each add() "
                f"writes one transition per environment"
            )
        if not isinstance(prioritized, bool):
            raise ValueError(f"prioritized must be a bool, got {prioritized!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
            raise ValueError(f"alpha must be a number >= 0, got {alpha!r}")
        if alpha == float("inf"):
            raise ValueError(f"alpha must be finite, got {alpha!r}")
        if not isinstance(observation_space, spaces.Space):
            raise ValueError(
                f"observation_space must be a gymnasium space, got {observation_space!r}"
            )
        if not isinstance(action_space, spaces.Space):
            raise ValueError(f"action_space must be a gymnasium space, got {action_space!r}")
        self._device = resolve_device(device)
        self._num_envs = num_envs
        self._slots = capacity // num_envs
        self.observation_space = observation_space
        self.action_space = action_space
        self.prioritized = prioritized
        self.alpha = float(alpha)

        dev = self._device
        self._obs_field = _obs_fields(observation_space, dev)
        self._action_field = _space_field(action_space, "action", dev)
        self._extra_fields: dict[str, _Field] = {}
        if extras is not None:
            if not isinstance(extras, Mapping):
                raise ValueError(f"extras must map names to (shape, dtype), got {extras!r}")
            for name, spec in extras.items():
                ok = isinstance(name, str) and isinstance(spec, (tuple, list)) and len(spec) == 2
                shape, dtype = spec if ok else ((), None)
                ok = ok and isinstance(shape, (tuple, list)) and isinstance(dtype, torch.dtype)
                ok = ok and all(
                    isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0
                    for d in shape
                )
                if not ok:
                    raise ValueError(
                        f"extras[{name!r}] must be (shape: tuple of ints >= 0, dtype: "
                        f"torch.dtype), got {spec!r}"
                    )
                self._extra_fields[name] = _Field(tuple(int(d) for d in shape), dtype)

        self._check_memory(capacity)

        def alloc(field: _Field) -> torch.Tensor:
            return torch.zeros((self._slots, num_envs, *field.shape), dtype=field.dtype, device=dev)

        shape = (self._slots, num_envs)
        self._obs: Obs = _map(alloc, self._obs_field)
        self._next_obs: Obs = _map(alloc, self._obs_field)
        self._action = alloc(self._action_field)
        self._reward = torch.zeros(shape, dtype=torch.float32, device=dev)
        self._terminated = torch.zeros(shape, dtype=torch.bool, device=dev)
        self._truncated = torch.zeros(shape, dtype=torch.bool, device=dev)
        self._episode_start = torch.zeros(shape, dtype=torch.bool, device=dev)
        self._extras = {name: alloc(f) for name, f in self._extra_fields.items()}
        # p_i^alpha of every stored transition; 0 marks an unwritten slot.
        self._priority = torch.zeros(shape, dtype=torch.float32, device=dev)
        self.clear()

    def _check_memory(self, capacity: int) -> None:
        """Refuse, before allocating, a buffer larger than the device's memory: a mistyped
        ``capacity`` (or a huge observation) should fail at once with the numbers, not after
        minutes of swapping or with the allocator's out-of-memory error."""
        per_obs = sum(_field_bytes(f) for f in self._obs_field_list())
        per_transition = (
            2 * per_obs  # obs and next_obs
            + _field_bytes(self._action_field)
            + sum(_field_bytes(f) for f in self._extra_fields.values())
            + 4 + 4  # reward and priority, float32
            + 3  # terminated, truncated, episode_start
        )  # fmt: skip
        needed = self._slots * self._num_envs * per_transition
        available = _available_bytes(self._device)
        if available is not None and needed > available:
            raise ValueError(
                f"capacity {capacity} ({self._slots} time slots x {self._num_envs} envs, "
                f"{per_transition} bytes per transition) needs an estimated {needed} bytes "
                f"({_gib(needed)}) on {self._device}, more than the {available} bytes "
                f"({_gib(available)}) available there; lower the capacity (buffer_size) or "
                f"the size of the observations or extras"
            )

    def _obs_field_list(self) -> list[_Field]:
        f = self._obs_field
        return list(f.values()) if isinstance(f, dict) else [f]

    # --- properties ------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        """The number of transitions kept: ``slots * num_envs``."""
        return self._slots * self._num_envs

    @property
    def num_envs(self) -> int:
        return self._num_envs

    @property
    def slots(self) -> int:
        """``T``, the number of time slots (steps kept per environment)."""
        return self._slots

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def size(self) -> int:
        """The number of transitions stored (all environments together)."""
        return self._filled * self._num_envs

    @property
    def full(self) -> bool:
        return self._filled == self._slots

    @property
    def max_priority(self) -> float:
        """The largest priority seen so far (given to new transitions)."""
        return float(self._max_priority)

    @property
    def extra_specs(self) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
        """The declared extras, ``{name: (shape, dtype)}``."""
        return {name: (f.shape, f.dtype) for name, f in self._extra_fields.items()}

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return (
            f"ReplayBuffer(size={self.size}/{self.capacity}, num_envs={self._num_envs}, "
            f"prioritized={self.prioritized}, device={self._device})"
        )

    def clear(self) -> None:
        """Forget everything stored (the storage stays allocated)."""
        self._pos = 0  # the next slot to write
        self._filled = 0  # the number of written slots
        self._set_max_priority(torch.ones((), dtype=torch.float64, device=self._device))
        self._priority.zero_()
        # Whether each environment's last stored step ended an episode; the next step stored
        # for it then starts one (true before the first step).
        self._prev_done = torch.ones(self._num_envs, dtype=torch.bool, device=self._device)

    def _set_max_priority(self, value: torch.Tensor) -> None:
        """Keep the running maximum priority, and the ``max^alpha`` new transitions get, as
        device tensors: updating them then needs no device synchronisation."""
        self._max_priority = value  # float64, 0-d
        self._new_priority = (value**self.alpha).float()

    # --- writing -----------------------------------------------------------------------------
    def add(
        self,
        obs: Any,
        action: Any,
        reward: Any,
        next_obs: Any,
        terminated: Any,
        truncated: Any,
        extras: Mapping[str, Any] | None = None,
        *,
        check: bool = True,
    ) -> None:
        """Store one time step of all ``num_envs`` environments (batches with leading dim N).

        Arguments may be torch tensors on any device or numpy arrays. ``next_obs`` of an
        environment whose episode ended is its final observation. Raises ``ValueError``
        (and stores nothing) when a field's shape or dtype does not fit, a ``Dict``
        observation has missing or extra keys, or, with ``check=True``, a value is wrong: a
        discrete value out of its space's range, ``terminated``/``truncated`` not 0/1, an
        integer too large for its field, or a reward that is not finite once stored as
        float32 (a finite float64 beyond float32's range would become inf).

        The value checks cost one device synchronisation per call. ``check=False`` skips
        them (shapes and dtypes are still checked, without synchronising): for a learner
        storing its own environments' transitions, whose values the environment already
        guarantees, in its per-step loop.
        """
        checks: _Checks | None = [] if check else None
        obs_t = self._convert_obs("obs", obs, checks)
        next_obs_t = self._convert_obs("next_obs", next_obs, checks)
        action_t = self._convert("action", action, self._action_field, checks)
        reward_t = self._convert("reward", reward, _Field((), torch.float32), checks)
        if checks is not None:
            # Checked as stored: float64 rewards beyond float32's range become inf.
            bad = ~torch.isfinite(reward_t.to(torch.float32))
            checks.append(
                (
                    ~bad.any(),
                    lambda: (
                        f"reward: expected finite values within float32's range (|r| <= "
                        f"{_FLOAT32_MAX:.8g}), got {reward_t[bad].tolist()} (envs "
                        f"{torch.nonzero(bad).flatten().tolist()})"
                    ),
                )
            )
        flag = _Field((), torch.bool)
        terminated_t = self._convert("terminated", terminated, flag, checks)
        truncated_t = self._convert("truncated", truncated, flag, checks)
        if extras is None:
            extras = {}
        if not isinstance(extras, Mapping) or set(extras) != set(self._extra_fields):
            given = sorted(extras) if isinstance(extras, Mapping) else repr(extras)
            raise ValueError(
                f"extras: expected the keys {sorted(self._extra_fields)} declared at "
                f"construction, got {given}"
            )
        extras_t = {
            k: self._convert(f"extras[{k!r}]", extras[k], f, checks)
            for k, f in self._extra_fields.items()
        }
        # All value checks in one device synchronisation; find the culprit only on failure.
        if checks is not None and not bool(torch.stack([ok for ok, _ in checks]).all()):
            for ok, message in checks:
                if not bool(ok):
                    raise ValueError(message())

        t = self._pos

        def write(store: torch.Tensor, value: torch.Tensor) -> None:
            store[t] = value.to(store.dtype)

        _map(write, self._obs, obs_t)
        _map(write, self._next_obs, next_obs_t)
        write(self._action, action_t)
        write(self._reward, reward_t)
        write(self._terminated, terminated_t)
        write(self._truncated, truncated_t)
        for k, v in extras_t.items():
            write(self._extras[k], v)
        self._episode_start[t] = self._prev_done
        self._prev_done = (terminated_t != 0) | (truncated_t != 0)
        # Schaul et al. 2016, Alg. 1 line 6: a new transition gets the maximal priority so far,
        # so that it is sampled at least once soon.
        self._priority[t] = self._new_priority
        self._pos = (t + 1) % self._slots
        self._filled = min(self._filled + 1, self._slots)

    def _convert_obs(self, name: str, value: Any, checks: _Checks | None) -> Obs:
        fields = self._obs_field
        if not isinstance(fields, dict):
            return self._convert(name, value, fields, checks)
        if not isinstance(value, Mapping):
            raise ValueError(
                f"{name}: expected a dict with keys {sorted(fields)} for the Dict observation "
                f"space, got {type(value).__name__}"
            )
        if set(value) != set(fields):
            missing, extra = sorted(set(fields) - set(value)), sorted(set(value) - set(fields))
            raise ValueError(
                f"{name}: expected the keys {sorted(fields)}, got {sorted(value)} "
                f"(missing {missing}, unexpected {extra})"
            )
        return {k: self._convert(f"{name}[{k!r}]", value[k], f, checks) for k, f in fields.items()}

    def _convert(
        self, name: str, value: Any, field: _Field, checks: _Checks | None
    ) -> torch.Tensor:
        """``value`` as a tensor on the device in its given dtype, after checking its shape and
        dtype; value checks (ranges) are appended to ``checks`` unless it is ``None``."""
        expected = (self._num_envs, *field.shape)
        want = f"shape {expected} and dtype {field.dtype}"
        if isinstance(value, torch.Tensor):
            t = value.detach()
        else:
            try:
                t = torch.as_tensor(np.asarray(value))
            except (TypeError, ValueError, RuntimeError) as e:
                raise ValueError(f"{name}: expected {want}, got {value!r}") from e
        if (
            tuple(t.shape) != expected
            or _dtype_kind(t.dtype) not in _SAFE_KINDS[_dtype_kind(field.dtype)]
        ):
            raise ValueError(f"{name}: expected {want}, got shape {tuple(t.shape)} dtype {t.dtype}")
        t = t.to(self._device)
        if checks is None:
            return t
        target = field.dtype
        if t.numel() == 0 or t.dtype == target or target.is_floating_point:
            if field.low is None:
                return t
        if target == torch.bool:
            ok = ((t == 0) | (t == 1)).all()
            checks.append((ok, lambda: f"{name}: expected bool or 0/1 values, got {t.tolist()}"))
        elif field.low is not None:
            ok = ((t >= field.low) & (t <= field.high)).all()
            checks.append(
                (
                    ok,
                    lambda: (
                        f"{name}: values must lie in [{field.low.min().item()}, "
                        f"{field.high.max().item()}] for {field.space}, got values from "
                        f"{t.min().item()} to {t.max().item()}"
                    ),
                )
            )
        elif not target.is_floating_point and torch.promote_types(t.dtype, target) != target:
            info = torch.iinfo(target)
            ok = (t >= info.min).all() & (t <= info.max).all()
            checks.append(
                (
                    ok,
                    lambda: (
                        f"{name}: values from {t.min().item()} to {t.max().item()} do not "
                        f"fit dtype {target}"
                    ),
                )
            )
        return t

    # --- sampling ----------------------------------------------------------------------------
    def _slot(self, logical: torch.Tensor) -> torch.Tensor:
        """The ring slot of the ``logical``-th oldest stored time step."""
        oldest = self._pos if self.full else 0
        return (logical + oldest) % self._slots

    def _nstep_tail(self, n_step: int) -> tuple[int, torch.Tensor]:
        """Which windows of ``n_step`` steps may start where.

        A window starting at logical step ``j`` would read ``j .. j+n-1``. Starts up to
        ``head = filled - n + 1`` (exclusive) always lie in written data; a later start (the
        tail) is valid only when its episode ends by the newest stored step, so that the
        window never reads past the newest slot nor across the ring's overwrite point.
        Returns ``head`` and the (R, N) validity of the ``R`` tail starts.
        """
        head = max(self._filled - n_step + 1, 0)
        slots = self._slot(torch.arange(head, self._filled, device=self._device))
        done = self._terminated[slots] | self._truncated[slots]
        # valid[j] = any(done[j:]): a reverse cumulative OR over the tail.
        valid = done.flip(0).cummax(0).values.flip(0) if len(slots) else done
        return head, valid

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        n_step: int = 1,
        gamma: float = 0.99,
        beta: float = 0.4,
    ) -> ReplaySample:
        """Sample ``batch_size`` transitions (with replacement) as n-step returns.

        Uniform, or with ``prioritized=True`` proportional to ``p_i^alpha`` with
        importance-sampling weights ``w_i = (size * P(i))^-beta``, normalised by their
        maximum over the sampled batch (as in Schaul et al. 2016's Alg. 1 and most
        implementations). The n-step return sums up to ``n_step`` rewards and stops at the
        step where the episode ends (terminated or truncated); windows that would read past
        the newest stored step are never drawn. ``generator`` (on the buffer's device)
        makes the sample reproducible; the buffer itself is not changed.
        """
        batch_size = _positive_int("batch_size", batch_size)
        n_step = _positive_int("n_step", n_step)
        if batch_size > self.size:
            raise ValueError(
                f"batch_size ({batch_size}) must not exceed the number of stored "
                f"transitions ({self.size})"
            )
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0 <= gamma <= 1:
            raise ValueError(f"gamma must be a number in [0, 1], got {gamma!r}")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1e9:
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        dev, n_envs = self._device, self._num_envs
        head, tail_valid = self._nstep_tail(n_step)
        # With a head start some window always fits; only fewer stored steps than n_step
        # need a (synchronising) look at the tail.
        if head == 0 and not bool(tail_valid.any()):
            raise ValueError(
                f"no {n_step}-step window fits in the {self._filled} stored steps per env "
                f"(and no episode ends in them): n_step ({n_step}) is too large"
            )

        if self.prioritized:
            logical, env, weights = self._sample_prioritized(
                batch_size, generator, head, tail_valid, beta
            )
        else:
            # Uniform over the valid (start, env) pairs: flat index r < head*N is a head start,
            # the rest index the valid tail starts in order. randint needs the count on the
            # host: one device synchronisation when n_step > 1.
            n_tail = int(tail_valid.sum()) if n_step > 1 else 0
            r = torch.randint(
                head * n_envs + n_tail, (batch_size,), generator=generator, device=dev
            )
            logical, env = r // n_envs, r % n_envs
            if n_tail:
                tail = torch.nonzero(tail_valid.flatten()).squeeze(1)
                in_tail = r >= head * n_envs
                t_idx = tail[(r - head * n_envs).clamp(min=0, max=n_tail - 1)]
                logical = torch.where(in_tail, head + t_idx // n_envs, logical)
                env = torch.where(in_tail, t_idx % n_envs, env)
            weights = torch.ones(batch_size, dtype=torch.float32, device=dev)

        # n-step return: R = sum_{k<K} gamma^k r_{t+k}, K the steps up to and including the
        # episode's end (at most n_step); bootstrap with gamma^K (1 - terminated) Q(s_{t+K}).
        first = self._slot(logical)
        ret = torch.zeros(batch_size, dtype=torch.float32, device=dev)
        alive = torch.ones(batch_size, dtype=torch.bool, device=dev)
        terminated = torch.zeros(batch_size, dtype=torch.bool, device=dev)
        steps = torch.zeros(batch_size, dtype=torch.float32, device=dev)
        last = first
        for k in range(n_step):
            # Dead windows may point past the newest step; clamp so they read written data.
            slot = self._slot((logical + k).clamp(max=self._filled - 1))
            ret = torch.where(alive, ret + gamma**k * self._reward[slot, env], ret)
            last = torch.where(alive, slot, last)
            steps += alive
            term, trunc = self._terminated[slot, env], self._truncated[slot, env]
            terminated |= alive & term
            alive &= ~(term | trunc)
        terminated_f = terminated.float()
        return ReplaySample(
            obs=_map(lambda x: x[first, env], self._obs),
            action=self._action[first, env],
            reward=ret,
            next_obs=_map(lambda x: x[last, env], self._next_obs),
            terminated=terminated_f,
            discount=torch.pow(gamma, steps) * (1.0 - terminated_f),
            weights=weights,
            indices=torch.stack([first, env], dim=1),
            extras={k: v[first, env] for k, v in self._extras.items()},
        )

    def _sample_prioritized(
        self,
        batch_size: int,
        generator: torch.Generator | None,
        head: int,
        tail_valid: torch.Tensor,
        beta: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Proportional prioritized sampling (Schaul et al. 2016, Sec. 3.3 and 3.4).

        P(i) = p_i^alpha / sum_k p_k^alpha (Eq. 1), drawn by inverting the cumulative sum of
        the (T*N) stored ``p^alpha`` with ``torch.searchsorted``. That is O(capacity) per
        sample but a handful of vectorised kernels on the device, which for the buffer sizes
        used here is faster than a sum tree's O(B log capacity) Python-level tree walks and
        keeps sampling side-effect free. Unwritten slots have priority 0 and are never drawn;
        n-step windows that do not fit get probability 0 too.
        """
        dev, n_envs = self._device, self._num_envs
        priority = self._priority
        if tail_valid.shape[0]:
            tail_slots = self._slot(torch.arange(head, self._filled, device=dev))
            priority = priority.clone()
            priority[tail_slots] = torch.where(tail_valid, priority[tail_slots], 0.0)
        flat = priority.flatten().double()
        cumsum = torch.cumsum(flat, 0)
        total = cumsum[-1]
        u = torch.rand(batch_size, generator=generator, dtype=torch.float64, device=dev) * total
        # The first index whose cumulative sum exceeds u has p > 0 (right=True skips entries of
        # priority 0); keeping u below the total (rounding could reach it) keeps the index at
        # or before the last positive priority, without a device synchronisation.
        u = torch.minimum(u, torch.nextafter(total, torch.zeros_like(total)))
        idx = torch.searchsorted(cumsum, u, right=True)
        prob = flat[idx] / total
        # Importance-sampling weights w_i = (N * P(i))^-beta (Sec. 3.4), N the stored size,
        # normalised by the batch's max so that they only scale updates down.
        weights = (self.size * prob) ** (-beta)
        weights = (weights / weights.max()).float()
        slot, env = idx // n_envs, idx % n_envs
        oldest = self._pos if self.full else 0
        return (slot - oldest) % self._slots, env, weights

    def update_priorities(
        self, indices: torch.Tensor, priorities: Any, *, check: bool = True
    ) -> None:
        """Set the priorities ``p_i`` (e.g. |TD error| + eps) of sampled transitions.

        ``indices`` is a sample's (B, 2) ``indices``; ``priorities`` a (B,) batch of finite,
        positive numbers within float32's range. The stored value is ``p_i^alpha`` (float32);
        the running maximum priority, given to new transitions, is updated too, on the
        device. Raises ``ValueError`` (and changes nothing) for indices of transitions not
        stored, or a priority that is not finite, not > 0, beyond float32's range, or whose
        ``p^alpha`` overflows float32 or rounds to 0 there (the transition would never be
        drawn again).

        The value checks cost one device synchronisation; ``check=False`` skips them (then
        nothing here synchronises), at the caller's risk: a NaN priority spoils sampling.
        """
        if not self.prioritized:
            raise ValueError("update_priorities() needs a buffer built with prioritized=True")
        idx = torch.as_tensor(indices).to(self._device)
        if (
            idx.dim() != 2
            or idx.shape[1] != 2
            or idx.dtype.is_floating_point
            or idx.dtype == torch.bool
        ):
            raise ValueError(
                f"indices: expected an integer tensor of shape (B, 2) of (time slot, env), got "
                f"shape {tuple(idx.shape)} dtype {idx.dtype}"
            )
        p = torch.as_tensor(
            np.asarray(priorities) if not isinstance(priorities, torch.Tensor) else priorities
        )
        p = p.detach().to(self._device)
        if tuple(p.shape) != (idx.shape[0],) or not (
            p.dtype.is_floating_point or _dtype_kind(p.dtype) == "int"
        ):
            raise ValueError(
                f"priorities: expected a numeric tensor of shape ({idx.shape[0]},) matching "
                f"indices, got shape {tuple(p.shape)} dtype {p.dtype}"
            )
        if len(p) == 0:
            return
        p = p.double()
        stored = (p**self.alpha).float()
        slot, env = idx[:, 0].long(), idx[:, 1].long()
        if check:
            in_range = (slot >= 0) & (slot < self._filled) & (env >= 0) & (env < self._num_envs)
            valid = torch.isfinite(p.float()) & (p > 0)  # NaN, inf, <= 0 or beyond float32
            stored_ok = torch.isfinite(stored) & (stored > 0)
            ok = torch.stack([in_range.all(), valid.all(), stored_ok.all()])
            if not bool(ok.all()):
                self._priority_error(idx, p, stored, in_range, valid, stored_ok)
        self._priority[slot, env] = stored
        self._set_max_priority(torch.maximum(self._max_priority, p.max()))

    def _priority_error(
        self,
        idx: torch.Tensor,
        p: torch.Tensor,
        stored: torch.Tensor,
        in_range: torch.Tensor,
        valid: torch.Tensor,
        stored_ok: torch.Tensor,
    ) -> None:
        """Raise the ``ValueError`` for the first failed check of :meth:`update_priorities`."""
        if not bool(in_range.all()):
            raise ValueError(
                f"indices: expected (time slot, env) of stored transitions (slots "
                f"0..{self._filled - 1}, envs 0..{self._num_envs - 1}), got "
                f"{idx[~in_range].tolist()}"
            )
        if not bool(valid.all()):
            raise ValueError(
                f"priorities: expected finite values > 0 within float32's range (<= "
                f"{_FLOAT32_MAX:.8g}), got {p[~valid].tolist()}"
            )
        raise ValueError(
            f"priorities: p**alpha (alpha={self.alpha}) must be a finite float32 > 0 (it is "
            f"what is stored), but priorities {p[~stored_ok].tolist()} give "
            f"{stored[~stored_ok].tolist()}"
        )

    def sample_sequences(
        self,
        batch_size: int,
        length: int,
        burn_in: int = 0,
        generator: torch.Generator | None = None,
    ) -> SequenceSample:
        """Sample ``batch_size`` sequences of ``burn_in + length`` consecutive steps of one
        environment each, uniformly, time-major (L, B, ...), for recurrent learners (R2D2).

        Following Kapturowski et al. 2019 (Sec. 3), the first ``burn_in`` steps only unroll
        the recurrent core from its stored (or zero) state and get no loss: ``mask`` is 0 on
        them. From the first post-burn-in step, ``mask`` is 1 up to and including the step
        where that step's episode ends, 0 after. ``episode_start`` marks steps that begin an
        episode (the learner resets its recurrent state there). Sequences lie wholly in
        written data and never cross the ring's overwrite point.
        """
        batch_size = _positive_int("batch_size", batch_size)
        length = _positive_int("length", length)
        if isinstance(burn_in, bool) or not isinstance(burn_in, (int, np.integer)) or burn_in < 0:
            raise ValueError(f"burn_in must be an int >= 0, got {burn_in!r}")
        steps = burn_in + length
        if steps > self._slots:
            raise ValueError(
                f"burn_in + length ({burn_in} + {length} = {steps}) exceeds the {self._slots} "
                f"time slots per env of this buffer"
            )
        if steps > self._filled:
            raise ValueError(
                f"burn_in + length ({steps}) exceeds the {self._filled} steps per env stored so far"
            )
        dev, n_envs = self._device, self._num_envs
        r = torch.randint(
            (self._filled - steps + 1) * n_envs, (batch_size,), generator=generator, device=dev
        )
        start, env = r // n_envs, r % n_envs
        slots = self._slot(start[None, :] + torch.arange(steps, device=dev)[:, None])  # (L, B)
        envs = env[None, :].expand(steps, batch_size)

        def take(x: torch.Tensor) -> torch.Tensor:
            return x[slots, envs]

        terminated, truncated = take(self._terminated), take(self._truncated)
        # Learning mask: after the burn-in, 1 until (and including) the first episode end.
        done = (terminated | truncated)[burn_in:].int()
        ended_before = (torch.cumsum(done, 0) - done) > 0
        mask = torch.zeros(steps, batch_size, dtype=torch.float32, device=dev)
        mask[burn_in:] = (~ended_before).float()
        return SequenceSample(
            obs=_map(take, self._obs),
            action=take(self._action),
            reward=take(self._reward),
            next_obs=_map(take, self._next_obs),
            terminated=terminated,
            truncated=truncated,
            extras={k: take(v) for k, v in self._extras.items()},
            episode_start=take(self._episode_start),
            mask=mask,
            indices=torch.stack([slots[0], env], dim=1),
        )

    # --- saving and loading ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to go on bit-identically: the stored transitions
        and extras, the priorities and their running maximum, the ring's position and fill,
        and each environment's pending episode start; as CPU tensors (copies) and a JSON
        string of metadata, so that :meth:`from_state_dict` and :meth:`load` run no code."""
        obs_meta, obs_tensors = _space_state(self.observation_space)
        action_meta, action_tensors = _space_state(self.action_space)
        meta = {
            "format": _FORMAT,
            "capacity": self.capacity,
            "num_envs": self._num_envs,
            "slots": self._slots,
            "pos": self._pos,
            "filled": self._filled,
            "prioritized": self.prioritized,
            "alpha": self.alpha,
            # A float64 in JSON round-trips exactly (Python writes the shortest exact repr).
            "max_priority": self.max_priority,
            "observation_space": obs_meta,
            "action_space": action_meta,
            "obs_fields": _map(lambda f: [list(f.shape), str(f.dtype)], self._obs_field),
            "action_field": [list(self._action_field.shape), str(self._action_field.dtype)],
            "extras": {k: [list(f.shape), str(f.dtype)] for k, f in self._extra_fields.items()},
        }

        def cpu(x: torch.Tensor) -> torch.Tensor:
            return x.detach().cpu().clone()

        return {
            "meta": json.dumps(meta),
            "spaces": {"observation": obs_tensors, "action": action_tensors},
            "storage": {
                "obs": _map(cpu, self._obs),
                "next_obs": _map(cpu, self._next_obs),
                "action": cpu(self._action),
                "reward": cpu(self._reward),
                "terminated": cpu(self._terminated),
                "truncated": cpu(self._truncated),
                "episode_start": cpu(self._episode_start),
                "priority": cpu(self._priority),
                "prev_done": cpu(self._prev_done),
                "extras": {k: cpu(v) for k, v in self._extras.items()},
            },
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the buffer to one file (tensors and JSON metadata only, no pickled objects),
        all or nothing, creating its folder."""
        atomic_save(self.state_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> ReplayBuffer:
        """Read a buffer written by :meth:`save` onto ``device``; loading runs no code
        (``weights_only=True``). It samples exactly what the saved buffer would.

        Raises ``FileNotFoundError`` (or ``IsADirectoryError``, ``PermissionError``) when
        the file cannot be opened, and ``ValueError`` naming the path when it is empty,
        damaged, or holds something other than a consistent replay buffer.
        """
        name = os.fspath(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise  # the file cannot be opened: the OS's error names the path and the cause
        except Exception as e:
            # torch.load reports a damaged file in many ways: EOFError (empty), RuntimeError
            # or OSError (cut-off zip archive), UnpicklingError or KeyError (other bytes), ...
            lines = str(e).strip().splitlines()
            detail = f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__
            raise ValueError(
                f"{name} is not a cogrl replay file: torch.load failed ({detail})"
            ) from e
        return cls._from_state(state, device, name, "replay file")

    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, Any], device: str | torch.device = "cpu"
    ) -> ReplayBuffer:
        """The buffer that :meth:`state_dict` describes, on ``device`` (the state is copied,
        not shared). Raises ``ValueError`` naming what is missing or out of range: counters
        (``pos``, ``filled``, ``max_priority``), priorities, or storage tensors whose shape or
        dtype does not match the declared spaces, extras and capacity."""
        return cls._from_state(state, device, "state", "replay state dict")

    @classmethod
    def _from_state(
        cls, state: Any, device: str | torch.device, source: str, kind: str
    ) -> ReplayBuffer:
        """:meth:`from_state_dict`, with messages naming ``source`` (a path, or "state")."""

        device = resolve_device(device)  # the caller's argument: no "not a replay" message

        def not_replay(detail: str) -> ValueError:
            return ValueError(f"{source} is not a cogrl {kind}: {detail}")

        if not isinstance(state, Mapping):
            raise not_replay(f"expected a dict, got {type(state).__name__}")
        try:
            meta = json.loads(state["meta"])
        except (KeyError, TypeError, ValueError) as e:
            raise not_replay(f"no readable metadata ({type(e).__name__}: {e})") from e
        if not isinstance(meta, dict):
            raise not_replay(f"its metadata is a {type(meta).__name__}, expected a dict")
        if meta.get("format") != _FORMAT:
            raise not_replay(f"expected format {_FORMAT!r}, got {meta.get('format')!r}")
        try:
            obs_space = _space_from_state(meta["observation_space"], state["spaces"]["observation"])
            action_space = _space_from_state(meta["action_space"], state["spaces"]["action"])
            extras = {
                k: (tuple(shape), _dtype_from_str(dtype))
                for k, (shape, dtype) in meta["extras"].items()
            }
            args = [meta[k] for k in ("capacity", "num_envs", "prioritized", "alpha", "slots")]
            counters = [meta[k] for k in ("pos", "filled", "max_priority")]
            storage = state["storage"]
        except (KeyError, IndexError, TypeError, AttributeError, ValueError, AssertionError) as e:
            # ValueError and AssertionError: gymnasium refusing the saved space's parameters.
            raise not_replay(f"missing or malformed entry ({type(e).__name__}: {e})") from e
        capacity, num_envs, prioritized, alpha, slots = args
        try:
            buffer = cls(
                capacity,
                num_envs,
                obs_space,
                action_space,
                device=device,
                prioritized=prioritized,
                alpha=alpha,
                extras=extras,
            )
        except ValueError as e:  # bad capacity, alpha, ... or too large for this device
            raise ValueError(f"{source}: {e}") from e
        if buffer._slots != slots:
            raise ValueError(
                f"{source}: slots ({slots!r}) must equal capacity // num_envs "
                f"({capacity} // {num_envs} = {buffer._slots})"
            )
        buffer._restore_counters(*counters, source=source)
        buffer._restore_storage(storage, source=source)
        return buffer

    def _restore_counters(self, pos: Any, filled: Any, max_priority: Any, source: str) -> None:
        """Set the loaded ring position, fill and maximum priority, each checked against the
        range that sampling and writing rely on."""
        slots = self._slots
        if not _is_int(filled) or not 0 <= filled <= slots:
            raise ValueError(
                f"{source}: filled (the written time slots) must be an int in [0, {slots}], "
                f"got {filled!r}"
            )
        if not _is_int(pos) or not 0 <= pos < slots:
            raise ValueError(
                f"{source}: pos (the next time slot to write) must be an int in "
                f"[0, {slots}), got {pos!r}"
            )
        if filled < slots and pos != filled:
            raise ValueError(
                f"{source}: pos must equal filled ({filled}) until all {slots} slots are "
                f"written, got pos {pos}"
            )
        number = isinstance(max_priority, (int, float)) and not isinstance(max_priority, bool)
        with np.errstate(all="ignore"):  # overflow to inf is what is checked for
            value = np.float64(max_priority if number and abs(max_priority) < 2**1024 else np.nan)
            fits = bool(np.isfinite(np.float32(value)))  # as update_priorities requires
            stored = np.float32(value**self.alpha) if value > 0 else np.float32(0)
        if not (value > 0 and fits and 0 < stored < math.inf):
            raise ValueError(
                f"{source}: max_priority must be a finite number in (0, {_FLOAT32_MAX:.8g}] "
                f"whose max_priority**alpha (alpha={self.alpha}) is a finite float32 > 0, got "
                f"{max_priority!r}"
            )
        self._pos, self._filled = int(pos), int(filled)
        self._set_max_priority(
            torch.tensor(float(max_priority), dtype=torch.float64, device=self._device)
        )

    def _restore_storage(self, storage: Any, source: str) -> None:
        """Copy the loaded tensors into the preallocated storage, each checked for the shape
        and dtype that the declared spaces, extras and capacity give it."""

        def put(name: str, store: torch.Tensor, value: Any) -> None:
            if (
                not isinstance(value, torch.Tensor)
                or value.shape != store.shape
                or value.dtype != store.dtype
            ):
                got = (
                    f"shape {tuple(value.shape)} dtype {value.dtype}"
                    if isinstance(value, torch.Tensor)
                    else type(value).__name__
                )
                raise ValueError(
                    f"{source}: storage {name} must have shape {tuple(store.shape)} (time "
                    f"slots, envs, ...) and dtype {store.dtype}, as the declared spaces, extras "
                    f"and capacity give it; got {got}"
                )
            store.copy_(value)

        try:
            for name, stores in (("obs", self._obs), ("next_obs", self._next_obs)):
                if isinstance(stores, dict):
                    for k, store in stores.items():
                        put(f"{name}[{k!r}]", store, storage[name][k])
                else:
                    put(name, stores, storage[name])
            for name in ("action", "reward", "terminated", "truncated", "episode_start"):
                put(name, getattr(self, f"_{name}"), storage[name])
            put("priority", self._priority, storage["priority"])
            put("prev_done", self._prev_done, storage["prev_done"])
            for k, v in self._extras.items():
                put(f"extras[{k!r}]", v, storage["extras"][k])
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError(
                f"{source}: missing or malformed storage ({type(e).__name__}: {e})"
            ) from e
        # Sampling draws in proportion to these: written slots need p^alpha > 0, unwritten
        # ones 0 (or they would be drawn).
        written = (torch.arange(self._slots, device=self._device) < self._filled)[:, None]
        priority = self._priority
        ok = torch.isfinite(priority) & torch.where(written, priority > 0, priority == 0)
        if not bool(ok.all()):
            bad = torch.nonzero(~ok)[0].tolist()
            raise ValueError(
                f"{source}: priority must be finite and > 0 in the {self._filled} written time "
                f"slots, 0 in the others; got {priority[bad[0], bad[1]].item()} at (slot, env) "
                f"{tuple(bad)}"
            )
