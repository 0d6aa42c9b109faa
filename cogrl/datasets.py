"""Data sets read from local files: digit images, bAbI stories and human eye movements.

Handwritten-digit images for the glimpse-recognition tasks (:func:`load_digits`):

- ``"digits"`` (default): the 1,797 real 8 x 8 scans that ship with scikit-learn,
  upsampled to a 20 x 20 digit centred in a 28 x 28 frame as in MNIST, with a fixed
  train/test split (360 test images that never appear in training episodes).
- ``"mnist"``: MNIST's IDX files read from a local folder (plain or gzipped); nothing is
  downloaded.

Story question answering (:func:`load_babi`): the bAbI tasks' text files (Weston et al.
2015) read from a local folder into :class:`BabiData`, one example per question over its
story so far; :func:`babi_data` builds the same from stories made in memory (the world
generator of :mod:`cogrl.envs.memory.babi`).

Human eye movements (:func:`load_fixations`): a folder of images with every observer's
fixations in order (``fixations.jsonl``, the format of the OSIE subset in
``../shared/data/osie``) into :class:`FixationData`, split into train and test by image.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import math
import os
import re
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cogrl.checks import check_choice

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
    check_choice("dataset", dataset, DATASETS)
    check_choice("split", split, SPLITS)
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


# --- bAbI stories ---------------------------------------------------------------------------

BABI_TASKS = tuple(range(1, 21))
BABI_TRAINING = ("1k", "10k")
# The language folders of the tasks_1-20_v1-2 release that hold each training size.
_BABI_FOLDERS = {"1k": "en", "10k": "en-10k"}
# Punctuation dropped from sentences and questions ("।" ends sentences of the Hindi set).
_BABI_PUNCTUATION = re.compile(r"[.?!,;:\"()।]")

#: A line of a story as :func:`babi_data` takes it: a sentence, or a question as
#: ``(question, answer, supporting)`` with ``supporting`` the positions (0 = first) of the
#: story's sentences before it that the answer follows from.
BabiLine = str | tuple[str, str, Sequence[int]]


@dataclass(frozen=True)
class BabiData:
    """The question-answer examples of one bAbI task and split, one per question.

    bAbI's stories interleave sentences and questions; each question is one example over the
    sentences of its story before it (earlier questions are not part of it). A story's
    sentences are stored once: ``sentences`` holds every story, one after another, and
    example ``q``'s story is ``sentences[story_start[q] : story_start[q] + story_length[q]]``
    (:meth:`story`). Words are lower-cased with punctuation dropped (:func:`babi_words`).
    An answer is one string, kept whole where bAbI's answer is a list (tasks 8 and 19:
    ``"apple,football"``, ``"n,w"``), so that every answer is one vocabulary entry.

    - ``task``: the bAbI task number.
    - ``sentences``: every story sentence, as a tuple of words.
    - ``story_start``, ``story_length``: (Q,) int64, where each example's story lies.
    - ``questions``: Q tuples of words.
    - ``answers``: Q strings.
    - ``supporting``: Q tuples of the positions in the example's story (0 = its first
      sentence) of the sentences its answer follows from, as bAbI lists them.
    """

    task: int
    sentences: tuple[tuple[str, ...], ...]
    story_start: np.ndarray
    story_length: np.ndarray
    questions: tuple[tuple[str, ...], ...]
    answers: tuple[str, ...]
    supporting: tuple[tuple[int, ...], ...]

    def __len__(self) -> int:
        return len(self.answers)

    def story(self, q: int) -> tuple[tuple[str, ...], ...]:
        """The sentences of example ``q``'s story, in order."""
        start = int(self.story_start[q])
        return self.sentences[start : start + int(self.story_length[q])]

    def words(self) -> set[str]:
        """Every word of the sentences and questions, and every answer."""
        found = set(self.answers)
        for words in (*self.sentences, *self.questions):
            found.update(words)
        return found


def babi_words(text: str) -> tuple[str, ...]:
    """The words of a bAbI sentence or question: lower-cased, punctuation dropped."""
    return tuple(_BABI_PUNCTUATION.sub(" ", text.lower()).split())


#: Bounds on a bAbI file's lines (bAbI's longest sentence has about a dozen words): the
#: sentences of a task are padded to its longest, so one runaway line would otherwise cost
#: gigabytes.
MAX_BABI_WORDS = 100
MAX_BABI_SENTENCES = 1000


def _babi_words_bounded(text: str, what: str) -> tuple[str, ...]:
    """The words of a sentence or question; ValueError if it has none or too many."""
    words = babi_words(text)
    if not words:
        raise ValueError(f"{what} {text!r} has no words")
    if len(words) > MAX_BABI_WORDS:
        raise ValueError(
            f"{what} {text[:60]!r}... has {len(words):,} words; at most {MAX_BABI_WORDS} "
            "(cogrl.datasets.MAX_BABI_WORDS)"
        )
    return words


def babi_data(task: int, stories: Iterable[Sequence[BabiLine]]) -> BabiData:
    """:class:`BabiData` from stories given as lines (see :data:`BabiLine`), one example per
    question. A supporting position that is not a sentence before its question, an empty
    sentence or question, one of more than :data:`MAX_BABI_WORDS` words, a story of more
    than :data:`MAX_BABI_SENTENCES` sentences, and an answer that is empty or holds spaces
    are a ValueError naming them."""
    sentences: list[tuple[str, ...]] = []
    start, length, questions, answers, supporting = [], [], [], [], []
    for s, story in enumerate(stories):
        first, n = len(sentences), 0
        for line in story:
            if isinstance(line, str):
                words = _babi_words_bounded(line, f"story {s}: sentence")
                sentences.append(words)
                n += 1
                if n > MAX_BABI_SENTENCES:
                    raise ValueError(
                        f"story {s} has more than {MAX_BABI_SENTENCES} sentences "
                        "(cogrl.datasets.MAX_BABI_SENTENCES; bAbI's longest has a few hundred)"
                    )
                continue
            question, answer, support = line
            support = tuple(int(i) for i in support)
            bad = [i for i in support if not 0 <= i < n]
            if bad:
                raise ValueError(
                    f"story {s}: question {question!r} has supporting position(s) {bad}; "
                    f"expected positions of the {n} sentence(s) before it, 0 to {n - 1}"
                )
            answer = answer.strip().lower()
            if not answer or len(answer.split()) != 1:
                raise ValueError(
                    f"story {s}: question {question!r} has answer {answer!r}; expected one "
                    "non-empty word (lists joined by commas, as bAbI writes them)"
                )
            start.append(first)
            length.append(n)
            questions.append(_babi_words_bounded(question, f"story {s}: question"))
            answers.append(answer)
            supporting.append(support)
    story_start = np.array(start, dtype=np.int64)
    story_length = np.array(length, dtype=np.int64)
    story_start.setflags(write=False)
    story_length.setflags(write=False)
    return BabiData(
        task,
        tuple(sentences),
        story_start,
        story_length,
        tuple(questions),
        tuple(answers),
        tuple(supporting),
    )


def load_babi(
    root: str | os.PathLike, task: int, split: str = "train", training: str = "1k"
) -> BabiData:
    """Read one task and split of bAbI's text files (``tasks_1-20_v1-2``; cached).

    ``root`` is either the release's top folder, holding the language folders ``en/`` (the
    1k training sets) and ``en-10k/`` (the 10k ones), or one language folder itself
    (``en``, ``en-10k``, ``hn``, ``shuffled-10k``, ...: any folder holding files
    ``qa*_*_*.txt``). A language folder's training size is told by its name: ``-10k`` at
    its end means 10k, anything else 1k, and it must agree with ``training``. The file
    read is ``qa{task}_*_{split}.txt`` (e.g. ``en/qa1_single-supporting-fact_train.txt``).

    The format: numbered lines, the numbering starting again at 1 with each new story;
    a sentence is ``ID text``, a question ``ID question?<TAB>answer<TAB>supporting IDs``.
    Every question becomes one example over its story's sentences before it; its
    supporting IDs become positions among those sentences (:class:`BabiData`). A missing
    folder or file is a FileNotFoundError naming what was looked for (nothing is
    downloaded); a line that breaks the format is a ValueError naming the file and line.
    """
    if isinstance(task, bool) or not isinstance(task, (int, np.integer)) or task not in BABI_TASKS:
        raise ValueError(f"task must be a bAbI task number 1 to 20, got {task!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if training not in BABI_TRAINING:
        raise ValueError(f"training must be one of {BABI_TRAINING}, got {training!r}")
    if root is None:
        raise ValueError("load_babi needs root=PATH, the folder holding bAbI's text files")
    path = babi_file(root, int(task), split, training)
    stat = path.stat()
    return _read_babi(str(path), stat.st_mtime_ns, stat.st_size, int(task))


def babi_file(root: str | os.PathLike, task: int, split: str, training: str) -> Path:
    """The path of the file :func:`load_babi` reads (see there for the layouts of ``root``)."""
    top = Path(root).expanduser().resolve()
    pattern = f"qa{task}_*_{split}.txt"
    if not top.is_dir():
        raise FileNotFoundError(
            f"bAbI folder {top} does not exist; it must be the tasks_1-20_v1-2 folder (holding "
            f"{_BABI_FOLDERS[training]}/{pattern}) or a language folder holding {pattern} - "
            "cogrl never downloads data"
        )
    if any(top.glob("qa*_*_*.txt")):  # a language folder
        folder = top
        size = "10k" if folder.name.endswith("-10k") else "1k"
        if size != training:
            raise ValueError(
                f"{folder} holds bAbI's {size} training sets (by its name: '-10k' at the end "
                f"means 10k), but training={training!r}; point root at the folder above it or "
                f"at the {training} language folder"
            )
    else:
        folder = top / _BABI_FOLDERS[training]
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{top} holds no bAbI files qa*_*_*.txt and no folder {_BABI_FOLDERS[training]}/ "
                f"of the {training} training sets; expected the tasks_1-20_v1-2 folder or one "
                "of its language folders - cogrl never downloads data"
            )
    matches = sorted(folder.glob(pattern))
    if not matches:
        raise FileNotFoundError(f"no bAbI file {pattern} in {folder} - cogrl never downloads data")
    if len(matches) > 1:
        raise ValueError(
            f"several files in {folder} match {pattern}: {[p.name for p in matches]}; "
            "expected one per task and split"
        )
    return matches[0]


@functools.cache
def _read_babi(path: str, mtime_ns: int, size: int, task: int) -> BabiData:
    """The examples of one bAbI file (cached by path, modification time and size)."""
    try:
        data = babi_data(task, _parse_babi(Path(path)))
        if len(data) == 0:
            raise ValueError(
                f"{path} holds no question (a line 'ID question?<TAB>answer<TAB>supporting "
                "IDs'): no example to learn from"
            )
        return data
    except ValueError as e:
        if str(e).startswith(path):
            raise
        raise ValueError(f"{path}: {e}") from e


def _parse_babi(path: Path) -> list[list[BabiLine]]:
    """The stories of a bAbI file as lists of lines (see :data:`BabiLine`)."""
    stories: list[list[BabiLine]] = []
    positions: dict[int, int] = {}  # line ID -> position among the story's sentences
    last = 0
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            number, _, text = line.partition(" ")
            if not (number.isascii() and number.isdigit()):
                raise ValueError(
                    f"{where}: expected a line number, a space and the text, got {line!r}"
                )
            n = int(number)
            if n == 1:
                stories.append([])
                positions = {}
            elif not stories or n != last + 1:
                raise ValueError(
                    f"{where}: line number {n} follows {last if stories else 'nothing'}; "
                    f"expected {last + 1} or 1 (a new story)"
                )
            last = n
            if "\t" not in text:
                _babi_words_bounded(text, f"{where}: sentence")
                if len(positions) == MAX_BABI_SENTENCES:
                    raise ValueError(
                        f"{where}: the story has more than {MAX_BABI_SENTENCES} sentences "
                        "(cogrl.datasets.MAX_BABI_SENTENCES; bAbI's longest has a few hundred)"
                    )
                positions[n] = len(positions)
                stories[-1].append(text)
                continue
            fields = text.split("\t")
            if len(fields) > 3:
                raise ValueError(
                    f"{where}: a question line has {len(fields)} tab-separated fields; expected "
                    "question, answer and supporting IDs"
                )
            question, answer = fields[0], fields[1].strip()
            _babi_words_bounded(question, f"{where}: question")
            if not answer:
                raise ValueError(f"{where}: question {question.strip()!r} has no answer")
            ids = fields[2].split() if len(fields) == 3 else []
            support = []
            for i in ids:
                if not (i.isascii() and i.isdigit()) or int(i) not in positions:
                    raise ValueError(
                        f"{where}: supporting ID {i!r} of question {question.strip()!r} is not "
                        f"the number of a sentence before it in its story "
                        f"(sentences {sorted(positions)})"
                    )
                support.append(positions[int(i)])
            stories[-1].append((question, answer, support))
    if not stories:
        raise ValueError(f"{path} holds no bAbI lines; expected numbered sentences and questions")
    return stories


# --- eye-tracking fixations ------------------------------------------------------------------

FIXATIONS_FILE = "fixations.jsonl"
STIMULI_FOLDER = "stimuli"
#: The largest width or height of a human-data image (OSIE's are 800 x 600): a record or an
#: image header that claims more is refused before anything is allocated for it.
MAX_IMAGE_SIDE = 8192
#: One image in this many is a test image (by a fixed hash of its file name, see
#: :func:`image_split`), so an image's split never depends on which others are present.
TEST_EVERY = 5


def image_split(name: str) -> str:
    """``"test"`` or ``"train"``: the split of the image file ``name``, fixed by the CRC-32
    of the name (one image in :data:`TEST_EVERY` is a test image)."""
    return "test" if zlib.crc32(name.encode()) % TEST_EVERY == 0 else "train"


@dataclass(frozen=True)
class FixationData:
    """Human eye movements on a set of images, one split of a human-data folder.

    The folder holds ``stimuli/`` (the images) and ``fixations.jsonl``, one JSON object per
    image: ``{"image": "1007.jpg", "width": 800, "height": 600, "subjects": [[[x, y,
    duration_ms], ...], ...]}``, one list per observer with the fixations in viewing
    order, ``x`` and ``y`` in image pixels from the top-left corner (the format of
    ``../shared/data/osie``, the OSIE data set's 700 free-viewing images in its full form).

    - ``root``: the folder.
    - ``split``: ``"train"`` or ``"test"`` (:func:`image_split`).
    - ``names``: the image file names, in the file's order.
    - ``sizes``: (D, 2) int64, each image's (width, height) in pixels.
    - ``scanpaths``: per image, one (K, 3) float64 array per observer: (x, y, duration_ms).
    """

    root: Path
    split: str
    names: tuple[str, ...]
    sizes: np.ndarray
    scanpaths: tuple[tuple[np.ndarray, ...], ...]

    def __len__(self) -> int:
        return len(self.names)

    def path(self, i: int) -> Path:
        """The file of image ``i``."""
        return self.root / STIMULI_FOLDER / self.names[i]

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as (H, W, 3) uint8 RGB."""
        from PIL import Image

        with Image.open(self.path(i)) as im:
            return np.asarray(im.convert("RGB"))

    def subset(self, index: Iterable[int]) -> FixationData:
        """The images of ``index`` (in that order) and their scanpaths."""
        keep = list(index)
        return FixationData(
            self.root,
            self.split,
            tuple(self.names[i] for i in keep),
            self.sizes[keep],
            tuple(self.scanpaths[i] for i in keep),
        )

    def fixations(self, i: int) -> np.ndarray:
        """Every observer's fixations on image ``i`` together, (F, 2) float64 (x, y): the
        points a saliency map is scored against."""
        return np.concatenate([s[:, :2] for s in self.scanpaths[i]]).reshape(-1, 2)


def load_fixations(root: str | os.PathLike, split: str = "train") -> FixationData:
    """One split (``"train"``, ``"test"``; by image, :func:`image_split`) of the human
    eye-movement folder ``root`` (see :class:`FixationData`). Nothing is downloaded: a
    missing folder, file or image, and a malformed record, are a ValueError naming them."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = Path(root).expanduser().resolve()
    path = folder / FIXATIONS_FILE
    if not path.is_file():
        raise ValueError(
            f"no {FIXATIONS_FILE} in {str(folder)!r}: a human-data folder holds "
            f"{FIXATIONS_FILE} and {STIMULI_FOLDER}/ (the format of ../shared/data/osie)"
        )
    stat = path.stat()
    data = _read_fixations(str(path), stat.st_mtime_ns, stat.st_size)
    keep = [i for i, name in enumerate(data.names) if image_split(name) == split]
    if not keep:
        raise ValueError(f"{str(path)!r} holds no {split!r} image (images: {len(data)})")
    return dataclasses.replace(data.subset(keep), split=split)


def _check_image_name(name: object, where: str) -> None:
    """An image's name is a file name inside ``stimuli/``: not absolute, no folder above."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: image must be a file name, got {name!r}")
    parts = Path(name).parts
    if Path(name).is_absolute() or "\\" in name or ".." in parts or name.startswith("~"):
        raise ValueError(
            f"{where}: image {name!r} is not a file name inside {STIMULI_FOLDER}/ (an "
            "absolute path or one that climbs out of it is refused)"
        )


def image_size(path: Path, where: str) -> tuple[int, int]:
    """The (width, height) of the image file ``path`` from its header (Pillow's ``open``
    decodes no pixels); ValueError starting with ``where`` for a file that is no image, a
    decompression bomb (Pillow's bound) or sides past :data:`MAX_IMAGE_SIDE`."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning,
            OSError) as e:  # fmt: skip
        raise ValueError(
            f"{where}: {path} is not a readable image ({type(e).__name__}: {e})"
        ) from None
    if not (1 <= width <= MAX_IMAGE_SIDE and 1 <= height <= MAX_IMAGE_SIDE):
        raise ValueError(
            f"{where}: {path} is {width} x {height} pixels; expected sides of 1 to "
            f"{MAX_IMAGE_SIDE} (cogrl.datasets.MAX_IMAGE_SIDE)"
        )
    return width, height


def _check_image_file(image: Path, width: int, height: int, where: str) -> None:
    """The image exists, is an image (:func:`image_size`) and has the record's size."""
    if not image.is_file():
        raise ValueError(f"{where}: image {image.name!r} is not in {STIMULI_FOLDER}/")
    size = image_size(image, where)
    if size != (width, height):
        raise ValueError(
            f"{where}: {image} is {size[0]} x {size[1]} pixels, the record says {width} x {height}"
        )


def _read_subjects(subjects: object, width: int, height: int, where: str) -> list[np.ndarray]:
    """Each observer's fixations as a read-only (K, 3) float64 array; ValueError naming the
    subject and fixation that is malformed."""
    if not isinstance(subjects, list) or not subjects:
        raise ValueError(
            f"{where}: subjects must be a non-empty list of observers (each a list of "
            f"[x, y, duration_ms] fixations), got {subjects!r:.80}"
        )
    paths, fixated = [], set()
    for s, subject in enumerate(subjects):
        if not isinstance(subject, list) or not subject:
            raise ValueError(
                f"{where}: subject {s} must be a non-empty list of [x, y, duration_ms] "
                f"fixations, got {subject!r:.80}"
            )
        for k, fixation in enumerate(subject):
            if (
                not isinstance(fixation, list)
                or len(fixation) != 3
                or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in fixation
                )
            ):
                raise ValueError(
                    f"{where}: subject {s}, fixation {k} is {fixation!r:.80}: expected "
                    "[x, y, duration_ms], three numbers"
                )
        fixations = np.asarray(subject, dtype=np.float64)
        xy = fixations[:, :2]
        inside = (xy >= 0).all() and (xy[:, 0] < width).all() and (xy[:, 1] < height).all()
        if not (np.isfinite(fixations).all() and inside and (fixations[:, 2] >= 0).all()):
            raise ValueError(
                f"{where}: subject {s} has a fixation off the {width} x {height} image "
                "or a negative or non-finite value: expected [x, y, duration_ms] with "
                "0 <= x < width, 0 <= y < height, duration >= 0"
            )
        fixations.setflags(write=False)
        paths.append(fixations)
        fixated.update(map(tuple, xy.astype(np.int64).tolist()))
    if len(fixated) >= width * height:
        raise ValueError(
            f"{where}: every pixel of the {width} x {height} image is fixated; the metrics "
            "(AUC-Judd, shuffled AUC) compare fixated with unfixated pixels"
        )
    return paths


@functools.lru_cache(maxsize=8)
def _read_fixations(path: str, mtime_ns: int, size: int) -> FixationData:
    """Every image of the file (``split`` left empty; :func:`load_fixations` splits it)."""
    import json

    file = Path(path)
    names, sizes, scanpaths = [], [], []
    with open(file, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                record = json.loads(line)
                name, width, height = record["image"], record["width"], record["height"]
                subjects = record["subjects"]
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(
                    f"{where}: expected a JSON object with image, width, height and subjects ({e})"
                ) from None
            _check_image_name(name, where)
            for key, value in (("width", width), ("height", height)):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{where}: {key} must be an integer, got {value!r}")
                if not 1 <= value <= MAX_IMAGE_SIDE:
                    raise ValueError(
                        f"{where}: {key} {value} is outside 1..{MAX_IMAGE_SIDE} pixels "
                        "(cogrl.datasets.MAX_IMAGE_SIDE)"
                    )
            _check_image_file(file.parent / STIMULI_FOLDER / name, width, height, where)
            paths = _read_subjects(subjects, width, height, where)
            names.append(name)
            sizes.append((width, height))
            scanpaths.append(tuple(paths))
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: an image is listed twice")
    sizes_array = np.array(sizes, dtype=np.int64).reshape(-1, 2)
    sizes_array.setflags(write=False)
    return FixationData(file.parent, "", tuple(names), sizes_array, tuple(scanpaths))
