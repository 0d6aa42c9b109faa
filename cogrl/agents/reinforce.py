"""REINFORCE: Monte-Carlo policy gradient (Williams 1992) with a baseline and an entropy bonus.

```python
agent = cogrl.agents.make("reinforce", "CartPole-v1", seed=0)
agent.learn(total_timesteps=200_000)
```

Each update runs one whole episode in each of ``num_envs`` environments (all restarted
together) and follows the likelihood-ratio gradient

``grad J = (1/N) sum_n sum_t grad log pi(a_t^n | s_t^n) (G_t^n - b_t^n)``,

with the reward-to-go ``G_t = sum_{k >= t} gamma^(k - t) r_k`` in place of the episode's
whole return (same expectation, less variance) and a baseline ``b_t``: a learned value
``V(s_t)`` regressed on ``G_t`` (``baseline="learned"``), a running mean of returns
(``"mean"``) or none. Environments whose episode ended early idle (their steps are counted
but masked) until the longest episode of the batch ends, so an update holds N complete
episodes, as the estimator needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import gymnasium as gym
import torch

from cogrl.agents.base import Hyperparameters, register_agent
from cogrl.agents.common import (
    PolicyAgent,
    Progress,
    adam,
    check_bools,
    check_choice,
    check_int,
    check_number,
    clip_grad,
)
from cogrl.core import BatchedEnv, sync_free
from cogrl.nn import ActorCriticPolicy, PolicyConfig, State, map_state

__all__ = ["REINFORCE", "Settings"]


class Settings(NamedTuple):
    """The REINFORCE update's settings, read from an agent's hyperparameters."""

    num_envs: int
    gamma: float
    baseline: str
    normalize_advantage: bool
    ent_coef: float
    policy_coef: float
    value_coef: float
    max_grad_norm: float | None
    max_episode_steps: int
    baseline_rate: float


@register_agent("reinforce")
class REINFORCE(PolicyAgent):
    """Monte-Carlo policy gradient, feedforward or recurrent, on any action space."""

    @dataclass
    class Config(Hyperparameters):
        """REINFORCE's hyperparameters.

        - ``num_envs``: episodes per update.
        - ``learning_rate``, ``gamma``, ``ent_coef`` (entropy bonus), ``max_grad_norm``.
        - ``baseline``: ``"learned"`` (a value head, weighted by ``vf_coef``), ``"mean"``
          (exponential running mean of returns with rate ``baseline_rate``) or ``"none"``.
        - ``normalize_advantage``: standardise ``G_t - b_t`` over the batch.
        - ``max_episode_steps``: an episode longer than this is cut (its later steps are
          not learned from), so an environment without a time limit cannot stall learning.
        - ``policy``: a :class:`~cogrl.nn.PolicyConfig` (by default an MLP of (64, 64) with
          tanh, no core).
        """

        num_envs: int = 16
        learning_rate: float = 1e-3
        gamma: float = 0.99
        ent_coef: float = 0.0
        baseline: str = "learned"
        vf_coef: float = 0.5
        baseline_rate: float = 0.05
        normalize_advantage: bool = True
        max_grad_norm: float | None = 1.0
        max_episode_steps: int = 10_000
        policy: PolicyConfig = field(default_factory=PolicyConfig)

        def __post_init__(self) -> None:
            for name in ("num_envs", "max_episode_steps"):
                check_int(name, getattr(self, name))
            check_number("learning_rate", self.learning_rate, low_open=True)
            check_number("gamma", self.gamma, high=1.0)
            check_number("ent_coef", self.ent_coef)
            check_number("vf_coef", self.vf_coef)
            check_number("baseline_rate", self.baseline_rate, high=1.0, low_open=True)
            if self.max_grad_norm is not None:
                check_number("max_grad_norm", self.max_grad_norm, low_open=True)
            check_choice("baseline", self.baseline, {"learned", "mean", "none"})
            check_bools(self, "normalize_advantage")

    config: Config
    policy: ActorCriticPolicy

    def __init__(
        self,
        env: str | gym.Env | BatchedEnv,
        device: str | torch.device = "auto",
        seed: int | None = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        **hyperparameters: Any,
    ) -> None:
        super().__init__(env, device, seed, env_kwargs, **hyperparameters)
        self._probe_spaces()
        self.policy = self._build_policy().to(self.device)
        self.optimizer = adam(self.policy.parameters(), lr=self.config.learning_rate)
        self.generator = self._make_generator()
        # The running mean of returns (baseline="mean"), float64 as a Python float would be,
        # kept on the device so that updating it reads nothing on the host.
        self.running_return = torch.zeros((), dtype=torch.float64, device=self.device)
        self.episodes = self._episode_stats()
        self._env: BatchedEnv | None = None

    def _build_policy(self) -> torch.nn.Module:
        return ActorCriticPolicy(self.observation_space, self.action_space, self.config.policy)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"policy": self.policy}

    def _act(self, obs, state, episode_start, deterministic):
        params, _, state = self.policy.step(obs, state, episode_start)
        head = self.policy.action_head
        action = head.mode(params) if deterministic else head.sample(params, self.generator)
        return action, state

    # --- what a learner built on this one may change ------------------------------------------
    def _settings(self) -> Settings:
        c = self.config
        return Settings(
            c.num_envs,
            c.gamma,
            c.baseline,
            c.normalize_advantage,
            c.ent_coef,
            1.0,
            c.vf_coef,
            c.max_grad_norm,
            c.max_episode_steps,
            c.baseline_rate,
        )

    #: Act without gradients, then evaluate the episodes' log-probabilities, entropies and
    #: values in one pass over the whole (T, N) batch: the core runs fused over the
    #: sequences (:meth:`Torso.sequence`) instead of backpropagating through T steps one
    #: by one. A learner whose loss needs more of each step sets it False and writes
    #: :meth:`_policy_step`.
    replay_episodes = True

    def _replay(
        self, observations: list[Any], actions: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log pi(a_t|s_t), the entropy and V(s_t), each (T, N), for the N episodes that
        started together from the initial state."""
        obs = map_state(lambda *steps: torch.stack(steps), *observations)
        T, N = len(actions), actions[0].shape[0]
        no_restart = torch.zeros(T, N, dtype=torch.bool, device=self.device)
        params, value, _ = self.policy.sequence(obs, self.initial_state(N), no_restart)
        head = self.policy.action_head
        params = params.flatten(0, 1)
        action = torch.stack(actions).flatten(0, 1)
        log_prob = head.log_prob(params, action).view(T, N)
        return log_prob, head.entropy(params).view(T, N), value

    def _policy_step(
        self, obs: Any, state: State
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, State, dict[str, Any]]:
        """One step of the policy: the action to send, log pi(a|s), the entropy (``None``
        where the policy has no entropy to report or reward), the baseline value V(s), the
        next state, and anything else ``_extra_loss`` needs."""
        head = self.policy.action_head
        params, value, state = self.policy.step(obs, state)
        action = head.sample(params, self.generator)
        entropy = head.entropy(params)
        return self.env_action(action), head.log_prob(params, action), entropy, value, state, {}

    @staticmethod
    def _any_active(active: torch.Tensor, t: int, free: bool, bound: int | None) -> bool:
        """Whether to take step ``t``: while some episode goes on. On the CPU, ask every
        step; on a GPU (where asking waits for the queued kernels) run to the core's
        declared episode bound without asking, or ask at steps 1, 2, 4, 8, ... only."""
        if t == 0:
            return True
        if not free:
            return bool(active.any())
        if bound is not None:
            return t < bound
        return (t & (t - 1)) != 0 or bool(active.any())

    def _policy_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """The steps (T, N) whose actions the policy gradient credits: all of each episode."""
        return mask

    def _extra_loss(
        self, extras: list[dict[str, Any]], info: dict[str, Any], mask: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """A further loss term (e.g. RAM's supervised classifier) and its statistics."""
        return torch.zeros((), device=self.device), {}

    # --- checkpoints ----------------------------------------------------------------------------
    def _loop_state(self, include_replay: bool) -> dict[str, Any]:
        # Between updates only the running mean and the environments matter: every update
        # starts N new episodes together.
        return {"running_return": self.running_return.cpu(), "started": self._env is not None}

    def _load_loop_state(self, loop, env) -> None:
        if not loop:
            return
        self.running_return = loop["running_return"].to(self.device)
        if loop["started"]:
            # Each update resets the episodes, so a core that cannot be snapshot only loses
            # its episode counters here.
            self._restore_env(self._settings().num_envs, env)

    def _episode_bound(self, env: BatchedEnv, max_steps: int) -> int | None:
        """The most steps an episode of ``env`` can take, where the core declares it."""
        bound = getattr(env, "max_episode_steps", None)
        return None if bound is None else min(int(bound), max_steps)

    # --- learning -------------------------------------------------------------------------------
    def _learn(self, progress: Progress) -> None:
        s = self._settings()
        N = s.num_envs
        if self._env is None:
            self._env = self.make_training_core(N)
            self._env.reset(seed=self.seed)
        env = self._env
        free = sync_free(self.device)
        bound = self._episode_bound(env, s.max_episode_steps)
        keep_going = progress.remaining > 0
        while keep_going:
            # --- N whole episodes, started together ------------------------------------------
            obs, _ = env.reset()
            state = self.initial_state(N)
            active = torch.ones(N, dtype=torch.bool, device=self.device)
            log_probs, entropies, values, rewards, masks, extras = [], [], [], [], [], []
            observations, actions = [], []
            t = 0
            while t < s.max_episode_steps and self._any_active(active, t, free, bound):
                if self.replay_episodes:
                    observations.append(obs)
                    with torch.no_grad():
                        action, state = self._act(obs, state, None, deterministic=False)
                    actions.append(action)
                    action = self.env_action(action)
                else:
                    action, log_prob, entropy, value, state, extra = self._policy_step(obs, state)
                    log_probs.append(log_prob)
                    entropies.append(entropy)
                    values.append(value)
                    extras.append(extra)
                obs, reward, terminated, truncated, info = env.step(action)
                rewards.append(reward * active)
                masks.append(active.float())
                self.episodes.update({**info, "_episode": info["_episode"] & active})
                active = active & ~(terminated | truncated)
                t += 1
            mask = torch.stack(masks)  # (T, N): 1 on each environment's first episode
            if self.replay_episodes:
                log_prob, entropy, value = self._replay(observations, actions)
            else:
                log_prob, value = torch.stack(log_probs), torch.stack(values)
                entropy = None if entropies[0] is None else torch.stack(entropies)

            # Reward-to-go G_t = r_t + gamma G_{t+1}, backwards within each episode.
            returns = torch.empty_like(mask)
            g = torch.zeros(N, device=self.device)
            for k in reversed(range(t)):
                g = rewards[k] + s.gamma * g
                returns[k] = g
            if s.baseline == "learned":
                baseline = value.detach()
            elif s.baseline == "mean":
                baseline = self.running_return.to(returns.dtype).expand_as(returns)
            else:
                baseline = torch.zeros_like(returns)
            credited = self._policy_mask(mask)
            count = credited.sum().clamp(min=1)
            advantage = returns - baseline
            if s.normalize_advantage:
                # Standardised where more than one step is credited (masked, not branched).
                mean = (advantage * credited).sum() / count
                var = ((advantage - mean) * credited).pow(2).sum() / (count - 1).clamp(min=1)
                standardised = (advantage - mean) / (var.sqrt() + 1e-8)
                advantage = torch.where(count > 1, standardised, advantage)

            # grad J = (1/N) sum_n sum_t grad log pi(a_t|s_t) (G_t - b_t), here divided by
            # the number of steps rather than episodes (the same direction; Adam is
            # insensitive to the scale), plus the entropy bonus.
            policy_loss = -(log_prob * advantage * credited).sum() / count
            loss = s.policy_coef * policy_loss
            if entropy is not None:
                entropy_mean = (entropy * credited).sum() / count
                loss = loss - s.ent_coef * entropy_mean
            value_loss = torch.zeros((), device=self.device)
            if s.baseline == "learned":
                # The baseline regresses on the return: MSE(b_t, G_t).
                value_loss = ((value - returns).pow(2) * credited).sum() / count
                loss = loss + s.value_coef * value_loss
            extra_loss, extra_stats = self._extra_loss(extras, info, mask)
            loss = loss + extra_loss
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = clip_grad(self.policy.parameters(), s.max_grad_norm)
            self.optimizer.step()
            self.guard.after_update(self.num_timesteps + N * t, loss, norm)
            episode_return = returns[0].mean().double()
            self.running_return += s.baseline_rate * (episode_return - self.running_return)

            stats = {
                "train/loss": loss.detach(),
                "train/policy_loss": policy_loss.detach(),
                "train/value_loss": value_loss.detach(),
                **({} if entropy is None else {"train/entropy": entropy_mean.detach()}),
                "train/grad_norm": norm,
                "train/baseline": (baseline * credited).sum() / count,
                "train/learning_rate": self.optimizer.param_groups[0]["lr"],
                **extra_stats,
            }
            keep_going = progress.update(N * t, stats)
