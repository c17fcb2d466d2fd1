"""The curation filters of `data prepare` on generated data: planted near-duplicates, other languages, and one row
built to fail each quality sub-filter; every removed row is in rejected.jsonl with its filter and score."""

from __future__ import annotations

import csv
import gc
import hashlib
import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from novaflow.data import line_cut, lsh, minhash, ngrams
from novaflow.data import prepare as prepare_module
from novaflow.data.filters import CurationConfig
from novaflow.data.prepare import prepare_dataset
from novaflow.data.quality import QualityThresholds, ftfy_badness_pattern, score_quality
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.errors import DataError
from novaflow.settings import load_settings

VOCAB = [f"w{i}" for i in range(5000)]
ENGLISH = [
    "How do I sort a list of dictionaries by a value of the dictionary in Python without writing a loop?",
    "My web server returns a timeout after thirty seconds when the database query takes too long to finish.",
    "What is the difference between a process and a thread, and when should I use each of them in practice?",
    "The build fails on the continuous integration machine but works fine on my laptop with the same version.",
]
OTHER = {
    "de": "Wie kann ich eine Liste von Wörterbüchern in Python nach einem Wert sortieren, ohne Schleife?",
    "fr": "Comment puis-je trier une liste de dictionnaires en Python selon une valeur sans écrire de boucle moi-même?",
    "es": "¿Cómo puedo ordenar una lista de diccionarios en Python por un valor sin escribir un bucle yo mismo?",
}


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["query", "response"])
        writer.writerows(rows)
    return path


def _prepare(
    tmp_path: Path, rows: list[tuple[str, str]], spec: str, **options: Any
) -> tuple[Any, list[dict[str, Any]]]:
    src = DatasetSource(path=str(_write_csv(tmp_path / "in.csv", rows)), columns=ColumnMap())
    prepared = prepare_dataset(
        src,
        "sft",
        "nova-lite-2",
        tmp_path / "out",
        curation=CurationConfig.parse(spec, **options),
        settings=load_settings(),
    )
    rejected = [orjson.loads(line) for line in prepared.rejected_file.read_bytes().splitlines()]
    return prepared, rejected


def _shingles(text: str, k: int = minhash.SHINGLE_WORDS) -> set[tuple[str, ...]]:
    words = text.split()
    return {tuple(words[i : i + k]) for i in range(len(words) - k + 1)}


def _jaccard(a: str, b: str) -> float:
    x, y = _shingles(a), _shingles(b)
    return len(x & y) / len(x | y)


def _variant(base: list[str], changes: int, rng: random.Random) -> list[str]:
    """``base`` with ``changes`` words replaced at spread-out positions (each change costs up to 3 shingles)."""
    out = list(base)
    step = len(base) // (changes + 1)
    for j in range(changes):
        out[step * (j + 1)] = f"new{rng.randrange(10**9)}"
    return out


def test_planted_near_duplicates_found_at_the_threshold_and_not_below(tmp_path: Path) -> None:
    rng = random.Random(7)
    rows: list[tuple[str, str]] = []
    planted: dict[int, tuple[int, float]] = {}  # data row (1-based) -> (row it copies, exact jaccard)
    for _ in range(40):
        base = [rng.choice(VOCAB) for _ in range(120)]
        rows.append((" ".join(base), "A"))
        original = len(rows)
        for changes in (1, 2, 12):  # jaccard ~0.95, ~0.9 (both found at 0.8) and ~0.55 (below: kept)
            text = " ".join(_variant(base, changes, rng))
            rows.append((text, "A"))
            planted[len(rows)] = (original, _jaccard(rows[original - 1][0], text))
    prepared, rejected = _prepare(tmp_path, rows, "near-dedup")
    found = {r["row"]: r for r in rejected}
    above = {row for row, (_, j) in planted.items() if j >= 0.8}
    below = {row for row, (_, j) in planted.items() if j < 0.72}
    assert len(above) == 80 and len(below) == 40
    assert above <= set(found), sorted(above - set(found))
    assert not below & set(found)
    assert set(found) == above  # nothing else: the 40 originals and the far variants stay
    for row, item in found.items():
        assert item["filter"] == "near-dedup"
        assert item["duplicate_of"] == planted[row][0]
        assert item["reason"] == f"near-dedup: similarity {item['score']:.2f} to row {planted[row][0]}"
        assert abs(item["score"] - planted[row][1]) < 0.12
    assert prepared.report.filtered == {"near-dedup": 80}
    assert prepared.report.rows_out == len(rows) - 80
    assert [e["row"] for e in prepared.report.filter_examples["near-dedup"]] == sorted(found)[:3]


def test_a_stricter_threshold_keeps_the_looser_copies(tmp_path: Path) -> None:
    rng = random.Random(3)
    base = [rng.choice(VOCAB) for _ in range(150)]
    close, loose = " ".join(_variant(base, 1, rng)), " ".join(_variant(base, 5, rng))
    rows = [(" ".join(base), "A"), (close, "A"), (loose, "A")]
    assert _jaccard(rows[0][0], close) > 0.95 and 0.8 < _jaccard(rows[0][0], loose) < 0.92
    _, rejected = _prepare(tmp_path, rows, "near-dedup", near_dedup_threshold=0.97)
    assert [r["row"] for r in rejected] == []
    _, rejected = _prepare(tmp_path, rows, "near-dedup", near_dedup_threshold=0.9)
    assert [r["row"] for r in rejected] == [2]


def test_exact_dedup_ignores_case_and_spacing_and_keeps_the_first(tmp_path: Path) -> None:
    rows = [("Same question here", "A"), ("other", "B"), ("same  QUESTION here", "A")]
    prepared, rejected = _prepare(tmp_path, rows, "dedup", fields=("query",))
    assert [(r["row"], r["filter"], r["duplicate_of"], r["reason"]) for r in rejected] == [
        (3, "dedup", 1, "dedup: same text as row 1")
    ]
    assert prepared.report.duplicates == 0 and prepared.rows == 2


def test_non_english_rows_removed(tmp_path: Path) -> None:
    rows = [(q, "ok") for q in ENGLISH] + [(q, "ok") for q in OTHER.values()]
    prepared, rejected = _prepare(tmp_path, rows, "language=en", fields=("query",))
    assert [(r["row"], r["filter"]) for r in rejected] == [(5, "language"), (6, "language"), (7, "language")]
    for item, code in zip(rejected, OTHER, strict=True):
        assert item["reason"].startswith(f"language: {code} (") and item["reason"].endswith("), not en")
        assert 0 < item["score"] <= 1
    assert prepared.rows == 4
    _, both = _prepare(tmp_path, rows, "language=en,de", fields=("query",))
    assert [r["row"] for r in both] == [6, 7]


def test_a_row_cld2_refuses_is_retried_without_its_control_characters(tmp_path: Path) -> None:
    """CLD2 refuses a few control characters: the chunk is judged row by row, the refused row again without them;
    the other rows get the verdicts they get without it."""
    control = "\x01\x02" + ENGLISH[0]
    rows = [(q, "ok") for q in ENGLISH] + [(control, "ok")] + [(q, "ok") for q in OTHER.values()]
    prepared, rejected = _prepare(tmp_path, rows, "language=en", fields=("query",))
    assert [(r["row"], r["filter"]) for r in rejected] == [(6, "language"), (7, "language"), (8, "language")]
    assert prepared.rows == 5


GOOD = (
    "A well formed question about sorting records by date in a database table.\n"
    "It has several lines of ordinary prose, each of them long enough to read."
)
BAD = {
    "url": "See https://example.com/a/very/long/path/to/some/resource/page.html and https://example.org/x/y/z/w/v/u "
    "for it",
    "alphanumeric": "!!! ??? ... ### $$$ %%% ^^^ &&& *** ((( ))) --- +++ === ;;; ::: ,,, ''' ab cd ef gh ij kl",
    "word-repetition": " ".join(["the same ten words appear again and again in this row"] * 4),
    "char-repetition": "Hello " + "z" * 120 + " world",
    "mojibake": "cafÃ© naÃ¯ve rÃ©sumÃ© dÃ©jÃ  vu piÃ±ata jalapeÃ±o and plain ascii words",
    "length": "Too short to keep.",
    "line-length": "a b\nc d\ne f\ng h\ni j\nk l\nm n\no p\nq r\ns t\nu v\nw x\ny z\nab cd\nef gh",
}


def test_each_quality_sub_filter_removes_exactly_the_row_built_to_fail_it(tmp_path: Path) -> None:
    rows = [(GOOD, "yes")] + [(text, "yes") for text in BAD.values()] + [(GOOD + " Again.", "yes")]
    prepared, rejected = _prepare(tmp_path, rows, "quality", fields=("query",))
    got = {r["row"]: r["reason"].split(")")[0].removeprefix("quality (") for r in rejected}
    assert got == {i + 2: name for i, name in enumerate(BAD)}
    assert all(r["filter"] == "quality" and isinstance(r["score"], float) for r in rejected)
    assert prepared.report.filtered == {"quality": 7}
    assert prepared.rows == 2


def test_quality_scores_match_a_plain_reading_of_the_reference_rules() -> None:
    texts = [GOOD, *BAD.values()]
    arr = pa.array(texts)
    result = score_quality(arr, ngrams.words(arr), QualityThresholds())
    assert result.failed == [None, *BAD]
    char_rep = float(result.scores[4])
    text = BAD["char-repetition"]
    grams = [text[i : i + 10] for i in range(len(text) - 9)]
    counts = sorted((grams.count(g) for g in set(grams)), reverse=True)
    top = min(int(len(counts) ** 0.5), sum(c > 1 for c in counts))
    assert char_rep == pytest.approx(sum(counts[:top]) / len(grams))
    assert char_rep > 0.5
    assert float(result.scores[6]) == len(BAD["length"])


def test_mojibake_pattern_counts_what_ftfy_counts() -> None:
    from ftfy.badness import badness

    samples = [
        "cafÃ© naÃ¯ve", "plain text", "â€œquotedâ€\x9d", "Ã\xa0 la carte", "ÐŸÑ€Ð¸Ð²ÐµÑ‚", "Â£5 Â©2020", "œuvre",
        "ГўВЂВ\x9dA text", "β€™s", "no mojibake at all: déjà vu, naïve, €5",
    ]  # fmt: skip
    counts = pa.compute.count_substring_regex(pa.array(samples), ftfy_badness_pattern()).to_pylist()
    assert counts == [badness(s) for s in samples]


def test_signatures_estimate_jaccard_and_hashes_are_stable() -> None:
    rng = random.Random(1)
    base = [rng.choice(VOCAB) for _ in range(200)]
    texts = [" ".join(base), " ".join(_variant(base, 6, rng)), " ".join(rng.choice(VOCAB) for _ in range(200))]
    tokens = ngrams.words(pa.array(texts))
    sigs, has_words = minhash.signatures(tokens)
    est = lsh.similarity(sigs[[0, 0]], sigs[[1, 2]])
    assert abs(est[0] - _jaccard(texts[0], texts[1])) < 0.1 and est[1] < 0.05
    again, _ = minhash.signatures(ngrams.words(pa.array(texts[::-1])))
    assert np.array_equal(again[::-1], sigs)  # a row's signature depends on its text only
    assert has_words.all()


def test_filter_spec_parsing() -> None:
    config = CurationConfig.parse("near-dedup,quality,language=en,de")
    assert config.filters == ("near-dedup", "quality", "language") and config.languages == ("en", "de")
    with pytest.raises(DataError, match="unknown filter; known: dedup, near-dedup, language, quality"):
        CurationConfig.parse("near-dup")
    with pytest.raises(DataError, match="language=en"):
        CurationConfig.parse("language")


@pytest.mark.slow
def test_worker_processes_filter_the_same_rows(tmp_path: Path) -> None:
    from novaflow.data.samples import generate_stackoverflow_csv

    path = generate_stackoverflow_csv(tmp_path / "so.csv", 1500, seed=2)
    src = DatasetSource(path=str(path), columns=ColumnMap(query="Body", response="Y"))
    curation = CurationConfig.parse("dedup,near-dedup,quality,language=en")
    one = prepare_dataset(
        src, "sft", "nova-lite-2", tmp_path / "one", curation=curation, workers=1, settings=load_settings()
    )
    two = prepare_dataset(
        src, "sft", "nova-lite-2", tmp_path / "two", curation=curation, workers=2, settings=load_settings()
    )
    assert one.report.filtered and two.report.filtered == one.report.filtered
    for name in ("train.jsonl", "rejected.jsonl"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


@pytest.mark.parametrize("block", [1, 37, 4096])
def test_dropped_rows_are_cut_out_the_same_whatever_the_rewrite_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """The data file is rewritten in blocks: lines that straddle a block, runs of dropped lines and a dropped last
    line give the bytes of one whole-file pass (checked against the expected lines themselves)."""
    path = tmp_path / "dups.csv"
    questions = [f"question number {i} about sorting lists in python quickly" for i in range(12)]
    rows = [*questions, questions[0], questions[0], questions[5], questions[11], questions[11]]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["q", "a"])
        writer.writerows([q, f"the answer is {q[16:18]}"] for q in rows)
    monkeypatch.setattr(line_cut, "SCAN_BLOCK", block)
    source = DatasetSource(path=str(path), columns=ColumnMap(query="q", response="a"))
    out = prepare_dataset(
        source, "sft", "nova-lite-2", tmp_path / "out", curation=CurationConfig.parse("dedup"), settings=load_settings()
    )
    kept = [orjson.loads(line)["messages"][0]["content"][0]["text"] for line in out.data_file.read_bytes().splitlines()]
    assert kept == questions
    rejected = [orjson.loads(line) for line in out.rejected_file.read_bytes().splitlines()]
    assert [(r["row"], r["filter"], r["duplicate_of"]) for r in rejected] == [
        (13, "dedup", 1), (14, "dedup", 1), (15, "dedup", 6), (16, "dedup", 12), (17, "dedup", 12)
    ]  # fmt: skip
    assert out.report.rows_out == 12
    data = out.data_file.read_bytes()
    entry = orjson.loads(out.manifest_file.read_bytes())["files"][out.data_file.name]
    assert entry == {"rows": 12, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_a_duplicate_filter_that_drops_nothing_still_records_the_file_hash(tmp_path: Path) -> None:
    """With a duplicate filter the first pass writes without hashing (a rewrite usually follows); when nothing is
    dropped the manifest's sha256 is read from the file itself and must equal the bytes written."""
    rows = [(f"distinct question {i} about a different topic {i * 7}", f"answer {i}") for i in range(20)]
    prepared, rejected = _prepare(tmp_path, rows, "dedup,near-dedup")
    assert rejected == [] and prepared.rows == 20
    data = prepared.data_file.read_bytes()
    entry = orjson.loads(prepared.manifest_file.read_bytes())["files"][prepared.data_file.name]
    assert entry == {"rows": 20, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_the_cut_runs_with_the_collector_held_back_and_a_rerun_replaces_the_old_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cutting rows out parses each of them (tens of thousands at scale): no collection walks the process meanwhile,
    and the collector is on again afterwards. A second run into the same directory leaves only its own files."""
    path = tmp_path / "dups.csv"
    questions = [f"question number {i} about sorting lists in python quickly" for i in range(6)]
    _write_csv(path, [(q, f"the answer is {q[16:17]}") for q in [*questions, questions[2]]])
    seen: list[bool] = []
    real_cut = prepare_module.cut_lines

    def watching(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return real_cut(*args, **kwargs)

    monkeypatch.setattr(prepare_module, "cut_lines", watching)
    source = DatasetSource(path=str(path), columns=ColumnMap())
    dedup = CurationConfig.parse("dedup")
    for _ in range(2):
        out = prepare_dataset(source, "sft", "nova-lite-2", tmp_path / "out", curation=dedup, settings=load_settings())
    assert seen == [False, False] and gc.isenabled()
    assert sorted(p.name for p in out.out_dir.iterdir()) == [
        "manifest.json", "rejected.jsonl", "report.json", "train.jsonl"
    ]  # fmt: skip
    data = out.data_file.read_bytes()
    assert len(data.splitlines()) == 6
    manifest = orjson.loads(out.manifest_file.read_bytes())
    assert manifest["files"]["train.jsonl"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert [orjson.loads(line)["row"] for line in out.rejected_file.read_bytes().splitlines()] == [7]
