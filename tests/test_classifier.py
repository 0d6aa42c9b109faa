"""The ``classifier`` agent: the whole-image baselines trained and run like every agent, from
the Python API and the command line, on the glimpse tasks' full-size ``context``."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import cogrl.agents
import cogrl.agents.training
from cogrl.agents import evaluate, load, make
from cogrl.agents.presets import PRESETS, preset
from cogrl.cli import main
from cogrl.core import force_sync_free
from cogrl.envs import make_core
from cogrl.runs import read_config

ENV = "cogrl/GlimpseDigits-v0"
DISCRETE = {"action_mode": "discrete"}
# A small spatial transformer: its classifier of 4 and 8 filters on a 12 x 12 crop.
SMALL_STN = {"channels": [4, 8], "out_size": 12}


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_learns_glimpse_digits_well_above_chance_in_seconds() -> None:
    agent = make("classifier", ENV, device="cpu", seed=0, env_kwargs=DISCRETE, num_envs=64)
    agent.learn(64 * 60)  # 60 updates of 64 canvases: one step each in the discrete mode
    assert agent.num_timesteps == 64 * 60
    result = evaluate(agent, episodes=360, split="test")
    assert result["accuracy"] > 0.6  # chance: 0.1
    assert result["mean_length"] == 1.0  # it answers at once


def test_both_action_modes_learn_from_the_same_canvases_and_count_environment_steps() -> None:
    """The agent sets the task's context to the canvas, answers with the core's actions
    and reads the labels at the episode's end: in the continuous mode an episode lasts
    n_glimpses steps, in the discrete one it ends at the answer, and the same seed gives
    the same canvases, so the same losses."""
    logs: dict[str, list[dict[str, float]]] = {}
    for mode in ("discrete", "continuous"):
        agent = make(
            "classifier", ENV, device="cpu", seed=1, env_kwargs={"action_mode": mode}, num_envs=32
        )
        assert agent.env_kwargs["context_size"] == 28
        logs[mode] = []
        agent.learn(100, callback=lambda _, info, log=logs[mode]: log.append(info))
        # Whole updates of 32 episodes: 4 of 1 step, or 1 of 6 steps.
        assert agent.num_timesteps == {"discrete": 128, "continuous": 192}[mode]
    discrete, continuous = logs["discrete"], logs["continuous"]
    assert [i["timesteps"] for i in discrete] == [32, 64, 96, 128]
    assert continuous[0]["train/loss"] == pytest.approx(discrete[0]["train/loss"])
    assert continuous[0]["rollout/ep_len_mean"] == 6.0
    for info in discrete:
        assert 0.0 <= info["train/accuracy"] <= 1.0 and info["train/loss"] > 0.0
        assert info["rollout/ep_len_mean"] == 1.0


def test_predict_answers_the_argmax_in_the_environments_actions() -> None:
    env = gym.make(ENV, context_size=28, action_mode="discrete")
    agent = make("classifier", env, device="cpu", seed=0, model="fc", num_envs=16)
    obs, _ = env.reset(seed=3)
    action, state = agent.predict(obs)
    with torch.no_grad():
        canvas = torch.as_tensor(obs["context"]).view(1, 1, 28, 28)
        label = int(agent.model(canvas).argmax(-1)[0])
    assert action == 9 + label  # the 3 x 3 grid's cells come first
    assert int(state[0]) == 1  # one step of the episode taken
    _, reward, terminated, _, info = env.step(action)
    assert terminated and reward == float(info["correct"])
    # Not deterministic: labels drawn from the softmax, as answering actions all the same.
    obs = {k: np.stack([v] * 200) for k, v in obs.items()}
    sampled, _ = agent.predict(obs, deterministic=False)
    assert sampled.shape == (200,) and ((sampled >= 9) & (sampled < 19)).all()
    assert len(set(sampled.tolist())) > 1  # an untrained model's softmax is spread out


def test_save_and_load_predict_the_same(tmp_path: Path) -> None:
    agent = make(
        "classifier", ENV, device="cpu", seed=0, model="stn", model_kwargs=SMALL_STN, num_envs=32
    )
    agent.learn(64)  # one update of 32 episodes of 6 steps
    path = agent.save(tmp_path / "model")
    loaded = load(path, device="cpu")
    assert loaded.config.model == "stn" and loaded.config.model_kwargs == SMALL_STN
    assert loaded.env_kwargs["context_size"] == 28 and loaded.num_timesteps == 192
    core = make_core(ENV, 8, context_size=28)
    obs, _ = core.reset(seed=5)
    for a, b in zip(
        agent.model.state_dict().values(), loaded.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    first, _ = agent.predict(obs)
    second, _ = loaded.predict(obs)
    assert torch.equal(first, second)


def test_the_command_line_trains_a_spatial_transformer(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    threads = torch.get_num_threads()
    code, out, err = run_cli(
        "train", "--env", ENV, "--agent", "classifier", "--set", "model=stn",
        "--set", "model_kwargs.channels=[4,8]", "--set", "model_kwargs.out_size=12",
        "--set", "env.action_mode=discrete", "--steps", "96", "--num-envs", "32",
        "--device", "cpu", "--runs-dir", str(root), "--eval-episodes", "32",
        "--video-interval", "0", "--no-progress",
    )  # fmt: skip
    torch.set_num_threads(threads)
    assert code == 0, err
    run = Path(out.rstrip("\n").splitlines()[-1])
    assert (run / "model.pt").is_file() and (run / "checkpoint.pt").is_file()
    config = read_config(run)
    assert config["agent"] == "classifier"
    assert config["hyperparameters"]["model"] == "stn"
    code, out, err = run_cli("eval", str(run), "--episodes", "16", "--device", "cpu")
    assert code == 0, err
    result = json.loads(out.rstrip("\n").splitlines()[-1])
    assert result["episodes"] == 16 and 0.0 <= result["accuracy"] <= 1.0


def test_a_bad_model_or_model_option_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"model must be one of \['cnn', 'fc', 'soft', 'stn'\]"):
        make("classifier", ENV, device="cpu", model="resnet")
    with pytest.raises(ValueError, match=r"model 'soft' has no option\(s\) \['out_size'\]"):
        make("classifier", ENV, device="cpu", model="soft", model_kwargs={"out_size": 12})
    with pytest.raises(ValueError, match="model_kwargs must be a dict"):
        make("classifier", ENV, device="cpu", model_kwargs=[1, 2])
    code, _, err = run_cli(
        "train", "--env", ENV, "--agent", "classifier", "--set", "model=resnet", "--steps", "8"
    )
    assert code == 2 and "model must be one of" in err


def test_an_env_without_the_whole_canvas_is_a_clear_error() -> None:
    # Made by the user without context, or with a coarse one: the agent cannot see it all.
    with pytest.raises(ValueError, match=r"full size \(784 values: context_size=28\).*no context"):
        make("classifier", gym.make(ENV), device="cpu")
    with pytest.raises(ValueError, match=r"context of shape \(49,\)"):
        make("classifier", ENV, device="cpu", env_kwargs={"context_size": 7})
    with pytest.raises(ValueError, match="whole-image recognition task"):
        make("classifier", "CartPole-v1", device="cpu")


def test_host_reads_do_not_grow_with_the_updates_on_the_sync_free_path(
    host_reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU's code path the first update learns the episodes' length by asking; later
    updates run that many steps without reading anything on the host."""
    monkeypatch.setattr(cogrl.agents.training, "LOG_INTERVAL", 10**9)
    counts = []
    with force_sync_free():
        for updates in (4, 16):
            agent = make("classifier", ENV, device="cpu", model="fc", num_envs=16)
            agent.learn(16 * 6)  # the first update (continuous mode: 6 steps)
            host_reads.clear()
            agent.learn(16 * 6 * updates, reset_num_timesteps=False)
            counts.append(Counter(host_reads))
    assert counts[0] == counts[1], counts


def test_the_training_state_round_trips(tmp_path: Path) -> None:
    agent = make("classifier", ENV, device="cpu", seed=0, model="fc", num_envs=16)
    agent.learn(16 * 6 * 2)
    path = agent.save(tmp_path / "checkpoint", training=True)
    again, training = cogrl.agents.base.load_checkpoint(path, device="cpu")
    again.load_training_state(training)
    assert again._episode_steps == 6
    for module in (agent, again):
        module.learn(16 * 6, reset_num_timesteps=False)
    for a, b in zip(agent.model.parameters(), again.model.parameters(), strict=True):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("env_id", sorted(PRESETS["classifier"]))
def test_the_presets_answer_in_one_step_per_image(env_id: str) -> None:
    p = preset("classifier", env_id)
    agent = make("classifier", env_id, device="cpu", env_kwargs=p.env_kwargs, **p.hyperparameters)
    assert agent.config.model == "cnn" and agent.env_kwargs["action_mode"] == "discrete"
    agent.learn(agent.config.num_envs)
    assert agent.num_timesteps == agent.config.num_envs  # one update, one step per canvas


def test_on_the_multi_digit_task_step_i_sends_the_ith_label() -> None:
    agent = make(
        "classifier",
        "cogrl/MultiDigits-v0",
        device="cpu",
        model="fc",
        env_kwargs={"action_mode": "discrete"},
        num_envs=8,
    )
    assert (agent.n_answers, agent.env_kwargs["context_size"]) == (2, 100)
    core = agent.make_core(4)
    obs, _ = core.reset(seed=0)
    with torch.no_grad():
        expected = agent.model(obs["context"].view(4, 1, 100, 100)).argmax(-1)  # (4, 2)
    state, start = None, torch.ones(4, dtype=torch.bool)
    for i in range(2):
        action, state = agent.predict(obs, state, start)
        assert torch.equal(action, core.answer(expected[:, i]))
        obs, _, terminated, _, info = core.step(action)
        start = torch.zeros(4, dtype=torch.bool)
    assert terminated.all() and torch.equal(info["prediction"], expected)
    # Learning reads the labels (N, 2) at the episodes' end: 8 episodes of 2 steps.
    logged: list[dict[str, float]] = []
    agent.learn(16, callback=lambda _, info: logged.append(info))
    assert agent.num_timesteps == 16 and logged[0]["rollout/ep_len_mean"] == 2.0
