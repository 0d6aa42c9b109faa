"""The one interface every cogrl agent offers, close to Stable-Baselines3's.

```python
agent = cogrl.agents.make("ram", "cogrl/GlimpseDigits-v0", device="auto", seed=0)
agent.learn(total_timesteps=200_000, callback=None, progress_bar=True)
action, state = agent.predict(obs, state=None, episode_start=None, deterministic=True)
agent.save("runs/x/model")                   # writes runs/x/model.pt
agent = cogrl.agents.load("runs/x/model")    # torch.load(weights_only=True): runs no code
```

An agent trains on the batched core of its environment (:func:`cogrl.envs.make_core`),
on its own device, and keeps its data there. Checkpoints hold the state dict and the
agent's configuration as JSON text, nothing else.
"""

from __future__ import annotations

import difflib
import json
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from cogrl.agents.compiling import (
    Compiled,
    compile_unavailable,
    fused_update,
    fused_update_unavailable,
)
from cogrl.agents.training import EpisodeStats, NumericsGuard, Progress, RunContext, adam
from cogrl.checkpoint import atomic_save, read_checkpoint
from cogrl.core import BatchedEnv, check_memory, resolve_device
from cogrl.curriculum import Curriculum
from cogrl.envs import core_spec, make_core
from cogrl.imports import names_from
from cogrl.logging import RunLogger
from cogrl.nn import PolicyConfig, State
from cogrl.nn.state import leaves, state_from_leaves
from cogrl.rng import check_seed
from cogrl.spaces import batch_size, check_finite, is_batched, to_tensor, unsqueeze

AGENTS: dict[str, type[Agent]] = {}
CHECKPOINT_SUFFIX = ".pt"

#: ``callback(agent, info)`` is called after every update with the update's statistics
#: (a dict of floats, including ``"timesteps"``); returning ``False`` stops training.
Callback = Callable[["Agent", dict[str, float]], "bool | None"]


def register_agent(name: str) -> Callable[[type[Agent]], type[Agent]]:
    """Class decorator: make an agent available to :func:`make` and ``cogrl train``.

    Names are lower case, as agents are looked up case-insensitively (``"PPO"`` is ppo)."""
    if not isinstance(name, str) or not name or name != name.lower():
        raise ValueError(f"an agent's name must be a non-empty lower-case string, got {name!r}")

    def decorate(cls: type[Agent]) -> type[Agent]:
        cls.name = name
        AGENTS[name] = cls
        return cls

    return decorate


def available_agents() -> list[str]:
    return sorted(AGENTS)


def agent_name(name: str) -> str:
    """The registered name of agent ``name`` (any case: ``"PPO"`` gives ``"ppo"``); a
    ValueError listing the agents, with the nearest names, for one that is not registered."""
    if isinstance(name, str) and name.lower() in AGENTS:
        return name.lower()
    known = available_agents()
    raise ValueError(f"unknown agent {name!r}{did_you_mean(name, known)}; available: {known}")


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` naming the entry of ``known`` nearest to ``name`` (compared
    without case), or ``""`` when none is near."""
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(str(name).lower(), by_lower, n=1, cutoff=0.6)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


@dataclass
class Hyperparameters:
    """Base of an agent's hyperparameters: a dataclass, so that configs are typed and JSON.

    A learner with a policy has a ``policy`` field (:class:`~cogrl.nn.PolicyConfig`, with the
    learner's own defaults); ``policy={...}`` given to :meth:`from_dict` sets some of its
    fields over those defaults.

    Every learner takes ``curriculum``: a schedule of the training environments' arguments
    in :func:`cogrl.curriculum.parse_curriculum`'s text form (``"max_length=2,4,8,16,20;
    metric=bit_errors<=0.1; window=500; mix=true"``), or None. Evaluation runs on the
    environment's own arguments.
    """

    curriculum: str | None = None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Hyperparameters:
        """Hyperparameters from ``values``; an unknown name is an error that lists the known."""
        values = dict(values)
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        policy_fields = {f.name for f in fields(PolicyConfig)}
        if "policy" in known and set(unknown) & policy_fields:
            names = sorted(set(unknown) & policy_fields)
            raise ValueError(
                f"{names} belong to the policy: pass policy={{{names[0]!r}: ...}} "
                f"(command line: --set policy.{names[0]}=...)"
            )
        if unknown:
            raise ValueError(
                f"unknown hyperparameter(s) {unknown} for {cls.__qualname__}; "
                f"expected some of {sorted(known)}"
            )
        if "policy" in values and "policy" in known:
            policy = values["policy"]
            if isinstance(policy, Mapping):
                values["policy"] = known["policy"].default_factory().replace(policy)
            elif not isinstance(policy, PolicyConfig):
                raise ValueError(
                    f"policy must be a dict of policy settings or a PolicyConfig, got {policy!r}"
                )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def env_identity(env: str | gym.Env | BatchedEnv) -> tuple[str, dict[str, Any]]:
    """The registered id and constructor arguments of ``env``.

    ``env`` is a registered id (a cogrl id or any Gymnasium id), an env made with
    ``gym.make``/``gym.make_vec`` (its ``spec`` gives the id and arguments), or a core from
    :func:`cogrl.envs.make_core`. Agents rebuild the environment as a batched core of their
    own size and device from this.
    """
    from cogrl.envs import env_kind

    if isinstance(env, str):
        if env_kind(env) == "core":  # ValueError for ids that are not registered
            core_spec(env)  # a clear error if the core class cannot be loaded
        return env, {}
    if isinstance(env, gym.Env) or isinstance(env, gym.vector.VectorEnv):
        spec = getattr(env, "spec", None)
        unwrapped = env.unwrapped
        if spec is None:
            raise ValueError(
                f"env {env!r} has no spec: it was not made from a registered id. Register its "
                "class with gymnasium.register(id='MyEnv-v0', entry_point=MyEnv) and pass "
                "'MyEnv-v0' (or gym.make('MyEnv-v0')) to the agent"
            )
        if hasattr(unwrapped, "core") and hasattr(unwrapped, "core_kwargs"):
            return spec.id, dict(unwrapped.core_kwargs)  # cogrl's CoreEnv / CoreVectorEnv
        kind = env_kind(spec.id)  # ValueError if the id is no longer registered
        # gym.make_vec's own arguments, the core class and the render mode are not arguments
        # of the environment that an agent rebuilds.
        dropped = ("num_envs", "vectorization_mode", "vector_kwargs", "wrappers", "core")
        kwargs = {
            k: v for k, v in (spec.kwargs or {}).items() if k not in (*dropped, "render_mode")
        }
        if kind == "gymnasium" and spec.max_episode_steps != gym.spec(spec.id).max_episode_steps:
            kwargs["max_episode_steps"] = spec.max_episode_steps  # gym.make(max_episode_steps=)
        return spec.id, kwargs
    if isinstance(env, BatchedEnv):
        spec_id = getattr(env, "spec_id", None)
        if spec_id is None:
            raise ValueError("a core passed to an agent must come from cogrl.envs.make_core")
        return spec_id, dict(env.spec_kwargs)
    raise ValueError(
        f"env must be an id, a gymnasium env or a cogrl core, got {type(env).__name__}"
    )


class Agent(ABC):
    """Base of cogrl's agents: one policy (a network with a possibly empty recurrent
    state), an optimiser, a random stream, episode statistics and a numerics guard.

    Construction runs a fixed sequence of hooks; a learner overrides those where it
    differs (SB3's ``_setup_model``, split into its steps):

    1. configuration (``Config.from_dict`` of the hyperparameters) and the seeds;
    2. :meth:`_probe_spaces`: a core of one environment gives the observation and
       action spaces and the environment's metadata (and checks ``num_envs`` fits);
    3. :meth:`_build_policy`: the networks (abstract), moved to the agent's device;
    4. :meth:`_make_optimizer`: Adam over the policy's parameters at
       ``config.learning_rate`` by default;
    5. :meth:`_make_generator`: the learner's random stream, seeded;
    6. :meth:`_episode_stats`: statistics of finished episodes, with the environment's
       episode metrics;
    7. :meth:`_setup`: the learner's own state (a replay, a target network, a running
       mean), nothing by default.

    Training is :meth:`learn` (shared), which runs the learner's :meth:`_learn` (abstract:
    its loop and update, read top to bottom with its equation) under a
    :class:`~cogrl.agents.training.Progress`. Acting is :meth:`predict` (shared) over the
    learner's :meth:`_act` (abstract). A checkpoint holds :meth:`modules`' weights and
    :meth:`training_state`, with the learner's own part from :meth:`_loop_state`.
    """

    name: ClassVar[str]
    Config: ClassVar[type[Hyperparameters]]
    #: Steps ``cogrl train`` runs when ``--steps`` is not given.
    default_timesteps: ClassVar[int] = 200_000

    policy: nn.Module
    observation_space: spaces.Space
    action_space: spaces.Space
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    episodes: EpisodeStats

    def __init__(
        self,
        env: str | gym.Env | BatchedEnv,
        device: str | torch.device = "auto",
        seed: int | None = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        compile: bool = False,
        **hyperparameters: Any,
    ) -> None:
        # 1. Configuration and seeds.
        env_id, kwargs = env_identity(env)
        self.env_id = env_id
        # Configs are written as JSON with every checkpoint: numpy numbers and paths become
        # plain numbers and strings here, and anything JSON cannot hold is an error now,
        # not at the first save.
        self.env_kwargs: dict[str, Any] = plain_json(
            {**kwargs, **dict(env_kwargs or {})}, "env_kwargs"
        )
        self.device = resolve_device(device)
        self.seed = None if seed is None else check_seed(seed)
        self.config = self.Config.from_dict(plain_json(hyperparameters, "hyperparameters"))
        self.num_timesteps = 0
        #: The schedule and counters of the training in progress (see
        #: :class:`~cogrl.agents.training.Progress`); None before the first ``learn``.
        self.progress: dict[str, Any] | None = None
        self.guard = NumericsGuard(self.device)
        self._env: BatchedEnv | None = None  # the training environments, made by `learn`
        self.use_compile(compile)
        if seed is not None:
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
        # 2-7. The hooks, in this order (the policy's initial weights come from the seed).
        self._probe_spaces()
        self.policy = self._build_policy().to(self.device)
        self.optimizer = self._make_optimizer()
        self.generator = self._make_generator()
        self.episodes = self._episode_stats()
        self._setup()
        #: The curriculum of the training environments (made with them), or None.
        self.curriculum: Curriculum | None = None
        if self.config.curriculum is not None:
            self._check_curriculum(self.config.curriculum)

    # --- compiling -------------------------------------------------------------------------------
    def use_compile(self, enabled: bool, everywhere: bool = False) -> None:
        """Run the learner's per-step and per-minibatch functions under ``torch.compile``
        (``enabled=True``) or eagerly (see :mod:`cogrl.agents.compiling`). Where compiling
        cannot work on this device, a warning says why and the agent stays eager. On the
        CPU, functions that run slower compiled (measured: RAM's and DRAM's step, A2C's
        loss) stay eager unless ``everywhere=True``."""
        if not isinstance(enabled, bool):
            raise ValueError(f"compile must be True or False, got {enabled!r}")
        self._compile_everywhere = bool(everywhere)
        reason = compile_unavailable(self.device) if enabled else None
        if reason is not None:
            warnings.warn(
                f"compile=True: {reason}; training runs eagerly (as compile=False)",
                RuntimeWarning,
                stacklevel=3,
            )
        #: Whether the learner's hot functions run compiled.
        self.compile = enabled and reason is None
        self._compiled: dict[str, Compiled] = {}
        self._fused: dict[str, Callable[..., Any]] = {}

    def compiled(
        self,
        fn: Callable[..., Any],
        what: str,
        cuda_graphs: bool = True,
        pays_on_cpu: bool = True,
    ) -> Callable[..., Any]:
        """``fn`` (a bound method or function, named by ``what`` in messages) compiled
        where the agent compiles, else ``fn`` itself; made once per ``what``.
        ``cuda_graphs=False`` for a function called several times before one backward
        (see :class:`~cogrl.agents.compiling.Compiled`); ``pays_on_cpu=False`` for one
        that measured slower compiled on the CPU (BENCHMARKS.md, "Issue 21"): eager there."""
        if not self.compile:
            return fn
        if self.device.type == "cpu" and not pays_on_cpu and not self._compile_everywhere:
            return fn
        found = self._compiled.get(what)
        if found is None:
            found = Compiled(fn, what, self.device, cuda_graphs=cuda_graphs)
            self._compiled[what] = found
        return found

    def fused_update(
        self, loss_fn: Callable[..., Any], what: str, max_grad_norm: float | None
    ) -> Callable[..., Any] | None:
        """Where the agent compiles on the CPU and its optimiser is Adam or AdamW: whole
        optimiser steps on ``loss_fn(*args) -> (loss, aux)`` as one compiled function
        (:func:`~cogrl.agents.compiling.fused_update`), ``update(args_1, ...) -> [(loss,
        aux, grad_norm), ...]``; else None (the learner steps with
        :func:`~cogrl.agents.training.gradient_step`). Made once per ``what``; once its
        compiling has failed (``self._compiled[what].active`` false), None again."""
        if not self.compile or self.device.type != "cpu":
            return None
        if fused_update_unavailable(self.optimizer) is not None:
            return None
        found = self._fused.get(what)
        if found is None:
            found = fused_update(
                self.policy,
                self.optimizer,
                loss_fn,
                max_grad_norm,
                wrap=lambda step: self._compiled.setdefault(
                    what, Compiled(step, what, self.device, cuda_graphs=False)
                ),
            )
            self._fused[what] = found
        return found if self._compiled[what].active else None

    # --- construction hooks -----------------------------------------------------------------------
    def _probe_spaces(self) -> None:
        """Set ``observation_space``, ``action_space`` and ``env_metadata`` from a core of
        one environment; a ``num_envs`` whose environments cannot fit in memory is an error
        now, not after minutes of set-up or in an out-of-memory kill."""
        probe = self.make_core(1)
        self.observation_space = probe.single_observation_space
        self.action_space = probe.single_action_space
        self.env_metadata = dict(probe.metadata)
        estimate = getattr(probe, "memory_estimate", None)
        num_envs = getattr(self.config, "num_envs", None)
        probe.close()
        if estimate is not None and num_envs is not None:
            check_memory(self.device, estimate(num_envs), {"num_envs": num_envs})

    @abstractmethod
    def _build_policy(self) -> nn.Module:
        """The network the agent acts with (and, for most learners, learns)."""

    def _make_optimizer(self) -> torch.optim.Optimizer:
        return adam(self.policy.parameters(), lr=self.config.learning_rate)

    def _make_generator(self) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        if self.seed is None:
            generator.seed()
        else:
            generator.manual_seed(self.seed)
        return generator

    def _episode_stats(self) -> EpisodeStats:
        """Episode statistics with the environment's declared episode metrics."""
        metrics = self.env_metadata.get("episode_metrics", {})
        return EpisodeStats(metrics, device=self.device)

    def _setup(self) -> None:  # noqa: B027 (a hook: most learners need nothing here)
        """The learner's own state beyond the policy and the optimiser (override)."""

    # --- the learner ------------------------------------------------------------------------------
    @abstractmethod
    def _learn(self, progress: Progress) -> None:
        """The learner's loop: collect, update, ``progress.update(steps, stats)`` after each
        update, until it returns False."""

    @abstractmethod
    def _act(
        self, obs: Any, state: State, episode_start: torch.Tensor | None, deterministic: bool
    ) -> tuple[torch.Tensor, State]:
        """Actions (as the learner keeps them) for a batch of tensor observations, and the
        next state."""

    def modules(self) -> dict[str, nn.Module]:
        """The networks whose weights a checkpoint holds, by name."""
        return {"policy": self.policy}

    def _loop_state(self, include_replay: bool) -> dict[str, Any]:
        """The learner's own state between two updates, for checkpoints (override)."""
        return {}

    def _load_loop_state(  # noqa: B027 (a hook: learners with no loop state keep it)
        self, loop: Mapping[str, Any], env: Mapping[str, Any] | None
    ) -> None:
        """Restore :meth:`_loop_state` and the environments (override)."""

    # --- training ---------------------------------------------------------------------------------
    def learn(
        self,
        total_timesteps: int,
        callback: Callback | None = None,
        progress_bar: bool = False,
        logger: RunLogger | None = None,
        video_interval: int | None = None,
        reset_num_timesteps: bool = True,
        run: RunContext | None = None,
    ) -> Agent:
        """Train for ``total_timesteps`` environment steps (summed over environments).

        As in Stable-Baselines3, ``reset_num_timesteps=False`` goes on counting from
        ``num_timesteps``; it continues a training restored from a checkpoint exactly
        (its schedules included) when ``total_timesteps`` is what that training had left.
        Scalars go to ``logger``, a rollout video every ``video_interval`` steps (see
        :func:`~cogrl.agents.evaluation.rollout_frames`). ``callback(agent, info)`` is
        called after every update; returning False stops. ``run`` (a
        :class:`~cogrl.agents.training.RunContext`) is how a runner writes checkpoints
        and asks the training to stop.
        """
        progress = Progress(
            self,
            total_timesteps,
            callback,
            progress_bar,
            logger,
            video_interval,
            reset_num_timesteps,
            run,
        )
        self._learn(progress)
        progress.close()
        return self

    def make_core(self, num_envs: int, autoreset: bool = True, **overrides: Any) -> BatchedEnv:
        """A batched core of this agent's environment on its device. With ``overrides``
        (an evaluation on longer sequences, another data folder), a ValueError if the
        environment they make has observations or actions of another shape or size than
        the policy was built for (e.g. bAbI files with a larger vocabulary)."""
        kwargs = {**self.env_kwargs, **overrides}
        core = make_core(self.env_id, num_envs, self.device, autoreset, **kwargs)
        core.spec_id = self.env_id
        core.spec_kwargs = kwargs
        if not overrides:  # the agent's own environment (also the probe of its spaces)
            return core
        for what, built, made in (
            ("observation", self.observation_space, core.single_observation_space),
            ("action", self.action_space, core.single_action_space),
        ):
            if not same_layout(built, made):
                core.close()
                raise ValueError(
                    f"{self.env_id} with {overrides} has {what} space {made}, but this agent "
                    f"was built for {built}: its policy cannot take it (a data folder with "
                    "another vocabulary or image size?)"
                )
        return core

    def make_training_core(self, num_envs: int) -> BatchedEnv:
        """The core this agent trains on: its actions come from the policy's heads, valid
        by construction, so the core checks their shape but does not read their values
        (which, on a GPU, would wait for every queued kernel at each step)."""
        core = self.make_core(num_envs)
        core.check_action_values = False
        if self.config.curriculum is not None:
            # Before the first reset: the first episodes are drawn at the first level.
            seed = 0 if self.seed is None else self.seed
            self.curriculum = Curriculum.from_text(core, self.config.curriculum, seed=seed)
        return core

    def _check_curriculum(self, text: Any) -> None:
        """A ValueError now, before any training, for a curriculum that cannot run on this
        environment (a bad text, an argument it cannot change while running)."""
        if not isinstance(text, str):
            raise ValueError(f"curriculum must be a text (or None), got {text!r}")
        probe = self.make_core(1)
        try:
            Curriculum.from_text(probe, text)
        except ValueError as e:
            raise ValueError(f"curriculum for {self.env_id}: {e}") from None
        finally:
            probe.close()

    def _record_episodes(self, info: Mapping[str, Any]) -> None:
        """After every step of the training environments: the finished episodes into the
        episode statistics and, where there is one, the curriculum."""
        self.episodes.update(info)
        if self.curriculum is not None:
            self.curriculum.observe(info)

    def _reset_training_envs(self, seed: int | None = None) -> Any:
        """Reset every training environment (``seed`` as ``reset``'s); their observations."""
        obs, _ = self._env.reset(seed=seed)
        if self.curriculum is not None:
            self.curriculum.on_reset()
        return obs

    def _start_stepping(self, num_envs: int) -> None:
        """The training environments of a learner that steps them continuously (A2C, PPO,
        DQN), made on the first ``learn`` call and kept after, with the observation,
        recurrent state and episode starts the loop steps from."""
        self._env = self.make_training_core(num_envs)
        self._obs = self._reset_training_envs(self.seed)
        self._state = self.initial_state(num_envs)
        self._episode_start = torch.ones(num_envs, dtype=torch.bool, device=self.device)

    def _start_episodes(self, num_envs: int) -> BatchedEnv:
        """The training environments of a learner that restarts them all at each update
        (REINFORCE, RAM, DRAM, the classifier), made on the first ``learn`` call."""
        if self._env is None:
            self._env = self.make_training_core(num_envs)
            self._reset_training_envs(self.seed)
        return self._env

    # --- the state of a training run, for checkpoints ----------------------------------------
    def training_state(self, include_replay: bool = True) -> dict[str, Any]:
        """Everything a training run needs to continue exactly where it stopped: weights,
        optimiser, random states, step counters and schedules, episode statistics, the
        training environments and the learner's loop state (tensors and plain values only,
        so that it loads with ``weights_only=True``)."""
        state: dict[str, Any] = {
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "progress": None if self.progress is None else dict(self.progress),
            "episodes": self.episodes.state_dict(),
            "loop": self._loop_state(include_replay),
            "env": None,
            "curriculum": None if self.curriculum is None else self.curriculum.state_dict(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        env = self._env
        if env is not None and getattr(env, "supports_snapshot", False):
            state["env"] = env.state_dict()
        return state

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`training_state` (after the weights, which :func:`load` sets)."""
        self.optimizer.load_state_dict(state["optimizer"])
        try:
            self.generator.set_state(state["generator"])
        except RuntimeError:
            # Saved on another kind of device (a CUDA generator's state is not a CPU one's):
            # the run goes on with a generator seeded from the step, not bit for bit.
            warnings.warn(
                f"the checkpoint's random state is of another device than {self.device}: the "
                "resumed run draws new random numbers",
                stacklevel=2,
            )
            self.generator.manual_seed((self.seed or 0) + self.num_timesteps)
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.progress = None if state["progress"] is None else dict(state["progress"])
        self.episodes.load_state_dict(state["episodes"])
        self._load_loop_state(state["loop"], state["env"])
        if self.curriculum is not None and state.get("curriculum") is not None:
            self.curriculum.load_state_dict(state["curriculum"])

    def _restore_env(self, num_envs: int, env: Mapping[str, Any] | None) -> Any:
        """Make the training environments and restore their snapshot ``env`` (returns
        None). Where the environment cannot be snapshot (any Gymnasium env stepped one copy
        at a time), it starts fresh episodes instead, and their first observation is
        returned."""
        self._env = self.make_training_core(num_envs)
        if env is not None:
            self._env.load_state_dict(env)
            return None
        warnings.warn(
            f"{self.env_id} cannot be snapshot: the resumed run starts new episodes "
            "(it will not repeat the uninterrupted run step for step)",
            stacklevel=3,
        )
        seed = None if self.seed is None else self.seed + self.num_timesteps
        return self._reset_training_envs(seed)

    def _stepping_state(self) -> dict[str, Any]:
        """What :meth:`_start_stepping` set up, as it stands between two updates."""
        return {
            "obs": self._obs,
            "state": leaves(self._state),
            "episode_start": self._episode_start,
        }

    def _restore_stepping(
        self, num_envs: int, saved: Mapping[str, Any], env: Mapping[str, Any] | None
    ) -> None:
        """Restore :meth:`_stepping_state` and the environments' snapshot ``env``; where the
        environment cannot be snapshot, start fresh episodes instead."""
        fresh_obs = self._restore_env(num_envs, env)
        if fresh_obs is None:
            saved = self.to_device(dict(saved))
            self._obs, self._episode_start = saved["obs"], saved["episode_start"]
            self._state = state_from_leaves(self.initial_state(num_envs), saved["state"])
        else:
            self._obs = fresh_obs
            self._state = self.initial_state(num_envs)
            self._episode_start = torch.ones(num_envs, dtype=torch.bool, device=self.device)

    def to_device(self, tree: Any) -> Any:
        """Tensors of a loaded (nested) structure moved to this agent's device."""
        if isinstance(tree, torch.Tensor):
            return tree.to(self.device)
        if isinstance(tree, Mapping):
            return {k: self.to_device(v) for k, v in tree.items()}
        if isinstance(tree, (list, tuple)):
            return type(tree)(self.to_device(v) for v in tree)
        return tree

    # --- acting -----------------------------------------------------------------------------------
    def env_action(self, action: torch.Tensor) -> torch.Tensor:
        """The action sent to the environment, from the one the learner keeps: the action
        head's ``to_env`` (a Gaussian's ``Box`` samples are clipped to the space's bounds)."""
        head = getattr(self.policy, "action_head", None)
        return action if head is None else head.to_env(action)

    def initial_state(self, n: int) -> State:
        return self.policy.initial_state(n, self.device)

    def predict(
        self,
        obs: Any,
        state: Any = None,
        episode_start: np.ndarray | torch.Tensor | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray | torch.Tensor, Any]:
        """Actions for observations (numpy in, numpy out; tensors in, tensors on device out).

        ``obs`` is a batch ``(n, ...)`` or one unbatched observation (then the action is
        unbatched too). ``state`` is the recurrent state returned by the previous call
        (``None`` starts fresh); it is reset where ``episode_start`` is true.
        """
        deterministic = check_deterministic(deterministic)
        numpy_in = not is_torch(obs)
        batched = is_batched(obs, self.observation_space)
        with torch.inference_mode():
            x = to_tensor(obs, self.observation_space, self.device)
            check_finite(x)
            if not batched:
                x = unsqueeze(x)
            n = batch_size(x)
            start = None
            if episode_start is not None:
                start = check_episode_start(episode_start, n, self.device)
            if state is None:
                state, start = self.initial_state(n), None
            else:
                check_state(state, self.initial_state(n), n)
            action, state = self._act(x, state, start, deterministic)
            action = self.env_action(action)
        if not batched:
            action = action[0]
        if numpy_in:
            action = action.cpu().numpy()
            if isinstance(self.action_space, (spaces.Discrete, spaces.MultiDiscrete)):
                action = action.astype(np.int64)
            return action, state
        return action, state

    # --- saving -----------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The agent's configuration as plain JSON values."""
        return {
            "agent": self.name,
            "env": self.env_id,
            "env_kwargs": self.env_kwargs,
            "seed": self.seed,
            "compile": self.compile,
            "hyperparameters": self.config.to_dict(),
            "num_timesteps": self.num_timesteps,
        }

    def save(
        self, path: str | os.PathLike, training: bool = False, include_replay: bool = True
    ) -> Path:
        """Write ``path`` + ``.pt`` atomically: weights and the JSON configuration, nothing
        executable. ``training=True`` adds the training state (optimiser, random states,
        counters, environments and, with ``include_replay``, the replay), from which
        :func:`cogrl.runner.resume` continues a run exactly."""
        state = {
            name: {k: v.detach().cpu() for k, v in module.state_dict().items()}
            for name, module in self.modules().items()
        }
        data: dict[str, Any] = {"config": json.dumps(self.describe()), "state": state}
        if training:
            data["training"] = self.training_state(include_replay)
        return atomic_save(data, checkpoint_path(path))

    def _load_state(self, state: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        modules = self.modules()
        if set(state) != set(modules):
            raise ValueError(
                f"checkpoint holds modules {sorted(state)}, expected {sorted(modules)}"
            )
        for name, module in modules.items():
            module.load_state_dict(state[name])


def is_torch(x: Any) -> bool:
    """Whether observations ``x`` are tensors (or a dict holding some): ``predict`` answers
    in kind."""
    if isinstance(x, Mapping):
        return any(isinstance(v, torch.Tensor) for v in x.values())
    return isinstance(x, torch.Tensor)


def plain_json(value: Any, name: str) -> Any:
    """``value`` with numpy numbers as Python numbers, numpy arrays and tuples as lists and
    paths as strings; a ValueError naming ``name`` (and the key inside) for what JSON
    cannot hold."""
    if isinstance(value, PolicyConfig):
        return value
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{name}: keys must be strings, got {k!r}")
            out[k] = plain_json(v, f"{name}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [plain_json(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return plain_json(value.tolist(), name)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(
        f"{name} = {value!r} ({type(value).__name__}) cannot be written to a JSON config: "
        "use numbers, strings, booleans, None, lists or dicts"
    )


def same_layout(a: spaces.Space, b: spaces.Space) -> bool:
    """Whether a policy built for space ``a`` takes values of ``b``: the same kinds, shapes,
    dtypes and category counts (a Box's bounds may differ: RepeatCopy's count channel is
    bounded by the repeats it was built for)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, spaces.Dict):
        return a.keys() == b.keys() and all(same_layout(a[k], b[k]) for k in a.keys())
    if isinstance(a, spaces.Tuple):
        return len(a) == len(b) and all(map(same_layout, a, b))
    if isinstance(a, spaces.Discrete):
        return a.n == b.n and a.start == b.start
    if isinstance(a, spaces.MultiDiscrete):
        return np.array_equal(a.nvec, b.nvec) and np.array_equal(a.start, b.start)
    return a.shape == b.shape and a.dtype == b.dtype


def checkpoint_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return (
        path if path.suffix == CHECKPOINT_SUFFIX else path.with_name(path.name + CHECKPOINT_SUFFIX)
    )


def make(name: str, env: str | gym.Env | BatchedEnv, **kwargs: Any) -> Agent:
    """Create agent ``name`` (any case) for ``env`` (an id, a cogrl env, or a core)."""
    return AGENTS[agent_name(name)](env, **kwargs)


def load(
    path: str | os.PathLike,
    env: str | gym.Env | BatchedEnv | None = None,
    device: str | torch.device = "auto",
    trust_code: bool = False,
) -> Agent:
    """Load a checkpoint written by :meth:`Agent.save`.

    Opening the file runs no code: its tensors load with ``weights_only=True``, and a
    module that its configuration names (an environment id ``"mymod:MyEnv-v0"``, a policy
    core ``"mycores:leaky"``) is imported only if this process has imported it already or
    ``trust_code=True`` (otherwise :class:`~cogrl.imports.UntrustedCodeError`, a ValueError
    naming the module). ``env`` replaces the checkpoint's environment (then its
    ``env_kwargs`` are not used).
    """
    agent, _ = load_checkpoint(path, env, device, trust_code)
    return agent


def load_checkpoint(
    path: str | os.PathLike,
    env: str | gym.Env | BatchedEnv | None = None,
    device: str | torch.device = "auto",
    trust_code: bool = False,
) -> tuple[Agent, dict[str, Any] | None]:
    """The agent of a checkpoint and its training state (None in a plain model file);
    ``trust_code`` as in :func:`load`."""
    path = checkpoint_path(path)
    data = read_checkpoint(path)
    try:
        config = json.loads(data["config"])
        for key in ("agent", "env", "seed", "env_kwargs", "hyperparameters", "num_timesteps"):
            config[key]  # noqa: B018 (a KeyError names what is missing)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"checkpoint {path} has no valid configuration ({e!r})") from None
    if config["agent"] not in AGENTS:
        raise ValueError(f"checkpoint {path} is of unknown agent {config['agent']!r}")
    with names_from(path, trust_code):
        agent = AGENTS[config["agent"]](
            env if env is not None else config["env"],
            device=device,
            seed=config["seed"],
            env_kwargs=config["env_kwargs"] if env is None else None,
            **config["hyperparameters"],
        )
    try:
        agent._load_state(data["state"])
    except (RuntimeError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"checkpoint {path}: the weights do not fit the agent ({e})") from None
    agent.num_timesteps = config["num_timesteps"]
    return agent, data.get("training")


# --- predict's arguments ------------------------------------------------------------------


def check_deterministic(deterministic: Any) -> bool:
    """``deterministic`` as a bool; ValueError for anything but ``True``/``False`` (numpy's
    too), so that a string or ``None`` is not silently read as one of them."""
    if not isinstance(deterministic, (bool, np.bool_)):
        raise ValueError(f"deterministic must be True or False, got {deterministic!r}")
    return bool(deterministic)


def check_episode_start(episode_start: Any, n: int, device: torch.device) -> torch.Tensor:
    """``episode_start`` as an (n,) bool tensor on ``device``: booleans or 0/1 integers, one
    per observation, or one flag for all of them; ValueError naming what is wrong."""
    given = episode_start
    if not isinstance(given, torch.Tensor):
        try:
            given = torch.as_tensor(np.asarray(given))
        except (TypeError, ValueError, RuntimeError) as e:
            raise ValueError(
                f"episode_start must be booleans, one per observation, got {episode_start!r}"
            ) from e
    if given.dtype != torch.bool:
        if (
            given.is_floating_point()
            or given.is_complex()
            or not bool(((given == 0) | (given == 1)).all())
        ):
            raise ValueError(
                f"episode_start must be booleans (or 0/1 integers), got {episode_start!r}"
            )
    if given.numel() == 1:
        return given.reshape(1).to(device=device, dtype=torch.bool).expand(n)
    if tuple(given.shape) != (n,):
        raise ValueError(
            f"episode_start of shape {tuple(given.shape)} does not fit {n} observation(s): "
            f"expected shape ({n},) or one flag"
        )
    return given.to(device=device, dtype=torch.bool)


def check_state(state: Any, like: Any, n: int) -> None:
    """ValueError unless ``state`` has the tensors of ``like`` (the policy's initial state
    for ``n`` observations), of the same shapes and dtypes: a state that ``predict``
    returned for a batch of the same size."""

    def shapes(tensors: list[torch.Tensor]) -> list[str]:
        return [f"{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}" for t in tensors]

    expected = leaves(like)
    try:
        got = leaves(state)
    except TypeError as e:
        raise ValueError(
            f"state must be the recurrent state predict returned (or None), got "
            f"{type(state).__name__}: {e}"
        ) from None
    fits = len(got) == len(expected) and all(
        g.shape == w.shape and g.dtype == w.dtype for g, w in zip(got, expected, strict=True)
    )
    if not fits:
        raise ValueError(
            f"state does not fit {n} observation(s): expected tensors {shapes(expected)}, "
            f"got {shapes(got)} (pass the state predict returned for the same batch, or None)"
        )
