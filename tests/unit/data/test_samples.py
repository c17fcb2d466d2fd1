"""The synthetic data: deterministic, balanced, byte-rich, and learnable but noisy for a bag-of-words model."""

from __future__ import annotations

import csv
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

from novaflow.data.formats import RESERVED_RE
from novaflow.data.prepare import prepare_dataset
from novaflow.data.samples import (
    BROKEN_ROWS,
    CASE_STUDY_COLUMNS,
    COLUMNS,
    SAMPLE_CSV,
    SAMPLE_ROWS,
    SYSTEM_PROMPT,
    generate_stackoverflow_csv,
    iter_stackoverflow_rows,
)
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.settings import load_settings


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = generate_stackoverflow_csv(tmp_path / "a.csv", 300, seed=5).read_bytes()
    b = generate_stackoverflow_csv(tmp_path / "b.csv", 300, seed=5).read_bytes()
    c = generate_stackoverflow_csv(tmp_path / "c.csv", 300, seed=6).read_bytes()
    assert a == b != c


def test_columns_balance_and_byte_variety() -> None:
    rows = list(iter_stackoverflow_rows(3000, seed=2))
    assert list(rows[0]) == list(COLUMNS)
    assert Counter(r["Y"] for r in rows) == {"HQ": 1000, "LQ_EDIT": 1000, "LQ_CLOSE": 1000}
    bodies = "".join(r["Body"] for r in rows)
    for needle in ("\r\n", "\t", "<pre><code>", "&lt;", "\n"):
        assert needle in bodies
    assert any(ord(ch) > 0xFFFF for ch in bodies) and any(0x7F < ord(ch) < 0x800 for ch in bodies)
    assert not any(RESERVED_RE.search(r["Body"]) for r in rows), "generated rows must all be valid"
    assert len({r["Body"] for r in rows}) > 2990


def _naive_bayes_accuracy(rows: list[dict[str, str]], train: int) -> float:
    """Multinomial naive Bayes over lower-cased word tokens: the kind of model the emulator trains."""

    def tokens(text: str) -> list[str]:
        return re.findall(r"[a-z_]+|[<>&;]", text.lower())

    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows[:train]:
        counts[r["Y"]].update(tokens(r["Body"]))
    vocab = set().union(*counts.values())
    totals = {k: sum(c.values()) for k, c in counts.items()}
    right = 0
    for r in rows[train:]:
        toks = tokens(r["Body"])
        score = {k: sum(math.log((c[t] + 1) / (totals[k] + len(vocab))) for t in toks) for k, c in counts.items()}
        right += max(score, key=score.__getitem__) == r["Y"]
    return right / (len(rows) - train)


def test_label_is_learnable_but_noisy() -> None:
    rows = list(iter_stackoverflow_rows(2400, seed=11))
    accuracy = _naive_bayes_accuracy(rows, 2000)
    assert 0.72 <= accuracy <= 0.92, accuracy


def test_committed_sample(tmp_path: Path) -> None:
    assert SAMPLE_CSV.stat().st_size < 6_000_000
    assert 550 <= len(SYSTEM_PROMPT) <= 700 and "HQ, LQ_EDIT or LQ_CLOSE" in SYSTEM_PROMPT
    with SAMPLE_CSV.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == SAMPLE_ROWS + len(BROKEN_ROWS)
    src = DatasetSource(path=str(SAMPLE_CSV), columns=ColumnMap(**CASE_STUDY_COLUMNS), system_prompt=SYSTEM_PROMPT)
    prepared = prepare_dataset(src, "sft", "nova-lite-2", tmp_path, settings=load_settings())
    assert prepared.report.rows_out == SAMPLE_ROWS
    assert prepared.report.rejections_by_reason == {
        "reserved keyword in query": 5,
        "empty response": 3,
        "empty query": 2,
    }
