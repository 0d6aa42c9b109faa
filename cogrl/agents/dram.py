"""DRAM: the deep recurrent attention model (Ba, Mnih and Kavukcuoglu 2015, "Multiple
Object Recognition with Visual Attention").

RAM reads one object; DRAM reads several in turn. Its networks (:class:`~cogrl.nn.DRAMPolicy`):
a glimpse network where "what" and "where" gate each other, two stacked LSTM layers (the
lower one recognises, the upper one steers), a context network that sets the upper
layer's first state from a coarse view of the whole canvas, an emission network for the
next location and a classification network.

The agent takes ``glimpses_per_object`` glimpses per object and then emits a label (the
classification network's argmax), object after object; on ``cogrl/MultiDigits-v0`` the
episode ends with the last label (for the sum target, one label after every digit's
glimpses). Training is the paper's hybrid objective, one update per batch of
``num_envs`` whole episodes:

- the classification network by the labels' log-likelihood (cross-entropy of each
  emission's logits with the true label at its position);
- the emission network by REINFORCE: the reward is 1 for each label emitted right, the
  return from each step on (``gamma = 1``) credits the locations before each label, and a
  baseline ``b_n`` regressed on that return reduces the variance.

DRAM is :class:`~cogrl.agents.ram.RAM`'s update (REINFORCE with a learned baseline plus
the supervised term) with DRAM's networks and per-object emissions. ``context_network=False,
layers=1`` gives the paper's RAM baseline on sequences.

```python
agent = cogrl.agents.make("dram", "cogrl/MultiDigits-v0", seed=0)
agent.learn(total_timesteps=3_000_000, progress_bar=True)
cogrl.agents.evaluate(agent, episodes=1000, split="test")
```

It also runs on the one-digit glimpse tasks (``cogrl/GlimpseDigits-v0`` ...), where it
answers at the episode's last step as RAM does.

On visual search (``cogrl/VisualSearch-v0``: find the digit of a cued class among
distractors, action ``(x, y, declare)``) the policy takes the ``target`` cue (into ``r2_0``
and as a gain on the glimpse feature, :class:`~cogrl.nn.DRAMPolicy`) and acts on the same
fixed schedule as for one object: ``glimpses_per_object`` saccades, then "found" declared
at the emission network's next location, so an episode takes ``glimpses_per_object + 1``
steps. There is no label to emit, so no classification term: every location, the
declared one included, learns by REINFORCE from the environment's reward (1 for a
declaration on the target, minus the cost of each saccade) with the learned baseline.

```python
agent = cogrl.agents.make("dram", "cogrl/VisualSearch-v0", seed=0)
agent.learn(total_timesteps=1_000_000)
cogrl.agents.evaluate(agent, episodes=1000, split="test")  # accuracy: targets found
```
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from gymnasium import spaces

from cogrl.agents.base import Hyperparameters, register_agent
from cogrl.agents.episodic import Objective
from cogrl.agents.ram import LOCATION_REWARDS, RAM
from cogrl.checks import check_bools, check_choice, check_int, check_number
from cogrl.core import sync_free
from cogrl.nn import DRAMPolicy
from cogrl.nn.distributions import categorical_log_prob
from cogrl.nn.encoders import GLIMPSE_IMAGES

__all__ = ["DRAM"]


@register_agent("dram")
class DRAM(RAM):
    """Deep recurrent attention model: locations by REINFORCE, labels by log-likelihood.

    A label is emitted after each object's glimpses (on a search task: a declaration after
    the saccades).

    Works on environments with a ``Box(-1, 1, (2 + K + 2,))`` action (location; scores of
    K labels, "nothing" and end-of-sequence), as ``cogrl/MultiDigits-v0`` in its continuous
    mode, the glimpse tasks' ``Box(-1, 1, (2 + K,))`` (location; class scores read at the
    end), or a search task's ``Box(-1, 1, (3,))`` (location; declare "found" when > 0) with
    a ``target`` cue in the observation, as ``cogrl/VisualSearch-v0``.
    """

    @dataclass
    class Config(Hyperparameters):
        """DRAM's hyperparameters.

        - ``num_envs``: episodes per update; ``learning_rate``: Adam's step size.
        - ``glimpses_per_object``: glimpses before each label (the episode takes
          ``glimpses_per_object * n_digits`` steps; the glimpse tasks use their own
          ``n_glimpses``); on a search task, the saccades before the declaration (the
          episode takes ``glimpses_per_object + 1`` steps).
        - ``hidden_size``: the LSTM layers' width (and the glimpse feature's);
          ``glimpse_hidden``, ``location_hidden``: ``G_image`` and ``G_loc``'s first layers.
        - ``glimpse_image``: ``G_image`` as one fully connected layer (``"fc"``, RAM's) or
          three convolutions on the retina's patches and a fully connected layer
          (``"conv"``, the paper's; :class:`~cogrl.nn.GlimpseNetwork`); ``"conv"`` needs
          a task with a retina (its patches' number and side).
        - ``location_std``: the emission network's Gaussian std (before tanh).
        - ``layers``: 2 (DRAM) or 1 (RAM's single core); ``context_network``: whether the
          context network sets the first state (it needs the ``context`` observation:
          the environment's ``context_size`` is set to a quarter of the canvas unless
          given).
        - ``reinforce_coef``, ``baseline_coef``, ``answer_coef``, ``max_grad_norm``,
          ``weight_decay``: as RAM's (``answer_coef`` weighs the labels' log-likelihood).
        - ``location_reward``: as RAM's: ``"correct"`` (1 for each right label, the
          paper's experiments) or ``"log_likelihood"`` (each emission's ``log p(y_i |
          l, x)``, the learning signal of the paper's variational bound, section 3); not
          on a search task, which has no label.

        The widths and the location std are RAM's defaults (128 and 0.3, measured on the
        glimpse tasks: see :class:`~cogrl.agents.ram.RAM.Config`), not the paper's 512-unit
        LSTMs: on a CPU the narrower model sees more images in the same time.

        There is no ``policy`` (:class:`~cogrl.nn.PolicyConfig`) field: DRAM's networks
        are the paper's fixed architecture (:class:`~cogrl.nn.DRAMPolicy`: two stacked
        LSTMs gated by the glimpse, a context network, emission and classification
        networks), not an encoder, core and heads composed by name; the fields above are
        its only choices.
        """

        num_envs: int = 128
        learning_rate: float = 1e-3
        glimpses_per_object: int = 3
        hidden_size: int = 128
        glimpse_hidden: int = 128
        location_hidden: int = 128
        glimpse_image: str = "fc"
        location_std: float = 0.3
        layers: int = 2
        context_network: bool = True
        reinforce_coef: float = 1.0
        baseline_coef: float = 1.0
        max_grad_norm: float | None = 1.0
        answer_coef: float = 1.0
        weight_decay: float = 0.0
        location_reward: str = "correct"

        def __post_init__(self) -> None:
            for name in (
                "num_envs",
                "glimpses_per_object",
                "hidden_size",
                "glimpse_hidden",
                "location_hidden",
            ):
                check_int(name, getattr(self, name))
            check_number("learning_rate", self.learning_rate, low_open=True)
            check_number("location_std", self.location_std, low_open=True)
            if self.layers not in (1, 2):
                raise ValueError(f"layers must be 1 or 2, got {self.layers!r}")
            check_bools(self, "context_network")
            for name in ("reinforce_coef", "baseline_coef", "answer_coef", "weight_decay"):
                check_number(name, getattr(self, name))
            if self.max_grad_norm is not None:
                check_number("max_grad_norm", self.max_grad_norm, low_open=True)
            check_choice("location_reward", self.location_reward, LOCATION_REWARDS)
            check_choice("glimpse_image", self.glimpse_image, GLIMPSE_IMAGES)

    config: Config
    # MNIST pairs: 3M steps (500k canvases) take about 6 minutes on one CPU thread; the
    # benchmark's cell reached 22.1% sequence error at 3.1M steps and 17.3% at 4.9M
    # (BENCHMARKS.md, "Attention on real MNIST").
    default_timesteps = 3_000_000

    def _probe_spaces(self) -> None:
        probe = self.make_core(1)
        retina = getattr(probe, "retina", None)
        self.patches = None if retina is None else (retina.k, retina.g)
        if self.config.glimpse_image == "conv" and self.patches is None:
            raise ValueError(
                f"glimpse_image='conv' convolves the retina's patches, and {self.env_id} has no "
                "retina: use glimpse_image='fc'"
            )
        if (
            self.config.context_network
            and "context_size" not in self.env_kwargs
            and hasattr(probe, "context_size")
        ):
            # The context network's coarse view: a quarter of the canvas side.
            self.env_kwargs["context_size"] = max(1, probe.canvas_size // 4)
            probe.close()
            probe = self.make_core(1)
        space = probe.single_action_space
        cue = DRAMPolicy.CUE_KEY in getattr(probe.single_observation_space, "spaces", {})
        # Search: (x, y, declare) and a cue of what to find; the answer is a location.
        self.searches = cue and isinstance(space, spaces.Box) and space.shape == (3,)
        if self.searches:
            if self.config.location_reward != "correct":
                raise ValueError(
                    f"location_reward={self.config.location_reward!r} scores labels, and a "
                    f"search task ({self.env_id}) has none: use location_reward='correct'"
                )
            self.n_classes, self.n_answers, self.emits = None, 0, False
            # glimpses_per_object saccades, then the declaration.
            self.episode_length = self.config.glimpses_per_object + 1
            limit = getattr(probe, "n_glimpses", getattr(probe, "max_episode_steps", None))
            if limit is not None and limit < self.episode_length:
                raise ValueError(
                    f"glimpses_per_object={self.config.glimpses_per_object} saccades and a "
                    f"declaration need episodes of {self.episode_length} steps, but "
                    f"{self.env_id} truncates them at n_glimpses={limit}; raise "
                    "n_glimpses or lower glimpses_per_object"
                )
            self.steps_per_answer = self.episode_length
            probe.close()
            super()._probe_spaces()
            return
        self.n_classes = getattr(probe, "n_classes", None)
        self.n_answers = getattr(probe, "n_answers", 1)
        # Location and K class scores (glimpse tasks), or also "nothing" and end-of-sequence.
        widths = () if self.n_classes is None else (2 + self.n_classes, 2 + self.n_classes + 2)
        if not isinstance(space, spaces.Box) or space.shape[0] not in widths:
            raise ValueError(
                f"DRAM needs a glimpse task's continuous action (location and label scores, "
                f"or a search task's location and declare with a {DRAMPolicy.CUE_KEY!r} cue), "
                f"got {space} for {self.env_id}; use action_mode='continuous'"
            )
        # Multi-object tasks score "nothing" and end-of-sequence after the K labels.
        self.emits = space.shape[0] == 2 + self.n_classes + 2
        if self.emits:
            n_objects = getattr(probe, "n_digits", self.n_answers)
            self.episode_length = self.config.glimpses_per_object * n_objects
            if probe.n_glimpses < self.episode_length:
                raise ValueError(
                    f"glimpses_per_object={self.config.glimpses_per_object} needs episodes of "
                    f"{self.episode_length} steps for {n_objects} objects, but {self.env_id} "
                    f"truncates them at n_glimpses={probe.n_glimpses}; raise n_glimpses"
                )
        else:
            self.episode_length = int(probe.max_episode_steps)
        # A label is emitted at the last step of each answer's share of the glimpses.
        self.steps_per_answer = self.episode_length // self.n_answers
        probe.close()
        super()._probe_spaces()

    def _build_policy(self) -> DRAMPolicy:
        self.label_key = self.env_metadata.get("label_key")
        if self.label_key is None and not self.searches:
            raise ValueError(
                f"DRAM learns its classifier from the true labels, which {self.env_id} does "
                "not report: its metadata has no 'label_key'"
            )
        c = self.config
        return DRAMPolicy(
            self.observation_space,
            self.n_classes,
            hidden_size=c.hidden_size,
            glimpse_hidden=c.glimpse_hidden,
            location_hidden=c.location_hidden,
            location_std=c.location_std,
            layers=c.layers,
            context_network=c.context_network,
            glimpse_image=c.glimpse_image,
            patches=self.patches,
        )

    def _objective(self) -> Objective:
        return super()._objective()._replace(max_episode_steps=self.episode_length)

    def _episode_length_bound(self, env, max_steps: int) -> int:
        return self.episode_length

    # --- acting ------------------------------------------------------------------------------
    def _scores(self, logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The action's scores at step ``t`` (B,), counted from 1: the labels' at each
        answer's last step, "nothing" at the others (multi-object tasks)."""
        scores = self.policy.class_scores(logits)
        if not self.emits:
            return scores
        emit = (t % self.steps_per_answer == 0)[:, None]
        quiet = torch.full_like(scores[:, :1], -1.0)
        emitting = torch.cat([scores, quiet, quiet], 1)
        looking = torch.cat([torch.full_like(scores, -1.0), -quiet, quiet], 1)
        return torch.where(emit, emitting, looking)

    def _declare(self, t: torch.Tensor) -> torch.Tensor:
        """The search action's declare value (B, 1) at step ``t`` (B,), counted from 1: +1
        ("found", at the location sent with it) from the step after the
        ``glimpses_per_object`` saccades on, -1 (saccade) before."""
        return torch.where(t >= self.episode_length, 1.0, -1.0)[:, None]

    def _act(self, obs, state, episode_start, deterministic):
        h1, h2, state = self.policy(obs, state, episode_start)
        head = self.policy.location
        mean = head(h2)
        u = head.mode(mean) if deterministic else head.sample(mean, self.generator)
        if self.searches:
            answer = self._declare(state[-1])
        else:
            answer = self._scores(self.policy.classifier(h1), state[-1])
        return torch.cat([head.to_env(u), answer], dim=-1), state

    def _forward(self, obs, state):
        """The networks at one step: the next state, the emission network's mean, the
        baseline (on a detached r2) and, when recognising, the class logits. Compiled with
        ``compile``."""
        h1, h2, state = self.policy(obs, state)
        logits = None if self.searches else self.policy.classifier(h1)
        return state, self.policy.location(h2), self.policy.baseline(h2.detach()), logits

    def _policy_step(self, obs, state):
        state, mean, baseline, logits = self.compiled(
            self._forward, "DRAM's step", cuda_graphs=False, pays_on_cpu=False
        )(obs, state)
        head = self.policy.location
        u = head.sample(mean, self.generator)
        log_prob = head.log_prob(mean, u)
        if self.searches:
            action = torch.cat([head.to_env(u), self._declare(state[-1])], -1)
            return action, log_prob, None, baseline, state, {}
        action = torch.cat([head.to_env(u), self._scores(logits.detach(), state[-1])], -1)
        return action, log_prob, None, baseline, state, {"logits": logits}

    def _credited_steps(self, mask: torch.Tensor) -> torch.Tensor:
        # Search: the declared location is the one the reward judges, so every location,
        # the last included, is credited. Recognition: the last one is never looked at.
        return mask if self.searches else super()._credited_steps(mask)

    def _emission_steps(self, T: int) -> range:
        """The steps (0-based) at which the labels are emitted, in an episode of ``T``."""
        return range(self.steps_per_answer - 1, T, self.steps_per_answer)

    def _answers(self, extras, info) -> tuple[torch.Tensor, torch.Tensor]:
        """The class logits at the emission steps (N, answers, K) and the labels due
        there (N, answers)."""
        steps = self._emission_steps(len(extras))
        logits = torch.stack([extras[s]["logits"] for s in steps], 1)
        return logits, info[self.label_key].view(logits.shape[0], -1)

    def _learning_rewards(self, rewards, extras, info):
        if self.config.location_reward == "correct" or self.searches:
            return rewards
        # Each emission's reward becomes log p(y_i | l, x) (the paper's section 3), detached:
        # a reward, not a term to differentiate.
        logits, label = self._answers(extras, info)
        log_p = categorical_log_prob(logits.detach(), label)  # (N, answers)
        rewards = list(rewards)
        for i, s in enumerate(self._emission_steps(len(rewards))):
            rewards[s] = log_p[:, i]
        return rewards

    def _supervised_loss(self, extras, info, mask):
        T = mask.shape[0]
        if not (self._checked_length and sync_free(self.device)):
            self._checked_length = True
            if T != self.episode_length or not bool((mask[-1] > 0).all()):
                lengths = mask.sum(0)
                raise RuntimeError(
                    f"DRAM emits after fixed numbers of glimpses and needs episodes of "
                    f"{self.episode_length} steps; {self.env_id} ended episodes after "
                    f"{int(lengths.min())} to {T} steps"
                )
        if self.searches:
            # No label to learn: the locations' REINFORCE term is the whole objective.
            return torch.zeros((), device=self.device), {
                "train/location_std": self.policy.location.std
            }
        # Classification: the log-likelihood of each label at its emission step.
        logits, label = self._answers(extras, info)
        classifier_loss = F.cross_entropy(logits.flatten(0, 1), label.flatten())
        right = logits.argmax(-1) == label
        return self.config.answer_coef * classifier_loss, {
            "train/classifier_loss": classifier_loss.detach(),
            "train/label_accuracy": right.float().mean(),
            "train/accuracy": right.all(1).float().mean(),
            "train/location_std": self.policy.location.std,
        }
