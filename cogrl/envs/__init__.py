"""cogrl's tasks, registered with Gymnasium in the namespace ``cogrl`` on import.

Every task is a batched core (:class:`cogrl.core.BatchedEnv`). ``gym.make(id)`` gives a
``gymnasium.Env`` over a core of one; ``gym.make_vec(id, num_envs=N,
vectorization_mode="vector_entry_point")`` a ``gymnasium.vector.VectorEnv`` over a core of
N; :func:`make_core` the core itself, as cogrl's agents use it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch

from cogrl.core import BatchedEnv, load_core_class
from cogrl.core import make_core as _make_core

__all__ = ["register_core", "make_core", "core_spec", "cogrl_env_ids"]

_TASKS = {
    "cogrl/GlimpseDigits-v0": "cogrl.envs.glimpse:GlimpseDigits",
    "cogrl/TranslatedDigits-v0": "cogrl.envs.glimpse:TranslatedDigits",
    "cogrl/ClutteredDigits-v0": "cogrl.envs.glimpse:ClutteredDigits",
}


def register_core(env_id: str, core: str | type[BatchedEnv], **kwargs: Any) -> None:
    """Register a batched core under ``env_id`` for ``gym.make``, ``gym.make_vec`` and cogrl.

    ``core`` is a :class:`~cogrl.core.BatchedEnv` subclass or ``"module:Class"``; ``kwargs``
    are default constructor arguments.
    """
    gym.register(
        id=env_id,
        entry_point="cogrl.core:CoreEnv",
        vector_entry_point="cogrl.core:CoreVectorEnv",
        kwargs={"core": core, **kwargs},
    )


def core_spec(env_id: str) -> tuple[type[BatchedEnv], dict[str, Any]]:
    """The core class and default arguments registered under ``env_id``."""
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as e:
        raise ValueError(f"unknown environment id {env_id!r}: {e}") from e
    kwargs = dict(spec.kwargs)
    if "core" not in kwargs:
        raise ValueError(
            f"{env_id!r} is a Gymnasium environment but not a cogrl batched core; "
            f"cogrl ids are {cogrl_env_ids()}"
        )
    core = load_core_class(kwargs.pop("core"))
    return core, kwargs


def make_core(
    env_id: str,
    num_envs: int = 1,
    device: str | torch.device = "cpu",
    autoreset: bool = True,
    **kwargs: Any,
) -> BatchedEnv:
    """The batched core of a registered cogrl id, with ``kwargs`` over its defaults."""
    core, defaults = core_spec(env_id)
    return _make_core(core, num_envs, device, autoreset, **{**defaults, **kwargs})


def cogrl_env_ids() -> list[str]:
    """Every registered id backed by a batched core."""
    return sorted(k for k, s in gym.registry.items() if "core" in (s.kwargs or {}))


for _id, _core in _TASKS.items():
    if _id not in gym.registry:
        register_core(_id, _core)
