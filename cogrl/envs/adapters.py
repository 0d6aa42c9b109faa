"""Gymnasium's interfaces over a batched core: what ``gym.make`` and ``gym.make_vec`` return
for a cogrl id.

- :class:`CoreEnv`: a plain ``gymnasium.Env`` (numpy in and out) over a core of one
  environment on the CPU, for Stable-Baselines3 and any Gymnasium tool. It passes
  ``gymnasium.utils.env_checker.check_env`` and Stable-Baselines3's ``check_env``.
- :class:`CoreVectorEnv`: a ``gymnasium.vector.VectorEnv`` over a core of N environments. It
  declares ``AutoresetMode.SAME_STEP`` and reports ``final_obs``/``final_info`` like
  ``gymnasium.vector.SyncVectorEnv`` in that mode.

:func:`cogrl.envs.register_core` registers both as the entry points of an id, with the core
class in the spec's ``core`` keyword; seeding and autoreset are the core's
(:mod:`cogrl.core`).

A core may declare ``public_attributes``, a tuple of attribute names that both adapters
pass through (e.g. ``StoryQA.vocab``: ``gym.make(...).unwrapped.vocab``); any other
attribute stays on the core, reached as ``env.unwrapped.core``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector.utils import batch_space

from cogrl.core import BatchedEnv, Info, make_core, to_numpy
from cogrl.spaces import check_actions

__all__ = ["CoreEnv", "CoreVectorEnv"]


class CoreEnv(gym.Env):
    """A ``gymnasium.Env`` over a batched core of one environment on the CPU.

    Registered as the ``entry_point`` of every cogrl id, with the core class in the spec's
    ``core`` keyword; every other keyword goes to the core's constructor.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, core: str | type[BatchedEnv], render_mode: str | None = None, **kwargs: Any):
        self.core = make_core(
            core, num_envs=1, device="cpu", autoreset=False, render_mode=render_mode, **kwargs
        )
        # step() checks the single action itself, with messages about one action.
        self.core.check_action_values = False
        self.core_kwargs = dict(kwargs)
        self.metadata = {k: v for k, v in self.core.metadata.items() if k != "autoreset_mode"}
        self.render_mode = render_mode
        self.observation_space = self.core.single_observation_space
        self.action_space = self.core.single_action_space
        self._needs_reset = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        obs, info = self.core.reset(seed=seed, options=options)
        self._needs_reset = False
        return _index(to_numpy(obs), 0), _single_info(info)

    def step(self, action: Any):
        if self._needs_reset:
            raise RuntimeError("the episode has ended (or never started): call reset() first")
        action = check_actions(self.action_space, action, None, "cpu")
        obs, reward, terminated, truncated, info = self.core.step(_unsqueeze(action))
        term, trunc = bool(terminated[0]), bool(truncated[0])
        self._needs_reset = term or trunc
        return _index(to_numpy(obs), 0), float(reward[0]), term, trunc, _single_info(info)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        return self.core.render(0)

    def __getattr__(self, name: str) -> Any:
        return _public_attribute(self, name)


class CoreVectorEnv(gym.vector.VectorEnv):
    """A ``gymnasium.vector.VectorEnv`` over a batched core (same-step autoreset)."""

    def __init__(
        self,
        num_envs: int,
        core: str | type[BatchedEnv],
        device: str | torch.device = "cpu",
        render_mode: str | None = None,
        **kwargs: Any,
    ):
        self.core = make_core(
            core, num_envs=num_envs, device=device, render_mode=render_mode, **kwargs
        )
        self.core_kwargs = dict(kwargs)
        self.num_envs = num_envs
        self.metadata = dict(self.core.metadata)
        self.render_mode = render_mode
        self.single_observation_space = self.core.single_observation_space
        self.single_action_space = self.core.single_action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        if isinstance(seed, (list, tuple)):
            raise ValueError(
                f"cogrl cores take one int seed (environment i gets seed + i), got a list {seed!r}"
            )
        obs, info = self.core.reset(seed=seed, options=options)
        return to_numpy(obs), to_numpy(info)

    def step(self, actions: Any):
        obs, reward, terminated, truncated, info = self.core.step(actions)
        done = to_numpy(terminated | truncated)
        out = to_numpy({k: v for k, v in info.items() if k != "final_obs"})
        # The core reports final_obs always on sync-free devices: only steps where some
        # environment finished carry it here, as SyncVectorEnv reports it.
        if "final_obs" in info and done.any():
            final = to_numpy(info["final_obs"])
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = _index(final, int(i))
            single = {k: v for k, v in info.items() if k not in ("final_obs", "_final_obs")}
            out["final_obs"] = final_obs
            out["_final_obs"] = done
            # As SyncVectorEnv (same-step) reports it: a dict of batches with "_key" masks.
            out["final_info"] = _masked_info(to_numpy(single), done)
            out["_final_info"] = done
        else:
            out.pop("_final_obs", None)
        return (
            to_numpy(obs),
            to_numpy(reward),
            to_numpy(terminated),
            to_numpy(truncated),
            out,
        )

    def render(self):
        if self.render_mode is None:
            return None
        return tuple(self.core.render(i) for i in range(self.num_envs))

    def close_extras(self, **kwargs: Any) -> None:
        self.core.close()

    def __getattr__(self, name: str) -> Any:
        return _public_attribute(self, name)


def _public_attribute(adapter: Any, name: str) -> Any:
    """Attribute ``name`` of the adapter's core, where the core lists it in its
    ``public_attributes`` (called only for names the adapter itself lacks)."""
    core = adapter.__dict__.get("core")  # absent while __init__ runs
    if core is not None and name in getattr(core, "public_attributes", ()):
        return getattr(core, name)
    raise AttributeError(f"{type(adapter).__name__!r} object has no attribute {name!r}")


def _index(x: Any, i: int) -> Any:
    if isinstance(x, Mapping):
        return {k: _index(v, i) for k, v in x.items()}
    return x[i]


def _unsqueeze(x: Any) -> Any:
    """One checked action (a tensor, or a dict/tuple of them) as a batch of one."""
    if isinstance(x, Mapping):
        return {k: _unsqueeze(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(_unsqueeze(v) for v in x)
    return x[None]


def _single_info(info: Info) -> dict[str, Any]:
    """The info of a core of one as a single environment reports it."""
    return {k: v for k, v in _env_info(info, 0).items() if k not in ("final_obs", "episode")}


def _masked_info(info: Mapping[str, Any], valid: np.ndarray) -> dict[str, Any]:
    """A batched info dict restricted to the environments of ``valid``: every key keeps its
    batch, and its ``"_" + key`` mask is ANDed with ``valid`` (nested dicts get their own
    masks), as ``gymnasium.vector.VectorEnv._add_info`` builds them."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_"):
            continue
        mask = info.get("_" + key)
        mask = valid.copy() if mask is None else np.asarray(mask, dtype=bool) & valid
        out[key] = _masked_info(value, mask) if isinstance(value, Mapping) else value
        out["_" + key] = mask
    return out


def _env_info(info: Info, i: int) -> dict[str, Any]:
    """Environment ``i``'s valid entries of a batched info dict."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_"):
            continue
        mask = info.get("_" + key)
        if mask is not None and not bool(mask[i]):
            continue
        v = to_numpy(_index(value, i))
        if isinstance(v, Mapping):
            v = {
                k: (x.item() if isinstance(x, np.ndarray) and x.ndim == 0 else x)
                for k, x in v.items()
            }
        out[key] = v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v
    return out
