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
from typing import NamedTuple

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
            # Flattened (T * N, ...): per part (T * N, K) with factored credit.
            flat = Flat(
                rollout.advantages.flatten(0, 1),
                rollout.returns.flatten(0, 1),
                rollout.log_probs.flatten(0, 1),
                rollout.values.flatten(0, 1),
            )
            # Logged: the losses, entropy and clip fraction as means over the update's
            # minibatches; approx_kl and grad_norm as the last minibatch's (approx_kl is
            # what target_kl judges after each epoch).
            clip_fractions, approx_kl = [], torch.zeros(())
            # Recurrent minibatches are segments of varying lengths, which the fused cores
            # take as host values: they run eagerly (their rollout step is compiled).
            minibatch_loss = self._minibatch_loss
            update = None
            if not self.policy.recurrent:
                # On the CPU the whole minibatch step compiles as one function; elsewhere
                # the loss does, and the optimiser steps eagerly.
                update = self.fused_update(
                    minibatch_loss, "PPO's minibatch update", c.max_grad_norm
                )
                if update is None:
                    minibatch_loss = self.compiled(minibatch_loss, "PPO's minibatch loss")
            losses, policy_losses, value_losses, entropies, answer_losses = [], [], [], [], []
            for _epoch in range(c.n_epochs):
                indices = self.minibatches(rollout, c.batch_size)
                if update is not None:
                    steps = []
                    for first in range(0, len(indices), STEPS_PER_CALL):
                        group = indices[first : first + STEPS_PER_CALL]
                        steps += update(*((rollout, index, flat) for index in group))
                else:
                    steps = []
                    for index in indices:
                        loss, terms = minibatch_loss(rollout, index, flat)
                        norm = gradient_step(self.optimizer, loss, c.max_grad_norm)
                        steps.append((loss, terms, norm))
                for loss, terms, norm in steps:
                    self.guard.after_update(self.num_timesteps + N * T, loss, norm)
                    losses.append(loss.detach())
                    policy_loss, value_loss, entropy, answer_loss, approx_kl, clipped = terms
                    policy_losses.append(policy_loss)
                    value_losses.append(value_loss)
                    entropies.append(entropy)
                    clip_fractions.append(clipped)
                    if answer_loss is not None:
                        answer_losses.append(answer_loss)
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
                "train/explained_variance": explained_variance(
                    rollout.own(rollout.values), rollout.own(rollout.returns)
                ),
                "train/grad_norm": norm,
                "train/learning_rate": self.optimizer.param_groups[0]["lr"],
            }
            if answer_losses:
                stats["train/answer_loss"] = torch.stack(answer_losses).mean()
            keep_going = progress.update(N * T, stats)

    def _minibatch_loss(
        self, rollout: Rollout, index: torch.Tensor, flat: Flat
    ) -> tuple[torch.Tensor, tuple]:
        """PPO's loss on the minibatch ``index`` of ``rollout`` and its logged terms
        (detached): policy loss, value loss, entropy, answer loss (None without answers),
        approximate KL and clip fraction. Compiled with the agent's ``compile``."""
        c = self.config
        ev = self.evaluate_actions(rollout, index)
        rows, value = ev.rows, ev.value
        # Steps whose action the environment ignored get no policy gradient.
        acted = self.acted_weights(rollout, rows)
        adv = flat.advantages[rows]
        if c.normalize_advantage:
            weights = None if acted is None else per_part(acted, adv).expand_as(adv)
            adv = standardize(adv, weights)
        # Clipped surrogate: L = E[min(rho A, clip(rho, 1-eps, 1+eps) A)],
        # rho = pi(a|s) / pi_old(a|s); with factored credit one rho and one A per
        # part, the clipped terms summed over the parts.
        log_ratio = ev.log_prob - flat.log_probs[rows]
        ratio = log_ratio.exp()
        surrogate = torch.min(ratio * adv, ratio.clamp(1 - c.clip_range, 1 + c.clip_range) * adv)
        if self.parts:
            surrogate = surrogate.sum(-1)
        policy_loss = -masked_mean(surrogate, acted)
        if c.clip_range_vf is not None:
            old = flat.values[rows]
            value = old + (value - old).clamp(-c.clip_range_vf, c.clip_range_vf)
        value_loss = self.value_loss(rollout, rows, value, flat.returns[rows])
        entropy_loss = -masked_mean(ev.entropy, acted)
        loss, answer_loss = self.total_loss(rollout, ev, policy_loss, value_loss, entropy_loss)
        with torch.no_grad():
            # KL(old || new) ~ E[(rho - 1) - log rho] (Schulman's estimator), summed over
            # the parts: the KL of the whole action.
            kl = (ratio - 1) - log_ratio
            approx_kl = masked_mean(kl.sum(-1) if self.parts else kl, acted)
            clipped = ((ratio - 1).abs() > c.clip_range).float()
            clip_fraction = masked_mean(clipped.mean(-1) if self.parts else clipped, acted)
        terms = (policy_loss.detach(), value_loss.detach(), -entropy_loss.detach())
        return loss, (*terms, answer_loss, approx_kl, clip_fraction)


# Minibatches per call of the fused update (compile=True on the CPU): each call's fixed
# cost (guards, wrappers) is shared by two. On CartPole 5% more steps/s than one on a
# lightly loaded machine, 22% on a busy one (benchmarks/compile_ablation.py); more would
# grow the compiled graph, and its compiling time, further.
STEPS_PER_CALL = 2


class Flat(NamedTuple):
    """A rollout's advantages, returns, log-probabilities and values, (T * N, ...)."""

    advantages: torch.Tensor
    returns: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
