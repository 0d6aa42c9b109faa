"""TensorBoard logging for cogrl runs: scalars, hyperparameters and rollout videos.

Every agent and the CLI log through :class:`RunLogger`, so a run's curves, settings and
rollout videos all end up in one directory that ``tensorboard --logdir`` can show.

Videos are written as animated GIF image summaries (TensorBoard's Images tab plays them),
encoded here with Pillow; MP4 files with moviepy 2. ``SummaryWriter.add_video`` is
deliberately not used: it imports ``moviepy.editor``, which moviepy 2 removed, and then
writes nothing but a warning. moviepy is imported only when an MP4 is written, so logging
works without it.
"""

from __future__ import annotations

import io
import math
import numbers
import operator
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import numpy as np
import torch
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as _hparams_summaries

__all__ = [
    "GIF_MAX_FPS",
    "RunLogger",
    "encode_gif",
    "encode_png",
    "heatmaps",
    "read_images",
    "read_scalars",
    "write_mp4",
]

#: GIFs play at most this many frames per second (every k-th frame of a faster video):
#: browsers show GIF frames shorter than 20 ms for 100 ms, and each frame costs encoding.
GIF_MAX_FPS = 25.0


class RunLogger:
    """Writes a run's TensorBoard events: scalars, hyperparameters and rollout videos.

    ``RunLogger(None)`` records nothing (every method is a no-op that still validates its
    arguments), so agents can always call the logger whether or not logging is enabled.
    Close it (or use it as a context manager) so buffered events reach the disk.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike | None,
        purge_step: int | None = None,
        video_fps: float = 4.0,
        max_seconds: float | None = None,
    ) -> None:
        """``purge_step``: a run resumed from a checkpoint at step ``s`` passes ``s + 1``, so
        TensorBoard drops what the interrupted run logged after ``s`` and shows one
        unbroken curve. ``video_fps``: the frame rate of videos logged without one (a
        run's: its environment's); ``max_seconds``: videos are cut after this much play
        (None: never)."""
        self.log_dir: Path | None = None if log_dir is None else Path(log_dir)
        self.video_fps = _check_fps(video_fps)
        if max_seconds is not None:
            max_seconds = _check_positive("max_seconds", max_seconds)
        self.max_seconds = max_seconds
        self._writer: SummaryWriter | None = None
        self._closed = False
        if self.log_dir is not None:
            # flush_secs=10 (not torch's 120) so a live TensorBoard shows training progress.
            self._writer = SummaryWriter(
                log_dir=str(self.log_dir), flush_secs=10, purge_step=purge_step
            )

    @property
    def enabled(self) -> bool:
        """Whether this logger writes anything (False for ``RunLogger(None)``)."""
        return self._writer is not None

    def _active_writer(self) -> SummaryWriter | None:
        if self._closed:
            # SummaryWriter would silently reopen a new event file after close().
            raise RuntimeError(f"RunLogger for {self.log_dir} is closed")
        return self._writer

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Log one scalar at ``step``. NaN and inf are logged as-is so diverging runs show."""
        tag = _check_tag(tag)
        value = float(value)
        step = _check_step(step)
        writer = self._active_writer()
        if writer is not None:
            writer.add_scalar(tag, value, global_step=step)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        """Log several scalars (one tag each, not a grouped chart) at the same ``step``."""
        checked = {_check_tag(tag): float(value) for tag, value in values.items()}
        step = _check_step(step)
        writer = self._active_writer()
        if writer is not None:
            for tag, value in checked.items():
                writer.add_scalar(tag, value, global_step=step)

    def hparams(
        self, hparams: Mapping[str, object], metrics: Mapping[str, float], step: int = 0
    ) -> None:
        """Record the run's hyperparameters and summary metrics for TensorBoard's HParams tab.

        Numbers and strings are stored as they are; everything else (bools, None, lists,
        dicts, paths, ...) is stored as its ``str()`` so no setting is dropped. Each metric
        is also written as a scalar under its own tag at ``step`` (a run's final step), which
        is where the HParams tab reads it from, so use metric tags that ``scalar()`` does not
        also log to.
        """
        hp = {
            _check_tag(key, "hparam name"): _hparam_value(value) for key, value in hparams.items()
        }
        mt = {_check_tag(key, "metric tag"): float(value) for key, value in metrics.items()}
        step = _check_step(step)
        writer = self._active_writer()
        if writer is None:
            return
        # SummaryWriter.add_hparams would write into a second writer (a subfolder, or a
        # second event file for run_name="."); writing the same three summaries to our own
        # file writer keeps the run in one event file.
        file_writer = writer._get_file_writer()
        for summary in _hparams_summaries(hp, mt):
            file_writer.add_summary(summary)
        for tag, value in mt.items():
            writer.add_scalar(tag, value, global_step=step)

    def video(self, tag: str, frames: np.ndarray, step: int, fps: float | None = None) -> None:
        """Log a rollout as an animated GIF image summary (shown in the Images tab).

        ``frames`` is a uint8 array of shape (T, H, W, 3), shown at ``fps`` frames per
        second (None: the logger's ``video_fps``) for at most the logger's ``max_seconds``.
        """
        tag = _check_tag(tag)
        frames = _check_frames(frames)
        fps = self.video_fps if fps is None else _check_fps(fps)
        step = _check_step(step)
        writer = self._active_writer()
        if writer is None:
            return
        if self.max_seconds is not None:
            frames = frames[: max(1, round(self.max_seconds * fps))]
        _, height, width, _ = frames.shape
        image = Summary.Image(
            height=height, width=width, colorspace=3, encoded_image_string=encode_gif(frames, fps)
        )
        summary = Summary(value=[Summary.Value(tag=tag, image=image)])
        writer._get_file_writer().add_summary(summary, global_step=step)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """Log one uint8 RGB image (H, W, 3) as a PNG image summary (the Images tab)."""
        tag = _check_tag(tag)
        image = _check_frames(image[None] if isinstance(image, np.ndarray) else image)[0]
        step = _check_step(step)
        writer = self._active_writer()
        if writer is None:
            return
        height, width, _ = image.shape
        summary = Summary(
            value=[
                Summary.Value(
                    tag=tag,
                    image=Summary.Image(
                        height=height,
                        width=width,
                        colorspace=3,
                        encoded_image_string=encode_png(image),
                    ),
                )
            ]
        )
        writer._get_file_writer().add_summary(summary, global_step=step)

    def flush(self) -> None:
        """Write buffered events to disk now."""
        if self._writer is not None and not self._closed:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file. Idempotent; logging afterwards raises."""
        if self._writer is not None and not self._closed:
            self._writer.close()
        self._closed = True

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunLogger({str(self.log_dir)!r})" if self.log_dir else "RunLogger(None)"


def encode_gif(frames: np.ndarray, fps: float = 4.0) -> bytes:
    """Encode (T, H, W, 3) uint8 frames as a looping animated GIF and return its bytes.

    Above :data:`GIF_MAX_FPS` frames per second, every k-th frame is kept (at ``fps / k``)
    so that the GIF plays as long as the video. GIF keeps at most 256 colours per frame,
    and consecutive identical frames are merged into one longer frame (the total duration
    is kept).
    """
    from PIL import Image

    frames = _check_frames(frames)
    fps = _check_fps(fps)
    every = math.ceil(fps / GIF_MAX_FPS)
    frames, fps = frames[::every], fps / every
    # GIF counts time in centiseconds: each frame ends at round(k * 100 / fps) cs, so that
    # rounding does not add up over a long video.
    ends = np.round(np.arange(1, len(frames) + 1) * 100 / fps)
    durations = np.diff(ends, prepend=0).clip(min=1) * 10  # milliseconds, as Pillow takes
    # One palette for the whole video, from up to 32 frames spread over it (exact where they
    # hold at most 256 colours, as the tasks' renders do): a palette per frame made Pillow
    # 5-10 times slower.
    sample = frames[np.linspace(0, len(frames) - 1, min(len(frames), 32)).round().astype(int)]
    palette = Image.fromarray(np.concatenate(sample)).quantize(256, Image.Quantize.FASTOCTREE)
    none = Image.Dither.NONE
    images = [Image.fromarray(f).quantize(palette=palette, dither=none) for f in frames]
    out = io.BytesIO()
    images[0].save(
        out,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=[int(d) for d in durations],
        loop=0,
        optimize=False,  # cropping each frame to what changed took 3x as long as the rest
    )
    return out.getvalue()


def encode_png(image: np.ndarray) -> bytes:
    """The PNG bytes of one uint8 RGB image (H, W, 3)."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(_check_frames(image[None])[0]).save(out, format="PNG")
    return out.getvalue()


# Anchors of a perceptually ordered colour map (dark blue -> teal -> yellow, as viridis):
# low weights dark, high weights bright.
_COLOURS = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], np.float64
)


def _colour(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (H, W) to uint8 RGB (H, W, 3) through :data:`_COLOURS`."""
    x = np.clip(values, 0.0, 1.0) * (len(_COLOURS) - 1)
    low = np.minimum(np.floor(x).astype(int), len(_COLOURS) - 2)
    frac = (x - low)[..., None]
    return np.round(_COLOURS[low] * (1 - frac) + _COLOURS[low + 1] * frac).astype(np.uint8)


#: Layout of :func:`heatmaps`: the label column, the colour scale's column, the time
#: axis's height and the gap between panels (pixels).
HEATMAP_LABEL_WIDTH, HEATMAP_SCALE_WIDTH, HEATMAP_AXIS_HEIGHT, HEATMAP_GAP = 120, 64, 26, 6


def heatmaps(
    panels: list[tuple[str, np.ndarray] | tuple[str, np.ndarray, str]],
    max_panel_height: int = 256,
    cell: int | None = None,
    time_label: str = "step",
) -> np.ndarray:
    """Stack labelled heatmaps that share a time axis into one RGB image (H, W, 3) uint8.

    Each panel is ``(label, values)`` or ``(label, values, rows)`` with ``values`` (rows, T):
    time runs to the right, as in the Neural Turing Machine paper's figures of inputs,
    outputs and the read and write weightings over memory locations; ``rows`` names the
    vertical axis (e.g. "location", "slot 0 = latest"), written under the label. Each panel
    is scaled from its minimum (dark) to its maximum (bright), as ``imshow`` does, so that
    a weighting spread thinly over a large memory still shows where it is highest; the
    colour scale beside it gives those two values. A constant panel is shown as its value
    (clipped to [0, 1]). Below the panels, the time axis (``time_label``) with the step
    numbers. ``cell``: pixels per time step (default: what fits about 1,200 pixels, at
    least 4 and at most 40); a panel's rows take 3 to ``cell`` pixels each, at most
    ``max_panel_height`` together where that leaves 3.
    """
    from PIL import Image, ImageDraw

    if not panels:
        raise ValueError("heatmaps needs at least one (label, values) panel, got none")
    arrays = [np.asarray(p[1]) for p in panels]
    steps = {v.shape[-1] for v in arrays}
    if len(steps) != 1 or any(v.ndim != 2 for v in arrays):
        raise ValueError(
            f"heatmap panels must be (rows, T) with one T, got shapes {[v.shape for v in arrays]}"
        )
    T = steps.pop()
    cell = cell or max(4, min(40, 1200 // max(T, 1)))
    left, scale, gap = HEATMAP_LABEL_WIDTH, HEATMAP_SCALE_WIDTH, HEATMAP_GAP
    width = left + T * cell + scale
    blocks = []
    for panel, values in zip(panels, arrays, strict=True):
        label, rows_label = panel[0], (panel[2] if len(panel) > 2 else "")
        values = values.astype(np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) if high > low else values
        rows = values.shape[0]
        row = max(3, min(cell, max_panel_height // max(rows, 1)))
        pixels = np.repeat(np.repeat(_colour(scaled), row, axis=0), cell, axis=1)
        height = max(pixels.shape[0], 30)  # room for the label, the rows' name, the scale
        block = np.full((height + gap, width, 3), 255, np.uint8)
        block[: pixels.shape[0], left : left + pixels.shape[1]] = pixels
        # The colour scale: the panel's maximum at the top, its minimum at the bottom.
        bar = np.linspace(1.0, 0.0, pixels.shape[0])[:, None] if high > low else scaled[:1, :1]
        bar_x = left + pixels.shape[1] + 4
        block[: pixels.shape[0], bar_x : bar_x + 8] = _colour(
            np.broadcast_to(bar, (pixels.shape[0], 8))
        )
        image = Image.fromarray(block)
        draw = ImageDraw.Draw(image)
        draw.text((2, 0), label, fill=(0, 0, 0))
        if rows_label:
            draw.text((2, 12), rows_label, fill=(90, 90, 90))
        draw.text((bar_x + 11, 0), f"{high:.3g}", fill=(0, 0, 0))
        if high > low:
            draw.text((bar_x + 11, max(12, pixels.shape[0] - 10)), f"{low:.3g}", fill=(0, 0, 0))
        blocks.append(np.asarray(image))
    blocks.append(_time_axis(T, cell, width, time_label))
    return np.concatenate(blocks)


def _time_axis(T: int, cell: int, width: int, label: str) -> np.ndarray:
    """The shared time axis under :func:`heatmaps`' panels: a tick and the step number
    (from 1) every few steps, and the axis's name."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, HEATMAP_AXIS_HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((2, 4), label, fill=(0, 0, 0))
    every = next(k for k in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, T) if k * cell >= 24)
    for t in range(0, T, every):
        x = HEATMAP_LABEL_WIDTH + t * cell + cell // 2
        draw.line([(x, 0), (x, 3)], fill=(0, 0, 0))
        draw.text((x - 3, 6), str(t + 1), fill=(0, 0, 0))
    return np.asarray(image)


def write_mp4(frames: np.ndarray, path: str | os.PathLike, fps: float = 4.0) -> Path:
    """Write (T, H, W, 3) uint8 frames to an H.264 ``.mp4`` file and return its path.

    The file uses yuv420p so any player or browser can show it; that format needs even
    sizes, so an odd height or width is padded by repeating the last row or column.
    Parent directories are created.
    """
    frames = _check_frames(frames)
    fps = _check_fps(fps)
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"write_mp4 path must end in .mp4 (ffmpeg picks the format by it): {path}")
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    path.parent.mkdir(parents=True, exist_ok=True)
    clip = _frame_clip(frames, fps)
    clip.write_videofile(
        str(path),
        fps=fps,
        codec="libx264",
        audio=False,
        logger=None,
        # About 1.3x faster than x264's default "medium" for 5% larger files.
        preset="veryfast",
        ffmpeg_params=["-pix_fmt", "yuv420p"],
    )
    # moviepy does not always raise when ffmpeg fails, so check the result.
    if not path.is_file() or path.stat().st_size == 0:
        raise RuntimeError(f"ffmpeg did not write {path}")
    return path


def read_scalars(log_dir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Read the scalars logged in ``log_dir`` back: ``{tag: [(step, value), ...]}``.

    Points are in the order they were written. Only event files directly in ``log_dir`` are
    read, not subfolders.
    """
    acc = _load_events(log_dir)
    return {
        tag: [(event.step, event.value) for event in acc.Scalars(tag)]
        for tag in acc.Tags()["scalars"]
    }


def read_images(log_dir: str | os.PathLike) -> dict[str, list[tuple[int, bytes]]]:
    """Read the encoded image summaries (GIF videos) in ``log_dir``: ``{tag: [(step, bytes)]}``.

    Same order and folder rules as :func:`read_scalars`.
    """
    acc = _load_events(log_dir)
    return {
        tag: [(event.step, event.encoded_image_string) for event in acc.Images(tag)]
        for tag in acc.Tags()["images"]
    }


def event_file_damage(path: str | os.PathLike) -> str | None:
    """Where the TensorBoard event file ``path`` is cut short (a process killed while
    writing it, a copy that stopped), or None if it ends with a whole record. Event files
    are TFRecords: an 8-byte length, a 4-byte checksum, the data and a 4-byte checksum;
    readers stop at a record that does not fit, so what follows is silently missing."""
    path = Path(path)
    size = path.stat().st_size
    offset = 0
    with open(path, "rb") as f:
        while offset < size:
            header = f.read(12)
            if len(header) < 12:
                return f"cut short: {size - offset} byte(s) of a record header at byte {offset:,}"
            (length,) = struct.unpack("<Q", header[:8])
            end = offset + 12 + length + 4
            if end > size:
                return (
                    f"cut short: its last record (from byte {offset:,}, {length:,} bytes of "
                    f"data) runs past the file's end at byte {size:,}"
                )
            f.seek(end)
            offset = end
    return None


def _load_events(log_dir: str | os.PathLike):
    from tensorboard.backend.event_processing import event_accumulator as ea

    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        raise FileNotFoundError(f"no TensorBoard log directory at {log_dir}")
    # TensorBoard's defaults keep only a sample (e.g. 4 images per tag); 0 keeps everything.
    acc = ea.EventAccumulator(
        str(log_dir), size_guidance={ea.SCALARS: 0, ea.IMAGES: 0, ea.TENSORS: 0}
    )
    acc.Reload()
    return acc


def _frame_clip(frames: np.ndarray, fps: float):
    """A moviepy clip that shows ``frames[k]`` at time ``k / fps``, each frame exactly once."""
    try:
        from moviepy import VideoClip
    except ImportError as err:
        raise ImportError(
            "encoding videos needs moviepy>=2 (pip install 'moviepy>=2'); "
            "scalar and hparams logging work without it"
        ) from err
    # Not ImageSequenceClip: with NumPy 2 its frame start times are float32 (e.g. frame 13
    # at 3 fps starts at 4.3333335 > 13 / 3), so writers sampling at k / fps show frame k-1
    # twice and lose the last frame. Rounding t * fps maps every sample time to its frame.
    last = len(frames) - 1

    def frame_at(t: float) -> np.ndarray:
        return frames[min(max(round(t * fps), 0), last)]

    # Writers render int(duration * fps) frames; half a frame of slack keeps that at T
    # despite float rounding.
    return VideoClip(frame_function=frame_at, duration=(last + 1.5) / fps)


def _check_tag(tag: object, what: str = "tag") -> str:
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"{what} must be a non-empty string, got {tag!r}")
    return tag


def _check_step(step: int) -> int:
    try:
        return operator.index(step)
    except TypeError:
        raise TypeError(f"step must be an integer, got {step!r}") from None


def _check_fps(fps: float) -> float:
    return _check_positive("fps", fps)


def _check_positive(name: str, value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def _check_frames(frames: object) -> np.ndarray:
    expected = "expected a uint8 RGB array of shape (T, H, W, 3) with T, H, W >= 1"
    if not isinstance(frames, np.ndarray):
        raise ValueError(f"frames must be a numpy array, got {type(frames).__name__}; {expected}")
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        hint = ""
        if frames.ndim == 3:
            hint = " (grayscale (T, H, W) is not accepted: stack it to 3 channels)"
        elif frames.dtype != np.uint8 and np.issubdtype(frames.dtype, np.floating):
            hint = " (convert floats in [0, 1] with (frames * 255).astype(np.uint8))"
        raise ValueError(
            f"frames has shape {frames.shape} and dtype {frames.dtype}; {expected}{hint}"
        )
    return frames


def _hparam_value(value: object) -> float | int | str:
    if isinstance(value, np.generic) or (isinstance(value, torch.Tensor) and value.numel() == 1):
        value = value.item()
    # bool is an int, and as a number TensorBoard would show it as 1.0 / 0.0.
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float, str)):
        return value
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)
