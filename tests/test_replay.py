"""The replay buffer: what goes in comes back, sampling rules, priorities, sequences, files.

Stored values are distinguishable: the observation of env ``e`` at write ``t`` is
``t * 100 + e``, so every sample says where it came from.
"""

import json
import re

import numpy as np
import pytest
import torch
from gymnasium import spaces

import cogrl.replay
from cogrl.replay import ReplayBuffer, ReplaySample

BOX = spaces.Box(-1e6, 1e6, (2,), np.float32)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def step_values(t: int, n: int, term=(), trunc=()):
    """The batch written at time ``t``: obs[e] = (t*100+e, -1), next_obs = obs + 0.5."""
    ids = torch.arange(n, dtype=torch.float32) + 100 * t
    obs = torch.stack([ids, -torch.ones(n)], 1)
    return dict(
        obs=obs,
        action=(torch.arange(n) + t) % 4,
        reward=ids / 1000,
        next_obs=obs + 0.5,
        terminated=torch.tensor([e in term for e in range(n)]),
        truncated=torch.tensor([e in trunc for e in range(n)]),
    )


def fill(buffer: ReplayBuffer, steps: int, ends=None, start: int = 0) -> None:
    """Write ``steps`` time steps; ``ends[t] = (terminated envs, truncated envs)``."""
    for t in range(start, start + steps):
        term, trunc = (ends or {}).get(t, ((), ()))
        buffer.add(**step_values(t, buffer.num_envs, term, trunc))


def draw(buffer: ReplayBuffer, total: int, seed: int, **kwargs) -> ReplaySample:
    """``total`` samples from batches of at most ``buffer.size`` (the largest batch allowed)."""
    g, parts = gen(seed), []
    while total > 0:
        parts.append(buffer.sample(min(total, buffer.size), g, **kwargs))
        total -= len(parts[-1].reward)

    def cat(*xs):
        return (
            {k: cat(*(x[k] for x in xs)) for k in xs[0]}
            if isinstance(xs[0], dict)
            else torch.cat(xs)
        )

    return ReplaySample(*(cat(*field) for field in zip(*parts, strict=True)))


def where(sample_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(write time, env) of sampled observations."""
    ids = sample_obs[..., 0].floor().long()
    return ids // 100, ids % 100


# ---------------------------------------------------------------------------------------
# Writing and reading back


def test_written_values_come_back_exactly():
    buffer = ReplayBuffer(20, 4, BOX, spaces.Discrete(4))
    fill(buffer, 3, ends={1: ((2,), (0,))})
    assert (buffer.size, len(buffer), buffer.full, buffer.capacity) == (12, 12, False, 20)
    s = draw(buffer, 200, 0)
    t, e = where(s.obs)
    assert torch.equal(s.action, (e + t) % 4)
    assert torch.equal(s.reward, (t * 100 + e).float() / 1000)
    assert torch.equal(s.next_obs, s.obs + 0.5)
    assert torch.equal(s.terminated, ((t == 1) & (e == 2)).float())
    assert torch.allclose(s.discount, 0.99 * (1 - s.terminated))
    assert torch.equal(s.indices, torch.stack([t, e], 1))
    assert torch.equal(s.weights, torch.ones(200))
    assert s.extras == {}


def test_numpy_inputs_ints_for_floats_and_01_flags():
    buffer = ReplayBuffer(4, 2, BOX, spaces.Box(-1, 1, (3,), np.float64))
    buffer.add(
        np.array([[1, 2], [3, 4]], dtype=np.int64),
        np.zeros((2, 3)),
        np.array([1, 2]),
        np.ones((2, 2), dtype=np.float64),
        np.array([0, 1]),
        np.array([False, False]),
    )
    s = buffer.sample_sequences(2, 1, generator=gen(0))
    assert s.obs.dtype == torch.float32 and s.action.dtype == torch.float32
    assert s.terminated.dtype == torch.bool
    assert sorted(s.terminated[0].tolist()) == [False, True]


def test_dict_observations():
    space = spaces.Dict(
        {"image": spaces.Box(0, 255, (2, 2), np.uint8), "token": spaces.Discrete(5, start=1)}
    )
    buffer = ReplayBuffer(6, 2, space, spaces.Discrete(2))
    for t in range(3):
        obs = {
            "image": np.full((2, 2, 2), 10 * t, np.uint8)
            + np.arange(2, dtype=np.uint8)[:, None, None],
            "token": torch.tensor([1 + t, 2 + t]),
        }
        nxt = {"image": obs["image"] + 1, "token": obs["token"] + 1}
        buffer.add(obs, torch.tensor([0, 1]), torch.zeros(2), nxt, [False] * 2, [False] * 2)
    s = draw(buffer, 50, 1)
    assert set(s.obs) == set(s.next_obs) == {"image", "token"}
    assert s.obs["image"].dtype == torch.uint8 and s.obs["image"].shape == (50, 2, 2)
    assert s.obs["token"].dtype == torch.int64 and s.obs["token"].shape == (50,)
    t, e = s.indices[:, 0], s.indices[:, 1]
    assert torch.equal(s.obs["image"][:, 0, 0].long(), 10 * t + e)
    assert torch.equal(s.obs["token"], 1 + t + e)
    assert torch.equal(s.next_obs["token"], s.obs["token"] + 1)


@pytest.mark.parametrize(
    ("obs_space", "obs_dtype", "action_space", "action_dtype"),
    [
        (spaces.Box(0, 255, (3, 4, 4), np.uint8), torch.uint8, spaces.Discrete(3), torch.int64),
        (spaces.Discrete(7), torch.int64, spaces.MultiDiscrete([2, 3]), torch.int64),
        (spaces.MultiDiscrete([[2, 3], [4, 5]]), torch.int64, spaces.MultiBinary(3), torch.int8),
        (
            spaces.MultiBinary([2, 2]),
            torch.int8,
            spaces.Box(-1, 1, (2,), np.float64),
            torch.float32,
        ),
        (spaces.Box(-1, 1, (), np.float64), torch.float64, spaces.Discrete(2), torch.int64),
    ],
)
def test_sample_dtypes_and_shapes(obs_space, obs_dtype, action_space, action_dtype):
    n = 3
    buffer = ReplayBuffer(30, n, obs_space, action_space, extras={"h": ((4,), torch.float16)})
    for _ in range(4):
        obs = np.stack([obs_space.sample() for _ in range(n)])
        action = np.stack([action_space.sample() for _ in range(n)])
        h = torch.randn(n, 4).half()
        buffer.add(
            obs,
            action,
            np.zeros(n, np.float32),
            obs,
            np.zeros(n, bool),
            np.zeros(n, bool),
            {"h": h},
        )
    s = buffer.sample(5, gen(0), n_step=2)
    assert s.obs.dtype == s.next_obs.dtype == obs_dtype
    assert s.obs.shape == s.next_obs.shape == (5, *obs_space.shape)
    assert s.action.dtype == action_dtype and s.action.shape == (5, *action_space.shape)
    for x, dtype in [(s.reward, torch.float32), (s.terminated, torch.float32)]:
        assert x.dtype == dtype and x.shape == (5,)
    assert s.discount.dtype == s.weights.dtype == torch.float32
    assert s.indices.dtype == torch.int64 and s.indices.shape == (5, 2)
    assert s.extras["h"].dtype == torch.float16 and s.extras["h"].shape == (5, 4)
    q = buffer.sample_sequences(5, 2, burn_in=1, generator=gen(0))
    assert q.obs.shape == (3, 5, *obs_space.shape) and q.action.shape == (3, 5, *action_space.shape)
    assert q.extras["h"].shape == (3, 5, 4)
    assert q.mask.dtype == torch.float32 and q.episode_start.dtype == torch.bool


# ---------------------------------------------------------------------------------------
# Uniform sampling and the ring


def test_uniform_covers_all_written_entries_and_nothing_else():
    buffer = ReplayBuffer(15, 3, BOX, spaces.Discrete(4))  # 5 slots
    fill(buffer, 4)
    s = draw(buffer, 2000, 0)
    t, e = where(s.obs)
    seen = set(zip(t.tolist(), e.tolist(), strict=True))
    assert seen == {(t, e) for t in range(4) for e in range(3)}
    assert (s.indices[:, 0] < 4).all()
    counts = torch.bincount(t * 3 + e, minlength=12).float()
    assert counts.min() > 2000 / 12 * 0.6  # roughly uniform


def test_ring_overwrite_keeps_the_newest_capacity():
    buffer = ReplayBuffer(9, 2, BOX, spaces.Discrete(4))  # rounded down to 4 slots x 2 envs
    assert (buffer.capacity, buffer.slots) == (8, 4)
    fill(buffer, 10)
    assert buffer.full and buffer.size == 8
    t, e = where(draw(buffer, 500, 0).obs)
    assert set(t.tolist()) == {6, 7, 8, 9} and set(e.tolist()) == {0, 1}
    buffer.clear()
    assert buffer.size == 0 and not buffer.full


def reference_nstep(buffer_steps, ends, n_envs, n, gamma):
    """All valid (t, env) -> (reward, next_obs t, terminated, discount), by a plain loop over
    the stored steps ``buffer_steps`` (oldest first)."""
    out = {}
    for e in range(n_envs):
        for i, t in enumerate(buffer_steps):
            ret, k, term = 0.0, 0, False
            for j in range(i, min(i + n, len(buffer_steps))):
                tj = buffer_steps[j]
                ret += gamma**k * (tj * 100 + e) / 1000
                k += 1
                terminated, truncated = (e in x for x in ends.get(tj, ((), ())))
                if terminated or truncated:
                    term = terminated
                    break
            else:
                if k < n:  # the window would read past the newest step
                    continue
            out[(t, e)] = (ret, buffer_steps[i + k - 1], term, gamma**k * (1 - term))
    return out


@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("steps", [5, 9])  # 9 > 6 slots: the ring has wrapped
def test_n_step_returns_stop_at_episode_ends_and_at_the_newest_step(n_step, steps):
    n_envs, gamma = 3, 0.5
    # env 0 terminates at t=2, env 1 truncates at t=2 and t=7, env 2 never ends
    # (so its last n_step-1 starts have no full window), env 0 truncates at t=8 (the newest).
    ends = {2: ((0,), (1,)), 7: ((), (1,)), 8: ((), (0,))}
    buffer = ReplayBuffer(6 * n_envs, n_envs, BOX, spaces.Discrete(4))
    fill(buffer, steps, ends)
    stored = list(range(max(0, steps - 6), steps))
    expected = reference_nstep(stored, ends, n_envs, n_step, gamma)
    s = draw(buffer, 1000, 0, n_step=n_step, gamma=gamma)
    t, e = where(s.obs)
    next_t, _ = where(s.next_obs)
    rows = torch.stack([t, e, next_t, s.reward, s.terminated, s.discount], 1).unique(dim=0)
    got = {(int(r[0]), int(r[1])): r[2:].tolist() for r in rows}
    assert len(got) == len(rows)  # one outcome per (time, env)
    assert got.keys() == expected.keys()
    for key, (ret, last_t, term, discount) in expected.items():
        assert got[key] == pytest.approx([last_t, ret, float(term), discount], rel=1e-6)


def test_n_step_larger_than_stored_fails_unless_an_episode_ends():
    buffer = ReplayBuffer(10, 1, BOX, spaces.Discrete(4))
    fill(buffer, 2)
    with pytest.raises(ValueError, match="no 3-step window fits"):
        buffer.sample(1, n_step=3)
    fill(buffer, 1, ends={2: ((0,), ())}, start=2)
    s = draw(buffer, 20, 0, n_step=5)  # every window ends with the episode at t=2
    assert torch.equal(s.terminated, torch.ones(20))


# ---------------------------------------------------------------------------------------
# Prioritized replay


def test_prioritized_frequencies_follow_priorities_and_weights_formula():
    alpha, beta, n_envs = 0.5, 0.4, 100
    buffer = ReplayBuffer(
        4 * n_envs, n_envs, BOX, spaces.Discrete(4), prioritized=True, alpha=alpha
    )
    fill(buffer, 4)
    priorities = torch.tensor([1.0, 4.0, 9.0, 16.0])  # per slot, the same for every env
    slot = torch.arange(4).repeat_interleave(n_envs)
    indices = torch.stack([slot, torch.arange(n_envs).repeat(4)], 1)
    buffer.update_priorities(indices, priorities[slot])
    assert buffer.max_priority == 16.0
    n = 8000
    s = draw(buffer, n, 0, beta=beta)
    probs = priorities**alpha / (priorities**alpha).sum()  # P(i) = p_i^a / sum_k p_k^a
    counts = torch.bincount(s.indices[:, 0], minlength=4).double()
    chi2 = (((counts - n * probs) ** 2) / (n * probs)).sum().item()
    assert chi2 < 16.3  # p = 0.001 for 3 degrees of freedom
    for seed in range(3):  # w_i = (size * P(i))^-beta, normalised by the batch's max
        s = buffer.sample(64, gen(seed), beta=beta)
        w = (buffer.size * probs[s.indices[:, 0]] / n_envs) ** -beta
        assert torch.allclose(s.weights, (w / w.max()).float())
        assert s.weights.max() == 1.0
    # A new write gets the largest priority so far (it replaces slot 0).
    fill(buffer, 1, start=4)
    s = draw(buffer, n, 1)
    counts = torch.bincount(s.indices[:, 0], minlength=4).double()
    assert counts[0] / n == pytest.approx(4 / 13, abs=0.02)  # 16^0.5 / (4 + 2 + 3 + 4)


def test_prioritized_n_step_never_draws_windows_past_the_newest_step():
    buffer = ReplayBuffer(12, 2, BOX, spaces.Discrete(4), prioritized=True)
    fill(buffer, 5, ends={4: ((1,), ())})
    s = draw(buffer, 2000, 0, n_step=3)
    t, e = where(s.obs)
    pairs = set(zip(t.tolist(), e.tolist(), strict=True))
    assert pairs == {(t, e) for t in range(3) for e in range(2)} | {(3, 1), (4, 1)}


@pytest.mark.parametrize(
    ("indices", "priorities", "match"),
    [
        ([[0, 0], [1, 0]], [1.0], r"priorities: expected .* shape \(2,\)"),
        ([0, 1], [1.0, 1.0], r"indices: expected .* shape \(B, 2\)"),
        ([[0, 0], [1, 0]], [1.0, float("nan")], "priorities: expected finite values > 0"),
        ([[0, 0], [1, 0]], [0.0, 1.0], "priorities: expected finite values > 0"),
        ([[0, 0], [1, 0]], [-1.0, 1.0], "priorities: expected finite values > 0"),
        (
            [[0, 0], [1, 0]],
            torch.tensor([1.0, 1e39], dtype=torch.float64),
            r"priorities: expected finite values > 0 within float32's range "
            r"\(<= 3.4028235e\+38\), got \[1e\+39\]",
        ),
        ([[0, 0], [3, 0]], [1.0, 1.0], r"indices: expected .* stored transitions"),
        ([[0, 0], [0, 2]], [1.0, 1.0], r"indices: expected .* stored transitions"),
    ],
)
def test_update_priorities_rejects_bad_input(indices, priorities, match):
    buffer = ReplayBuffer(8, 2, BOX, spaces.Discrete(4), prioritized=True)
    fill(buffer, 2)
    before = storage(buffer)["priority"]
    with pytest.raises(ValueError, match=match):
        buffer.update_priorities(torch.tensor(indices), torch.as_tensor(priorities))
    assert buffer.max_priority == 1.0
    assert torch.equal(storage(buffer)["priority"], before)  # nothing changed


@pytest.mark.parametrize(
    ("alpha", "priority", "stored"),
    [(2.0, 1e30, r"\[inf\]"), (1.0, 1e-50, r"\[0.0\]"), (3.0, 1e-20, r"\[0.0\]")],
)
def test_update_priorities_rejects_p_alpha_that_overflows_or_vanishes_in_float32(
    alpha, priority, stored
):
    buffer = ReplayBuffer(8, 2, BOX, spaces.Discrete(4), prioritized=True, alpha=alpha)
    fill(buffer, 2)
    with pytest.raises(
        ValueError,
        match=rf"priorities: p\*\*alpha \(alpha={alpha}\) must be a finite float32 > 0 .* "
        rf"priorities \[{re.escape(repr(priority))}\] give {stored}",
    ):
        p = torch.tensor([1.0, priority], dtype=torch.float64)
        buffer.update_priorities(torch.tensor([[0, 0], [1, 1]]), p)
    assert buffer.max_priority == 1.0


def test_max_priority_is_kept_on_the_device_and_read_as_a_float():
    buffer = ReplayBuffer(8, 2, BOX, spaces.Discrete(4), prioritized=True, alpha=0.5)
    fill(buffer, 2)
    buffer.update_priorities(torch.tensor([[0, 0], [1, 1]]), torch.tensor([9.0, 2.0]))
    assert buffer.max_priority == 9.0 and type(buffer.max_priority) is float
    buffer.update_priorities(torch.tensor([[0, 1]]), torch.tensor([4.0]), check=False)
    assert buffer.max_priority == 9.0
    fill(buffer, 1, start=2)  # a new transition gets max_priority ** alpha
    assert torch.equal(storage(buffer)["priority"][2], torch.full((2,), 3.0))


def test_update_priorities_needs_a_prioritized_buffer():
    buffer = ReplayBuffer(8, 2, BOX, spaces.Discrete(4))
    fill(buffer, 2)
    with pytest.raises(ValueError, match="prioritized=True"):
        buffer.update_priorities(torch.tensor([[0, 0]]), torch.tensor([1.0]))


# ---------------------------------------------------------------------------------------
# Sequences


def test_sequences_are_contiguous_and_never_cross_the_overwrite_point():
    buffer = ReplayBuffer(12, 2, BOX, spaces.Discrete(4), extras={"h": ((3,), torch.float32)})
    for t in range(9):  # 6 slots: writes 3..8 are kept
        v = step_values(t, 2)
        buffer.add(**v, extras={"h": v["obs"][:, :1].expand(2, 3)})
    q = buffer.sample_sequences(300, 4, generator=gen(0))
    t, e = where(q.obs)
    assert (t >= 3).all() and (t <= 8).all()
    assert torch.equal(t, t[:1] + torch.arange(4)[:, None])  # consecutive writes
    assert (e == e[:1]).all()  # one env
    assert set(t[0].tolist()) == {3, 4, 5}
    assert torch.equal(q.indices, torch.stack([t[0] % 6, e[0]], 1))
    assert torch.equal(q.extras["h"][..., 0], q.obs[..., 0])
    assert torch.equal(q.next_obs, q.obs + 0.5)


def test_sequence_episode_start_and_mask_with_burn_in():
    buffer = ReplayBuffer(16, 2, BOX, spaces.Discrete(4))
    # env 0: episodes end at t=1 (terminated) and t=4 (truncated); env 1 never ends.
    fill(buffer, 8, ends={1: ((0,), ()), 4: ((), (0,))})
    q = buffer.sample_sequences(200, 3, burn_in=2, generator=gen(0))
    t, e = where(q.obs)
    ends = {(1, 0), (4, 0)}
    for b in range(200):
        ts, env = t[:, b].tolist(), int(e[0, b])
        starts = [s == 0 or (s - 1, env) in ends for s in ts]
        assert q.episode_start[:, b].tolist() == starts
        mask, alive = [0.0, 0.0], True
        for s in ts[2:]:
            mask.append(float(alive))
            alive = alive and (s, env) not in ends
        assert q.mask[:, b].tolist() == mask
    assert q.mask[:2].sum() == 0  # burn-in steps carry no loss
    # Both cases occur: a mask cut by an episode end, and a full one.
    assert (q.mask.sum(0) < 3).any() and (q.mask.sum(0) == 3).any()


def test_episode_start_survives_the_ring_wrap():
    buffer = ReplayBuffer(3, 1, BOX, spaces.Discrete(4))
    fill(buffer, 5, ends={1: ((0,), ())})  # keeps t = 2, 3, 4; t=2 starts an episode
    q = buffer.sample_sequences(1, 3, generator=gen(0))
    assert q.episode_start[:, 0].tolist() == [True, False, False]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(length=5, burn_in=2), r"burn_in \+ length \(2 \+ 5 = 7\) exceeds the 6 time slots"),
        (dict(length=4, burn_in=1), r"burn_in \+ length \(5\) exceeds the 4 steps per env stored"),
        (dict(length=0), "length must be a positive int"),
        (dict(length=2, burn_in=-1), "burn_in must be an int >= 0"),
        (dict(length=2, batch_size=0), "batch_size must be a positive int"),
    ],
)
def test_sample_sequences_rejects_bad_lengths(kwargs, match):
    buffer = ReplayBuffer(12, 2, BOX, spaces.Discrete(4))
    fill(buffer, 4)
    kwargs = {"batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        buffer.sample_sequences(**kwargs)


# ---------------------------------------------------------------------------------------
# Sharing, saving and loading


def storage(buffer: ReplayBuffer) -> dict:
    return buffer.state_dict()["storage"]


def assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, tuple):
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert torch.equal(a, b)


def test_two_samplers_are_reproducible_and_independent():
    buffer = ReplayBuffer(40, 4, BOX, spaces.Discrete(4), prioritized=True)
    fill(buffer, 10, ends={3: ((1,), (2,))})
    before = storage(buffer)
    g1, g2 = gen(1), gen(2)
    a1 = buffer.sample(16, g1, n_step=3)
    b1 = buffer.sample_sequences(8, 4, burn_in=1, generator=g2)
    a2 = buffer.sample(16, g1, n_step=3)
    b2 = buffer.sample_sequences(8, 4, burn_in=1, generator=g2)
    # Each generator alone gives the same samples, interleaved or not.
    g1, g2 = gen(1), gen(2)
    assert_same((a1, a2), (buffer.sample(16, g1, n_step=3), buffer.sample(16, g1, n_step=3)))
    assert_same(b1, buffer.sample_sequences(8, 4, burn_in=1, generator=g2))
    assert_same(b2, buffer.sample_sequences(8, 4, burn_in=1, generator=g2))
    assert not torch.equal(a1.indices, a2.indices)
    assert_same(before, storage(buffer))  # sampling changes nothing


def test_save_load_round_trip_gives_identical_samples(tmp_path):
    space = spaces.Dict({"x": BOX, "k": spaces.MultiDiscrete([3, 4])})
    buffer = ReplayBuffer(
        10, 2, space, spaces.Discrete(4), prioritized=True, alpha=0.7,
        extras={"h": ((2,), torch.float32)},
    )  # fmt: skip
    for t in range(7):  # the ring has wrapped
        v = step_values(t, 2, term=(0,) if t == 3 else ())
        obs = {"x": v["obs"], "k": torch.tensor([[t % 3, 1], [2, t % 4]])}
        buffer.add(
            obs, v["action"], v["reward"], obs, v["terminated"], v["truncated"], {"h": v["obs"]}
        )
    s = buffer.sample(6, gen(0))
    buffer.update_priorities(s.indices, torch.arange(1.0, 7.0))
    path = tmp_path / "replay.pt"
    buffer.save(path)
    raw = torch.load(path, weights_only=True)  # plain tensors and strings only
    assert isinstance(raw["meta"], str)
    loaded = ReplayBuffer.load(path)
    assert loaded.observation_space == space and loaded.action_space == spaces.Discrete(4)
    assert (loaded.size, loaded.full, loaded.alpha, loaded.max_priority) == (10, True, 0.7, 6.0)
    for sampler in (
        lambda b, g: b.sample(10, g, n_step=2, beta=0.5),
        lambda b, g: b.sample_sequences(8, 3, burn_in=1, generator=g),
    ):
        assert_same(sampler(buffer, gen(5)), sampler(loaded, gen(5)))
    # Both keep writing to the same slot.
    for b in (buffer, loaded):
        v = step_values(9, 2)
        obs = {"x": v["obs"], "k": torch.zeros(2, 2, dtype=torch.long)}
        b.add(obs, v["action"], v["reward"], obs, v["terminated"], v["truncated"], {"h": v["obs"]})
    assert_same(storage(buffer), storage(loaded))


def resumable(prioritized=True, steps=7):
    """A buffer with everything a resume must carry: a Dict observation, extras, a wrapped ring,
    episode ends (pending episode starts) and updated priorities."""
    space = spaces.Dict({"x": BOX, "k": spaces.MultiDiscrete([3, 4])})
    buffer = ReplayBuffer(
        10, 2, space, spaces.Discrete(4), prioritized=prioritized, alpha=0.7,
        extras={"h": ((2,), torch.float32)},
    )  # fmt: skip
    write(buffer, range(steps))
    if prioritized:
        s = buffer.sample(6, gen(0))
        buffer.update_priorities(s.indices, torch.arange(1.0, 7.0) * 1.37)
    return buffer


def write(buffer, times):
    for t in times:
        v = step_values(t, 2, term=(0,) if t % 4 == 3 else (), trunc=(1,) if t == 5 else ())
        obs = {"x": v["obs"], "k": torch.tensor([[t % 3, 1], [2, t % 4]])}
        h = {"h": v["obs"] * 0.25}
        buffer.add(obs, v["action"], v["reward"], obs, v["terminated"], v["truncated"], h)


def assert_same_buffer(a: ReplayBuffer, b: ReplayBuffer) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert json.loads(sa["meta"]) == json.loads(sb["meta"])
    assert_same(sa["storage"], sb["storage"])
    assert (a.max_priority, a.size, a.full) == (b.max_priority, b.size, b.full)


@pytest.mark.parametrize(("prioritized", "steps"), [(True, 7), (True, 3), (False, 7)])
def test_state_dict_round_trip_resumes_bit_identically(prioritized, steps):
    buffer = resumable(prioritized, steps)
    state = buffer.state_dict()
    loaded = ReplayBuffer.from_state_dict(state)
    assert_same_buffer(buffer, loaded)
    # The state is a copy both ways: neither buffer shares tensors with it.
    snapshot = {k: v.clone() for k, v in state["storage"].items() if isinstance(v, torch.Tensor)}
    write(buffer, [20])
    write(loaded, [20])
    for k, v in snapshot.items():
        assert torch.equal(state["storage"][k], v)
    # Continue both the same way: writes (episode starts, new priorities), priority updates
    # and samples stay identical.
    for step in range(6):
        g1, g2 = gen(step), gen(step)
        for b, g in ((buffer, g1), (loaded, g2)):
            write(b, [21 + step])
            if prioritized:
                s = b.sample(4, g, n_step=2, beta=0.5)
                b.update_priorities(s.indices, s.reward.abs() * 3.1 + 0.5)
        assert_same(buffer.sample(8, gen(99), n_step=3), loaded.sample(8, gen(99), n_step=3))
        q1 = buffer.sample_sequences(4, 3, burn_in=1, generator=gen(7))
        assert_same(q1, loaded.sample_sequences(4, 3, burn_in=1, generator=gen(7)))
        assert_same_buffer(buffer, loaded)


def bad_state(change_meta=None, change_storage=None):
    state = resumable().state_dict()  # 5 slots x 2 envs, full, pos 2
    meta = json.loads(state["meta"])
    meta.update(change_meta or {})
    state["meta"] = json.dumps(meta)
    if change_storage:
        change_storage(state["storage"])
    return state


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        (dict(pos=-1), r"pos \(the next time slot to write\) must be an int in \[0, 5\), got -1"),
        (dict(pos=5), r"pos .* must be an int in \[0, 5\), got 5"),
        (dict(pos=1.5), r"pos .* must be an int in \[0, 5\), got 1.5"),
        (dict(filled=-2), r"filled \(the written time slots\) must be an int in \[0, 5\], got -2"),
        (dict(filled=6), r"filled .* must be an int in \[0, 5\], got 6"),
        (dict(filled=True), r"filled .* must be an int in \[0, 5\], got True"),
        (dict(filled=3, pos=1), r"pos must equal filled \(3\) until all 5 slots are written, got"),
        (dict(max_priority=float("inf")), r"max_priority must be a finite number .* got inf"),
        (dict(max_priority=float("nan")), r"max_priority must be a finite number .* got nan"),
        (dict(max_priority=0.0), r"max_priority must be a finite number in \(0, .* got 0.0"),
        (dict(max_priority=-1), r"max_priority must be .* got -1"),
        (dict(max_priority="2"), r"max_priority must be .* got '2'"),
        (dict(max_priority=1e39), r"max_priority must be .* float32 .* got 1e\+39"),
        (dict(max_priority=10**400), r"max_priority must be .* got 1000000"),
        (dict(max_priority=1e-300), r"max_priority\*\*alpha \(alpha=0.7\) .* got 1e-300"),
        (dict(slots=4), r"slots \(4\) must equal capacity // num_envs \(10 // 2 = 5\)"),
        (dict(capacity=-1), r"^state: capacity must be a positive int, got -1$"),
        (dict(capacity=10**12), r"^state: capacity 1000000000000 .* needs an estimated"),
    ],
)
def test_from_state_dict_rejects_counters_out_of_range(meta, match):
    with pytest.raises(ValueError, match=match) as err:
        ReplayBuffer.from_state_dict(bad_state(meta))
    assert str(err.value).startswith("state: ")


def _set(key, value, sub=None):
    def change(storage):
        if sub is None:
            storage[key] = value(storage[key])
        else:
            storage[key][sub] = value(storage[key][sub])

    return change


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            _set("reward", lambda r: r[:4]),
            r"storage reward must have shape \(5, 2\) .* and dtype torch.float32, as the "
            r"declared spaces, extras and capacity give it; got shape \(4, 2\) dtype",
        ),
        (
            _set("obs", lambda x: x.double(), "x"),
            r"storage obs\['x'\] must have shape \(5, 2, 2\) .* dtype torch.float32, .* got shape "
            r"\(5, 2, 2\) dtype torch.float64",
        ),
        (_set("extras", lambda h: h[..., :1], "h"), r"storage extras\['h'\] must have shape"),
        (_set("action", lambda a: a.tolist()), "storage action must have .* got list"),
        (lambda s: s.pop("terminated"), r"missing or malformed storage \(KeyError: 'terminated'\)"),
        (lambda s: s["extras"].clear(), r"missing or malformed storage \(KeyError: 'h'\)"),
        (
            _set("priority", lambda p: p.index_fill(0, torch.tensor([3]), float("nan"))),
            r"priority must be finite and > 0 in the 5 written time slots, 0 in the others; "
            r"got nan at \(slot, env\) \(3, 0\)",
        ),
        (
            _set("priority", lambda p: p.index_fill(1, torch.tensor([1]), 0.0)),
            r"priority must be .* got 0.0 at \(slot, env\) \(0, 1\)",
        ),
    ],
)
def test_from_state_dict_rejects_storage_that_does_not_fit(change, match):
    with pytest.raises(ValueError, match=match):
        ReplayBuffer.from_state_dict(bad_state(change_storage=change))


def test_from_state_dict_rejects_priority_in_unwritten_slots():
    state = resumable(steps=3).state_dict()  # 3 of 5 slots written
    state["storage"]["priority"][4, 1] = 2.0
    with pytest.raises(ValueError, match=r"in the 3 written .* got 2.0 at \(slot, env\) \(4, 1\)"):
        ReplayBuffer.from_state_dict(state)


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ([1, 2], r"^state is not a cogrl replay state dict: expected a dict, got list$"),
        ({}, r"no readable metadata \(KeyError: 'meta'\)"),
        ({"meta": "{"}, r"no readable metadata \(JSONDecodeError"),
        ({"meta": "[]"}, r"its metadata is a list, expected a dict"),
        ({"meta": "{}"}, r"expected format 'cogrl.replay/1', got None"),
        (
            {"meta": json.dumps({"format": "cogrl.replay/1"})},
            r"missing or malformed entry \(KeyError: 'observation_space'\)",
        ),
    ],
)
def test_from_state_dict_rejects_what_is_not_a_replay_state(state, match):
    with pytest.raises(ValueError, match=match):
        ReplayBuffer.from_state_dict(state)


def test_from_state_dict_blames_a_bad_device_on_the_argument():
    with pytest.raises(ValueError, match=r"^device must be"):
        ReplayBuffer.from_state_dict(resumable().state_dict(), device="nonsense")


def test_load_rejects_files_that_are_not_replay_buffers(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"meta": "{}", "storage": {}}, path)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))} is not a cogrl replay file: "):
        ReplayBuffer.load(path)


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (lambda whole: b"", "EOFError"),
        (lambda whole: whole[: len(whole) // 2], "(RuntimeError|OSError)"),  # truncated
        (lambda whole: whole[:-10], "(RuntimeError|OSError)"),
        (lambda whole: b"this is not a torch file", ""),
        (lambda whole: bytes(100), ""),
    ],
    ids=["empty", "half", "cut-end", "text", "zeros"],
)
def test_load_names_the_path_of_a_damaged_file(tmp_path, content, cause):
    good_path, path = tmp_path / "good.pt", tmp_path / "bad.pt"
    resumable().save(good_path)
    path.write_bytes(content(good_path.read_bytes()))
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(path))} is not a cogrl replay file: torch.load failed \({cause}",
    ):
        ReplayBuffer.load(path)


def test_load_of_other_torch_files(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(ValueError, match=r"tensor.pt is not a cogrl replay file: expected a dict"):
        ReplayBuffer.load(path)
    # A pickled object is refused by weights_only=True: no code runs.
    path = tmp_path / "object.pt"
    torch.save({"meta": gen(0)}, path)
    with pytest.raises(ValueError, match=r"object.pt is not a cogrl replay file: torch.load"):
        ReplayBuffer.load(path)
    # Counters out of range name the path too.
    path = tmp_path / "counters.pt"
    torch.save(bad_state({"pos": 9}), path)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: pos .* got 9$"):
        ReplayBuffer.load(path)
    with pytest.raises(FileNotFoundError):
        ReplayBuffer.load(tmp_path / "missing.pt")


# ---------------------------------------------------------------------------------------
# Bad input


def good(n=2):
    return step_values(0, n)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            dict(obs=torch.zeros(3, 2)),
            r"obs: expected shape \(2, 2\) and dtype torch.float32, got shape \(3, 2\)",
        ),
        (dict(next_obs=torch.zeros(2)), r"next_obs: expected shape \(2, 2\)"),
        (
            dict(action=torch.tensor([0.0, 1.0])),
            r"action: expected .* torch.int64, got .* torch.float32",
        ),
        (
            dict(action=torch.tensor([0, 4])),
            r"action: values must lie in \[0, 3\] for Discrete\(4\)",
        ),
        (dict(action=torch.tensor([[0], [1]])), r"action: expected shape \(2,\)"),
        (dict(reward=torch.tensor([0.0, float("nan")])), "reward: expected finite values"),
        (dict(reward=torch.tensor([0.0, float("inf")])), "reward: expected finite values"),
        (
            dict(reward=torch.tensor([1e39, 0.0], dtype=torch.float64)),
            r"reward: expected finite values within float32's range \(\|r\| <= 3.4028235e\+38\), "
            r"got \[1e\+39\] \(envs \[0\]\)",
        ),
        (
            dict(reward=np.array([0.0, -1e300])),
            r"float32's range .* got \[-1e\+300\] \(envs \[1\]\)",
        ),
        (dict(reward=torch.zeros(2, 1)), r"reward: expected shape \(2,\)"),
        (
            dict(terminated=torch.tensor([0.0, 1.0])),
            "terminated: expected .* torch.bool, got .*float",
        ),
        (dict(truncated=torch.tensor([0, 2])), "truncated: expected bool or 0/1 values"),
        (dict(obs="abc"), "obs: expected shape"),
        (dict(extras={"h": torch.zeros(2)}), r"extras: expected the keys \[\]"),
    ],
)
def test_add_rejects_bad_fields(change, match):
    buffer = ReplayBuffer(8, 2, BOX, spaces.Discrete(4))
    with pytest.raises(ValueError, match=match):
        buffer.add(**{**good(), **change})
    assert buffer.size == 0  # nothing was written


def test_add_rejects_bad_dict_observations_and_extras():
    space = spaces.Dict({"a": spaces.Discrete(3), "b": BOX})
    buffer = ReplayBuffer(8, 2, space, spaces.Discrete(4), extras={"h": ((3,), torch.int32)})
    v = good()
    obs = {"a": torch.tensor([0, 2]), "b": v["obs"]}
    args = dict(action=v["action"], reward=v["reward"], terminated=v["terminated"])
    args["truncated"] = v["truncated"]
    h = {"h": torch.zeros(2, 3, dtype=torch.int64)}
    buffer.add(obs, next_obs=obs, extras=h, **args)  # fine
    with pytest.raises(ValueError, match=r"obs: expected the keys \['a', 'b'\].*missing \['b'\]"):
        buffer.add({"a": obs["a"]}, next_obs=obs, extras=h, **args)
    with pytest.raises(ValueError, match=r"next_obs: .*unexpected \['c'\]"):
        buffer.add(obs, next_obs={**obs, "c": obs["a"]}, extras=h, **args)
    with pytest.raises(ValueError, match="obs: expected a dict"):
        buffer.add(v["obs"], next_obs=obs, extras=h, **args)
    with pytest.raises(ValueError, match=r"obs\['a'\]: expected .* torch.int64, got .*float"):
        buffer.add({**obs, "a": torch.tensor([0.0, 1.0])}, next_obs=obs, extras=h, **args)
    with pytest.raises(ValueError, match=r"extras: expected the keys \['h'\]"):
        buffer.add(obs, next_obs=obs, **args)
    with pytest.raises(ValueError, match=r"extras\['h'\]: expected shape \(2, 3\)"):
        buffer.add(obs, next_obs=obs, extras={"h": torch.zeros(2, 2)}, **args)
    with pytest.raises(ValueError, match=r"extras\['h'\]: values from .* do not fit .*int32"):
        buffer.add(obs, next_obs=obs, extras={"h": torch.full((2, 3), 2**40)}, **args)
    assert buffer.size == 2


def test_add_with_check_false_skips_value_checks_but_not_shapes():
    buffer = ReplayBuffer(8, 2, BOX, spaces.Discrete(4))
    buffer.add(**{**good(), "reward": torch.tensor([1e39, 0.0], dtype=torch.float64)}, check=False)
    assert buffer.size == 2  # stored unchecked (the caller vouches for its values)
    with pytest.raises(ValueError, match=r"action: expected shape \(2,\)"):
        buffer.add(**{**good(), "action": torch.zeros(3, dtype=torch.long)}, check=False)
    with pytest.raises(ValueError, match=r"extras: expected the keys \[\]"):
        buffer.add(**good(), extras={"h": torch.zeros(2)}, check=False)


@pytest.fixture
def no_host_reads(monkeypatch):
    """Make every way of reading a tensor's value on the host fail while the test runs."""

    def boom(*args, **kwargs):
        raise AssertionError("a host read of a tensor value (a device synchronisation)")

    for name in ("__bool__", "__int__", "__float__", "__index__", "item", "tolist", "nonzero"):
        monkeypatch.setattr(torch.Tensor, name, boom)
    monkeypatch.setattr(torch, "nonzero", boom)


def test_the_per_step_paths_read_nothing_on_the_host(no_host_reads):
    buffer = ReplayBuffer(12, 2, BOX, spaces.Discrete(4), prioritized=True)
    for t in range(7):
        buffer.add(**step_values(t, 2, term=(0,) if t == 3 else ()), check=False)
    s = buffer.sample(4, gen(0), n_step=3)
    buffer.update_priorities(s.indices, s.reward.abs() + 1.0, check=False)
    buffer.sample_sequences(3, 2, burn_in=1, generator=gen(1))
    with pytest.raises(AssertionError, match="host read"):  # the fixture works
        buffer.add(**step_values(7, 2))


def expected_bytes(slots, num_envs, obs_bytes, action_bytes, extras_bytes=0):
    """obs and next_obs, action, extras, reward and priority (float32), three bool flags."""
    return slots * num_envs * (2 * obs_bytes + action_bytes + extras_bytes + 4 + 4 + 3)


@pytest.mark.parametrize(
    ("kwargs", "needed"),
    [
        (dict(capacity=10**12, num_envs=1), expected_bytes(10**12, 1, 8, 8)),
        (
            dict(capacity=10**12 + 3, num_envs=4),  # rounded down to 250000000000 slots
            expected_bytes(25 * 10**10, 4, 8, 8),
        ),
        (
            dict(observation_space=spaces.MultiBinary([10**5, 10**6])),  # int8
            expected_bytes(4, 2, 10**11, 8),
        ),
        (
            dict(
                observation_space=spaces.Dict({"a": BOX, "b": spaces.MultiBinary([10**6] * 2)}),
                action_space=spaces.MultiBinary(10**6),
            ),
            expected_bytes(4, 2, 8 + 10**12, 10**6),
        ),
        (
            dict(extras={"h": ((10**6, 10**6), torch.float64)}),
            expected_bytes(4, 2, 8, 8, 8 * 10**12),
        ),
    ],
)
def test_constructor_refuses_more_memory_than_the_machine_has(kwargs, needed):
    args = dict(capacity=8, num_envs=2, observation_space=BOX, action_space=spaces.Discrete(4))
    args = {**args, **kwargs}
    with pytest.raises(
        ValueError,
        match=rf"^capacity {args['capacity']} \(.* time slots x {args['num_envs']} envs, "
        rf"\d+ bytes per transition\) needs an estimated {needed} bytes \(.* GiB\) on cpu, "
        r"more than the \d+ bytes \(.* GiB\) available there; lower the capacity",
    ):
        ReplayBuffer(**args)


def test_memory_estimate_is_exact_at_the_limit(monkeypatch):
    needed = expected_bytes(4, 2, 8, 8, 3 * 2)  # extras: 3 float16
    extras = {"h": ((3,), torch.float16)}
    monkeypatch.setattr(cogrl.replay, "_available_bytes", lambda device: needed)
    ReplayBuffer(8, 2, BOX, spaces.Discrete(4), extras=extras)  # fits exactly
    monkeypatch.setattr(cogrl.replay, "_available_bytes", lambda device: needed - 1)
    with pytest.raises(ValueError, match=rf"estimated {needed} bytes .* than the {needed - 1}"):
        ReplayBuffer(8, 2, BOX, spaces.Discrete(4), extras=extras)
    monkeypatch.setattr(cogrl.replay, "_available_bytes", lambda device: None)  # unknown
    ReplayBuffer(8, 2, BOX, spaces.Discrete(4), extras=extras)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(capacity=1, num_envs=2), r"capacity \(1\) must be at least num_envs \(2\)"),
        (dict(num_envs=0), "num_envs must be a positive int"),
        (dict(num_envs=2.0), "num_envs must be a positive int"),
        (dict(capacity=-3), "capacity must be a positive int"),
        (dict(alpha=-0.1), "alpha must be a number >= 0"),
        (dict(observation_space=spaces.Tuple([BOX])), "observation space Tuple"),
        (dict(action_space=spaces.Dict({"a": BOX})), "action space Dict"),
        (dict(observation_space=spaces.Dict({"a": spaces.Dict({"b": BOX})})), "nested Dict"),
        (dict(extras={"h": (3, torch.float32)}), r"extras\['h'\] must be \(shape"),
        (dict(device="nonsense"), "device must be"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, match):
    args = dict(capacity=8, num_envs=2, observation_space=BOX, action_space=spaces.Discrete(4))
    with pytest.raises(ValueError, match=match):
        ReplayBuffer(**{**args, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            dict(batch_size=7),
            r"batch_size \(7\) must not exceed the number of stored transitions \(6\)",
        ),
        (dict(batch_size=0), "batch_size must be a positive int"),
        (dict(n_step=0), "n_step must be a positive int"),
        (dict(gamma=1.5), r"gamma must be a number in \[0, 1\]"),
        (dict(beta=-1.0), "beta must be a finite number >= 0"),
    ],
)
def test_sample_rejects_bad_arguments(kwargs, match):
    buffer = ReplayBuffer(8, 2, BOX, spaces.Discrete(4))
    fill(buffer, 3)
    with pytest.raises(ValueError, match=match):
        buffer.sample(**{"batch_size": 2, **kwargs})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_buffer_takes_cpu_batches_and_samples_on_the_device(tmp_path):
    buffer = ReplayBuffer(12, 2, BOX, spaces.Discrete(4), device="cuda", prioritized=True)
    fill(buffer, 5, ends={2: ((0,), (1,))})
    g = torch.Generator(device="cuda").manual_seed(0)
    s = buffer.sample(8, g, n_step=2)
    assert s.obs.is_cuda and s.weights.is_cuda and s.indices.is_cuda
    t, e = where(s.obs.cpu())
    assert torch.equal(s.indices.cpu(), torch.stack([t % 6, e], 1))
    buffer.update_priorities(s.indices, torch.rand(8, device="cuda") + 0.1)
    q = buffer.sample_sequences(4, 3, burn_in=1, generator=g)
    assert q.mask.is_cuda and q.obs.shape == (4, 4, 2)
    buffer.save(tmp_path / "r.pt")
    loaded = ReplayBuffer.load(tmp_path / "r.pt", device="cuda")
    g1, g2 = (torch.Generator(device="cuda").manual_seed(3) for _ in range(2))
    assert_same(buffer.sample(8, g1, n_step=2), loaded.sample(8, g2, n_step=2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_per_step_paths_do_not_synchronise_and_memory_is_checked():
    buffer = ReplayBuffer(12, 2, BOX, spaces.Discrete(4), device="cuda", prioritized=True)
    batches = [
        {k: v.cuda() for k, v in step_values(t, 2, term=(0,) if t == 3 else ()).items()}
        for t in range(7)
    ]
    g = torch.Generator(device="cuda").manual_seed(0)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for batch in batches:
            buffer.add(**batch, check=False)
        s = buffer.sample(4, g, n_step=3)
        buffer.update_priorities(s.indices, s.reward.abs() + 1.0, check=False)
        buffer.sample_sequences(3, 2, burn_in=1, generator=g)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    with pytest.raises(ValueError, match=r"capacity 1000000000000 .* on cuda.* available there"):
        ReplayBuffer(10**12, 1, BOX, spaces.Discrete(4), device="cuda")
