"""What every cogrl learner shares: ``learn`` and ``predict``, the bookkeeping of a training
loop (progress bar, TensorBoard scalars, rollout videos, callbacks, episode statistics,
checkpoints, the numerics guard) and the training state a checkpoint holds.

A learner built on :class:`PolicyAgent` implements ``_learn`` (its loop and update, read top
to bottom in its own file), ``_act`` (one step of its policy) and, for checkpoints,
``_loop_state``/``_load_loop_state``; the rest comes from here.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from cogrl.agents.base import (
    Agent,
    Callback,
    check_deterministic,
    check_episode_start,
    check_state,
    memory_image,
    memory_trace,
    rollout_frames,
)
from cogrl.checks import check_bools, check_choice, check_int, check_number, is_number
from cogrl.core import BatchedEnv, check_memory, sync_free
from cogrl.logging import RunLogger
from cogrl.nn import State
from cogrl.nn.state import leaves, state_from_leaves
from cogrl.spaces import batch_size, check_finite, is_batched, to_tensor, unsqueeze

__all__ = [
    "EpisodeStats",
    "NonFiniteError",
    "NumericsGuard",
    "PolicyAgent",
    "Progress",
    "adam",
    "check_bools",
    "check_choice",
    "check_int",
    "check_number",
    "clip_grad",
    "gradient_step",
    "is_number",
]

# --- checks of arguments -------------------------------------------------------------------


def check_learn_args(total_timesteps: Any, video_interval: Any) -> None:
    if (
        isinstance(total_timesteps, bool)
        or not isinstance(total_timesteps, (int, np.integer))
        or total_timesteps < 1
    ):
        raise ValueError(f"total_timesteps must be an int >= 1, got {total_timesteps!r}")
    if video_interval is not None:
        check_int("video_interval", video_interval)


# --- observations ---------------------------------------------------------------------------


def is_torch(x: Any) -> bool:
    if isinstance(x, Mapping):
        return any(isinstance(v, torch.Tensor) for v in x.values())
    return isinstance(x, torch.Tensor)


def adam(parameters: Any, lr: float, eps: float = 1e-8) -> torch.optim.Adam:
    """Adam with the fused (one kernel for all parameters) update, which the small
    networks of these tasks make worth having: the per-tensor loop costs more than the
    arithmetic."""
    return torch.optim.Adam(parameters, lr=lr, eps=eps, fused=True)


def clip_grad(parameters: Any, max_norm: float | None) -> torch.Tensor:
    """Clip the gradient's global norm to ``max_norm`` (``None``: no clipping); its norm.

    The arithmetic of ``nn.utils.clip_grad_norm_`` (norm of the per-tensor norms,
    ``grad *= min(max_norm / (norm + 1e-6), 1)``), bit for bit; for gradients on one device
    and of one dtype (every cogrl learner's) without its grouping and checks, which cost more
    than the arithmetic on small networks.
    """
    parameters = list(parameters)
    grads = [p.grad for p in parameters if p.grad is not None]
    if max_norm is None:
        norms = [g.norm() for g in grads]
        return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())
    if not grads or not _one_dense_group(grads):
        return nn.utils.clip_grad_norm_(parameters, max_norm)
    with torch.no_grad():
        total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
        torch._foreach_mul_(grads, torch.clamp(float(max_norm) / (total + 1e-6), max=1.0))
    return total


def _one_dense_group(grads: list[torch.Tensor]) -> bool:
    """Whether ``grads`` are dense, on one CPU or CUDA device and of one dtype (what the
    foreach path of ``clip_grad_norm_`` takes in one group)."""
    first = grads[0]
    device, dtype = first.device, first.dtype
    return device.type in ("cpu", "cuda") and all(
        g.device == device and g.dtype == dtype and g.layout == torch.strided for g in grads
    )


def gradient_step(
    optimizer: torch.optim.Optimizer, loss: torch.Tensor, max_grad_norm: float | None
) -> torch.Tensor:
    """One update of ``optimizer``'s parameters on ``loss``: clear their gradients
    (``zero_grad(set_to_none=True)``), backpropagate, clip the global gradient norm
    (:func:`clip_grad`) and step. Returns the norm before clipping."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for p in params:
        p.grad = None
    loss.backward()
    norm = clip_grad(params, max_grad_norm)
    optimizer.step()
    return norm


# --- training-loop bookkeeping --------------------------------------------------------------


class EpisodeStats:
    """Returns, lengths and the environment's episode metrics (``metadata["episode_metrics"]``,
    e.g. accuracy) of the last ``window`` finished episodes, read from the core's
    ``info["episode"]`` (as SB3's ``ep_rew_mean``).

    The episodes are kept in a ring of tensors on the learner's device and written with
    masked scatters, so that recording them reads nothing on the host; :meth:`summary`
    reads them once per logging interval.
    """

    def __init__(
        self,
        metrics: Mapping[str, str] | None = None,
        window: int = 100,
        device: torch.device | str = "cpu",
    ) -> None:
        self.metrics = dict(metrics or {})
        self.window = window
        # Rows: return, length, then one per metric; column `window` takes the rows of
        # environments that did not finish this step and is never read.
        self.values = torch.zeros(2 + len(self.metrics), window + 1, device=device)
        self.count = torch.zeros((), dtype=torch.int64, device=device)

    def update(self, info: Mapping[str, Any]) -> None:
        done = info.get("_episode")
        if done is None:
            return
        # On the CPU asking is free and most steps end no episode; on a GPU, write masked.
        if not sync_free(done.device) and not bool(done.any()):
            return
        episode = info["episode"]
        rows = [episode["r"].float(), episode["l"].float()]
        for key in self.metrics.values():
            value = info.get(key)
            rows.append(torch.full_like(rows[0], float("nan")) if value is None else value.float())
        done = done.to(self.count.device)
        finished = done.long()
        # The k-th episode finishing this step goes to slot (count + k) mod window; when
        # more than `window` finish at once, only the last `window` are kept.
        order = torch.cumsum(finished, 0) - 1
        keep = done & (order >= finished.sum() - self.window)
        slot = torch.where(keep, (self.count + order) % self.window, self.window)
        self.values[:, slot] = torch.stack(rows).to(self.values.device)
        self.count += finished.sum()

    def summary(self) -> dict[str, float]:
        n = min(int(self.count), self.window)
        if n == 0:
            return {}
        means = self.values[:, :n].nanmean(dim=1).tolist()
        out = {"rollout/ep_rew_mean": means[0], "rollout/ep_len_mean": means[1]}
        for name, mean in zip(self.metrics, means[2:], strict=True):
            if not math.isnan(mean):
                out[f"rollout/{name}"] = mean
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"values": self.values.cpu(), "count": self.count.cpu()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        if tuple(state["values"].shape) != tuple(self.values.shape):
            raise ValueError(
                f"episode statistics of shape {tuple(state['values'].shape)} do not fit "
                f"{tuple(self.values.shape)}"
            )
        self.values.copy_(state["values"])
        self.count.copy_(state["count"])


class NonFiniteError(RuntimeError):
    """Training met a non-finite loss, gradient or parameter (see :class:`NumericsGuard`)."""

    def __init__(self, step: int, quantity: str, value: str) -> None:
        self.step, self.quantity = step, quantity
        super().__init__(
            f"training stopped at step {step:,}: the {quantity} is not finite ({value}). "
            "Lower the learning rate or clip gradients (max_grad_norm); the weights after "
            "this update are not saved"
        )


class NumericsGuard:
    """Stops training at the first update whose loss or gradient norm is not finite, and
    before any checkpoint or model holds a non-finite parameter.

    On the CPU each update is checked at once. On a GPU, reading a value on the host would
    wait for the queued kernels, so the first failure (step and quantity) is recorded on
    the device and read by :meth:`check` once per logging interval and before every save.
    """

    QUANTITIES = ("loss", "gradient norm")

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self.code = torch.zeros((), dtype=torch.int64, device=self.device)
        self.step = torch.zeros((), dtype=torch.int64, device=self.device)
        self.value = torch.zeros((), device=self.device)

    def after_update(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """Record the update at environment step ``step``."""
        loss, grad_norm = loss.detach().float(), grad_norm.detach().float()
        if not sync_free(self.device):
            for quantity, value in zip(self.QUANTITIES, (loss, grad_norm), strict=True):
                if not math.isfinite(float(value)):
                    raise NonFiniteError(step, quantity, f"{float(value)}")
            return
        bad_loss, bad_norm = ~torch.isfinite(loss), ~torch.isfinite(grad_norm)
        code = torch.where(bad_loss, 1, torch.where(bad_norm, 2, 0))
        first = (self.code == 0) & (code > 0)
        self.step = torch.where(first, step, self.step)
        self.value = torch.where(first, torch.where(bad_loss, loss, grad_norm), self.value)
        self.code = torch.where(self.code == 0, code, self.code)

    def check(self, modules: Mapping[str, nn.Module], step: int) -> None:
        """Raise :class:`NonFiniteError` for a recorded failure or a non-finite parameter."""
        code = int(self.code)
        if code:
            raise NonFiniteError(int(self.step), self.QUANTITIES[code - 1], f"{float(self.value)}")
        for module_name, module in modules.items():
            params = [p for p in module.parameters()]
            if not params:
                continue
            finite = torch.stack([torch.isfinite(p).all() for p in params])
            if not bool(finite.all()):
                names = [n for n, _ in module.named_parameters()]
                bad = names[int((~finite).nonzero()[0])]
                raise NonFiniteError(step, f"parameter {module_name}.{bad}", "nan or inf")


#: Environment steps between two points of a learner's TensorBoard scalars.
LOG_INTERVAL = 1_000


def _host(value: Any) -> float:
    return float(value) if isinstance(value, torch.Tensor) else value


class Progress:
    """One ``learn`` call's bookkeeping: counts steps, logs scalars, shows a progress bar,
    logs a rollout video every ``video_interval`` steps, calls the callback, writes
    checkpoints and checks the numerics (:class:`NumericsGuard`).

    ``update(steps, stats)`` after each update returns ``False`` when training must stop
    (the steps are done, the callback said so, or a stop was requested). ``stats`` may
    hold tensors: they are read on the host only when they are logged, once per
    ``LOG_INTERVAL`` steps (or when a callback asks for them every update).

    The schedule (``start``, ``end``: the steps this training spans, over which learning
    rates and exploration anneal) lives in ``agent._progress`` with the logging, video
    and checkpoint counters, so a training run restored from a checkpoint continues
    exactly where it stopped: ``learn(end - num_timesteps, reset_num_timesteps=False)``.
    """

    def __init__(
        self,
        agent: PolicyAgent,
        total_timesteps: int,
        callback: Callback | None,
        progress_bar: bool,
        logger: RunLogger | None,
        video_interval: int | None,
        reset_num_timesteps: bool = True,
    ) -> None:
        check_learn_args(total_timesteps, video_interval)
        if not isinstance(reset_num_timesteps, bool):
            raise ValueError(
                f"reset_num_timesteps must be true or false, got {reset_num_timesteps!r}"
            )
        self.agent = agent
        self.callback = callback
        self.logger = logger if logger is not None else RunLogger(None)
        self.video_interval = video_interval
        saved = agent._progress
        if reset_num_timesteps:
            agent.num_timesteps = 0
        now = agent.num_timesteps
        if saved is not None and not reset_num_timesteps and saved["end"] == now + total_timesteps:
            self.counters = dict(saved)  # the same training, resumed
            if not video_interval:
                self.counters["next_video"] = None
            elif self.counters["next_video"] is None:
                self.counters["next_video"] = now + video_interval
        else:
            self.counters = {
                "start": now,
                "end": now + int(total_timesteps),
                "last_log": now - LOG_INTERVAL,
                "next_video": now + video_interval if video_interval else None,
                "last_video": -1,
                "next_checkpoint": None,
            }
        agent._progress = self.counters
        checkpoint = agent._checkpoint
        if checkpoint is not None and self.counters["next_checkpoint"] is None:
            self.counters["next_checkpoint"] = now + checkpoint.every
        self.start_time = time.perf_counter()
        self.start_steps = now
        self.bar = None
        if progress_bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, initial=self.done, unit="step")

    @property
    def total(self) -> int:
        return self.counters["end"] - self.counters["start"]

    @property
    def done(self) -> int:
        return self.agent.num_timesteps - self.counters["start"]

    @property
    def remaining(self) -> int:
        return self.counters["end"] - self.agent.num_timesteps

    def anneal(self, optimizer: torch.optim.Optimizer, learning_rate: float) -> None:
        """Set every parameter group's learning rate to ``learning_rate``, decayed linearly
        to 0 over this training."""
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * max(0.0, 1.0 - self.done / self.total)

    def update(self, steps: int, stats: Mapping[str, Any]) -> bool:
        agent, c = self.agent, self.counters
        agent.num_timesteps += steps
        now = agent.num_timesteps
        elapsed = time.perf_counter() - self.start_time
        finished = now >= c["end"]
        # Learners that update every few steps (DQN) would write thousands of points;
        # TensorBoard gets one every LOG_INTERVAL steps, and the last.
        if now - c["last_log"] >= LOG_INTERVAL or finished:
            agent.guard.check(agent.modules(), now)
            fps = (now - self.start_steps) / max(elapsed, 1e-9)
            values = {
                **agent.episodes.summary(),
                **{k: _host(v) for k, v in stats.items()},
                "time/fps": fps,
            }
            self.logger.scalars(values, now)
            c["last_log"] = now
            if self.bar is not None:
                shown = {k.split("/")[-1]: f"{v:.3g}" for k, v in values.items() if "rollout/" in k}
                self.bar.set_postfix(shown, refresh=False)
        if self.bar is not None:
            self._advance_bar(steps, finished)
        if c["next_video"] is not None and now >= c["next_video"]:
            agent._log_video(self.logger)
            c["last_video"] = now
            while c["next_video"] <= now:
                c["next_video"] += self.video_interval
        keep_going = not finished
        if self.callback is not None:
            info = {**agent.episodes.summary(), **{k: _host(v) for k, v in stats.items()}}
            info.update(timesteps=float(now), **{"time/elapsed": elapsed})
            if self.callback(agent, info) is False:
                keep_going = False
        stop = agent._stop_requested
        checkpoint = agent._checkpoint
        if checkpoint is not None and (stop or now >= c["next_checkpoint"]):
            while c["next_checkpoint"] <= now:
                c["next_checkpoint"] += checkpoint.every
            agent.guard.check(agent.modules(), now)
            checkpoint(agent)
        return keep_going and not stop

    def _advance_bar(self, steps: int, finished: bool) -> None:
        bar = self.bar
        if bar.n + steps > bar.total:
            # The last update overshoots the steps asked for (they come in whole rollouts):
            # the bar grows to the real count, instead of tqdm's bare count without a bar.
            bar.total = bar.n + steps
        if finished:
            bar.n += steps  # drawn once, by close(), not twice
        else:
            bar.update(steps)

    def close(self) -> None:
        agent = self.agent
        ran = agent.num_timesteps > self.start_steps
        if self.bar is not None:  # before the last video, which may take a while
            self.bar.close()
        stopped = agent._stop_requested  # by a signal: exit fast, as the scheduler asked
        last = self.counters["last_video"]
        if self.video_interval and ran and not stopped and last != agent.num_timesteps:
            agent._log_video(self.logger)
            self.counters["last_video"] = agent.num_timesteps
        if ran:
            agent.guard.check(agent.modules(), agent.num_timesteps)
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
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    episodes: EpisodeStats
    _env: BatchedEnv | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = NumericsGuard(self.device)

    def _probe_spaces(self) -> None:
        probe = self.make_core(1)
        self.observation_space = probe.single_observation_space
        self.action_space = probe.single_action_space
        self.env_metadata = dict(probe.metadata)
        estimate = getattr(probe, "memory_estimate", None)
        num_envs = getattr(self.config, "num_envs", None)
        probe.close()
        if estimate is not None and num_envs is not None:
            # The training core is built at the first `learn`; a size that cannot fit is an
            # error now, not after minutes of set-up or in an out-of-memory kill.
            check_memory(self.device, estimate(num_envs), {"num_envs": num_envs})

    def _episode_stats(self) -> EpisodeStats:
        """Episode statistics with the environment's declared episode metrics."""
        metrics = self.env_metadata.get("episode_metrics", {})
        return EpisodeStats(metrics, device=self.device)

    def make_training_core(self, num_envs: int) -> BatchedEnv:
        """The core this agent trains on: its actions come from the policy's heads, valid
        by construction, so the core checks their shape but does not read their values
        (which, on a GPU, would wait for every queued kernel at each step)."""
        core = self.make_core(num_envs)
        core.check_action_values = False
        return core

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
            "progress": None if self._progress is None else dict(self._progress),
            "episodes": self.episodes.state_dict(),
            "loop": self._loop_state(include_replay),
            "env": None,
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
        self._progress = None if state["progress"] is None else dict(state["progress"])
        self.episodes.load_state_dict(state["episodes"])
        self._load_loop_state(state["loop"], state["env"])

    def _loop_state(self, include_replay: bool) -> dict[str, Any]:
        """The learner's own state between two updates (override)."""
        return {}

    def _load_loop_state(self, loop: Mapping[str, Any], env: Mapping[str, Any] | None) -> None:
        """Restore :meth:`_loop_state` and the environments (override)."""

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
        obs, _ = self._env.reset(seed=seed)
        return obs

    def _start_stepping(self, num_envs: int) -> None:
        """The training environments, made on the first ``learn`` call and kept after, with
        the observation, recurrent state and episode starts the loop steps from."""
        self._env = self.make_training_core(num_envs)
        self._obs, _ = self._env.reset(seed=self.seed)
        self._state = self.initial_state(num_envs)
        self._episode_start = torch.ones(num_envs, dtype=torch.bool, device=self.device)

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

    def _make_generator(self) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        if self.seed is None:
            generator.seed()
        else:
            generator.manual_seed(self.seed)
        return generator

    def learn(
        self,
        total_timesteps: int,
        callback: Callback | None = None,
        progress_bar: bool = False,
        logger: RunLogger | None = None,
        video_interval: int | None = None,
        reset_num_timesteps: bool = True,
    ) -> PolicyAgent:
        """Train for ``total_timesteps`` environment steps (summed over environments).

        As in Stable-Baselines3, ``reset_num_timesteps=False`` goes on counting from
        ``num_timesteps``; it continues a training restored from a checkpoint exactly
        (its schedules included) when ``total_timesteps`` is what that training had left.
        Scalars go to ``logger``, a rollout video every ``video_interval`` steps.
        """
        progress = Progress(
            self,
            total_timesteps,
            callback,
            progress_bar,
            logger,
            video_interval,
            reset_num_timesteps,
        )
        self._learn(progress)
        progress.close()
        return self

    def _learn(self, progress: Progress) -> None:
        """The learner's loop: collect, update, ``progress.update`` (implemented by each)."""
        raise NotImplementedError

    def _act(
        self, obs: Any, state: State, episode_start: torch.Tensor | None, deterministic: bool
    ) -> tuple[torch.Tensor, State]:
        """Actions (as the environment takes them) for a batch of tensor observations."""
        raise NotImplementedError

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

    def _log_video(self, logger: RunLogger) -> None:
        """A rollout GIF of two episodes, where the environment renders ``rgb_array``, and
        for a memory core the heatmaps of its read and write weightings in one episode."""
        if not logger.enabled:
            return
        self._log_memory(logger)
        try:
            frames = rollout_frames(self, episodes=2, seed=0 if self.seed is None else self.seed)
        except (gym.error.DependencyNotInstalled, NotImplementedError, ValueError) as e:
            warnings.warn(f"no rollout video for {self.env_id}: {e}", stacklevel=2)
            return
        logger.video("rollout/video", frames, self.num_timesteps)

    def _log_memory(self, logger: RunLogger) -> None:
        """The memory heatmaps of one episode (:func:`memory_image`), if the core has memory."""
        trace = memory_trace(self, seed=0 if self.seed is None else self.seed)
        if trace is not None:
            logger.image("rollout/memory", memory_image(trace), self.num_timesteps)
