"""The batched core every cogrl environment is written as, and its Gymnasium adapters.

A *core* steps ``num_envs`` environments at once as torch tensors on one device. Agents
of cogrl talk to it directly; ``gym.make`` and ``gym.make_vec`` wrap it:

- :class:`CoreEnv`: a plain ``gymnasium.Env`` (numpy in and out) over a core of one
  environment on the CPU, for Stable-Baselines3 and any Gymnasium tool.
- :class:`CoreVectorEnv`: a ``gymnasium.vector.VectorEnv`` over a core of N environments.

Seeding
    ``reset(seed=s)`` gives environment ``i`` the seed ``s + i`` (as ``gymnasium.vector``
    does), and its episodes are exactly those of a single environment reset with
    ``seed=s + i``. ``reset()`` without a seed starts the next episode of every environment.

Autoreset (same-step)
    When environment ``i`` terminates or truncates in :meth:`BatchedEnv.step`, the core
    resets it in the same call: the returned observation is the first of its next episode.
    The last observation of the finished episode is in ``info["final_obs"]`` (a batch with
    valid rows where ``info["_final_obs"]`` is true), and the episode's return and length in
    ``info["episode"] = {"r": ..., "l": ...}`` with mask ``info["_episode"]``. Other info
    keys follow Gymnasium's vector convention: ``info[key]`` is a batch, ``info["_" + key]``
    marks the environments it is valid for. :class:`CoreVectorEnv` declares
    ``AutoresetMode.SAME_STEP`` and reports ``final_obs``/``final_info`` like
    ``gymnasium.vector.SyncVectorEnv`` in that mode.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from cogrl.rng import BatchRNG

Obs = dict[str, torch.Tensor] | torch.Tensor
Info = dict[str, Any]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when available; anything else must name a usable device."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available here")
    return dev


class BatchedEnv:
    """Base of a batched environment core.

    A subclass sets ``single_observation_space`` and ``single_action_space`` and implements
    :meth:`_reset_envs` (start new episodes for a set of environments, drawing its random
    numbers from ``self.rng``), :meth:`_step` (advance every environment by one action),
    :meth:`_observe` and :meth:`_check_action`. The base class does seeding, same-step
    autoreset and episode statistics.
    """

    metadata: dict[str, Any] = {
        "render_modes": ["rgb_array"],
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }
    single_observation_space: spaces.Space
    single_action_space: spaces.Space

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        render_mode: str | None = None,
        autoreset: bool = True,
    ) -> None:
        if (
            isinstance(num_envs, bool)
            or not isinstance(num_envs, (int, np.integer))
            or num_envs < 1
        ):
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        self.num_envs = int(num_envs)
        self.device = resolve_device(device)
        self.render_mode = render_mode
        self.autoreset = autoreset
        self.rng = BatchRNG(self.num_envs, self.device)
        self._all = torch.arange(self.num_envs, device=self.device)
        self._episode_return = torch.zeros(self.num_envs, device=self.device)
        self._episode_length = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    # --- to implement -------------------------------------------------------------------
    def _reset_envs(self, index: torch.Tensor) -> None:
        """Start a new episode in each environment of ``index`` (a 1-D long tensor)."""
        raise NotImplementedError

    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        """Advance every environment: returns reward, terminated, truncated, info."""
        raise NotImplementedError

    def _observe(self, index: torch.Tensor | None = None) -> Obs:
        """The current observation of the environments in ``index`` (default: all)."""
        raise NotImplementedError

    def _check_action(self, action: Any) -> torch.Tensor:
        """Validate a batch of actions and return it as a tensor on the device."""
        raise NotImplementedError

    # --- public API ------------------------------------------------------------------------
    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[Obs, Info]:
        """Start a new episode in every environment (see the module docstring on seeding)."""
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(f"options must be a mapping or None, got {options!r}")
        if seed is not None or not self.rng.seeded:
            self.rng.seed(seed)
        else:
            self.rng.next_episode(self._all)
        self._reset_envs(self._all)
        self._episode_return.zero_()
        self._episode_length.zero_()
        return self._observe(), {}

    def step(self, action: Any) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        """Step every environment; finished ones are reset in the same call (autoreset)."""
        if not self.rng.seeded:
            raise RuntimeError("call reset() before step()")
        action = self._check_action(action)
        reward, terminated, truncated, info = self._step(action)
        self._episode_return += reward
        self._episode_length += 1
        done = terminated | truncated
        info["episode"] = {"r": self._episode_return.clone(), "l": self._episode_length.clone()}
        info["_episode"] = done
        obs = self._observe()
        if self.autoreset:
            done_index = done.nonzero().squeeze(1)
            if done_index.numel() > 0:
                info["final_obs"] = obs
                info["_final_obs"] = done
                self.rng.next_episode(done_index)
                self._reset_envs(done_index)
                self._episode_return[done_index] = 0.0
                self._episode_length[done_index] = 0
                obs = _replace_rows(obs, done_index, self._observe(done_index))
        return obs, reward, terminated, truncated, info

    def render(self, index: int = 0) -> np.ndarray | None:
        """An RGB frame (H, W, 3) uint8 of environment ``index``."""
        raise NotImplementedError

    def close(self) -> None:
        """Cores hold only tensors; nothing to release."""


def _replace_rows(obs: Obs, index: torch.Tensor, rows: Obs) -> Obs:
    """A copy of ``obs`` with the rows of ``index`` taken from ``rows``."""
    if isinstance(obs, torch.Tensor):
        return obs.index_copy(0, index, rows)
    return {k: v.index_copy(0, index, rows[k]) for k, v in obs.items()}


# ---------------------------------------------------------------------------------------
# Conversions between the core's tensors and Gymnasium's numpy values.


def to_numpy(x: Any) -> Any:
    """Tensors (also inside dicts) to numpy arrays."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, Mapping):
        return {k: to_numpy(v) for k, v in x.items()}
    return x


def _index(x: Any, i: int) -> Any:
    if isinstance(x, Mapping):
        return {k: _index(v, i) for k, v in x.items()}
    return x[i]


def load_core_class(core: str | type[BatchedEnv]) -> type[BatchedEnv]:
    """A core class, given as a class or as ``"module:ClassName"``."""
    if isinstance(core, str):
        module, _, name = core.partition(":")
        cls = getattr(importlib.import_module(module), name, None)
    else:
        cls = core
    if not (isinstance(cls, type) and issubclass(cls, BatchedEnv)):
        raise ValueError(f"core must be a BatchedEnv subclass or 'module:Class', got {core!r}")
    return cls


def check_core_kwargs(cls: type[BatchedEnv], kwargs: Mapping[str, Any]) -> None:
    """Unknown constructor arguments are an error that lists the known ones."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = [k for k in params if k not in ("self", "num_envs", "device", "autoreset")]
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise ValueError(
            f"unknown argument(s) {unknown} for {cls.__name__}; expected some of {sorted(known)}"
        )


def make_core(
    core: str | type[BatchedEnv],
    num_envs: int = 1,
    device: str | torch.device = "cpu",
    autoreset: bool = True,
    **kwargs: Any,
) -> BatchedEnv:
    """Build a core from its class (or ``"module:Class"``), checking the arguments first."""
    cls = load_core_class(core)
    check_core_kwargs(cls, kwargs)
    return cls(num_envs=num_envs, device=device, autoreset=autoreset, **kwargs)


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
        action = np.asarray(action)
        if action.shape != self.action_space.shape:
            raise ValueError(
                f"action must have shape {self.action_space.shape}, got {action.shape}"
            )
        obs, reward, terminated, truncated, info = self.core.step(action[None])
        term, trunc = bool(terminated[0]), bool(truncated[0])
        self._needs_reset = term or trunc
        return _index(to_numpy(obs), 0), float(reward[0]), term, trunc, _single_info(info)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        return self.core.render(0)


def _single_info(info: Info) -> dict[str, Any]:
    """The info of a core of one as a single environment reports it."""
    return {k: v for k, v in _env_info(info, 0).items() if k not in ("final_obs", "episode")}


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
        if "final_obs" in info:
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
