"""``evaluate(agent, "all")``: each item of a finite test set exactly once (the papers' test
error), not episodes drawn with replacement."""

from __future__ import annotations

import json

import pytest
import torch

import cogrl.agents
from cogrl.agents import evaluate
from cogrl.cli import main
from cogrl.envs import make_core


@pytest.mark.parametrize(
    ("env", "kwargs", "items"),
    [
        ("cogrl/GlimpseDigits-v0", {}, 360),  # the digits' test images
        ("cogrl/StoryQA-v0", {"task": 1}, 1000),  # the generated test questions
    ],
)
def test_all_visits_each_test_item_once_whatever_the_batch(env, kwargs, items) -> None:
    agent = cogrl.agents.make("ppo", env, device="cpu", seed=0, env_kwargs=kwargs)
    assert make_core(env, 1, "cpu", split="test", **kwargs).num_items == items
    results = [
        evaluate(agent, "all", num_envs=n, seed=5, split="test") for n in (64, 37, items + 10)
    ]
    # Each item once: the same episodes, however the rounds cut them (a deterministic
    # policy on episodes that depend only on the item).
    assert all(r["episodes"] == items for r in results)
    assert results[0] == results[1] == results[2]
    drawn = evaluate(agent, items, seed=5, split="test")  # with replacement: others
    assert drawn["episodes"] == items


def test_reset_items_show_the_chosen_images_once() -> None:
    core = make_core("cogrl/GlimpseDigits-v0", 3, "cpu", split="test")
    core.reset(seed=0, options={"item": torch.tensor([5, 6, 7])})
    assert core.label.tolist() == core.labels[5:8].tolist()
    with pytest.raises(ValueError, match=r"options\['item'\] must be 3 ints in \[0, 360\)"):
        core.reset(options={"item": [0, 1, 360]})
    with pytest.raises(ValueError, match="unknown reset option"):
        make_core("cogrl/MultiDigits-v0", 2, "cpu").reset(options={"item": [0, 1]})


def test_all_on_a_task_without_items_is_a_clear_error() -> None:
    agent = cogrl.agents.make("ppo", "cogrl/DelayedRecall-v0", device="cpu", seed=0)
    with pytest.raises(ValueError, match="episodes='all' needs a task whose episodes show"):
        evaluate(agent, "all")
    with pytest.raises(ValueError, match="positive int or 'all', got 'every'"):
        evaluate(agent, "every")


def test_cli_eval_episodes_all(tmp_path, capsys) -> None:
    assert main(
        ["train", "--env", "cogrl/GlimpseDigits-v0", "--agent", "ppo", "--steps", "256",
         "--num-envs", "8", "--set", "n_steps=8", "--set", "batch_size=32", "--no-preset",
         "--device", "cpu", "--runs-dir", str(tmp_path), "--video-interval", "0",
         "--eval-episodes", "0", "--no-progress"]
    ) == 0  # fmt: skip
    (run,) = tmp_path.iterdir()
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "all", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["episodes"] == 360 and result["split"] == "test"
    assert main(["eval", str(run), "--episodes", "most"]) == 2
    assert "expected a positive number of episodes or 'all', got 'most'" in capsys.readouterr().err


def test_train_eval_episodes_all_is_the_final_evaluation_and_eval_repeats_it(tmp_path, capsys):
    common = [
        "--agent",
        "ppo",
        "--steps",
        "256",
        "--num-envs",
        "8",
        "--set",
        "n_steps=8",
        "--set",
        "batch_size=32",
        "--no-preset",
        "--device",
        "cpu",
        "--runs-dir",
        str(tmp_path),
        "--video-interval",
        "0",
        "--no-progress",
        "--eval-episodes",
        "all",
    ]
    assert main(["train", "--env", "cogrl/GlimpseDigits-v0", *common]) == 0  # fmt: skip
    (run,) = tmp_path.iterdir()
    assert json.loads((run / "config.json").read_text())["run"]["eval_episodes"] == "all"
    capsys.readouterr()
    assert main(["eval", str(run), "--device", "cpu"]) == 0  # the run's own: all 360
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["episodes"] == 360
    # Refused before any training where the task has no finite set of items.
    assert main(["train", "--env", "cogrl/DelayedRecall-v0", *common]) == 2
    assert "eval_episodes='all' evaluates each item" in capsys.readouterr().err
    assert len(list(tmp_path.iterdir())) == 1
