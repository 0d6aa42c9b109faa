"""PPO: proximal policy optimization with the clipped objective (Schulman et al. 2017).

```python
agent = cogrl.agents.make("ppo", "CartPole-v1", seed=0)
agent.learn(total_timesteps=100_000)
```

Each update collects a rollout (``num_envs * n_steps`` transitions, advantages by GAE; see
:mod:`cogrl.agents.on_policy`) and takes ``n_epochs`` passes over it in minibatches of
``batch_size`` transitions. Recurrent policies (``core="gru"``/``"lstm"``) are trained on
the rollout's segments between episode starts, about ``batch_size`` transitions of them
per minibatch, each replayed from the state it began with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cogrl.agents.base import register_agent
from cogrl.agents.on_policy import OnPolicyAgent, OnPolicyConfig, explained_variance
from cogrl.agents.training import Progress, gradient_step, standardize
from cogrl.checks import check_int, check_number

__all__ = ["PPO"]


@register_agent("ppo")
class PPO(OnPolicyAgent):
    """Proximal policy optimization, feedforward or recurrent, on any action space."""

    @dataclass
    class Config(OnPolicyConfig):
        """PPO's hyperparameters (see :class:`~cogrl.agents.on_policy.OnPolicyConfig`), plus:

        - ``n_epochs``: passes over each rollout; ``batch_size``: transitions per minibatch.
        - ``clip_range``: epsilon of ``min(rho A, clip(rho, 1 - eps, 1 + eps) A)``.
        - ``clip_range_vf``: clip the value change to this range (``None``: no clipping).
        - ``target_kl``: stop an update's epochs early once the approximate KL passes this.
        """

        n_steps: int = 128
        n_epochs: int = 4
        batch_size: int = 256
        clip_range: float = 0.2
        clip_range_vf: float | None = None
        target_kl: float | None = None

        def __post_init__(self) -> None:
            super().__post_init__()
            check_int("n_epochs", self.n_epochs)
            check_int("batch_size", self.batch_size)
            check_number("clip_range", self.clip_range, low_open=True)
            if self.clip_range_vf is not None:
                check_number("clip_range_vf", self.clip_range_vf, low_open=True)
            if self.target_kl is not None:
                check_number("target_kl", self.target_kl, low_open=True)
            if self.batch_size > self.num_envs * self.n_steps:
                raise ValueError(
                    f"batch_size {self.batch_size} is larger than a rollout "
                    f"(num_envs * n_steps = {self.num_envs * self.n_steps})"
                )

    config: Config

    def _learn(self, progress: Progress) -> None:
        c = self.config
        self._start()
        N, T = c.num_envs, c.n_steps
        keep_going = progress.remaining > 0
        while keep_going:
            if c.anneal_lr:
                progress.anneal(self.optimizer, c.learning_rate)
            rollout = self.collect_rollout()
            flat_adv = rollout.advantages.flatten()
            flat_ret = rollout.returns.flatten()
            flat_logp = rollout.log_probs.flatten()
            flat_val = rollout.values.flatten()
            # Logged: the losses, entropy and clip fraction as means over the update's
            # minibatches; approx_kl and grad_norm as the last minibatch's (approx_kl is
            # what target_kl judges after each epoch).
            clip_fractions, approx_kl = [], torch.zeros(())
            losses, policy_losses, value_losses, entropies = [], [], [], []
            for _epoch in range(c.n_epochs):
                for index in self.minibatches(rollout, c.batch_size):
                    new_logp, entropy, value, rows = self.evaluate_actions(rollout, index)
                    adv = flat_adv[rows]
                    if c.normalize_advantage:
                        adv = standardize(adv)
                    # Clipped surrogate: L = E[min(rho A, clip(rho, 1-eps, 1+eps) A)],
                    # rho = pi(a|s) / pi_old(a|s).
                    log_ratio = new_logp - flat_logp[rows]
                    ratio = log_ratio.exp()
                    policy_loss = -torch.min(
                        ratio * adv, ratio.clamp(1 - c.clip_range, 1 + c.clip_range) * adv
                    ).mean()
                    if c.clip_range_vf is not None:
                        old = flat_val[rows]
                        value = old + (value - old).clamp(-c.clip_range_vf, c.clip_range_vf)
                    value_loss = F.mse_loss(value, flat_ret[rows])
                    entropy_loss = -entropy.mean()
                    loss = policy_loss + c.vf_coef * value_loss + c.ent_coef * entropy_loss

                    norm = gradient_step(self.optimizer, loss, c.max_grad_norm)
                    self.guard.after_update(self.num_timesteps + N * T, loss, norm)
                    with torch.no_grad():
                        # KL(old || new) ~ E[(rho - 1) - log rho] (Schulman's estimator).
                        approx_kl = ((ratio - 1) - log_ratio).mean()
                        clip_fractions.append(((ratio - 1).abs() > c.clip_range).float().mean())
                        losses.append(loss.detach())
                        policy_losses.append(policy_loss.detach())
                        value_losses.append(value_loss.detach())
                        entropies.append(-entropy_loss.detach())
                if c.target_kl is not None and float(approx_kl) > c.target_kl:
                    break
            policy_losses, value_losses = torch.stack(policy_losses), torch.stack(value_losses)
            entropies = torch.stack(entropies)
            stats = {
                "train/loss": torch.stack(losses).mean(),
                "train/policy_loss": policy_losses.mean(),
                "train/value_loss": value_losses.mean(),
                "train/entropy": entropies.mean(),
                "train/approx_kl": approx_kl,
                "train/clip_fraction": torch.stack(clip_fractions).mean(),
                "train/explained_variance": explained_variance(flat_val, flat_ret),
                "train/grad_norm": norm,
                "train/learning_rate": self.optimizer.param_groups[0]["lr"],
            }
            keep_going = progress.update(N * T, stats)
