"""Split sizes, stratification, determinism, augmentation, the leakage guard and de-duplication."""

from __future__ import annotations

import csv
import random
from collections import Counter
from pathlib import Path

import orjson
import pytest

from novaflow.data.report import normalize_text
from novaflow.data.samples import write_rows
from novaflow.data.splits import assert_no_leakage, find_leakage, split_dataset
from novaflow.errors import DataError
from novaflow.settings import load_settings


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """60 % HQ, 30 % LQ_EDIT, 10 % LQ_CLOSE, 1,000 distinct rows with multi-line bodies."""
    rows = [
        {
            "Id": str(i),
            "Title": f"t{i}",
            "Body": f"line one {i}\r\nline two\t{i} ü",
            "Tags": "<x>",
            "CreationDate": "2016-01-01 00:00:00",
            "Y": "HQ" if i % 10 < 6 else "LQ_EDIT" if i % 10 < 9 else "LQ_CLOSE",
        }
        for i in range(1000)
    ]
    return write_rows(tmp_path / "in.csv", rows)


def test_case_study_sizes_stratified_and_augmented(labelled: Path, tmp_path: Path) -> None:
    result = split_dataset(
        labelled,
        [350, 50, 70],
        tmp_path / "s",
        stratify="Y",
        seed=0,
        augment={"rft": ["sft"]},
        settings=load_settings(),
    )
    sft, ev, rft = (_read(result.files[n]) for n in ("sft", "eval", "rft"))
    assert (len(sft), len(ev), len(rft)) == (350, 50, 420)
    assert result.report.sizes == {"sft": 350, "eval": 50, "rft": 420}
    assert Counter(r["Y"] for r in sft) == {"HQ": 210, "LQ_EDIT": 105, "LQ_CLOSE": 35}
    assert Counter(r["Y"] for r in ev) == {"HQ": 30, "LQ_EDIT": 15, "LQ_CLOSE": 5}
    assert result.report.labels["eval"] == {"HQ": 30, "LQ_CLOSE": 5, "LQ_EDIT": 15}
    ids = {n: {r["Id"] for r in rows} for n, rows in (("sft", sft), ("eval", ev), ("rft", rft))}
    assert not ids["sft"] & ids["eval"] and not ids["eval"] & ids["rft"]
    assert ids["sft"] <= ids["rft"]
    assert sft[0]["Body"].endswith(" ü") and "\r\n" in sft[0]["Body"]


def test_same_seed_same_split_other_seed_other_split(labelled: Path, tmp_path: Path) -> None:
    a = split_dataset(
        labelled, [100, 50], tmp_path / "a", names=["sft", "eval"], stratify="Y", seed=3, settings=load_settings()
    )
    b = split_dataset(
        labelled, [100, 50], tmp_path / "b", names=["sft", "eval"], stratify="Y", seed=3, settings=load_settings()
    )
    c = split_dataset(
        labelled, [100, 50], tmp_path / "c", names=["sft", "eval"], stratify="Y", seed=4, settings=load_settings()
    )
    assert a.files["eval"].read_bytes() == b.files["eval"].read_bytes()
    assert a.files["eval"].read_bytes() != c.files["eval"].read_bytes()


def test_ratios(labelled: Path, tmp_path: Path) -> None:
    result = split_dataset(
        labelled, [0.8, 0.2], tmp_path / "s", names=["train", "eval"], stratify=None, settings=load_settings()
    )
    assert result.report.sizes == {"train": 800, "eval": 200}
    with pytest.raises(DataError, match=r"split ratios add up to 1\.1 > 1"):
        split_dataset(
            labelled, [0.9, 0.2], tmp_path / "x", names=["train", "eval"], stratify=None, settings=load_settings()
        )


def test_leakage_guard_keeps_eval_text_out_of_training(tmp_path: Path) -> None:
    """Every question appears twice (differing in case and spacing): held-out copies never reach training."""
    rows = []
    for i in range(200):
        rows.append(
            {
                "Id": f"a{i}",
                "Title": "",
                "Body": f"Question {i}  about X",
                "Tags": "",
                "CreationDate": "",
                "Y": "HQ" if i % 2 else "LQ_EDIT",
            }
        )
        rows.append(
            {
                "Id": f"b{i}",
                "Title": "",
                "Body": f"question {i} about x",
                "Tags": "",
                "CreationDate": "",
                "Y": "HQ" if i % 2 else "LQ_EDIT",
            }
        )
    path = write_rows(tmp_path / "dup.csv", rows)
    result = split_dataset(
        path, [100, 40], tmp_path / "s", names=["sft", "eval"], stratify="Y", seed=1, settings=load_settings()
    )
    ev = {normalize_text(r["Body"]) for r in _read(result.files["eval"])}
    sft = {normalize_text(r["Body"]) for r in _read(result.files["sft"])}
    assert not ev & sft
    assert result.report.leakage_dropped > 0
    dedup = split_dataset(
        path,
        [100, 40],
        tmp_path / "d",
        names=["sft", "eval"],
        stratify="Y",
        seed=1,
        dedup=True,
        settings=load_settings(),
    )
    assert dedup.report.duplicates_dropped == 200
    assert dedup.report.leakage_dropped == 0


def test_assert_no_leakage() -> None:
    assert find_leakage(["A  b"], ["a b", "c"]) == {"a b"}
    with pytest.raises(DataError, match=r"leakage: 1 eval row\(s\) also appear in sft"):
        assert_no_leakage({"eval": ["Same text"], "sft": ["same   TEXT", "other"]}, ["eval"])
    assert_no_leakage({"eval": ["x"], "sft": ["y"]}, ["eval"])


def test_not_enough_rows(labelled: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="asked for 1100 rows but only 1000 are available"):
        split_dataset(labelled, [1000, 100], tmp_path / "s", names=["sft", "eval"], settings=load_settings())
    with pytest.raises(DataError, match="stratify column 'Label' not found"):
        split_dataset(labelled, [10], tmp_path / "s", names=["sft"], stratify="Label", settings=load_settings())


def test_case_study_from_the_committed_sample(tmp_path: Path) -> None:
    from novaflow.data.samples import SAMPLE_CSV

    result = split_dataset(
        SAMPLE_CSV, [3500, 500, 700], tmp_path, stratify="Y", seed=0, augment={"rft": ["sft"]}, settings=load_settings()
    )
    # two eval questions of the sample near-copy SFT ones (the same text, other numbers): dropped from eval
    assert result.report.sizes == {"sft": 3500, "eval": 498, "rft": 4200}
    assert [(e["holdout_row"], e["training_row"]) for e in result.report.near_leakage_examples] == [
        (1431, 3829), (4393, 29), (4393, 1970), (4393, 2971)
    ]  # fmt: skip
    assert result.report.near_leakage_dropped == 2
    # stratified as asked (166 of each label), less the two near-copies (both LQ_CLOSE questions)
    assert result.report.labels["eval"] == {"HQ": 166, "LQ_CLOSE": 165, "LQ_EDIT": 167}


def test_require_leaves_blank_rows_out(tmp_path: Path) -> None:
    from novaflow.data.samples import SAMPLE_CSV

    result = split_dataset(
        SAMPLE_CSV, [3500, 500, 700], tmp_path, stratify="Y", seed=0, require=["Body", "Y"], settings=load_settings()
    )
    assert result.report.blank_dropped == 5  # empty body, blank body, two empty labels, a whitespace label
    rows = [r for name in ("sft", "eval", "rft") for r in _read(result.files[name])]
    assert all(r["Body"].strip() and r["Y"].strip() for r in rows)


def test_automatic_stratification_uses_a_response_column_with_few_values_and_says_so(
    labelled: Path, tmp_path: Path
) -> None:
    auto = split_dataset(
        labelled, [350, 50], tmp_path / "a", stratify="auto", auto_column=("response", "Y"), settings=load_settings()
    )
    assert auto.report.stratify == "Y"
    assert auto.report.stratify_reason == "stratified by 'Y' (automatic: 3 distinct values)"
    assert auto.report.labels["eval"] == {"HQ": 30, "LQ_CLOSE": 5, "LQ_EDIT": 15}
    free = split_dataset(
        labelled, [350, 50], tmp_path / "f", stratify="auto", auto_column="Title", settings=load_settings()
    )
    assert free.report.stratify is None and free.report.labels == {}
    assert free.report.stratify_reason == (
        "not stratified (automatic: 'Title' has 1000 distinct values, more than 20; pass --stratify COLUMN to "
        "choose one)"
    )
    off = split_dataset(labelled, [350, 50], tmp_path / "o", stratify="none", settings=load_settings())
    assert (off.report.stratify, off.report.stratify_reason) == (None, "not stratified (stratify=none)")
    asked = split_dataset(labelled, [350, 50], tmp_path / "k", stratify="Y", settings=load_settings())
    assert asked.report.stratify_reason == "stratified by 'Y' (asked for)"
    saved = (tmp_path / "a" / "split_report.json").read_text()
    assert '"stratify_reason": "stratified by \'Y\' (automatic: 3 distinct values)"' in saved


def _near_copy_rows() -> list[dict[str, str]]:
    """200 distinct questions of 40 random words each; labels alternate."""
    rng = random.Random(11)
    vocab = [f"w{i}" for i in range(3000)]
    return [
        {"Id": str(i), "Body": " ".join(rng.choice(vocab) for _ in range(40)), "Y": "A" if i % 2 else "B"}
        for i in range(200)
    ]


@pytest.mark.parametrize("mode", ["drop-eval", "keep", "drop-train"])
def test_near_copy_of_an_eval_row_in_sft_is_reported_and_dropped_from_eval(tmp_path: Path, mode: str) -> None:
    rows = _near_copy_rows()
    first = split_dataset(write_rows(tmp_path / "a.csv", rows), [100, 50], tmp_path / "a", names=["sft", "eval"],
                          stratify="none", seed=0, leakage="keep", settings=load_settings())  # fmt: skip
    assert first.report.near_leakage == 0
    eval_ids = [r["Id"] for r in _read(first.files["eval"])]
    sft_ids = [r["Id"] for r in _read(first.files["sft"])]
    # plant: an SFT row becomes the eval row's text with a changed punctuation mark and a signature line
    target = next(r for r in rows if r["Id"] == eval_ids[3])
    planted = next(r for r in rows if r["Id"] == sft_ids[5])
    planted["Body"] = target["Body"].replace(" ", ", ", 1) + " thanks in advance"
    source = write_rows(tmp_path / "b.csv", rows)
    result = split_dataset(source, [100, 50], tmp_path / mode, names=["sft", "eval"], stratify="none", seed=0,
                           leakage=mode, settings=load_settings())  # fmt: skip
    report = result.report
    assert report.near_leakage == 1
    [example] = report.near_leakage_examples
    assert (example["holdout"], example["holdout_row"]) == ("eval", int(target["Id"]) + 1)
    assert (example["training"], example["training_row"]) == ("sft", int(planted["Id"]) + 1)
    assert 0.8 <= example["similarity"] <= 1
    ev = {r["Id"] for r in _read(result.files["eval"])}
    sft = {r["Id"] for r in _read(result.files["sft"])}
    assert (target["Id"] in ev) == (mode != "drop-eval")
    assert (planted["Id"] in sft) == (mode != "drop-train")
    assert report.near_leakage_dropped == (0 if mode == "keep" else 1)
    assert report.sizes == {"sft": 100 - (mode == "drop-train"), "eval": 50 - (mode == "drop-eval")}
    saved = orjson.loads(result.report_file.read_bytes())
    assert saved["near_leakage"] == 1 and saved["leakage_mode"] == mode
    assert {"split": "(dropped)", "label": "near-copy leakage", "rows": report.near_leakage_dropped} in (
        report.table_rows()
    )
