"""Tests for cogrl.logging: what's written must read back from the event files as logged."""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from cogrl.logging import (
    GIF_MAX_FPS,
    RunLogger,
    encode_gif,
    read_images,
    read_scalars,
    write_mp4,
)


def distinct_frames(t: int, h: int = 6, w: int = 10) -> np.ndarray:
    """Solid-colour frames, each a different colour, so a GIF can't merge or requantize them."""
    frames = np.zeros((t, h, w, 3), dtype=np.uint8)
    for i in range(t):
        frames[i] = (8 * i % 256, 255 - 8 * i % 256, (37 * i) % 256)
    return frames


def gif_durations(data: bytes) -> list[int]:
    """The display time of each frame of a GIF, in milliseconds."""
    from PIL import Image, ImageSequence

    with Image.open(io.BytesIO(data)) as image:
        return [frame.info["duration"] for frame in ImageSequence.Iterator(image)]


def event_files(log_dir: Path) -> list[Path]:
    return sorted(p for p in log_dir.rglob("*") if "tfevents" in p.name)


def test_scalars_read_back_at_their_steps(tmp_path: Path) -> None:
    with RunLogger(tmp_path) as logger:
        assert logger.log_dir == tmp_path
        logger.scalar("train/loss", 0.5, step=10)
        logger.scalar("train/loss", np.float32(0.25), step=20)
        logger.scalar("train/loss", float("nan"), step=30)
        logger.scalars({"eval/return": 3.0, "eval/length": 12}, step=20)

    scalars = read_scalars(tmp_path)
    assert set(scalars) == {"train/loss", "eval/return", "eval/length"}
    steps, values = zip(*scalars["train/loss"], strict=True)
    assert steps == (10, 20, 30)
    assert values[:2] == (0.5, 0.25)
    assert math.isnan(values[2])  # NaN losses are logged, not dropped
    assert scalars["eval/return"] == [(20, 3.0)]
    assert scalars["eval/length"] == [(20, 12.0)]

    # The same data as TensorBoard itself reads it, without our helper.
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("eval/return")] == [(20, 3.0)]


def test_video_is_an_animated_gif_image_summary(tmp_path: Path) -> None:
    # 7 frames at 3 fps: moviepy's int(duration * fps) frame count used to drop one here.
    frames = distinct_frames(7, h=6, w=10)
    with RunLogger(tmp_path) as logger:
        logger.video("rollout/episode", frames, step=5, fps=3)

    images = read_images(tmp_path)
    assert list(images) == ["rollout/episode"]
    [(step, gif)] = images["rollout/episode"]
    assert step == 5
    assert gif.startswith(b"GIF8")
    decoded = iio.imread(gif, index=None, extension=".gif")
    assert decoded.shape[:3] == (7, 6, 10)
    np.testing.assert_array_equal(decoded[..., :3], frames)

    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    [event] = acc.Images("rollout/episode")
    assert (event.height, event.width) == (6, 10)


def test_hparams_land_in_the_run_dir_with_nothing_dropped(tmp_path: Path) -> None:
    hparams = {
        "lr": 3e-4,
        "n_envs": np.int64(8),
        "agent": "ppo",
        "hidden_sizes": [64, 64],
        "schedule": {"kind": "linear"},
        "seed": None,
        "use_lstm": True,
    }
    with RunLogger(tmp_path) as logger:
        logger.scalar("train/loss", 1.0, step=1)
        logger.hparams(hparams, {"hparam/mean_return": 0.75})

    # One event file, in log_dir itself: SummaryWriter.add_hparams would add a subfolder.
    assert [p.parent for p in event_files(tmp_path)] == [tmp_path]
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in content
    start = HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    stored = start.session_start_info.hparams
    assert set(stored) == set(hparams)
    assert stored["lr"].number_value == pytest.approx(3e-4)
    assert stored["n_envs"].number_value == 8
    assert stored["agent"].string_value == "ppo"
    assert stored["hidden_sizes"].string_value == "[64, 64]"
    assert stored["schedule"].string_value == "{'kind': 'linear'}"
    assert stored["seed"].string_value == "None"
    assert stored["use_lstm"].string_value == "True"
    experiment = HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert [m.name.tag for m in experiment.metric_infos] == ["hparam/mean_return"]
    assert read_scalars(tmp_path)["hparam/mean_return"] == [(0, 0.75)]


def test_hparams_metrics_sit_at_the_step_given(tmp_path: Path) -> None:
    # A run's final metrics belong at its last step, beside its curves, not at step 0.
    with RunLogger(tmp_path) as logger:
        logger.hparams({"lr": 0.1}, {"final/mean_return": 9.5}, step=32768)
    assert read_scalars(tmp_path)["final/mean_return"] == [(32768, 9.5)]


def test_write_mp4_round_trips_frame_count_and_pads_odd_sizes(tmp_path: Path) -> None:
    frames = distinct_frames(9, h=7, w=11)
    path = write_mp4(frames, tmp_path / "videos" / "rollout.mp4", fps=5)
    assert path == tmp_path / "videos" / "rollout.mp4"
    assert path.stat().st_size > 0
    decoded = iio.imread(path, index=None)
    # yuv420p needs even sizes: one edge row and column are added.
    assert decoded.shape == (9, 8, 12, 3)
    # H.264 is lossy, but each solid-colour frame must come back in its place.
    error = np.abs(decoded[:, :7, :11].astype(int) - frames)
    assert error.max() <= 8


def test_write_mp4_requires_mp4_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.mp4"):
        write_mp4(distinct_frames(2), tmp_path / "rollout.gif")


@settings(max_examples=25, deadline=None)
@example(t=14, fps=3.0)
@given(
    t=st.integers(1, 30),
    fps=st.sampled_from([1.0, 3.0, 7.3, 24.0, GIF_MAX_FPS]) | st.floats(0.5, GIF_MAX_FPS),
)
def test_encode_gif_keeps_every_frame_in_order(t: int, fps: float) -> None:
    # moviepy's ImageSequenceClip lost the last frame for e.g. t=14, fps=3 (float32 timing).
    frames = distinct_frames(t)
    gif = encode_gif(frames, fps=fps)
    decoded = iio.imread(gif, index=None, extension=".gif")
    np.testing.assert_array_equal(decoded[..., :3], frames)
    # The GIF plays as long as the video, to the centisecond GIF counts in.
    assert sum(gif_durations(gif)) == pytest.approx(1000 * t / fps, abs=10)


@pytest.mark.parametrize(("fps", "every"), [(50.0, 2), (60.0, 3), (29.97, 2), (100.0, 4)])
def test_fast_videos_become_gifs_of_every_kth_frame_playing_as_long(fps: float, every: int) -> None:
    frames = distinct_frames(40)
    gif = encode_gif(frames, fps=fps)
    decoded = iio.imread(gif, index=None, extension=".gif")
    np.testing.assert_array_equal(decoded[..., :3], frames[::every])
    durations = gif_durations(gif)
    assert min(durations) >= 20  # browsers slow down shorter GIF frames
    assert sum(durations) == pytest.approx(1000 * len(decoded) * every / fps, abs=10)


BAD_FRAMES = {
    "grayscale": (np.zeros((4, 6, 10), np.uint8), r"\(4, 6, 10\).*grayscale"),
    "float": (np.zeros((4, 6, 10, 3), np.float32), r"float32.*uint8"),
    "rgba": (np.zeros((4, 6, 10, 4), np.uint8), r"\(4, 6, 10, 4\)"),
    "single frame without T": (np.zeros((6, 10, 3), np.uint8), r"\(6, 10, 3\)"),
    "no frames": (np.zeros((0, 6, 10, 3), np.uint8), r"\(0, 6, 10, 3\)"),
    "list": ([np.zeros((6, 10, 3), np.uint8)], r"numpy array, got list"),
}


@pytest.mark.parametrize("name", list(BAD_FRAMES))
def test_bad_frames_raise_a_helpful_error(name: str, tmp_path: Path) -> None:
    frames, pattern = BAD_FRAMES[name]
    with pytest.raises(ValueError, match=pattern) as info:
        encode_gif(frames)
    assert "(T, H, W, 3)" in str(info.value)
    with pytest.raises(ValueError, match=pattern):
        write_mp4(frames, tmp_path / "x.mp4")
    with RunLogger(tmp_path) as logger, pytest.raises(ValueError, match=pattern):
        logger.video("v", frames, step=0)
    # A disabled logger checks its arguments too, so bugs show before logging is turned on.
    with pytest.raises(ValueError, match=pattern):
        RunLogger(None).video("v", frames, step=0)


@pytest.mark.parametrize("fps", [0, -1.0, float("nan"), float("inf"), "fast", None])
def test_bad_fps_raises(fps: object) -> None:
    with pytest.raises(ValueError, match="fps"):
        encode_gif(distinct_frames(2), fps=fps)  # type: ignore[arg-type]


def test_bad_tags_and_steps_raise(tmp_path: Path) -> None:
    with RunLogger(tmp_path) as logger:
        with pytest.raises(ValueError, match="non-empty string"):
            logger.scalar("", 1.0, step=0)
        with pytest.raises(ValueError, match="non-empty string"):
            logger.scalars({"ok": 1.0, 3: 2.0}, step=0)  # type: ignore[dict-item]
        with pytest.raises(TypeError, match="step must be an integer"):
            logger.scalar("loss", 1.0, step=1.5)  # type: ignore[arg-type]
    assert read_scalars(tmp_path) == {}


def test_disabled_logger_is_a_silent_no_op(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with RunLogger(None) as logger:
        assert logger.log_dir is None
        assert not logger.enabled
        logger.scalar("loss", 1.0, step=0)
        logger.scalars({"a": 1.0}, step=0)
        logger.hparams({"lr": 0.1}, {"hparam/return": 1.0})
        logger.video("v", distinct_frames(2), step=0)
        logger.flush()
    logger.close()
    assert list(tmp_path.iterdir()) == []
    assert capsys.readouterr() == ("", "")


def test_close_is_idempotent_and_later_logging_raises(tmp_path: Path) -> None:
    logger = RunLogger(tmp_path)
    logger.scalar("loss", 1.0, step=0)
    logger.close()
    logger.close()
    with pytest.raises(RuntimeError, match="closed"):
        logger.scalar("loss", 2.0, step=1)
    assert len(event_files(tmp_path)) == 1
    assert read_scalars(tmp_path) == {"loss": [(0, 1.0)]}


def test_logging_works_without_moviepy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GPU machines may run without moviepy: only MP4 files need it.
    monkeypatch.setitem(sys.modules, "moviepy", None)
    with RunLogger(tmp_path) as logger:
        logger.scalar("loss", 1.0, step=0)
        logger.video("v", distinct_frames(2), step=0)
    assert read_scalars(tmp_path) == {"loss": [(0, 1.0)]}
    assert len(read_images(tmp_path)["v"]) == 1
    with pytest.raises(ImportError, match="moviepy"):
        write_mp4(distinct_frames(2), tmp_path / "x.mp4")


def test_a_runs_logger_gives_videos_its_frame_rate_and_length(tmp_path: Path) -> None:
    # A run's videos play at its environment's frame rate and stop after max_seconds.
    with RunLogger(tmp_path, video_fps=10, max_seconds=1.5) as logger:
        logger.video("long", distinct_frames(40), step=1)
        logger.video("short", distinct_frames(4), step=1)
        logger.video("own rate", distinct_frames(40), step=1, fps=4)
    images = {tag: points[0][1] for tag, points in read_images(tmp_path).items()}
    assert len(iio.imread(images["long"], index=None, extension=".gif")) == 15
    assert gif_durations(images["long"]) == [100] * 15
    assert len(iio.imread(images["short"], index=None, extension=".gif")) == 4
    assert len(iio.imread(images["own rate"], index=None, extension=".gif")) == 6  # 1.5 s at 4


@pytest.mark.parametrize("bad", [{"video_fps": 0}, {"max_seconds": -1}, {"max_seconds": "long"}])
def test_a_logger_rejects_bad_video_settings(tmp_path: Path, bad: dict) -> None:
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"{name.replace('video_', '')}.*> 0"):
        RunLogger(None, **bad)


def test_read_helpers_reject_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_scalars(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        read_images(tmp_path / "missing")
