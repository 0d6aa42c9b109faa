"""Tests for cogrl.spaces: observations to tensors, and the one action check every core uses."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces

from cogrl.spaces import batch_size, check_actions, is_batched, to_tensor, torch_dtype, unsqueeze

BOX = spaces.Box(-1.0, 1.0, (3,), np.float32)
DISCRETE = spaces.Discrete(4)
CPU = torch.device("cpu")


# --- observations -----------------------------------------------------------------------------


def test_torch_dtype_is_what_the_encoders_take() -> None:
    assert torch_dtype(BOX) == torch.float32
    assert torch_dtype(spaces.Box(0, 255, (8, 8, 3), np.uint8)) == torch.uint8
    assert torch_dtype(spaces.Box(0, 5, (2,), np.int64)) == torch.float32
    assert torch_dtype(DISCRETE) == torch.int64
    assert torch_dtype(spaces.MultiDiscrete([3, 4])) == torch.int64
    assert torch_dtype(spaces.MultiBinary(5)) == torch.float32


def test_to_tensor_converts_numpy_tensors_and_dicts() -> None:
    space = spaces.Dict({"x": BOX, "token": DISCRETE})
    obs = {"x": np.zeros((2, 3), np.float64), "token": np.array([1, 3], np.int32)}
    out = to_tensor(obs, space, CPU)
    assert out["x"].dtype == torch.float32 and out["x"].shape == (2, 3)
    assert out["token"].dtype == torch.int64 and out["token"].tolist() == [1, 3]
    assert to_tensor(torch.ones(3, dtype=torch.float64), BOX, "cpu").dtype == torch.float32
    assert to_tensor([1.0, 2.0, 3.0], BOX, CPU).tolist() == [1.0, 2.0, 3.0]


def test_is_batched_batch_size_and_unsqueeze() -> None:
    assert is_batched(np.zeros((5, 3)), BOX) and not is_batched(np.zeros(3), BOX)
    assert is_batched(torch.zeros(5), DISCRETE) and not is_batched(2, DISCRETE)
    with pytest.raises(ValueError, match=r"shape \(1, 1, 3\) does not fit .*expected shape \(3,\)"):
        is_batched(np.zeros((1, 1, 3)), BOX)
    # The right number of dims is not enough: the shape is named with the expected one.
    with pytest.raises(ValueError, match=r"shape \(2, 5\) does not fit .*\(n, 3\)"):
        is_batched(np.zeros((2, 5)), BOX)
    space = spaces.Dict({"x": BOX})
    assert is_batched({"x": np.zeros((2, 3))}, space)
    with pytest.raises(ValueError, match="dict"):
        is_batched(np.zeros(3), space)
    with pytest.raises(ValueError, match="lacks"):
        is_batched({"y": np.zeros(3)}, space)
    assert batch_size(torch.zeros(7, 3)) == 7 and batch_size({"x": torch.zeros(4, 3)}) == 4
    assert unsqueeze(torch.zeros(3)).shape == (1, 3)
    assert unsqueeze({"x": torch.zeros(3)})["x"].shape == (1, 3)


# --- actions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "action", "dtype"),
    [
        (BOX, np.zeros((2, 3), np.float32), torch.float32),
        (BOX, torch.zeros(2, 3, dtype=torch.float64), torch.float32),
        (BOX, [[0.5, -1.0, 1.0], [0.0, 0.0, 0.0]], torch.float32),
        (DISCRETE, torch.tensor([0, 3]), torch.int64),
        (DISCRETE, np.array([1, 2], np.uint8), torch.int64),
        (DISCRETE, [3, 0], torch.int64),
        (spaces.Discrete(3, start=-1), [-1, 1], torch.int64),
        (spaces.MultiDiscrete([2, 5]), [[1, 4], [0, 0]], torch.int64),
        (spaces.MultiBinary(3), np.array([[True, False, True]] * 2), torch.int8),
        (spaces.MultiBinary(3), torch.ones(2, 3, dtype=torch.int8), torch.int8),
        (spaces.Box(0, 9, (2,), np.int64), [[0, 9], [3, 4]], torch.int64),
    ],
)
def test_valid_batches_come_back_as_tensors_of_the_space_dtype(
    space: spaces.Space, action: Any, dtype: torch.dtype
) -> None:
    out = check_actions(space, action, 2, CPU)
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.device == CPU
    assert out.shape == (2, *space.shape)
    np.testing.assert_array_equal(out.numpy(), np.asarray(action, dtype=out.numpy().dtype))


@pytest.mark.parametrize(
    ("space", "action", "words"),
    [
        # shape: what came, what was expected
        (BOX, np.zeros((3, 3), np.float32), ["(3, 3)", "(2, 3)", "Box(-1.0, 1.0, (3,)"]),
        (DISCRETE, torch.zeros(2, 1, dtype=torch.int64), ["(2, 1)", "(2,)", "Discrete(4)"]),
        # dtype: a floating space takes floats, an integer space integers (not bools)
        (BOX, np.zeros((2, 3), np.int64), ["int64", "floating"]),
        (DISCRETE, torch.zeros(2), ["float32", "integer"]),
        (DISCRETE, np.array([True, False]), ["bool", "integer"]),
        (DISCRETE, ["a", "b"], ["'a'", "<U1", "integer"]),
        # values: the bad ones, where the first is, the interval expected
        (
            BOX,
            np.array([[0, 0, 0], [0, 1.5, -2]], np.float32),
            ["[1.5, -2.0]", "(1, 1)", "[-1, 1]"],
        ),
        (BOX, torch.tensor([[0, 0, float("nan")], [0, 0, 0]]), ["nan", "non-finite", "(0, 2)"]),
        (BOX, torch.tensor([[0, 0, 0], [float("-inf"), 0, 0]]), ["-inf", "non-finite", "(1, 0)"]),
        (DISCRETE, torch.tensor([4, 0]), ["[4]", "(0,)", "[0, 4)"]),
        (DISCRETE, [0, -1], ["[-1]", "(1,)", "[0, 4)"]),
        (spaces.MultiDiscrete([2, 5]), [[1, 5], [2, 0]], ["[5, 2]", "(0, 1)"]),
        (spaces.MultiBinary(2), [[0, 2], [1, 1]], ["[2]", "{0, 1}"]),
        (
            spaces.Box(np.zeros(3, np.float32), np.array([1, 2, 3], np.float32)),
            np.array([[0, 0, 4], [0, 0, 1]], np.float32),
            ["[4.0]", "(0, 2)", "bounds of Box(0.0, [1. 2. 3.]"],
        ),
    ],
)
def test_bad_batches_name_the_value_where_and_what_was_expected(
    space: spaces.Space, action: Any, words: list[str]
) -> None:
    with pytest.raises(ValueError) as err:
        check_actions(space, action, 2, CPU)
    message = str(err.value)
    assert message.startswith("invalid action ")
    for word in words:
        assert word in message, (word, message)


def test_values_false_checks_shape_and_dtype_but_not_values() -> None:
    out_of_range = torch.tensor([7, -3])
    assert check_actions(DISCRETE, out_of_range, 2, CPU, values=False).tolist() == [7, -3]
    nan = torch.full((2, 3), float("nan"))
    assert torch.isnan(check_actions(BOX, nan, 2, CPU, values=False)).all()
    with pytest.raises(ValueError, match=r"\(3,\)"):
        check_actions(DISCRETE, torch.tensor([0, 1, 2]), 2, CPU, values=False)
    with pytest.raises(ValueError, match="float32"):
        check_actions(DISCRETE, torch.zeros(2), 2, CPU, values=False)


def test_values_false_reads_nothing_on_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    for name in ("item", "__bool__", "tolist", "numpy", "nonzero"):
        original = getattr(torch.Tensor, name)

        def counting(self: torch.Tensor, *args: Any, _name: str = name, _f: Any = original, **kw):
            reads.append(_name)
            return _f(self, *args, **kw)

        monkeypatch.setattr(torch.Tensor, name, counting)
    check_actions(BOX, torch.zeros(4, 3), 4, CPU, values=False)
    check_actions(DISCRETE, torch.zeros(4, dtype=torch.int64), 4, CPU, values=False)
    assert reads == []


def test_one_action_without_a_batch_dimension() -> None:
    assert check_actions(DISCRETE, 2, None, CPU).shape == ()
    assert check_actions(DISCRETE, np.int32(3), None, CPU).item() == 3
    assert check_actions(BOX, np.zeros(3, np.float32), None, CPU).shape == (3,)
    with pytest.raises(ValueError) as err:
        check_actions(BOX, np.zeros((1, 3), np.float32), None, CPU)
    assert "an action from" in str(err.value) and "(1, 3)" in str(err.value)
    with pytest.raises(ValueError, match=r"\[4\].*\[0, 4\)"):
        check_actions(DISCRETE, 4, None, CPU)
    with pytest.raises(ValueError, match="float64"):
        check_actions(DISCRETE, 1.0, None, CPU)


def test_dict_and_tuple_spaces_check_each_entry() -> None:
    space = spaces.Dict({"look": BOX, "answer": DISCRETE})
    out = check_actions(space, {"look": np.zeros((2, 3), np.float32), "answer": [0, 1]}, 2, CPU)
    assert out["look"].dtype == torch.float32 and out["answer"].dtype == torch.int64
    with pytest.raises(ValueError, match=r"action\['answer'\]"):
        check_actions(space, {"look": np.zeros((2, 3), np.float32), "answer": [0, 9]}, 2, CPU)
    with pytest.raises(ValueError, match="keys"):
        check_actions(space, {"look": np.zeros((2, 3), np.float32)}, 2, CPU)
    pair = spaces.Tuple((DISCRETE, BOX))
    out = check_actions(pair, ([0, 1], np.zeros((2, 3), np.float32)), 2, CPU)
    assert isinstance(out, tuple) and out[0].tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"action\[1\]"):
        check_actions(pair, ([0, 1], np.zeros((2, 3), np.int64)), 2, CPU)


def test_spaces_without_a_tensor_form_use_contains() -> None:
    text = spaces.Text(5)
    assert list(check_actions(text, ["ab", "c"], 2, CPU)) == ["ab", "c"]
    with pytest.raises(ValueError, match="not in the space"):
        check_actions(text, ["ab", "toolongtext"], 2, CPU)


def test_long_values_are_cut_in_messages() -> None:
    with pytest.raises(ValueError) as err:
        check_actions(DISCRETE, list(range(100, 10_000)), 9_900, CPU)
    message = str(err.value)
    assert len(message) < 800 and "..." in message and "[100, 101, 102" in message
