"""Curricula (cogrl.curriculum) and the cores they reconfigure while running
(BatchedEnv.configure): a new value applies from each environment's next reset, per
environment; bad names and values are refused with the bound; an unconfigured core draws
what it always drew; snapshots hold the configured values; the curriculum advances exactly
when the threshold holds over the window at the current level, draws the mix at its
published fractions, resumes exactly, and parses its text form."""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
import torch
from gymnasium import spaces
from test_envs_core import assert_same

from cogrl.core import BatchedEnv, force_sync_free
from cogrl.curriculum import Curriculum, parse_curriculum
from cogrl.envs.memory import AssociativeRecall, Copy, DelayedRecall, RepeatCopy, StoryQA


def actions(core: BatchedEnv, steps: int, seed: int = 0) -> list[torch.Tensor]:
    """Valid random action batches for ``core``, drawn with torch."""
    g = torch.Generator().manual_seed(seed)
    space, n = core.single_action_space, core.num_envs
    if isinstance(space, spaces.Discrete):
        return [torch.randint(0, int(space.n), (n,), generator=g) for _ in range(steps)]
    return [
        torch.randint(0, 2, (n, *space.shape), generator=g).to(torch.int8) for _ in range(steps)
    ]


def rollout(core: BatchedEnv, steps: int, seed: int = 0) -> list[Any]:
    """Every step's outputs (observation, reward, flags and info) under random actions."""
    return [core.step(a) for a in actions(core, steps, seed)]


def saved(state: Any) -> Any:
    """``state`` through torch.save and torch.load(weights_only=True)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# --- configure: when and where a value applies -------------------------------------------------


def test_configure_applies_at_each_environments_next_reset_only() -> None:
    core, twin = Copy(6, max_length=20), Copy(6, max_length=20)
    core.reset(seed=3)
    twin.reset(seed=3)
    steps = actions(core, 120, seed=1)
    for a in steps[:5]:
        core.step(a)
        twin.step(a)
    in_progress = core.length.clone()
    core.configure({"min_length": 2, "max_length": 3})
    ended = torch.zeros(6, dtype=torch.bool)
    for a in steps[5:]:
        out, other = core.step(a), twin.step(a)
        # Until an environment's episode ends it is the unconfigured twin's, step for step.
        same = ~ended
        assert torch.equal(out[0][same], other[0][same])
        assert torch.equal(out[1][same], other[1][same])
        done = out[2] | out[3]
        assert torch.equal(core.length[same & ~done], in_progress[same & ~done])
        ended |= done
        # Every episode started after configure is drawn in the new range.
        assert bool(((core.length >= 2) & (core.length <= 3))[ended].all())
    assert bool(ended.all())


def test_reset_applies_a_configured_value_to_every_environment() -> None:
    core = DelayedRecall(4, delay=6)
    core.reset(seed=0)
    core.configure({"delay": 2})
    assert core.episode_delay.tolist() == [6] * 4  # not before the reset
    core.reset()
    assert core.episode_delay.tolist() == [2] * 4
    steps = 0
    while True:
        steps += 1
        *_, terminated, _, _ = core.step(torch.zeros(4, dtype=torch.int64))
        if bool(terminated.any()):
            break
    assert steps == 4 and bool(terminated.all())  # delay + 2 steps
    assert core.max_episode_steps == 8  # the bound the core was built with


def test_values_per_environment_and_index() -> None:
    core = Copy(4, max_length=10)
    core.configure({"max_length": torch.tensor([1, 2, 3, 4])})
    assert core.configuration()["max_length"].tolist() == [1, 2, 3, 4]
    core.configure({"min_length": 2, "max_length": 5}, index=torch.tensor([1, 3]))
    assert core.configuration()["min_length"].tolist() == [1, 2, 1, 2]
    assert core.configuration()["max_length"].tolist() == [1, 5, 3, 5]
    core.configure({"max_length": 9}, index=torch.tensor([True, False, False, False]))
    assert core.configuration()["max_length"].tolist() == [9, 5, 3, 5]
    core.reset(seed=0)
    for _ in range(200):
        core.step(actions(core, 1)[0])
        lengths = core.length
        assert bool((lengths <= torch.tensor([9, 5, 3, 5])).all())
        assert bool((lengths >= torch.tensor([1, 2, 1, 2])).all())
    # The configuration reported is a copy.
    core.configuration()["max_length"].fill_(1)
    assert core.configuration()["max_length"].tolist() == [9, 5, 3, 5]


@pytest.mark.parametrize("sync_free", [False, True])
def test_per_environment_ranges_scale_the_same_uniforms(sync_free: bool) -> None:
    """A Copy configured to lengths in [3, 5] draws the episodes of a Copy built with
    min_length=3, max_length=5 (its lengths, bits and tapes, the longer core's padded): the
    same uniforms, scaled by each environment's range, on both autoreset paths."""
    built, configured = Copy(5, min_length=3, max_length=5), Copy(5, max_length=20)
    configured.configure({"min_length": 3, "max_length": 5})
    with force_sync_free() if sync_free else _nothing():
        for core in (built, configured):
            core.reset(seed=11)
        steps = actions(built, 60, seed=2)
        for a in steps:
            b, c = built.step(a), configured.step(a)
            assert_same(b[1:4], c[1:4])
            assert torch.equal(built.length, configured.length)
            t = built.inputs.shape[1]
            assert torch.equal(built.inputs, configured.inputs[:, :t])
            assert torch.equal(built.targets, configured.targets[:, :t])


def test_associative_recall_and_repeat_copy_draw_configured_sizes() -> None:
    recall = AssociativeRecall(8, max_items=6)
    recall.configure({"min_items": 3, "max_items": 3})
    recall.reset(seed=0)
    assert recall.items.tolist() == [3] * 8
    repeat = RepeatCopy(8, max_length=6, max_repeats=6)
    repeat.configure({"min_length": 2, "max_length": 2, "min_repeats": 4, "max_repeats": 5})
    repeat.reset(seed=0)
    assert repeat.length.tolist() == [2] * 8
    assert set(repeat.repeats.tolist()) <= {4, 5}
    assert repeat.steps.tolist() == (repeat.length * (repeat.repeats + 1) + 3).tolist()


@pytest.mark.parametrize(
    ("make", "values"),
    [
        (lambda: Copy(3), {"min_length": 1, "max_length": 20}),
        (
            lambda: RepeatCopy(3, max_length=4, max_repeats=3),
            {"min_length": 1, "max_length": 4, "min_repeats": 1, "max_repeats": 3},
        ),
        (lambda: AssociativeRecall(3), {"min_items": 2, "max_items": 6}),
        (lambda: DelayedRecall(3, delay=4), {"delay": 4}),
        (lambda: StoryQA(3, task=2), {"task": 2}),
    ],
)
@pytest.mark.parametrize("sync_free", [False, True])
def test_an_unconfigured_core_draws_what_it_always_drew(make, values, sync_free) -> None:
    """Configuring the values a core was built with changes nothing; neither does holding
    more tasks (StoryQA)."""
    plain, configured = make(), make()
    configured.configure(values)
    assert_same(plain.configuration(), configured.configuration())
    with force_sync_free() if sync_free else _nothing():
        assert_same(plain.reset(seed=5), configured.reset(seed=5))
        assert_same(rollout(plain, 80), rollout(configured, 80))


def test_story_qa_switches_tasks_per_environment() -> None:
    single = StoryQA(4, task=2)
    held = StoryQA(4, task=2, tasks=[1, 2, 3])
    # Holding more tasks: the same draws of task 2, on spaces that fit them all.
    single.reset(seed=0)
    held.reset(seed=0)
    first = held._task_first[1]
    assert torch.equal(held.question_index - first, single.question_index)
    assert held.max_words >= single.max_words
    assert held.configuration()["task"].tolist() == [2] * 4
    held.configure({"task": torch.tensor([1, 3, 3, 2])})
    held.reset()
    q = held.question_index
    bounds = [
        (int(held._task_first[s]), int(held._task_first[s] + held._task_count[s])) for s in range(3)
    ]
    for i, slot in enumerate([0, 2, 2, 1]):
        low, high = bounds[slot]
        assert low <= int(q[i]) < high
    # The right answers are those of each environment's task.
    observation, *_ = held.step(torch.zeros(4, dtype=torch.int64))
    assert observation["words"].shape == (4, held.max_words)


# --- configure: refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "values", "message"),
    [
        (
            lambda: Copy(2),
            {"bits": 4},
            r"cannot configure \['bits'\].*\['min_length', 'max_length'\]",
        ),
        (lambda: Copy(2), {"max_length": 30}, r"max_length must be <= 20 .*got 30"),
        (lambda: Copy(2), {"min_length": 0}, r"min_length must be >= 1, got 0"),
        (lambda: Copy(2), {"min_length": 25}, r"min_length=25 must be <= max_length=20"),
        (
            lambda: Copy(2),
            {"min_length": 5, "max_length": 4},
            r"min_length=5 must be <= max_length=4",
        ),
        (lambda: Copy(2), {"max_length": 2.0}, r"max_length must be an int .*got 2.0"),
        (lambda: Copy(2), {"max_length": True}, r"max_length must be an int"),
        (lambda: Copy(2), {"max_length": torch.tensor([2, 3, 4])}, r"shape \(3,\)"),
        (lambda: Copy(2), {"max_length": torch.tensor([2.0, 3.0])}, r"dtype torch.float32"),
        (
            lambda: Copy(2),
            {"max_length": torch.tensor([2, 21])},
            r"max_length must be <= 20 .*got 21 \(environment 1\)",
        ),
        (lambda: RepeatCopy(2), {"max_repeats": 11}, r"max_repeats must be <= 10 .*count channel"),
        (lambda: RepeatCopy(2, min_repeats=3), {"min_repeats": 2}, r"min_repeats must be >= 3"),
        (lambda: AssociativeRecall(2), {"max_items": 7}, r"max_items must be <= 6 .*got 7"),
        (lambda: AssociativeRecall(2), {"min_items": 1}, r"min_items must be >= 2"),
        (lambda: DelayedRecall(2, delay=3), {"delay": 4}, r"delay must be <= 3 .*5 steps.*got 4"),
        (lambda: DelayedRecall(2), {"delay": -1}, r"delay must be >= 0, got -1"),
        (lambda: StoryQA(2), {"task": 2}, r"task must be one of the tasks .*tasks=\[1\], got 2"),
        (lambda: Copy(2), ["max_length"], r"configure takes a mapping"),
    ],
)
def test_bad_configurations_are_refused_before_anything_changes(make, values, message) -> None:
    core = make()
    before = core.configuration()
    with pytest.raises(ValueError, match=message):
        core.configure(values)
    with pytest.raises(ValueError, match=message):
        core.check_configuration(values)
    assert_same(core.configuration(), before)


def test_bad_indices_are_refused() -> None:
    core = Copy(3)
    for index, message in [
        (torch.tensor([True, False]), r"bool mask of shape \(2,\)"),
        (torch.tensor([0, 3]), r"environment\(s\) \[3\]"),
        (torch.tensor([0.5]), r"index must be None"),
        ("all", r"index must be None"),
    ]:
        with pytest.raises(ValueError, match=message):
            core.configure({"max_length": 4}, index=index)
    assert core.configuration()["max_length"].tolist() == [20] * 3


def test_cores_without_configurable_arguments_say_so() -> None:
    from cogrl.envs.attention import GlimpseDigits

    core = GlimpseDigits(2)
    assert core.configurable == () and core.configuration() == {}
    with pytest.raises(ValueError, match="GlimpseDigits has no configurable arguments"):
        core.configure({"canvas_size": 40})


def test_story_qa_tasks_argument_is_checked() -> None:
    for tasks, message in [
        ([2, 3], "includes task=1"),
        ([1, 1], "distinct"),
        ([1, 4], r"among \[1, 2, 3, 6, 7\]"),
        ("1,2", "a list"),
    ]:
        with pytest.raises(ValueError, match=message):
            StoryQA(task=1, tasks=tasks)


# --- snapshots ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "values"),
    [
        (
            lambda: Copy(4, max_length=8),
            {"min_length": torch.tensor([1, 2, 3, 4]), "max_length": 6},
        ),
        (lambda: DelayedRecall(4, delay=5), {"delay": torch.tensor([0, 1, 2, 5])}),
        (lambda: StoryQA(4, tasks=[1, 2]), {"task": torch.tensor([2, 1, 2, 1])}),
    ],
)
@pytest.mark.parametrize("sync_free", [False, True])
def test_snapshots_hold_the_configured_values(make, values, sync_free) -> None:
    original = make()
    with force_sync_free() if sync_free else _nothing():
        original.reset(seed=7)
        rollout(original, 7, seed=1)
        original.configure(values)
        rollout(original, 5, seed=2)  # some episodes started at the new values, some not
        state = saved(original.state_dict())
        assert set(state["configuration"]) == set(original.configurable)
        fresh = make()
        fresh.load_state_dict(state)
        assert_same(fresh.configuration(), original.configuration())
        assert_same(rollout(fresh, 60, seed=3), rollout(original, 60, seed=3))


def test_snapshots_without_a_configuration_load_with_the_built_values() -> None:
    core = Copy(2, max_length=8)
    core.reset(seed=0)
    state = core.state_dict()
    del state["configuration"]  # a snapshot of before configure
    other = Copy(2, max_length=8)
    other.configure({"max_length": 3})
    other.load_state_dict(state)
    assert other.configuration()["max_length"].tolist() == [8, 8]


def test_snapshots_with_configured_values_out_of_bounds_are_refused() -> None:
    big, small = Copy(2, max_length=20), Copy(2, max_length=8)
    big.configure({"max_length": 12})
    big.reset(seed=0)
    state = big.state_dict()
    state["attributes"] = small.state_dict()["attributes"]  # tapes that fit
    with pytest.raises(ValueError, match="max_length must be <= 8"):
        small.load_state_dict(state)
    assert small.configuration()["max_length"].tolist() == [8, 8]


def test_configured_stepping_reads_nothing_on_the_host(host_reads) -> None:
    core = Copy(8, max_length=10)
    curriculum = Curriculum(
        core, [{"max_length": n} for n in (2, 4, 10)], "bit_errors", 100.0, "<=", window=4, mix=True
    )
    steps = actions(core, 40)
    with force_sync_free():
        core.check_action_values = False
        core.reset(seed=0)
        curriculum.on_reset()
        host_reads.clear()
        for a in steps:
            _, _, _, _, info = core.step(a)
            curriculum.observe(info)
        assert host_reads == []
        curriculum.update()  # once per rollout: its reads do not grow with the steps
        assert 0 < len(host_reads) <= 8


# --- the curriculum: advancing -------------------------------------------------------------------


def episode_info(values: list[float | None], dtype=torch.float32) -> dict[str, torch.Tensor]:
    """A step's info where environment i's episode ended with metric ``values[i]`` (None: it
    goes on), for the metric key ``bit_errors``."""
    done = torch.tensor([v is not None for v in values])
    metric = torch.tensor([0.0 if v is None else v for v in values], dtype=dtype)
    return {"bit_errors": metric, "_bit_errors": done, "_episode": done}


def copy_curriculum(num_envs: int = 4, **kwargs: Any) -> Curriculum:
    core = Copy(num_envs, max_length=8)
    levels = [{"max_length": n} for n in (2, 4, 8)]
    options = {"direction": "<=", "window": 5, **kwargs}
    return Curriculum(core, levels, "bit_errors", 0.5, **options)


def test_the_curriculum_advances_exactly_when_the_threshold_holds_over_the_window() -> None:
    curriculum = copy_curriculum()
    core = curriculum.core
    assert curriculum.level == 0 and core.configuration()["max_length"].tolist() == [2] * 4
    # Four good episodes: not a full window yet.
    curriculum.observe(episode_info([0.0, 0.0, None, 0.0]))
    curriculum.observe(episode_info([None, 1.0, None, None]))
    assert curriculum.update() is False and curriculum.level == 0
    assert curriculum.scalars() == {"curriculum/level": 0.0, "curriculum/bit_errors": 0.25}
    # The fifth: the mean of the window is 1/5 <= 0.5.
    curriculum.observe(episode_info([None, None, 0.0, None]))
    assert curriculum.update() is True and curriculum.level == 1
    assert curriculum.scalars() == {"curriculum/level": 1.0, "curriculum/bit_errors": 0.2}
    assert core.configuration()["max_length"].tolist() == [4] * 4
    # The window starts again at the new level; bad episodes hold it back ...
    curriculum.observe(episode_info([0.0, 3.0, 3.0, 0.0]))  # drawn at level 0: not counted
    assert curriculum.update() is False and curriculum.scalars()["curriculum/bit_errors"] != 0.0
    curriculum.observe(episode_info([3.0, 3.0, 0.0, 0.0]))
    curriculum.observe(episode_info([0.0, None, None, None]))
    assert curriculum.update() is False  # window (at level 1): 3, 3, 0, 0, 0 -> 1.2
    assert curriculum.scalars()["curriculum/bit_errors"] == pytest.approx(1.2)
    # ... until the last `window` episodes pass.
    curriculum.observe(episode_info([0.0, 0.0, 0.0, 0.0]))
    assert curriculum.update() is True and curriculum.level == 2
    # The last level is the last.
    for _ in range(3):
        curriculum.observe(episode_info([0.0, 0.0, 0.0, 0.0]))
    assert curriculum.update() is False and curriculum.level == 2


def test_only_episodes_drawn_at_the_current_level_count() -> None:
    curriculum = copy_curriculum(num_envs=2, mix=True, seed=1)
    # Environment 0's episode in progress is at level 2, environment 1's at level 0.
    curriculum._next_level.copy_(torch.tensor([2, 0]))
    curriculum.on_reset()
    for _ in range(10):
        curriculum.observe(episode_info([0.0, None]))  # env 0: then its next level
    curriculum._next_level.copy_(torch.tensor([2, 0]))
    curriculum.on_reset()
    for _ in range(10):
        curriculum.observe(episode_info([0.0, None]))
    assert int(curriculum._written) == 0
    for _ in range(5):
        curriculum.observe(episode_info([None, 0.0]))
    assert int(curriculum._written) == 5
    assert curriculum.update() is True


def test_more_episodes_than_the_window_in_one_step_keep_the_last() -> None:
    curriculum = copy_curriculum(num_envs=8, direction=">=")  # bit_errors >= 0.5 (for the test)
    curriculum.observe(episode_info([9.0, 9.0, 9.0, 0.0, 0.0, 1.0, 1.0, 1.0]))
    # The window holds the last five of the step, in environment order: 0, 0, 1, 1, 1.
    assert curriculum.update() is True
    assert curriculum.scalars()["curriculum/bit_errors"] == pytest.approx(0.6)


def test_accuracy_and_a_real_core() -> None:
    """The curriculum on a running Copy: observe() takes the core's own info; episodes of
    the next level are drawn at its lengths."""
    core = Copy(16, max_length=8)
    curriculum = Curriculum(
        core, [{"max_length": 1}, {"max_length": 8}], "accuracy", 0.0, window=10
    )
    core.reset(seed=0)
    for _ in range(10):
        for a in actions(core, 20):
            curriculum.observe(core.step(a)[4])
        if curriculum.update():
            break
    assert curriculum.level == 1
    assert core.configuration()["max_length"].tolist() == [8] * 16


def test_curriculum_arguments_are_checked_against_the_environment() -> None:
    core = Copy(2, max_length=8)
    cases = [
        (
            [{"delay": 2}],
            {},
            r"sets 'delay', which Copy cannot configure.*\['min_length', 'max_length'\]",
        ),
        ([{"max_length": 9}], {}, r"level 0 .* max_length must be <= 8"),
        ([{"max_length": 2}, {"min_length": 2}], {}, "every level must set the same arguments"),
        ([], {}, "levels must be a non-empty list"),
        (
            [{"max_length": 2}],
            {"metric": "return"},
            r"metric must be one of Copy's .*\['accuracy', 'bit_errors'\]",
        ),
        ([{"max_length": 2}], {"direction": "=="}, "direction must be one of"),
        ([{"max_length": 2}], {"window": 0}, "window must be an int >= 1"),
        ([{"max_length": 2}], {"threshold": math.nan}, "threshold must be a finite number"),
        ([{"max_length": 2}], {"mix_uniform": 0.8, "mix_easier": 0.3}, "at most 1"),
        (
            [{"max_length": 2}],
            {"mix_geometric": 0.0},
            r"mix_geometric must be a probability in \(0, 1\]",
        ),
    ]
    for levels, options, message in cases:
        arguments = {"metric": "accuracy", "threshold": 0.9, **options}
        with pytest.raises(ValueError, match=message):
            Curriculum(core, levels, **arguments)
    assert core.configuration()["max_length"].tolist() == [8, 8]


# --- the mix ------------------------------------------------------------------------------------


def mix_probabilities(current: int, count: int, u: float, f: float, p: float) -> torch.Tensor:
    """The exact distribution of a level under Zaremba and Sutskever's mix."""
    probabilities = torch.full((count,), u / count, dtype=torch.float64)
    e = 0
    while True:
        weight = p * (1 - p) ** e
        top = min(current + e, count - 1)
        if top == count - 1:  # this e and every larger one: top is the last level
            weight = (1 - p) ** e
        probabilities[: top + 1] += f * weight / (top + 1)
        probabilities[top] += (1 - u - f) * weight
        if top == count - 1:
            return probabilities
        e += 1


@pytest.mark.parametrize(
    ("current", "fractions"),
    [
        (0, {}),
        (3, {}),
        (9, {}),
        (2, {"mix_uniform": 0.3, "mix_easier": 0.1, "mix_geometric": 0.25}),
        (2, {"mix_geometric": 1.0}),
    ],
)
def test_the_mix_draws_levels_at_the_published_fractions(current, fractions) -> None:
    core = DelayedRecall(4000, delay=9)
    levels = [{"delay": d} for d in range(10)]
    curriculum = Curriculum(core, levels, "accuracy", 0.5, window=1, mix=True, seed=3, **fractions)
    curriculum._level = current
    counts = torch.zeros(10, dtype=torch.float64)
    draws = 0
    for _ in range(10):
        curriculum.update()  # a fresh draw each time (no episodes: no advance)
        counts += torch.bincount(curriculum.next_levels(), minlength=10).double()
        draws += core.num_envs
        # The core draws each environment's next episode at its level.
        assert torch.equal(core.configuration()["delay"], curriculum.next_levels())
    u = fractions.get("mix_uniform", 0.10)
    f = fractions.get("mix_easier", 0.25)
    p = fractions.get("mix_geometric", 0.5)
    expected = mix_probabilities(current, 10, u, f, p)
    assert float(expected.sum()) == pytest.approx(1.0)
    sigma = (expected * (1 - expected) / draws).sqrt()
    assert bool(((counts / draws - expected).abs() <= 5 * sigma + 1e-9).all()), (
        counts / draws,
        expected,
    )
    if not fractions:  # the published mix: the current level is the most frequent
        assert int(counts.argmax()) == int(expected.argmax()) == current
        assert float(expected[current]) > 0.38


def test_without_the_mix_every_environment_is_at_the_current_level() -> None:
    curriculum = copy_curriculum(num_envs=6)
    for _ in range(3):
        curriculum.update()
        assert curriculum.next_levels().tolist() == [0] * 6


# --- checkpoints --------------------------------------------------------------------------------


def run(core: Copy, curriculum: Curriculum, rollouts: int, seed: int) -> list[Any]:
    """Rollouts of random actions: each step's outputs, then the curriculum's levels."""
    out = []
    for r in range(rollouts):
        for a in actions(core, 12, seed=seed * 100 + r):
            step = core.step(a)
            curriculum.observe(step[4])
            out.append(step[:4])
        out.append((curriculum.update(), curriculum.level, curriculum.next_levels()))
        out.append(curriculum.scalars())
    return out


@pytest.mark.parametrize("mix", [False, True])
def test_a_resumed_curriculum_continues_exactly(mix: bool) -> None:
    def make() -> tuple[Copy, Curriculum]:
        core = Copy(6, max_length=6)
        levels = [{"max_length": n} for n in (1, 2, 3, 6)]
        return core, Curriculum(core, levels, "bit_errors", 6.0, "<=", window=6, mix=mix, seed=9)

    core, curriculum = make()
    core.reset(seed=1)
    run(core, curriculum, 3, seed=0)
    core_state, state = saved(core.state_dict()), saved(curriculum.state_dict())
    assert isinstance(state["generator"], torch.Tensor)
    after = run(core, curriculum, 6, seed=1)
    assert curriculum.level > 0  # the run advanced after the snapshot too

    fresh_core, fresh = make()
    fresh_core.load_state_dict(core_state)
    fresh.load_state_dict(state)
    assert_same(run(fresh_core, fresh, 6, seed=1), after)


def test_a_curriculum_state_of_another_curriculum_is_refused() -> None:
    state = copy_curriculum().state_dict()
    for other, message in [
        (copy_curriculum(window=6), "another curriculum"),
        (copy_curriculum(num_envs=3), "over 4 environments"),
    ]:
        with pytest.raises(ValueError, match=message):
            other.load_state_dict(state)
    with pytest.raises(ValueError, match="keys"):
        copy_curriculum().load_state_dict({**state, "extra": 1})


# --- the text form ------------------------------------------------------------------------------


def test_the_text_form() -> None:
    assert parse_curriculum("max_length=2,4,8; metric=bit_errors<=0.1; window=500; mix=true") == {
        "levels": [{"max_length": 2}, {"max_length": 4}, {"max_length": 8}],
        "metric": "bit_errors",
        "threshold": 0.1,
        "direction": "<=",
        "window": 500,
        "mix": True,
    }
    # Several arguments per level, a value for all levels, ranges; spaces are free.
    parsed = parse_curriculum(" min_length = 1 ; max_length = 2..4, 8 ; metric = accuracy > 0.9 ")
    assert parsed["levels"] == [
        {"min_length": 1, "max_length": 2},
        {"min_length": 1, "max_length": 3},
        {"min_length": 1, "max_length": 4},
        {"min_length": 1, "max_length": 8},
    ]
    assert (parsed["metric"], parsed["direction"], parsed["threshold"]) == ("accuracy", ">", 0.9)
    assert "window" not in parsed and "mix" not in parsed  # the defaults
    assert parse_curriculum("delay=0,5; metric=accuracy>=0.95; mix=0.2,0.3,0.4") == {
        "levels": [{"delay": 0}, {"delay": 5}],
        "metric": "accuracy",
        "threshold": 0.95,
        "direction": ">=",
        "mix": True,
        "mix_uniform": 0.2,
        "mix_easier": 0.3,
        "mix_geometric": 0.4,
    }
    assert parse_curriculum("task=1,2,3; metric=accuracy>=0.9; mix=off")["mix"] is False
    # It builds a working curriculum.
    core = Copy(3, max_length=8)
    curriculum = Curriculum.from_text(core, "min_length=1,2; max_length=2,8; metric=accuracy>=0.9")
    assert curriculum.levels == [
        {"min_length": 1, "max_length": 2},
        {"min_length": 2, "max_length": 8},
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a curriculum must be text"),
        ("max_length=2,4", "has no metric=NAME>=X"),
        ("metric=accuracy>=0.9", "sets no environment argument"),
        ("max_length=2,4; metric=accuracy", r"metric='accuracy' must be NAME>=X"),
        ("max_length=2,4; metric=accuracy=>0.9", r"must be NAME>=X"),
        ("max_length=2,x; metric=accuracy>=0.9", r"'x' is not a number or a range a\.\.b"),
        ("max_length=4..2; metric=accuracy>=0.9", "runs backwards"),
        ("max_length=2,4; min_length=1,1,1; metric=accuracy>=0.9", "different numbers of levels"),
        ("max_length=2; window=0; metric=accuracy>=0.9", r"window='0' must be a positive int"),
        ("max_length=2; window=5.5; metric=accuracy>=0.9", "must be a positive int"),
        ("max_length=2; mix=maybe; metric=accuracy>=0.9", r"mix='maybe' must be true, false"),
        ("max_length=2; max_length=3; metric=accuracy>=0.9", "given twice"),
        ("max_length 2; metric=accuracy>=0.9", r"is not NAME=VALUE.*e\.g\."),
        ("max_length=; metric=accuracy>=0.9", "is not NAME=VALUE"),
    ],
)
def test_bad_text_forms_name_the_part_and_the_form(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_curriculum(text)


def test_text_forms_the_environment_refuses_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"'max_lenght', which Copy cannot configure"):
        Curriculum.from_text(Copy(2), "max_lenght=2,4; metric=accuracy>=0.9")
    with pytest.raises(ValueError, match="must be an int"):
        Curriculum.from_text(Copy(2), "max_length=2.5; metric=accuracy>=0.9")


class _nothing:
    """A context that does nothing (``force_sync_free`` or not)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None
