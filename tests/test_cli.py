"""Tests for the ``cogrl`` command: list, train, eval and record, read back from the run folder."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import cogrl.agents
from cogrl.agents import available_agents
from cogrl.agents.presets import preset
from cogrl.cli import main
from cogrl.envs import cogrl_env_ids
from cogrl.logging import read_images, read_scalars
from cogrl.runner import (
    EVAL_MAX_EPISODES,
    EVAL_MIN_EPISODES,
    EVAL_UNBOUNDED_EPISODES,
    VIDEO_MAX_SECONDS,
    default_eval_episodes,
    default_video_interval,
)
from cogrl.runs import (
    create_run_dir,
    merge_settings,
    parse_overrides,
    parse_value,
    read_config,
    run_name,
)

ENV = "cogrl/GlimpseDigits-v0"
N_GLIMPSES = 4  # set through --set env.n_glimpses: episodes are 4 steps, 5 rendered frames
# A small RAM so that training 2000 steps takes seconds on a CPU (hidden_sizes=[32]: the
# glimpse feature's width).
SMALL_RAM = [
    "--set",
    "policy.core_size=32",
    "--set",
    "policy.hidden_sizes=[32]",
    "--set",
    "policy.glimpse_hidden=16",
    "--set",
    "policy.location_hidden=16",
]


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``main(argv)`` in-process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as e:  # main returns its status, but accept argparse's exit too
            code = e.code
    return code, out.getvalue(), err.getvalue()


def last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One small training run shared by the tests that read it (training is the slow part)."""
    root = tmp_path_factory.mktemp("runs")
    argv = [
        "train", "--env", ENV, "--agent", "ram", "--steps", "2000", "--num-envs", "16",
        "--device", "cpu", "--seed", "3", "--runs-dir", str(root), "--eval-episodes", "64",
        "--set", f"env.n_glimpses={N_GLIMPSES}", "--set", "learning_rate=2e-3", *SMALL_RAM,
    ]  # fmt: skip
    # The networks are tiny: one intra-op thread is faster, and much faster on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code, out, err = run_cli(*argv)
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err
    return {"root": root, "run": Path(last_line(out)), "out": out, "err": err, "argv": argv}


# --- list -------------------------------------------------------------------------------------
def test_list_prints_environments_and_agents(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    envs, agents = out.split("agents:")
    assert envs.startswith("environments:")
    assert [line.strip() for line in envs.splitlines()[1:]] == cogrl_env_ids()
    assert [line.strip() for line in agents.splitlines()[1:]] == available_agents()
    assert "ram" in available_agents() and ENV in cogrl_env_ids()


def test_console_script_and_python_m_run_the_cli() -> None:
    script = shutil.which("cogrl") or str(Path(sys.executable).with_name("cogrl"))
    assert Path(script).is_file(), "the cogrl console script is not installed (pip install -e .)"
    done = subprocess.run([script, "list"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert ENV in done.stdout and "ram" in done.stdout.split("agents:")[1]
    done = subprocess.run(
        [sys.executable, "-m", "cogrl", "--version"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.startswith("cogrl "), done.stderr


# --- train ------------------------------------------------------------------------------------
def test_train_creates_a_named_run_folder_and_prints_it_last(trained: dict) -> None:
    run = trained["run"]
    assert run.parent == trained["root"] and run.is_dir()
    assert re.fullmatch(r"cogrl-GlimpseDigits-v0__ram__3__\d{8}-\d{6}", run.name)
    assert (run / "model.pt").is_file()
    assert "%|" in trained["err"] or "step/s" in trained["err"]  # the tqdm progress bar


def test_train_writes_the_resolved_config(trained: dict) -> None:
    config = read_config(trained["run"])
    assert config["agent"] == "ram" and config["env"] == ENV and config["seed"] == 3
    assert config["steps"] == 2000 and config["device"] == "cpu"
    # the preset's random first glimpse, and the --set argument
    assert config["env_kwargs"] == {"first_glimpse": "random", "n_glimpses": N_GLIMPSES}
    hp = config["hyperparameters"]
    assert hp["num_envs"] == 16 and hp["learning_rate"] == 2e-3
    policy = hp["policy"]
    assert policy["core_size"] == 32 and policy["hidden_sizes"] == [32]
    assert policy["glimpse_hidden"] == 16 and policy["location_hidden"] == 16
    # Settings not given keep RAM's defaults (the --set items are merged, not a new policy).
    assert policy["encoder"] == "glimpse" and policy["core"] == "gru"
    assert config["command"].startswith("cogrl train --env cogrl/GlimpseDigits-v0")
    assert config["cogrl_version"] and config["video_interval"] == 500


def test_train_logs_scalars_gif_videos_hparams_and_an_mp4(trained: dict) -> None:
    run = trained["run"]
    scalars = read_scalars(run)
    for tag in ("rollout/ep_rew_mean", "time/fps", "final/test_accuracy", "final/test_mean_return"):
        assert scalars.get(tag), f"{tag} missing from {sorted(scalars)}"
    assert max(step for step, _ in scalars["rollout/ep_rew_mean"]) >= 2000

    gifs = [data for points in read_images(run).values() for _, data in points]
    assert gifs, "no rollout video in the event file"
    for data in gifs:
        assert data.startswith(b"GIF8")
        assert len(iio.imread(data, index=None, extension=".gif")) > 1

    (mp4,) = (run / "videos").glob("*.mp4")
    assert len(iio.imread(mp4, index=None)) > 1


# --- eval -------------------------------------------------------------------------------------
def test_eval_prints_json_last_and_reproduces_the_final_metrics(trained: dict) -> None:
    run = trained["run"]
    code, out, err = run_cli("eval", str(run), "--episodes", "64", "--device", "cpu")
    assert code == 0, err
    result = json.loads(last_line(out))
    assert result["episodes"] == 64 and result["split"] == "test"
    assert result["run_dir"] == str(run)
    assert 0.0 <= result["accuracy"] <= 1.0
    assert result["mean_return"] == pytest.approx(result["accuracy"])  # reward 1 if right
    # The final evaluation of `cogrl train` used the same seed and episodes.
    assert result["accuracy"] == pytest.approx(read_scalars(run)["final/test_accuracy"][0][1])
    # human-readable lines come first
    assert any("accuracy" in line for line in out.splitlines()[:-1])


def test_eval_train_split(trained: dict) -> None:
    code, out, err = run_cli("eval", str(trained["run"]), "--episodes", "8", "--split", "train")
    assert code == 0, err
    result = json.loads(last_line(out))
    assert result["split"] == "train" and result["episodes"] == 8


# --- record -----------------------------------------------------------------------------------
def test_record_writes_an_mp4_and_a_gif_summary(trained: dict) -> None:
    run = trained["run"]
    code, out, err = run_cli("record", str(run), "--episodes", "2", "--fps", "3", "--seed", "1")
    assert code == 0, err
    mp4 = Path(last_line(out))
    assert mp4.parent == run / "videos" and mp4.suffix == ".mp4"
    frames_per_episode = N_GLIMPSES + 1
    assert len(iio.imread(mp4, index=None)) == 2 * frames_per_episode

    (point,) = read_images(run)["record/rollout"]
    assert point[1].startswith(b"GIF8")
    assert len(iio.imread(point[1], index=None, extension=".gif")) > 1


# --- usage errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--env", "cogrl/NoSuchTask-v0", "--agent", "ram"], ["NoSuchTask", ENV]),
        (["--env", "CartPole-v1", "--agent", "ram"], ["CartPole-v1", "Box"]),
        (["--env", ENV, "--agent", "nosuchagent"], ["nosuchagent", "ram"]),
        (["--env", ENV, "--agent", "ram", "--set", "bogus=1"], ["bogus", "learning_rate"]),
        (["--env", ENV, "--agent", "ram", "--set", "env.bogus=1"], ["bogus", "n_glimpses"]),
        (["--env", ENV, "--agent", "ram", "--set", "env.n_glimpses=0"], ["n_glimpses"]),
        (["--env", ENV, "--agent", "ram", "--set", "learning_rate"], ["key=value"]),
        (["--env", ENV, "--agent", "ram", "--set", "core_size=32"], ["core_size", "policy."]),
        (
            ["--env", ENV, "--agent", "ram", "--set", "policy.bogus=1"],
            ["bogus", "core_size", "hidden_sizes"],
        ),
        (["--env", ENV, "--agent", "ram", "--set", "policy.core=nosuchcore"], ["nosuchcore"]),
        (["--env", ENV, "--agent", "ram", "--set", "policy.core_size=0"], ["policy.core_size"]),
    ],
    ids=[
        "env",
        "agent-cannot-act-in-env",
        "agent",
        "hyperparameter",
        "env-kwarg",
        "env-value",
        "no-value",
        "flat-policy-setting",
        "policy-setting",
        "policy-core",
        "policy-value",
    ],
)
def test_train_usage_errors_exit_2_without_a_run_folder(
    tmp_path: Path, args: list[str], expected: list[str]
) -> None:
    root = tmp_path / "runs"
    code, out, err = run_cli("train", *args, "--steps", "64", "--runs-dir", str(root))
    assert code == 2
    assert "cogrl: error:" in err
    for text in expected:
        assert text in err
    assert not root.exists()
    assert out == ""


def test_default_run_root_is_runs_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("train", "--env", ENV, "--agent", "ram", "--set", "bogus=1")
    assert code == 2 and "bogus" in err
    assert not (tmp_path / "runs").exists()  # checked before any folder is made


@pytest.mark.parametrize("command", ["eval", "record"])
def test_eval_and_record_need_a_run_with_a_checkpoint(tmp_path: Path, command: str) -> None:
    code, _, err = run_cli(command, str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli(command, str(tmp_path))
    assert code == 2 and "model.pt" in err


def test_argparse_errors_exit_2() -> None:
    assert run_cli("train", "--env", ENV)[0] == 2  # --agent is required
    assert run_cli("train", "--env", ENV, "--agent", "ram", "--steps", "0")[0] == 2
    assert run_cli()[0] == 2  # a command is required
    assert run_cli("--help")[0] == 0


# --- run folders and --set ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-2", -2),
        ("1e-3", 1e-3),
        ("0.5", 0.5),
        (".5", 0.5),
        ("true", True),
        ("False", False),
        ("null", None),
        ("None", None),
        ("[64, 64]", [64, 64]),
        ('{"a": 1}', {"a": 1}),
        ("gru", "gru"),
        ("test", "test"),
        ("a b", "a b"),
        ("", ""),
        ('"3"', "3"),
    ],
)
def test_parse_value(text: str, value: object) -> None:
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_parse_overrides_routes_env_keys_to_env_kwargs_and_nests_dotted_keys() -> None:
    hp, env = parse_overrides(
        [
            "learning_rate=3e-4",
            "env.n_glimpses=4",
            "policy.core=lstm",
            "env.split=test",
            "policy.core_size=32",
            "policy.core=gru",
        ]
    )
    # Dotted keys nest; the later item wins.
    assert hp == {"learning_rate": 3e-4, "policy": {"core": "gru", "core_size": 32}}
    assert env == {"n_glimpses": 4, "split": "test"}
    assert parse_overrides(["name=a=b"]) == ({"name": "a=b"}, {})
    assert parse_overrides(["policy.hidden_sizes=[16, 8]"]) == (
        {"policy": {"hidden_sizes": [16, 8]}},
        {},
    )
    for bad in ("novalue", "=3", "env.=3", "policy.=3", ".core=3", "policy..core=3"):
        with pytest.raises(ValueError):
            parse_overrides([bad])
    # A name set to a value cannot also hold settings.
    with pytest.raises(ValueError, match="policy"):
        parse_overrides(["policy=3", "policy.core=gru"])


def test_merge_settings_merges_a_presets_policy_with_set_items() -> None:
    preset_hp = {"num_envs": 8, "policy": {"ortho_init": True, "hidden_sizes": [64]}}
    over = {"policy": {"core": "gru", "hidden_sizes": [32]}, "learning_rate": 1e-3}
    merged = merge_settings(preset_hp, over)
    assert merged == {
        "num_envs": 8,
        "policy": {"ortho_init": True, "hidden_sizes": [32], "core": "gru"},
        "learning_rate": 1e-3,
    }
    assert preset_hp["policy"] == {"ortho_init": True, "hidden_sizes": [64]}  # not changed


def test_train_merges_set_policy_items_into_the_presets_policy(tmp_path: Path) -> None:
    # PPO's CartPole preset sets policy.ortho_init; --set policy.* adds to it.
    assert preset("ppo", "CartPole-v1").hyperparameters["policy"] == {"ortho_init": True}
    code, out, err = run_cli(
        "train", "--env", "CartPole-v1", "--agent", "ppo", "--steps", "64", "--device", "cpu",
        "--runs-dir", str(tmp_path), "--video-interval", "0", "--eval-episodes", "0",
        "--no-progress", "--set", "policy.core=gru", "--set", "policy.core_size=8",
        "--set", "policy.hidden_sizes=[8]",
    )  # fmt: skip
    assert code == 0, err
    policy = read_config(Path(last_line(out)))["hyperparameters"]["policy"]
    assert policy["ortho_init"] is True
    assert policy["core"] == "gru" and policy["core_size"] == 8 and policy["hidden_sizes"] == [8]


def test_run_folder_names_and_collisions(tmp_path: Path) -> None:
    when = datetime(2025, 1, 2, 3, 4, 5)
    assert run_name(ENV, "ram", 7, when) == "cogrl-GlimpseDigits-v0__ram__7__20250102-030405"
    first = create_run_dir(tmp_path / "runs", ENV, "ram", 7, when)
    second = create_run_dir(tmp_path / "runs", ENV, "ram", 7, when)
    assert first.name == run_name(ENV, "ram", 7, when)
    assert second.name == first.name + "-2" and second.is_dir()


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("list", "train", "eval", "record"):
        assert command in out


# --- first contact: what a user of SB3, CleanRL or Gymnasium expects ----------------------------
def cogrl_command() -> str:
    return shutil.which("cogrl") or str(Path(sys.executable).with_name("cogrl"))


def headless_env() -> dict[str, str]:
    """The environment of a machine without a display (a server, CI)."""
    env = dict(os.environ)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "SDL_VIDEODRIVER"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def cartpole(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`cogrl train` on CartPole with every default, as a user on a headless machine runs it;
    1000 steps end in an update that overshoots them (PPO's preset collects 512 a time)."""
    root = tmp_path_factory.mktemp("runs")
    done = subprocess.run(
        [cogrl_command(), "train", "--env", "CartPole-v1", "--agent", "ppo", "--steps", "1000",
         "--runs-dir", str(root)],
        capture_output=True, timeout=300, env=headless_env(),
    )  # fmt: skip
    # Bytes decoded here: text mode would turn the progress bar's carriage returns into "\n".
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, err
    return {"run": Path(last_line(out)), "out": out, "err": err}


def test_import_cogrl_gives_agents_and_envs() -> None:
    code = (
        "import cogrl; agent = cogrl.agents.make('ppo', 'CartPole-v1', device='cpu'); "
        "core = cogrl.envs.make_core('cogrl/GlimpseDigits-v0', num_envs=2); "
        "print(agent.name, core.num_envs)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ppo", "2"]


def test_agent_names_are_case_insensitive() -> None:
    agent = cogrl.agents.make("PPO", "CartPole-v1", device="cpu")
    assert agent.name == "ppo" and type(agent) is cogrl.agents.PPO


def test_train_takes_an_agent_name_in_any_case(tmp_path: Path) -> None:
    code, out, err = run_cli(
        "train", "--env", "CartPole-v1", "--agent", "Ppo", "--steps", "64", "--runs-dir",
        str(tmp_path), "--video-interval", "0", "--eval-episodes", "0", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    run = Path(last_line(out))
    assert "__ppo__" in run.name and read_config(run)["agent"] == "ppo"


@pytest.mark.parametrize(
    ("command", "typo", "meant"),
    [
        (["train", "--env", "CartPole-v1", "--agent"], "dqm", "dqn"),
        (["train", "--agent", "ppo", "--env"], "CartPol-v1", "CartPole-v1"),
        (["train", "--agent", "ppo", "--env"], "cartpole-v1", "CartPole-v1"),
        (["train", "--agent", "ram", "--env"], "GlimpseDigits-v0", ENV),
        (["describe"], "rma", "ram"),
        (["describe", "ppo", "--env"], "cogrl/GlimpseDigit-v0", ENV),
    ],
)
def test_typos_get_a_did_you_mean(
    tmp_path: Path, command: list[str], typo: str, meant: str
) -> None:
    if command[0] == "train":
        command = [*command, typo, "--runs-dir", str(tmp_path / "runs")]
    else:
        command = [*command, typo]
    code, out, err = run_cli(*command)
    assert code == 2 and out == ""
    assert f"{typo!r}" in err and f"did you mean {meant!r}?" in err
    assert not (tmp_path / "runs").exists()


def test_runs_dir_names_the_parent_of_run_folders_and_run_dir_still_works(tmp_path: Path) -> None:
    for option in ("--runs-dir", "--run-dir"):
        root = tmp_path / option.strip("-")
        code, out, err = run_cli(
            "train", "--env", "CartPole-v1", "--agent", "ppo", "--steps", "64", option,
            str(root), "--video-interval", "0", "--eval-episodes", "0", "--no-progress",
        )  # fmt: skip
        assert code == 0, err
        assert Path(last_line(out)).parent == root
        assert ("--run-dir is now --runs-dir" in err) == (option == "--run-dir")
    code, out, _ = run_cli("train", "--help")
    assert "--runs-dir" in out and "--run-dir " not in out


def test_train_help_points_at_describe() -> None:
    code, out, _ = run_cli("train", "--help")
    assert code == 0 and "cogrl describe AGENT" in " ".join(out.split())


def test_describe_prints_defaults_policy_settings_and_the_preset() -> None:
    code, out, err = run_cli("describe", "ppo", "--env", "CartPole-v1")
    assert code == 0, err
    settings = dict(re.findall(r"^  ([\w.]+) = (.+)$", out, re.M))
    defaults = cogrl.agents.PPO.Config()
    for name in ("learning_rate", "n_steps", "batch_size", "clip_range", "gamma"):
        assert f"{name} = {json.dumps(getattr(defaults, name))}" in out
    assert json.loads(settings["hidden_sizes"]) == defaults.policy.hidden_sizes
    assert json.loads(settings["core"]) == "none"
    found = preset("ppo", "CartPole-v1")
    preset_part = out.split("preset for ppo on CartPole-v1")[1].split("what they mean")[0]
    for name, value in found.hyperparameters.items():
        if name != "policy":
            assert f"  {name} = {json.dumps(value)}" in preset_part
    assert "  policy.ortho_init = true" in preset_part
    assert f"steps = {found.timesteps:,}" in preset_part
    assert "clip_range" in out.split("what they mean")[1]  # the settings' documentation


def test_describe_says_when_there_is_no_preset() -> None:
    code, out, _ = run_cli("describe", "RAM", "--env", "cogrl/TranslatedDigits-v0")
    assert code == 0
    assert "no preset for ram on cogrl/TranslatedDigits-v0" in out
    assert 'encoder = "glimpse"' in out and "steps when" in out


def test_config_records_the_steps_trained_and_whether_a_preset_was_applied(
    trained: dict, cartpole: dict
) -> None:
    ram = read_config(trained["run"])
    # RAM's preset on GlimpseDigits: a random first glimpse (and its steps, overridden here)
    assert ram["num_timesteps"] >= 2000 and ram["run"]["preset"] is True
    ppo = read_config(cartpole["run"])
    assert ppo["num_timesteps"] == 1024 and ppo["run"]["preset"] is True
    assert "preset" not in ram and "preset" not in ppo  # one truth, in "run"


def test_final_metrics_sit_at_the_final_step(trained: dict) -> None:
    final_step = read_config(trained["run"])["num_timesteps"]
    scalars = read_scalars(trained["run"])
    for tag in ("final/test_accuracy", "final/test_mean_return"):
        assert [step for step, _ in scalars[tag]] == [final_step]


def test_eval_prints_clean_numbers_and_defaults_to_the_runs_episodes(trained: dict) -> None:
    code, out, err = run_cli("eval", str(trained["run"]), "--device", "cpu")
    assert code == 0, err
    line = last_line(out)
    result = json.loads(line)
    assert result["episodes"] == 64  # the run's final evaluation: --eval-episodes 64
    for key in ("mean_return", "std_return", "mean_length", "accuracy"):
        # float32 values as float32's shortest decimals: 0.944, not 0.9440000057220459
        assert repr(result[key]) == str(np.float32(result[key])), line


@pytest.mark.parametrize(
    ("max_episode_steps", "episodes"),
    [(500, 100), (6, EVAL_MAX_EPISODES), (200, 250), (10_000, EVAL_MIN_EPISODES),
     (None, EVAL_UNBOUNDED_EPISODES)],
)  # fmt: skip
def test_default_eval_episodes_scale_with_the_episode_length(
    max_episode_steps: int | None, episodes: int
) -> None:
    assert default_eval_episodes(max_episode_steps) == episodes


@pytest.mark.parametrize(
    ("steps", "max_episode_steps", "interval"),
    [(1_000_000, 6, 250_000), (32_768, 500, 32_768), (200_000, 500, 66_666),
     (1_000_000, 500, 250_000), (50_000, None, 50_000), (100, 6, 100)],
)  # fmt: skip
def test_default_video_interval_keeps_rendering_small_beside_training(
    steps: int, max_episode_steps: int | None, interval: int
) -> None:
    assert default_video_interval(steps, max_episode_steps) == interval


def test_train_defaults_scale_with_the_environment(cartpole: dict) -> None:
    run = cartpole["run"]
    config = read_config(run)
    assert config["run"]["eval_episodes"] == 100  # 500-step episodes: not 1000
    assert "100 episodes: mean return" in cartpole["out"]
    # One video, at the end: the GIF and the MP4 of one rollout at CartPole's 50 fps.
    assert [step for step, _ in read_images(run)["rollout/video"]] == [1024]
    (mp4,) = (run / "videos").glob("*.mp4")
    assert iio.immeta(mp4)["fps"] == 50
    assert len(iio.imread(mp4, index=None)) <= VIDEO_MAX_SECONDS * 50


def test_train_renders_quietly_without_a_display(cartpole: dict) -> None:
    assert "XDG_RUNTIME_DIR" not in cartpole["err"]


def test_the_progress_bar_draws_each_state_once_and_a_full_bar_when_steps_overshoot(
    cartpole: dict,
) -> None:
    states = [s.strip() for s in cartpole["err"].split("\r") if "step/s" in s or "%|" in s]
    assert len(states) == len(set(states))  # no state drawn twice
    assert sum("1024/1024" in s for s in states) == 1
    assert states[-1].startswith("100%|") and "1024/1024" in states[-1]


def test_glimpse_videos_keep_their_frame_rate(trained: dict) -> None:
    (mp4,) = (trained["run"] / "videos").glob("final-*.mp4")
    assert iio.immeta(mp4)["fps"] == 4  # the glimpse tasks' render_fps


def test_record_takes_its_own_seed_and_says_when_it_repeats_the_run(trained: dict) -> None:
    run = trained["run"]
    code, out, err = run_cli("record", str(run), "--episodes", "2", "--device", "cpu")
    assert code == 0, err
    seed = int(re.search(r"seed (\d+)", out).group(1))
    mp4 = Path(last_line(out))
    assert mp4.name == f"record_test_seed{seed}_2ep.mp4" and "run's own" not in out
    code, out, err = run_cli("record", str(run), "--episodes", "2", "--seed", "3")
    assert code == 0, err
    assert "seed 3 is the run's own" in out  # the run trained with --seed 3
    (final,) = (run / "videos").glob("final-*.mp4")
    again = iio.imread(Path(last_line(out)), index=None).astype(int)
    assert np.abs(again - iio.imread(final, index=None)[: len(again)]).mean() < 1  # H.264


def test_record_stops_at_its_length_limit_and_says_so(trained: dict) -> None:
    code, out, err = run_cli(
        "record", str(trained["run"]), "--episodes", "6", "--seed", "1", "--max-seconds", "3"
    )
    assert code == 0, err
    assert len(iio.imread(Path(last_line(out)), index=None)) == 12  # 3 s at 4 fps
    assert "shows 2 of the 6 episodes in full" in out


def test_eval_prints_every_episode_metric_and_takes_env_arguments(tmp_path: Path) -> None:
    """The copy tasks measure bits wrong per sequence: ``cogrl eval`` prints it with the
    accuracy, and ``--set env.NAME=VALUE`` evaluates on other sequence lengths."""
    code, out, err = run_cli(
        "train", "--env", "cogrl/Copy-v0", "--agent", "ppo", "--no-preset", "--steps", "64",
        "--num-envs", "2", "--runs-dir", str(tmp_path), "--eval-episodes", "0",
        "--video-interval", "0", "--set", "n_steps=16", "--set", "batch_size=32",
        "--set", "policy.core=gru", "--set", "policy.core_size=8",
    )  # fmt: skip
    assert code == 0, err
    run = last_line(out)
    lengths = {}
    for n in (2, 6):
        code, out, err = run_cli(
            "eval", run, "--episodes", "4", "--set", f"env.min_length={n}",
            "--set", f"env.max_length={n}",
        )  # fmt: skip
        assert code == 0, err
        assert re.search(r"accuracy [\d.]+%", out), out
        bits = re.search(r"bit errors ([\d.]+)", out)
        assert bits is not None and 0 <= float(bits.group(1)) <= 8 * n, out
        result = json.loads(last_line(out))
        assert result["env_kwargs"] == {"min_length": n, "max_length": n}
        lengths[n] = result["mean_length"]
    assert lengths == {2: 5.0, 6: 13.0}  # 2L + 1 steps
    code, _, err = run_cli("eval", run, "--set", "learning_rate=1")
    assert code == 2 and "environment arguments only" in err
    code, _, err = run_cli("eval", run, "--set", "env.max_length=0")
    assert code == 2 and "max_length" in err


def test_switching_the_presets_core_drops_that_cores_settings(capsys) -> None:
    from cogrl.runner import without_old_core_settings

    preset_hp = {"num_envs": 4, "policy": {"core": "ntm", "memory_size": 128, "core_size": 100}}
    kept = without_old_core_settings(preset_hp, {"policy": {"core": "lstm"}})
    assert kept == {"num_envs": 4, "policy": {"core": "ntm", "core_size": 100}}
    assert "['memory_size']" in capsys.readouterr().err
    # The same core, or no core given: the preset's settings stay.
    assert without_old_core_settings(preset_hp, {"policy": {"core": "ntm"}}) == preset_hp
    assert without_old_core_settings(preset_hp, {"policy": {"memory_size": 8}}) == preset_hp


@pytest.mark.parametrize("core", ["lstm", "gru", "ntm", "dnc", "memn2n"])
@pytest.mark.parametrize(
    "env",
    ["cogrl/Copy-v0", "cogrl/RepeatCopy-v0", "cogrl/AssociativeRecall-v0", "cogrl/StoryQA-v0",
     "cogrl/DelayedRecall-v0"],
)  # fmt: skip
def test_every_core_trains_on_every_memory_task_from_one_set(env, core, capsys) -> None:
    from cogrl.runner import RunSpec, build_agent

    spec = RunSpec(env=env, agent="ppo", device="cpu", hyperparameters={"policy": {"core": core}})
    agent = build_agent(spec)
    assert agent.config.policy.core == core
    obs, _ = agent.make_core(2).reset(seed=0)
    action, _ = agent.predict(obs)
    assert action.shape[0] == 2
