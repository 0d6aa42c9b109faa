"""Environments that are already vectorised, as cogrl batched cores: one call steps them all.

:class:`~cogrl.envs.gym_vector.GymVectorCore` steps ``gym.make`` copies one by one in
Python. Some environments come vectorised already: a Gymnasium id's ``vector_entry_point``
(a ``gymnasium.vector.VectorEnv`` class that steps the whole batch in numpy, JAX or C++) and
EnvPool's C++ pools. :class:`VectorEnvCore` presents such a vector env as a cogrl core
(:class:`cogrl.core.BatchedEnv`): torch tensors on a device, same-step autoreset with
``info["final_obs"]``/``info["_final_obs"]``, ``info["episode"]``/``info["_episode"]``,
actions checked by :func:`cogrl.spaces.check_actions` and never clipped.

Same-step autoreset from a subset reset
    Vector envs autoreset on the *next* step (``AutoresetMode.NEXT_STEP``: the step after
    an episode ends ignores the action and returns the first observation of the next one) or
    not at all (``DISABLED``). cogrl's learners need the first observation in the same step,
    so after every step in which some environment finished, the core resets exactly those with
    Gymnasium's ``reset(options={"reset_mask": done})``; the vector env must honour the mask
    (reset only those rows, keep the others, and cancel its own pending autoreset of them).
    :func:`vector_entry_point_support` checks that on a vector env of two before a core is
    built; ``cogrl.envs.make_core`` falls back to ``GymVectorCore`` when it fails. Vector envs
    that autoreset in the same step themselves (``SAME_STEP``) are not adapted (fallback too).

    Gymnasium 1.4's ``CartPoleVectorEnv`` (``CartPole-v1``'s vector entry point) does not
    honour the mask: its ``reset`` reads only the ``low``/``high`` options and restarts every
    environment, and it has no other public way to restart some of them (its state rows are
    attributes, not API). So ``make_core("CartPole-v1", ...)`` steps ``gym.make`` copies;
    ``make_core("envpool:CartPole-v1", ...)`` is the vectorised CartPole.

EnvPool
    ``envpool:<TaskId>`` (``envpool:CartPole-v1``, ``envpool:Pong-v5``; ``envpool.
    list_all_envs()`` lists the tasks) is :class:`EnvPoolCore`: ``envpool.make(task,
    env_type="gymnasium", num_envs=N, seed=s, **kwargs)`` in synchronous mode, finished
    environments reset by ``reset(options={"reset_mask": done})`` (EnvPool's ``env_id``
    reset). The prefix takes precedence over Gymnasium's ``"module:Id"`` form.

Semantics that differ from ``gym.make`` copies
    - Seeding: ``reset(seed=s)`` passes ``s`` to the vector env, whose own rule derives each
      environment's randomness. ``CartPoleVectorEnv``-style classes draw the whole batch from
      one generator, so environment ``i`` is *not* ``gym.make(id).reset(seed=s + i)``;
      ``SyncVectorEnv``-style classes seed environment ``i`` with ``s + i``. EnvPool fixes its
      seeds when a pool is made (``reset(seed=...)`` of the pool is ignored), so a seeded
      :meth:`EnvPoolCore.reset` makes a new pool with ``seed=s``: environment ``i`` then runs
      as ``envpool.make(task, num_envs=1, seed=s + i)`` (EnvPool's own C++ dynamics and
      random streams: its episodes are not those of ``gym.make(task)``).
    - Episode limits are the vector env's: ``max_episode_steps`` is an argument of
      ``CartPoleVectorEnv`` and of EnvPool (the spec's value by default, as ``gym.make_vec``
      passes it), not a ``TimeLimit`` wrapper; :attr:`VectorEnvCore.max_episode_steps` holds
      it.
    - Info: the vector env's batched info, numeric leaves as tensors (EnvPool reports
      ``env_id`` and ``elapsed_step``); the info of the masked reset is not reported.
    - No snapshots (``supports_snapshot`` is false), as ``GymVectorCore``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from cogrl.core import Info, Obs
from cogrl.envs.gym_vector import (
    HostEnvCore,
    _check_obs_space,
    _copy_batch,
    _to_numpy,
    gym_spec,
)
from cogrl.spaces import check_actions

__all__ = [
    "ENVPOOL_PREFIX",
    "EnvPoolCore",
    "VectorEnvCore",
    "envpool_task",
    "make_gym_vec",
    "vector_entry_point_support",
]

ENVPOOL_PREFIX = "envpool:"
_SUPPORT_CACHE: dict[tuple[str, str], tuple[bool, str]] = {}


def envpool_task(env_id: str) -> str | None:
    """The EnvPool task of an ``envpool:<TaskId>`` id, None for any other id."""
    if isinstance(env_id, str) and env_id.startswith(ENVPOOL_PREFIX):
        return env_id[len(ENVPOOL_PREFIX) :]
    return None


def check_envpool_task(task: str) -> None:
    """ValueError unless EnvPool is installed and offers ``task``."""
    if importlib.util.find_spec("envpool") is None:
        raise ValueError(
            f"{ENVPOOL_PREFIX}{task} needs EnvPool, which is not installed: "
            'pip install "cogrl[envpool]" (or pip install envpool)'
        )
    import envpool

    if task not in envpool.list_all_envs():
        raise ValueError(
            f"unknown EnvPool task {task!r} in {ENVPOOL_PREFIX}{task}; envpool.list_all_envs() "
            "lists them (e.g. envpool:CartPole-v1, envpool:Pong-v5)"
        )


def vector_entry_point_support(env_id: str, **env_kwargs: Any) -> tuple[bool, str]:
    """Whether ``gym.make_vec(env_id, vectorization_mode="vector_entry_point")`` can be a
    :class:`VectorEnvCore`, and why not.

    True when the id has a vector entry point that builds, does not autoreset in the same
    step itself, and resets only the masked environment of two under
    ``reset(options={"reset_mask": ...})`` (checked by one reset, one step and one masked
    reset of a vector env of two; the answer is cached per id and arguments).
    """
    key = (env_id, repr(sorted(env_kwargs.items())))
    if key not in _SUPPORT_CACHE:
        _SUPPORT_CACHE[key] = _probe(env_id, env_kwargs)
    return _SUPPORT_CACHE[key]


def _probe(env_id: str, env_kwargs: Mapping[str, Any]) -> tuple[bool, str]:
    spec = gym_spec(env_id)
    if spec.vector_entry_point is None:
        return False, f"{env_id} registers no vector_entry_point"
    try:
        venv = make_gym_vec(env_id, env_kwargs, 2)
    except Exception as e:  # e.g. JAX not installed for phys2d/CartPole-v1
        return False, f"its vector entry point {spec.vector_entry_point} failed: {e!r}"
    name = type(venv.unwrapped).__name__
    try:
        mode = _autoreset_mode(venv)
        if mode == AutoresetMode.SAME_STEP:
            return False, f"{name} autoresets in the same step itself (not adapted)"
        venv.action_space.seed(0)
        venv.reset(seed=0)
        stepped = venv.step(venv.action_space.sample())[0]
        try:
            reset = venv.reset(options={"reset_mask": np.array([True, False])})[0]
        except Exception as e:
            return False, f"{name}.reset(options={{'reset_mask': ...}}) raised {e!r}"
        rows = _leading(reset)
        if rows == 1:  # only the reset environments' observations (EnvPool's convention)
            return True, f"{name} resets a subset (reset_mask)"
        if rows == 2 and _rows_equal(reset, stepped, 1):
            return True, f"{name} resets a subset (reset_mask)"
        return False, (
            f"{name}.reset ignores options['reset_mask'] (it restarted the unmasked "
            "environment too) and offers no other public way to restart a subset"
        )
    finally:
        venv.close()


def make_gym_vec(
    env_id: str, env_kwargs: Mapping[str, Any], num_envs: int, seed: int | None = None
) -> VectorEnv:
    """``gym.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point",
    **env_kwargs)`` with bad arguments as ValueError (``seed`` is unused: Gymnasium vector
    envs are seeded by ``reset(seed=...)``; it is there to be a :class:`VectorEnvCore`
    factory)."""
    del seed
    try:
        return gym.make_vec(
            env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **dict(env_kwargs)
        )
    except TypeError as e:  # the vector env's report of an unknown constructor argument
        raise ValueError(f"bad argument(s) {sorted(env_kwargs)} for {env_id!r}: {e}") from e
    except gym.error.Error as e:
        raise ValueError(f"cannot make the vector env of {env_id!r}: {e}") from e


def _autoreset_mode(venv: VectorEnv) -> AutoresetMode:
    mode = venv.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    return AutoresetMode(mode) if isinstance(mode, str) else mode


def _leading(batch: Any) -> int:
    if isinstance(batch, Mapping):
        return _leading(next(iter(batch.values())))
    if isinstance(batch, tuple):
        return _leading(batch[0])
    return int(np.shape(batch)[0])


def _rows_equal(a: Any, b: Any, i: int) -> bool:
    if isinstance(a, Mapping):
        return all(_rows_equal(a[k], b[k], i) for k in a)
    if isinstance(a, tuple):
        return all(_rows_equal(x, y, i) for x, y in zip(a, b, strict=True))
    return bool(np.array_equal(np.asarray(a)[i], np.asarray(b)[i]))


class VectorEnvCore(HostEnvCore):
    """A batched core over one ``gymnasium.vector.VectorEnv`` that resets subsets.

    ``make_vec(num_envs, seed)`` builds the vector env (``seed`` is None except for vector
    envs that fix their seeds at construction, see :class:`EnvPoolCore`). Use
    :func:`cogrl.envs.make_core`, which builds it from an id.
    """

    def __init__(
        self,
        make_vec: Callable[[int, int | None], VectorEnv],
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        autoreset: bool = True,
        name: str = "vector env",
    ) -> None:
        super().__init__(num_envs=num_envs, device=device, render_mode=None, autoreset=autoreset)
        self._make_vec = make_vec
        self.name = name
        self.venv = make_vec(self.num_envs, None)
        self._closed = False
        try:
            if self.venv.num_envs != self.num_envs:
                raise ValueError(
                    f"{name} made {self.venv.num_envs} environments, {self.num_envs} asked for"
                )
            if _autoreset_mode(self.venv) == AutoresetMode.SAME_STEP:
                raise ValueError(f"{name} autoresets in the same step itself (not adapted)")
            self.single_observation_space = self.venv.single_observation_space
            self.single_action_space = self.venv.single_action_space
            _check_obs_space(self.single_observation_space)
        except BaseException:
            self.close()
            raise
        self.render_mode = getattr(self.venv, "render_mode", None)
        self.metadata = {
            **dict(self.venv.metadata),
            "autoreset_mode": AutoresetMode.SAME_STEP if autoreset else AutoresetMode.DISABLED,
        }
        self.metadata.setdefault("episode_metrics", {})
        self.metadata.setdefault("splits", ())
        limit = getattr(self.venv.unwrapped, "max_episode_steps", None)
        if limit is None:  # EnvPool keeps it in its config
            limit = getattr(self.venv.unwrapped, "config", {}).get("max_episode_steps")
        spec = getattr(self.venv, "spec", None)
        if limit is None and spec is not None:  # gym.make_vec passes the spec's limit on
            limit = (spec.kwargs or {}).get("max_episode_steps", spec.max_episode_steps)
        self.max_episode_steps = None if limit is None else int(limit)
        self._convert = _converter(self.single_observation_space)
        self._on_cpu = self.device.type == "cpu"
        self._episode_return_np = np.zeros(self.num_envs, dtype=np.float64)
        self._episode_length_np = np.zeros(self.num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)
        self._finished = torch.from_numpy(self._needs_reset)
        self._started = False

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name}, num_envs={self.num_envs}, "
            f"device='{self.device}', autoreset={self.autoreset})"
        )

    # --- the BatchedEnv contract ---------------------------------------------------------
    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[Obs, Info]:
        """Start a new episode in every environment (``seed``: see the module docstring)."""
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(f"options must be a mapping or None, got {options!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed must be an int or None, got {seed!r}")
        obs, info = self._reset_all(None if seed is None else int(seed), options)
        self._episode_return_np[:] = 0.0
        self._episode_length_np[:] = 0
        self._needs_reset[:] = False
        self._started = True
        return self._obs_tensor(obs), self._info_tensors(info)

    def _reset_all(
        self, seed: int | None, options: Mapping[str, Any] | None
    ) -> tuple[Any, dict[str, Any]]:
        return self.venv.reset(seed=seed, options=None if options is None else dict(options))

    def step(self, action: Any) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        """Step every environment in one call; finished ones restart in the same call."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if not self.autoreset:
            self._check_not_finished()
        checked = check_actions(self.single_action_space, action, self.num_envs, "cpu")
        obs, reward, terminated, truncated, raw_info = self.venv.step(_to_numpy(checked))
        reward = np.asarray(reward, dtype=np.float64)
        terminated = np.array(terminated, dtype=bool)
        truncated = np.array(truncated, dtype=bool)
        done = terminated | truncated
        episode_return, episode_length = self._episode_return_np, self._episode_length_np
        episode_return += reward
        episode_length += 1
        tensor = torch.from_numpy if self._on_cpu else self._tensor
        info = self._info_tensors(raw_info)
        info["episode"] = {
            "r": tensor(episode_return.astype(np.float32)),
            "l": tensor(episode_length.copy()),
        }
        info["_episode"] = done_tensor = tensor(done)
        batch = self._convert(obs)
        if done.any():
            if self.autoreset:
                info["final_obs"] = self._batch_tensor(batch)
                info["_final_obs"] = done_tensor
                new = self.venv.reset(options={"reset_mask": done.copy()})[0]
                batch = _merge_rows(_copy_batch(batch), self._convert(new), done)
                episode_return[done] = 0.0
                episode_length[done] = 0
            else:
                self._needs_reset |= done
        return (
            self._batch_tensor(batch),
            tensor(reward.astype(np.float32)),
            tensor(terminated),
            tensor(truncated),
            info,
        )

    def _frame(self, index: int) -> np.ndarray:
        return self.venv.render()[index]

    def _close_envs(self) -> None:
        self.venv.close()

    # --- conversions ---------------------------------------------------------------------
    def _batch_tensor(self, batch: Any) -> Obs:
        if isinstance(batch, dict):
            return {k: self._batch_tensor(v) for k, v in batch.items()}
        if isinstance(batch, tuple):
            return tuple(self._batch_tensor(v) for v in batch)
        return self._tensor(batch)

    def _obs_tensor(self, obs: Any) -> Obs:
        return self._batch_tensor(self._convert(obs))


class EnvPoolCore(VectorEnvCore):
    """A batched core over an EnvPool task (``envpool:<TaskId>``).

    ``env_kwargs`` go to ``envpool.make`` (e.g. ``max_episode_steps``, ``num_threads``,
    ``render_mode``); ``num_envs``, ``batch_size`` (synchronous mode only), ``seed`` and
    ``env_type`` are the core's.
    """

    def __init__(
        self,
        task: str,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        autoreset: bool = True,
        **env_kwargs: Any,
    ) -> None:
        check_envpool_task(task)
        reserved = sorted(set(env_kwargs) & {"num_envs", "batch_size", "seed", "env_type"})
        if reserved:
            raise ValueError(
                f"{reserved} of {ENVPOOL_PREFIX}{task} are set by the core (num_envs is the "
                "core's, the pool runs synchronously, reset(seed=s) seeds it)"
            )
        self.task = task
        self.env_kwargs = dict(env_kwargs)
        super().__init__(self._make_pool, num_envs, device, autoreset, f"{ENVPOOL_PREFIX}{task}")

    def _make_pool(self, num_envs: int, seed: int | None) -> VectorEnv:
        import envpool

        seeded = {} if seed is None else {"seed": seed}
        try:
            return envpool.make(
                self.task, env_type="gymnasium", num_envs=num_envs, **seeded, **self.env_kwargs
            )
        except TypeError as e:  # envpool's Config rejects unknown arguments with a TypeError
            raise ValueError(
                f"bad argument(s) {sorted(self.env_kwargs)} for {ENVPOOL_PREFIX}{self.task}: {e}"
            ) from e

    def _reset_all(
        self, seed: int | None, options: Mapping[str, Any] | None
    ) -> tuple[Any, dict[str, Any]]:
        if seed is not None:  # EnvPool fixes seeds at construction: a new pool with seed s
            pool = self._make_pool(self.num_envs, seed)
            self.venv.close()
            self.venv = pool
        return self.venv.reset(options=None if options is None else dict(options))

    def _frame(self, index: int) -> np.ndarray:
        return self.venv.render(env_ids=np.array([index]))[0]


# ---------------------------------------------------------------------------------------
def _converter(space: spaces.Space) -> Callable[[Any], Any]:
    """A function from a batch of ``space`` (numpy) to a fresh batch of the dtypes cogrl's
    tensors have (float32 for floats, int64 for Discrete/MultiDiscrete and wide unsigned)."""
    if isinstance(space, spaces.Dict):
        subs = [(key, _converter(sub)) for key, sub in space.spaces.items()]
        return lambda batch: {key: convert(batch[key]) for key, convert in subs}
    if isinstance(space, spaces.Tuple):
        parts = [_converter(sub) for sub in space.spaces]
        return lambda batch: tuple(c(b) for c, b in zip(parts, batch, strict=True))
    dtype = np.dtype(space.dtype)
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        dtype = np.dtype(np.int64)
    elif dtype.kind == "f":
        dtype = np.dtype(np.float32)
    elif dtype in (np.uint16, np.uint32, np.uint64):
        dtype = np.dtype(np.int64)
    return lambda batch: np.array(batch, dtype=dtype)  # a copy: never the vector env's buffer


def _merge_rows(batch: Any, new: Any, mask: np.ndarray) -> Any:
    """``batch`` with the rows of ``mask`` from ``new`` (a full batch, or only those rows)."""
    if isinstance(batch, dict):
        return {k: _merge_rows(v, new[k], mask) for k, v in batch.items()}
    if isinstance(batch, tuple):
        return tuple(_merge_rows(b, n, mask) for b, n in zip(batch, new, strict=True))
    batch[mask] = new[mask] if len(new) == len(batch) and len(new) != mask.sum() else new
    return batch
