"""Any registered Gymnasium environment as a cogrl batched core.

cogrl's agents learn on batched cores (:class:`cogrl.core.BatchedEnv`): torch tensors in and
out on one device, same-step autoreset, episode statistics in the info. Gymnasium's own
environments (``CartPole-v1``) and a user's classes registered with ``gymnasium.register``
are not written as cores, so :class:`GymVectorCore` adapts them: it steps ``num_envs``
copies made with ``gym.make`` one after another in a plain loop (what
``gymnasium.vector.SyncVectorEnv`` does in its same-step autoreset mode, without its
per-step overhead) and presents exactly the core's contract, so every cogrl agent,
``evaluate``, ``rollout_frames`` and ``cogrl train`` run on them unchanged. The copies run on
the CPU; only cogrl's own cores step a whole batch at once.

Conversions
    Observations: ``Box`` as float32 tensors when the space is floating point (else the
    space's dtype), ``Discrete``/``MultiDiscrete`` as int64, ``MultiBinary`` as int8,
    ``Dict``/``Tuple`` as dicts/tuples of those. Rewards float32 ``(N,)``, ``terminated``
    and ``truncated`` bool ``(N,)``. Numeric info keys become tensors with their ``"_" + key``
    masks; other values stay numpy (object) arrays. Actions may be torch tensors (any
    device), numpy arrays or lists with leading dimension ``N``; they are checked against the
    action space by :func:`cogrl.spaces.check_actions` (shape, dtype, bounds, finiteness)
    and never clipped. Every returned tensor has storage of its own: a later step never
    overwrites it.

Info
    As a core reports it: the info of the step for every environment (for finished ones, the
    info of their last step; the info of their automatic reset is not reported),
    ``info["episode"] = {"r", "l"}`` with mask ``info["_episode"]``, and, when some
    environment finished, ``info["final_obs"]`` (a batch, valid rows where
    ``info["_final_obs"]``; the other rows are the returned observations).

Seeding
    ``reset(seed=s)`` gives environment ``i`` the seed ``s + i``: its episodes are those of
    ``gym.make(env_id).reset(seed=s + i)`` and the steps after it. ``reset()`` without a seed
    and the automatic resets reset every copy unseeded (it goes on with its own generator).
    ``reset(options=...)`` passes the options to every copy's ``reset``: the core honours
    whatever the wrapped environment takes.

Snapshots
    Arbitrary Python environments cannot be saved as tensors: ``supports_snapshot`` is
    false and :meth:`GymVectorCore.state_dict` raises ``NotImplementedError`` (a resumed run
    starts new episodes instead).

Metadata
    The wrapped class's ``metadata``; ``episode_metrics`` and ``splits`` (see
    :class:`cogrl.core.BatchedEnv`) are empty unless that class declares them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec, load_env_creator
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space, iterate

from cogrl.core import BatchedEnv, Info, Obs
from cogrl.imports import import_named_module
from cogrl.spaces import check_actions

__all__ = [
    "GymVectorCore",
    "HostEnvCore",
    "creator_metadata",
    "gym_spec",
    "make_gym_env",
    "render_modes",
]

_SUPPORTED = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
_INT_TENSOR_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def gym_spec(env_id: str) -> EnvSpec:
    """The registered spec of ``env_id`` (``"module:Id"`` imports the module first, as
    ``gym.make`` does); ValueError naming the id if there is none."""
    if not isinstance(env_id, str):
        raise ValueError(f"an environment id must be a str, got {type(env_id).__name__}")
    module, _, name = env_id.rpartition(":")
    try:
        if module:  # "package.module:MyEnv-v0": the module registers the id on import
            import_named_module(module, f"the environment id {env_id!r}")
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
    metadata = creator_metadata(spec)
    return None if metadata is None else list(metadata.get("render_modes", []))


def creator_metadata(spec: EnvSpec) -> dict[str, Any] | None:
    """A copy of the ``metadata`` the class (or function) of ``spec`` declares, without
    making an environment; None if it declares none or cannot be loaded."""
    try:
        creator = (
            load_env_creator(spec.entry_point)
            if isinstance(spec.entry_point, str)
            else spec.entry_point
        )
    except (ImportError, AttributeError, ValueError):
        return None
    metadata = getattr(creator, "metadata", None)
    return dict(metadata) if isinstance(metadata, Mapping) else None


class HostEnvCore(BatchedEnv):
    """What the cores over environments that live on the host share: no snapshots,
    ``render`` of one environment's frame (subclasses give :meth:`_frame`), closing once
    (subclasses give :meth:`_close_envs`), and numpy -> tensor conversions."""

    reset_options = None  # any: passed through to the environments' reset
    supports_snapshot = False
    _closed = True  # until a subclass has built its environments (__del__ may come first)

    def state_dict(self) -> dict[str, Any]:
        """Not available: the environments are Python (or C++) objects, not tensors."""
        raise NotImplementedError(
            f"{self!r} cannot snapshot its environments (objects, not tensors); "
            "supports_snapshot is False: restart episodes with reset() instead"
        )

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Not available (see :meth:`state_dict`)."""
        self.state_dict()

    def render(self, index: int = 0) -> np.ndarray:
        """The ``rgb_array`` frame (H, W, 3) uint8 of environment ``index``."""
        if self.render_mode != "rgb_array":
            raise RuntimeError(
                f"render() needs render_mode='rgb_array' (this core has {self.render_mode!r}); "
                f"{self!r} offers {self.metadata.get('render_modes', [])}"
            )
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise ValueError(f"index must be an int, got {index!r}")
        if not 0 <= index < self.num_envs:
            raise ValueError(f"index must lie in [0, {self.num_envs}), got {index}")
        if not self._started:
            raise RuntimeError("call reset() before render()")
        return np.asarray(self._frame(int(index)))

    def _frame(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Close the environments (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        self._close_envs()

    def _close_envs(self) -> None:
        raise NotImplementedError

    def __del__(self) -> None:  # as SyncVectorEnv did: environments with windows get closed
        try:
            self.close()
        except Exception:  # e.g. at interpreter shutdown: nothing left to release
            pass

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        """``x`` (a fresh array, not kept by the core) as a tensor on the device, no copy on CPU."""
        t = torch.from_numpy(x)
        return t if self._on_cpu else t.to(self.device)

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


class GymVectorCore(HostEnvCore):
    """A batched core over ``num_envs`` copies of a registered Gymnasium environment.

    ``env_kwargs`` go to ``gym.make`` (constructor arguments, or ``max_episode_steps``).
    With ``autoreset=False`` a finished environment is not reset: its final observation is
    returned, and stepping again before :meth:`reset` is an error. The copies are in
    :attr:`envs`.
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
        # Gymnasium's PassiveEnvChecker only checks (and warns about) an environment's first
        # reset, step and render; after that it is one more wrapper layer on every call. The
        # first copy keeps it (so a user's environment is still checked, as gym.make does);
        # the other copies, made from the same id and arguments, are built without it. The
        # registered wrappers (TimeLimit, OrderEnforcing, ...) stay: they define the env.
        self.envs: list[gym.Env] = [make_gym_env(env_id, **make_kwargs)]
        try:
            copy_kwargs = {**make_kwargs, "disable_env_checker": True}
            self.envs += [make_gym_env(env_id, **copy_kwargs) for _ in range(self.num_envs - 1)]
            first = self.envs[0]
            self.single_observation_space = first.observation_space
            self.single_action_space = first.action_space
            for env in self.envs[1:]:
                if (env.observation_space, env.action_space) != (
                    self.single_observation_space,
                    self.single_action_space,
                ):
                    raise ValueError(
                        f"copies of {env_id!r} have different spaces: {first.observation_space}"
                        f", {first.action_space} and {env.observation_space}, "
                        f"{env.action_space}"
                    )
            _check_obs_space(self.single_observation_space)
            leaf_action = isinstance(self.single_action_space, _SUPPORTED)
            self._batched_action_space = (
                None if leaf_action else batch_space(self.single_action_space, self.num_envs)
            )
        except BaseException:
            for env in self.envs:
                env.close()
            raise
        self._closed = False
        self.env_id = env_id
        self.spec_id = env_id
        self.spec_kwargs = dict(env_kwargs)
        self.render_mode = render_mode
        self.metadata = dict(first.metadata)
        self.metadata.setdefault("episode_metrics", {})
        self.metadata.setdefault("splits", ())
        self.metadata["autoreset_mode"] = (
            AutoresetMode.SAME_STEP if autoreset else AutoresetMode.DISABLED
        )
        self._env_steps = [env.step for env in self.envs]
        self._env_resets = [env.reset for env in self.envs]
        self._stack = _stacker(self.single_observation_space)
        self._obs_is_leaf = isinstance(self.single_observation_space, _SUPPORTED)
        self._on_cpu = self.device.type == "cpu"
        space = self.single_action_space
        self._discrete_actions = isinstance(space, spaces.Discrete)
        if self._discrete_actions:
            self._action_shape = (self.num_envs,)
            self._action_low, self._action_high = space.start, space.start + space.n - 1
            self._action_dtype = space.dtype
        self._ones = np.ones(self.num_envs, dtype=np.int64)
        self._episode_return_np = np.zeros(self.num_envs, dtype=np.float64)
        self._episode_length_np = np.zeros(self.num_envs, dtype=np.int64)
        self._started = False
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)
        # The base class's finished flags (autoreset=False), sharing the numpy array's memory.
        self._finished = torch.from_numpy(self._needs_reset)

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
        n = self.num_envs
        seeds = [None] * n if seed is None else range(int(seed), int(seed) + n)
        opts = None if options is None else dict(options)
        results = [
            env_reset(seed=s, options=opts)
            for env_reset, s in zip(self._env_resets, seeds, strict=True)
        ]
        self._episode_return_np[:] = 0.0
        self._episode_length_np[:] = 0
        self._needs_reset[:] = False
        self._started = True
        infos = [info for _, info in results]
        info = self._info_tensors(_batch_infos(infos, n)) if any(infos) else {}
        return self._obs_tensor([obs for obs, _ in results]), info

    def step(self, action: Any) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        """Step every environment; with autoreset, finished ones restart in the same call."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if not self.autoreset:
            self._check_not_finished()
        n = self.num_envs
        actions = self._fast_actions(action) if self._discrete_actions else None
        if actions is None:
            checked = check_actions(self.single_action_space, action, n, "cpu")
            actions = _to_numpy(checked)
            if self._batched_action_space is not None:  # Dict, Tuple, ...: one element per env
                actions = iterate(self._batched_action_space, actions)
        autoreset = self.autoreset
        resets = self._env_resets
        results: list[tuple[Any, ...]] = []
        finals: list[tuple[int, Any]] = []
        # As SyncVectorEnv(autoreset_mode=SAME_STEP): step env i, and if its episode ended,
        # keep its final observation (its step info stays in the results) and reset it at once
        for env_step, a in zip(self._env_steps, actions, strict=True):
            result = env_step(a)
            if result[2] or result[3]:
                i = len(results)
                finals.append((i, result[0]))
                if autoreset:
                    result = (resets[i]()[0], *result[1:])
            results.append(result)
        obs, reward, terminated, truncated, infos = zip(*results, strict=True)
        reward = np.array(reward, dtype=np.float64)
        terminated = np.array(terminated, dtype=bool)
        truncated = np.array(truncated, dtype=bool)
        episode_return, episode_length = self._episode_return_np, self._episode_length_np
        episode_return += reward
        episode_length += self._ones
        # Fresh arrays only (np.array, astype, copy): tensors share their memory on the CPU
        tensor = torch.from_numpy if self._on_cpu else self._tensor
        out = self._info_tensors(_batch_infos(infos, n)) if any(infos) else {}
        out["episode"] = {
            "r": tensor(episode_return.astype(np.float32)),
            "l": tensor(episode_length.copy()),
        }
        batch = self._stack(obs)
        if finals:
            done = terminated | truncated
            out["_episode"] = done_tensor = tensor(done)
            if autoreset:
                final_batch = _copy_batch(batch)
                for i, o in finals:
                    _set_row(final_batch, i, o)
                    episode_return[i] = 0.0
                    episode_length[i] = 0
                out["final_obs"] = self._batch_tensor(final_batch)
                out["_final_obs"] = done_tensor
            else:
                self._needs_reset |= done
        else:
            out["_episode"] = tensor(np.zeros(n, dtype=bool))
        return (
            self._batch_tensor(batch),
            tensor(reward.astype(np.float32)),
            tensor(terminated),
            tensor(truncated),
            out,
        )

    def _fast_actions(self, action: Any) -> np.ndarray | None:
        """The common case of a Discrete action space: an integer tensor or numpy array of
        shape ``(N,)`` within range, as numpy (no copy when it is int64 already); None for
        anything else, which :func:`~cogrl.spaces.check_actions` then checks (and reports)."""
        if type(action) is torch.Tensor:
            if action.dtype not in _INT_TENSOR_DTYPES:
                return None
            a = action.numpy(force=True)  # detach().cpu().numpy(): no copy on the CPU
        elif type(action) is np.ndarray:
            a = action
        else:
            return None
        if a.shape != self._action_shape or a.dtype.kind not in "iu":
            return None
        if self.num_envs <= 64:  # small batches: Python's min/max over a list are cheaper
            values = a.tolist()
            low, high = min(values), max(values)
        else:
            low, high = a.min(), a.max()
        if low < self._action_low or high > self._action_high:
            return None
        return a.astype(self._action_dtype, copy=False)

    def _frame(self, index: int) -> np.ndarray:
        return self.envs[index].render()

    def _close_envs(self) -> None:
        for env in self.envs:
            env.close()

    # --- conversions ---------------------------------------------------------------------

    def _batch_tensor(self, batch: Any) -> Obs:
        """A batch of :meth:`_stack` (fresh arrays) as tensors on the device."""
        if self._obs_is_leaf:
            return self._tensor(batch)
        return _map_leaves(self._tensor, batch)

    def _obs_tensor(self, items: Sequence[Any]) -> Obs:
        """The observations of every environment (a sequence) as the batch a core returns."""
        return self._batch_tensor(self._stack(items))


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


def _stacker(space: spaces.Space) -> Callable[[Sequence[Any]], Any]:
    """A function that stacks one observation of ``space`` per environment into a new batch
    (numpy, a dict/tuple of numpy for Dict/Tuple) of the dtypes the core's tensors have."""
    if isinstance(space, spaces.Dict):
        subs = [(key, _stacker(sub)) for key, sub in space.spaces.items()]
        return lambda items: {key: stack([x[key] for x in items]) for key, stack in subs}
    if isinstance(space, spaces.Tuple):
        parts = [_stacker(sub) for sub in space.spaces]
        return lambda items: tuple(stack([x[j] for x in items]) for j, stack in enumerate(parts))
    dtype = np.dtype(space.dtype)
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        final = np.dtype(np.int64)
    elif dtype.kind == "f":
        final = np.dtype(np.float32)
        if dtype.itemsize >= 4:  # float64 -> float32 rounds once either way: stack as float32
            dtype = final
    elif dtype in (np.uint16, np.uint32, np.uint64):
        final = np.dtype(np.int64)
    else:
        final = dtype
    # np.array copies: the batch is new every time, so tensors made from it without a copy
    # are never overwritten by a later step. (As SyncVectorEnv's concatenate, the values go
    # through the space's dtype first.)
    if final == dtype:
        return lambda items: np.array(items, dtype=dtype)
    return lambda items: np.array(items, dtype=dtype).astype(final)


def _copy_batch(batch: Any) -> Any:
    if isinstance(batch, dict):
        return {k: _copy_batch(v) for k, v in batch.items()}
    if isinstance(batch, tuple):
        return tuple(_copy_batch(v) for v in batch)
    return batch.copy()


def _set_row(batch: Any, i: int, value: Any) -> None:
    if isinstance(batch, dict):
        for k in batch:
            _set_row(batch[k], i, value[k])
    elif isinstance(batch, tuple):
        for b, v in zip(batch, value, strict=True):
            _set_row(b, i, v)
    else:
        batch[i] = value


def _map_leaves(fn: Callable[[np.ndarray], Any], batch: Any) -> Any:
    if isinstance(batch, dict):
        return {k: _map_leaves(fn, v) for k, v in batch.items()}
    if isinstance(batch, tuple):
        return tuple(_map_leaves(fn, v) for v in batch)
    return fn(batch)


def _batch_infos(infos: Sequence[Mapping[str, Any]], n: int) -> dict[str, Any]:
    """Per-environment infos as one batched info (``gymnasium.vector``'s convention)."""
    out: dict[str, Any] = {}
    for i, info in enumerate(infos):
        if info:
            _add_info(out, info, i, n)
    return out


def _add_info(batched: dict[str, Any], info: Mapping[str, Any], i: int, n: int) -> None:
    """Environment ``i``'s ``info`` into ``batched``, as ``VectorEnv._add_info`` does: every
    key an array over the environments (dtype from the first value), ``"_" + key`` a mask."""
    for key, value in info.items():
        if isinstance(value, dict):
            array = batched.get(key, {})
            _add_info(array, value, i, n)
        else:
            array = batched.get(key)
            if array is None:
                if type(value) in (int, float, bool) or issubclass(type(value), np.number):
                    array = np.zeros(n, dtype=type(value))
                elif isinstance(value, np.ndarray):
                    array = np.zeros((n, *value.shape), dtype=value.dtype)
                else:
                    array = np.full(n, fill_value=None, dtype=object)
            array[i] = value
        mask = batched.get("_" + key)
        if mask is None:
            mask = np.zeros(n, dtype=np.bool_)
        mask[i] = True
        batched[key], batched["_" + key] = array, mask


def _to_numpy(actions: Any) -> Any:
    """Checked actions (CPU tensors, dicts/tuples of them, or numpy) as numpy, sharing memory."""
    if isinstance(actions, torch.Tensor):
        return actions.numpy()
    if isinstance(actions, dict):
        return {k: _to_numpy(v) for k, v in actions.items()}
    if isinstance(actions, tuple):
        return tuple(_to_numpy(v) for v in actions)
    return actions
