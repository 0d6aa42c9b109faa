"""What every cogrl learner shares: turning observations into tensors, ``predict``, the
bookkeeping of a training loop (progress bar, TensorBoard scalars, rollout videos,
callbacks, episode statistics) and checks of hyperparameter values.

A learner built on :class:`PolicyAgent` implements ``learn`` (its update, read top to bottom
in its own file) and ``_act`` (one step of its policy); ``predict`` and the rest come
from here.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import deque
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from cogrl.agents.base import Agent, Callback, rollout_frames
from cogrl.agents.policies import ACTIVATIONS, CORES, State, map_state
from cogrl.logging import RunLogger

# --- checks of hyperparameters --------------------------------------------------------------


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_int(name: str, value: Any, low: int = 1) -> None:
    """``value`` must be an int >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def check_number(
    name: str, value: Any, low: float = 0.0, high: float = math.inf, low_open: bool = False
) -> None:
    """``value`` must be a finite number in [low, high] (or (low, high] if ``low_open``)."""
    ok = is_number(value) and math.isfinite(value) and value <= high
    ok = ok and (value > low if low_open else value >= low)
    if not ok:
        bracket = "(" if low_open else "["
        interval = f"{bracket}{low}, {high}]"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")


def check_choice(name: str, value: Any, choices: Any) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def check_bools(config: Any, *names: str) -> None:
    for name in names:
        if not isinstance(getattr(config, name), bool):
            raise ValueError(f"{name} must be true or false, got {getattr(config, name)!r}")


def check_policy(config: Any) -> None:
    """The policy hyperparameters every learner has: ``core``, ``core_size``,
    ``hidden_sizes`` (made a list, as JSON keeps it) and ``activation``."""
    check_int("core_size", config.core_size)
    check_choice("core", config.core, CORES)
    check_choice("activation", config.activation, ACTIVATIONS)
    if not isinstance(config.hidden_sizes, (list, tuple)):
        raise ValueError(f"hidden_sizes must be a list of ints, got {config.hidden_sizes!r}")
    for size in config.hidden_sizes:
        check_int("hidden_sizes entries", size)
    config.hidden_sizes = list(config.hidden_sizes)


def check_learn_args(total_timesteps: Any, video_interval: Any) -> None:
    if isinstance(total_timesteps, bool) or not isinstance(total_timesteps, (int, np.integer)):
        raise ValueError(f"total_timesteps must be an int, got {total_timesteps!r}")
    if video_interval is not None:
        check_int("video_interval", video_interval)


# --- observations ---------------------------------------------------------------------------


def is_torch(x: Any) -> bool:
    if isinstance(x, Mapping):
        return any(isinstance(v, torch.Tensor) for v in x.values())
    return isinstance(x, torch.Tensor)


def _space_dtype(space: spaces.Space) -> torch.dtype:
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        return torch.int64
    if isinstance(space, spaces.MultiBinary):
        return torch.float32
    if isinstance(space, spaces.Box) and space.dtype == np.uint8:
        return torch.uint8
    return torch.float32


def obs_to_tensor(obs: Any, space: spaces.Space, device: torch.device) -> Any:
    """Observations (numpy or tensors, also dicts) as tensors on ``device`` in the dtype
    the encoders expect: float32, int64 for token ids, uint8 for byte images."""
    if isinstance(space, spaces.Dict):
        return {k: obs_to_tensor(obs[k], s, device) for k, s in space.spaces.items()}
    return torch.as_tensor(np.asarray(obs) if not isinstance(obs, torch.Tensor) else obs).to(
        device=device, dtype=_space_dtype(space)
    )


def is_batched(obs: Any, space: spaces.Space) -> bool:
    """Whether ``obs`` is a batch of observations of ``space`` (one more leading dim)."""
    if isinstance(space, spaces.Dict):
        if not isinstance(obs, Mapping):
            raise ValueError(
                f"observation must be a dict for space {space}, got {type(obs).__name__}"
            )
        missing = sorted(set(space.spaces) - set(obs))
        if missing:
            raise ValueError(f"observation lacks key(s) {missing} of space {space}")
        key = next(iter(space.spaces))
        return is_batched(obs[key], space[key])
    ndim = obs.ndim if isinstance(obs, torch.Tensor) else np.ndim(obs)
    expected = len(space.shape) if space.shape is not None else 0
    if ndim == expected + 1:
        return True
    if ndim == expected:
        return False
    raise ValueError(f"observation of {ndim} dims does not fit space {space}")


def batch_size(x: Any) -> int:
    if isinstance(x, Mapping):
        return next(iter(x.values())).shape[0]
    return x.shape[0]


def unsqueeze_obs(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: v[None] for k, v in x.items()}
    return x[None]


def adam(parameters: Any, lr: float, eps: float = 1e-8) -> torch.optim.Adam:
    """Adam with the fused (one kernel for all parameters) update, which the small
    networks of these tasks make worth having: the per-tensor loop costs more than the
    arithmetic."""
    return torch.optim.Adam(parameters, lr=lr, eps=eps, fused=True)


def clip_grad(parameters: Any, max_norm: float | None) -> torch.Tensor:
    """Clip the gradient's global norm to ``max_norm`` (``None``: no clipping); its norm."""
    parameters = list(parameters)
    if max_norm is None:
        norms = [p.grad.norm() for p in parameters if p.grad is not None]
        return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())
    return nn.utils.clip_grad_norm_(parameters, max_norm)


# --- training-loop bookkeeping --------------------------------------------------------------


class EpisodeStats:
    """Returns, lengths (and accuracy, for tasks whose info reports ``correct``) of the
    last ``window`` finished episodes, read from the core's ``info["episode"]`` (as SB3's
    ``ep_rew_mean``)."""

    def __init__(self, window: int = 100) -> None:
        self.returns: deque[float] = deque(maxlen=window)
        self.lengths: deque[float] = deque(maxlen=window)
        self.correct: deque[float] = deque(maxlen=window)
        self.episodes = 0

    def update(self, info: Mapping[str, Any]) -> None:
        done = info.get("_episode")
        if done is None or not bool(done.any()):
            return
        self.returns.extend(info["episode"]["r"][done].tolist())
        self.lengths.extend(info["episode"]["l"][done].tolist())
        if "correct" in info:
            self.correct.extend(info["correct"][done].float().tolist())
        self.episodes += int(done.sum())

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.returns:
            out["rollout/ep_rew_mean"] = float(np.mean(self.returns))
            out["rollout/ep_len_mean"] = float(np.mean(self.lengths))
        if self.correct:
            out["rollout/accuracy"] = float(np.mean(self.correct))
        return out


#: Environment steps between two points of a learner's TensorBoard scalars.
LOG_INTERVAL = 1_000


class Progress:
    """One training run's bookkeeping: counts steps, logs scalars, shows a progress bar,
    logs a rollout video every ``video_interval`` steps and calls the callback.

    ``update(steps, stats)`` after each update returns ``False`` when training must stop
    (the callback said so).
    """

    def __init__(
        self,
        agent: PolicyAgent,
        total_timesteps: int,
        callback: Callback | None,
        progress_bar: bool,
        logger: RunLogger | None,
        video_interval: int | None,
    ) -> None:
        check_learn_args(total_timesteps, video_interval)
        self.agent = agent
        self.total = int(total_timesteps)
        self.callback = callback
        self.logger = logger if logger is not None else RunLogger(None)
        self.video_interval = video_interval
        self.next_video = agent.num_timesteps + video_interval if video_interval else None
        self.last_video = -1
        self.last_log = -LOG_INTERVAL
        self.done = 0
        self.start = time.perf_counter()
        self.bar = None
        if progress_bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, unit="step")

    @property
    def remaining(self) -> int:
        return self.total - self.done

    def anneal(self, optimizer: torch.optim.Optimizer, learning_rate: float) -> None:
        """Set ``optimizer``'s learning rate to ``learning_rate``, decayed linearly to 0 over
        this ``learn`` call."""
        optimizer.param_groups[0]["lr"] = learning_rate * max(0.0, 1.0 - self.done / self.total)

    def update(self, steps: int, stats: dict[str, float]) -> bool:
        agent = self.agent
        self.done += steps
        agent.num_timesteps += steps
        elapsed = time.perf_counter() - self.start
        stats = {**stats, "time/fps": self.done / max(elapsed, 1e-9)}
        # Learners that update every few steps (DQN) would write thousands of points;
        # TensorBoard gets one every LOG_INTERVAL steps, and the last.
        if agent.num_timesteps - self.last_log >= LOG_INTERVAL or self.done >= self.total:
            self.logger.scalars(stats, agent.num_timesteps)
            self.last_log = agent.num_timesteps
        if self.bar is not None:
            self.bar.update(steps)
            shown = {k.split("/")[-1]: f"{v:.3g}" for k, v in stats.items() if "rollout/" in k}
            self.bar.set_postfix(shown)
        if self.next_video is not None and agent.num_timesteps >= self.next_video:
            agent._log_video(self.logger)
            self.last_video = agent.num_timesteps
            while self.next_video <= agent.num_timesteps:
                self.next_video += self.video_interval
        if self.callback is not None:
            info = {**stats, "timesteps": float(agent.num_timesteps), "time/elapsed": elapsed}
            if self.callback(agent, info) is False:
                return False
        return self.done < self.total

    def close(self) -> None:
        if self.video_interval and self.done > 0 and self.last_video != self.agent.num_timesteps:
            self.agent._log_video(self.logger)
        if self.bar is not None:
            self.bar.close()
        self.logger.flush()


# --- agents with a policy -------------------------------------------------------------------


class PolicyAgent(Agent):
    """An agent acting through a policy with a (possibly empty) recurrent state.

    Subclasses build ``self.policy`` (with ``initial_state``) in ``__init__`` after calling
    :meth:`_probe_spaces`, and implement :meth:`_act`.
    """

    policy: nn.Module
    observation_space: spaces.Space
    action_space: spaces.Space

    def _probe_spaces(self) -> None:
        probe = self.make_core(1)
        self.observation_space = probe.single_observation_space
        self.action_space = probe.single_action_space
        probe.close()

    def _make_generator(self) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        if self.seed is None:
            generator.seed()
        else:
            generator.manual_seed(self.seed)
        return generator

    def _act(
        self, obs: Any, state: State, episode_start: torch.Tensor | None, deterministic: bool
    ) -> tuple[torch.Tensor, State]:
        """Actions (as the environment takes them) for a batch of tensor observations."""
        raise NotImplementedError

    def env_action(self, action: torch.Tensor) -> torch.Tensor:
        """The action sent to the environment: a Gaussian policy's ``Box`` samples are
        clipped to the space's bounds (the learner keeps the unclipped sample)."""
        space = self.action_space
        if isinstance(space, spaces.Box):
            low = torch.as_tensor(space.low, device=action.device, dtype=action.dtype)
            high = torch.as_tensor(space.high, device=action.device, dtype=action.dtype)
            return torch.maximum(torch.minimum(action, high), low)
        return action

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
        numpy_in = not is_torch(obs)
        batched = is_batched(obs, self.observation_space)
        with torch.inference_mode():
            x = obs_to_tensor(obs, self.observation_space, self.device)
            if not batched:
                x = unsqueeze_obs(x)
            n = batch_size(x)
            start = None
            if state is None:
                state = self.initial_state(n)
            elif episode_start is not None:
                start = torch.as_tensor(
                    np.asarray(episode_start) if not is_torch(episode_start) else episode_start
                )
                start = start.to(self.device).reshape(-1)
                if start.numel() == 1 and n > 1:
                    start = start.expand(n)
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

    def _log_video(self, logger: RunLogger) -> None:
        """A rollout GIF of two episodes, where the environment renders ``rgb_array``."""
        if not logger.enabled:
            return
        try:
            frames = rollout_frames(self, episodes=2, seed=0 if self.seed is None else self.seed)
        except (gym.error.DependencyNotInstalled, NotImplementedError, ValueError) as e:
            warnings.warn(f"no rollout video for {self.env_id}: {e}", stacklevel=2)
            return
        logger.video("rollout/video", frames, self.num_timesteps)


def detach_state(state: State) -> State:
    return map_state(lambda s: s.detach(), state)
