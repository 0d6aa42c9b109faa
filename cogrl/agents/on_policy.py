"""The part A2C and PPO share: collecting a rollout of ``n_steps`` steps in every one of
``num_envs`` environments with an actor-critic policy, and its advantages by GAE.

Generalized advantage estimation (Schulman et al. 2016):
``delta_t = r_t + gamma V(s_{t+1}) (1 - done_t) - V(s_t)`` and
``A_t = delta_t + gamma lambda (1 - done_t) A_{t+1}``; the value targets are
``R_t = A_t + V(s_t)``. An episode cut short by a time limit (truncated, not terminated)
bootstraps: its last reward becomes ``r_t + gamma V(final_obs)``, as in Stable-Baselines3.

Recurrent policies: the rollout keeps the policy's state at its first step and the
``episode_start`` flag of every step, and is cut into segments at episode starts
(:class:`~cogrl.nn.sequences.Segments`). An update replays minibatches of segments, each
from the rollout's first state (the segments that begin there) or from the initial state
(those that begin an episode), all at once through the core (sb3-contrib's RecurrentPPO
pads its sequences the same way).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from cogrl.agents.base import Agent, Hyperparameters
from cogrl.agents.training import adam
from cogrl.checks import check_bools, check_int, check_number
from cogrl.core import sync_free
from cogrl.nn import (
    ActorCriticPolicy,
    PolicyConfig,
    State,
    detach_state,
    index_state,
    map_state,
)
from cogrl.nn.policies import flatten_time
from cogrl.nn.sequences import Segments

__all__ = ["OnPolicyAgent", "OnPolicyConfig", "Rollout"]


@dataclass
class OnPolicyConfig(Hyperparameters):
    """Hyperparameters every actor-critic learner has.

    - ``num_envs``: environments stepped together; ``n_steps``: steps per environment and
      rollout (a rollout holds ``num_envs * n_steps`` transitions).
    - ``learning_rate``; ``anneal_lr``: decay it linearly to 0 over a ``learn`` call.
    - ``gamma``: discount; ``gae_lambda``: GAE's lambda (1: Monte-Carlo advantages).
    - ``ent_coef``, ``vf_coef``: weights of the entropy bonus and the value loss.
    - ``max_grad_norm``: gradient clipping by global norm (``None``: none).
    - ``normalize_advantage``: standardise advantages in each (mini)batch.
    - ``sequence_length``: recurrent policies learn on the rollout's segments between
      episode starts, cut also every ``sequence_length`` steps when set; such a piece
      starts from the state the rollout had there (stored while collecting), so gradients
      flow back at most ``sequence_length`` steps (truncated backpropagation through time,
      as Sample Factory's ``recurrence``). Shorter pieces make more, shorter sequences per
      minibatch: faster updates, shorter memory credit. ``None``: whole segments (as
      sb3-contrib's RecurrentPPO).
    - ``policy``: a :class:`~cogrl.nn.PolicyConfig` (encoder, core, heads); by default an
      MLP of (64, 64) with tanh, no core, one torso each for actor and critic.
    """

    num_envs: int = 16
    n_steps: int = 32
    learning_rate: float = 3e-4
    anneal_lr: bool = False
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float | None = 0.5
    normalize_advantage: bool = True
    sequence_length: int | None = None
    policy: PolicyConfig = field(default_factory=PolicyConfig)

    def __post_init__(self) -> None:
        for name in ("num_envs", "n_steps"):
            check_int(name, getattr(self, name))
        if self.sequence_length is not None:
            check_int("sequence_length", self.sequence_length)
        check_number("learning_rate", self.learning_rate, low_open=True)
        check_number("gamma", self.gamma, high=1.0)
        check_number("gae_lambda", self.gae_lambda, high=1.0)
        check_number("ent_coef", self.ent_coef)
        check_number("vf_coef", self.vf_coef)
        if self.max_grad_norm is not None:
            check_number("max_grad_norm", self.max_grad_norm, low_open=True)
        check_bools(self, "anneal_lr", "normalize_advantage")


@dataclass
class Rollout:
    """``n_steps`` x ``num_envs`` transitions, time-major (T, N, ...)."""

    obs: Any
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    episode_starts: torch.Tensor
    initial_state: State  # the policy's state before the first step (or, with
    # sequence_length, before every step: (T, N, ...) leaves)
    advantages: torch.Tensor
    returns: torch.Tensor
    segments: Segments | None = None  # recurrent policies: the rollout cut at episode starts


def _alloc(x: Any, n: int) -> Any:
    """Room for ``n`` steps of ``x`` (a batch tensor or a dict of them)."""
    if isinstance(x, Mapping):
        return {k: _alloc(v, n) for k, v in x.items()}
    return torch.empty((n, *x.shape), dtype=x.dtype, device=x.device)


def _write(buffer: Any, t: int, x: Any) -> None:
    if isinstance(buffer, Mapping):
        for k in buffer:
            buffer[k][t] = x[k]
    else:
        buffer[t] = x


class OnPolicyAgent(Agent):
    """Base of A2C and PPO: an :class:`ActorCriticPolicy`, rollouts and GAE."""

    config: OnPolicyConfig
    policy: ActorCriticPolicy

    def _build_policy(self) -> ActorCriticPolicy:
        return ActorCriticPolicy(self.observation_space, self.action_space, self.config.policy)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        return adam(self.policy.parameters(), lr=self.config.learning_rate, eps=1e-5)

    def _act(self, obs, state, episode_start, deterministic):
        params, _, state = self.policy.step(obs, state, episode_start)
        head = self.policy.action_head
        action = head.mode(params) if deterministic else head.sample(params, self.generator)
        return action, state

    # --- rollouts -------------------------------------------------------------------------------
    def _start(self) -> None:
        """The training environments, made on the first ``learn`` call and kept after."""
        if self._env is None:
            self._start_stepping(self.config.num_envs)

    def _loop_state(self, include_replay: bool) -> dict[str, Any]:
        return {} if self._env is None else self._stepping_state()

    def _load_loop_state(self, loop, env) -> None:
        if loop:
            self._restore_stepping(self.config.num_envs, loop, env)

    @torch.no_grad()
    def collect_rollout(self) -> Rollout:
        """Step every environment ``n_steps`` times with the current policy; GAE on top."""
        c, env, head = self.config, self._env, self.policy.action_head
        T = c.n_steps
        obs, state, start = self._obs, self._state, self._episode_start
        initial_state = state
        # With sequence_length, a segment may begin at any step: keep every step's state.
        store = self.policy.recurrent and c.sequence_length is not None
        if store:
            initial_state = map_state(lambda s: _alloc(s, T), state)
        obs_buf = _alloc(obs, T)
        starts = torch.empty((T, env.num_envs), dtype=torch.bool, device=self.device)
        values = torch.empty((T, env.num_envs), device=self.device)
        rewards = torch.empty_like(values)
        log_probs = torch.empty_like(values)
        dones = torch.empty_like(starts)
        actions = None
        for t in range(T):
            _write(obs_buf, t, obs)
            starts[t] = start
            if store:
                map_state(lambda buf, s, t=t: buf[t].copy_(s), initial_state, state)
            params, value, state = self.policy.step(obs, state, start)
            action = head.sample(params, self.generator)
            if actions is None:
                actions = _alloc(action, T)
            actions[t] = action
            log_probs[t] = head.log_prob(params, action)
            values[t] = value
            obs, reward, terminated, truncated, info = env.step(self.env_action(action))
            # A time limit is not a failure: bootstrap r + gamma V(final obs) (SB3's way).
            cut = truncated & ~terminated
            # On the CPU, skip the extra forward pass where nothing was cut; on a GPU, asking
            # would wait for the queued kernels, so every row is valued and masked.
            if "final_obs" in info and (sync_free(self.device) or bool(cut.any())):
                _, final_value, _ = self.policy.step(info["final_obs"], state)
                reward = reward + c.gamma * final_value * cut
            rewards[t] = reward
            start = terminated | truncated
            dones[t] = start
            self.episodes.update(info)
        _, last_value, _ = self.policy.step(obs, state, start)
        self._obs, self._state, self._episode_start = obs, state, start

        # GAE(lambda), backwards in time.
        advantages = torch.empty_like(values)
        gae = torch.zeros_like(last_value)
        for t in reversed(range(T)):
            next_value = last_value if t == T - 1 else values[t + 1]
            not_done = (~dones[t]).float()
            delta = rewards[t] + c.gamma * next_value * not_done - values[t]
            gae = delta + c.gamma * c.gae_lambda * not_done * gae
            advantages[t] = gae
        return Rollout(
            obs=obs_buf,
            actions=actions,
            log_probs=log_probs,
            values=values,
            rewards=rewards,
            dones=dones,
            episode_starts=starts,
            initial_state=detach_state(initial_state),
            advantages=advantages,
            returns=advantages + values,
            segments=(Segments.split(starts, c.sequence_length) if self.policy.recurrent else None),
        )

    def minibatches(self, rollout: Rollout, batch_size: int) -> list[torch.Tensor]:
        """A random split of the rollout into minibatches of about ``batch_size``
        transitions: of single transitions, or (recurrent policies) of whole segments."""
        segments = rollout.segments
        if segments is None:
            units = rollout.values.numel()
            order = torch.randperm(units, generator=self.generator, device=self.device)
            return list(order.split(batch_size))
        order = torch.randperm(segments.count, generator=self.generator, device=self.device)
        # Segments in a random order, grouped where their running length passes a multiple
        # of batch_size (so one spans no two minibatches).
        ends = segments.lengths[order.cpu()].cumsum(0) - 1
        sizes = torch.unique_consecutive(ends // batch_size, return_counts=True)[1]
        return list(order.split(sizes.tolist()))

    def evaluate_actions(
        self, rollout: Rollout, index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probabilities, entropies and values of the rollout's actions under the current
        policy, for ``index``: flat transition indices (feedforward policies) or segment
        numbers (recurrent policies, replayed whole; see :meth:`minibatches`).

        Returns ``(log_prob, entropy, value, rows)`` where ``rows`` selects the matching
        entries of any flattened (T * N) rollout tensor.
        """
        head = self.policy.action_head
        if rollout.segments is None:
            rows = index
            params, value, _ = self.policy.step(
                index_state(flatten_time(rollout.obs), rows), self.initial_state(rows.numel())
            )
        else:
            segments = rollout.segments.select(index)
            rows = segments.rows
            if self.config.sequence_length is None:  # segments begin at step 0 or fresh
                state = index_state(rollout.initial_state, segments.column)
            else:
                state = index_state(rollout.initial_state, (segments.begin, segments.column))
            params, value = self.policy.segments(
                index_state(flatten_time(rollout.obs), rows), state, segments
            )
        action = rollout.actions.flatten(0, 1)[rows]
        return head.log_prob(params, action), head.entropy(params), value, rows


def explained_variance(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - Var[target - prediction] / Var[target]`` (1: perfect, 0: no better than a mean;
    NaN where the target does not vary)."""
    var = target.var()
    ev = 1 - (target - prediction).var() / var
    return torch.where(var == 0, torch.full_like(ev, float("nan")), ev)
