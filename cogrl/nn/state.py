"""Recurrent state of any nesting: one set of utilities for every core.

A core's state is a tensor with the batch on its first axis, or a structure of them:
tuples (the LSTM's ``(h, c)``), NamedTuples (a memory core's controller state, memory
matrix, read and write weightings and last reads), lists and dicts, nested to any depth.
Learners never look inside: they map, reset, index, detach and pack it with the functions
here, so that a new core's state flows through rollouts, R2D2 sequences, ``predict(state=...)``
and resets unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

__all__ = [
    "State",
    "detach_state",
    "index_state",
    "leaves",
    "map_state",
    "pack_state",
    "reset_state",
    "state_from_leaves",
    "state_size",
    "unpack_state",
]

#: A core's recurrent state: a tensor (B, ...) or a (nested) tuple, NamedTuple, list or dict
#: of them.
State = Any


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def map_state(fn: Callable[..., torch.Tensor], state: State, *others: State) -> State:
    """``fn`` applied to every tensor of ``state`` (and the matching ones of ``others``),
    keeping the structure: NamedTuples stay their type, dicts keep their keys."""
    if isinstance(state, torch.Tensor):
        return fn(state, *others)
    if _is_namedtuple(state):
        return type(state)(*(map_state(fn, *parts) for parts in zip(state, *others, strict=True)))
    if isinstance(state, (tuple, list)):
        return type(state)(map_state(fn, *parts) for parts in zip(state, *others, strict=True))
    if isinstance(state, Mapping):
        return {k: map_state(fn, v, *(o[k] for o in others)) for k, v in state.items()}
    raise TypeError(
        f"a recurrent state holds tensors, tuples, NamedTuples, lists or dicts; "
        f"got {type(state).__name__}"
    )


def leaves(state: State) -> list[torch.Tensor]:
    """The tensors of ``state`` in a fixed order (depth first; dicts by insertion order)."""
    out: list[torch.Tensor] = []
    map_state(lambda s: out.append(s) or s, state)
    return out


def reset_state(state: State, episode_start: torch.Tensor, initial: State) -> State:
    """``where(episode_start, initial, state)`` for every tensor: the environments starting an
    episode take the initial state, the others keep theirs.

    ``episode_start`` is a (B,) bool (or 0/1) tensor; ``initial`` has ``state``'s structure
    (and may require gradients: a learned initial state).
    """
    start = episode_start.to(torch.bool)

    def reset(s: torch.Tensor, init: torch.Tensor) -> torch.Tensor:
        return torch.where(start.view(-1, *([1] * (s.ndim - 1))), init.to(s.dtype), s)

    return map_state(reset, state, initial)


def index_state(state: State, index: Any) -> State:
    """The rows ``index`` (a tensor of indices or a mask) of every tensor of ``state``."""
    return map_state(lambda s: s[index], state)


def detach_state(state: State) -> State:
    return map_state(lambda s: s.detach(), state)


def state_size(like: State) -> int:
    """The width of :func:`pack_state`'s output for states shaped as ``like``."""
    return sum(s[0].numel() for s in leaves(like))


def pack_state(state: State) -> torch.Tensor:
    """A state as one (B, S) float32 tensor, to store in a replay: every tensor flattened
    per row and concatenated in :func:`leaves` order."""
    parts = [s.reshape(s.shape[0], -1).to(torch.float32) for s in leaves(state)]
    if not parts:
        raise ValueError("a recurrent state must hold at least one tensor")
    return torch.cat(parts, dim=-1)


def unpack_state(packed: torch.Tensor, like: State) -> State:
    """The inverse of :func:`pack_state`: (B, S) rows shaped and typed as ``like``'s tensors
    (whose batch size may differ)."""
    shapes = [s.shape[1:] for s in leaves(like)]
    sizes = [s[0].numel() for s in leaves(like)]
    if packed.shape[-1] != sum(sizes):
        raise ValueError(
            f"a packed state of width {packed.shape[-1]} does not fit this core's state "
            f"(width {sum(sizes)})"
        )
    parts = iter(torch.split(packed, sizes, dim=-1))
    it = iter(zip(shapes, leaves(like), strict=True))

    def take(_: torch.Tensor) -> torch.Tensor:
        shape, ref = next(it)
        return next(parts).reshape(-1, *shape).to(ref.dtype)

    return map_state(take, like)


def state_from_leaves(like: State, tensors: list[torch.Tensor]) -> State:
    """The state shaped as ``like`` holding ``tensors`` (in :func:`leaves` order): how a
    state saved as a list of tensors is rebuilt (NamedTuples do not load with
    ``torch.load(weights_only=True)``, lists of tensors do)."""
    expected = len(leaves(like))
    if len(tensors) != expected:
        raise ValueError(f"a saved state holds {len(tensors)} tensors, this core's {expected}")
    it = iter(tensors)
    return map_state(lambda _: next(it), like)
