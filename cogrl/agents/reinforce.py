"""REINFORCE: Monte-Carlo policy gradient (Williams 1992) with a baseline and an entropy bonus.

```python
agent = cogrl.agents.make("reinforce", "CartPole-v1", seed=0)
agent.learn(total_timesteps=200_000)
```

Each update runs one whole episode in each of ``num_envs`` environments (all restarted
together) and follows the likelihood-ratio gradient

``grad J = (1/N) sum_n sum_t grad log pi(a_t^n | s_t^n) (G_t^n - b_t^n)``

with the reward-to-go ``G_t`` and a baseline ``b_t``: a learned value ``V(s_t)``
(``baseline="learned"``), a running mean of returns (``"mean"``) or none. The loop is
:class:`~cogrl.agents.episodic.EpisodicAgent`'s; this file is REINFORCE's configuration
and policy (an :class:`~cogrl.nn.ActorCriticPolicy` of any action space).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cogrl.agents.base import Hyperparameters, register_agent
from cogrl.agents.episodic import EpisodicAgent, Objective
from cogrl.checks import check_bools, check_choice, check_int, check_number
from cogrl.nn import ActorCriticPolicy, PolicyConfig

__all__ = ["REINFORCE"]


@register_agent("reinforce")
class REINFORCE(EpisodicAgent):
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
        - ``factored_credit``, ``answer_coef``, ``mask_ignored_actions``: as PPO's (see
          :mod:`cogrl.agents.episodic`): a reward-to-go per part of the action, the
          revealed answer's likelihood (0: pure reinforcement), no credit at steps whose
          action the environment ignored.
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
        factored_credit: bool = False
        answer_coef: float = 0.0
        mask_ignored_actions: bool = True

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
            check_bools(self, "normalize_advantage", "factored_credit", "mask_ignored_actions")
            check_number("answer_coef", self.answer_coef)

    config: Config

    def _build_policy(self) -> ActorCriticPolicy:
        return ActorCriticPolicy(self.observation_space, self.action_space, self.config.policy)

    def _objective(self) -> Objective:
        c = self.config
        return Objective(
            num_envs=c.num_envs,
            gamma=c.gamma,
            baseline=c.baseline,
            normalize_advantage=c.normalize_advantage,
            ent_coef=c.ent_coef,
            policy_coef=1.0,
            value_coef=c.vf_coef,
            max_grad_norm=c.max_grad_norm,
            max_episode_steps=c.max_episode_steps,
            baseline_rate=c.baseline_rate,
            factored_credit=c.factored_credit,
            answer_coef=c.answer_coef,
            mask_ignored_actions=c.mask_ignored_actions,
        )
