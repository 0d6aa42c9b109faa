"""The answer contract: reward parts, ignored actions and right answers, task by task.

A task whose action is made of independently scored parts declares
``metadata["reward_parts"] = K`` and reports ``info["reward_parts"]`` (N, K) float32, summing
to the reward; one with steps whose action it ignores declares ``metadata["ignored_key"] =
"action_ignored"`` and reports ``info["action_ignored"]`` (N,) bool; one that knows the
right action declares ``metadata["answer_key"] = "answer"`` and reports ``info["answer"]``
(the action space's batched format) with the mask ``info["_answer"]``, true where an answer
was due. Here: the declarations are where, and only where, they should be; the parts sum to
the reward and are right channel by channel; the ignored steps of hand-checked episodes,
and that random actions there change nothing; that the answer earns the full reward, on
the finished episode under autoreset too, on both stepping paths (default and sync-free).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from cogrl.core import BatchedEnv, force_sync_free
from cogrl.envs import make_core

COPY, REPEAT, RECALL, DELAYED, STORY = (
    "cogrl/Copy-v0",
    "cogrl/RepeatCopy-v0",
    "cogrl/AssociativeRecall-v0",
    "cogrl/DelayedRecall-v0",
    "cogrl/StoryQA-v0",
)
GLIMPSE, TRANSLATED, CLUTTERED, MULTI, SEARCH = (
    "cogrl/GlimpseDigits-v0",
    "cogrl/TranslatedDigits-v0",
    "cogrl/ClutteredDigits-v0",
    "cogrl/MultiDigits-v0",
    "cogrl/VisualSearch-v0",
)
SMALL_GLIMPSE = {"glimpse_size": 6, "n_scales": 1, "n_glimpses": 3}
SMALL_MULTI = {"canvas_size": 60, "glimpse_size": 6, "n_scales": 1, "n_glimpses": 4}
SMALL_SEARCH = {"canvas_size": 60, "n_distractors": 2, "n_glimpses": 4, "n_scales": 1}

# (env_id, kwargs, the declarations expected: reward_parts (K or None), ignored, answers).
TASKS: list[tuple[str, dict[str, Any], int | None, bool, bool]] = [
    (COPY, {"bits": 3, "max_length": 4}, 3, True, True),
    (REPEAT, {"bits": 3, "max_length": 3, "max_repeats": 3}, 4, True, True),
    (RECALL, {"bits": 3, "item_length": 2, "max_items": 4}, 3, True, True),
    (DELAYED, {"delay": 2}, None, True, True),
    (DELAYED, {"delay": 0, "n_choices": 3}, None, True, True),
    (STORY, {"task": 1, "max_sentences": 3}, None, True, True),
    (GLIMPSE, SMALL_GLIMPSE, None, False, False),
    (GLIMPSE, {**SMALL_GLIMPSE, "action_mode": "discrete"}, None, False, True),
    (TRANSLATED, {**SMALL_GLIMPSE, "action_mode": "discrete"}, None, False, True),
    (CLUTTERED, {**SMALL_GLIMPSE, "action_mode": "discrete"}, None, False, True),
    (CLUTTERED, SMALL_GLIMPSE, None, False, False),
    (MULTI, SMALL_MULTI, None, False, False),
    (MULTI, {**SMALL_MULTI, "action_mode": "discrete"}, None, False, True),
    (MULTI, {**SMALL_MULTI, "action_mode": "discrete", "target": "sum"}, None, False, True),
    (SEARCH, SMALL_SEARCH, None, False, False),
    (SEARCH, {**SMALL_SEARCH, "action_mode": "discrete", "grid_size": 3}, None, False, True),
    (
        "cogrl/Scanpath-v0",
        {"saliency": "center_bias", "n_fixations": 2, "image_size": (36, 36)},
        None,
        False,
        False,
    ),
]
WITH_PARTS = [t for t in TASKS if t[2] is not None]
WITH_IGNORED = [t for t in TASKS if t[3]]
WITH_ANSWERS = [t for t in TASKS if t[4]]


def _name(entry: Any) -> str:
    if isinstance(entry, str):
        return entry.split("/")[-1]
    if isinstance(entry, Mapping):
        return "-".join(f"{k}={v}" for k, v in entry.items()) or "defaults"
    return str(entry)


def tasks(entries: list[tuple]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        ("env_id", "kwargs"),
        [t[:2] for t in entries],
        ids=[_name(t[0]) + "-" + _name(t[1]) for t in entries],
    )


def random_actions(core: BatchedEnv, seed: int, steps: int) -> list[torch.Tensor]:
    space = copy.deepcopy(batch_space(core.single_action_space, core.num_envs))
    space.seed(seed)
    return [torch.as_tensor(space.sample()) for _ in range(steps)]


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Equal step outputs: tensors bit for bit, dicts key by key."""
    if isinstance(a, Mapping):
        assert set(a) == set(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif a is None or b is None:
        assert a is None and b is None, where
    else:
        assert a.dtype == b.dtype and torch.equal(a, b), where


def valid(info: Mapping[str, Any]) -> dict[str, Any]:
    """The valid rows of each info key (all rows where it has no ``_`` mask): the others are
    unspecified."""
    out = {}
    for key, value in info.items():
        if key.startswith("_"):
            out[key] = value
            continue
        mask = info.get("_" + key)
        if isinstance(value, Mapping):
            out[key] = valid({k: v if mask is None else v[mask] for k, v in value.items()})
        else:
            out[key] = value if mask is None else value[mask]
    return out


def step_outputs(core: BatchedEnv, action: torch.Tensor) -> tuple:
    """A step's outputs, and last what two runs compare of them: the observation, reward,
    ends, the info keys' valid rows and the final observations of the finished episodes."""
    obs, reward, terminated, truncated, info = core.step(action)
    info = dict(info)
    final = info.pop("final_obs", None)
    info.pop("_final_obs", None)
    done = terminated | truncated
    if final is not None:
        final = {k: v[done] for k, v in final.items()} if isinstance(final, dict) else final[done]
    compared = (obs, reward, terminated, truncated, valid(info), final)
    return obs, reward, terminated, truncated, info, compared


# --- declarations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "kwargs", "parts", "ignored", "answers"),
    TASKS,
    ids=[_name(t[0]) + "-" + _name(t[1]) for t in TASKS],
)
def test_declarations_are_where_and_only_where_they_apply(
    env_id: str, kwargs: dict[str, Any], parts: int | None, ignored: bool, answers: bool
) -> None:
    core = make_core(env_id, 4, **kwargs)
    for metadata in (core.metadata, gym.make(env_id, **kwargs).metadata):
        assert metadata.get("reward_parts") == parts
        assert metadata.get("ignored_key") == ("action_ignored" if ignored else None)
        assert metadata.get("answer_key") == ("answer" if answers else None)
    if parts is not None:
        assert isinstance(core.metadata["reward_parts"], int)
        assert parts == spaces.flatdim(core.single_action_space)  # one per action element
    core.reset(seed=0)
    for action in random_actions(core, 0, 2 * core.max_episode_steps):
        *_, info = core.step(action)
        assert ("reward_parts" in info) == (parts is not None)
        assert ("action_ignored" in info) == ignored
        assert ("answer" in info) == ("_answer" in info) == answers


def test_class_metadata_leaves_per_instance_declarations_out() -> None:
    """Declarations that depend on the arguments are the instance's: the glimpse tasks
    declare answers in the discrete mode only, so their classes declare none; the
    algorithmic tasks' part count is their action's width."""
    from cogrl.envs import core_spec, env_metadata

    for env_id in (GLIMPSE, TRANSLATED, CLUTTERED, MULTI, SEARCH):
        assert "answer_key" not in core_spec(env_id)[0].metadata
        assert "answer_key" not in env_metadata(env_id)
    for env_id, n in ((COPY, 8), (REPEAT, 9), (RECALL, 6)):
        assert make_core(env_id, 1).metadata["reward_parts"] == n  # defaults: bits (+ 1)


# --- reward parts -------------------------------------------------------------------------------


@tasks(WITH_PARTS)
@pytest.mark.parametrize("sync_free", [False, True], ids=["default", "sync-free"])
def test_reward_parts_sum_to_the_reward_and_score_each_channel(
    env_id: str, kwargs: dict[str, Any], sync_free: bool
) -> None:
    n = 16
    core = make_core(env_id, n, **kwargs)
    k = core.metadata["reward_parts"]
    core.reset(seed=1)
    scored = 0
    for action in random_actions(core, 1, 4 * core.max_episode_steps):
        # The target and whether the step is an output step, from the state before it.
        target = core.targets[core._all, core.t].clone()
        answering = core.t >= core.answer_start
        if sync_free:
            with force_sync_free():
                _, reward, *_, info = core.step(action)
        else:
            _, reward, *_, info = core.step(action)
        parts = info["reward_parts"]
        assert parts.dtype == torch.float32 and parts.shape == (n, k)
        torch.testing.assert_close(parts.sum(1), reward, rtol=0, atol=1e-6)
        right = (action.to(torch.int8) == target) & answering[:, None]
        assert torch.equal(parts, right.float() / k)
        assert bool((parts[~answering] == 0).all())
        scored += int(answering.sum())
    assert scored > n


def test_copy_reward_parts_by_hand() -> None:
    """Copy of two 2-bit vectors: at the first output step, one channel right of two gives
    parts (0, 1/2) and the reward 1/2; nothing is scored before."""
    core = make_core(COPY, 1, bits=2, min_length=2, max_length=2)
    obs, _ = core.reset(seed=4)
    first = obs[0, :2].to(torch.int8)
    for _ in range(3):  # the sequence and the delimiter
        _, reward, *_, info = core.step(torch.ones(1, 2, dtype=torch.int8))
        assert float(reward) == 0.0 and torch.equal(info["reward_parts"], torch.zeros(1, 2))
    wrong_first = torch.stack([1 - first[0], first[1]])[None]
    _, reward, *_, info = core.step(wrong_first)
    assert float(reward) == 0.5
    assert torch.equal(info["reward_parts"], torch.tensor([[0.0, 0.5]]))


# --- ignored actions ----------------------------------------------------------------------------


def one_episode_ignored(env_id: str, **kwargs: Any) -> tuple[list[bool], BatchedEnv]:
    """``action_ignored`` at each step of one episode (of environment 0), zeros as actions."""
    core = make_core(env_id, 1, **kwargs)
    core.reset(seed=2)
    action = torch.zeros(core.single_action_space.shape or (), dtype=torch.int64)[None]
    if isinstance(core.single_action_space, spaces.MultiBinary):
        action = action.to(torch.int8)
    flags = []
    while True:
        *_, terminated, truncated, info = core.step(action)
        flags.append(bool(info["action_ignored"][0]))
        if bool(terminated[0] | truncated[0]):
            return flags, core


def test_ignored_steps_of_hand_checked_episodes() -> None:
    # Copy of 3 vectors: 3 input steps and the delimiter, then 3 output steps.
    flags, _ = one_episode_ignored(COPY, bits=2, min_length=3, max_length=3)
    assert flags == [True] * 4 + [False] * 3
    # RepeatCopy of 2 vectors, 2 repeats: 2 inputs, delimiter, count; 2 x 2 outputs, end.
    flags, _ = one_episode_ignored(
        REPEAT,
        bits=2,
        min_length=2,
        max_length=2,
        min_repeats=2,
        max_repeats=2,
        normalise_repeats=(1, 10),
    )
    assert flags == [True] * 4 + [False] * 5
    # AssociativeRecall of 2 items of 2 vectors: 2 x (delimiter + 2), then delimiter, the
    # query's 2 vectors, delimiter (10 input steps); then 2 output steps.
    flags, _ = one_episode_ignored(RECALL, bits=3, item_length=2, min_items=2, max_items=2)
    assert flags == [True] * 10 + [False] * 2
    # DelayedRecall with delay 2: the cue, 2 blanks, the query.
    flags, _ = one_episode_ignored(DELAYED, delay=2)
    assert flags == [True, True, True, False]
    flags, _ = one_episode_ignored(DELAYED, delay=0)
    assert flags == [True, False]
    # StoryQA: every story sentence, then the question.
    core = make_core(STORY, 1, task=2)
    core.reset(seed=5)
    length = int(core.story_length[core.question_index[0]])
    assert length >= 2
    flags = []
    for _ in range(length + 1):
        *_, info = core.step(torch.zeros(1, dtype=torch.int64))
        flags.append(bool(info["action_ignored"][0]))
    assert flags == [True] * length + [False]


@tasks(WITH_IGNORED)
@pytest.mark.parametrize("sync_free", [False, True], ids=["default", "sync-free"])
def test_random_actions_at_ignored_steps_change_nothing(
    env_id: str, kwargs: dict[str, Any], sync_free: bool
) -> None:
    """Two runs from one seed, one action stream, but random other actions where the first
    run reports the action ignored: every output (observations, rewards, ends, infos, final
    observations) is the same, over several episodes per environment (autoresets)."""
    n = 8
    first, second = make_core(env_id, n, **kwargs), make_core(env_id, n, **kwargs)
    steps = 4 * first.max_episode_steps
    base, other = random_actions(first, 3, steps), random_actions(first, 4, steps)
    first.reset(seed=6)
    second.reset(seed=6)
    path = force_sync_free() if sync_free else contextlib.nullcontext()
    with path:
        expected, ignored = [], []
        for action in base:
            out = step_outputs(first, action)
            assert out[4]["action_ignored"].dtype == torch.bool
            assert out[4]["action_ignored"].shape == (n,)
            expected.append(out)
            ignored.append(out[4]["action_ignored"])
        changed = 0
        for t, (action, random, skip) in enumerate(zip(base, other, ignored, strict=True)):
            rows = skip.view(-1, *[1] * (action.ndim - 1))
            mixed = torch.where(rows, random, action)
            changed += int((mixed != action).view(n, -1).any(1).sum())
            assert_same(step_outputs(second, mixed)[5], expected[t][5], f"step {t}")
    assert changed > n  # the random actions did differ at ignored steps


# --- answers ------------------------------------------------------------------------------------


def due_steps(core: BatchedEnv, action: torch.Tensor, out: tuple) -> torch.Tensor:
    """When an answer is due, by each task's rule, from the step's action and outputs."""
    _, _, terminated, truncated, info, _ = out
    done = terminated | truncated
    name = type(core).__name__
    if name in ("Copy", "RepeatCopy", "AssociativeRecall", "DelayedRecall", "StoryQA"):
        return ~info["action_ignored"]
    if name == "MultiDigits":  # every step but a look, and the last
        return (action >= core.grid_size**2) | done
    return done  # the glimpse tasks and visual search: the step the episode ends


@tasks(WITH_ANSWERS)
@pytest.mark.parametrize("sync_free", [False, True], ids=["default", "sync-free"])
def test_the_answer_earns_the_full_reward_where_due_also_at_episode_ends(
    env_id: str, kwargs: dict[str, Any], sync_free: bool
) -> None:
    """At every step: take a random action and read the answer; go back (a snapshot) and
    take the answer instead, where it was due: it earns the reward 1, the most a step earns
    in these tasks. The answer is the same whatever the action (it is the right action of
    the state the action was taken in), in the action space's batched format; at the steps
    episodes end (autoreset) it is the finished episode's, which the reward it earns shows."""
    n = 16
    core = make_core(env_id, n, **kwargs)
    batched = batch_space(core.single_action_space, n)
    core.reset(seed=7)
    due_total = ended_due = 0
    path = force_sync_free() if sync_free else contextlib.nullcontext()
    with path:
        for action in random_actions(core, 7, 4 * core.max_episode_steps):
            snapshot = core.state_dict()
            out = step_outputs(core, action)
            info = out[4]
            # Copies: loading the snapshot below writes into the core's tensors in place,
            # which would hide an answer that is a view of them (changed by the autoreset).
            answer, due = info["answer"].clone(), info["_answer"].clone()
            assert due.dtype == torch.bool and due.shape == (n,)
            assert torch.equal(due, due_steps(core, action, out))
            assert answer.dtype == action.dtype and answer.shape == action.shape
            assert batched.contains(answer.numpy())
            after = core.state_dict()
            core.load_state_dict(snapshot)
            rows = due.view(-1, *[1] * (action.ndim - 1))
            answered = step_outputs(core, torch.where(rows, answer, action))
            assert bool((answered[1][due] == 1.0).all()), (answered[1], due)
            assert torch.equal(answered[4]["answer"][due], answer[due])
            core.load_state_dict(after)  # go on as the random actions did
            due_total += int(due.sum())
            ended_due += int((due & (out[2] | out[3])).sum())
    assert due_total > n and ended_due > n


def test_answers_by_hand() -> None:
    # DelayedRecall: the answer is the cue shown at step 0, due at the query step only.
    core = make_core(DELAYED, 1, delay=1, n_choices=3)
    obs, _ = core.reset(seed=3)
    cue = int(obs[0, :3].argmax())
    dues = []
    for _ in range(3):
        *_, info = core.step(torch.zeros(1, dtype=torch.int64))
        assert int(info["answer"][0]) == cue
        dues.append(bool(info["_answer"][0]))
    assert dues == [False, False, True]
    # Copy: the answer at output step j is input vector j; zeros before.
    core = make_core(COPY, 1, bits=4, min_length=2, max_length=2)
    obs, _ = core.reset(seed=8)
    inputs = [obs[0, :4].to(torch.int8)]
    zero = torch.zeros(1, 4, dtype=torch.int8)
    answers = []
    for _ in range(5):
        obs, *_, info = core.step(zero)
        inputs.append(obs[0, :4].to(torch.int8))
        answers.append((info["answer"][0].clone(), bool(info["_answer"][0])))
    assert [due for _, due in answers] == [False, False, False, True, True]
    assert torch.equal(answers[3][0], inputs[0]) and torch.equal(answers[4][0], inputs[1])
    assert all(not bool(a.any()) for a, due in answers if not due)
    # StoryQA: the question's answer word, due at the question step only.
    core = make_core(STORY, 1, task=1)
    core.reset(seed=4)
    q = int(core.question_index[0])
    length, word = int(core.story_length[q]), int(core.answers[q])
    assert core.vocab[word] == core.data.answers[q]
    for t in range(length + 1):
        *_, terminated, _, info = core.step(torch.zeros(1, dtype=torch.int64))
        assert bool(info["_answer"][0]) == bool(terminated[0]) == (t == length)
    assert int(info["answer"][0]) == word
    # GlimpseDigits (discrete): the answering action of the label, due when the episode ends.
    core = make_core(GLIMPSE, 2, action_mode="discrete", n_glimpses=3)
    core.reset(seed=1)
    g2, label = core.grid_size**2, core.label.clone()
    *_, info = core.step(torch.tensor([0, g2 + 3]))  # env 0 looks, env 1 answers 3
    assert torch.equal(info["answer"], label.long() + g2)
    assert info["_answer"].tolist() == [False, True]
    # MultiDigits (discrete, sequence of 2): the label of the next position, due at emits.
    core = make_core(MULTI, 1, action_mode="discrete")
    core.reset(seed=2)
    g2, labels = core.grid_size**2, core.label[0].tolist()
    wrong = (labels[0] + 1) % 10
    expected = [(0, False, labels[0]), (g2 + wrong, True, labels[0]), (0, False, labels[1])]
    for action, due, label in expected:
        *_, info = core.step(torch.tensor([action]))
        assert bool(info["_answer"][0]) == due and int(info["answer"][0]) == g2 + label


def test_visual_search_answer_cell_lies_on_the_target() -> None:
    """The declared cell's centre lies in the target's box, the nearest such to the box's
    centre; where no cell centre does (a coarse grid), no answer is due."""
    core = make_core(SEARCH, 64, action_mode="discrete")
    core.reset(seed=0)
    cell, exists = core.target_cell()
    assert bool(exists.all())  # the defaults: every box holds a cell centre
    centres = core.cell_locations
    assert bool(core.on_target(centres[cell]).all())
    # Every cell by the declaration's own test, (N, G*G); the chosen one the nearest.
    on = torch.stack([core.on_target(c.expand(64, 2)) for c in centres], 1)
    box = core.target_box
    middle = (box[:, :2] + box[:, 2:]) / 2
    distances = (centres[None] - middle[:, None]).square().sum(-1)
    best = distances.masked_fill(~on, float("inf")).min(1).values
    torch.testing.assert_close(distances.gather(1, cell[:, None])[:, 0], best)
    coarse = make_core(SEARCH, 64, action_mode="discrete", grid_size=1)
    coarse.reset(seed=0)
    cell, exists = coarse.target_cell()
    assert torch.equal(exists, coarse.on_target(torch.zeros(64, 2)))
    *_, info = coarse.step(torch.ones(64, dtype=torch.int64))  # declare at the centre
    assert torch.equal(info["_answer"], exists)
