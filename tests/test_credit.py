"""Credit per answer part, masked ignored steps and answer supervision in the learners
(PPO, A2C, REINFORCE): what users rely on when they turn them on."""

from __future__ import annotations

import pytest
import torch

import cogrl.agents as A

COPY = "cogrl/Copy-v0"
SMALL_PPO = {"num_envs": 8, "n_steps": 16, "batch_size": 32, "policy": {"core": "gru"}}


def weights(agent: A.Agent) -> list[torch.Tensor]:
    return [p.detach().clone() for p in agent.policy.parameters()]


def trained(name: str, steps: int, env_kwargs: dict, **hyperparameters) -> list[torch.Tensor]:
    agent = A.make(name, COPY, device="cpu", seed=1, env_kwargs=env_kwargs, **hyperparameters)
    agent.learn(steps)
    return weights(agent)


@pytest.mark.parametrize(
    "name, hyperparameters",
    [
        ("ppo", SMALL_PPO),
        ("ppo", {**SMALL_PPO, "part_values": True}),
        ("a2c", {"num_envs": 8, "policy": {"core": "gru"}}),
        ("reinforce", {"num_envs": 8, "policy": {"core": "gru"}}),
    ],
)
def test_factored_credit_with_one_part_is_the_scalar_update(name, hyperparameters):
    # Copy with one bit: a reward of one part, a Bernoulli action of one part.
    one_bit = {"bits": 1, "max_length": 3}
    hp = {k: v for k, v in hyperparameters.items() if k != "part_values"}
    scalar = trained(name, 512, one_bit, **hp)
    factored = trained(name, 512, one_bit, factored_credit=True, **hyperparameters)
    for a, b in zip(scalar, factored, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["ppo", "a2c", "reinforce"])
def test_factored_credit_on_many_bits_learns_and_logs(name):
    hp = SMALL_PPO if name == "ppo" else {"num_envs": 8, "policy": {"core": "gru"}}
    seen: dict[str, float] = {}
    agent = A.make(
        name, COPY, device="cpu", env_kwargs={"max_length": 2}, factored_credit=True, **hp
    )
    agent.learn(600, callback=lambda a, info: seen.update(info))
    assert agent.parts == 8
    assert torch.isfinite(torch.tensor(seen["train/loss"]))


@pytest.mark.parametrize("name", ["ppo", "a2c", "reinforce"])
def test_factored_credit_without_reward_parts_is_a_clear_error(name):
    with pytest.raises(ValueError, match="reward_parts"):
        A.make(name, "CartPole-v1", device="cpu", factored_credit=True)


def test_factored_credit_needs_an_action_that_factorises_over_the_parts():
    from gymnasium import spaces

    from cogrl.agents.on_policy import check_factorises
    from cogrl.nn.distributions import BernoulliHead, CategoricalHead

    check_factorises(BernoulliHead(4, 8), 8, spaces.MultiBinary(8))  # one part per bit
    for head in (BernoulliHead(4, 6), CategoricalHead(4, 8)):
        with pytest.raises(ValueError, match="factorises over"):
            check_factorises(head, 8, "the action space")


def test_part_values_need_factored_credit():
    with pytest.raises(ValueError, match="factored_credit"):
        A.make("ppo", COPY, device="cpu", part_values=True)


@pytest.mark.parametrize("name", ["ppo", "a2c", "reinforce"])
def test_answer_supervision_without_answers_is_a_clear_error(name):
    with pytest.raises(ValueError, match="answer_key"):
        A.make(name, "CartPole-v1", device="cpu", answer_coef=1.0)


def test_ram_takes_its_classifier_weight_as_answer_coef():
    with pytest.raises(ValueError, match="answer_coef"):
        A.make("ram", "cogrl/GlimpseDigits-v0", device="cpu", answer_coef=-1.0)
    assert A.make("ram", "cogrl/GlimpseDigits-v0", device="cpu").config.answer_coef == 1.0


@pytest.mark.parametrize("name", ["ppo", "a2c"])
def test_ignored_steps_get_no_gradient_and_no_part_in_the_standardisation(name):
    """Two agents learn from the same rollouts, except that at the steps the environment
    ignored, one's actions and advantages are scrambled: their weights stay equal."""
    hp = {**(SMALL_PPO if name == "ppo" else {"num_envs": 8}), "policy": {"core": "gru"}}
    if name == "a2c":
        hp["normalize_advantage"] = True

    def agent_with(scramble: bool) -> A.Agent:
        agent = A.make(name, COPY, device="cpu", seed=2, env_kwargs={"max_length": 3}, **hp)
        collect = agent.collect_rollout

        def collect_and_scramble():
            rollout = collect()
            ignored = rollout.acted == 0
            assert bool(ignored.any()) and bool((~ignored).any())
            if scramble:
                rollout.actions[ignored] = 1 - rollout.actions[ignored]
                rollout.advantages[ignored] = 1e3
            return rollout

        agent.collect_rollout = collect_and_scramble
        agent.learn(256)
        return agent

    for a, b in zip(weights(agent_with(False)), weights(agent_with(True)), strict=True):
        assert torch.equal(a, b)


def test_ignored_steps_are_credited_when_masking_is_off():
    agent = A.make("a2c", COPY, device="cpu", mask_ignored_actions=False)
    assert agent.ignored_key is None
    agent = A.make("a2c", COPY, device="cpu")
    assert agent.ignored_key == "action_ignored"


@pytest.mark.parametrize("name", ["ppo", "a2c", "reinforce"])
def test_answer_supervision_teaches_delayed_recall_fast(name):
    hp = {"num_envs": 32, "learning_rate": 3e-3, "policy": {"core": "gru", "core_size": 32}}
    if name == "ppo":
        hp.update(n_steps=16, batch_size=128)
    agent = A.make(name, "cogrl/DelayedRecall-v0", device="cpu", seed=0, answer_coef=1.0, **hp)
    seen: dict[str, float] = {}
    agent.learn(20_000, callback=lambda a, info: seen.update(info))
    assert seen["train/answer_loss"] < 0.3
    assert A.evaluate(agent, episodes=200)["accuracy"] > 0.95


SEARCH_KW = {"action_mode": "discrete", "canvas_size": 60, "n_distractors": 1, "grid_size": 3}


@pytest.mark.parametrize(
    "env_id, kwargs, looks, n",
    [
        ("cogrl/GlimpseDigits-v0", {"action_mode": "discrete"}, 9, 19),
        ("cogrl/MultiDigits-v0", {"action_mode": "discrete", "grid_size": 3}, 9, 9 + 10 + 1),
        ("cogrl/VisualSearch-v0", SEARCH_KW, 9, 18),
    ],
)
def test_glimpse_tasks_name_their_answering_actions(env_id, kwargs, looks, n):
    import gymnasium as gym

    import cogrl  # noqa: F401  (registers the ids)

    env = gym.make_vec(env_id, num_envs=1, **kwargs)
    assert env.single_action_space.n == n
    assert env.metadata["answer_actions"] == (looks, n)
    continuous = gym.make_vec(env_id, num_envs=1, **{**kwargs, "action_mode": "continuous"})
    assert "answer_actions" not in continuous.metadata


@pytest.mark.parametrize("name", ["ppo", "a2c"])
def test_answer_scope_answers_scores_where_to_answer_not_when(name):
    """With ``answer_scope="answers"`` the answer's likelihood is a softmax over the
    declaring actions alone: the looking actions' logits get no gradient from it, so the
    supervision cannot teach declaring at once (what the whole likelihood teaches)."""
    hp = {"num_envs": 8, "n_steps": 8, "policy": {"core": "gru", "core_size": 16}}
    if name == "ppo":
        hp["batch_size"] = 32
    agent = A.make(
        name,
        "cogrl/VisualSearch-v0",
        device="cpu",
        seed=0,
        env_kwargs=SEARCH_KW,
        answer_coef=1.0,
        answer_scope="answers",
        **hp,
    )
    agent.learn(64)  # makes the environments
    assert agent.answer_slice == slice(9, 18)
    rollout = agent.collect_rollout()
    rows = torch.arange(64)
    assert rollout.answer_due.sum() > 0
    params = torch.randn(64, 18, requires_grad=True)
    loss = agent.answer_loss(rollout, rows, params)
    loss.backward()
    assert torch.all(params.grad[:, :9] == 0)
    assert params.grad[:, 9:].abs().sum() > 0
    # the conditional likelihood, -log pi(a* | s, declaring), at the steps where it was due
    answer = rollout.answers.flatten()[rows] - 9
    due = rollout.answer_due.flatten()[rows]
    nll = -torch.log_softmax(params[:, 9:], -1).gather(-1, answer[:, None]).squeeze(-1)
    torch.testing.assert_close(loss, (nll * due).sum() / due.sum())
    # the whole likelihood, the default, does push the looking actions' logits down
    agent.answer_slice = None
    params.grad = None
    agent.answer_loss(rollout, rows, params).backward()
    assert params.grad[:, :9].abs().sum() > 0


def test_answer_scope_is_checked():
    with pytest.raises(ValueError, match="answer_scope.*'where'"):
        A.make("ppo", "cogrl/DelayedRecall-v0", device="cpu", answer_scope="where")
    with pytest.raises(ValueError, match="answer_coef=0"):  # a scope of nothing
        A.make("ppo", "cogrl/DelayedRecall-v0", device="cpu", answer_scope="answers")
    with pytest.raises(ValueError, match="answer_actions"):
        A.make(
            "ppo", "cogrl/DelayedRecall-v0", device="cpu", answer_coef=1.0, answer_scope="answers"
        )


def test_answer_coef_zero_reads_no_answers():
    agent = A.make("ppo", COPY, device="cpu", **SMALL_PPO)
    assert agent.answer_key is None
    agent.learn(256)


def test_whole_episodes_keep_the_steps_of_unfinished_episodes():
    agent = A.make(
        "ppo", COPY, device="cpu", env_kwargs={"max_length": 6}, whole_episodes=True, **SMALL_PPO
    )
    agent._start()
    for _ in range(3):
        rollout = agent.collect_rollout()
        # Each environment keeps the steps its episode has taken (the core's step counter),
        # and the rollout replays the ones before this rollout from their episode's start.
        assert torch.equal(agent._history["length"], agent._env.t)
        assert rollout.learned[: rollout.prefix].sum() == 0
        assert rollout.learned[rollout.prefix :].min() == 1
        assert bool(rollout.segments.fresh.all())  # every segment starts an episode


def test_whole_episodes_carry_the_gradient_back_to_an_earlier_rollout():
    """A cue 10 steps before the question, rollouts of 4 steps: the question never shares
    a rollout with its cue. Cut at the rollout's edge, the answer cannot be learnt (chance);
    replayed from the episode's start, it is."""
    accuracy = {}
    for whole in (False, True):
        agent = A.make(
            "a2c",
            "cogrl/DelayedRecall-v0",
            device="cpu",
            seed=0,
            env_kwargs={"delay": 10},
            num_envs=32,
            n_steps=4,
            learning_rate=3e-3,
            optimizer="adam",
            answer_coef=1.0,
            whole_episodes=whole,
            policy={"core": "gru", "core_size": 32},
        )
        agent.learn(30_000)
        accuracy[whole] = A.evaluate(agent, episodes=200)["accuracy"]
    assert accuracy[False] < 0.7
    assert accuracy[True] > 0.95


def test_whole_episodes_cannot_be_combined_with_truncated_pieces():
    with pytest.raises(ValueError, match="sequence_length"):
        A.make("ppo", COPY, device="cpu", whole_episodes=True, sequence_length=8)


def test_whole_episodes_resume_exactly(tmp_path):
    kwargs = dict(device="cpu", seed=4, env_kwargs={"max_length": 5}, whole_episodes=True)
    whole = A.make("ppo", COPY, **kwargs, **SMALL_PPO)
    whole.learn(1024)
    first = A.make("ppo", COPY, **kwargs, **SMALL_PPO)
    first.learn(512)
    first.save(tmp_path / "half", training=True)
    resumed, training = A.base.load_checkpoint(tmp_path / "half", device="cpu")
    resumed.load_training_state(training)
    resumed.learn(512, reset_num_timesteps=False)
    for a, b in zip(weights(whole), weights(resumed), strict=True):
        assert torch.equal(a, b)


def test_dqn_learns_revealed_answers_by_dqfds_margin():
    agent = A.make(
        "dqn",
        "cogrl/DelayedRecall-v0",
        device="cpu",
        seed=0,
        answer_coef=1.0,
        learning_starts=256,
        train_freq=32,
        exploration_fraction=0.5,
        env_kwargs={"delay": 1},
        policy={"core": "gru", "core_size": 32},
    )
    assert {"answer", "answer_due"} <= set(agent.replay.extra_specs)
    agent.learn(6_000)
    assert A.evaluate(agent, episodes=200)["accuracy"] > 0.95


def test_dqn_refuses_a_shared_replay_without_answers():
    plain = A.make("dqn", "cogrl/DelayedRecall-v0", device="cpu")
    with pytest.raises(ValueError, match="answer"):
        A.make("dqn", "cogrl/DelayedRecall-v0", device="cpu", answer_coef=1.0, replay=plain.replay)


@pytest.mark.parametrize("core", ["gru", "lstm", "ntm"])
def test_whole_episodes_replay_the_rollouts_log_probs_and_values(core):
    """Replayed from their episodes' first steps (kept from earlier rollouts), the
    rollout's own steps get the log-probabilities and values it computed step by step."""
    policy = {"core": core, "core_size": 16}
    if core == "ntm":
        policy.update(memory_size=8, memory_width=6)
    agent = A.make(
        "ppo",
        COPY,
        device="cpu",
        seed=0,
        env_kwargs={"max_length": 6},
        num_envs=4,
        n_steps=5,
        batch_size=20,
        whole_episodes=True,
        factored_credit=True,
        policy=policy,
    )
    agent._start()
    for _ in range(4):  # episodes of up to 13 steps span several 5-step rollouts
        rollout = agent.collect_rollout()
    assert rollout.prefix > 0
    with torch.no_grad():
        replayed = agent.evaluate_actions(rollout, torch.arange(rollout.segments.count))
    own = rollout.learned.flatten()[replayed.rows] == 1
    rows = replayed.rows[own]
    torch.testing.assert_close(replayed.log_prob[own], rollout.log_probs.flatten(0, 1)[rows])
    torch.testing.assert_close(replayed.value[own], rollout.values.flatten(0, 1)[rows])
