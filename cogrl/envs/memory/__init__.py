"""Memory tasks: the Neural Turing Machine's algorithmic tasks (Graves et al. 2014),
delayed recall, and bAbI story question answering (Weston et al. 2015).

Registered ids: ``cogrl/Copy-v0``, ``cogrl/RepeatCopy-v0``, ``cogrl/AssociativeRecall-v0``
(see :mod:`cogrl.envs.memory.algorithmic`), ``cogrl/DelayedRecall-v0`` (see
:mod:`cogrl.envs.memory.delayed`) and ``cogrl/StoryQA-v0`` (see
:mod:`cogrl.envs.memory.story`; its stories from :mod:`cogrl.envs.memory.babi`).
"""

from cogrl.envs.memory.algorithmic import AlgorithmicTask, AssociativeRecall, Copy, RepeatCopy
from cogrl.envs.memory.delayed import DelayedRecall
from cogrl.envs.memory.story import StoryQA

__all__ = [
    "AlgorithmicTask",
    "Copy",
    "RepeatCopy",
    "AssociativeRecall",
    "DelayedRecall",
    "StoryQA",
]
