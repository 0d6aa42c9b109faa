"""The whole-episode policy gradient that REINFORCE, RAM and DRAM share.

Each update runs one whole episode in each of ``num_envs`` environments (all restarted
together) and follows the likelihood-ratio gradient (Williams 1992)

``grad J = (1/N) sum_n sum_t grad log pi(a_t^n | s_t^n) (G_t^n - b_t^n)``,

with the reward-to-go ``G_t = sum_{k >= t} gamma^(k - t) r_k`` in place of the episode's
whole return (same expectation, less variance) and a baseline ``b_t``: a learned value
``V(s_t)`` regressed on ``G_t`` (``"learned"``), a running mean of returns (``"mean"``) or
none. Environments whose episode ended early idle (their steps are counted but masked)
until the longest episode of the batch ends, so an update holds N complete episodes, as
the estimator needs. A supervised term may be added to the loss (RAM's classifier).

As the actor-critic learners (:mod:`cogrl.agents.on_policy`), it uses what the environment
declares: steps whose action it ignores (``metadata["ignored_key"]``) are not credited;
with factored credit (``metadata["reward_parts"] = K``) each part of the action has its
own reward-to-go and the baseline ``b_t / K``; with ``answer_coef > 0`` the revealed
right action's negative log-likelihood (``metadata["answer_key"]``) joins the loss.

A learner on :class:`EpisodicAgent` says what differs through these hooks:

- :meth:`EpisodicAgent._objective`: the update's :class:`Objective` (discount, baseline,
  advantage standardisation, the terms' weights, episode bound), from its own ``Config``;
- ``replay_episodes`` (class attribute): True to act without gradients and then evaluate
  the whole (T, N) batch in one pass through the core (:meth:`_replay`); False to step the
  policy with gradients (:meth:`_policy_step`), for a learner whose loss needs more of each
  step than the log-probability and value (RAM's and DRAM's classifier logits);
- :meth:`_credited_steps`: the steps whose actions the policy gradient credits (RAM: not
  the last location, which nothing looks at);
- :meth:`_supervised_loss`: the supervised term and its statistics (RAM's, DRAM's
  classifiers), zero by default;
- :meth:`_episode_length_bound`: the most steps an episode can take, which lets the
  sync-free path (a GPU) run without asking whether episodes are still going on.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, NamedTuple

import torch

from cogrl.agents.base import Agent
from cogrl.agents.on_policy import check_answer_key, check_credit_parts, check_factorises
from cogrl.agents.training import Progress, gradient_step, standardize
from cogrl.core import BatchedEnv, sync_free
from cogrl.nn import ActorCriticPolicy, State, map_state

__all__ = ["EpisodicAgent", "Objective"]


class Objective(NamedTuple):
    """An episodic update's settings, read from a learner's ``Config`` by
    :meth:`EpisodicAgent._objective`."""

    num_envs: int  #: episodes per update
    gamma: float  #: discount of the reward-to-go
    baseline: str  #: "learned", "mean" or "none"
    normalize_advantage: bool  #: standardise G_t - b_t over the credited steps
    ent_coef: float  #: weight of the entropy bonus
    policy_coef: float  #: weight of the policy-gradient term (RAM's reinforce_coef)
    value_coef: float  #: weight of the baseline's regression (RAM's baseline_coef)
    max_grad_norm: float | None  #: gradient clipping by global norm
    max_episode_steps: int  #: an episode is cut (not learned from) after this many steps
    baseline_rate: float  #: rate of the running mean (baseline="mean")
    factored_credit: bool = False  #: a reward-to-go per part of the action
    answer_coef: float = 0.0  #: weight of the revealed answer's negative log-likelihood
    mask_ignored_actions: bool = True  #: no credit where the environment ignored the action


class EpisodicAgent(Agent):
    """Base of the whole-episode policy-gradient learners (see the module docstring)."""

    policy: ActorCriticPolicy

    def _setup(self) -> None:
        s, meta = self._objective(), self.env_metadata
        self.parts = check_credit_parts(s.factored_credit, meta, self.env_id)
        if self.parts:
            if not self.replay_episodes:
                raise ValueError(f"factored_credit is not available for {self.name}")
            check_factorises(self.policy.action_head, self.parts, self.action_space)
        self.answer_key = check_answer_key(s.answer_coef, meta, self.env_id)
        if self.answer_key is not None and not self.replay_episodes:
            raise ValueError(
                f"{self.name} learns its answers with its own classifier: set its "
                "answer_coef, which weighs that term"
            )
        self.ignored_key = meta.get("ignored_key") if s.mask_ignored_actions else None
        # The running mean of returns (baseline="mean"), float64 as a Python float would be,
        # kept on the device so that updating it reads nothing on the host.
        self.running_return = torch.zeros((), dtype=torch.float64, device=self.device)

    def _act(self, obs, state, episode_start, deterministic):
        params, _, state = self.policy.step(obs, state, episode_start)
        head = self.policy.action_head
        action = head.mode(params) if deterministic else head.sample(params, self.generator)
        return action, state

    # --- hooks -------------------------------------------------------------------------------
    @abstractmethod
    def _objective(self) -> Objective:
        """The update's settings: each learner maps its ``Config`` to them."""

    #: Act without gradients, then evaluate the episodes' log-probabilities, entropies and
    #: values in one pass over the whole (T, N) batch: the core runs fused over the
    #: sequences (:meth:`Torso.sequence`) instead of backpropagating through T steps one
    #: by one. A learner whose loss needs more of each step sets it False and writes
    #: :meth:`_policy_step`.
    replay_episodes = True

    def _replay(
        self, observations: list[Any], actions: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """log pi(a_t|s_t) ((T, N), or (T, N, K) per part with factored credit), the
        entropy and V(s_t) (T, N), and the action parameters (T * N, ...), for the N
        episodes that started together from the initial state."""
        obs = map_state(lambda *steps: torch.stack(steps), *observations)
        T, N = len(actions), actions[0].shape[0]
        no_restart = torch.zeros(T, N, dtype=torch.bool, device=self.device)
        params, value, _ = self.policy.sequence(obs, self.initial_state(N), no_restart)
        head = self.policy.action_head
        params = params.flatten(0, 1)
        action = torch.stack(actions).flatten(0, 1)
        if self.parts:
            log_prob = head.log_prob_parts(params, action).view(T, N, self.parts)
        else:
            log_prob = head.log_prob(params, action).view(T, N)
        return log_prob, head.entropy(params).view(T, N), value, params

    def _policy_step(
        self, obs: Any, state: State
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, State, dict[str, Any]]:
        """One step of the policy with gradients (``replay_episodes = False``): the action to
        send, log pi(a|s), the entropy (``None`` where the policy has no entropy to report
        or reward), the baseline value V(s), the next state, and what
        :meth:`_supervised_loss` needs of the step."""
        head = self.policy.action_head
        params, value, state = self.policy.step(obs, state)
        action = head.sample(params, self.generator)
        entropy = head.entropy(params)
        return self.env_action(action), head.log_prob(params, action), entropy, value, state, {}

    def _credited_steps(self, mask: torch.Tensor) -> torch.Tensor:
        """The steps (T, N) whose actions the policy gradient credits, from ``mask`` (1 on
        each environment's steps of its episode): all of them."""
        return mask

    def _supervised_loss(
        self, extras: list[dict[str, Any]], info: dict[str, Any], mask: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """A supervised term added to the loss (RAM's classifier) and its statistics, from
        each step's ``extras`` (:meth:`_policy_step`) and the last step's ``info``."""
        return torch.zeros((), device=self.device), {}

    def _learning_rewards(
        self, rewards: list[torch.Tensor], extras: list[dict[str, Any]], info: dict[str, Any]
    ) -> list[torch.Tensor]:
        """The rewards (one (N,) tensor per step) that the reward-to-go sums, from the
        environment's ``rewards``, each step's ``extras`` and the last step's ``info``: the
        environment's own, unless a learner scores its answers otherwise (RAM's and DRAM's
        ``location_reward="log_likelihood"``)."""
        return rewards

    def _episode_length_bound(self, env: BatchedEnv, max_steps: int) -> int | None:
        """The most steps an episode of ``env`` can take, where the core declares it."""
        bound = getattr(env, "max_episode_steps", None)
        return None if bound is None else min(int(bound), max_steps)

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

    # --- checkpoints ---------------------------------------------------------------------------
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
            self._restore_env(self._objective().num_envs, env)

    # --- learning ------------------------------------------------------------------------------
    def _learn(self, progress: Progress) -> None:
        s = self._objective()
        N = s.num_envs
        env = self._start_episodes(N)
        free = sync_free(self.device)
        bound = self._episode_length_bound(env, s.max_episode_steps)
        keep_going = progress.remaining > 0
        while keep_going:
            # --- N whole episodes, started together ------------------------------------------
            obs = self._reset_training_envs()
            state = self.initial_state(N)
            active = torch.ones(N, dtype=torch.bool, device=self.device)
            log_probs, entropies, values, rewards, masks, extras = [], [], [], [], [], []
            observations, actions, acted, answers, due = [], [], [], [], []
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
                if self.parts:
                    rewards.append(info["reward_parts"] * active[:, None])
                else:
                    rewards.append(reward * active)
                masks.append(active.float())
                if self.ignored_key is not None:
                    acted.append((~info[self.ignored_key]).float())
                if self.answer_key is not None:
                    answers.append(info[self.answer_key])
                    due.append((info["_" + self.answer_key] & active).float())
                self._record_episodes({**info, "_episode": info["_episode"] & active})
                active = active & ~(terminated | truncated)
                t += 1
            mask = torch.stack(masks)  # (T, N): 1 on each environment's first episode
            if self.replay_episodes:
                log_prob, entropy, value, params = self._replay(observations, actions)
            else:
                log_prob, value = torch.stack(log_probs), torch.stack(values)
                entropy = None if entropies[0] is None else torch.stack(entropies)
            rewards = self._learning_rewards(rewards, extras, info)

            # Reward-to-go G_t = r_t + gamma G_{t+1}, backwards within each episode (per
            # part with factored credit: (T, N, K)).
            returns = torch.empty(t, *rewards[0].shape, device=self.device)
            g = torch.zeros_like(rewards[0])
            for k in reversed(range(t)):
                g = rewards[k] + s.gamma * g
                returns[k] = g
            total = returns.sum(-1) if self.parts else returns  # what the baselines predict
            if s.baseline == "learned":
                baseline = value.detach()
            elif s.baseline == "mean":
                baseline = self.running_return.to(total.dtype).expand_as(total)
            else:
                baseline = torch.zeros_like(total)
            credited = self._credited_steps(mask)
            if acted:
                credited = credited * torch.stack(acted)
            count = credited.sum().clamp(min=1)
            # Factored credit: part k's advantage is G_t^k - b_t / K (they sum to G_t - b_t).
            advantage = returns - (baseline[..., None] / self.parts if self.parts else baseline)
            weights = credited[..., None].expand_as(advantage) if self.parts else credited
            if s.normalize_advantage:
                advantage = standardize(advantage, weights)

            # grad J = (1/N) sum_n sum_t grad log pi(a_t|s_t) (G_t - b_t), here divided by
            # the number of steps rather than episodes (the same direction; Adam is
            # insensitive to the scale), plus the entropy bonus.
            policy_loss = -(log_prob * advantage * weights).sum() / count
            loss = s.policy_coef * policy_loss
            if entropy is not None:
                entropy_mean = (entropy * credited).sum() / count
                loss = loss - s.ent_coef * entropy_mean
            value_loss = torch.zeros((), device=self.device)
            if s.baseline == "learned":
                # The baseline regresses on the return: MSE(b_t, G_t).
                value_loss = ((value - total).pow(2) * credited).sum() / count
                loss = loss + s.value_coef * value_loss
            supervised_loss, supervised_stats = self._supervised_loss(extras, info, mask)
            loss = loss + supervised_loss
            if self.answer_key is not None:
                # Answer supervision: -log pi(a*_t|s_t) where a right action a* was due.
                answer = torch.stack(answers).flatten(0, 1)
                nll = -self.policy.action_head.log_prob(params, answer).view(t, N)
                weight = torch.stack(due)
                answer_loss = (nll * weight).sum() / weight.sum().clamp(min=1)
                loss = loss + s.answer_coef * answer_loss
                supervised_stats = {**supervised_stats, "train/answer_loss": answer_loss.detach()}
            norm = gradient_step(self.optimizer, loss, s.max_grad_norm)
            self.guard.after_update(self.num_timesteps + N * t, loss, norm)
            episode_return = total[0].mean().double()
            self.running_return += s.baseline_rate * (episode_return - self.running_return)

            stats = {
                "train/loss": loss.detach(),
                "train/policy_loss": policy_loss.detach(),
                "train/value_loss": value_loss.detach(),
                **({} if entropy is None else {"train/entropy": entropy_mean.detach()}),
                "train/grad_norm": norm,
                "train/baseline": (baseline * credited).sum() / count,
                "train/learning_rate": self.optimizer.param_groups[0]["lr"],
                **supervised_stats,
            }
            keep_going = progress.update(N * t, stats)
