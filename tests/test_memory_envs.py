"""The memory tasks do what their papers ask: hand-checkable cases of Copy, RepeatCopy,
AssociativeRecall (Graves et al. 2014, Neural Turing Machines) and DelayedRecall.

Policies here read only their observations (the stored input, the count, the items), so
that a perfect score shows the observations carry what the task asks for; the contract every
task keeps (seeding, batching, spaces, snapshots) is in ``test_env_contract.py``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from cogrl.core import device_memory
from cogrl.envs import env_metadata, make_core
from cogrl.envs.memory import AssociativeRecall, Copy, DelayedRecall, RepeatCopy

COPY, REPEAT, RECALL, DELAYED = (
    "cogrl/Copy-v0",
    "cogrl/RepeatCopy-v0",
    "cogrl/AssociativeRecall-v0",
    "cogrl/DelayedRecall-v0",
)
# The repeat count's normalisation for the default range 1..10 (pytorch-ntm's constants):
# the mean and standard deviation of the uniform distribution over 1..10.
MEAN_1_10, STD_1_10 = 5.5, math.sqrt((10**2 - 1) / 12)


# The info keys of every step (ignored actions, reward parts) and of the steps an answer is
# due: the answer contract (tests/test_answer_contract.py), left out of the episode's info.
STEP_KEYS = ("action_ignored", "reward_parts", "answer")


def episode_info(info: dict) -> dict:
    """``info`` without the answer contract's keys: what it reports of the episode."""
    return {k: v for k, v in info.items() if k not in STEP_KEYS}


def run_episode(env: gym.Env, policy: Any, seed: int) -> tuple[list[np.ndarray], list, dict]:
    """Observations, rewards and the final info of one episode under ``policy(observations
    so far) -> action`` (without the answer contract's keys)."""
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    while True:
        obs, reward, term, trunc, info = env.step(policy(observations))
        rewards.append(reward)
        if term or trunc:
            return observations, rewards, episode_info(info)
        assert episode_info(info) == {}  # sizes and scores only where the episode ends
        observations.append(obs)


def zeros(env: gym.Env) -> Any:
    return lambda observations: np.zeros(env.action_space.shape, np.int8)


# --- Copy ----------------------------------------------------------------------------------


def copy_policy(bits: int) -> Any:
    """Writes back the input vectors seen before the delimiter, one per output step."""

    def policy(observations: list[np.ndarray]) -> np.ndarray:
        delimiter = [t for t, o in enumerate(observations) if o[bits] == 1]
        if not delimiter:
            return np.zeros(bits, np.int8)
        j = len(observations) - 1 - delimiter[0] - 1  # output step j (-1: the delimiter step)
        return observations[j][:bits].astype(np.int8) if j >= 0 else np.zeros(bits, np.int8)

    return policy


def test_copy_observations_by_hand() -> None:
    env = gym.make(COPY, bits=2, min_length=2, max_length=2)
    observations, rewards, info = run_episode(env, copy_policy(2), seed=4)
    first, second = observations[0][:2], observations[1][:2]
    expected = [
        [*first, 0, 0],  # the sequence, no flags
        [*second, 0, 0],
        [0, 0, 1, 0],  # the delimiter
        [0, 0, 0, 1],  # answer now (data bits zero)
        [0, 0, 0, 1],
    ]
    np.testing.assert_array_equal(np.stack(observations), np.array(expected, np.float32))
    assert rewards == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert info == {"bit_errors": 0, "correct": True, "length": 2}
    # One wrong bit at the first output step: reward 1/2 there, one bit error.
    env.reset(seed=4)
    for _ in range(3):
        env.step(np.ones(2, np.int8))  # ignored before the output phase
    _, reward, *_ = env.step(np.array([1 - first[0], first[1]], np.int8))
    assert reward == 0.5
    *_, info = env.step(second.astype(np.int8))
    assert episode_info(info) == {"bit_errors": 1, "correct": False, "length": 2}


@pytest.mark.parametrize("length", [None, 80, 120])
def test_copy_asks_for_exactly_the_input_sequence(length: int | None) -> None:
    kwargs = {} if length is None else {"min_length": length, "max_length": length}
    env = gym.make(COPY, **kwargs)
    assert env.unwrapped.core.max_episode_steps == 2 * (length or 20) + 1
    for seed in range(4 if length is None else 1):
        observations, rewards, info = run_episode(env, copy_policy(8), seed)
        n = info["length"]
        assert n == length if length else 1 <= n <= 20
        assert len(rewards) == 2 * n + 1
        assert rewards == [0.0] * (n + 1) + [1.0] * n
        assert (info["bit_errors"], info["correct"]) == (0, True)
        # Writing zeros gets every 1 of the sequence wrong, and each step the fraction of
        # its vector's zeros.
        sequence = np.stack(observations[:n])[:, :8]
        _, rewards, info = run_episode(env, zeros(env), seed)
        assert info["bit_errors"] == int(sequence.sum())
        assert not info["correct"]
        np.testing.assert_allclose(rewards[n + 1 :], 1.0 - sequence.mean(1), rtol=1e-6)


def test_copy_lengths_are_drawn_in_range_reaching_both_ends() -> None:
    core = make_core(COPY, num_envs=400)
    core.reset(seed=0)
    lengths = core.length.clone()
    assert set(lengths.tolist()) == set(range(1, 21))
    # Every episode lasts 2 L + 1 steps, then the next one starts.
    ends = torch.zeros(400, dtype=torch.int64)
    for _ in range(41):
        *_, terminated, _, info = core.step(torch.zeros(400, 8, dtype=torch.int8))
        first = terminated & (ends == 0)  # the first episode of the environment ends
        ends[first] = info["episode"]["l"][first]
        assert torch.equal(info["length"][first], lengths[first])
    assert torch.equal(ends, 2 * lengths + 1)


# --- RepeatCopy ------------------------------------------------------------------------------


def repeat_copy_policy(bits: int, mean: float, std: float) -> Any:
    """Reads the sequence and the normalised count, then writes the sequence that many
    times and the end marker."""

    def policy(observations: list[np.ndarray]) -> np.ndarray:
        delimiter = [t for t, o in enumerate(observations) if o[bits] == 1]
        out = np.zeros(bits + 1, np.int8)
        if not delimiter or len(observations) < delimiter[0] + 3:
            return out
        n = delimiter[0]
        repeats = round(float(observations[n + 1][bits + 1]) * std + mean)
        j = len(observations) - 1 - (n + 2)  # output step j
        if j < n * repeats:
            out[:bits] = observations[j % n][:bits]
        elif j == n * repeats:
            out[bits] = 1  # the end marker
        return out

    return policy


def test_repeat_copy_asks_for_the_sequence_repeated_then_the_end_marker() -> None:
    env = gym.make(REPEAT)
    counts = set()
    for seed in range(6):
        observations, rewards, info = run_episode(
            env, repeat_copy_policy(8, MEAN_1_10, STD_1_10), seed
        )
        n, r = info["length"], info["repeats"]
        counts.add(r)
        assert 1 <= n <= 10 and 1 <= r <= 10
        assert len(rewards) == n * (r + 1) + 3
        assert rewards == [0.0] * (n + 2) + [1.0] * (n * r + 1)
        assert (info["bit_errors"], info["correct"]) == (0, True)
        # The count step carries (R - 5.5) / sqrt(99 / 12), the delimiter step the flag.
        assert observations[n][8] == 1 and observations[n][9] == 0
        assert observations[n + 1][9] == pytest.approx((r - MEAN_1_10) / STD_1_10, rel=1e-6)
        assert all(o[9] == 0 for t, o in enumerate(observations) if t != n + 1)
        # Zeros miss every 1 of the sequence, R times, and the end marker.
        sequence = np.stack(observations[:n])[:, :8]
        _, _, info = run_episode(env, zeros(env), seed)
        assert info["bit_errors"] == r * int(sequence.sum()) + 1
    assert len(counts) > 1


def test_repeat_copy_count_channel_bounds_and_evaluation_counts() -> None:
    space = gym.make(REPEAT).observation_space
    assert space.low[9] == pytest.approx(-4.5 / STD_1_10) and space.low[9] < -1.56
    assert space.high[9] == pytest.approx(4.5 / STD_1_10)
    np.testing.assert_array_equal(space.low[:9], 0.0)
    np.testing.assert_array_equal(space.high[:9], 1.0)
    # Evaluating on 20 repeats with the training range's normalisation.
    env = gym.make(REPEAT, min_repeats=20, max_repeats=20, normalise_repeats=(1, 10))
    assert env.observation_space.high[9] == pytest.approx(14.5 / STD_1_10)
    assert env.observation_space.low[9] == 0.0
    _, rewards, info = run_episode(env, repeat_copy_policy(8, MEAN_1_10, STD_1_10), seed=1)
    assert info["repeats"] == 20 and info["bit_errors"] == 0
    assert sum(rewards) == 20 * info["length"] + 1
    # A single count without the range to normalise by is refused, saying what to pass.
    with pytest.raises(ValueError, match="normalise_repeats"):
        gym.make(REPEAT, min_repeats=20, max_repeats=20)


# --- AssociativeRecall -------------------------------------------------------------------------


def parse_recall(observations: list[np.ndarray], bits: int, item_length: int) -> tuple:
    """The items and the query item as the agent sees them (item delimiter on channel
    ``bits``, query delimiters on ``bits + 1``)."""
    items, query = [], None
    t = 0
    while observations[t][bits] == 1:
        items.append(np.stack(observations[t + 1 : t + 1 + item_length])[:, :bits])
        t += 1 + item_length
    assert observations[t][bits + 1] == 1
    if len(observations) > t + 1 + item_length:
        query = np.stack(observations[t + 1 : t + 1 + item_length])[:, :bits]
        assert observations[t + 1 + item_length][bits + 1] == 1
    return items, query, t + item_length + 2


def recall_policy(bits: int, item_length: int) -> Any:
    """Finds the query among the items and writes the item after it."""

    def policy(observations: list[np.ndarray]) -> np.ndarray:
        if not any(o[bits + 1] == 1 for o in observations):
            return np.zeros(bits, np.int8)
        items, query, answer_start = parse_recall(observations, bits, item_length)
        j = len(observations) - 1 - answer_start
        if query is None or j < 0:
            return np.zeros(bits, np.int8)
        k = next(k for k, item in enumerate(items) if np.array_equal(item, query))
        return items[k + 1][j].astype(np.int8)

    return policy


@pytest.mark.parametrize("n_items", [None, 12])
def test_associative_recall_asks_for_the_item_after_the_query(n_items: int | None) -> None:
    kwargs = {} if n_items is None else {"min_items": n_items, "max_items": n_items}
    env = gym.make(RECALL, **kwargs)
    for seed in range(4):
        observations, rewards, info = run_episode(env, recall_policy(6, 3), seed)
        k = info["items"]
        assert k == n_items if n_items else 2 <= k <= 6
        assert len(rewards) == k * 4 + 2 * 3 + 2
        assert rewards == [0.0] * (k * 4 + 5) + [1.0] * 3
        assert (info["bit_errors"], info["correct"]) == (0, True)
        items, query, _ = parse_recall(observations, 6, 3)
        assert len(items) == k and all(item.shape == (3, 6) for item in items)
        # Outputs before the answer phase do not count; the answer phase has no input.
        assert all(not o.any() for o in observations[k * 4 + 5 :])


def test_recall_items_are_distinct_and_the_query_is_never_last() -> None:
    # 1-bit vectors, 2 per item: only 4 items exist, so 4 items are a permutation of them.
    env = gym.make(RECALL, bits=1, item_length=2, min_items=2, max_items=4)
    positions, counts = set(), set()
    for seed in range(60):
        observations, _, info = run_episode(env, zeros(env), seed)
        items, query, _ = parse_recall(observations, 1, 2)
        codes = [item.tobytes() for item in items]
        assert len(set(codes)) == len(codes) == info["items"]
        where = codes.index(query.tobytes())
        assert where < len(items) - 1
        positions.add((len(items), where))
        counts.add(len(items))
    assert counts == {2, 3, 4}
    assert {(4, 0), (4, 1), (4, 2)} <= positions


# --- DelayedRecall -------------------------------------------------------------------------------


@pytest.mark.parametrize(("delay", "n_choices"), [(0, 2), (3, 2), (10, 3)])
def test_delayed_recall_episodes_last_delay_plus_two(delay: int, n_choices: int) -> None:
    env = gym.make(DELAYED, delay=delay, n_choices=n_choices)
    assert env.observation_space.shape == (n_choices + 2,)
    assert env.action_space == gym.spaces.Discrete(n_choices)
    assert env.unwrapped.core.max_episode_steps == delay + 2
    for seed in range(5):
        observations, rewards, info = run_episode(env, lambda o: 0, seed)
        assert len(rewards) == delay + 2
        cue = int(np.argmax(observations[0][:n_choices]))
        expected = np.zeros((delay + 2, n_choices + 2), np.float32)
        expected[0, cue] = expected[0, n_choices] = 1.0  # the cue and its flag
        expected[-1, -1] = 1.0  # the query
        np.testing.assert_array_equal(np.stack(observations), expected)
        assert rewards[:-1] == [0.0] * (delay + 1)
        assert rewards[-1] == float(cue == 0) == float(info["correct"])
        # Naming the cue is rewarded.
        _, rewards, info = run_episode(env, lambda o: int(np.argmax(o[0][:n_choices])), seed)
        assert rewards[-1] == 1.0 and info["correct"]


@pytest.mark.parametrize("n_choices", [2, 3])
def test_delayed_recall_constant_policy_is_at_chance(n_choices: int) -> None:
    n = 3000
    core = make_core(DELAYED, num_envs=n, delay=2, n_choices=n_choices)
    core.reset(seed=0)
    for _ in range(4):
        *_, terminated, _, info = core.step(torch.ones(n, dtype=torch.int64))
    assert bool(terminated.all())
    accuracy = info["correct"].float().mean().item()
    assert abs(accuracy - 1 / n_choices) < 0.03, accuracy
    assert info["episode"]["r"].mean().item() == pytest.approx(accuracy)


# --- metadata, arguments, memory, rendering ----------------------------------------------------


def test_memory_tasks_declare_their_metrics_and_no_splits() -> None:
    for env_id in (COPY, REPEAT, RECALL):
        metadata = env_metadata(env_id)
        assert metadata["episode_metrics"] == {"bit_errors": "bit_errors", "accuracy": "correct"}
        assert metadata["splits"] == ()
    assert env_metadata(DELAYED)["episode_metrics"] == {"accuracy": "correct"}
    assert env_metadata(DELAYED)["splits"] == ()
    classes = (Copy, RepeatCopy, AssociativeRecall, DelayedRecall)
    for env_id, cls in zip((COPY, REPEAT, RECALL, DELAYED), classes, strict=True):
        assert type(make_core(env_id, 1)) is cls


@pytest.mark.parametrize(
    ("env_id", "kwargs", "named"),
    [
        (COPY, {"bits": 0}, "bits"),
        (COPY, {"bits": 2.5}, "bits"),
        (COPY, {"bits": True}, "bits"),
        (COPY, {"min_length": 0}, "min_length"),
        (COPY, {"max_length": "20"}, "max_length"),
        (COPY, {"min_length": 5, "max_length": 4}, "min_length=5"),
        (REPEAT, {"min_repeats": 0}, "min_repeats"),
        (REPEAT, {"min_repeats": 4, "max_repeats": 3}, "min_repeats=4"),
        (REPEAT, {"normalise_repeats": (3, 3)}, "normalise_repeats"),
        (REPEAT, {"normalise_repeats": (0, 5)}, "normalise_repeats"),
        (REPEAT, {"normalise_repeats": "1,10"}, "normalise_repeats"),
        (RECALL, {"min_items": 1}, "min_items"),
        (RECALL, {"item_length": 0}, "item_length"),
        (RECALL, {"min_items": 7}, "min_items=7"),
        (RECALL, {"bits": 1, "item_length": 1, "max_items": 3}, "max_items=3"),
        (DELAYED, {"delay": -1}, "delay"),
        (DELAYED, {"delay": 2.5}, "delay"),
        (DELAYED, {"delay": True}, "delay"),
        (DELAYED, {"n_choices": 1}, "n_choices"),
    ],
    ids=lambda x: x.split("/")[-1] if isinstance(x, str) and "/" in x else None,
)
def test_bad_constructor_arguments_are_value_errors_naming_them(
    env_id: str, kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError) as err:
        gym.make(env_id, **kwargs)
    message = str(err.value)
    assert named in message
    for value in kwargs.values():
        assert repr(value) in message or str(value) in message


def test_sizes_beyond_the_machine_are_refused_before_allocating() -> None:
    available = device_memory(torch.device("cpu"))
    for env_id, kwargs, named in [
        (COPY, {"max_length": 10**9}, "max_length=1000000000"),
        (RECALL, {"bits": 8, "item_length": 8, "max_items": 10**8}, "max_items=100000000"),
        (REPEAT, {"max_repeats": 10**9}, "max_repeats=1000000000"),
    ]:
        with pytest.raises(ValueError) as err:
            make_core(env_id, 4, **kwargs)
        message = str(err.value)
        assert named in message and "bytes" in message and f"{available:,}" in message
    # The defaults are small: well under a MiB per environment.
    for env_id in (COPY, REPEAT, RECALL):
        assert make_core(env_id, 1).memory_estimate(1) < 2**20


WRONG = (np.array([255, 70, 70], np.uint8), np.array([120, 0, 0], np.uint8))


def wrong_cells(frame: np.ndarray, cell: int = 8) -> int:
    """Cells drawn in either of the wrong-output colours."""
    red = np.zeros(frame.shape[:2], bool)
    for colour in WRONG:
        red |= (frame == colour).all(axis=2)
    return int(red.sum()) // (cell - 1) ** 2


@pytest.mark.parametrize("env_id", [COPY, REPEAT, RECALL])
def test_render_marks_each_wrong_output_bit(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    bits = env.action_space.n
    for policy in (
        {COPY: copy_policy(8), REPEAT: repeat_copy_policy(8, MEAN_1_10, STD_1_10)}.get(
            env_id, recall_policy(6, 3)
        ),
        zeros(env),
    ):
        _, _, info = run_episode(env, policy, seed=2)
        frame = env.render()
        assert frame.dtype == np.uint8 and frame.shape[2] == 3
        assert wrong_cells(frame) == info["bit_errors"]
        steps = env.unwrapped.core.max_episode_steps
        assert frame.shape[1] == steps * 8
        # Inputs, targets and outputs, a row of cells per channel, and the step marker.
        n_inputs = env.observation_space.shape[0]
        assert frame.shape[0] == (n_inputs + 2 * bits) * 8 + 2 * 8 + 4


def test_delayed_recall_render_shows_a_wrong_answer() -> None:
    env = gym.make(DELAYED, render_mode="rgb_array")
    observations, _, info = run_episode(env, lambda o: 1 - int(o[0][1]), seed=0)
    assert not info["correct"]
    assert wrong_cells(env.render()) == 2  # the cue's cell missed, the other one written
    run_episode(env, lambda o: int(o[0][1]), seed=0)
    assert wrong_cells(env.render()) == 0
    with pytest.raises(ValueError, match=re.escape("[0, 1)")):
        env.unwrapped.core.render(1)


def test_delayed_recall_too_many_choices_is_an_error_before_allocating() -> None:
    # found by tests/test_fuzz.py: n_choices=2**31 allocated 8 GiB of space bounds first
    with pytest.raises(ValueError, match=r"n_choices=2147483648 would need about .* bytes"):
        make_core("cogrl/DelayedRecall-v0", n_choices=2**31)
