"""Convert the OSIE eye-tracking data set to a human-data folder.

OSIE (Xu, Jiang, Wang, Kankanhalli, Zhao, "Predicting human gaze beyond pixels", Journal of
Vision 2014; MIT licence) holds 700 800 x 600 images, each free-viewed for 3 seconds by 15
observers. Its files come from the GitHub repository
``github.com/NUS-VIP/predicting-human-gaze-beyond-pixels``: the images in ``data/stimuli/``
(``1001.jpg`` ... ``1700.jpg``) and the fixations in ``data/eye/fixations.mat``, one record
per image with each observer's ``fix_x``, ``fix_y`` (image pixels from the top-left corner)
and ``fix_duration`` (milliseconds). cogrl never downloads them.

:func:`convert_osie` writes the folder :func:`cogrl.datasets.load_fixations` reads: the
images copied into ``stimuli/`` and ``fixations.jsonl``, one line per image in the .mat
file's order. Coordinates are kept as published (the eye tracker's continuous positions, as
in the 200-image subset this project's benchmarks use); a fixation that lies off the image
(outside ``0 <= x < width``, ``0 <= y < height``), has a non-finite value or a negative
duration is dropped, then an
observer left with no fixation, then an image left with no observer. Nothing is dropped
silently: the :class:`ConversionReport` counts each. A malformed file is a ValueError naming
the file, the record and what was expected; an existing ``fixations.jsonl`` is never
overwritten. One command::

    python -m cogrl.osie data/eye/fixations.mat data/stimuli OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cogrl.datasets import FIXATIONS_FILE, STIMULI_FOLDER, image_size

_SUBJECT_FIELDS = ("fix_x", "fix_y", "fix_duration")


@dataclass(frozen=True)
class ConversionReport:
    """What :func:`convert_osie` wrote and what it dropped, by reason.

    - ``images``, ``subjects``, ``fixations``: written to the folder.
    - ``fixations_off_image``: fixations outside the image.
    - ``fixations_non_finite``: fixations with a NaN or infinite x, y or duration.
    - ``fixations_negative_duration``: fixations with a duration below 0.
    - ``empty_subjects``: observers with no fixation (none in the file, or all dropped).
    - ``images_without_subjects``: images with no observer left (not copied either).

    A fixation is counted once, under the first of non-finite, negative duration and off
    the image that applies.
    """

    images: int
    subjects: int
    fixations: int
    fixations_off_image: int = 0
    fixations_non_finite: int = 0
    fixations_negative_duration: int = 0
    empty_subjects: int = 0
    images_without_subjects: int = 0

    def __str__(self) -> str:
        return "\n".join(
            (
                f"written: {self.images} images, {self.subjects} observers, "
                f"{self.fixations} fixations",
                f"dropped: {self.fixations_off_image} fixations off the image, "
                f"{self.fixations_non_finite} non-finite, "
                f"{self.fixations_negative_duration} with a negative duration; "
                f"{self.empty_subjects} observers without fixations; "
                f"{self.images_without_subjects} images without observers",
            )
        )


def _check_name(name: str, where: str) -> None:
    """An image's name is a plain file name: not absolute, no folder, no ``..``."""
    if (
        not name
        or name in (".", "..")
        or Path(name).is_absolute()
        or "/" in name
        or "\\" in name
        or os.sep in name
        or (os.altsep is not None and os.altsep in name)
        or ".." in name
    ):
        raise ValueError(
            f"{where}: image {name!r} is not a plain file name; expected a name such as "
            "'1001.jpg' inside the stimuli folder (no path separator, no '..', not absolute)"
        )


def _field(struct: np.ndarray, name: str, where: str, what: str) -> object:
    names = struct.dtype.names or ()
    if name not in names:
        raise ValueError(
            f"{where}: {what} has no field {name!r} (fields: {list(names)}); expected "
            f"a struct with fields {_fields_of(what)}"
        )
    return struct[name]


def _fields_of(what: str) -> str:
    return "img and subjects" if what == "the record" else ", ".join(_SUBJECT_FIELDS)


def _struct(cell: object, where: str, what: str) -> np.ndarray:
    """The 1 x 1 MATLAB struct ``cell[0, 0]`` (as ``loadmat`` reads a cell of structs)."""
    try:
        struct = cell[0, 0]  # type: ignore[index]
    except (IndexError, TypeError, ValueError) as e:
        raise ValueError(
            f"{where}: {what} is {type(cell).__name__} {getattr(cell, 'shape', '')}; expected "
            f"a 1 x 1 struct ({e})"
        ) from None
    if not isinstance(struct, (np.void, np.ndarray)) or struct.dtype.names is None:
        raise ValueError(
            f"{where}: {what} is not a struct; expected a struct with fields {_fields_of(what)}"
        )
    return struct


def _image_name(value: object, where: str) -> str:
    array = np.asarray(value)
    if array.dtype.kind != "U" or array.size != 1:
        raise ValueError(
            f"{where}: img is {array.dtype} {array.shape}; expected the image's file name, a "
            "string such as '1001.jpg'"
        )
    name = str(array.reshape(-1)[0])
    _check_name(name, where)
    return name


def _vector(value: object, field: str, where: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "iuf" and array.size:
        raise ValueError(f"{where}: {field} is {array.dtype}; expected numbers")
    if sum(n > 1 for n in array.shape) > 1:
        raise ValueError(f"{where}: {field} has shape {array.shape}; expected a vector")
    return array.reshape(-1)


def _load_records(path: Path) -> np.ndarray:
    try:
        import scipy.io
    except ImportError as e:
        raise ImportError(
            f"reading OSIE's {path.name} needs scipy: pip install scipy ({e})"
        ) from None
    try:
        contents = scipy.io.loadmat(path)
    except NotImplementedError as e:  # MATLAB v7.3 files are HDF5
        raise ValueError(f"{path}: cannot be read by scipy.io.loadmat ({e})") from None
    except (ValueError, TypeError, OSError, EOFError, scipy.io.matlab.MatReadError) as e:
        raise ValueError(
            f"{path} is not a readable MATLAB .mat file ({type(e).__name__}: {e})"
        ) from None
    if "fixations" not in contents:
        names = sorted(k for k in contents if not k.startswith("__"))
        raise ValueError(
            f"{path} holds no variable 'fixations' (variables: {names}); expected OSIE's "
            "data/eye/fixations.mat"
        )
    records = contents["fixations"]
    if not isinstance(records, np.ndarray) or records.dtype != object:
        raise ValueError(
            f"{path}: 'fixations' is {getattr(records, 'dtype', type(records).__name__)}; "
            "expected a cell array of one struct per image"
        )
    return records.flatten()


def convert_osie(
    fixations_mat: str | os.PathLike,
    stimuli: str | os.PathLike,
    out: str | os.PathLike,
) -> ConversionReport:
    """Convert OSIE's ``fixations.mat`` and ``stimuli`` folder into the human-data folder
    ``out`` (see the module's docstring); returns what was written and dropped.

    Everything is read and checked before anything is written, so a malformed file leaves
    ``out`` untouched; ``fixations.jsonl`` is written last, atomically."""
    mat = Path(fixations_mat).expanduser()
    source = Path(stimuli).expanduser()
    folder = Path(out).expanduser()
    if not mat.is_file():
        raise ValueError(
            f"{mat} is not a file; expected OSIE's data/eye/fixations.mat - cogrl never "
            "downloads data"
        )
    if not source.is_dir():
        raise ValueError(
            f"{source} is not a folder; expected OSIE's data/stimuli/ holding the images - "
            "cogrl never downloads data"
        )
    target = folder / FIXATIONS_FILE
    if target.exists():
        raise ValueError(
            f"{target} already exists; refusing to overwrite it: remove it or choose another "
            "output folder"
        )
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; expected the output folder")

    counts = dict.fromkeys(
        (
            "fixations_off_image",
            "fixations_non_finite",
            "fixations_negative_duration",
            "empty_subjects",
            "images_without_subjects",
        ),
        0,
    )
    lines: list[str] = []
    copies: list[Path] = []
    seen: dict[str, int] = {}
    kept_subjects = kept_fixations = 0
    for i, cell in enumerate(_load_records(mat)):
        where = f"{mat}, record {i} (0-based)"
        record = _struct(cell, where, "the record")
        name = _image_name(_field(record, "img", where, "the record"), where)
        where = f"{mat}, record {i} (0-based, image {name!r})"
        if name in seen:
            raise ValueError(f"{where}: the image is listed twice (first at record {seen[name]})")
        seen[name] = i
        image = source / name
        if not image.is_file():
            raise ValueError(f"{where}: image {name!r} is not in {source}")
        width, height = image_size(image, where)
        subjects = np.asarray(_field(record, "subjects", where, "the record"))
        if subjects.dtype != object:
            raise ValueError(
                f"{where}: subjects is {subjects.dtype} {subjects.shape}; expected a cell array "
                "of one struct per observer"
            )
        observers = []
        for j, subject_cell in enumerate(subjects.flatten()):
            at = f"{where}, subject {j}"
            subject = _struct(subject_cell, at, "the subject")
            x, y, duration = (
                _vector(_field(subject, f, at, "the subject"), f, at) for f in _SUBJECT_FIELDS
            )
            if not len(x) == len(y) == len(duration):
                raise ValueError(
                    f"{at}: fix_x, fix_y and fix_duration hold {len(x)}, {len(y)} and "
                    f"{len(duration)} values; expected one of each per fixation"
                )
            x, y = x.astype(np.float64), y.astype(np.float64)
            integral = duration.dtype.kind in "iu"
            duration = duration.astype(np.int64 if integral else np.float64)
            finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(duration)
            timed = finite & (duration >= 0)
            inside = timed & (x >= 0) & (x < width) & (y >= 0) & (y < height)
            counts["fixations_non_finite"] += int((~finite).sum())
            counts["fixations_negative_duration"] += int((finite & ~timed).sum())
            counts["fixations_off_image"] += int((timed & ~inside).sum())
            if not inside.any():
                counts["empty_subjects"] += 1
                continue
            observers.append(
                [
                    [xk, yk, dk]
                    for xk, yk, dk in zip(
                        x[inside].tolist(),
                        y[inside].tolist(),
                        duration[inside].tolist(),
                        strict=True,
                    )
                ]
            )
        if not observers:
            counts["images_without_subjects"] += 1
            continue
        kept_subjects += len(observers)
        kept_fixations += sum(map(len, observers))
        record_out = {"image": name, "width": width, "height": height, "subjects": observers}
        lines.append(json.dumps(record_out, allow_nan=False))
        copies.append(image)

    try:
        (folder / STIMULI_FOLDER).mkdir(parents=True, exist_ok=True)
        for image in copies:
            destination = folder / STIMULI_FOLDER / image.name
            if not (destination.exists() and os.path.samefile(image, destination)):
                shutil.copy2(image, destination)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{FIXATIONS_FILE}.", suffix=".tmp", dir=folder
        )
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as f:
                f.writelines(line + "\n" for line in lines)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise ValueError(f"cannot write the human-data folder {folder}: {e}") from e
    return ConversionReport(len(lines), kept_subjects, kept_fixations, **counts)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cogrl.osie FIXATIONS_MAT STIMULI_DIR OUT_DIR``: convert, print the report
    and the folder written; a ValueError is ``osie: error: ...`` on stderr, exit status 2."""
    parser = argparse.ArgumentParser(
        prog="osie",
        description=(
            "Convert the OSIE eye-tracking data set (data/eye/fixations.mat and data/stimuli/ "
            "of github.com/NUS-VIP/predicting-human-gaze-beyond-pixels) into the human-data "
            "folder cogrl.datasets.load_fixations reads; what is dropped (fixations off "
            "the image, non-finite, of negative duration) is reported."
        ),
    )
    parser.add_argument("fixations_mat", metavar="FIXATIONS_MAT", help="data/eye/fixations.mat")
    parser.add_argument("stimuli", metavar="STIMULI_DIR", help="data/stimuli, the images")
    parser.add_argument(
        "out", metavar="OUT_DIR", help="the folder to write (must not hold fixations.jsonl)"
    )
    args = parser.parse_args(argv)
    try:
        report = convert_osie(args.fixations_mat, args.stimuli, args.out)
    except ValueError as e:
        print(f"osie: error: {e}", file=sys.stderr)
        return 2
    print(report)
    print(Path(args.out).expanduser())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
