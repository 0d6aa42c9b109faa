"""Handwritten-digit images for the glimpse-recognition tasks.

- ``"digits"`` (default): the 1,797 real 8 x 8 scans that ship with scikit-learn,
  upsampled to a 20 x 20 digit centred in a 28 x 28 frame as in MNIST, with a fixed
  train/test split (360 test images that never appear in training episodes).
- ``"mnist"``: MNIST's IDX files read from a local folder (plain or gzipped); nothing is
  downloaded.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATASETS = ("digits", "mnist")
SPLITS = ("train", "test")
DIGITS_TEST_SIZE = 360
_SPLIT_SEED = 20140624  # fixed forever: the digits split must not change between versions

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class DigitData:
    """Images (D, 28, 28) float32 in [0, 1], multiples of 1/255, and labels (D,) int64 0..9."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def load_digits(
    dataset: str = "digits", split: str = "train", root: str | os.PathLike | None = None
) -> DigitData:
    """Load one split of a digit dataset (cached, read-only arrays)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if dataset == "digits":
        if root is not None:
            raise ValueError(f"root is only used with dataset='mnist', got root={root!r}")
        return _sklearn_digits(split)
    if root is None:
        raise ValueError("dataset='mnist' needs root=PATH, the folder holding MNIST's IDX files")
    return _mnist(str(Path(root).expanduser().resolve()), split)


@functools.cache
def _sklearn_digits(split: str) -> DigitData:
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    scans = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    digits = F.interpolate(scans, size=(20, 20), mode="bilinear", align_corners=False)
    images = F.pad(digits, (4, 4, 4, 4))[:, 0].clamp_(0.0, 1.0)
    # Stored as bytes like MNIST (exact summed-area tables, see the glimpse environments).
    images = (torch.round(images * 255.0) / 255.0).numpy()
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(images))
    index = order[:DIGITS_TEST_SIZE] if split == "test" else order[DIGITS_TEST_SIZE:]
    index = np.sort(index)
    return _freeze(images[index], bunch.target[index].astype(np.int64))


def _find(root: Path, name: str) -> Path | None:
    for folder in (root, root / "MNIST" / "raw", root / "raw"):
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """The array in an IDX file of unsigned bytes with ``ndim`` dimensions.

    LeCun's format: the magic number ``0x000008NN`` (two zero bytes, 0x08 for unsigned bytes,
    NN the number of dimensions), NN big-endian uint32 sizes, then the values. Every way a
    file can break that (wrong magic, short header, missing or surplus values, a damaged
    gzip stream) is a ``ValueError`` naming the file, what it holds and what was expected.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:  # gzip: bad header, cut-off or corrupt stream
        raise ValueError(f"{path} cannot be read as a gzipped IDX file: {e}") from e
    expected_magic = 0x0800 + ndim
    if len(data) < 4:
        raise ValueError(
            f"{path} is not an IDX file of unsigned bytes: it holds {len(data)} bytes, fewer "
            f"than its 4-byte magic number (expected 0x{expected_magic:08X})"
        )
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise ValueError(
            f"{path} is not an IDX file of unsigned bytes with {ndim} dimension"
            f"{'s' if ndim > 1 else ''}: its magic number is 0x{magic:08X}, expected "
            f"0x{expected_magic:08X}"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{path} is truncated: its header needs {header} bytes, the file holds {len(data)}"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    # A Python int, not np.prod: sizes up to 2**32 per dimension would overflow int64.
    expected_size = math.prod(shape)
    size = len(data) - header
    if size != expected_size:
        what = "is truncated" if size < expected_size else "has surplus bytes"
        raise ValueError(
            f"{path} {what}: it holds {size} values, its header says shape {shape} "
            f"({expected_size} values)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


@functools.cache
def _mnist(root: str, split: str) -> DigitData:
    folder = Path(root)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"MNIST folder {folder} does not exist; it must hold {list(_MNIST_FILES[split])} "
            "(optionally .gz) - cogrl never downloads data"
        )
    paths = [_find(folder, name) for name in _MNIST_FILES[split]]
    missing = [name for name, p in zip(_MNIST_FILES[split], paths, strict=True) if p is None]
    if missing:
        raise FileNotFoundError(
            f"MNIST files {missing} (or .gz) not found in {folder} (nor in its MNIST/raw or raw "
            "subfolders) - cogrl never downloads data"
        )
    images_path, labels_path = paths
    images = _read_idx(images_path, ndim=3)
    labels = _read_idx(labels_path, ndim=1)
    if images.shape[1:] != (28, 28):
        raise ValueError(
            f"MNIST files in {folder} hold images {images.shape} and labels {labels.shape}; "
            "expected (D, 28, 28) and (D,)"
        )
    if len(images) == 0:
        raise ValueError(f"{images_path} holds 0 images; expected at least one")
    if len(labels) != len(images):
        raise ValueError(
            f"MNIST files disagree: {images_path} holds {len(images)} images but "
            f"{labels_path} holds {len(labels)} labels; expected one label per image"
        )
    bad = np.flatnonzero(labels > 9)
    if len(bad):
        raise ValueError(
            f"{labels_path} holds labels outside 0..9: {sorted(set(labels[bad].tolist()))} "
            f"(first at index {bad[0]}, {len(bad)} in all); expected digits 0-9"
        )
    return _freeze(images.astype(np.float32) / 255.0, labels.astype(np.int64))


def _freeze(images: np.ndarray, labels: np.ndarray) -> DigitData:
    images = np.ascontiguousarray(images, dtype=np.float32)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return DigitData(images, labels)
