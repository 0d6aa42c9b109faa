"""cogrl.rng: seed checks (``check_seed``, ``BatchRNG.seed``) and per-environment streams."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from cogrl.rng import MAX_SEED, BatchRNG, check_seed

RANGE = re.escape("must be an int in [0, 2**62)")


@pytest.mark.parametrize(
    "seed", [0, 1, 12345, MAX_SEED - 1, np.int64(7), np.uint32(7), np.int8(3), np.uint64(2**61)]
)
def test_check_seed_accepts_ints_in_range(seed) -> None:
    value = check_seed(seed)
    assert type(value) is int and value == int(seed)


@pytest.mark.parametrize(
    ("seed", "shown"),
    [
        (-1, "-1"),
        (MAX_SEED, str(2**62)),
        (2**64, str(2**64)),
        (np.int64(-5), "-5"),
        (True, "True"),
        (np.bool_(False), repr(np.bool_(False))),
        (1.0, "1.0"),
        (np.float64(3.0), repr(np.float64(3.0))),
        ("3", "'3'"),
        (None, "None"),
        ([1], "[1]"),
    ],
)
def test_check_seed_rejects_bad_seeds_naming_value_and_range(seed, shown) -> None:
    with pytest.raises(ValueError, match=rf"^seed {RANGE}, got {re.escape(shown)}$"):
        check_seed(seed)


def test_check_seed_names_the_argument() -> None:
    with pytest.raises(ValueError, match=rf"^eval_seed {RANGE}, got -3$"):
        check_seed(-3, name="eval_seed")


@pytest.mark.parametrize("seed", [-1, MAX_SEED, True, 2.5, "0"])
def test_batch_rng_seed_uses_check_seed(seed) -> None:
    rng = BatchRNG(3, torch.device("cpu"))
    with pytest.raises(ValueError, match=rf"^seed {RANGE}, got "):
        rng.seed(seed)
    assert not rng.seeded


def test_batch_rng_seeds_env_i_with_seed_plus_i_and_none_draws_one_in_range() -> None:
    rng = BatchRNG(4, torch.device("cpu"))
    rng.seed(np.int64(MAX_SEED - 4))
    assert rng.seeds.tolist() == [MAX_SEED - 4 + i for i in range(4)]
    rng.seed(None)
    assert rng.seeded and 0 <= int(rng.seeds[0]) < MAX_SEED


def test_an_env_stream_does_not_depend_on_the_batch() -> None:
    batch, single = BatchRNG(5, torch.device("cpu")), BatchRNG(1, torch.device("cpu"))
    batch.seed(100)
    single.seed(103)
    index = torch.arange(5)
    batch.next_episode(index)
    single.next_episode(torch.arange(1))
    u = batch.uniform(index, 6, start=2)
    assert u.shape == (5, 6) and ((u >= 0) & (u < 1)).all()
    assert torch.equal(u[3:4], single.uniform(torch.arange(1), 6, start=2))
