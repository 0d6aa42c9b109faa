"""The whole-image baselines as an agent: a supervised classifier that answers at once.

Any model of :mod:`cogrl.baselines` (``model``: ``"fc"`` and ``"cnn"``, the RAM paper's
fully connected and convolutional baselines; ``"stn"``, a spatial transformer; ``"soft"``,
soft attention over a CNN grid) learns by cross-entropy on the whole canvas, so that the
hard-attention agents and the baselines they are measured against train, log, checkpoint
and evaluate the same way, from the command line or Python::

    cogrl train --env cogrl/ClutteredDigits-v0 --agent classifier --set model=stn

    agent = cogrl.agents.make("classifier", "cogrl/ClutteredDigits-v0", model="soft")
    agent.learn(total_timesteps=100_000)
    cogrl.agents.evaluate(agent, episodes=1000, split="test")

What it needs from the task, which the glimpse tasks (``cogrl/GlimpseDigits-v0``,
``TranslatedDigits``, ``ClutteredDigits``) and the multi-digit task offer:

- the observation ``context`` at full size: the canvas itself. Built from an id, the agent
  sets the task's ``context_size`` to its ``canvas_size`` (unless ``env_kwargs`` set it);
  an environment given made, or a ``context_size`` set smaller, is an error.
- ``n_classes`` and ``n_answers`` (the labels an episode asks for: 1, or one per object in
  reading order), which size the model's output;
- ``answer(labels)``, the actions that name ``labels`` at once in either action mode, and
  ``metadata["label_key"]``, the info key of the true labels at an episode's end, (M,) or
  (M, n_answers).

Acting: the model reads the canvas of the episode's first observation and its step ``i``
sends ``answer`` of its label ``i`` (the last one after that): the recurrent state counts
the steps. Predictions are the argmax (``deterministic=False`` samples the softmax).

Learning, one update per batch of ``num_envs`` episodes: reset the training core, classify
the canvases, step the episodes to their end with the model's answers (in the discrete
action mode the first answer ends them; in the continuous mode they last ``n_glimpses``
steps), read the true labels at each episode's end, and take an Adam step on the
cross-entropy ``L = -(1/(N A)) sum_n sum_i log p(y_ni | x_n)`` over the N canvases' A
labels. Timesteps are environment steps (Stable-Baselines3's count), so with the glimpse
tasks one image costs one step in the discrete mode and ``n_glimpses`` in the continuous.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F
from gymnasium import spaces

from cogrl.agents.base import Agent, Hyperparameters, register_agent
from cogrl.agents.training import Progress, gradient_step
from cogrl.baselines import MODELS, WholeImageModel, make_model
from cogrl.checks import check_choice, check_int, check_number
from cogrl.core import BatchedEnv, sync_free

__all__ = ["Classifier"]

#: What the agent asks of a task's core beyond a BatchedEnv's (see the module docstring).
TASK_ATTRIBUTES = ("canvas_size", "n_classes", "n_answers", "answer")


@register_agent("classifier")
class Classifier(Agent):
    """A whole-image model of :mod:`cogrl.baselines` trained by cross-entropy, answering at once."""

    @dataclass
    class Config(Hyperparameters):
        """The classifier's hyperparameters.

        - ``model``: ``"fc"`` (two rectified layers of 256), ``"cnn"`` (the RAM paper's
          convolutional baseline), ``"stn"`` (spatial transformer) or ``"soft"`` (soft
          attention over a CNN grid); see :mod:`cogrl.baselines`.
        - ``model_kwargs``: the model's own options (command line: ``--set
          model_kwargs.NAME=VALUE``): ``fc``: ``hidden_sizes``; ``stn``: ``out_size``,
          ``loc_size``, ``init_scale``, ``channels``, ``hidden_size``; ``soft``:
          ``n_steps`` (per object), ``channels``, ``hidden_size``, ``attention_size``,
          ``cell``, ``coordinates``. The task sets the canvas size, the classes and the
          number of objects.
        - ``num_envs``: episodes (canvases) per update.
        - ``learning_rate``: Adam's step size; ``max_grad_norm``: gradient clipping
          (``None`` for none).
        """

        model: str = "cnn"
        model_kwargs: dict[str, Any] = field(default_factory=dict)
        num_envs: int = 128
        learning_rate: float = 1e-3
        max_grad_norm: float | None = None

        def __post_init__(self) -> None:
            check_choice("model", self.model, MODELS)
            if not isinstance(self.model_kwargs, Mapping):
                raise ValueError(
                    f"model_kwargs must be a dict of the model's options, got {self.model_kwargs!r}"
                )
            check_int("num_envs", self.num_envs)
            check_number("learning_rate", self.learning_rate, low_open=True)
            if self.max_grad_norm is not None:
                check_number("max_grad_norm", self.max_grad_norm, low_open=True)

    config: Config
    model: WholeImageModel
    # One step per image in the discrete mode: 100k images of the glimpse tasks.
    default_timesteps = 100_000

    def __init__(
        self,
        env: str | gym.Env | BatchedEnv,
        device: str | torch.device = "auto",
        seed: int | None = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        **hyperparameters: Any,
    ) -> None:
        # Given an id, the agent sets the context to the whole canvas (see _probe_spaces).
        self._sets_context = isinstance(env, str)
        super().__init__(env, device, seed, env_kwargs, **hyperparameters)

    def _probe_spaces(self) -> None:
        if self._sets_context and "context_size" not in self.env_kwargs:
            probe = self.make_core(1)
            self._check_task(probe)
            self.env_kwargs["context_size"] = int(probe.canvas_size)  # the whole canvas
            probe.close()
        super()._probe_spaces()

    def _build_policy(self) -> WholeImageModel:
        # A core of one environment kept to turn labels into its actions when acting
        # (``answer`` depends on the action mode, not on the episodes).
        self.task = self.make_core(1)
        self._check_task(self.task)
        self._check_context()
        self.canvas_size = int(self.task.canvas_size)
        self.n_classes, self.n_answers = int(self.task.n_classes), int(self.task.n_answers)
        self.label_key = self.env_metadata.get("label_key")
        if self.label_key is None:
            raise ValueError(
                f"the classifier learns from the true labels, which {self.env_id} does not "
                "report: its metadata has no 'label_key' (the info key of the labels)"
            )
        c = self.config
        return make_model(
            c.model, self.canvas_size, self.n_classes, self.n_answers, **c.model_kwargs
        )

    def _setup(self) -> None:
        self.model = self.policy  # the whole-image model is the policy the agent acts with
        # Steps an update runs on the sync-free path (measured on the first update).
        self._episode_steps: int | None = None

    def _check_task(self, core: BatchedEnv) -> None:
        missing = [name for name in TASK_ATTRIBUTES if not hasattr(core, name)]
        if getattr(core, "max_episode_steps", None) is None:
            missing.append("max_episode_steps")  # episodes it answers must end
        if missing:
            raise ValueError(
                f"the classifier needs a whole-image recognition task (a core with "
                f"{list(TASK_ATTRIBUTES)} and a max_episode_steps, such as "
                f"cogrl/GlimpseDigits-v0); {self.env_id}'s core {type(core).__name__} has "
                f"no {missing}"
            )

    def _check_context(self) -> None:
        c = self.task.canvas_size
        space = self.observation_space
        context = space.spaces.get("context") if isinstance(space, spaces.Dict) else None
        if context is None or tuple(context.shape) != (c * c,):
            got = "no context" if context is None else f"a context of shape {context.shape}"
            raise ValueError(
                f"the classifier reads the whole canvas from the observation 'context' at "
                f"full size ({c * c} values: context_size={c}), but {self.env_id} with "
                f"{self.env_kwargs} gives {got}; make it with context_size={c}, or pass the "
                "id and the agent sets it"
            )

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model}

    def initial_state(self, n: int) -> torch.Tensor:
        """The recurrent state: the step of each episode (n,), which answer to send."""
        return torch.zeros(n, dtype=torch.int64, device=self.device)

    # --- acting ------------------------------------------------------------------------------
    def _logits(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The model's logits (B, n_answers, n_classes) of the observations' canvases."""
        c = self.canvas_size
        canvases = obs["context"].view(-1, 1, c, c)
        return self.model(canvases).view(-1, self.n_answers, self.n_classes)

    def _act(self, obs, state, episode_start, deterministic):
        logits = self._logits(obs)
        if deterministic:
            labels = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.flatten(0, 1), -1)
            labels = torch.multinomial(probs, 1, generator=self.generator).view(logits.shape[:2])
        step = state if episode_start is None else torch.where(episode_start, 0, state)
        i = step.clamp(max=self.n_answers - 1)  # answer i at step i; the last one after
        label = labels.gather(1, i[:, None]).squeeze(1)
        return self.task.answer(label), step + 1

    # --- checkpoints -------------------------------------------------------------------------
    def _loop_state(self, include_replay: bool) -> dict[str, Any]:
        # Every update starts N new episodes together: only the environments matter.
        return {"started": self._env is not None, "episode_steps": self._episode_steps}

    def _load_loop_state(self, loop, env) -> None:
        if not loop:
            return
        self._episode_steps = loop["episode_steps"]
        if loop["started"]:
            self._restore_env(self.config.num_envs, env)

    # --- learning ----------------------------------------------------------------------------
    def _learn(self, progress: Progress) -> None:
        c = self.config
        N, A = c.num_envs, self.n_answers
        env = self._start_episodes(N)
        free = sync_free(self.device)
        bound = int(env.max_episode_steps)
        keep_going = progress.remaining > 0
        while keep_going:
            # --- N canvases, classified, and their episodes answered to the end -------------
            obs = self._reset_training_envs()
            logits = self._logits(obs)  # (N, A, K), with gradients
            answers = logits.detach().argmax(-1)
            labels = torch.zeros(N, A, dtype=torch.int64, device=self.device)
            labelled = torch.zeros(N, dtype=torch.bool, device=self.device)
            active = torch.ones(N, dtype=torch.bool, device=self.device)
            t = 0
            while self._go_on(active, t, free, bound):
                obs, _, terminated, truncated, info = env.step(
                    env.answer(answers[:, min(t, A - 1)])
                )
                ended = active & (terminated | truncated)
                if self.label_key in info:
                    labels = torch.where(ended[:, None], info[self.label_key].view(N, A), labels)
                    labelled |= ended
                self._record_episodes({**info, "_episode": info["_episode"] & active})
                active &= ~ended
                t += 1
            if self._episode_steps is None:
                self._episode_steps = t

            # Cross-entropy of each label, over the canvases whose episode ended (on the
            # CPU all of them; see _go_on for the sync-free path).
            weight = labelled.float()[:, None].expand(N, A).reshape(-1)
            losses = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
            loss = (losses * weight).sum() / weight.sum().clamp(min=1)
            norm = gradient_step(self.optimizer, loss, c.max_grad_norm)
            self.guard.after_update(self.num_timesteps + N * t, loss, norm)

            right = (answers == labels).all(1).float()  # every label of the canvas
            stats = {
                "train/loss": loss.detach(),
                "train/accuracy": (right * labelled).sum() / labelled.sum().clamp(min=1),
                "train/grad_norm": norm,
                "train/learning_rate": self.optimizer.param_groups[0]["lr"],
            }
            keep_going = progress.update(N * t, stats)

    def _go_on(self, active: torch.Tensor, t: int, free: bool, bound: int) -> bool:
        """Whether to take step ``t`` of an update. On the CPU, while some episode goes on
        (up to the core's bound). On the sync-free path (a GPU), the first update asks
        as the CPU does and learns the episodes' length; later ones run that many steps
        without asking: a longer episode is not learned from (its canvas has no label)."""
        if t >= bound:
            return False
        if free and self._episode_steps is not None:
            return t < self._episode_steps
        return t == 0 or bool(active.any())
