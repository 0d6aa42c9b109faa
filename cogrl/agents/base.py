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
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from cogrl.checkpoint import atomic_save, read_checkpoint
from cogrl.core import BatchedEnv, resolve_device
from cogrl.envs import core_spec, make_core
from cogrl.logging import RunLogger, heatmaps
from cogrl.nn import PolicyConfig
from cogrl.rng import check_seed

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
    """

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
    """Base of cogrl's agents. Subclasses set ``Config`` and implement the abstract methods."""

    name: ClassVar[str]
    Config: ClassVar[type[Hyperparameters]]
    #: Steps ``cogrl train`` runs when ``--steps`` is not given.
    default_timesteps: ClassVar[int] = 200_000

    def __init__(
        self,
        env: str | gym.Env | BatchedEnv,
        device: str | torch.device = "auto",
        seed: int | None = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        **hyperparameters: Any,
    ) -> None:
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
        # A training run's schedule and counters (see cogrl.agents.common.Progress), the
        # checkpoint writer a runner installs, and a stop asked for by a signal.
        self._progress: dict[str, Any] | None = None
        self._checkpoint: Any = None
        self._stop_requested = False
        if seed is not None:
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)

    # --- to implement ------------------------------------------------------------------------
    @abstractmethod
    def learn(
        self,
        total_timesteps: int,
        callback: Callback | None = None,
        progress_bar: bool = False,
        logger: RunLogger | None = None,
        video_interval: int | None = None,
        reset_num_timesteps: bool = True,
    ) -> Agent:
        """Train for ``total_timesteps`` environment steps (summed over environments).

        Logs scalars to ``logger`` and, every ``video_interval`` steps, a rollout video
        (see :func:`rollout_frames`). ``reset_num_timesteps=False`` goes on counting from
        ``num_timesteps`` (as in Stable-Baselines3).
        """

    @abstractmethod
    def predict(
        self,
        obs: Any,
        state: Any = None,
        episode_start: np.ndarray | torch.Tensor | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray | torch.Tensor, Any]:
        """Actions for a batch of observations, and the next recurrent state.

        Numpy in, numpy out (as SB3); tensors in, tensors out (on the agent's device).
        ``episode_start`` marks environments whose recurrent state must restart.
        """

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """The networks whose weights a checkpoint holds, by name."""

    # --- shared ------------------------------------------------------------------------------
    def make_core(self, num_envs: int, autoreset: bool = True, **overrides: Any) -> BatchedEnv:
        """A batched core of this agent's environment on its device."""
        kwargs = {**self.env_kwargs, **overrides}
        core = make_core(self.env_id, num_envs, self.device, autoreset, **kwargs)
        core.spec_id = self.env_id
        core.spec_kwargs = kwargs
        return core

    def describe(self) -> dict[str, Any]:
        """The agent's configuration as plain JSON values."""
        return {
            "agent": self.name,
            "env": self.env_id,
            "env_kwargs": self.env_kwargs,
            "seed": self.seed,
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

    def training_state(self, include_replay: bool = True) -> dict[str, Any]:
        """What a training run needs beyond the weights to continue exactly (override)."""
        raise NotImplementedError(f"{type(self).__name__} does not save its training state")

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not load a training state")

    def _load_state(self, state: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        modules = self.modules()
        if set(state) != set(modules):
            raise ValueError(
                f"checkpoint holds modules {sorted(state)}, expected {sorted(modules)}"
            )
        for name, module in modules.items():
            module.load_state_dict(state[name])


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
) -> Agent:
    """Load a checkpoint written by :meth:`Agent.save` (``weights_only=True``: runs no code)."""
    agent, _ = load_checkpoint(path, env, device)
    return agent


def load_checkpoint(
    path: str | os.PathLike,
    env: str | gym.Env | BatchedEnv | None = None,
    device: str | torch.device = "auto",
) -> tuple[Agent, dict[str, Any] | None]:
    """The agent of a checkpoint and its training state (None in a plain model file)."""
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
    from cogrl.nn.state import leaves

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
            label = name if w.shape[1] == 1 else f"{name} {head}"
            panels.append((label, w[:, head, :].T))
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
    episodes: int = 100,
    num_envs: int = 64,
    seed: int | None = 0,
    deterministic: bool = True,
    **env_overrides: Any,
) -> dict[str, float]:
    """Run ``episodes`` whole episodes on a batched core of the agent's environment.

    Returns ``episodes``, ``mean_return``, ``std_return``, ``mean_length`` and the
    environment's episode metrics (``metadata["episode_metrics"]``, e.g. ``accuracy`` for
    recognition). Environment overrides select, for example, ``split="test"``.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive int, got {episodes!r}")
    n = min(num_envs, episodes)
    core = agent.make_core(n, **env_overrides)
    metrics = dict(core.metadata.get("episode_metrics", {}))
    obs, _ = core.reset(seed=seed)
    state = None
    start = torch.ones(n, dtype=torch.bool, device=core.device)
    # Each environment contributes its first episodes only, so that the count is exact and
    # the result does not favour short episodes.
    quota = torch.full((n,), episodes // n, device=core.device)
    quota[: episodes % n] += 1
    returns: list[torch.Tensor] = []
    lengths: list[torch.Tensor] = []
    values: dict[str, list[torch.Tensor]] = {name: [] for name in metrics}
    while int(quota.sum()) > 0:
        action, state = agent.predict(obs, state, start, deterministic)
        obs, _, terminated, truncated, info = core.step(action)
        start = terminated | truncated
        counted = start & (quota > 0)
        if bool(counted.any()):
            returns.append(info["episode"]["r"][counted])
            lengths.append(info["episode"]["l"][counted].float())
            for name, key in metrics.items():
                if key in info:
                    values[name].append(info[key][counted].float())
            quota -= counted.long()
    r = torch.cat(returns)
    result = {
        "episodes": int(r.numel()),
        "mean_return": float(r.mean()),
        "std_return": float(r.std(unbiased=False)),
        "mean_length": float(torch.cat(lengths).mean()),
    }
    for name, parts in values.items():
        if parts:
            result[name] = float(torch.cat(parts).mean())
    return result
