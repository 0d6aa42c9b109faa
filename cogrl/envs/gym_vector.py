"""Any registered Gymnasium environment as a cogrl batched core.

cogrl's agents learn on batched cores (:class:`cogrl.core.BatchedEnv`): torch tensors in and
out on one device, same-step autoreset, episode statistics in the info. Gymnasium's own
environments (``CartPole-v1``) and a user's classes registered with ``gymnasium.register``
are not written as cores, so :class:`GymVectorCore` adapts them: it steps ``num_envs``
copies made with ``gym.make`` in a ``gymnasium.vector.SyncVectorEnv`` (same-step
autoreset) and presents exactly the core's contract, so every cogrl agent, ``evaluate``,
``rollout_frames`` and ``cogrl train`` run on them unchanged. It steps the copies one after
another on the CPU; only cogrl's own cores step a whole batch at once.

Conversions
    Observations: ``Box`` as float32 tensors when the space is floating point (else the
    space's dtype), ``Discrete``/``MultiDiscrete`` as int64, ``MultiBinary`` as int8,
    ``Dict``/``Tuple`` as dicts/tuples of those. Rewards float32 ``(N,)``, ``terminated``
    and ``truncated`` bool ``(N,)``. Numeric info keys become tensors with their ``"_" + key``
    masks; other values stay numpy (object) arrays. Actions may be torch tensors (any
    device), numpy arrays or lists with leading dimension ``N``; they are checked against the
    action space (shape, bounds, integrality, finiteness) and never clipped.

Info
    As a core reports it: the info of the step for every environment (for finished ones, the
    info of their last step, which ``SyncVectorEnv`` keeps in ``final_info``; the info of
    their automatic reset is not reported), ``info["episode"] = {"r", "l"}`` with mask
    ``info["_episode"]``, and, when some environment finished, ``info["final_obs"]`` (a
    batch, valid rows where ``info["_final_obs"]``).

Seeding
    ``reset(seed=s)`` gives environment ``i`` the seed ``s + i``: its episodes are those of
    ``gym.make(env_id).reset(seed=s + i)`` and the steps after it.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec, load_env_creator
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from cogrl.core import BatchedEnv, Info, Obs

__all__ = ["GymVectorCore", "gym_spec", "make_gym_env", "render_modes"]

_SUPPORTED = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def gym_spec(env_id: str) -> EnvSpec:
    """The registered spec of ``env_id`` (``"module:Id"`` imports the module first, as
    ``gym.make`` does); ValueError naming the id if there is none."""
    if not isinstance(env_id, str):
        raise ValueError(f"an environment id must be a str, got {type(env_id).__name__}")
    module, _, name = env_id.rpartition(":")
    try:
        if module:  # "package.module:MyEnv-v0": the module registers the id on import
            importlib.import_module(module)
        return gym.spec(name)
    except (gym.error.Error, ImportError) as e:
        raise ValueError(
            f"unknown environment id {env_id!r} ({e}); `cogrl list` shows cogrl's ids, and any "
            "id registered with gymnasium.register works too"
        ) from e


def make_gym_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make(env_id, **kwargs)`` with unknown ids and bad arguments as ValueError."""
    spec = gym_spec(env_id)
    render_mode = kwargs.get("render_mode")
    if render_mode is not None:
        modes = render_modes(spec)
        if modes is not None and render_mode not in modes:
            raise ValueError(
                f"{env_id} does not offer render_mode={render_mode!r}; its metadata lists "
                f"render_modes {modes}"
            )
    try:
        return gym.make(env_id, **kwargs)
    except TypeError as e:  # gym.make's report of an unknown constructor argument
        raise ValueError(f"bad argument(s) {sorted(kwargs)} for {env_id!r}: {e}") from e
    except gym.error.Error as e:  # e.g. a render_mode the environment does not offer
        raise ValueError(f"cannot make {env_id!r} with {kwargs}: {e}") from e


def render_modes(spec: EnvSpec) -> list[str] | None:
    """The render modes the class of ``spec`` declares in its metadata (None if unknown)."""
    try:
        creator = (
            load_env_creator(spec.entry_point)
            if isinstance(spec.entry_point, str)
            else spec.entry_point
        )
    except (ImportError, AttributeError, ValueError):
        return None
    metadata = getattr(creator, "metadata", None)
    if not isinstance(metadata, Mapping):
        return None
    return list(metadata.get("render_modes", []))


class GymVectorCore(BatchedEnv):
    """A batched core over ``num_envs`` copies of a registered Gymnasium environment.

    ``env_kwargs`` go to ``gym.make`` (constructor arguments, or ``max_episode_steps``).
    With ``autoreset=False`` a finished environment is not reset: its final observation is
    returned, and stepping again before :meth:`reset` is an error.
    """

    def __init__(
        self,
        env_id: str,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        autoreset: bool = True,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        super().__init__(num_envs=num_envs, device=device, render_mode=None, autoreset=autoreset)
        make_kwargs = dict(env_kwargs)
        if render_mode is not None:
            make_kwargs["render_mode"] = render_mode
        first = make_gym_env(env_id, **make_kwargs)
        mode = AutoresetMode.SAME_STEP if autoreset else AutoresetMode.DISABLED
        fns = [lambda: first] + [partial(make_gym_env, env_id, **make_kwargs)] * (self.num_envs - 1)
        self.vector_env = SyncVectorEnv(fns, autoreset_mode=mode)
        self.env_id = env_id
        self.spec_id = env_id
        self.spec_kwargs = dict(env_kwargs)
        self.render_mode = render_mode
        self.metadata = dict(self.vector_env.metadata)
        self.single_observation_space = self.vector_env.single_observation_space
        self.single_action_space = self.vector_env.single_action_space
        try:
            _check_obs_space(self.single_observation_space)
        except ValueError:
            self.vector_env.close()
            raise
        self._episode_return_np = np.zeros(self.num_envs, dtype=np.float64)
        self._episode_length_np = np.zeros(self.num_envs, dtype=np.int64)
        self._started = False
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)

    def __repr__(self) -> str:
        return (
            f"GymVectorCore({self.env_id!r}, num_envs={self.num_envs}, device='{self.device}', "
            f"autoreset={self.autoreset})"
        )

    # --- the BatchedEnv contract ---------------------------------------------------------
    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[Obs, Info]:
        """Start a new episode in every environment; environment ``i`` gets ``seed + i``."""
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(f"options must be a mapping or None, got {options!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed must be an int or None (env i gets seed + i), got {seed!r}")
        obs, info = self.vector_env.reset(
            seed=None if seed is None else int(seed),
            options=None if options is None else dict(options),
        )
        self._episode_return_np[:] = 0.0
        self._episode_length_np[:] = 0
        self._needs_reset[:] = False
        self._started = True
        return self._obs_tensor(obs), self._info_tensors(info)

    def step(self, action: Any) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        """Step every environment; with autoreset, finished ones restart in the same call."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if self._needs_reset.any():
            raise RuntimeError(
                f"environment(s) {np.flatnonzero(self._needs_reset).tolist()} finished their "
                "episode and autoreset=False: call reset() before stepping again"
            )
        actions = self._action_numpy(action)
        obs, reward, terminated, truncated, info = self.vector_env.step(actions)
        done = np.logical_or(terminated, truncated)
        self._episode_return_np += reward
        self._episode_length_np += 1
        episode = {
            "r": torch.as_tensor(self._episode_return_np, dtype=torch.float32, device=self.device),
            "l": torch.as_tensor(self._episode_length_np.copy(), device=self.device),
        }
        final_obs = None
        if self.autoreset and done.any():
            final_obs, info = self._split_final(obs, info, done)
        out = self._info_tensors(info)
        out["episode"] = episode
        out["_episode"] = torch.as_tensor(done, device=self.device)
        if final_obs is not None:
            out["final_obs"] = self._obs_tensor(final_obs)
            out["_final_obs"] = torch.as_tensor(done, device=self.device)
        if self.autoreset:
            self._episode_return_np[done] = 0.0
            self._episode_length_np[done] = 0
        else:
            self._needs_reset |= done
        return (
            self._obs_tensor(obs),
            torch.as_tensor(reward, dtype=torch.float32, device=self.device),
            torch.as_tensor(terminated, dtype=torch.bool, device=self.device),
            torch.as_tensor(truncated, dtype=torch.bool, device=self.device),
            out,
        )

    def render(self, index: int = 0) -> np.ndarray:
        """The ``rgb_array`` frame (H, W, 3) uint8 of environment ``index``."""
        if self.render_mode != "rgb_array":
            raise RuntimeError(
                f"render() needs render_mode='rgb_array' (this core has {self.render_mode!r}); "
                f"{self.env_id} offers {self.metadata.get('render_modes', [])}"
            )
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise ValueError(f"index must be an int, got {index!r}")
        if not 0 <= index < self.num_envs:
            raise ValueError(f"index must lie in [0, {self.num_envs}), got {index}")
        if not self._started:
            raise RuntimeError("call reset() before render()")
        return np.asarray(self.vector_env.envs[int(index)].render())

    def close(self) -> None:
        self.vector_env.close()

    # --- conversions ---------------------------------------------------------------------
    def _obs_tensor(self, obs: Any) -> Obs:
        return _to_tensor(self.single_observation_space, obs, self.device)

    def _info_tensors(self, info: Mapping[str, Any]) -> Info:
        out: Info = {}
        for key, value in info.items():
            if isinstance(value, Mapping):
                out[key] = self._info_tensors(value)
            elif isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
                out[key] = torch.as_tensor(value, device=self.device)
            else:
                out[key] = value
        return out

    def _split_final(
        self, obs: Any, info: dict[str, Any], done: np.ndarray
    ) -> tuple[Any, dict[str, Any]]:
        """The final observations as a batch, and the info of the step for every environment.

        ``SyncVectorEnv`` (same-step) reports a finished environment's final observation and
        step info in ``final_obs``/``final_info`` and its reset info at the top level; a core
        reports the step's info at the top level.
        """
        info = dict(info)
        final = info.pop("final_obs")
        info.pop("_final_obs", None)
        final_info = info.pop("final_info", {})
        info.pop("_final_info", None)
        final_obs = copy.deepcopy(obs)
        for i in np.flatnonzero(done):
            _set_row(final_obs, int(i), final[i])
        if not _has_values(info) and not _has_values(final_info):
            return final_obs, {}
        step_info: dict[str, Any] = {}
        for i in range(self.num_envs):
            source = final_info if done[i] else info
            self.vector_env._add_info(step_info, _env_slice(source, i), i)
        return final_obs, step_info

    def _action_numpy(self, action: Any) -> Any:
        return _check_batch(self.single_action_space, action, self.num_envs, "action")


# ---------------------------------------------------------------------------------------
def _check_obs_space(space: spaces.Space) -> None:
    if isinstance(space, spaces.Dict):
        for sub in space.spaces.values():
            _check_obs_space(sub)
    elif isinstance(space, spaces.Tuple):
        for sub in space.spaces:
            _check_obs_space(sub)
    elif not isinstance(space, _SUPPORTED):
        raise ValueError(
            f"observation space {space} is not supported by cogrl's agents; use Box, Discrete, "
            "MultiDiscrete, MultiBinary, or Dict/Tuple of those"
        )


def _to_tensor(space: spaces.Space, x: Any, device: torch.device) -> Any:
    if isinstance(space, spaces.Dict):
        return {k: _to_tensor(s, x[k], device) for k, s in space.spaces.items()}
    if isinstance(space, spaces.Tuple):
        return tuple(_to_tensor(s, v, device) for s, v in zip(space.spaces, x, strict=True))
    x = np.asarray(x)
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        return torch.as_tensor(x.astype(np.int64, copy=False), device=device)
    if x.dtype.kind == "f":
        return torch.as_tensor(x.astype(np.float32, copy=False), device=device)
    if x.dtype in (np.uint16, np.uint32, np.uint64):
        x = x.astype(np.int64)
    return torch.as_tensor(x, device=device)


def _set_row(batch: Any, i: int, value: Any) -> None:
    if isinstance(batch, Mapping):
        for k in batch:
            _set_row(batch[k], i, value[k])
    elif isinstance(batch, tuple):
        for b, v in zip(batch, value, strict=True):
            _set_row(b, i, v)
    else:
        batch[i] = value


def _has_values(info: Mapping[str, Any]) -> bool:
    return any(not k.startswith("_") for k in info)


def _env_slice(info: Mapping[str, Any], i: int) -> dict[str, Any]:
    """Environment ``i``'s entries of a batched info dict (as the single env reported them)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_"):
            continue
        mask = info.get("_" + key)
        if mask is not None and not bool(mask[i]):
            continue
        out[key] = _env_slice(value, i) if isinstance(value, Mapping) else value[i]
    return out


def _invalid(name: str, value: Any, space: spaces.Space, n: int, why: str) -> ValueError:
    return ValueError(
        f"invalid {name} {value!r}: expected a batch of {n} actions from {space} ({why})"
    )


def _check_batch(space: spaces.Space, action: Any, n: int, name: str) -> Any:
    """``action`` (a batch of ``n``) as numpy of the space's dtype, or ValueError."""
    if isinstance(space, spaces.Dict):
        if not isinstance(action, Mapping) or set(action) != set(space.spaces):
            raise _invalid(name, action, space, n, f"a dict with keys {sorted(space.spaces)}")
        return {k: _check_batch(s, action[k], n, f"{name}[{k!r}]") for k, s in space.items()}
    if isinstance(space, spaces.Tuple):
        if not isinstance(action, Sequence) or len(action) != len(space.spaces):
            raise _invalid(name, action, space, n, f"a tuple of {len(space.spaces)} batches")
        return tuple(
            _check_batch(s, a, n, f"{name}[{j}]")
            for j, (s, a) in enumerate(zip(space.spaces, action, strict=True))
        )
    try:
        a = np.asarray(action.detach().cpu() if isinstance(action, torch.Tensor) else action)
    except (TypeError, ValueError) as e:
        raise _invalid(name, action, space, n, f"not an array: {e}") from e
    expected = (n, *space.shape) if space.shape is not None else None
    if expected is None or a.shape != expected:
        raise _invalid(name, action, space, n, f"shape {a.shape}, expected {expected}")
    if a.dtype.kind not in "biuf":
        raise _invalid(name, action, space, n, f"dtype {a.dtype} is not numeric")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        bad = a[~np.isfinite(a)]
        raise _invalid(name, action, space, n, f"non-finite value(s) {bad.tolist()}")
    if isinstance(space, spaces.Box):
        if np.issubdtype(space.dtype, np.integer) and not (a == np.round(a)).all():
            raise _invalid(name, action, space, n, "values must be integers")
        outside = (a < space.low) | (a > space.high)
        if outside.any():
            raise _invalid(
                name, action, space, n, f"value(s) {a[outside].tolist()} outside the bounds"
            )
        return a.astype(space.dtype, copy=False)
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)):
        if not (a == np.round(a)).all():
            raise _invalid(name, action, space, n, "values must be integers")
        if isinstance(space, spaces.Discrete):
            low, high = space.start, space.start + space.n - 1
        elif isinstance(space, spaces.MultiDiscrete):
            low, high = space.start, space.start + space.nvec - 1
        else:
            low, high = 0, 1
        outside = (a < low) | (a > high)
        if outside.any():
            raise _invalid(name, action, space, n, f"value(s) {a[outside].tolist()} out of range")
        return a.astype(space.dtype, copy=False)
    rows = list(a)
    bad = [r for r in rows if not space.contains(r)]
    if bad:
        raise _invalid(name, action, space, n, f"{bad[0]!r} is not in the space")
    return a
