"""cogrl's tasks, registered with Gymnasium in the namespace ``cogrl`` on import.

Tasks live in one subpackage per family: :mod:`cogrl.envs.attention` (glimpse-based
recognition, multi-object recognition, visual search, saccadic scanpaths) and
:mod:`cogrl.envs.memory` (the NTM's copy, repeat copy and associative recall; delayed
recall; story question answering). Every task is a batched core (:class:`cogrl.core.BatchedEnv`).
``gym.make(id)`` gives a ``gymnasium.Env`` over a core of one; ``gym.make_vec(id, num_envs=N,
vectorization_mode="vector_entry_point")`` a ``gymnasium.vector.VectorEnv`` over a core of
N (both in :mod:`cogrl.envs.adapters`); :func:`make_core` the core itself, as cogrl's agents
use it. :func:`env_metadata` tells what a task measures (``episode_metrics``) and which data
splits it has (``splits``) without building it.

Any other registered Gymnasium id (``CartPole-v1``, or a class of the user's registered with
``gymnasium.register``) works with :func:`make_core` too, and so does ``envpool:<TaskId>``
(an EnvPool task, e.g. ``envpool:CartPole-v1``, ``envpool:Pong-v5``). :func:`make_core` picks
the core:

- ``envpool:<TaskId>``: an :class:`~cogrl.envs.vector_cores.EnvPoolCore` (one C++ call steps
  the batch).
- a Gymnasium id whose spec has a ``vector_entry_point`` that resets a subset of its
  environments (``reset(options={"reset_mask": ...})``, checked by
  :func:`~cogrl.envs.vector_cores.vector_entry_point_support`): a
  :class:`~cogrl.envs.vector_cores.VectorEnvCore` over ``gym.make_vec(id,
  vectorization_mode="vector_entry_point")``, with the same arguments.
- any other Gymnasium id: a :class:`~cogrl.envs.gym_vector.GymVectorCore` over ``gym.make``
  copies stepped one by one (``CartPole-v1`` in Gymnasium 1.4, whose ``CartPoleVectorEnv``
  ignores the reset mask).

The environment argument ``vectorization_mode`` chooses for a Gymnasium id: ``"auto"`` (the
default: the rules above), ``"sync"`` (always ``gym.make`` copies, one by one) or
``"vector_entry_point"`` (the vector env, or a ValueError saying why it cannot be used). It is
an argument like any other (``cogrl train --set env.vectorization_mode=sync``), so it is
saved with a run and an agent rebuilds the same core. :func:`env_kind` tells the kinds of id
apart.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import gymnasium as gym
import torch

from cogrl.core import BatchedEnv, load_core_class
from cogrl.core import make_core as _make_core
from cogrl.envs.gym_vector import GymVectorCore, creator_metadata, gym_spec
from cogrl.envs.vector_cores import (
    EnvPoolCore,
    VectorEnvCore,
    check_envpool_task,
    envpool_task,
    make_gym_vec,
    vector_entry_point_support,
)

__all__ = [
    "register_core",
    "make_core",
    "core_spec",
    "cogrl_env_ids",
    "env_kind",
    "env_metadata",
    "is_core_id",
    "GymVectorCore",
    "VectorEnvCore",
    "EnvPoolCore",
    "VECTORIZATION_MODES",
]

#: Values of the ``vectorization_mode`` environment argument of Gymnasium ids.
VECTORIZATION_MODES = ("auto", "sync", "vector_entry_point")

_TASKS = {
    "cogrl/GlimpseDigits-v0": "cogrl.envs.attention.glimpse:GlimpseDigits",
    "cogrl/TranslatedDigits-v0": "cogrl.envs.attention.glimpse:TranslatedDigits",
    "cogrl/ClutteredDigits-v0": "cogrl.envs.attention.glimpse:ClutteredDigits",
    "cogrl/MultiDigits-v0": "cogrl.envs.attention.multi:MultiDigits",
    "cogrl/Copy-v0": "cogrl.envs.memory.algorithmic:Copy",
    "cogrl/RepeatCopy-v0": "cogrl.envs.memory.algorithmic:RepeatCopy",
    "cogrl/AssociativeRecall-v0": "cogrl.envs.memory.algorithmic:AssociativeRecall",
    "cogrl/DelayedRecall-v0": "cogrl.envs.memory.delayed:DelayedRecall",
    "cogrl/StoryQA-v0": "cogrl.envs.memory.story:StoryQA",
    "cogrl/Scanpath-v0": "cogrl.envs.attention.scanpath:Scanpath",
    "cogrl/VisualSearch-v0": "cogrl.envs.attention.search:VisualSearch",
}


def register_core(env_id: str, core: str | type[BatchedEnv], **kwargs: Any) -> None:
    """Register a batched core under ``env_id`` for ``gym.make``, ``gym.make_vec`` and cogrl.

    ``core`` is a :class:`~cogrl.core.BatchedEnv` subclass or ``"module:Class"``; ``kwargs``
    are default constructor arguments.
    """
    gym.register(
        id=env_id,
        entry_point="cogrl.envs.adapters:CoreEnv",
        vector_entry_point="cogrl.envs.adapters:CoreVectorEnv",
        kwargs={"core": core, **kwargs},
    )


def core_spec(env_id: str) -> tuple[type[BatchedEnv], dict[str, Any]]:
    """The core class and default arguments registered under ``env_id`` (a cogrl id)."""
    kwargs = dict(gym_spec(env_id).kwargs)
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
    """A batched core of ``env_id``, with ``kwargs`` over its registered defaults.

    For a cogrl id, its own core; for ``envpool:<TaskId>``, an
    :class:`~cogrl.envs.vector_cores.EnvPoolCore`; for any other registered Gymnasium id, a
    :class:`~cogrl.envs.vector_cores.VectorEnvCore` over its vector entry point where that
    resets subsets, else a :class:`~cogrl.envs.gym_vector.GymVectorCore` (``kwargs`` go to
    ``gym.make``/``gym.make_vec``; ``vectorization_mode``: see the module docstring). Unknown
    ids and unknown arguments are a ValueError. The core remembers ``env_id`` and ``kwargs``
    as ``spec_id``/``spec_kwargs``, so that an agent given it can rebuild it.
    """
    kind = env_kind(env_id)
    mode = kwargs.get("vectorization_mode", "auto")
    if mode not in VECTORIZATION_MODES:
        raise ValueError(
            f"vectorization_mode must be one of {list(VECTORIZATION_MODES)}, got {mode!r}"
        )
    env_kwargs = {k: v for k, v in kwargs.items() if k != "vectorization_mode"}
    if kind != "gymnasium" and mode != "auto":
        raise ValueError(
            f"vectorization_mode={mode!r} applies to Gymnasium ids only; {env_id} is "
            f"{'a cogrl core' if kind == 'core' else 'an EnvPool task'}, batched already"
        )
    if kind == "core":
        core, defaults = core_spec(env_id)
        made = _make_core(core, num_envs, device, autoreset, **{**defaults, **env_kwargs})
    elif kind == "envpool":
        made = EnvPoolCore(envpool_task(env_id), num_envs, device, autoreset, **env_kwargs)
    elif mode != "sync" and _vectorised(env_id, mode, env_kwargs):
        made = VectorEnvCore(
            partial(make_gym_vec, env_id, env_kwargs), num_envs, device, autoreset, env_id
        )
    else:
        made = GymVectorCore(env_id, num_envs, device, autoreset, **env_kwargs)
    made.spec_id = env_id
    made.spec_kwargs = dict(kwargs)
    return made


def _vectorised(env_id: str, mode: str, env_kwargs: dict[str, Any]) -> bool:
    """Whether ``env_id`` gets a :class:`VectorEnvCore` (``mode`` "auto" or
    "vector_entry_point"; the latter is a ValueError saying why not when it cannot)."""
    probe_kwargs = {k: v for k, v in env_kwargs.items() if k != "render_mode"}
    usable, why = vector_entry_point_support(env_id, **probe_kwargs)
    if not usable and mode == "vector_entry_point":
        raise ValueError(
            f"vectorization_mode='vector_entry_point' cannot be used for {env_id}: {why}; "
            "use vectorization_mode='auto' or 'sync' (gym.make copies)"
        )
    return usable


def env_kind(env_id: str) -> Literal["core", "gymnasium", "envpool"]:
    """``"core"`` for an id backed by a cogrl batched core, ``"envpool"`` for
    ``envpool:<TaskId>`` (EnvPool installed and offering the task), ``"gymnasium"`` for any
    other registered Gymnasium id; ValueError for an id that is not registered."""
    task = envpool_task(env_id)
    if task is not None:
        check_envpool_task(task)
        return "envpool"
    return "core" if "core" in (gym_spec(env_id).kwargs or {}) else "gymnasium"


def env_metadata(env_id: str) -> dict[str, Any]:
    """The metadata of ``env_id``'s class, without building an environment.

    For a cogrl id, its core class's ``metadata``; for any other registered Gymnasium id, the
    ``metadata`` its class declares (if any). Either way ``"episode_metrics"`` (a dict of
    metric name -> info key) and ``"splits"`` (a tuple of the ``split`` argument's values)
    are present, empty where the class declares none (see :class:`cogrl.core.BatchedEnv`).
    ValueError for an id that is not registered.
    """
    kind = env_kind(env_id)
    if kind == "core":
        metadata = dict(core_spec(env_id)[0].metadata)
    elif kind == "envpool":
        metadata = {"render_modes": ["rgb_array"]}
    else:
        metadata = creator_metadata(gym_spec(env_id)) or {}
    metadata["episode_metrics"] = dict(metadata.get("episode_metrics", {}))
    metadata["splits"] = tuple(metadata.get("splits", ()))
    return metadata


def is_core_id(env_id: str) -> bool:
    """Whether ``env_id`` is registered and backed by a cogrl batched core."""
    try:
        return env_kind(env_id) == "core"
    except ValueError:
        return False


def cogrl_env_ids() -> list[str]:
    """Every registered id backed by a batched core."""
    return sorted(k for k, s in gym.registry.items() if "core" in (s.kwargs or {}))


for _id, _core in _TASKS.items():
    if _id not in gym.registry:
        register_core(_id, _core)
