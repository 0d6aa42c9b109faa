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

from typing import Any, NamedTuple

import torch

from cogrl.agents.base import Agent
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


class EpisodicAgent(Agent):
    """Base of the whole-episode policy-gradient learners (see the module docstring)."""

    policy: ActorCriticPolicy

    def _setup(self) -> None:
        # The running mean of returns (baseline="mean"), float64 as a Python float would be,
        # kept on the device so that updating it reads nothing on the host.
        self.running_return = torch.zeros((), dtype=torch.float64, device=self.device)

    def _act(self, obs, state, episode_start, deterministic):
        params, _, state = self.policy.step(obs, state, episode_start)
        head = self.policy.action_head
        action = head.mode(params) if deterministic else head.sample(params, self.generator)
        return action, state

    # --- hooks -------------------------------------------------------------------------------
    def _objective(self) -> Objective:
        """The update's settings (abstract in effect: each learner maps its ``Config``)."""
        raise NotImplementedError(f"{type(self).__name__} must define _objective()")

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
            credited = self._credited_steps(mask)
            count = credited.sum().clamp(min=1)
            advantage = returns - baseline
            if s.normalize_advantage:
                advantage = standardize(advantage, credited)

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
            supervised_loss, supervised_stats = self._supervised_loss(extras, info, mask)
            loss = loss + supervised_loss
            norm = gradient_step(self.optimizer, loss, s.max_grad_norm)
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
                **supervised_stats,
            }
            keep_going = progress.update(N * t, stats)
