"""RAM: the recurrent attention model (Mnih, Heess, Graves and Kavukcuoglu 2014).

A glimpse network, a recurrent core, a Gaussian location head, a classifier head and a
learned baseline (parts from :mod:`cogrl.nn`), trained on the glimpse tasks'
continuous action mode (``cogrl/GlimpseDigits-v0``, ``TranslatedDigits``, ``ClutteredDigits``):
each step the agent sends ``concat(l_t, 2 softmax(logits_t) - 1)``, the next location and
class scores (the environment reads the scores at the last step; same argmax as the logits).

Training is the paper's hybrid loss, one update per batch of ``num_envs`` whole episodes:
the classifier by cross-entropy on the true label, the locations by REINFORCE with the
episode's reward ``R`` (1 if the class was right) and a baseline ``b_t`` regressed on ``R``.
RAM is the whole-episode policy gradient of :class:`~cogrl.agents.episodic.EpisodicAgent`
(its episode batches, reward-to-go, learned baseline and update) with RAM's policy and the
classifier's supervised term.

```python
agent = cogrl.agents.make("ram", "cogrl/GlimpseDigits-v0", seed=0)
agent.learn(total_timesteps=1_000_000, progress_bar=True)
cogrl.agents.evaluate(agent, episodes=360, split="test")
```
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from gymnasium import spaces

from cogrl.agents.base import Hyperparameters, register_agent
from cogrl.agents.episodic import EpisodicAgent, Objective
from cogrl.agents.training import adam
from cogrl.checks import check_bools, check_choice, check_int, check_number
from cogrl.core import sync_free
from cogrl.nn import PolicyConfig, RAMPolicy
from cogrl.nn.distributions import categorical_log_prob

__all__ = ["RAM"]

LOCATION_SIZE = 2

#: What the locations' REINFORCE term is paid at an answer: 1 for a right label, 0 for a
#: wrong one (the environment's reward), or the classifier's log-likelihood of the label.
LOCATION_REWARDS = ("correct", "log_likelihood")


def ram_policy_config() -> PolicyConfig:
    """RAM's policy: the glimpse network (g of 128, h_g and h_l of 128), a GRU core of 128
    and a location std of 0.3 (see :class:`RAM.Config` for how these were chosen)."""
    return PolicyConfig(
        encoder="glimpse",
        hidden_sizes=[128],
        glimpse_hidden=128,
        location_hidden=128,
        core="gru",
        core_size=128,
        location_std=0.3,
    )


@register_agent("ram")
class RAM(EpisodicAgent):
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
        - ``policy``: a :class:`~cogrl.nn.PolicyConfig`: ``encoder="glimpse"``;
          ``hidden_sizes=[g]`` (the glimpse feature's width), ``glimpse_hidden``,
          ``location_hidden`` (``h_g``, ``h_l``); ``core`` (``"rnn"``, the paper's;
          ``"gru"``; ``"lstm"``; any registered core) of ``core_size``; ``location_std``,
          the std of the location policy's Gaussian (before tanh).
        - ``reinforce_coef``, ``baseline_coef``: weights of the REINFORCE and baseline terms.
        - ``answer_coef``: weight of the classifier's term, the true label's negative
          log-likelihood (answer supervision, which the paper's hybrid loss is: 1 by
          default; 0 leaves the classifier untrained, pure reinforcement of the
          locations with a classifier that does not learn).
        - ``max_grad_norm``: gradient clipping (``None`` for none).
        - ``detach_location``: whether the location head reads a detached ``h_t``. ``False``
          (the paper's): the REINFORCE term trains the glimpse network and the core too.
          ``True``: it trains the location head alone, and the glimpse network and core
          learn from the classifier's cross-entropy only, which has far less variance
          than the REINFORCE gradient (the choice of widely used public RAM code). On the
          full MNIST 28 x 28 it measured worse: 2.69% test error against 2.13% in 60
          minutes (BENCHMARKS.md, issue 21).
        - ``weight_decay``: AdamW's decoupled weight decay (0: plain Adam, the default). A
          regulariser for long runs on a fixed training set, where the classifier comes to
          know the training images better than the test images. On the full MNIST 28 x 28
          the 2.13% run (4,096 episodes a batch) is such a case (after 30 minutes: 1.10%
          train error, 2.69% test), but 0.5 did not close the gap: 2.35% test error, 0.46%
          train, in 60 minutes (BENCHMARKS.md, issue 21; shifted training images did).
        - ``location_reward``: what the locations are reinforced with at the answer.
          ``"correct"`` (the default, the papers' experiments): the environment's reward,
          1 for a right class. ``"log_likelihood"``: ``log p(y | l, x)``, the classifier's
          log-probability of the true class, which is the learning signal of the
          variational bound that Ba et al. (2015, section 3) derive for these models
          (``dF/dW = sum_l p(l) [d log p(y|l)/dW + log p(y|l) d log p(l)/dW]``; their
          experiments used the 0/1 reward instead). It is graded where 0/1 is flat: on
          MNIST addition, reading one of the two digits cannot make the sum's argmax
          right more often than guessing 9, but it does raise the sum's likelihood.
        """

        num_envs: int = 128
        learning_rate: float = 1e-3
        policy: PolicyConfig = field(default_factory=ram_policy_config)
        reinforce_coef: float = 1.0
        baseline_coef: float = 1.0
        max_grad_norm: float | None = 1.0
        answer_coef: float = 1.0
        detach_location: bool = False
        weight_decay: float = 0.0
        location_reward: str = "correct"

        def __post_init__(self) -> None:
            check_int("num_envs", self.num_envs)
            check_number("learning_rate", self.learning_rate, low_open=True)
            for name in ("reinforce_coef", "baseline_coef", "answer_coef"):
                check_number(name, getattr(self, name))
            if self.max_grad_norm is not None:
                check_number("max_grad_norm", self.max_grad_norm, low_open=True)
            check_bools(self, "detach_location")
            check_number("weight_decay", self.weight_decay)
            check_choice("location_reward", self.location_reward, LOCATION_REWARDS)

    config: Config
    # About a minute on two CPU cores; ~90% test accuracy on GlimpseDigits (BENCHMARKS.md).
    default_timesteps = 1_000_000

    def _build_policy(self) -> RAMPolicy:
        space = self.action_space
        if not (
            isinstance(space, spaces.Box)
            and len(space.shape) == 1
            and space.shape[0] > LOCATION_SIZE + 1
        ):
            raise ValueError(
                f"RAM needs a Box action (2 location values + class scores), got "
                f"{space} for {self.env_id}; use action_mode='continuous'"
            )
        self.n_classes = space.shape[0] - LOCATION_SIZE
        self.label_key = self.env_metadata.get("label_key")
        if self.label_key is None:
            raise ValueError(
                f"RAM learns its classifier from the true class, which {self.env_id} does not "
                "report: its metadata has no 'label_key' (the info key of the class)"
            )
        return RAMPolicy(self.observation_space, self.n_classes, LOCATION_SIZE, self.config.policy)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        return adam(self.policy.parameters(), lr=c.learning_rate, weight_decay=c.weight_decay)

    _checked_length = False

    def _objective(self) -> Objective:
        c = self.config
        # The reward comes at the end, so every step's reward-to-go is the episode's R
        # (gamma = 1); advantages are R - b_t, not standardised, as in the paper.
        return Objective(
            num_envs=c.num_envs,
            gamma=1.0,
            baseline="learned",
            normalize_advantage=False,
            ent_coef=0.0,
            policy_coef=c.reinforce_coef,
            value_coef=c.baseline_coef,
            max_grad_norm=c.max_grad_norm,
            max_episode_steps=10_000,
            baseline_rate=0.05,
        )

    # --- acting ------------------------------------------------------------------------------
    def _act(self, obs, state, episode_start, deterministic):
        h, state = self.policy(obs, state, episode_start)
        logits = self.policy.classifier(h)
        head = self.policy.location
        mean = head(h)
        u = head.mode(mean) if deterministic else head.sample(mean, self.generator)
        return torch.cat([head.to_env(u), self.policy.class_scores(logits)], dim=-1), state

    def env_action(self, action: torch.Tensor) -> torch.Tensor:
        return action  # _act already sends the squashed location and the class scores

    # The classifier learns from h_T of each episode, the location policy from every step:
    # RAM steps its policy with gradients (its glimpse tasks' episodes are a few steps).
    replay_episodes = False

    def _forward(self, obs, state):
        """The networks at one step: the next state, class logits, the location policy's
        mean and the baseline b_t (which sees a detached h_t). Compiled with ``compile``."""
        h, state = self.policy(obs, state)
        logits = self.policy.classifier(h)
        mean = self.policy.location(h.detach() if self.config.detach_location else h)
        return state, logits, mean, self.policy.baseline(h.detach())

    def _policy_step(self, obs, state):
        forward = self.compiled(self._forward, "RAM's step", cuda_graphs=False, pays_on_cpu=False)
        state, logits, mean, baseline = forward(obs, state)
        head = self.policy.location
        u = head.sample(mean, self.generator)  # l_t = tanh(u), u ~ N(mean, std)
        log_prob = head.log_prob(mean, u)
        action = torch.cat([head.to_env(u), self.policy.class_scores(logits.detach())], -1)
        # The location policy's std is fixed: its entropy is a constant, neither a bonus nor
        # worth a curve (train/location_std is logged).
        return action, log_prob, None, baseline, state, {"logits": logits}

    def _credited_steps(self, mask: torch.Tensor) -> torch.Tensor:
        # The location sent at the last step is never looked at, so only l_1 .. l_{T-1}
        # carry reward: credit the steps whose next step is in the same episode.
        return torch.cat([mask[1:], torch.zeros_like(mask[:1])]) * mask

    def _learning_rewards(self, rewards, extras, info):
        if self.config.location_reward == "correct":
            return rewards
        # The answer's reward becomes log p(y | l, x) (Ba et al. 2015's learning signal).
        logits, label = extras[-1]["logits"], info[self.label_key]
        return [*rewards[:-1], categorical_log_prob(logits.detach(), label)]

    def _supervised_loss(self, extras, info, mask):
        T = mask.shape[0]
        # Asked on the first update, and on every one where asking costs nothing (the CPU).
        if not (self._checked_length and sync_free(self.device)):
            self._checked_length = True
            if not bool((mask[-1] > 0).all()):
                lengths = mask.sum(0)
                raise RuntimeError(
                    f"RAM needs episodes of one fixed length; {self.env_id} ended episodes "
                    f"after {int(lengths.min())} to {T} steps"
                )
        # Classifier: L_a = CE(f_a(h_T), label), the supervised part (Mnih et al. 2014, 4).
        logits, label = extras[-1]["logits"], info[self.label_key]
        classifier_loss = F.cross_entropy(logits, label)
        accuracy = (logits.argmax(-1) == label).float().mean()
        return self.config.answer_coef * classifier_loss, {
            "train/classifier_loss": classifier_loss.detach(),
            "train/accuracy": accuracy,
            "train/location_std": self.policy.location.std,
        }
