"""What runs an agent without training it: :func:`evaluate` (whole episodes on a batched
core, the environment's episode metrics), :func:`rollout_frames` (rendered episodes for
videos), :func:`memory_trace` and :func:`memory_image` (where a memory core read and
wrote, the NTM paper's picture), and :func:`log_rollout` / :func:`log_memory`, which put
them in TensorBoard during and after training.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch

from cogrl.logging import RunLogger, heatmaps

if TYPE_CHECKING:
    from cogrl.agents.base import Agent

__all__ = [
    "MemoryTrace",
    "evaluate",
    "log_memory",
    "log_rollout",
    "memory_image",
    "memory_trace",
    "rollout_frames",
]


@torch.no_grad()
def rollout_frames(
    agent: Agent,
    episodes: int = 1,
    seed: int | None = None,
    deterministic: bool = True,
    **env_overrides: Any,
) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of ``episodes`` episodes of ``agent`` on one environment.

    Each frame is the environment's ``rgb_array`` render: for the glimpse tasks, the canvas
    with the glimpse's patches and the scanpath so far.
    """
    core = agent.make_core(1, autoreset=False, render_mode="rgb_array", **env_overrides)
    obs, _ = core.reset(seed=seed)
    frames = [core.render(0)]
    state = None
    start = torch.ones(1, dtype=torch.bool, device=core.device)
    for episode in range(episodes):
        done = False
        while not done:
            action, state = agent.predict(obs, state, start, deterministic)
            obs, _, terminated, truncated, _ = core.step(action)
            start = torch.zeros_like(start)
            frames.append(core.render(0))
            done = bool(terminated[0] | truncated[0])
        if episode < episodes - 1:
            obs, _ = core.reset()
            frames.append(core.render(0))
            start = torch.ones_like(start)
    return np.stack(frames)


@dataclass
class MemoryTrace:
    """One episode of an agent with a memory core, step by step: what it saw, what it did,
    and where its core read and wrote (:meth:`cogrl.nn.Core.memory_weights`).

    ``inputs`` (T, F) and ``outputs`` (T, A) are the observations and actions flattened
    (the keys of a ``Dict`` observation in sorted order); ``weights`` maps each weighting's
    name to (T, heads, locations), taken after each step.
    """

    inputs: np.ndarray
    outputs: np.ndarray
    rewards: np.ndarray
    weights: dict[str, np.ndarray]


def _flat_rows(x: Any) -> np.ndarray:
    """A batch of observations or actions (tensor or dict of tensors) as (B, F) floats."""
    if isinstance(x, Mapping):
        return np.concatenate([_flat_rows(x[k]) for k in sorted(x)], axis=1)
    x = torch.as_tensor(x)
    return x.reshape(x.shape[0], -1).float().cpu().numpy()


def memory_image(trace: MemoryTrace) -> np.ndarray:
    """The NTM paper's picture of a rollout: inputs, outputs and rewards over time above
    each weighting of each head over the memory's locations (uint8 RGB)."""
    panels = [
        ("input", trace.inputs.T),
        ("output", trace.outputs.T),
        ("reward", trace.rewards[None]),
    ]
    for name, w in trace.weights.items():
        for head in range(w.shape[1]):
            if name == "attention":  # a memory network's attention, per hop
                panels.append((f"hop {head + 1}", w[:, head, :].T, "slot (0: latest)"))
                continue
            label = name if w.shape[1] == 1 else f"{name} {head}"
            panels.append((label, w[:, head, :].T, "memory location"))
    return heatmaps(panels)


@torch.no_grad()
def memory_trace(
    agent: Agent, seed: int | None = None, deterministic: bool = True, **env_overrides: Any
) -> MemoryTrace | None:
    """Run one episode of ``agent`` on one environment and record its core's memory
    weightings at every step; None where the core has no external memory."""
    policy = getattr(agent, "policy", None)
    if policy is None or not hasattr(policy, "memory_weights"):
        return None
    core = agent.make_core(1, autoreset=False, **env_overrides)
    obs, _ = core.reset(seed=seed)
    state = None
    start = torch.ones(1, dtype=torch.bool, device=core.device)
    inputs, outputs, rewards, weights = [], [], [], []
    done = False
    while not done:
        action, state = agent.predict(obs, state, start, deterministic)
        w = policy.memory_weights(state)
        if not w:
            return None
        inputs.append(_flat_rows(obs)[0])
        outputs.append(_flat_rows(action)[0])
        weights.append({k: v[0].float().cpu().numpy() for k, v in w.items()})
        obs, reward, terminated, truncated, _ = core.step(action)
        rewards.append(float(reward[0]))
        start = torch.zeros_like(start)
        done = bool(terminated[0] | truncated[0])
    core.close()
    return MemoryTrace(
        np.stack(inputs),
        np.stack(outputs),
        np.array(rewards, dtype=np.float32),
        {k: np.stack([w[k] for w in weights]) for k in weights[0]},
    )


@torch.no_grad()
def evaluate(
    agent: Agent,
    episodes: int | str = 100,
    num_envs: int = 64,
    seed: int | None = 0,
    deterministic: bool = True,
    **env_overrides: Any,
) -> dict[str, float]:
    """Run ``episodes`` whole episodes on a batched core of the agent's environment.

    Returns ``episodes``, ``mean_return``, ``std_return``, ``mean_length`` and the
    environment's episode metrics (``metadata["episode_metrics"]``, e.g. ``accuracy`` for
    recognition). Environment overrides select, for example, ``split="test"``.

    ``episodes="all"``: one episode per item of a task whose episodes each show one of a
    finite set (``num_items``: a split's images or questions), each item exactly once, as
    the papers report a test set's error; other tasks are a ValueError. Otherwise episodes
    are drawn at random (with replacement).
    """
    if episodes == "all":
        return _evaluate_items(agent, num_envs, seed, deterministic, env_overrides)
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive int or 'all', got {episodes!r}")
    n = min(num_envs, episodes)
    core = agent.make_core(n, **env_overrides)
    obs, _ = core.reset(seed=seed)
    # Each environment contributes its first episodes only, so that the count is exact and
    # the result does not favour short episodes.
    quota = torch.full((n,), episodes // n, device=core.device)
    quota[: episodes % n] += 1
    tally = _Tally(core)
    state = None
    start = torch.ones(n, dtype=torch.bool, device=core.device)
    while int(quota.sum()) > 0:
        action, state = agent.predict(obs, state, start, deterministic)
        obs, _, terminated, truncated, info = core.step(action)
        start = terminated | truncated
        counted = start & (quota > 0)
        if bool(counted.any()):
            tally.add(info, counted)
            quota -= counted.long()
    return tally.result()


def _evaluate_items(
    agent: Agent, num_envs: int, seed: int | None, deterministic: bool, overrides: dict
) -> dict[str, float]:
    """:func:`evaluate` with ``episodes="all"``: the items in rounds of ``num_envs``, each
    round's episodes from a reset that names its items."""
    probe = agent.make_core(1, **overrides)
    items = probe.num_items
    probe.close()
    if items is None:
        raise ValueError(
            f"episodes='all' needs a task whose episodes show the items of a finite set "
            f"(a split's images or questions); {agent.env_id} draws its episodes afresh: "
            "give a number of episodes"
        )
    n = min(num_envs, items)
    core = agent.make_core(n, **overrides)
    tally = _Tally(core)
    for first in range(0, items, n):
        chosen = torch.arange(first, first + n, device=core.device) % items
        obs, _ = core.reset(seed=seed if first == 0 else None, options={"item": chosen})
        counting = chosen >= first  # the last round's extra environments repeat items
        state = None
        start = torch.ones(n, dtype=torch.bool, device=core.device)
        while bool(counting.any()):
            action, state = agent.predict(obs, state, start, deterministic)
            obs, _, terminated, truncated, info = core.step(action)
            start = terminated | truncated
            counted = start & counting
            if bool(counted.any()):
                tally.add(info, counted)
                counting &= ~counted
    return tally.result()


class _Tally:
    """The finished episodes' returns, lengths and episode metrics, and their means."""

    def __init__(self, core: Any) -> None:
        self.metrics = dict(core.metadata.get("episode_metrics", {}))
        self.returns: list[torch.Tensor] = []
        self.lengths: list[torch.Tensor] = []
        self.values: dict[str, list[torch.Tensor]] = {name: [] for name in self.metrics}

    def add(self, info: dict, counted: torch.Tensor) -> None:
        self.returns.append(info["episode"]["r"][counted])
        self.lengths.append(info["episode"]["l"][counted].float())
        for name, key in self.metrics.items():
            if key in info:
                self.values[name].append(info[key][counted].float())

    def result(self) -> dict[str, float]:
        r = torch.cat(self.returns)
        result = {
            "episodes": int(r.numel()),
            "mean_return": float(r.mean()),
            "std_return": float(r.std(unbiased=False)),
            "mean_length": float(torch.cat(self.lengths).mean()),
        }
        for name, parts in self.values.items():
            if parts:
                # NaN marks an episode the metric does not apply to (as the training
                # statistics, the mean is over the others; none: no value).
                mean = float(torch.cat(parts).nanmean())
                if not math.isnan(mean):
                    result[name] = mean
        return result


def log_rollout(agent: Agent, logger: RunLogger) -> None:
    """A rollout GIF of two episodes, where the environment renders ``rgb_array``, and for
    a memory core the heatmaps of its read and write weightings in one episode."""
    if not logger.enabled:
        return
    log_memory(agent, logger)
    seed = 0 if agent.seed is None else agent.seed
    try:
        frames = rollout_frames(agent, episodes=2, seed=seed)
    except (gym.error.DependencyNotInstalled, NotImplementedError, ValueError) as e:
        warnings.warn(f"no rollout video for {agent.env_id}: {e}", stacklevel=2)
        return
    logger.video("rollout/video", frames, agent.num_timesteps)


def log_memory(agent: Agent, logger: RunLogger) -> None:
    """The memory heatmaps of one episode (:func:`memory_image`) as ``rollout/memory``,
    where the agent's core has an external memory."""
    trace = memory_trace(agent, seed=0 if agent.seed is None else agent.seed)
    if trace is not None:
        logger.image("rollout/memory", memory_image(trace), agent.num_timesteps)
