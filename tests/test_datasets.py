"""Tests for cogrl.datasets: the shipped digits split and MNIST's IDX files read from disk."""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import cogrl  # noqa: F401  (registers the environments)
from cogrl.datasets import DIGITS_TEST_SIZE, load_digits

MNIST_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes (LeCun's format: zero, zero, 0x08, ndim, big-endian dims)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_mnist(
    folder: Path, split: str, n: int, seed: int = 0, gz: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Tiny synthetic MNIST files for ``split``; returns the images and labels written."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in zip(MNIST_NAMES[split], (images, labels), strict=True):
        data = idx_bytes(array)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return images, labels


# --- the shipped digits ------------------------------------------------------------------------


def test_digits_splits_sizes_values_and_labels() -> None:
    train, test = load_digits("digits", "train"), load_digits("digits", "test")
    assert (len(train), len(test)) == (1437, 360) == (1797 - DIGITS_TEST_SIZE, DIGITS_TEST_SIZE)
    for data in (train, test):
        assert data.images.shape == (len(data), 28, 28) and data.images.dtype == np.float32
        assert data.labels.shape == (len(data),) and data.labels.dtype == np.int64
        assert data.images.min() == 0.0 and data.images.max() == 1.0
        bytes_ = data.images * 255
        np.testing.assert_allclose(bytes_, np.round(bytes_), atol=1e-4)  # multiples of 1/255
        assert set(data.labels.tolist()) == set(range(10))
        # A 20 x 20 digit centred in the 28 x 28 frame, as MNIST: the 4-pixel border is empty.
        assert not data.images[:, :4].any() and not data.images[:, 24:].any()
        assert not data.images[:, :, :4].any() and not data.images[:, :, 24:].any()
        assert (data.images.reshape(len(data), -1).max(axis=1) > 0.5).all()
    # Every class is represented in both splits in roughly its share.
    counts = np.bincount(test.labels, minlength=10)
    assert counts.min() >= 20


def test_digits_split_is_deterministic_and_disjoint() -> None:
    train, test = load_digits(), load_digits(split="test")
    again = load_digits("digits", "train")
    np.testing.assert_array_equal(train.images, again.images)
    np.testing.assert_array_equal(train.labels, again.labels)
    train_images = {img.tobytes() for img in train.images}
    assert len(train_images) == len(train)
    assert not any(img.tobytes() in train_images for img in test.images)
    # The split is fixed forever: pin a few of its values.
    assert test.labels[:10].tolist() == _PINNED_TEST_LABELS
    assert int(train.labels.sum()) == _PINNED_TRAIN_LABEL_SUM


_PINNED_TEST_LABELS = [0, 2, 7, 8, 0, 7, 8, 4, 5, 6]
_PINNED_TRAIN_LABEL_SUM = 6495


def test_loaded_arrays_are_read_only() -> None:
    data = load_digits()
    with pytest.raises(ValueError):
        data.images[0, 0, 0] = 1.0
    with pytest.raises(ValueError):
        data.labels[0] = 3


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"dataset": "cifar"}, "'cifar'"),
        ({"split": "val"}, "'val'"),
        ({"root": "/tmp"}, "root"),
        ({"dataset": "mnist"}, "root"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=re.escape(word)):
        load_digits(**kwargs)


# --- MNIST from IDX files ---------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("subfolder", [".", "MNIST/raw", "raw"])
def test_mnist_idx_files_are_read(tmp_path: Path, gz: bool, subfolder: str) -> None:
    images, labels = write_mnist(tmp_path / subfolder, "train", n=7, seed=1, gz=gz)
    test_images, test_labels = write_mnist(tmp_path / subfolder, "test", n=3, seed=2, gz=gz)
    data = load_digits("mnist", "train", root=tmp_path)
    assert data.images.shape == (7, 28, 28) and data.images.dtype == np.float32
    np.testing.assert_array_equal(data.images, images.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(data.labels, labels.astype(np.int64))
    test = load_digits("mnist", "test", root=str(tmp_path))
    np.testing.assert_array_equal(test.images * 255.0, test_images)
    np.testing.assert_array_equal(test.labels, test_labels)


def test_mnist_environment_shows_the_files_digits(tmp_path: Path) -> None:
    images, labels = write_mnist(tmp_path, "train", n=4, seed=3)
    env = gym.make("cogrl/GlimpseDigits-v0", dataset="mnist", root=str(tmp_path), n_glimpses=1)
    shown = {img.tobytes(): int(lab) for img, lab in zip(images, labels, strict=True)}
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        assert env.observation_space.contains(obs)
        canvas = env.unwrapped.core.canvas_images()[0].numpy()
        as_bytes = np.round(canvas * 255).astype(np.uint8).tobytes()
        _, _, _, _, info = env.step(np.zeros(12, np.float32))
        assert shown[as_bytes] == info["label"]


def test_missing_mnist_folder_and_files_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        load_digits("mnist", "train", root=missing)
    assert str(missing.resolve()) in str(err.value)
    for name in MNIST_NAMES["train"]:
        assert name in str(err.value)

    with pytest.raises(FileNotFoundError) as err:
        load_digits("mnist", "test", root=tmp_path)
    assert str(tmp_path.resolve()) in str(err.value)
    for name in MNIST_NAMES["test"]:
        assert name in str(err.value)

    # Only the labels missing: the message names them and not the images.
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((2, 28, 28))))
    with pytest.raises(FileNotFoundError) as err:
        load_digits("mnist", "test", root=tmp_path)
    assert "t10k-labels-idx1-ubyte" in str(err.value)
    assert "t10k-images-idx3-ubyte" not in str(err.value)


_IMAGES = idx_bytes(np.zeros((2, 28, 28)))
_LABELS = idx_bytes(np.array([3, 7]))


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        # wrong magic numbers: another element type, another number of dimensions, none at all
        (
            b"\x00\x00\x0d\x03" + bytes(12),
            _LABELS,
            r"images-idx3-ubyte is not an IDX file of unsigned bytes with 3 dimensions: its "
            r"magic number is 0x00000D03, expected 0x00000803",
        ),
        (
            _IMAGES,
            idx_bytes(np.zeros((2, 1))),
            r"labels-idx1-ubyte is not an IDX file .* with 1 dimension: its magic number is "
            r"0x00000802, expected 0x00000801",
        ),
        (b"", _LABELS, r"images-idx3-ubyte is not an IDX file .* it holds 0 bytes"),
        # truncated: in the header, in the values; and values beyond the header's shape
        (_IMAGES[:10], _LABELS, r"is truncated: its header needs 16 bytes, the file holds 10"),
        (
            _IMAGES[:-5],
            _LABELS,
            r"images-idx3-ubyte is truncated: it holds 1563 values, its header says shape "
            r"\(2, 28, 28\) \(1568 values\)",
        ),
        (_IMAGES, _LABELS + b"\x01", r"has surplus bytes: it holds 3 values, its header says"),
        # files that read but do not make a data set
        (
            idx_bytes(np.zeros((2, 16, 16))),
            _LABELS,
            re.escape("hold images (2, 16, 16) and labels (2,); expected (D, 28, 28) and (D,)"),
        ),
        (
            idx_bytes(np.zeros((0, 28, 28))),
            idx_bytes(np.zeros(0)),
            r"images-idx3-ubyte holds 0 images; expected at least one",
        ),
        (
            idx_bytes(np.zeros((3, 28, 28))),
            _LABELS,
            r"MNIST files disagree: .*images-idx3-ubyte holds 3 images but "
            r".*labels-idx1-ubyte holds 2 labels; expected one label per image",
        ),
        (
            idx_bytes(np.zeros((4, 28, 28))),
            idx_bytes(np.array([0, 12, 3, 10])),
            r"labels-idx1-ubyte holds labels outside 0..9: \[10, 12\] \(first at index 1, 2 in "
            r"all\); expected digits 0-9",
        ),
    ],
    ids=[
        "magic-type",
        "magic-ndim",
        "empty-file",
        "truncated-header",
        "truncated-values",
        "surplus-values",
        "image-shape",
        "zero-images",
        "count-mismatch",
        "label-range",
    ],
)
def test_malformed_idx_files_raise(
    tmp_path: Path, images: bytes, labels: bytes, match: str
) -> None:
    image_name, label_name = MNIST_NAMES["train"]
    (tmp_path / image_name).write_bytes(images)
    (tmp_path / label_name).write_bytes(labels)
    with pytest.raises(ValueError, match=match) as err:
        load_digits("mnist", "train", root=tmp_path)
    assert str(tmp_path.resolve()) in str(err.value)  # the message names the file or folder


def test_damaged_gzip_files_raise(tmp_path: Path) -> None:
    image_name, label_name = MNIST_NAMES["test"]
    (tmp_path / (image_name + ".gz")).write_bytes(gzip.compress(_IMAGES)[:-20])
    (tmp_path / (label_name + ".gz")).write_bytes(gzip.compress(_LABELS))
    with pytest.raises(ValueError, match=r"images-idx3-ubyte.gz cannot be read as a gzipped"):
        load_digits("mnist", "test", root=tmp_path)
    (tmp_path / (image_name + ".gz")).write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"images-idx3-ubyte.gz cannot be read as a gzipped"):
        load_digits("mnist", "test", root=tmp_path)


# --- human eye-movement folders (load_fixations) -------------------------------------------


def _human_folder(root: Path, records: list[dict], images: bool = True) -> Path:
    import json

    from PIL import Image

    (root / "stimuli").mkdir(parents=True, exist_ok=True)
    if images:
        for r in records:
            Image.fromarray(np.zeros((r["height"], r["width"], 3), np.uint8)).save(
                root / "stimuli" / r["image"]
            )
    (root / "fixations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def _record(name: str, subjects: list) -> dict:
    return {"image": name, "width": 8, "height": 6, "subjects": subjects}


def test_fixations_are_read_and_split_by_image(tmp_path: Path) -> None:
    from cogrl.datasets import image_split, load_fixations

    names = [f"{i:04d}.png" for i in range(20)]
    records = [_record(n, [[[1, 2, 100], [7.5, 5, 250]], [[0, 0, 50]]]) for n in names]
    root = _human_folder(tmp_path, records)
    train, test = load_fixations(root, "train"), load_fixations(root, "test")
    assert set(train.names) | set(test.names) == set(names)
    assert not set(train.names) & set(test.names)
    assert all(image_split(n) == "test" for n in test.names) and len(test) > 0
    i = 0
    assert train.sizes[i].tolist() == [8, 6]
    np.testing.assert_array_equal(train.scanpaths[i][0], [[1, 2, 100], [7.5, 5, 250]])
    np.testing.assert_array_equal(train.fixations(i), [[1, 2], [7.5, 5], [0, 0]])
    assert train.image(i).shape == (6, 8, 3)
    assert train.path(i) == tmp_path.resolve() / "stimuli" / train.names[i]


@pytest.mark.parametrize(
    ("subjects", "word"),
    [
        ([[[8, 2, 100]]], "off the 8 x 6 image"),  # x == width
        ([[[1, -1, 100]]], "off the 8 x 6 image"),
        ([[[1, 1, -5]]], "negative"),
        ([[[1, float("nan"), 5]]], "non-finite"),
    ],
)
def test_bad_fixations_are_named(tmp_path: Path, subjects: list, word: str) -> None:
    from cogrl.datasets import load_fixations

    root = _human_folder(tmp_path, [_record("a.png", subjects)])
    with pytest.raises(ValueError, match=f"line 1: subject 0 .*{word}"):
        load_fixations(root, "train")


def test_missing_human_data_is_named(tmp_path: Path) -> None:
    from cogrl.datasets import load_fixations

    with pytest.raises(ValueError, match="no fixations.jsonl in"):
        load_fixations(tmp_path / "nowhere")
    root = _human_folder(tmp_path / "noimages", [_record("a.png", [])], images=False)
    with pytest.raises(ValueError, match="image 'a.png' is not in stimuli/"):
        load_fixations(root)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "fixations.jsonl").write_text('{"image": "a.png"}\n')
    with pytest.raises(ValueError, match="line 1: expected a JSON object"):
        load_fixations(tmp_path / "broken")
    with pytest.raises(ValueError, match="split must be one of"):
        load_fixations(tmp_path, "validation")


def _bad_human_folder(root: Path, case: str) -> Path:
    """A human-data folder with one bad record or image (the probes of issue 22)."""
    import json

    from PIL import Image

    record = _record("a.png", [[[1, 2, 100]]])
    root = _human_folder(root, [record])
    image = root / "stimuli" / "a.png"
    if case == "text named as an image":
        image.write_text("not an image")
    elif case == "size disagrees":
        Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(image)
    elif case == "decompression bomb":
        # A small PNG that claims 20,000 x 20,000 pixels (no pixel data needed to claim it):
        # its header, an empty image-data chunk and the end chunk.
        def chunk(kind: bytes, data: bytes) -> bytes:
            crc = zlib.crc32(kind + data).to_bytes(4, "big")
            return len(data).to_bytes(4, "big") + kind + data + crc

        ihdr = (20000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
        image.write_bytes(
            bytes.fromhex("89504e470d0a1a0a")
            + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b"")
        )
        record.update(width=20000, height=20000)
    elif case == "huge size in the record":
        record.update(width=10_000_000, height=10_000_000)
    elif case.startswith("subjects "):
        record["subjects"] = json.loads(case.removeprefix("subjects "))
    elif case == "two-value fixation":
        record["subjects"] = [[[1, 2, 100], [3, 4]]]
    elif case in ("absolute path", "climbs out"):
        outside = root / "outside.png"
        Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(outside)
        record["image"] = str(outside) if case == "absolute path" else "../outside.png"
    elif case == "every pixel fixated":
        Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(image)
        record.update(width=1, height=1, subjects=[[[0, 0, 100]]])
    (root / "fixations.jsonl").write_text(json.dumps(record) + "\n")
    return root


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("text named as an image", r"a.png is not a readable image \(UnidentifiedImageError"),
        ("size disagrees", "a.png is 1 x 1 pixels, the record says 8 x 6"),
        ("decompression bomb", "width 20000 is outside 1..8192 pixels"),
        ("huge size in the record", "width 10000000 is outside 1..8192 pixels"),
        ("subjects []", "subjects must be a non-empty list of observers"),
        ("subjects [[], []]", "subject 0 must be a non-empty list"),
        ("subjects 5", "subjects must be a non-empty list of observers.*got 5"),
        (
            "two-value fixation",
            r"subject 0, fixation 1 is \[3, 4\]: expected \[x, y, duration_ms\]",
        ),
        ("absolute path", "is not a file name inside stimuli/"),
        ("climbs out", "image '../outside.png' is not a file name inside stimuli/"),
        ("every pixel fixated", "every pixel of the 1 x 1 image is fixated"),
    ],
)
def test_a_bad_human_data_file_is_named_before_any_work(tmp_path: Path, case, message) -> None:
    from cogrl.datasets import load_fixations

    root = _bad_human_folder(tmp_path, case)
    with pytest.raises(ValueError, match=f"fixations.jsonl, line 1: .*{message}"):
        load_fixations(root, "train")


def test_an_image_larger_than_its_bound_is_refused_from_its_header(tmp_path, monkeypatch):
    import cogrl.datasets

    # The record and the image agree, but the header claims more than the bound allows.
    monkeypatch.setattr(cogrl.datasets, "MAX_IMAGE_SIDE", 100_000)
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    root = _bad_human_folder(tmp_path, "decompression bomb")
    with pytest.raises(ValueError, match="not a readable image \\(DecompressionBomb"):
        cogrl.datasets.load_fixations(root, "train")


@pytest.mark.parametrize("split", [np.zeros((2, 2)), {"train": 1}, None])
def test_a_split_that_is_no_name_is_an_error(split):
    with pytest.raises(ValueError, match="split must be one of"):
        load_digits(split=split)
