"""RAM: the recurrent attention model (Mnih, Heess, Graves and Kavukcuoglu 2014).

A glimpse network, a recurrent core, a Gaussian location head, a classifier head and a
learned baseline (parts from :mod:`cogrl.agents.policies`), trained on the glimpse tasks'
continuous action mode (``cogrl/GlimpseDigits-v0``, ``TranslatedDigits``, ``ClutteredDigits``):
each step the agent sends ``concat(l_t, 2 softmax(logits_t) - 1)``, the next location and
class scores (the environment reads the scores at the last step; same argmax as the logits).

Training is the paper's hybrid loss, one update per batch of ``num_envs`` whole episodes:
the classifier by cross-entropy on the true label, the locations by REINFORCE with the
episode's reward ``R`` (1 if the class was right) and a baseline ``b_t`` regressed on ``R``.

```python
agent = cogrl.agents.make("ram", "cogrl/GlimpseDigits-v0", seed=0)
agent.learn(total_timesteps=1_000_000, progress_bar=True)
cogrl.agents.evaluate(agent, episodes=360, split="test")
```
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

from cogrl.agents.base import Agent, Callback, Hyperparameters, register_agent, rollout_frames
from cogrl.agents.policies import (
    CORES,
    CategoricalHead,
    GaussianLocationHead,
    State,
    ValueHead,
    make_core,
    make_encoder,
    reset_state,
)
from cogrl.core import BatchedEnv
from cogrl.logging import RunLogger

__all__ = ["RAM", "RAMPolicy"]

LOCATION_SIZE = 2


class RAMPolicy(nn.Module):
    """The recurrent attention model's networks, composed from shared parts.

    ``g_t = f_g(glimpse_t, l_{t-1})`` (encoder), ``h_t = f_h(h_{t-1}, g_t)`` (core),
    ``l_t ~ f_l(h_t)`` (location head), ``logits_t = f_a(h_t)`` (classifier) and
    ``b_t = baseline(h_t)``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        n_classes: int,
        core: str = "gru",
        feature_size: int = 256,
        glimpse_hidden: int = 128,
        location_hidden: int = 128,
        core_size: int = 256,
        location_std: float = 0.2,
    ) -> None:
        super().__init__()
        self.encoder = make_encoder(
            observation_space, feature_size, glimpse_hidden, location_hidden
        )
        self.core = make_core(core, self.encoder.output_size, core_size)
        hidden = self.core.hidden_size
        self.location = GaussianLocationHead(hidden, LOCATION_SIZE, location_std)
        self.classifier = CategoricalHead(hidden, n_classes)
        self.baseline = ValueHead(hidden)

    def initial_state(self, batch_size: int, device: torch.device | str) -> State:
        return self.core.initial_state(batch_size, device)

    def forward(self, obs: Any, state: State) -> tuple[torch.Tensor, State]:
        """One step of the encoder and core: ``h_t`` and the next state."""
        return self.core(self.encoder(obs), state)

    @staticmethod
    def class_scores(logits: torch.Tensor) -> torch.Tensor:
        """The action's class scores ``2 softmax(logits) - 1``: in [-1, 1], argmax unchanged."""
        return 2.0 * torch.softmax(logits, dim=-1) - 1.0


@register_agent("ram")
class RAM(Agent):
    """Recurrent attention model trained by REINFORCE with a baseline plus cross-entropy.

    Works on environments with a ``Box(-1, 1, (2 + n_classes,))`` action (location, class
    scores) whose episodes all have the same length, such as cogrl's glimpse tasks in their
    default ``action_mode="continuous"``.
    """

    @dataclass
    class Config(Hyperparameters):
        """RAM's hyperparameters.

        The defaults were picked by measuring test accuracy at equal CPU wall time on the
        three glimpse tasks: the GRU core beat the paper's ReLU RNN and the LSTM (most on
        ClutteredDigits), widths of 128 learned as well as 256 at twice the speed (1,437
        training digits, not 60,000), and ``location_std=0.3`` explored better than 0.1-0.2.

        - ``num_envs``: episodes per update (all run in lockstep on one batched core).
        - ``learning_rate``: Adam's step size.
        - ``core``: ``"rnn"`` (the paper's), ``"gru"``, ``"lstm"`` or ``"none"``.
        - ``feature_size``, ``glimpse_hidden``, ``location_hidden``: glimpse network sizes
          (``g``, ``h_g``, ``h_l``); ``core_size``: width of ``h_t``.
        - ``location_std``: std of the location policy's Gaussian (before tanh).
        - ``reinforce_coef``, ``baseline_coef``: weights of the REINFORCE and baseline terms.
        - ``max_grad_norm``: gradient clipping (``None`` for none).
        """

        num_envs: int = 128
        learning_rate: float = 1e-3
        core: str = "gru"
        feature_size: int = 128
        glimpse_hidden: int = 128
        location_hidden: int = 128
        core_size: int = 128
        location_std: float = 0.3
        reinforce_coef: float = 1.0
        baseline_coef: float = 1.0
        max_grad_norm: float | None = 1.0

        def __post_init__(self) -> None:
            for name in (
                "num_envs",
                "feature_size",
                "glimpse_hidden",
                "location_hidden",
                "core_size",
            ):
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                    raise ValueError(f"{name} must be a positive int, got {value!r}")
            for name in ("learning_rate", "location_std"):
                value = getattr(self, name)
                if not _is_number(value) or not math.isfinite(value) or value <= 0:
                    raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
            for name in ("reinforce_coef", "baseline_coef"):
                value = getattr(self, name)
                if not _is_number(value) or not math.isfinite(value) or value < 0:
                    raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
            if self.max_grad_norm is not None and (
                not _is_number(self.max_grad_norm)
                or not math.isfinite(self.max_grad_norm)
                or self.max_grad_norm <= 0
            ):
                raise ValueError(
                    f"max_grad_norm must be a finite number > 0 or None, got {self.max_grad_norm!r}"
                )
            if self.core not in CORES:
                raise ValueError(f"core must be one of {sorted(CORES)}, got {self.core!r}")

    config: Config
    # About a minute on two CPU cores; ~90% test accuracy on GlimpseDigits (BENCHMARKS.md).
    default_timesteps = 1_000_000

    def __init__(
        self,
        env: str | gym.Env | BatchedEnv,
        device: str | torch.device = "auto",
        seed: int | None = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        **hyperparameters: Any,
    ) -> None:
        super().__init__(env, device, seed, env_kwargs, **hyperparameters)
        probe = self.make_core(1)
        self.observation_space = probe.single_observation_space
        self.action_space = probe.single_action_space
        if not (
            isinstance(self.action_space, spaces.Box)
            and len(self.action_space.shape) == 1
            and self.action_space.shape[0] > LOCATION_SIZE + 1
        ):
            raise ValueError(
                f"RAM needs a Box action (2 location values + class scores), got "
                f"{self.action_space} for {self.env_id}; use action_mode='continuous'"
            )
        self.n_classes = self.action_space.shape[0] - LOCATION_SIZE
        c = self.config
        self.policy = RAMPolicy(
            self.observation_space,
            self.n_classes,
            core=c.core,
            feature_size=c.feature_size,
            glimpse_hidden=c.glimpse_hidden,
            location_hidden=c.location_hidden,
            core_size=c.core_size,
            location_std=c.location_std,
        ).to(self.device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=c.learning_rate)
        self.generator = torch.Generator(device=self.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        self._env: BatchedEnv | None = None
        self._obs: Any = None

    def modules(self) -> dict[str, nn.Module]:
        return {"policy": self.policy}

    # --- acting ------------------------------------------------------------------------------
    def _act(
        self, obs: Any, state: State, deterministic: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, State]:
        """One step: action, log p(l_t), h_t, logits_t, next state."""
        h, state = self.policy(obs, state)
        logits = self.policy.classifier(h)
        if deterministic:
            location = self.policy.location.deterministic(h)
            log_prob = torch.zeros(h.shape[0], device=h.device)
        else:
            location, log_prob = self.policy.location.sample(h, self.generator)
        action = torch.cat([location.detach(), self.policy.class_scores(logits.detach())], dim=-1)
        return action, log_prob, h, logits, state

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
        is_numpy = not _is_torch(obs)
        batched = _is_batched(obs, self.observation_space)
        with torch.inference_mode():
            x = _to_tensor(obs, self.device)
            if not batched:
                x = {k: v[None] for k, v in x.items()} if isinstance(x, dict) else x[None]
            n = _batch_size(x)
            if state is None:
                state = self.policy.initial_state(n, self.device)
            elif episode_start is not None:
                start = torch.as_tensor(
                    np.asarray(episode_start) if not _is_torch(episode_start) else episode_start
                )
                start = start.to(self.device).reshape(-1)
                if start.numel() == 1 and n > 1:
                    start = start.expand(n)
                state = reset_state(state, start)
            action, _, _, _, state = self._act(x, state, deterministic)
        if not batched:
            action = action[0]
        if is_numpy:
            return action.cpu().numpy(), state
        return action, state

    # --- learning ----------------------------------------------------------------------------
    def learn(
        self,
        total_timesteps: int,
        callback: Callback | None = None,
        progress_bar: bool = False,
        logger: RunLogger | None = None,
        video_interval: int | None = None,
    ) -> RAM:
        if isinstance(total_timesteps, bool) or not isinstance(total_timesteps, (int, np.integer)):
            raise ValueError(f"total_timesteps must be an int, got {total_timesteps!r}")
        if video_interval is not None and (
            isinstance(video_interval, bool)
            or not isinstance(video_interval, int)
            or video_interval < 1
        ):
            raise ValueError(
                f"video_interval must be a positive int or None, got {video_interval!r}"
            )
        logger = logger if logger is not None else RunLogger(None)
        c = self.config
        if self._env is None:
            self._env = self.make_core(c.num_envs)
            self._obs, _ = self._env.reset(seed=self.seed)
        env, n = self._env, c.num_envs
        bar = None
        if progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=int(total_timesteps), unit="step")
        next_video = self.num_timesteps + video_interval if video_interval else None
        last_video = -1
        done_steps = 0
        start_time = time.perf_counter()
        self.policy.train()
        while done_steps < total_timesteps:
            # --- rollout: one whole episode in every environment (in lockstep) -------------
            # All episodes start together, so the recurrent state restarts at zero.
            state = self.policy.initial_state(n, self.device)
            obs = self._obs
            log_probs, baselines = [], []
            t = 0
            while True:
                action, log_prob, h, logits, state = self._act(obs, state, deterministic=False)
                baselines.append(self.policy.baseline(h.detach()))  # b_t sees a detached h_t
                log_probs.append(log_prob)
                obs, reward, terminated, truncated, info = env.step(action)
                t += 1
                done = terminated | truncated
                if bool(done.any()):
                    break
            if not bool(done.all()):
                raise RuntimeError(
                    f"RAM needs episodes of one fixed length; {self.env_id} ended "
                    f"{int(done.sum())} of {n} episodes at step {t}"
                )
            self._obs = obs
            R = reward  # the episode's return: 1 if the class read at step T was right
            label = info["label"]

            # --- the hybrid loss (Mnih et al. 2014, eq. 2 and section 4) ----------------------
            # Classifier: L_a = CE(f_a(h_T), label), the supervised part.
            classifier_loss = F.cross_entropy(logits, label)
            # REINFORCE: grad J = E[ sum_t grad log pi(l_t | s_{1:t}) (R - b_t) ]. The location
            # sent at the last step is never looked at, so only l_1 .. l_{T-1} carry reward.
            if t > 1:
                log_p = torch.stack(log_probs[:-1])  # (T-1, N)
                b = torch.stack(baselines[:-1])  # (T-1, N)
                advantage = (R[None] - b).detach()
                reinforce_loss = -(log_p * advantage).mean()
                # Baseline: b_t regresses on E[R | h_t], MSE(b_t, R).
                baseline_loss = F.mse_loss(b, R[None].expand_as(b))
            else:
                reinforce_loss = baseline_loss = torch.zeros((), device=self.device)
            loss = (
                classifier_loss
                + c.reinforce_coef * reinforce_loss
                + c.baseline_coef * baseline_loss
            )

            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if c.max_grad_norm is not None:
                grad_norm = nn.utils.clip_grad_norm_(self.policy.parameters(), c.max_grad_norm)
            else:
                grad_norm = _grad_norm(self.policy)
            self.optimizer.step()

            # --- bookkeeping ---------------------------------------------------------------
            steps = n * t
            done_steps += steps
            self.num_timesteps += steps
            elapsed = time.perf_counter() - start_time
            stats = {
                "rollout/ep_rew_mean": float(info["episode"]["r"].mean()),
                "rollout/ep_len_mean": float(info["episode"]["l"].float().mean()),
                "rollout/accuracy": float(info["correct"].float().mean())
                if "correct" in info
                else float((logits.argmax(-1) == label).float().mean()),
                "train/loss": float(loss.detach()),
                "train/classifier_loss": float(classifier_loss.detach()),
                "train/reinforce_loss": float(reinforce_loss.detach()),
                "train/baseline_loss": float(baseline_loss.detach()),
                "train/location_std": self.policy.location.std,
                "train/grad_norm": float(grad_norm),
                "train/learning_rate": self.optimizer.param_groups[0]["lr"],
                "time/fps": done_steps / max(elapsed, 1e-9),  # env steps per second
            }
            logger.scalars(stats, self.num_timesteps)
            if bar is not None:
                bar.update(steps)
                bar.set_postfix(acc=f"{stats['rollout/accuracy']:.2f}")
            if next_video is not None and self.num_timesteps >= next_video:
                self._log_video(logger)
                last_video = self.num_timesteps
                while next_video <= self.num_timesteps:
                    next_video += video_interval
            if callback is not None:
                info_out = {
                    **stats,
                    "timesteps": float(self.num_timesteps),
                    "time/elapsed": elapsed,
                }
                if callback(self, info_out) is False:
                    break
        if video_interval and done_steps > 0 and last_video != self.num_timesteps:
            self._log_video(logger)
        if bar is not None:
            bar.close()
        logger.flush()
        return self

    def _log_video(self, logger: RunLogger) -> None:
        if not logger.enabled:
            return
        seed = 0 if self.seed is None else self.seed
        frames = rollout_frames(self, episodes=2, seed=seed)
        logger.video("rollout/video", frames, self.num_timesteps)


# ---------------------------------------------------------------------------------------
# helpers


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_torch(x: Any) -> bool:
    if isinstance(x, Mapping):
        return any(isinstance(v, torch.Tensor) for v in x.values())
    return isinstance(x, torch.Tensor)


def _is_batched(obs: Any, space: spaces.Space) -> bool:
    if isinstance(space, spaces.Dict):
        if not isinstance(obs, Mapping):
            raise ValueError(
                f"observation must be a dict for space {space}, got {type(obs).__name__}"
            )
        missing = sorted(set(space.spaces) - set(obs))
        if missing:
            raise ValueError(f"observation lacks key(s) {missing} of space {space}")
        key = next(iter(space.spaces))
        ndim, expected = np.ndim(obs[key]), len(space[key].shape)
    else:
        ndim, expected = (
            np.ndim(obs) if not isinstance(obs, torch.Tensor) else obs.ndim,
            len(space.shape),
        )
    if ndim == expected + 1:
        return True
    if ndim == expected:
        return False
    raise ValueError(f"observation of {ndim} dims does not fit space {space}")


def _to_tensor(obs: Any, device: torch.device) -> Any:
    if isinstance(obs, Mapping):
        return {k: _to_tensor(v, device) for k, v in obs.items()}
    return torch.as_tensor(obs, dtype=torch.float32, device=device)


def _batch_size(x: Any) -> int:
    if isinstance(x, Mapping):
        return next(iter(x.values())).shape[0]
    return x.shape[0]


def _grad_norm(module: nn.Module) -> torch.Tensor:
    norms = [p.grad.norm() for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())
