"""cogrl: reinforcement-learning agents and environments for cognitive tasks.

``import cogrl`` registers every cogrl environment with Gymnasium (namespace ``cogrl``) and
gives ``cogrl.envs`` and ``cogrl.agents`` (and the other subpackages, such as ``cogrl.nn``
and ``cogrl.runner``, on first use).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cogrl import envs
from cogrl.core import BatchedEnv
from cogrl.envs.adapters import CoreEnv, CoreVectorEnv
from cogrl.retina import Retina

if TYPE_CHECKING:
    from cogrl import agents, nn, runner  # noqa: F401

__version__ = "0.1.0"
__all__ = ["agents", "envs", "BatchedEnv", "CoreEnv", "CoreVectorEnv", "Retina", "__version__"]

# Imported on first use (PEP 562): the agents pull in TensorBoard and the learners, which
# a user who only wants `gym.make("cogrl/...")` should not wait for.
_LAZY = ("agents", "nn", "runner")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f"cogrl.{name}")
    raise AttributeError(f"module 'cogrl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
