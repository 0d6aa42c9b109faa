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

What the environment declares (docs/architecture.md, "An environment") the rollout uses:

- ``metadata["ignored_key"]``: steps whose action the environment ignores (Copy's input
  phase) get no policy gradient and no entropy bonus, and do not enter advantage
  standardisation (``mask_ignored_actions``, on by default); the critic still learns
  their values.
- ``metadata["reward_parts"] = K`` with ``factored_credit=True``: each part of the
  action (each bit of a ``MultiBinary`` output, each position of a ``MultiDiscrete`` one)
  is credited with its own reward. GAE runs per part, with the baseline ``V(s) / K``
  (``part_values=False``: one critic of the whole reward; the parts' advantages sum to
  the scalar one) or a value per part (``part_values=True``: a critic of K outputs, each
  regressed on its part's return); PPO takes one probability ratio per part and clips
  each. With K = 1 it is the scalar update.
- ``metadata["answer_key"]`` with ``answer_coef > 0``: the negative log-likelihood of the
  revealed right action under the policy's action head, at the steps where one was due,
  is added to the loss with weight ``answer_coef`` (answer supervision: the RAM paper's
  hybrid loss, here for any action head). With ``answer_scope="answers"`` and
  ``metadata["answer_actions"] = (lo, hi)``, a categorical head's likelihood is taken
  among the answering actions ``lo <= a < hi`` only, ``-log pi(a* | s, answering)``:
  it teaches which answer, not whether to answer now (on a task whose answer also ends
  the episode, the whole likelihood teaches answering at once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from cogrl.agents.base import Agent, Hyperparameters
from cogrl.agents.training import adam
from cogrl.checks import check_bools, check_int, check_number
from cogrl.core import sync_free
from cogrl.nn import (
    ActionHead,
    ActorCriticPolicy,
    CategoricalHead,
    PolicyConfig,
    State,
    detach_state,
    index_state,
    map_state,
)
from cogrl.nn.distributions import categorical_log_prob
from cogrl.nn.policies import flatten_time
from cogrl.nn.sequences import Segments
from cogrl.nn.state import leaves

__all__ = ["Evaluation", "OnPolicyAgent", "OnPolicyConfig", "Rollout", "masked_mean", "per_part"]


#: What answer supervision's likelihood is taken over (``OnPolicyConfig.answer_scope``).
ANSWER_SCOPES = ("all", "answers")


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
    - ``factored_credit``: credit each part of the action with its part of the reward
      (the environment must declare ``metadata["reward_parts"]``, and the action head
      factorise over as many parts); ``part_values``: a value per part instead of one
      shared baseline.
    - ``answer_coef``: weight of the answer's negative log-likelihood where the
      environment reveals the right action (``metadata["answer_key"]``); 0 is pure
      reinforcement.
    - ``answer_scope``: ``"all"``, the answer's likelihood among all actions; or
      ``"answers"``, among the answering actions the environment names
      (``metadata["answer_actions"]``, a categorical action space): which answer given
      that the agent answers, leaving when to answer to the reward (with ``answer_coef > 0``).
    - ``mask_ignored_actions``: no policy gradient at steps whose action the environment
      says it ignored (``metadata["ignored_key"]``).
    - ``whole_episodes``: recurrent policies replay every episode from its first step,
      also one that began in an earlier rollout: the steps it took there are kept (up to
      the environment's ``max_episode_steps``) and replayed before this rollout's, without
      a loss of their own, so that an answer's gradient reaches the inputs the core
      stored earlier in the episode (Copy's writes). Without it, a segment that goes on
      from the previous rollout starts from that rollout's last state, detached. A
      feedforward policy has no state to carry: there the setting changes nothing.
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
    factored_credit: bool = False
    part_values: bool = False
    answer_coef: float = 0.0
    answer_scope: str = "all"
    mask_ignored_actions: bool = True
    whole_episodes: bool = False

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
        check_bools(
            self,
            "anneal_lr",
            "normalize_advantage",
            "factored_credit",
            "part_values",
            "mask_ignored_actions",
            "whole_episodes",
        )
        if self.whole_episodes and self.sequence_length is not None:
            raise ValueError(
                "whole_episodes=True replays each episode from its start; it cannot be "
                f"combined with sequence_length={self.sequence_length} (truncated pieces)"
            )
        check_number("answer_coef", self.answer_coef)
        if self.answer_scope not in ANSWER_SCOPES:
            raise ValueError(
                f"answer_scope must be one of {ANSWER_SCOPES}, got {self.answer_scope!r}"
            )
        if self.answer_scope != "all" and self.answer_coef == 0:
            raise ValueError(
                f"answer_scope={self.answer_scope!r} scopes answer supervision, which "
                "answer_coef=0 turns off: set answer_coef > 0, or leave answer_scope='all'"
            )
        if self.part_values and not self.factored_credit:
            raise ValueError("part_values=True needs factored_credit=True (values of parts)")


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
    advantages: torch.Tensor  # (T, N), or (T, N, K) with factored credit
    returns: torch.Tensor  # the value targets, (T, N) or (T, N, K) with part values
    segments: Segments | None = None  # recurrent policies: the rollout cut at episode starts
    acted: torch.Tensor | None = None  # (T, N) float: 0 where the action was ignored
    answers: Any = None  # (T, N, ...) the right actions revealed (answer supervision)
    answer_due: torch.Tensor | None = None  # (T, N) float: 1 where an answer was due
    # whole_episodes: the steps before the rollout's (P of them) are prepended to every
    # time-major tensor, which is then (P + T, N, ...); ``learned`` (P + T, N) is 0 there.
    learned: torch.Tensor | None = None
    prefix: int = 0  # P

    def own(self, x: torch.Tensor) -> torch.Tensor:
        """The rollout's own steps of a time-major tensor, without the prepended ones."""
        return x[self.prefix :]


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
        c, meta = self.config, self.env_metadata
        self.parts = check_credit_parts(c.factored_credit, meta, self.env_id)
        self.answer_key = check_answer_key(c.answer_coef, meta, self.env_id)
        self.ignored_key = meta.get("ignored_key") if c.mask_ignored_actions else None
        # A value per part where there are several (with one part it is the shared value).
        self.part_values = c.part_values and self.parts > 1
        policy = ActorCriticPolicy(
            self.observation_space,
            self.action_space,
            self.config.policy,
            value_parts=self.parts if self.part_values else 1,
        )
        check_factorises(policy.action_head, self.parts, self.action_space)
        self.answer_slice = None
        if self.answer_key is not None and c.answer_scope == "answers":
            self.answer_slice = answer_slice(policy.action_head, meta, self.env_id)
        return policy

    def _make_optimizer(self) -> torch.optim.Optimizer:
        return adam(self.policy.parameters(), lr=self.config.learning_rate, eps=1e-5)

    def _act(self, obs, state, episode_start, deterministic):
        params, _, state = self.policy.step(obs, state, episode_start)
        head = self.policy.action_head
        action = head.mode(params) if deterministic else head.sample(params, self.generator)
        return action, state

    # --- rollouts -------------------------------------------------------------------------------
    def _setup(self) -> None:
        self._history: dict[str, Any] | None = None  # whole_episodes: the earlier steps

    def _start(self) -> None:
        """The training environments, made on the first ``learn`` call and kept after."""
        if self._env is None:
            self._start_stepping(self.config.num_envs)
            self._history = self._empty_history() if self._keeps_history() else None

    def _keeps_history(self) -> bool:
        return self.config.whole_episodes and self.policy.recurrent

    def _empty_history(self) -> dict[str, Any]:
        """No earlier steps: room for ``max_episode_steps`` observations per environment
        (an unfinished episode has taken fewer), and their count (N,)."""
        bound = getattr(self._env, "max_episode_steps", None)
        if bound is None:
            raise ValueError(
                f"whole_episodes=True keeps each unfinished episode's steps, which needs "
                f"episodes of a bounded length; {self.env_id} declares no max_episode_steps"
            )
        return {
            "obs": _alloc(self._obs, int(bound)),
            "length": torch.zeros(self.config.num_envs, dtype=torch.int64, device=self.device),
        }

    def _loop_state(self, include_replay: bool) -> dict[str, Any]:
        if self._env is None:
            return {}
        return {**self._stepping_state(), "history": self._history}

    def _load_loop_state(self, loop, env) -> None:
        if loop:
            self._restore_stepping(self.config.num_envs, loop, env)
            history = loop.get("history")
            self._history = None
            if self._keeps_history():
                # A core that could not be snapshot starts new episodes: no earlier steps.
                fresh = history is None or env is None
                self._history = self._empty_history() if fresh else self.to_device(history)

    @torch.no_grad()
    def collect_rollout(self) -> Rollout:
        """Step every environment ``n_steps`` times with the current policy; GAE on top."""
        c, env, head = self.config, self._env, self.policy.action_head
        T, N, K = c.n_steps, env.num_envs, self.parts
        obs, state, start = self._obs, self._state, self._episode_start
        policy_step = self.compiled(self.policy.step, "the policy's step")
        initial_state = state
        # With sequence_length, a segment may begin at any step: keep every step's state.
        store = self.policy.recurrent and c.sequence_length is not None
        if store:
            initial_state = map_state(lambda s: _alloc(s, T), state)
        obs_buf = _alloc(obs, T)
        starts = torch.empty((T, N), dtype=torch.bool, device=self.device)
        values = torch.empty((T, N, K) if self.part_values else (T, N), device=self.device)
        # Factored credit keeps each part's reward and log-probability: (T, N, K).
        rewards = torch.empty((T, N, K) if K else (T, N), device=self.device)
        log_probs = torch.empty_like(rewards)
        dones = torch.empty_like(starts)
        acted = None if self.ignored_key is None else torch.ones(T, N, device=self.device)
        answers, answer_due = None, None
        if self.answer_key is not None:
            answer_due = torch.zeros(T, N, device=self.device)
        actions = None
        for t in range(T):
            _write(obs_buf, t, obs)
            starts[t] = start
            if store:
                map_state(lambda buf, s, t=t: buf[t].copy_(s), initial_state, state)
            params, value, state = policy_step(obs, state, start)
            action = head.sample(params, self.generator)
            if actions is None:
                actions = _alloc(action, T)
            actions[t] = action
            log_probs[t] = (
                head.log_prob_parts(params, action) if K else head.log_prob(params, action)
            )
            values[t] = value
            obs, reward, terminated, truncated, info = env.step(self.env_action(action))
            if K:
                reward = info["reward_parts"]
            # A time limit is not a failure: bootstrap r + gamma V(final obs) (SB3's way).
            cut = truncated & ~terminated
            # On the CPU, skip the extra forward pass where nothing was cut; on a GPU, asking
            # would wait for the queued kernels, so every row is valued and masked.
            if "final_obs" in info and (sync_free(self.device) or bool(cut.any())):
                _, final_value, _ = self.policy.step(info["final_obs"], state)
                reward = reward + c.gamma * self._part_values(final_value) * per_part(cut, reward)
            rewards[t] = reward
            if acted is not None:
                acted[t] = (~info[self.ignored_key]).float()
            if answer_due is not None:
                revealed = info[self.answer_key]
                if answers is None:
                    answers = _alloc(revealed, T)
                answers[t] = revealed
                answer_due[t] = info["_" + self.answer_key].float()
            start = terminated | truncated
            dones[t] = start
            self._record_episodes(info)
        _, last_value, _ = self.policy.step(obs, state, start)
        self._obs, self._state, self._episode_start = obs, state, start

        # GAE(lambda), backwards in time (per part with factored credit).
        baseline = self._part_values(values)
        last_value = self._part_values(last_value)
        advantages = torch.empty_like(rewards)
        gae = torch.zeros_like(last_value)
        for t in reversed(range(T)):
            next_value = last_value if t == T - 1 else baseline[t + 1]
            not_done = per_part((~dones[t]).float(), rewards[t])
            delta = rewards[t] + c.gamma * next_value * not_done - baseline[t]
            gae = delta + c.gamma * c.gae_lambda * not_done * gae
            advantages[t] = gae
        returns = advantages + baseline
        if K and not self.part_values:
            returns = returns.sum(-1)  # one critic: its target is the whole return
        rollout = Rollout(
            obs=obs_buf,
            actions=actions,
            log_probs=log_probs,
            values=values,
            rewards=rewards,
            dones=dones,
            episode_starts=starts,
            initial_state=detach_state(initial_state),
            advantages=advantages,
            returns=returns,
            segments=(Segments.split(starts, c.sequence_length) if self.policy.recurrent else None),
            acted=acted,
            answers=answers,
            answer_due=answer_due,
        )
        if self._history is None:
            return rollout
        return self._prepend_history(rollout, start)

    def _prepend_history(self, rollout: Rollout, next_start: torch.Tensor) -> Rollout:
        """``whole_episodes``: the rollout with each unfinished episode's earlier steps in
        front, and the history updated to the episodes that go on into the next rollout.

        The P = max(length) earlier steps are right-aligned before step 0: column n holds
        its ``length[n]`` steps at P - length[n] .. P - 1, the first of them an episode
        start (replayed from the initial state); the steps before are filler, a segment of
        its own, never learned from.
        """
        history, T = self._history, rollout.dones.shape[0]
        N = rollout.dones.shape[1]
        length = history["length"]
        P = int(length.max())  # one host read per rollout
        device = self.device
        j = torch.arange(P, device=device)[:, None]
        k = j - (P - length)[None, :]  # index into the history, < 0 for filler
        column = torch.arange(N, device=device)[None, :].expand(P, N)
        prefix_obs = map_state(lambda h: h[k.clamp(min=0), column], history["obs"])
        prefix_start = (k == 0) | (j == 0)
        ext_start = torch.cat([prefix_start, rollout.episode_starts])

        def pad(x: Any) -> Any:  # P leading steps of zeros
            if x is None:
                return None
            return map_state(lambda t: torch.cat([t.new_zeros((P, *t.shape[1:])), t]), x)

        ext_obs = map_state(lambda a, b: torch.cat([a, b]), prefix_obs, rollout.obs)
        learned = torch.cat([torch.zeros(P, N, device=device), torch.ones(T, N, device=device)])
        # The history for the next rollout: each column's steps since its last episode
        # start, none where the next step starts an episode.
        index = torch.arange(P + T, device=device)[:, None].expand(P + T, N)
        last_start = torch.where(ext_start, index, 0).max(0).values
        kept = torch.where(next_start, 0, P + T - last_start)
        H = leaves(history["obs"])[0].shape[0]
        h = torch.arange(H, device=device)[:, None]
        source = (last_start[None, :] + h).clamp(max=P + T - 1)
        column = torch.arange(N, device=device)[None, :].expand(H, N)
        self._history = {
            "obs": map_state(lambda x: x[source, column], ext_obs),
            "length": kept,
        }
        return Rollout(
            obs=ext_obs,
            actions=pad(rollout.actions),
            log_probs=pad(rollout.log_probs),
            values=pad(rollout.values),
            rewards=pad(rollout.rewards),
            dones=pad(rollout.dones),
            episode_starts=ext_start,
            initial_state=rollout.initial_state,
            advantages=pad(rollout.advantages),
            returns=pad(rollout.returns),
            segments=Segments.split(ext_start),
            acted=pad(rollout.acted),
            answers=pad(rollout.answers),
            answer_due=pad(rollout.answer_due),
            learned=learned,
            prefix=P,
        )

    def _part_values(self, value: torch.Tensor) -> torch.Tensor:
        """Values as GAE's baseline: as they are without factored credit or with a value
        per part; otherwise the shared value split evenly over the K parts, ``V(s) / K``
        (..., K), so that the parts' advantages sum to the scalar advantage."""
        if not self.parts or self.part_values:
            return value
        return (value / self.parts)[..., None].expand(*value.shape, self.parts)

    def minibatches(self, rollout: Rollout, batch_size: int) -> list[torch.Tensor]:
        """A random split of the rollout into minibatches of about ``batch_size``
        transitions: of single transitions, or (recurrent policies) of whole segments."""
        segments = rollout.segments
        if segments is None:
            units = rollout.dones.numel()
            order = torch.randperm(units, generator=self.generator, device=self.device)
            return list(order.split(batch_size))
        order = torch.randperm(segments.count, generator=self.generator, device=self.device)
        # Segments in a random order, grouped where their running length passes a multiple
        # of batch_size (so one spans no two minibatches).
        ends = segments.lengths[order.cpu()].cumsum(0) - 1
        sizes = torch.unique_consecutive(ends // batch_size, return_counts=True)[1]
        return list(order.split(sizes.tolist()))

    def evaluate_actions(self, rollout: Rollout, index: torch.Tensor) -> Evaluation:
        """Log-probabilities (per part, with factored credit), entropies, values and action
        parameters of the rollout's actions under the current policy, for ``index``: flat
        transition indices (feedforward policies) or segment numbers (recurrent policies,
        replayed whole; see :meth:`minibatches`). ``rows`` selects the matching entries of
        any flattened (T * N) rollout tensor."""
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
        if self.parts:
            log_prob = head.log_prob_parts(params, action)
        else:
            log_prob = head.log_prob(params, action)
        return Evaluation(log_prob, head.entropy(params), value, rows, params)

    def total_loss(
        self,
        rollout: Rollout,
        ev: Evaluation,
        policy_loss: torch.Tensor,
        value_loss: torch.Tensor,
        entropy_loss: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``L = L_pi + vf_coef L_V + ent_coef L_H``, plus ``answer_coef L_answer`` where the
        environment reveals answers (:meth:`answer_loss` on ``ev``'s rows); the loss, and the
        answer loss detached (None without answers)."""
        c = self.config
        loss = policy_loss + c.vf_coef * value_loss + c.ent_coef * entropy_loss
        if self.answer_key is None:
            return loss, None
        answer_loss = self.answer_loss(rollout, ev.rows, ev.params)
        return loss + c.answer_coef * answer_loss, answer_loss.detach()

    def answer_loss(self, rollout: Rollout, rows: torch.Tensor, params: Any) -> torch.Tensor:
        """Answer supervision: ``-log pi(a*|s)`` of the revealed right action ``a*``,
        averaged over the steps of ``rows`` where one was due (0 where none was)."""
        due = rollout.answer_due.flatten()[rows]
        answer = index_state(flatten_time(rollout.answers), rows)
        if self.answer_slice is None:
            nll = -self.policy.action_head.log_prob(params, answer)
        else:  # -log pi(a* | s, answering): a softmax over the answering actions' logits
            answers = self.answer_slice
            nll = -categorical_log_prob(params[..., answers], answer - answers.start)
        return (nll * due).sum() / due.sum().clamp(min=1)

    def acted_weights(self, rollout: Rollout, rows: torch.Tensor) -> torch.Tensor | None:
        """1 for the steps of ``rows`` whose action the policy gradient credits, 0 for
        those the environment ignored and for steps replayed from earlier rollouts (None
        where every step counts)."""
        if rollout.acted is not None:
            return rollout.acted.flatten()[rows]  # 0 on the replayed steps too
        return None if rollout.learned is None else rollout.learned.flatten()[rows]

    def value_loss(
        self, rollout: Rollout, rows: torch.Tensor, value: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """The critic's squared error on the steps of ``rows``, but those replayed from
        earlier rollouts (their targets were learned then)."""
        if rollout.learned is None:
            return F.mse_loss(value, target)
        squared = (value - target).pow(2)
        if squared.ndim > 1:  # a value per part
            squared = squared.mean(-1)
        return masked_mean(squared, rollout.learned.flatten()[rows])


class Evaluation(NamedTuple):
    """What :meth:`OnPolicyAgent.evaluate_actions` gives for a minibatch."""

    log_prob: torch.Tensor  # (B,), or (B, K) per part with factored credit
    entropy: torch.Tensor  # (B,)
    value: torch.Tensor  # (B,), or (B, K) with part values
    rows: torch.Tensor  # the minibatch's rows of a flattened (T * N) rollout tensor
    params: torch.Tensor  # the action head's parameters, for the answer's likelihood


def masked_mean(x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """The mean of ``x`` (B,) over the entries weighted 1 (all, without weights)."""
    if weights is None:
        return x.mean()
    return (x * weights).sum() / weights.sum().clamp(min=1)


def per_part(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` (N,) shaped to broadcast against ``like``: (N,), or (N, K) per part."""
    return x[..., None] if like.ndim > x.ndim else x


def check_credit_parts(factored: bool, metadata: Mapping[str, Any], env_id: str) -> int:
    """The number of reward parts factored credit splits the reward into (0: no factored
    credit); a ValueError where the environment declares none."""
    if not factored:
        return 0
    parts = metadata.get("reward_parts")
    if isinstance(parts, bool) or not isinstance(parts, int) or parts < 1:
        raise ValueError(
            f"factored_credit=True needs an environment that reports its reward by parts "
            f"(metadata['reward_parts'] = K and info['reward_parts']); {env_id} declares "
            f"{parts!r}. Use factored_credit=False"
        )
    return parts


def check_factorises(head: Any, parts: int, action_space: Any) -> None:
    """A ValueError unless the action distribution factorises over the reward's parts."""
    if parts and head.parts != parts:
        raise ValueError(
            f"factored_credit: the environment's reward has {parts} parts, but the action "
            f"distribution of {action_space} factorises over {head.parts}; factored credit "
            "needs one independent action part per reward part (MultiBinary, MultiDiscrete)"
        )


def check_answer_key(answer_coef: float, metadata: Mapping[str, Any], env_id: str) -> str | None:
    """The info key of the revealed answers where ``answer_coef > 0``; a ValueError where
    the environment reveals none."""
    if answer_coef == 0:
        return None
    key = metadata.get("answer_key")
    if key is None:
        raise ValueError(
            f"answer_coef={answer_coef} needs an environment that reveals the right action "
            f"(metadata['answer_key']); {env_id} does not. Use answer_coef=0 (pure "
            "reinforcement)"
        )
    return key


def answer_slice(head: ActionHead, metadata: Mapping[str, Any], env_id: str) -> slice:
    """The answering actions' columns of a categorical head's logits, from the
    environment's ``metadata["answer_actions"] = (lo, hi)``; a ValueError where the
    environment names none or the head is not categorical."""
    actions = metadata.get("answer_actions")
    if actions is None:
        raise ValueError(
            f"answer_scope='answers' needs an environment that names its answering actions "
            f"(metadata['answer_actions'] = (lo, hi)); {env_id} does not. Use "
            "answer_scope='all'"
        )
    if not isinstance(head, CategoricalHead):
        raise ValueError(
            f"answer_scope='answers' needs a Discrete action space (a categorical head); "
            f"{env_id}'s head is {type(head).__name__}"
        )
    lo, hi = (int(a) - head.start for a in actions)
    if not 0 <= lo < hi <= head.n:
        raise ValueError(
            f"metadata['answer_actions'] = {tuple(actions)} of {env_id} is not a range of "
            f"its {head.n} actions starting at {head.start}"
        )
    return slice(lo, hi)


def explained_variance(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - Var[target - prediction] / Var[target]`` (1: perfect, 0: no better than a mean;
    NaN where the target does not vary)."""
    var = target.var()
    ev = 1 - (target - prediction).var() / var
    return torch.where(var == 0, torch.full_like(ev, float("nan")), ev)
