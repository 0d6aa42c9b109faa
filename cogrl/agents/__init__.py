"""cogrl's agents, all behind one interface (see :mod:`cogrl.agents.base`)."""

from cogrl.agents.base import (
    AGENTS,
    Agent,
    Hyperparameters,
    available_agents,
    evaluate,
    load,
    make,
    register_agent,
    rollout_frames,
)
from cogrl.agents.ram import RAM  # registers "ram"

__all__ = [
    "AGENTS",
    "Agent",
    "RAM",
    "Hyperparameters",
    "available_agents",
    "evaluate",
    "load",
    "make",
    "register_agent",
    "rollout_frames",
]
