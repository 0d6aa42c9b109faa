"""Memory tasks: the Neural Turing Machine's algorithmic tasks (Graves et al. 2014) and
delayed recall.

Registered ids: ``cogrl/Copy-v0``, ``cogrl/RepeatCopy-v0``, ``cogrl/AssociativeRecall-v0``
(see :mod:`cogrl.envs.memory.algorithmic`) and ``cogrl/DelayedRecall-v0`` (see
:mod:`cogrl.envs.memory.delayed`).
"""

from cogrl.envs.memory.algorithmic import AlgorithmicTask, AssociativeRecall, Copy, RepeatCopy
from cogrl.envs.memory.delayed import DelayedRecall

__all__ = [
    "AlgorithmicTask",
    "Copy",
    "RepeatCopy",
    "AssociativeRecall",
    "DelayedRecall",
]
