"""A2C: synchronous advantage actor-critic (Mnih et al. 2016, the synchronous variant).

```python
agent = cogrl.agents.make("a2c", "CartPole-v1", seed=0)
agent.learn(total_timesteps=200_000)
```

One gradient step per rollout of ``num_envs * n_steps`` transitions:
``L = -E[log pi(a_t|s_t) A_t] + vf_coef E[(V(s_t) - R_t)^2] - ent_coef E[H(pi(.|s_t))]``,
with advantages by GAE (``gae_lambda=1``: the n-step returns of the paper). RMSprop as in
the paper (and Stable-Baselines3), or Adam.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cogrl.agents.base import register_agent
from cogrl.agents.on_policy import (
    OnPolicyAgent,
    OnPolicyConfig,
    Rollout,
    explained_variance,
    masked_mean,
    per_part,
)
from cogrl.agents.training import Progress, adam, gradient_step, standardize
from cogrl.checks import check_choice

__all__ = ["A2C"]


@register_agent("a2c")
class A2C(OnPolicyAgent):
    """Advantage actor-critic, feedforward or recurrent, on any action space."""

    @dataclass
    class Config(OnPolicyConfig):
        """A2C's hyperparameters (see :class:`~cogrl.agents.on_policy.OnPolicyConfig`), plus
        ``optimizer``: ``"rmsprop"`` (alpha 0.99, eps 1e-5) or ``"adam"``."""

        n_steps: int = 5
        learning_rate: float = 7e-4
        gae_lambda: float = 1.0
        normalize_advantage: bool = False
        optimizer: str = "rmsprop"

        def __post_init__(self) -> None:
            super().__post_init__()
            check_choice("optimizer", self.optimizer, {"rmsprop", "adam"})

    config: Config

    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        if c.optimizer == "rmsprop":
            return torch.optim.RMSprop(
                self.policy.parameters(), lr=c.learning_rate, alpha=0.99, eps=1e-5
            )
        return adam(self.policy.parameters(), lr=c.learning_rate, eps=1e-5)

    def _learn(self, progress: Progress) -> None:
        c = self.config
        self._start()
        N, T = c.num_envs, c.n_steps
        keep_going = progress.remaining > 0
        while keep_going:
            if c.anneal_lr:
                progress.anneal(self.optimizer, c.learning_rate)
            rollout = self.collect_rollout()
            # Recurrent rollouts are segments of varying lengths, which the fused cores take
            # as host values: their loss runs eagerly (their rollout step is compiled).
            loss_of = (
                self._loss
                if self.policy.recurrent
                else self.compiled(self._loss, "A2C's loss", pays_on_cpu=False)
            )
            loss, terms = loss_of(rollout)
            policy_loss, value_loss, entropy, answer_loss = terms
            answer_stats = {} if answer_loss is None else {"train/answer_loss": answer_loss}
            norm = gradient_step(self.optimizer, loss, c.max_grad_norm)
            self.guard.after_update(self.num_timesteps + N * T, loss, norm)
            stats = {
                "train/loss": loss.detach(),
                "train/policy_loss": policy_loss,
                "train/value_loss": value_loss,
                "train/entropy": entropy,
                "train/explained_variance": explained_variance(
                    rollout.own(rollout.values), rollout.own(rollout.returns)
                ),
                "train/grad_norm": norm,
                "train/learning_rate": self.optimizer.param_groups[0]["lr"],
                **answer_stats,
            }
            keep_going = progress.update(N * T, stats)

    def _loss(self, rollout: Rollout) -> tuple[torch.Tensor, tuple]:
        """A2C's loss on the whole rollout and its logged terms (detached): policy loss,
        value loss, entropy and answer loss (None without answers). Compiled with the
        agent's ``compile``."""
        c = self.config
        units = c.num_envs * c.n_steps if rollout.segments is None else rollout.segments.count
        everything = torch.arange(units, device=self.device)
        ev = self.evaluate_actions(rollout, everything)
        rows = ev.rows
        advantages = rollout.advantages.flatten(0, 1)[rows]
        returns = rollout.returns.flatten(0, 1)[rows]
        # Steps whose action the environment ignored get no policy gradient.
        acted = self.acted_weights(rollout, rows)
        if c.normalize_advantage:
            weights = None if acted is None else per_part(acted, advantages)
            advantages = standardize(
                advantages, None if weights is None else weights.expand_as(advantages)
            )
        # Policy gradient: grad J = E[grad log pi(a_t|s_t) A_t]; with factored credit
        # sum_k grad log pi(a_t^k|s_t) A_t^k, each part by its own advantage.
        credit = ev.log_prob * advantages
        if self.parts:
            credit = credit.sum(-1)
        policy_loss = -masked_mean(credit, acted)
        value_loss = self.value_loss(rollout, rows, ev.value, returns)
        entropy_loss = -masked_mean(ev.entropy, acted)
        loss, answer_loss = self.total_loss(rollout, ev, policy_loss, value_loss, entropy_loss)
        terms = (policy_loss.detach(), value_loss.detach(), -entropy_loss.detach(), answer_loss)
        return loss, terms
