"""The batched core every cogrl environment is written as, and its contract.

A *core* steps ``num_envs`` environments at once as torch tensors on one device. cogrl's
agents talk to it directly; :mod:`cogrl.envs.adapters` wraps it for ``gym.make`` and
``gym.make_vec``, and :class:`~cogrl.envs.gym_vector.GymVectorCore` presents any Gymnasium
environment as one.

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
    marks the environments it is valid for. On the CPU ``final_obs`` is present only in the
    steps where some environment finished; on sync-free devices (below) it is always present.
    With ``autoreset=False`` a finished environment keeps its final observation, and stepping
    it again before :meth:`BatchedEnv.reset` is a ``RuntimeError`` naming it.

Host reads (sync-free stepping)
    On a GPU, reading a tensor on the host (``bool(t.any())``, ``.item()``, ``.tolist()``,
    ``nonzero()`` without a size) waits for every queued kernel; on the CPU it costs nothing,
    and skipping work when no environment finished is cheaper there. :func:`sync_free` tells
    which path :meth:`BatchedEnv.step` takes: on the CPU, finished environments are found
    with ``nonzero`` and reset by index (:meth:`BatchedEnv._reset_envs`); elsewhere (or on
    the CPU inside :func:`force_sync_free`) they are reset under a mask
    (:meth:`BatchedEnv._reset_where`) without reading anything, and with
    ``check_action_values = False`` a step reads nothing on the host at all.

Snapshots
    :meth:`BatchedEnv.state_dict` holds CPU tensors and plain values (loadable with
    ``torch.load(weights_only=True)``); a fresh core built with the same arguments that
    loads it continues bit for bit as the original would have.

Reconfiguring a running core
    The constructor arguments a core lists in ``configurable`` (Copy's ``min_length`` and
    ``max_length``, DelayedRecall's ``delay``, ...) may change while it runs, per
    environment: ``core.configure({"max_length": 8})`` (every environment) or
    ``core.configure({"max_length": lengths}, index=mask)`` with a tensor ``(num_envs,)``.
    A new value takes effect at the environment's next reset (autoreset or
    :meth:`BatchedEnv.reset`); episodes in progress are untouched. Values outside what the
    core was built for (a length its tapes cannot hold, ``min_length > max_length``) are a
    ValueError naming the value and the bound. :meth:`BatchedEnv.configure` checks on the
    host (call it between rollouts, not per step); stepping reads the per-environment values
    as tensors, without host reads. The values are part of :meth:`BatchedEnv.state_dict`.
    A core never configured draws exactly the episodes it drew before ``configure`` existed.
    :mod:`cogrl.curriculum` schedules them.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from cogrl.imports import import_named_module
from cogrl.rng import BatchRNG
from cogrl.spaces import check_actions

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


# --- host synchronisation ---------------------------------------------------------------------

_FORCE_SYNC_FREE: ContextVar[bool] = ContextVar("cogrl_force_sync_free", default=False)


def sync_free(device: torch.device) -> bool:
    """Whether code on ``device`` must avoid host reads of tensors: true on every device but
    the CPU, and on the CPU inside :func:`force_sync_free`."""
    return device.type != "cpu" or _FORCE_SYNC_FREE.get()


@contextlib.contextmanager
def force_sync_free() -> Iterator[None]:
    """Make CPU code take the sync-free path of GPUs, so that tests and benchmarks on the
    CPU exercise (and time) what a GPU runs."""
    token = _FORCE_SYNC_FREE.set(True)
    try:
        yield
    finally:
        _FORCE_SYNC_FREE.reset(token)


# --- memory -------------------------------------------------------------------------------------


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory ``device`` has in all (physical memory for the CPU), or None when
    unknown."""
    if device.type == "cpu":
        try:
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # no sysconf (Windows)
            return None
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[1]
    return None


def check_memory(device: torch.device, nbytes: int, arguments: Mapping[str, Any]) -> None:
    """ValueError, before anything is allocated, when a core built with ``arguments`` would
    need ``nbytes`` (an estimate) more than ``device`` has in all."""
    available = device_memory(device)
    if available is None or nbytes <= available:
        return
    given = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    raise ValueError(
        f"{given} would need about {nbytes:,} bytes ({_gib(nbytes)}) on {device}, which has "
        f"{available:,} bytes ({_gib(available)}) in all; lower {' or '.join(arguments)}"
    )


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:,.1f} GiB"


def check_num_envs(num_envs: Any) -> int:
    """``num_envs`` as an int, or ValueError unless it is a positive int."""
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    return int(num_envs)


def check_configured(
    name: str,
    value: torch.Tensor,
    low: int | float | None = None,
    high: int | float | None = None,
    why: str = "",
) -> None:
    """ValueError unless every element of ``value`` (a configured argument, one per
    environment) lies in [low, high] (None: unbounded), naming the argument, the first
    value out of range, its environment and the bound, with ``why`` after it. For
    :meth:`BatchedEnv._check_configuration`; it reads ``value`` on the host."""
    for bound, side in ((low, ">="), (high, "<=")):
        if bound is None:
            continue
        bad = value < bound if side == ">=" else value > bound
        if not bool(bad.any()):
            continue
        env = int(bad.nonzero()[0, 0])
        got = value[env].item()
        raise ValueError(
            f"{name} must be {side} {bound}{f' ({why})' if why else ''}, got {got!r} "
            f"(environment {env})"
        )


def check_configured_order(
    low_name: str, low: torch.Tensor, high_name: str, high: torch.Tensor
) -> None:
    """ValueError unless ``low <= high`` in every environment (configured ranges)."""
    bad = low > high
    if bool(bad.any()):
        env = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{low_name}={low[env].item()!r} must be <= {high_name}={high[env].item()!r} "
            f"(environment {env})"
        )


# Bytes the base class keeps per environment (RNG keys and counters, index, episode return,
# length and finished flag) and those of one step's outputs (reward, flags, info).
_BASE_BYTES_PER_ENV = 8 + 8 + 8 + 4 + 8 + 1 + 64


class BatchedEnv:
    """Base of a batched environment core.

    A subclass sets ``single_observation_space`` and ``single_action_space`` and implements
    :meth:`_reset_envs` (start new episodes for a set of environments, drawing its random
    numbers from ``self.rng``), :meth:`_step` (advance every environment by one action) and
    :meth:`_observe`. The base class checks actions against the action space, and does
    seeding, same-step autoreset, episode statistics and snapshots. A core that must not
    read tensors on the host overrides :meth:`_reset_where` too (see the module docstring).

    Class attributes a core declares:

    ``metadata``
        Gymnasium's ``render_modes`` and ``render_fps``, plus keys that tell learners and
        the CLI what the task measures, so that none of them looks for task-specific info
        keys or constructor arguments:

        - ``"episode_metrics"``: ``{metric name: info key}``. The value of ``info[key]`` at
          the step an episode ends (masked by ``info["_" + key]``), averaged over episodes,
          is the metric; e.g. ``{"accuracy": "correct"}``. Default: none.
        - ``"splits"``: the values the core's ``split`` argument takes, e.g.
          ``("train", "test")``; evaluation uses ``"test"``. Default: ``()``, no splits.
        - ``"label_key"`` (recognition tasks): the info key holding the true class at the
          step an episode ends, which supervised terms (RAM's classifier) learn from.
        - ``"reward_parts"``: K, where the action is K independently scored elements
          (flattened order) and ``info["reward_parts"]`` (N, K) sums to the reward
          (learners' ``factored_credit``).
        - ``"ignored_key"``: the info key (``"action_ignored"``) of a bool (N,) that is true
          where the action just taken had no effect (learners credit no gradient there).
        - ``"answer_key"``: the info key (``"answer"``) of the right action at the step just
          taken, in the action space's batched format, due where ``info["_" + key]``
          (learners' ``answer_coef``).
    ``reset_options``
        The names of the ``reset(options=...)`` keys the core honours (applied by
        :meth:`_apply_options`); any other is a ValueError. ``None``: any (passed through).
    ``num_items``
        Where each episode shows one of a finite set of items (the split's images, its
        questions): their number (set by the constructor; None where episodes are not
        items). Such a core lists ``"item"`` in ``reset_options``: ``reset(options={"item":
        indices})``, one index in ``[0, num_items)`` per environment, makes that reset's
        episodes show those items (later episodes draw again); its draw takes them from
        :meth:`_take_items`. ``cogrl.agents.evaluate(agent, "all")`` shows each item once.
    ``state_attributes``
        The names of the tensors (first dimension ``num_envs``) that hold the episodes in
        progress, saved by :meth:`state_dict`.
    ``supports_snapshot``
        Whether :meth:`state_dict` works.
    ``configurable``
        The constructor arguments :meth:`configure` may change while the core runs (each
        held as a per-environment tensor, read at resets through :meth:`_configured`). A
        core that lists some overrides :meth:`_check_configuration` with the bounds it was
        built for.

    ``check_action_values`` (default true) may be turned off on an instance: ``step`` then
    checks only the shape and dtype of actions, not their values (which reading from a GPU
    costs a synchronisation), for learners whose actions are valid by construction.
    """

    metadata: dict[str, Any] = {
        "render_modes": ["rgb_array"],
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.SAME_STEP,
        "episode_metrics": {},
        "splits": (),
    }
    reset_options: ClassVar[tuple[str, ...] | None] = ()
    num_items: int | None = None
    state_attributes: ClassVar[tuple[str, ...]] = ()
    supports_snapshot: ClassVar[bool] = True
    configurable: ClassVar[tuple[str, ...]] = ()
    check_action_values: bool = True
    #: The most steps an episode can take, where the task bounds it (None: unbounded).
    #: Learners that run whole episodes (REINFORCE, RAM) step to it without asking the
    #: device whether every episode has ended.
    max_episode_steps: int | None = None
    single_observation_space: spaces.Space
    single_action_space: spaces.Space

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        render_mode: str | None = None,
        autoreset: bool = True,
    ) -> None:
        num_envs = check_num_envs(num_envs)
        modes = self.metadata["render_modes"]
        if render_mode is not None and not (isinstance(render_mode, str) and render_mode in modes):
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        self.num_envs = num_envs
        self.device = resolve_device(device)
        check_memory(self.device, _BASE_BYTES_PER_ENV * num_envs, {"num_envs": num_envs})
        self.render_mode = render_mode
        self.autoreset = autoreset
        self.rng = BatchRNG(self.num_envs, self.device)
        self._all = torch.arange(self.num_envs, device=self.device)
        self._episode_return = torch.zeros(self.num_envs, device=self.device)
        self._episode_length = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        # autoreset=False: the environments whose episode ended since the last reset().
        self._finished = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)

    # --- to implement -------------------------------------------------------------------
    def _reset_envs(self, index: torch.Tensor) -> None:
        """Start a new episode in each environment of ``index`` (a 1-D long tensor)."""
        raise NotImplementedError

    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        """Advance every environment: returns reward, terminated, truncated, info."""
        raise NotImplementedError

    def _observe(self, index: torch.Tensor | None = None) -> Obs:
        """The current observation of the environments in ``index`` (default: all), as new
        tensors (not views of the core's state, which later steps change)."""
        raise NotImplementedError

    # --- may override -------------------------------------------------------------------
    def _check_action(self, action: Any) -> torch.Tensor:
        """Validate a batch of actions and return it as a tensor on the device: shape and
        dtype always, values while ``check_action_values`` (:func:`cogrl.spaces.check_actions`)."""
        return check_actions(
            self.single_action_space,
            action,
            self.num_envs,
            self.device,
            values=self.check_action_values,
        )

    def _reset_where(self, mask: torch.Tensor) -> None:
        """Start a new episode in the environments where ``mask`` (N,) bool is true; their
        random streams have already moved on to the new episode.

        The sync-free path of :meth:`step` calls it. This default finds the environments
        with ``nonzero`` (a host read) and calls :meth:`_reset_envs`; a core that must not
        synchronise overrides it with masked tensor operations.
        """
        index = mask.nonzero().squeeze(1)
        if index.numel() > 0:
            self._reset_envs(index)

    def _apply_options(self, options: Mapping[str, Any]) -> None:
        """Apply ``reset(options=...)`` (keys among ``reset_options``) before the new
        episodes are drawn. This one takes ``"item"`` (see ``num_items``); cores with other
        options extend it."""
        self._items = None
        if "item" in options and self.reset_options is not None:  # None: passed through
            self._items = self._check_items(options["item"], "item")

    def _check_items(self, value: Any, key: str) -> torch.Tensor:
        """``options[key]`` as (num_envs,) int64 item indices on the device; ValueError
        naming the value unless it is one int in ``[0, num_items)`` per environment."""
        n = self.num_items
        chosen = torch.as_tensor(value)
        if (
            n is None
            or chosen.shape != (self.num_envs,)
            or chosen.dtype.is_floating_point
            or chosen.dtype == torch.bool
            or chosen.dtype.is_complex
            or (chosen.numel() and not (0 <= int(chosen.min()) <= int(chosen.max()) < n))
        ):
            raise ValueError(
                f"options[{key!r}] must be {self.num_envs} ints in [0, {n}) (one item index per "
                f"environment), got {value!r}"
            )
        return chosen.to(self.device, torch.int64)

    def _take_items(self, index: torch.Tensor) -> torch.Tensor | None:
        """The items ``reset(options={"item": ...})`` chose for the environments of
        ``index``, once (the reset that was given them); None otherwise."""
        items, self._items = getattr(self, "_items", None), None
        return None if items is None else items[index]

    def _check_configuration(self, values: Mapping[str, torch.Tensor]) -> None:
        """ValueError (naming the value and the bound) unless ``values``, the values every
        environment would draw its next episodes with (each name of ``configurable`` ->
        tensor (num_envs,)), lie within what the core was built for. It may read them on
        the host (:meth:`configure` is not called per step); :func:`check_configured` and
        :func:`check_configured_order` help. The default accepts everything."""

    # --- public API ------------------------------------------------------------------------
    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[Obs, Info]:
        """Start a new episode in every environment (see the module docstring on seeding)."""
        options = self._check_options(options)
        if seed is not None or not self.rng.seeded:
            self.rng.seed(seed)
        else:
            self.rng.next_episode(self._all)
        self._apply_options(options)
        self._reset_envs(self._all)
        self._episode_return.zero_()
        self._episode_length.zero_()
        self._finished.zero_()
        return self._observe(), {}

    def step(self, action: Any) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        """Step every environment; finished ones are reset in the same call (autoreset)."""
        if not self.rng.seeded:
            raise RuntimeError("call reset() before step()")
        if not self.autoreset:
            self._check_not_finished()
        action = self._check_action(action)
        reward, terminated, truncated, info = self._step(action)
        self._episode_return += reward
        self._episode_length += 1
        done = terminated | truncated
        info["episode"] = {"r": self._episode_return.clone(), "l": self._episode_length.clone()}
        info["_episode"] = done
        obs = self._observe()
        if not self.autoreset:
            self._finished |= done
        elif sync_free(self.device):
            obs = self._autoreset_masked(obs, done, info)
        else:
            obs = self._autoreset_index(obs, done, info)
        return obs, reward, terminated, truncated, info

    def state_dict(self) -> dict[str, Any]:
        """Everything a fresh core built with the same arguments needs to continue exactly as
        this one: the random streams, episode returns and lengths, the finished flags, the
        ``state_attributes`` and the values of ``configurable`` (:meth:`configure`); as CPU
        tensors and plain values (``torch.save`` it, and load it with
        ``torch.load(weights_only=True)``)."""
        if not self.supports_snapshot:
            raise NotImplementedError(f"{type(self).__name__} cannot snapshot its environments")
        return {
            "core": type(self).__name__,
            "num_envs": self.num_envs,
            "rng": {
                "seeds": _cpu_copy(self.rng.seeds),
                "episodes": _cpu_copy(self.rng.episodes),
                "seeded": bool(self.rng.seeded),
            },
            "episode_return": _cpu_copy(self._episode_return),
            "episode_length": _cpu_copy(self._episode_length),
            "finished": _cpu_copy(self._finished),
            "attributes": {name: _cpu_copy(getattr(self, name)) for name in self.state_attributes},
            "configuration": {
                name: _cpu_copy(t) for name, t in self._configuration_tensors().items()
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict` of a core of the same class and arguments.

        Everything is checked before anything changes: missing or unexpected keys and
        tensors of the wrong shape or dtype are a ValueError naming them. A state without
        ``"configuration"`` (saved before :meth:`configure` existed) leaves every environment
        with the values the core was built with.
        """
        if not self.supports_snapshot:
            raise NotImplementedError(f"{type(self).__name__} cannot load a snapshot")
        name = type(self).__name__
        expected = {
            "core",
            "num_envs",
            "rng",
            "episode_return",
            "episode_length",
            "finished",
            "attributes",
        }
        if isinstance(state, Mapping) and "configuration" in state:
            expected.add("configuration")
        _check_keys("state", state, expected)
        if state["core"] != name or state["num_envs"] != self.num_envs:
            raise ValueError(
                f"the state is of a {state['core']} of num_envs={state['num_envs']!r}; this core "
                f"is a {name} of num_envs={self.num_envs}"
            )
        _check_keys("state['rng']", state["rng"], {"seeds", "episodes", "seeded"})
        _check_keys("state['attributes']", state["attributes"], set(self.state_attributes))
        targets = {
            "rng.seeds": (self.rng.seeds, state["rng"]["seeds"]),
            "rng.episodes": (self.rng.episodes, state["rng"]["episodes"]),
            "episode_return": (self._episode_return, state["episode_return"]),
            "episode_length": (self._episode_length, state["episode_length"]),
            "finished": (self._finished, state["finished"]),
        }
        for key in self.state_attributes:
            targets[f"attributes.{key}"] = (getattr(self, key), state["attributes"][key])
        configuration = self._configuration_tensors()
        if "configuration" in state:
            _check_keys("state['configuration']", state["configuration"], set(configuration))
            loaded = state["configuration"]
        else:
            loaded = {key: self._built_value(key) for key in configuration}
        for key, target in configuration.items():
            targets[f"configuration.{key}"] = (target, loaded[key])
        for key, (target, value) in targets.items():
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"state {key} must be a tensor, got {type(value).__name__}")
            if value.shape != target.shape or value.dtype != target.dtype:
                raise ValueError(
                    f"state {key} has shape {tuple(value.shape)} and dtype {value.dtype}; "
                    f"this core expects {tuple(target.shape)} and {target.dtype}"
                )
        if not isinstance(state["rng"]["seeded"], bool):
            raise ValueError(f"state rng.seeded must be a bool, got {state['rng']['seeded']!r}")
        if configuration:
            self._check_configuration({k: v.to(self.device) for k, v in loaded.items()})
        for target, value in targets.values():
            target.copy_(value)
        self.rng.seeded = state["rng"]["seeded"]

    def configure(self, values: Mapping[str, Any], index: torch.Tensor | Any | None = None) -> None:
        """Set constructor arguments of ``configurable`` for the next episodes of the
        environments of ``index``: None (all), a bool mask (num_envs,) or the indices of
        environments (a 1-D int tensor). Each value is a Python number (those environments
        alike) or a tensor (num_envs,) (environment ``i`` gets element ``i``).

        A value takes effect at each environment's next reset; episodes in progress keep
        theirs. Unknown names, values of the wrong type or shape and values outside what
        the core was built for are a ValueError, raised before anything changes. The checks
        read the values on the host (once per call): call it between rollouts, not per step.
        """
        proposed = self._proposed_configuration(values, index)
        current = self._configuration_tensors()
        for name, value in proposed.items():
            current[name].copy_(value)

    def check_configuration(
        self, values: Mapping[str, Any], index: torch.Tensor | Any | None = None
    ) -> None:
        """The checks of :meth:`configure` (a ValueError where it would raise one), changing
        nothing."""
        self._proposed_configuration(values, index)

    def configuration(self) -> dict[str, torch.Tensor]:
        """The values of ``configurable`` each environment's next episode is drawn with:
        ``{name: tensor (num_envs,)}`` (copies, on the core's device). Unconfigured, every
        environment has the value the core was built with."""
        return {name: t.clone() for name, t in self._configuration_tensors().items()}

    def render(self, index: int = 0) -> np.ndarray | None:
        """An RGB frame (H, W, 3) uint8 of environment ``index``."""
        raise NotImplementedError

    def close(self) -> None:
        """Cores hold only tensors; nothing to release."""

    # --- the base's own steps ----------------------------------------------------------------
    def _configured(self, name: str) -> torch.Tensor:
        """The live tensor (num_envs,) of ``configurable`` argument ``name``: the value each
        environment's next episode is drawn with (subclasses read it at resets)."""
        return self._configuration_tensors()[name]

    def _configuration_tensors(self) -> dict[str, torch.Tensor]:
        """The per-environment values of ``configurable``, made on first use (after the
        constructor has set the attributes of the same names) from the values the core was
        built with."""
        tensors = self.__dict__.get("_configuration")
        if tensors is None:
            tensors = {name: self._built_value(name) for name in self.configurable}
            self._configuration = tensors
        return tensors

    def _built_value(self, name: str) -> torch.Tensor:
        """A tensor (num_envs,) of the value of ``configurable`` argument ``name`` the core
        was built with (its attribute of that name: an int, float or bool)."""
        value = getattr(self, name)
        if isinstance(value, bool):
            dtype = torch.bool
        elif isinstance(value, (int, np.integer)):
            dtype = torch.int64
        elif isinstance(value, (float, np.floating)):
            dtype = torch.float32
        else:
            raise TypeError(
                f"{type(self).__name__}.{name} must be a number to be configurable, got {value!r}"
            )
        return torch.full((self.num_envs,), value, dtype=dtype, device=self.device)

    def _proposed_configuration(
        self, values: Mapping[str, Any], index: torch.Tensor | Any | None
    ) -> dict[str, torch.Tensor]:
        """The per-environment values ``configure(values, index)`` would leave (every name of
        ``configurable``), checked; nothing changes."""
        name = type(self).__name__
        if not isinstance(values, Mapping):
            raise ValueError(f"configure takes a mapping {{argument: value}}, got {values!r}")
        unknown = sorted(str(k) for k in values if k not in self.configurable)
        if unknown:
            if self.configurable:
                what = f"the configurable ones are {list(self.configurable)}"
            else:
                what = f"{name} has no configurable arguments"
            raise ValueError(f"{name} cannot configure {unknown} while running; {what}")
        mask = self._configuration_mask(index)
        current = self._configuration_tensors()
        proposed = dict(current)
        for key, value in values.items():
            proposed[key] = torch.where(mask, self._configuration_value(key, value), current[key])
        self._check_configuration(proposed)
        return {key: proposed[key] for key in values}

    def _configuration_mask(self, index: torch.Tensor | Any | None) -> torch.Tensor:
        """``configure``'s ``index`` as a bool mask (num_envs,) on the device."""
        n = self.num_envs
        expected = f"None, a bool mask ({n},) or a 1-D tensor of environment indices in [0, {n})"
        if index is None:
            return torch.ones(n, dtype=torch.bool, device=self.device)
        try:
            t = torch.as_tensor(index, device=self.device)
        except (TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"index must be {expected}, got {index!r}") from e
        if t.dtype == torch.bool:
            if t.shape != (n,):
                raise ValueError(
                    f"index must be {expected}; got a bool mask of shape {tuple(t.shape)}"
                )
            return t
        if t.dtype.is_floating_point or t.dtype.is_complex or t.ndim > 1:
            raise ValueError(f"index must be {expected}, got {index!r}")
        t = t.reshape(-1).long()
        if t.numel() and not bool(((t >= 0) & (t < n)).all()):
            bad = t[(t < 0) | (t >= n)].tolist()
            raise ValueError(f"index must be {expected}; got environment(s) {bad}")
        return torch.zeros(n, dtype=torch.bool, device=self.device).index_fill_(0, t, True)

    def _configuration_value(self, key: str, value: Any) -> torch.Tensor:
        """``value`` for configurable argument ``key`` as a tensor (num_envs,) of its dtype, on
        the device; ValueError for a value of the wrong type or shape."""
        n, target = self.num_envs, self._configuration_tensors()[key].dtype
        kind = {torch.bool: "a bool", torch.int64: "an int"}.get(target, "a real number")
        expected = f"{kind} or a tensor ({n},) of them"
        if isinstance(value, torch.Tensor):
            if value.shape != (n,):
                raise ValueError(
                    f"{key} must be {expected}; got a tensor of shape {tuple(value.shape)}"
                )
            ok = {
                torch.bool: value.dtype == torch.bool,
                torch.int64: not value.dtype.is_floating_point
                and not value.dtype.is_complex
                and value.dtype != torch.bool,
            }.get(target, value.dtype != torch.bool and not value.dtype.is_complex)
            if not ok:
                raise ValueError(f"{key} must be {expected}; got a tensor of dtype {value.dtype}")
            return value.to(device=self.device, dtype=target)
        if target == torch.bool:
            ok = isinstance(value, (bool, np.bool_))
        elif target == torch.int64:
            ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, (int, float, np.integer, np.floating))
            ok = ok and not isinstance(value, bool) and bool(np.isfinite(value))
        if not ok:
            raise ValueError(f"{key} must be {expected}, got {value!r}")
        return torch.full((n,), value, dtype=target, device=self.device)

    def _check_options(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        if options is None:
            return {}
        if not isinstance(options, Mapping):
            raise ValueError(f"options must be a mapping or None, got {options!r}")
        if self.reset_options is not None:
            unknown = sorted(set(options) - set(self.reset_options))
            if unknown:
                supported = sorted(self.reset_options) or "none"
                raise ValueError(
                    f"unknown reset option(s) {unknown} for {type(self).__name__}; "
                    f"supported: {supported}"
                )
        return dict(options)

    def _check_not_finished(self) -> None:
        """autoreset=False: stepping an environment whose episode ended is an error (this
        reads the finished flags on the host, once per step)."""
        if bool(self._finished.any()):
            index = self._finished.nonzero().squeeze(1).tolist()
            raise RuntimeError(
                f"environment(s) {index} finished their episode and autoreset=False: call "
                "reset() before stepping again"
            )

    def _autoreset_index(self, obs: Obs, done: torch.Tensor, info: Info) -> Obs:
        """Reset the finished environments by index: nothing to do in most steps (CPU)."""
        done_index = done.nonzero().squeeze(1)
        if done_index.numel() == 0:
            return obs
        info["final_obs"] = obs
        info["_final_obs"] = done
        self.rng.next_episode(done_index)
        self._reset_envs(done_index)
        self._episode_return[done_index] = 0.0
        self._episode_length[done_index] = 0
        return _replace_rows(obs, done_index, self._observe(done_index))

    def _autoreset_masked(self, obs: Obs, done: torch.Tensor, info: Info) -> Obs:
        """Reset the finished environments under the mask ``done``, reading nothing on the
        host: every step does the work of a reset, for rows that keep their old values where
        ``done`` is false."""
        info["final_obs"] = obs
        info["_final_obs"] = done
        self.rng.episodes += done  # next_episode of the finished environments only
        self._reset_where(done)
        self._episode_return.masked_fill_(done, 0.0)
        self._episode_length.masked_fill_(done, 0)
        return _where_rows(done, self._observe(), obs)


def _replace_rows(obs: Obs, index: torch.Tensor, rows: Obs) -> Obs:
    """A copy of ``obs`` with the rows of ``index`` taken from ``rows``."""
    if isinstance(obs, torch.Tensor):
        return obs.index_copy(0, index, rows)
    return {k: v.index_copy(0, index, rows[k]) for k, v in obs.items()}


def _where_rows(mask: torch.Tensor, new: Obs, old: Obs) -> Obs:
    """Rows of ``new`` where ``mask`` (N,) is true, of ``old`` elsewhere."""
    if isinstance(new, torch.Tensor):
        return torch.where(mask.view(-1, *[1] * (new.ndim - 1)), new, old)
    return {k: _where_rows(mask, v, old[k]) for k, v in new.items()}


def _cpu_copy(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", copy=True)


def _check_keys(name: str, value: Any, expected: set[str]) -> None:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
    missing, unexpected = sorted(expected - set(value)), sorted(set(value) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{name} has missing key(s) {missing} and unexpected key(s) {unexpected}; "
            f"expected {sorted(expected)}"
        )


# ---------------------------------------------------------------------------------------


def to_numpy(x: Any) -> Any:
    """Tensors (also inside dicts) to numpy arrays."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, Mapping):
        return {k: to_numpy(v) for k, v in x.items()}
    return x


def load_core_class(core: str | type[BatchedEnv]) -> type[BatchedEnv]:
    """A core class, given as a class or as ``"module:ClassName"``."""
    if isinstance(core, str):
        module, _, name = core.partition(":")
        try:
            import_named_module(module, f"the environment core {core!r}")
        except ImportError as e:
            raise ValueError(f"core {core!r}: cannot import module {module!r} ({e})") from None
        cls = getattr(sys.modules[module], name, None)
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
