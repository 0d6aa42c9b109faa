"""cogrl's agents, all behind one interface (see :mod:`cogrl.agents.base`)."""

from cogrl.agents.a2c import A2C  # registers "a2c"
from cogrl.agents.base import (
    AGENTS,
    Agent,
    Hyperparameters,
    available_agents,
    evaluate,
    load,
    make,
    memory_trace,
    register_agent,
    rollout_frames,
)
from cogrl.agents.classifier import Classifier  # registers "classifier"
from cogrl.agents.dqn import DQN  # registers "dqn"
from cogrl.agents.dram import DRAM  # registers "dram"
from cogrl.agents.ppo import PPO  # registers "ppo"
from cogrl.agents.ram import RAM  # registers "ram"
from cogrl.agents.reinforce import REINFORCE  # registers "reinforce"

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
    "available_agents",
    "evaluate",
    "load",
    "make",
    "memory_trace",
    "register_agent",
    "rollout_frames",
]
