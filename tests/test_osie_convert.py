"""The OSIE converter (cogrl.osie) on a small synthetic fixations.mat of OSIE's structure."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from cogrl.datasets import image_split, load_fixations
from cogrl.osie import ConversionReport, convert_osie, main

scipy_io = pytest.importorskip("scipy.io")

WIDTH, HEIGHT = 16, 12
TRAIN, EMPTY, TEST = "1001.png", "1002.png", "1003.png"


def subject(x, y, duration, dtype=np.float64):
    """One observer as OSIE stores it: a struct of 1 x K row vectors (1 x 0 when empty)."""
    return {
        "fix_x": np.asarray(x, dtype=np.float64).reshape(1, -1),
        "fix_y": np.asarray(y, dtype=np.float64).reshape(1, -1),
        "fix_duration": np.asarray(duration, dtype=dtype).reshape(1, -1),
    }


def cell(items):
    """A MATLAB cell array (N x 1) of what savemat writes as structs (dicts)."""
    array = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        array[i, 0] = item
    return array


def record(img, subjects):
    return {"img": img, "subjects": cell(subjects)}


def default_records():
    return [
        record(
            TRAIN,
            [
                # (0, 0) and (15, 11) are inside; x = 16 and y = 12 are off the image.
                subject([0, 15, 16, 5], [0, 11, 3, 12], [100, 200, 300, 400], np.uint16),
                subject([], [], []),
                subject([1.5, np.nan, 3], [2.25, 4, 5], [50.5, 60, -1]),
                subject([-0.5], [5], [10]),  # x < 0: off, and the observer left empty
            ],
        ),
        record(EMPTY, [subject([], [], []), subject([-1], [0], [10])]),
        record(TEST, [subject([7], [5], [250], np.uint16)]),
    ]


def write_osie(root, records=None, images=(TRAIN, EMPTY, TEST), **variables):
    """OSIE's layout under ``root``: data/stimuli/ and data/eye/fixations.mat."""
    from PIL import Image

    stimuli = root / "data" / "stimuli"
    stimuli.mkdir(parents=True)
    for k, name in enumerate(images):
        Image.new("RGB", (WIDTH, HEIGHT), (40 * k, 90, 200)).save(stimuli / name)
    mat = root / "data" / "eye" / "fixations.mat"
    mat.parent.mkdir(parents=True)
    if not variables:
        variables = {"fixations": cell(default_records() if records is None else records)}
    scipy_io.savemat(mat, variables)
    return mat, stimuli


@pytest.fixture
def osie(tmp_path):
    mat, stimuli = write_osie(tmp_path / "osie")
    return mat, stimuli, tmp_path / "out"


def test_synthetic_mat_has_osie_structure(osie):
    mat, _, _ = osie
    records = scipy_io.loadmat(mat)["fixations"].flatten()
    assert len(records) == 3
    e = records[0]
    assert e[0, 0]["img"][0] == TRAIN
    subjects = e[0, 0]["subjects"].flatten()
    assert len(subjects) == 4
    s = subjects[0]
    assert s[0, 0]["fix_x"].shape == (1, 4)
    assert s[0, 0]["fix_duration"].dtype == np.uint16
    assert subjects[1][0, 0]["fix_x"].size == 0


def test_split_names():
    # The kept images fall in both splits, so load_fixations reads each.
    assert image_split(TRAIN) == "train" and image_split(TEST) == "test"


def test_convert_counts_and_loads(osie):
    mat, stimuli, out = osie
    report = convert_osie(mat, stimuli, out)
    assert report == ConversionReport(
        images=2,
        subjects=3,
        fixations=4,
        fixations_off_image=4,
        fixations_non_finite=1,
        fixations_negative_duration=1,
        empty_subjects=4,
        images_without_subjects=1,
    )
    assert sorted(p.name for p in (out / "stimuli").iterdir()) == [TRAIN, TEST]
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())

    train = load_fixations(out, "train")
    test = load_fixations(out, "test")
    assert train.names == (TRAIN,) and test.names == (TEST,)
    assert train.sizes.tolist() == [[WIDTH, HEIGHT]]
    first, third = train.scanpaths[0]
    # Coordinates as published.
    np.testing.assert_array_equal(first, [[0, 0, 100], [15, 11, 200]])
    np.testing.assert_array_equal(third, [[1.5, 2.25, 50.5]])
    (only,) = test.scanpaths[0]
    np.testing.assert_array_equal(only, [[7, 5, 250]])


def test_jsonl_in_mat_order_with_integer_durations(osie):
    mat, stimuli, out = osie
    convert_osie(mat, stimuli, out)
    lines = (out / "fixations.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["image"] for r in records] == [TRAIN, TEST]
    assert records[0] == {
        "image": TRAIN,
        "width": WIDTH,
        "height": HEIGHT,
        "subjects": [[[0.0, 0.0, 100], [15.0, 11.0, 200]], [[1.5, 2.25, 50.5]]],
    }
    assert isinstance(records[0]["subjects"][0][0][2], int)  # uint16 durations stay integers


def test_floats_not_rounded(tmp_path):
    x = 0.1 + 0.2  # 0.30000000000000004 in float64, written as such (not rounded to 0.3)
    mat, stimuli = write_osie(tmp_path / "osie", [record(TRAIN, [subject([x], [2], [1])])])
    convert_osie(mat, stimuli, tmp_path / "out")
    text = (tmp_path / "out" / "fixations.jsonl").read_text()
    assert "[0.30000000000000004, 2.0, 1.0]" in text
    assert json.loads(text)["subjects"][0][0][0] == x


def test_main_prints_report_and_folder_last(osie, capsys):
    mat, stimuli, out = osie
    assert main([str(mat), str(stimuli), str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == str(out)
    text = "\n".join(printed)
    assert "2 images, 3 observers, 4 fixations" in text
    assert "4 fixations off the image, 1 non-finite, 1 with a negative duration" in text
    assert "4 observers without fixations" in text and "1 images without observers" in text


def test_convert_in_place(tmp_path):
    # out/stimuli may be OSIE's own stimuli folder: nothing is copied onto itself.
    mat, stimuli = write_osie(tmp_path / "osie")
    report = convert_osie(mat, stimuli, stimuli.parent)
    assert report.images == 2
    assert len(load_fixations(stimuli.parent, "test")) == 1


def test_refuses_to_overwrite(osie, capsys):
    mat, stimuli, out = osie
    convert_osie(mat, stimuli, out)
    before = (out / "fixations.jsonl").read_bytes()
    with pytest.raises(ValueError, match="already exists; refusing to overwrite"):
        convert_osie(mat, stimuli, out)
    assert main([str(mat), str(stimuli), str(out)]) == 2
    assert "osie: error:" in capsys.readouterr().err
    assert (out / "fixations.jsonl").read_bytes() == before


def test_missing_inputs(osie, capsys):
    mat, stimuli, out = osie
    with pytest.raises(ValueError, match=r"nothing\.mat is not a file.*fixations\.mat"):
        convert_osie(mat.parent / "nothing.mat", stimuli, out)
    with pytest.raises(ValueError, match=r"nowhere is not a folder.*data/stimuli"):
        convert_osie(mat, stimuli.parent / "nowhere", out)
    assert main([str(mat), str(stimuli.parent / "nowhere"), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("osie: error: ") and "nowhere" in err
    assert not out.exists()


def test_not_a_mat_file(tmp_path):
    mat, stimuli = write_osie(tmp_path / "osie")
    mat.write_bytes(b"this is not a MATLAB file at all" * 8)
    with pytest.raises(ValueError, match="fixations.mat"):
        convert_osie(mat, stimuli, tmp_path / "out")


def test_mat_without_fixations(tmp_path):
    mat, stimuli = write_osie(tmp_path / "osie", other=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"fixations\.mat holds no variable 'fixations'.*other"):
        convert_osie(mat, stimuli, tmp_path / "out")


def _fails(tmp_path, records, pattern, images=(TRAIN, EMPTY, TEST)):
    mat, stimuli = write_osie(tmp_path / "osie", records, images)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=pattern) as info:
        convert_osie(mat, stimuli, out)
    assert str(mat) in str(info.value)
    assert not out.exists()  # checked before anything is written
    assert main([str(mat), str(stimuli), str(out)]) == 2


def test_record_without_img(tmp_path):
    good = record(TRAIN, [subject([1], [1], [1])])
    _fails(tmp_path, [good, {"subjects": cell([subject([1], [1], [1])])}],
           r"record 1 \(0-based\): the record has no field 'img'.*img and subjects")  # fmt: skip


def test_record_without_subjects(tmp_path):
    _fails(tmp_path, [{"img": TRAIN}], r"record 0 \(0-based.*no field 'subjects'")


@pytest.mark.parametrize("missing", ["fix_x", "fix_y", "fix_duration"])
def test_subject_without_field(tmp_path, missing):
    fields = subject([1, 2], [1, 2], [5, 6])
    del fields[missing]
    records = [record(TRAIN, [subject([1], [1], [1])]), record(TEST, [subject([], [], []), fields])]
    _fails(tmp_path, records, rf"record 1 .*'{TEST}'\), subject 1: .*no field '{missing}'")


def test_arrays_of_different_lengths(tmp_path):
    records = [record(TRAIN, [subject([1, 2, 3], [1, 2], [5, 6, 7])])]
    _fails(
        tmp_path, records, r"record 0 .*subject 0: fix_x, fix_y and fix_duration hold 3, 2 and 3"
    )


def test_image_missing_from_stimuli(tmp_path):
    records = [
        record(TRAIN, [subject([1], [1], [1])]),
        record("1004.png", [subject([1], [1], [1])]),
    ]
    _fails(tmp_path, records, r"record 1 .*image '1004.png' is not in .*stimuli")


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "../1001.png", "sub/1001.png", "sub\\1001.png", "..", "a..png"]
)
def test_image_name_not_plain(tmp_path, name):
    _fails(tmp_path, [record(name, [subject([1], [1], [1])])], r"record 0 .*is not a plain file")


def test_image_listed_twice(tmp_path):
    records = [record(TRAIN, [subject([1], [1], [1])])] * 2
    _fails(tmp_path, records, r"record 1 .*listed twice \(first at record 0\)")


def test_not_an_image(tmp_path):
    mat, stimuli = write_osie(tmp_path / "osie", [record(TRAIN, [subject([1], [1], [1])])])
    (stimuli / TRAIN).write_bytes(b"not a png")
    with pytest.raises(ValueError, match="record 0 .*not a readable image"):
        convert_osie(mat, stimuli, tmp_path / "out")


def test_scipy_missing(osie, monkeypatch):
    mat, stimuli, out = osie
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    with pytest.raises(ImportError, match="pip install scipy"):
        convert_osie(mat, stimuli, out)
