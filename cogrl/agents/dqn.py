"""DQN: Q-learning with Bellman targets from a target network and a replay (Mnih et al. 2015).

```python
agent = cogrl.agents.make("dqn", "CartPole-v1", seed=0)
agent.learn(total_timesteps=100_000)
```

The Bellman target of a sampled transition is
``y = r + gamma * max_a' Q(s', a'; theta^-)`` with the target network's weights
``theta^-`` (copied every ``target_update_interval`` steps, or Polyak-averaged with
``tau < 1``); the loss is the Huber loss ``L(Q(s, a; theta) - y)``. Options:

- ``double_q``: double DQN (van Hasselt et al. 2016), ``y = r + gamma Q(s', argmax_a'
  Q(s', a'; theta); theta^-)``.
- ``n_step``: n-step returns ``y = sum_{k<K} gamma^k r_{t+k} + gamma^K max_a' Q(s_{t+K}, a')``,
  ``K = n_step`` or fewer where the episode ends first (the replay sums the K steps).
- ``prioritized``: proportional prioritised replay (Schaul et al. 2016), priorities
  ``|delta| + eps``, importance weights annealed from ``beta0`` to 1.
- ``answer_coef``: where the environment reveals the right action (``metadata
  ["answer_key"]``), DQfD's large-margin supervised loss (Hester et al. 2018)
  ``J_E = max_a [Q(s, a) + l(a*, a)] - Q(s, a*)``, ``l = answer_margin`` for ``a != a*``,
  at the steps where an answer was due, weighted ``answer_coef``; the replay keeps the
  answers. It pushes the answer's Q-value above the others' by the margin; 0 (default)
  is pure reinforcement.
- a recurrent ``core`` (``"gru"``, ``"lstm"``): R2D2 (Kapturowski et al. 2019). The replay
  stores each step's recurrent state; the learner samples sequences of ``burn_in +
  sequence_length`` steps, unrolls the core from the stored state (zeros, when it learns
  from a replay written without it) through the burn-in without gradient, and learns on
  the rest, restarting the state at episode starts.

The replay (:class:`cogrl.replay.ReplayBuffer`) may be passed in (``replay=``) to share it
between agents: every agent that ``learn`` s writes its own experience into it and samples
from all of it, and :meth:`DQN.train` learns from it without acting (for example a
recurrent DQN on the experience a feedforward one collected). Several agents writing in
turn interleave their steps in the replay's time ring, so give them 1-step targets
(``n_step=1``, feedforward); sequences and n-step windows need one writer.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F
from gymnasium import spaces

from cogrl.agents.base import Agent, Hyperparameters, register_agent
from cogrl.agents.on_policy import check_answer_key
from cogrl.agents.training import Progress, gradient_step
from cogrl.checks import check_bools, check_int, check_number
from cogrl.core import BatchedEnv
from cogrl.nn import (
    PolicyConfig,
    QNetwork,
    State,
    index_state,
    pack_state,
    unpack_state,
)
from cogrl.nn.policies import flatten_time
from cogrl.nn.sequences import Segments
from cogrl.nn.state import state_size
from cogrl.replay import ReplayBuffer

__all__ = ["DQN"]

#: What the replay keeps for answer supervision: the revealed answer (as a Q-value index)
#: and whether one was due at the step.
ANSWER_EXTRAS = {"answer": ((), torch.int64), "answer_due": ((), torch.float32)}


@register_agent("dqn")
class DQN(Agent):
    """Deep Q-network, feedforward or recurrent (R2D2-style), for ``Discrete`` actions."""

    @dataclass
    class Config(Hyperparameters):
        """DQN's hyperparameters.

        - ``num_envs``: environments stepped together (each step adds ``num_envs``
          transitions to the replay).
        - ``buffer_size``: replay capacity in transitions; ``learning_starts``: transitions
          collected before learning; ``batch_size``: transitions (or sequences) per step.
        - ``train_freq``: environment steps (summed over environments) between updates;
          ``gradient_steps``: gradient steps per update.
        - ``target_update_interval``: environment steps between target updates; ``tau``:
          1 copies the weights, less averages ``theta^- <- tau theta + (1 - tau) theta^-``.
        - ``exploration_fraction``: the fraction of a ``learn`` call over which epsilon falls
          linearly from ``exploration_initial_eps`` to ``exploration_final_eps``.
        - ``double_q``, ``n_step``, ``prioritized`` (with ``alpha``, ``beta0``): see above.
        - ``max_grad_norm``: gradient clipping (``None``: none); ``anneal_lr``: decay the
          learning rate linearly to 0 over a ``learn`` call, so that the final network
          settles instead of drifting (DQN's Q-values keep chasing their own targets).
        - ``policy``: a :class:`~cogrl.nn.PolicyConfig` (by default an MLP of (256, 256)
          with ReLU, no core); recurrent cores learn on ``sequence_length`` steps after
          ``burn_in`` steps.
        - ``answer_coef``, ``answer_margin``: DQfD's supervised loss on revealed answers
          (see above; 0.8 is DQfD's margin).
        """

        num_envs: int = 16
        learning_rate: float = 1e-3
        anneal_lr: bool = False
        buffer_size: int = 100_000
        learning_starts: int = 1_000
        batch_size: int = 128
        gamma: float = 0.99
        train_freq: int = 16
        gradient_steps: int = 1
        target_update_interval: int = 1_000
        tau: float = 1.0
        exploration_fraction: float = 0.2
        exploration_initial_eps: float = 1.0
        exploration_final_eps: float = 0.05
        double_q: bool = False
        n_step: int = 1
        prioritized: bool = False
        alpha: float = 0.6
        beta0: float = 0.4
        max_grad_norm: float | None = 10.0
        policy: PolicyConfig = field(
            default_factory=lambda: PolicyConfig(hidden_sizes=[256, 256], activation="relu")
        )
        sequence_length: int = 8
        burn_in: int = 4
        answer_coef: float = 0.0
        answer_margin: float = 0.8

        def __post_init__(self) -> None:
            for name in (
                "num_envs",
                "buffer_size",
                "batch_size",
                "train_freq",
                "gradient_steps",
                "target_update_interval",
                "n_step",
                "sequence_length",
            ):
                check_int(name, getattr(self, name))
            check_int("learning_starts", self.learning_starts, low=0)
            check_int("burn_in", self.burn_in, low=0)
            check_number("learning_rate", self.learning_rate, low_open=True)
            check_number("gamma", self.gamma, high=1.0)
            check_number("answer_coef", self.answer_coef)
            check_number("answer_margin", self.answer_margin)
            check_number("tau", self.tau, high=1.0, low_open=True)
            for name in ("exploration_fraction", "exploration_initial_eps"):
                check_number(name, getattr(self, name), high=1.0)
            check_number("exploration_final_eps", self.exploration_final_eps, high=1.0)
            check_number("alpha", self.alpha)
            check_number("beta0", self.beta0, high=1.0)
            if self.max_grad_norm is not None:
                check_number("max_grad_norm", self.max_grad_norm, low_open=True)
            check_bools(self, "anneal_lr", "double_q", "prioritized")
            if self.policy.recurrent and (self.n_step > 1 or self.prioritized):
                raise ValueError(
                    "a recurrent DQN learns on sequences with 1-step targets and uniform "
                    f"sampling; got n_step={self.n_step}, prioritized={self.prioritized}"
                )
            if self.buffer_size < self.num_envs:
                raise ValueError(
                    f"buffer_size ({self.buffer_size}) must hold at least one step of all "
                    f"num_envs ({self.num_envs}) environments"
                )

    config: Config
    policy: QNetwork

    def __init__(
        self,
        env: str | gym.Env | BatchedEnv,
        device: str | torch.device = "auto",
        seed: int | None = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        replay: ReplayBuffer | None = None,
        **hyperparameters: Any,
    ) -> None:
        self._given_replay = replay  # a replay shared with other agents (see _setup)
        super().__init__(env, device, seed, env_kwargs, **hyperparameters)

    def _build_policy(self) -> QNetwork:
        if not isinstance(self.action_space, spaces.Discrete):
            raise ValueError(
                f"DQN needs a Discrete action space, got {self.action_space} for {self.env_id}"
            )
        return QNetwork(self.observation_space, self.action_space, self.config.policy)

    def _setup(self) -> None:
        c = self.config
        self.answer_key = check_answer_key(c.answer_coef, self.env_metadata, self.env_id)
        self.target = copy.deepcopy(self.policy)
        self.target.requires_grad_(False)
        self.recurrent = self.policy.recurrent
        self._state_like = self.policy.initial_state(1, self.device)
        self._state_size = state_size(self._state_like)
        replay, self._given_replay = self._given_replay, None
        if replay is None:
            replay = self.make_replay()
        elif replay.num_envs != c.num_envs:
            raise ValueError(
                f"the shared replay is written by {replay.num_envs} environments per step, "
                f"but this agent steps num_envs={c.num_envs}"
            )
        if self.answer_key is not None and not set(ANSWER_EXTRAS) <= set(replay.extra_specs):
            raise ValueError(
                f"answer_coef={c.answer_coef} learns from the answers the replay keeps, but "
                f"the shared replay declares no {sorted(ANSWER_EXTRAS)} extras: make it with "
                "this agent's make_replay()"
            )
        self.replay = replay
        # Time steps per environment one sample reads: an n-step window, or a sequence.
        self._sample_steps = c.burn_in + c.sequence_length if self.recurrent else c.n_step
        if replay.slots < self._sample_steps:
            raise ValueError(
                f"buffer_size: the replay keeps {replay.slots} steps per environment, fewer "
                f"than one sample reads ({self._sample_steps}: "
                + ("burn_in + sequence_length)" if self.recurrent else "n_step)")
            )
        self.epsilon = c.exploration_initial_eps
        self._since_target = 0
        self._since_train = 0
        self._stats: dict[str, Any] = {}  # the last gradient step's, logged until the next

    def make_replay(self) -> ReplayBuffer:
        """A replay for this agent's environments (also to share with other agents)."""
        c = self.config
        extras = {}
        if self.recurrent:
            extras["state"] = ((self._state_size,), torch.float32)
        if self.answer_key is not None:
            extras.update(ANSWER_EXTRAS)
        return ReplayBuffer(
            c.buffer_size,
            c.num_envs,
            self.observation_space,
            self.action_space,
            device=self.device,
            prioritized=c.prioritized,
            alpha=c.alpha,
            extras=extras or None,
        )

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"q_network": self.policy, "target_network": self.target}

    def _stores_state(self) -> bool:
        """Whether the replay keeps this agent's recurrent state (R2D2's stored state)."""
        spec = self.replay.extra_specs.get("state")
        return self.recurrent and spec is not None and spec[0] == (self._state_size,)

    def _extras(self, state_before: State, info: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The extras this step writes: the core's state before the step where the replay
        keeps it, the revealed answer where this agent learns from answers, zeros for
        extras another agent sharing the replay declared."""
        N = self.config.num_envs
        extras = {}
        for name, (shape, dtype) in self.replay.extra_specs.items():
            extras[name] = torch.zeros((N, *shape), dtype=dtype, device=self.device)
        if self._stores_state():
            extras["state"] = pack_state(
                self.policy.torso.core.reset(state_before, self._episode_start)
            )
        if self.answer_key is not None:
            extras["answer"] = info[self.answer_key].long() - self.policy.start
            extras["answer_due"] = info["_" + self.answer_key].float()
        return extras

    def _act(self, obs, state, episode_start, deterministic, epsilon: float = 0.0):
        q, state = self.policy.step(obs, state, episode_start)
        action = q.argmax(-1)
        if not deterministic and epsilon > 0:
            # epsilon-greedy: a uniform action with probability epsilon.
            n = q.shape[0]
            explore = torch.rand(n, generator=self.generator, device=self.device) < epsilon
            random = torch.randint(q.shape[1], (n,), generator=self.generator, device=self.device)
            action = torch.where(explore, random, action)
        return action + self.policy.start, state

    # --- learning -------------------------------------------------------------------------------
    def _loop_state(self, include_replay: bool) -> dict[str, Any]:
        if self._env is None:
            return {}
        return {
            **self._stepping_state(),
            "epsilon": self.epsilon,
            "since_train": self._since_train,
            "since_target": self._since_target,
            "stats": self._stats,
            "replay": self.replay.state_dict() if include_replay else None,
        }

    def _load_loop_state(self, loop, env) -> None:
        if not loop:
            return
        self._restore_stepping(self.config.num_envs, loop, env)
        self.epsilon = float(loop["epsilon"])
        self._since_train, self._since_target = int(loop["since_train"]), int(loop["since_target"])
        self._stats = self.to_device(loop["stats"])
        if loop["replay"] is not None:
            self.replay = ReplayBuffer.from_state_dict(loop["replay"], device=self.device)
        else:
            warnings.warn(
                "the checkpoint holds no replay: the resumed run refills an empty one",
                stacklevel=3,
            )

    def _learn(self, progress: Progress) -> None:
        c = self.config
        N = c.num_envs
        if self._env is None:
            self._start_stepping(N)
        if progress.done == 0:
            self._since_train = 0
        env = self._env
        explore_steps = max(1.0, c.exploration_fraction * progress.total)
        if progress.done == 0:
            self._stats = {}
        keep_going = progress.remaining > 0
        while keep_going:
            # --- act (epsilon-greedy) and store the transitions of all environments ---------
            if c.anneal_lr:
                progress.anneal(self.optimizer, c.learning_rate)
            fraction = min(1.0, progress.done / explore_steps)
            self.epsilon = c.exploration_initial_eps + fraction * (
                c.exploration_final_eps - c.exploration_initial_eps
            )
            obs, state_before = self._obs, self._state
            with torch.no_grad():
                action, self._state = self._act(
                    obs, state_before, self._episode_start, False, self.epsilon
                )
            next_obs, reward, terminated, truncated, info = env.step(action)
            done = terminated | truncated
            real_next = next_obs
            if "final_obs" in info:
                real_next = _where(done, info["final_obs"], next_obs)
            with torch.no_grad():  # a learned initial state must not enter the replay's graph
                extras = self._extras(state_before, info)
            # The values come from this agent's core and policy: no checks (host reads).
            self.replay.add(
                obs, action, reward, real_next, terminated, truncated, extras, check=False
            )
            self._record_episodes(info)
            self._obs, self._episode_start = next_obs, done
            self._since_train += N
            self._since_target += N

            # --- learn ---------------------------------------------------------------------
            ready = max(c.learning_starts, c.batch_size, self._sample_steps * N)
            if self.replay.size >= ready and self._since_train >= c.train_freq:
                self._since_train = 0
                for _ in range(c.gradient_steps):
                    # Reported at the step count that includes this step's transitions.
                    step = self.num_timesteps + N
                    self._stats = self.train_step(progress.done / progress.total, step)
            if self._since_target >= c.target_update_interval:
                self._since_target = 0
                self.update_target()
            out = {
                **self._stats,
                "rollout/epsilon": self.epsilon,
                "train/learning_rate": self.optimizer.param_groups[0]["lr"],
                "replay/size": float(self.replay.size),
            }
            keep_going = progress.update(N, out)

    @torch.no_grad()
    def update_target(self) -> None:
        """theta^- <- tau theta + (1 - tau) theta^- (a copy when tau = 1)."""
        tau = self.config.tau
        for target, online in zip(self.target.parameters(), self.policy.parameters(), strict=True):
            if tau == 1.0:
                target.copy_(online)
            else:
                target.lerp_(online, tau)
        # Buffers (e.g. normalisation statistics) are copied: they are not averaged weights.
        for target, online in zip(self.target.buffers(), self.policy.buffers(), strict=True):
            target.copy_(online)

    def train(self, gradient_steps: int) -> dict[str, float]:
        """Learn from the replay alone, without acting: for example from experience that
        another agent collected into a shared replay. Returns the last step's statistics.

        The target network is updated at the rate of online learning: every
        ``target_update_interval / train_freq * gradient_steps`` gradient steps.
        """
        check_int("gradient_steps", gradient_steps)
        c = self.config
        needed = max(c.batch_size, self._sample_steps * self.replay.num_envs)
        if self.replay.size < needed:
            raise ValueError(
                f"the replay holds {self.replay.size} transitions; this agent needs at least "
                f"{needed} to sample a batch"
            )
        every = max(1, round(c.target_update_interval / c.train_freq * c.gradient_steps))
        stats: dict[str, Any] = {}
        for step in range(1, gradient_steps + 1):
            stats = self.train_step(1.0)
            if step % every == 0:
                self.update_target()
        self.guard.check(self.modules(), self.num_timesteps)
        return {k: float(v) for k, v in stats.items()}

    def train_step(self, progress: float = 0.0, step: int | None = None) -> dict[str, float]:
        """One gradient step on a sampled batch; returns its statistics. ``progress`` (0 to
        1) anneals the importance weights' beta; ``step`` is the environment step the
        numerics guard reports a failure at (default: ``num_timesteps``)."""
        step = self.num_timesteps if step is None else step
        if self.recurrent:
            return self._train_sequences(step)
        c = self.config
        beta = c.beta0 + progress * (1.0 - c.beta0)
        batch = self.replay.sample(
            c.batch_size, self.generator, n_step=c.n_step, gamma=c.gamma, beta=beta
        )
        empty = self.initial_state(c.batch_size)
        action = (batch.action - self.policy.start).long()
        q_all = self.policy.step(batch.obs, empty)[0]
        q = q_all.gather(1, action[:, None]).squeeze(1)
        with torch.no_grad():
            next_q = self.target.step(batch.next_obs, empty)[0]
            if c.double_q:
                # Double DQN: the online network picks a', the target network values it.
                best = self.policy.step(batch.next_obs, empty)[0].argmax(1, keepdim=True)
                next_value = next_q.gather(1, best).squeeze(1)
            else:
                next_value = next_q.max(1).values
            # Bellman target: y = sum_{k<K} gamma^k r_{t+k} + gamma^K (1 - terminal) max
            # Q(s_{t+K}, a'), K <= n_step: the replay gives the sum and gamma^K (1 - terminal).
            y = batch.reward + batch.discount * next_value
        td = q - y
        loss = (batch.weights * F.huber_loss(q, y, reduction="none")).mean()
        answer_stats = {}
        if self.answer_key is not None:
            answer_loss = self._margin_loss(q_all, batch.extras)
            loss = loss + c.answer_coef * answer_loss
            answer_stats["train/answer_loss"] = answer_loss.detach()
        norm = gradient_step(self.optimizer, loss, c.max_grad_norm)
        self.guard.after_update(step, loss, norm)
        if c.prioritized:
            self.replay.update_priorities(batch.indices, td.detach().abs() + 1e-6, check=False)
        return {
            "train/loss": loss.detach(),
            "train/q_mean": q.detach().mean(),
            "train/td_error": td.detach().abs().mean(),
            "train/grad_norm": norm,
            **answer_stats,
        }

    def _train_sequences(self, step: int) -> dict[str, float]:
        """R2D2: sequences from the stored state, burn-in without gradient, 1-step targets.

        The core runs over the sequences' segments between episode starts all at once
        (:class:`~cogrl.nn.sequences.Segments`), which reads their lengths on the host once
        per gradient step.
        """
        c = self.config
        seq = self.replay.sample_sequences(
            c.batch_size, c.sequence_length, c.burn_in, self.generator
        )
        L, B = seq.episode_start.shape
        if self._stores_state():
            start_state = unpack_state(seq.extras["state"][0], self._state_like)
        else:
            # A replay written without this core's state: start from the core's initial
            # state (zeros for the GRU and LSTM, R2D2's zero start state; learned for an
            # NTM or DNC), which the burn-in then warms up.
            start_state = self.initial_state(B)
        burn = c.burn_in
        action = (seq.action[burn:] - self.policy.start).long()

        # Q(s_t, a_t) after the burn-in, which only warms up the state (no gradient).
        torso, obs = self.policy.torso, seq.obs
        state = start_state
        if burn:
            with torch.no_grad():
                _, state = torso.sequence(
                    index_state(obs, slice(0, burn)), state, seq.episode_start[:burn]
                )
        h, _ = torso.sequence(index_state(obs, slice(burn, L)), state, seq.episode_start[burn:])
        q_all = self.policy.q(h)
        q = q_all.gather(2, action[..., None]).squeeze(2)

        with torch.no_grad():
            segments = Segments.split(seq.episode_start)
            next_q = self._next_q(self.target, seq, start_state, segments)
            if c.double_q:
                # Double DQN: the online network picks a', the target network values it.
                online = self._next_q(self.policy, seq, start_state, segments)
                best = online.argmax(2, keepdim=True)
                next_value = next_q.gather(2, best).squeeze(2)
            else:
                next_value = next_q.max(2).values
            after = slice(burn, L)
            y = seq.reward[after] + c.gamma * (~seq.terminated[after]).float() * next_value[after]
        mask = seq.mask[after]
        loss = (mask * F.huber_loss(q, y, reduction="none")).sum() / mask.sum().clamp(min=1)
        answer_stats = {}
        if self.answer_key is not None:
            extras = {k: seq.extras[k][burn:] for k in ANSWER_EXTRAS}
            extras["answer_due"] = extras["answer_due"] * mask
            answer_loss = self._margin_loss(q_all, extras)
            loss = loss + c.answer_coef * answer_loss
            answer_stats["train/answer_loss"] = answer_loss.detach()
        norm = gradient_step(self.optimizer, loss, c.max_grad_norm)
        self.guard.after_update(step, loss, norm)
        td = ((q - y).detach().abs() * mask).sum() / mask.sum().clamp(min=1)
        return {
            "train/loss": loss.detach(),
            "train/q_mean": (q.detach() * mask).sum() / mask.sum().clamp(min=1),
            "train/td_error": td,
            "train/grad_norm": norm,
            **answer_stats,
        }

    def _margin_loss(self, q: torch.Tensor, extras: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """DQfD's large-margin loss ``max_a [Q(s, a) + l(a*, a)] - Q(s, a*)`` averaged over
        the steps where an answer ``a*`` was due; ``q`` is (..., n), the extras (...)."""
        answer, due = extras["answer"].long(), extras["answer_due"]
        margin = torch.full_like(q, self.config.answer_margin)
        margin.scatter_(-1, answer[..., None], 0.0)
        q_answer = q.gather(-1, answer[..., None]).squeeze(-1)
        loss = (q + margin).max(-1).values - q_answer
        return (loss * due).sum() / due.sum().clamp(min=1)

    @staticmethod
    def _next_q(net: QNetwork, seq: Any, start_state: State, segments: Segments) -> torch.Tensor:
        """Q(s'_t, .) (L, B, n) of every step's next state, unrolled from ``start_state``.

        Within a segment (``segments``: the sequences cut at episode starts) it is
        Q(s_{t+1}) of the same unroll. At a segment's last step, the next state is that of
        the stored next observation read from the state after the step: the episode ended
        there (by a time limit, whose final observation is not in the sequence, or by
        termination, whose value the target masks) or the sequence does.
        """
        L, B = seq.episode_start.shape
        torso = net.torso
        x = torso.encoder(flatten_time(seq.obs))
        h, last = torso.segments(x, index_state(start_state, segments.column), segments)
        q = net.q(h).view(L, B, -1)
        next_q = torch.cat([q[1:], q[-1:]])
        end, column = segments.end(), segments.column
        next_obs = index_state(seq.next_obs, (end, column))
        h_next, _ = torso.core(torso.encoder(next_obs), last)
        next_q[end, column] = net.q(h_next)
        return next_q


def _where(done: torch.Tensor, a: Any, b: Any) -> Any:
    """Rows of ``a`` where ``done``, else of ``b`` (also for dict observations)."""
    if isinstance(a, Mapping):
        return {k: _where(done, a[k], b[k]) for k in a}
    return torch.where(done.view(-1, *([1] * (a.ndim - 1))), a, b)
