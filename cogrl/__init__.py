"""cogrl: reinforcement-learning agents and environments for cognitive tasks.

``import cogrl`` registers every cogrl environment with Gymnasium (namespace ``cogrl``).
"""

from cogrl import envs
from cogrl.core import BatchedEnv
from cogrl.envs.adapters import CoreEnv, CoreVectorEnv
from cogrl.retina import Retina

__version__ = "0.1.0"
__all__ = ["envs", "BatchedEnv", "CoreEnv", "CoreVectorEnv", "Retina", "__version__"]
