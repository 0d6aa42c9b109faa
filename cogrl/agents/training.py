"""The bookkeeping of a training loop, shared by every learner: the optimiser step
(:func:`gradient_step`), advantage standardisation, episode statistics, the numerics
guard, and :class:`Progress` (step counts, TensorBoard scalars, rollout videos, callbacks,
checkpoints, stop requests).

A runner (:mod:`cogrl.runner`) talks to a training through a :class:`RunContext` passed to
``Agent.learn``: where checkpoints go and how often, and a stop request that ends the
training after its current update. Nothing outside a learner touches its private state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from cogrl.agents.evaluation import log_rollout
from cogrl.checks import check_int
from cogrl.core import sync_free
from cogrl.logging import RunLogger

if TYPE_CHECKING:
    from cogrl.agents.base import Agent, Callback

__all__ = [
    "LOG_INTERVAL",
    "EpisodeStats",
    "NonFiniteError",
    "NumericsGuard",
    "Progress",
    "RunContext",
    "adam",
    "clip_grad",
    "gradient_step",
    "standardize",
]


def check_learn_args(total_timesteps: Any, video_interval: Any) -> None:
    if (
        isinstance(total_timesteps, bool)
        or not isinstance(total_timesteps, (int, np.integer))
        or total_timesteps < 1
    ):
        raise ValueError(f"total_timesteps must be an int >= 1, got {total_timesteps!r}")
    if video_interval is not None:
        check_int("video_interval", video_interval)


def adam(
    parameters: Any, lr: float, eps: float = 1e-8, weight_decay: float = 0.0
) -> torch.optim.Adam:
    """Adam with the fused (one kernel for all parameters) update, which the small
    networks of these tasks make worth having: the per-tensor loop costs more than the
    arithmetic. A ``weight_decay`` above 0 makes it AdamW (Loshchilov and Hutter 2019):
    each step also shrinks every weight by ``lr * weight_decay`` of itself, apart from the
    gradient's adaptive scaling."""
    if weight_decay > 0:
        return torch.optim.AdamW(parameters, lr=lr, eps=eps, weight_decay=weight_decay, fused=True)
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


def standardize(x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``(x - mean) / (std + 1e-8)``: advantages standardised over a batch, every learner's
    ``normalize_advantage``. With ``weights`` (0/1, the shape of ``x``) the mean and the
    (unbiased) std are over the entries weighted 1, without a host read. Where fewer than
    two entries count, ``x`` is returned as it is: one entry has no spread to divide by."""
    if weights is None:
        if x.numel() < 2:
            return x
        return (x - x.mean()) / (x.std() + 1e-8)
    count = weights.sum().clamp(min=1)
    mean = (x * weights).sum() / count
    var = ((x - mean) * weights).pow(2).sum() / (count - 1).clamp(min=1)
    return torch.where(count > 1, (x - mean) / (var.sqrt() + 1e-8), x)


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


class RunContext:
    """What a runner lends a training (``Agent.learn(..., run=...)``).

    - ``checkpoint``: called with the agent every ``checkpoint_every`` environment steps
      (at the end of the update that passes each multiple) and at a requested stop; it
      writes the training checkpoint (``Agent.save(path, training=True)``).
    - ``stop_requested``: set by :meth:`request_stop` (a signal handler): the training
      ends after its current update, and writes a checkpoint first.

    ``learn`` without one trains to the end without checkpoints.
    """

    def __init__(
        self,
        checkpoint: Callable[[Agent], None] | None = None,
        checkpoint_every: int | None = None,
    ) -> None:
        if checkpoint is not None:
            check_int("checkpoint_every", checkpoint_every)
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.stop_requested = False

    def request_stop(self) -> None:
        self.stop_requested = True


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
    rates and exploration anneal) lives in ``agent.progress`` with the logging, video
    and checkpoint counters, so a training run restored from a checkpoint continues
    exactly where it stopped: ``learn(end - num_timesteps, reset_num_timesteps=False)``.
    """

    def __init__(
        self,
        agent: Agent,
        total_timesteps: int,
        callback: Callback | None,
        progress_bar: bool,
        logger: RunLogger | None,
        video_interval: int | None,
        reset_num_timesteps: bool = True,
        run: RunContext | None = None,
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
        if run is not None and not isinstance(run, RunContext):
            raise ValueError(f"run must be a cogrl.agents.RunContext or None, got {run!r}")
        self.run = run if run is not None else RunContext()
        saved = agent.progress
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
        agent.progress = self.counters
        if self.run.checkpoint is not None and self.counters["next_checkpoint"] is None:
            self.counters["next_checkpoint"] = now + self.run.checkpoint_every
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
            curriculum = agent.curriculum
            if curriculum is not None:
                # Judged once per logging interval: moves on one level at most.
                curriculum.update()
            fps = (now - self.start_steps) / max(elapsed, 1e-9)
            values = {
                **agent.episodes.summary(),
                **({} if curriculum is None else curriculum.scalars()),
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
            log_rollout(agent, self.logger)
            c["last_video"] = now
            while c["next_video"] <= now:
                c["next_video"] += self.video_interval
        keep_going = not finished
        if self.callback is not None:
            info = {**agent.episodes.summary(), **{k: _host(v) for k, v in stats.items()}}
            if agent.curriculum is not None:
                info.update(agent.curriculum.scalars())
            info.update(timesteps=float(now), **{"time/elapsed": elapsed})
            if self.callback(agent, info) is False:
                keep_going = False
        stop = self.run.stop_requested
        checkpoint = self.run.checkpoint
        if checkpoint is not None and (stop or now >= c["next_checkpoint"]):
            while c["next_checkpoint"] <= now:
                c["next_checkpoint"] += self.run.checkpoint_every
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
        stopped = self.run.stop_requested  # by a signal: exit fast, as the scheduler asked
        last = self.counters["last_video"]
        if self.video_interval and ran and not stopped and last != agent.num_timesteps:
            log_rollout(agent, self.logger)
            self.counters["last_video"] = agent.num_timesteps
        if ran:
            agent.guard.check(agent.modules(), agent.num_timesteps)
        self.logger.flush()
