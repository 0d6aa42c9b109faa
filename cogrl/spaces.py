"""Gymnasium spaces and torch tensors: observations to tensors, and action checks, in one place.

Observations
    :func:`to_tensor` turns observations (numpy arrays, tensors, dicts of them) into tensors
    in the dtype cogrl's encoders expect (:func:`torch_dtype`): float32, int64 for token ids
    (``Discrete``, ``MultiDiscrete``), uint8 for byte images. :func:`is_batched`,
    :func:`batch_size` and :func:`unsqueeze` tell and make batches.

Actions
    :func:`check_actions` checks a batch of actions against a space and returns it as a
    tensor of the space's dtype on a device. Shape and dtype are checked always: they are
    host metadata, free on any device. Values (bounds, ranges, finiteness) are checked only
    with ``values=True``, because reading them from a GPU waits for every queued kernel; a
    learner whose actions are valid by construction (sampled from its own heads) turns the
    value checks off. Actions are never clipped or cast across kinds: a floating space takes
    floating dtypes, an integer space (``Discrete``, ``MultiDiscrete``, integer ``Box``)
    integer dtypes, ``MultiBinary`` integer or bool dtypes, as ``Space.contains`` does in
    Gymnasium. Every error is a ``ValueError`` naming the value, where the bad entry is, and
    what the space expects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

__all__ = [
    "torch_dtype",
    "to_tensor",
    "check_finite",
    "is_batched",
    "batch_size",
    "unsqueeze",
    "check_actions",
]

# Spaces whose batches are one tensor (the others, Dict and Tuple, are made of these).
TENSOR_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)

# How many bad values an error message lists.
_SHOWN = 8


# --- observations -----------------------------------------------------------------------------


def torch_dtype(space: spaces.Space) -> torch.dtype:
    """The dtype of ``space``'s observations as cogrl's encoders take them: int64 token ids
    for ``Discrete``/``MultiDiscrete``, uint8 for byte-image ``Box``es, else float32."""
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        return torch.int64
    if isinstance(space, spaces.MultiBinary):
        return torch.float32
    if isinstance(space, spaces.Box) and space.dtype == np.uint8:
        return torch.uint8
    return torch.float32


def to_tensor(
    obs: Any, space: spaces.Space, device: str | torch.device, name: str = "observation"
) -> Any:
    """Observations (numpy or tensors, also dicts) as tensors on ``device`` in the dtype
    :func:`torch_dtype` gives for ``space``.

    Observations are numbers: bool, integer and floating dtypes convert; any other dtype
    (complex, whose imaginary part a cast would drop; strings, objects) is a ValueError
    naming ``name`` (and the key of a dict observation)."""
    if isinstance(space, spaces.Dict):
        return {k: to_tensor(obs[k], s, device, f"{name}[{k!r}]") for k, s in space.spaces.items()}
    if isinstance(obs, torch.Tensor):
        x, kind = obs, _tensor_kind(obs)
    else:
        array = np.asarray(obs)
        kind = array.dtype.kind
        x = array
    if kind not in "biuf":
        raise ValueError(
            f"{name} {_show(obs)} has dtype {str(x.dtype).removeprefix('torch.')}: expected "
            f"numbers (bool, integer or floating) for {space}"
        )
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    return x.to(device=device, dtype=torch_dtype(space))


def check_finite(obs: Any, name: str = "observation") -> None:
    """ValueError naming ``name`` (and the key of a dict) where a floating tensor of ``obs``
    holds NaN or an infinity, which no network can act on (one read of a reduced flag)."""
    if isinstance(obs, Mapping):
        for k, v in obs.items():
            check_finite(v, f"{name}[{k!r}]")
        return
    if obs.is_floating_point():
        bad = ~torch.isfinite(obs)
        if bool(bad.any()):
            values, where = _first_bad(obs, bad)
            raise ValueError(f"{name} has non-finite value(s) {values}{where}")


def is_batched(obs: Any, space: spaces.Space) -> bool:
    """Whether ``obs`` is a batch of observations of ``space`` (one more leading dim).

    An observation whose shape is neither the space's nor a batch of it is a ValueError
    naming both shapes; so are dict observations missing keys of the space or mixing
    batched and unbatched entries.
    """
    if isinstance(space, spaces.Dict):
        if not isinstance(obs, Mapping):
            raise ValueError(
                f"observation must be a dict for space {space}, got {type(obs).__name__}"
            )
        missing = sorted(set(space.spaces) - set(obs))
        if missing:
            raise ValueError(f"observation lacks key(s) {missing} of space {space}")
        found = {
            key: _batch_of(obs[key], sub, f"observation[{key!r}]")
            for key, sub in space.spaces.items()
        }
        sizes = set(found.values())
        if len(sizes) > 1:
            raise ValueError(
                f"the entries of a dict observation disagree on the batch: {found} "
                "(None: unbatched)"
            )
        return sizes.pop() is not None
    return _batch_of(obs, space, "observation") is not None


def _batch_of(obs: Any, space: spaces.Space, name: str) -> int | None:
    """The batch size of ``obs`` for ``space``, None when it is one observation."""
    shape = tuple(obs.shape) if isinstance(obs, torch.Tensor) else np.shape(obs)
    expected = tuple(space.shape) if space.shape is not None else ()
    if shape == expected:
        return None
    if len(shape) == len(expected) + 1 and shape[1:] == expected:
        return shape[0]
    batch = ", ".join(["n", *map(str, expected)])
    raise ValueError(
        f"{name} of shape {shape} does not fit {space}: expected shape {expected} "
        f"(one observation) or ({batch}) (a batch)"
    )


def batch_size(obs: Any) -> int:
    """The leading dimension of a batch (of its first entry, for a dict)."""
    if isinstance(obs, Mapping):
        return next(iter(obs.values())).shape[0]
    return obs.shape[0]


def unsqueeze(obs: Any) -> Any:
    """One observation (a tensor or a dict of them) as a batch of one."""
    if isinstance(obs, Mapping):
        return {k: v[None] for k, v in obs.items()}
    return obs[None]


# --- actions ------------------------------------------------------------------------------------


def check_actions(
    space: spaces.Space,
    action: Any,
    num_envs: int | None,
    device: str | torch.device,
    values: bool = True,
) -> Any:
    """``action``, a batch of ``num_envs`` actions of ``space``, as tensors on ``device``.

    ``action`` may be a tensor (any device), a numpy array, a list or a number; ``num_envs``
    ``None`` means one action without a batch dimension. The result has the space's dtype:
    a tensor for ``Box``, ``Discrete``, ``MultiDiscrete`` and ``MultiBinary``, a dict (tuple)
    of results for ``Dict`` (``Tuple``) spaces. Other spaces (``Text``, ...) have no tensor
    form: their batch comes back as the numpy array, checked element by element with
    ``space.contains`` when ``values`` is true.

    Shape and dtype are always checked (host metadata, no tensor read); bounds, ranges and
    finiteness only when ``values`` is true (one read of a reduced flag). ValueError on any
    mismatch.
    """
    return _check(space, action, num_envs, torch.device(device), values, "action")


def _check(
    space: spaces.Space,
    action: Any,
    n: int | None,
    device: torch.device,
    values: bool,
    name: str,
) -> Any:
    if isinstance(space, spaces.Dict):
        if not isinstance(action, Mapping) or set(action) != set(space.spaces):
            raise _invalid(name, action, space, n, f"a dict with keys {sorted(space.spaces)}")
        return {
            k: _check(s, action[k], n, device, values, f"{name}[{k!r}]")
            for k, s in space.spaces.items()
        }
    if isinstance(space, spaces.Tuple):
        if not isinstance(action, Sequence) or len(action) != len(space.spaces):
            raise _invalid(name, action, space, n, f"a tuple of {len(space.spaces)} entries")
        return tuple(
            _check(s, a, n, device, values, f"{name}[{j}]")
            for j, (s, a) in enumerate(zip(space.spaces, action, strict=True))
        )

    # Shape and dtype: metadata only, whatever the device.
    if isinstance(action, torch.Tensor):
        a = action
        kind = _tensor_kind(a)
    else:
        try:
            a = np.asarray(action)
        except (TypeError, ValueError) as e:
            raise _invalid(name, action, space, n, f"not an array: {e}") from e
        kind = a.dtype.kind
    dtype = str(a.dtype).removeprefix("torch.")
    shape = tuple(a.shape)
    if space.shape is None or not isinstance(space, TENSOR_SPACES):
        return _check_other(space, action, a, n, values, name)
    expected = space.shape if n is None else (n, *space.shape)
    if shape != expected:
        raise _invalid(name, action, space, n, f"shape {shape}, expected {expected}")
    floating = isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.floating)
    if floating and kind != "f":
        raise _invalid(name, action, space, n, f"dtype {dtype}, expected a floating dtype")
    if not floating:
        allowed = "iub" if isinstance(space, spaces.MultiBinary) else "iu"
        if kind not in allowed:
            raise _invalid(
                name, action, space, n, f"dtype {dtype}, expected integers (an integer dtype)"
            )

    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(a)
    t = t.to(device=device, dtype=_torch_action_dtype(space))
    if not values:
        return t

    # Values, compared as given (before a cast could wrap or round them): one flag read
    # from the device; which values are bad is worked out on the error path only.
    if isinstance(a, torch.Tensor):
        given = a
    else:
        given = torch.as_tensor(a.astype(np.int64) if kind == "u" and a.itemsize > 1 else a)
    low, high, interval = _bounds(space, given.device)
    outside = (given < low) | (given > high)
    if floating:
        not_finite = ~torch.isfinite(given)
        if bool((not_finite | outside).any()):
            if bool(not_finite.any()):
                bad, where = _first_bad(given, not_finite)
                raise _invalid(name, action, space, n, f"non-finite value(s) {bad}{where}")
            bad, where = _first_bad(given, outside)
            raise _invalid(name, action, space, n, f"value(s) {bad} outside {interval}{where}")
    elif bool(outside.any()):
        bad, where = _first_bad(given, outside)
        raise _invalid(name, action, space, n, f"value(s) {bad} outside {interval}{where}")
    return t


def _check_other(
    space: spaces.Space, action: Any, a: Any, n: int | None, values: bool, name: str
) -> Any:
    """Spaces without a tensor form: per-element ``space.contains``."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    if n is None:
        if values and not space.contains(action):
            raise _invalid(name, action, space, n, "not in the space")
        return a
    if a.ndim == 0 or len(a) != n:
        raise _invalid(name, action, space, n, f"shape {a.shape}, expected {n} entries")
    if values:
        for i, element in enumerate(a):
            if not space.contains(element):
                raise _invalid(
                    name, action, space, n, f"{element!r} at index {i} is not in the space"
                )
    return a


def _tensor_kind(t: torch.Tensor) -> str:
    """numpy's dtype ``kind`` letter of a tensor's dtype."""
    if t.dtype == torch.bool:
        return "b"
    if t.is_floating_point():
        return "f"
    if t.is_complex():
        return "c"
    return "u" if t.dtype in (torch.uint8, torch.uint16, torch.uint32, torch.uint64) else "i"


def _torch_action_dtype(space: spaces.Space) -> torch.dtype:
    """The torch dtype of the space's own dtype (unsigned wider than 8 bits: int64)."""
    dtype = np.dtype(space.dtype)
    if dtype.kind == "u" and dtype.itemsize > 1:
        return torch.int64
    return torch.from_numpy(np.empty(0, dtype)).dtype


def _bounds(space: spaces.Space, device: torch.device) -> tuple[Any, Any, str]:
    """Inclusive low and high of ``space``'s values and how to say them: numbers when every
    entry shares them (the common case), else tensors on ``device``."""
    if isinstance(space, spaces.Discrete):
        low = int(space.start)
        return low, low + int(space.n) - 1, f"[{low}, {low + int(space.n)})"
    if isinstance(space, spaces.MultiBinary):
        return 0, 1, "{0, 1}"
    if isinstance(space, spaces.MultiDiscrete):
        low, high = np.asarray(space.start), np.asarray(space.start + space.nvec - 1)
        words = f"[start, start + nvec) = [{low.tolist()}, {(high + 1).tolist()})"
    else:
        assert isinstance(space, spaces.Box)
        low, high = np.asarray(space.low), np.asarray(space.high)
        words = f"the bounds of {space}"
    if low.size and (low == low.flat[0]).all() and (high == high.flat[0]).all():
        lo, hi = low.flat[0].item(), high.flat[0].item()
        if isinstance(space, spaces.Box):
            return lo, hi, f"[{lo:g}, {hi:g}]"
        return lo, hi, f"[{lo}, {hi + 1})"
    return torch.as_tensor(low, device=device), torch.as_tensor(high, device=device), words


def _first_bad(a: torch.Tensor, bad: torch.Tensor) -> tuple[str, str]:
    """The bad values (the first few) and where the first is: for the error path only."""
    found = a[bad].tolist()
    shown = ", ".join(repr(v) for v in found[:_SHOWN]) + (", ..." if len(found) > _SHOWN else "")
    where = tuple(int(i) for i in bad.nonzero()[0]) if bad.ndim else ()
    return f"[{shown}]", f", first at index {where}" if where else ""


def _invalid(name: str, value: Any, space: spaces.Space, n: int | None, why: str) -> ValueError:
    what = "an action" if n is None else f"a batch of {n} actions"
    return ValueError(f"invalid {name} {_show(value)}: expected {what} from {space} ({why})")


def _show(value: Any, limit: int = 300) -> str:
    """``repr(value)`` cut to ``limit`` characters (arrays and tensors summarise themselves)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
