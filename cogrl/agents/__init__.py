"""cogrl's agents, all behind one interface (see :mod:`cogrl.agents.base`).

- :mod:`cogrl.agents.base`: the registry, ``make``/``load``, and :class:`Agent`, the one
  base class (its construction hooks, ``learn``, ``predict``, checkpoints);
- :mod:`cogrl.agents.training`: a training loop's bookkeeping (``Progress``,
  ``EpisodeStats``, ``NumericsGuard``, ``gradient_step``) and ``RunContext``, through
  which a runner writes checkpoints and stops a training;
- :mod:`cogrl.agents.evaluation`: ``evaluate``, rollout videos, memory traces;
- :mod:`cogrl.agents.on_policy` (A2C and PPO's rollouts and GAE) and
  :mod:`cogrl.agents.episodic` (REINFORCE, RAM and DRAM's whole-episode policy
  gradient), then one small file per learner.
"""

from cogrl.agents.a2c import A2C  # registers "a2c"
from cogrl.agents.base import (
    AGENTS,
    Agent,
    Hyperparameters,
    available_agents,
    load,
    make,
    register_agent,
)
from cogrl.agents.classifier import Classifier  # registers "classifier"
from cogrl.agents.dqn import DQN  # registers "dqn"
from cogrl.agents.dram import DRAM  # registers "dram"
from cogrl.agents.evaluation import evaluate, memory_trace, rollout_frames
from cogrl.agents.ppo import PPO  # registers "ppo"
from cogrl.agents.ram import RAM  # registers "ram"
from cogrl.agents.reinforce import REINFORCE  # registers "reinforce"
from cogrl.agents.training import RunContext

__all__ = [
    "A2C",
    "AGENTS",
    "Agent",
    "Classifier",
    "DQN",
    "DRAM",
    "PPO",
    "RAM",
    "REINFORCE",
    "Hyperparameters",
    "RunContext",
    "available_agents",
    "evaluate",
    "load",
    "make",
    "memory_trace",
    "register_agent",
    "rollout_frames",
]
