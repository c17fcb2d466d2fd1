"""Seeded, stratified splits by counts or ratios, with a leakage guard and optional de-duplication.

Held-out splits (``eval`` by default) are drawn first; every remaining row whose normalized text equals a held-out
row is then removed from the pool, so no evaluation question can appear in a training split, and the guard checks
that again on the final files. The case study: 3,500 SFT, 500 eval and 700 RFT rows, with the RFT file augmented
by all SFT rows (4,200).

Example:
    >>> result = split_dataset("so.csv", {"sft": 3500, "eval": 500, "rft": 700}, "splits",
    ...                        stratify="Y", seed=0, augment={"rft": ["sft"]})  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from novaflow.data.arrow_arrays import string_array
from novaflow.data.loaders import read_all_records
from novaflow.data.minhash import DEFAULT_THRESHOLD, signatures
from novaflow.data.ngrams import words
from novaflow.data.report import normalize_text
from novaflow.data.source import DatasetSource
from novaflow.errors import DataError
from novaflow.settings import NovaflowSettings
from novaflow.storage import local_copy

DEFAULT_NAMES = ("sft", "eval", "rft")
AUTO = "auto"
NONE = "none"
LEAKAGE_MODES = ("drop-eval", "drop-train", "keep")
"""What the near-copy leakage guard does with a held-out row that near-copies a training row."""
LEAKAGE_EXAMPLES = 5
MAX_STRATA = 20
"""Automatic stratification uses the response column only when it has at most this many distinct values."""


class SplitReport(BaseModel):
    """Sizes and label distributions per split, and what the guards removed."""

    source: str
    seed: int
    stratify: str | None
    stratify_reason: str = ""
    """Why the splits are (not) stratified by that column: asked for, chosen automatically, or switched off."""
    key_columns: list[str]
    rows_in: int
    sizes: dict[str, int]
    labels: dict[str, dict[str, int]] = Field(default_factory=dict)
    blank_dropped: int = 0
    duplicates_dropped: int = 0
    leakage_dropped: int = 0
    near_leakage: int = 0
    """Pairs of a held-out row and a training row whose texts are near-copies (estimated Jaccard >= threshold)."""
    near_leakage_dropped: int = 0
    leakage_mode: str = "drop-eval"
    leakage_threshold: float = DEFAULT_THRESHOLD
    near_leakage_examples: list[dict[str, Any]] = Field(default_factory=list)
    """The first pairs: held-out split and row, training split and row (1-based input rows), similarity."""
    augmented: dict[str, list[str]] = Field(default_factory=dict)

    def table_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = [{"split": "(input)", "label": "all", "rows": self.rows_in}]
        for name, size in self.sizes.items():
            rows.append({"split": name, "label": "all", "rows": size})
            rows += [{"split": name, "label": k, "rows": v} for k, v in self.labels.get(name, {}).items()]
        rows.append({"split": "(dropped)", "label": "blank required field", "rows": self.blank_dropped})
        rows.append({"split": "(dropped)", "label": "duplicates", "rows": self.duplicates_dropped})
        rows.append({"split": "(dropped)", "label": "leakage", "rows": self.leakage_dropped})
        rows.append(
            {
                "split": "(leakage)",
                "label": f"near-copies >= {self.leakage_threshold} ({self.leakage_mode})",
                "rows": self.near_leakage,
            }
        )
        rows.append({"split": "(dropped)", "label": "near-copy leakage", "rows": self.near_leakage_dropped})
        for e in self.near_leakage_examples:
            pair = f"{e['holdout']} row {e['holdout_row']} ~ {e['training']} row {e['training_row']}"
            label = f"{pair} ({e['similarity']:.2f})"
            rows.append({"split": "(leakage example)", "label": label, "rows": 1})
        return rows


@dataclass
class SplitResult:
    """Files written by :func:`split_dataset` (split name -> path) and the report."""

    out_dir: Path
    files: dict[str, Path]
    report: SplitReport
    report_file: Path


def parse_sizes(
    sizes: Sequence[float | int] | Mapping[str, float | int], names: Sequence[str] | None = None
) -> dict[str, float]:
    if isinstance(sizes, Mapping):
        return {str(k): float(v) for k, v in sizes.items()}
    names = list(names or DEFAULT_NAMES[: len(sizes)] or [])
    if len(names) != len(sizes):
        raise DataError(f"{len(sizes)} sizes but {len(names)} split names ({', '.join(names)}); pass --names")
    return dict(zip(names, (float(s) for s in sizes), strict=True))


def _counts(sizes: dict[str, float], total: int) -> dict[str, int]:
    values = list(sizes.values())
    if any(v < 0 for v in values):
        raise DataError(f"split sizes must not be negative: {sizes}")
    if all(v <= 1 for v in values) and any(v != int(v) for v in values):
        if sum(values) > 1 + 1e-9:
            raise DataError(f"split ratios add up to {sum(values):g} > 1")
        return {k: int(v * total) for k, v in sizes.items()}
    return {k: int(v) for k, v in sizes.items()}


def _quota(want: int, pools: dict[str, list[int]], shares: dict[str, float]) -> dict[str, int]:
    """Per-label counts proportional to the input distribution (largest remainder), capped by what is left."""
    exact = {lab: want * shares[lab] for lab in pools}
    quota = {lab: min(int(x), len(pools[lab])) for lab, x in exact.items()}
    order = sorted(pools, key=lambda lab: (-(exact[lab] - int(exact[lab])), lab))
    while sum(quota.values()) < want:
        grew = False
        for lab in order + sorted(pools, key=lambda lab: -(len(pools[lab]) - quota[lab])):
            if sum(quota.values()) >= want:
                break
            if quota[lab] < len(pools[lab]):
                quota[lab] += 1
                grew = True
        if not grew:
            break
    return quota


def default_key_columns(columns: Sequence[str], stratify: str | None) -> list[str]:
    """Text columns that identify a question: not the label, not ids, not timestamps."""

    def is_meta(name: str) -> bool:
        low = name.lower()
        return low == "id" or low.endswith("_id") or "date" in low or "time" in low

    return [c for c in columns if c != stratify and not is_meta(c)]


def row_key(record: Mapping[str, Any], key_columns: Sequence[str]) -> str:
    return normalize_text("\x1f".join(str(record.get(c, "")) for c in key_columns))


def find_leakage(held_out: Iterable[str], training: Iterable[str]) -> set[str]:
    """Normalized texts present in both collections."""
    held_out_keys = {normalize_text(t) for t in held_out}
    return {k for k in (normalize_text(t) for t in training) if k in held_out_keys}


def assert_no_leakage(splits: Mapping[str, Sequence[str]], holdout: Sequence[str]) -> None:
    """Raise when any held-out text (normalized) appears in a training split."""
    for name in holdout:
        for other, texts in splits.items():
            if other in holdout:
                continue
            leaked = find_leakage(splits.get(name, ()), texts)
            if leaked:
                example = next(iter(sorted(leaked)))[:80]
                raise DataError(f"leakage: {len(leaked)} {name} row(s) also appear in {other} (e.g. {example!r})")


def split_dataset(
    source: DatasetSource | str | Path,
    sizes: Sequence[float | int] | Mapping[str, float | int],
    out_dir: str | Path,
    *,
    names: Sequence[str] | None = None,
    stratify: str | None = "Y",
    seed: int = 0,
    holdout: Sequence[str] = ("eval",),
    augment: Mapping[str, Sequence[str]] | None = None,
    key_columns: Sequence[str] | None = None,
    dedup: bool = False,
    require: Sequence[str] = (),
    auto_column: str | Sequence[str] | None = None,
    leakage: str = "drop-eval",
    settings: NovaflowSettings,
    leakage_threshold: float = DEFAULT_THRESHOLD,
) -> SplitResult:
    """Split ``source`` into named files of the same format; same seed, same split.

    ``require`` names columns that must be non-blank: rows failing it are left out before splitting, so a
    500-row eval split holds 500 usable rows rather than 500 minus the broken ones. ``stratify`` is a column,
    ``"none"`` (or None), or ``"auto"``: ``auto_column`` (the response column) when it has at most
    :data:`MAX_STRATA` distinct values, otherwise no stratification; the report says which and why.

    ``leakage`` decides what happens to held-out rows that are near-copies (estimated Jaccard similarity of their
    key text >= ``leakage_threshold``) of a training row: ``drop-eval`` (default) removes them from the held-out
    split, ``drop-train`` removes the training rows instead, ``keep`` only reports them.
    """
    if leakage not in LEAKAGE_MODES:
        raise DataError(f"leakage {leakage!r}: expected one of {', '.join(LEAKAGE_MODES)}")
    src = source if isinstance(source, DatasetSource) else DatasetSource(path=str(source))
    wanted = parse_sizes(sizes, names)
    with local_copy(src.path, settings=settings) as local:
        _rows, records, bad = read_all_records(src, local)
    if bad:
        raise DataError(
            f"{src.name}: {len(bad)} unreadable row(s) (first: row {bad[0].row}: {bad[0].reason}); "
            "fix them before splitting"
        )
    columns = list(dict.fromkeys(k for r in records[:1000] for k in r))
    stratify, reason = choose_stratify(stratify, records, columns, auto_column)
    if stratify and stratify not in columns:
        raise DataError(f"{src.name}: stratify column {stratify!r} not found; columns: {', '.join(columns)}")
    keys_cols = list(key_columns or default_key_columns(columns, stratify))
    if missing := [c for c in require if c not in columns]:
        raise DataError(f"{src.name}: required column {missing[0]!r} not found; columns: {', '.join(columns)}")
    keys = [row_key(r, keys_cols) for r in records]
    candidates = [i for i, r in enumerate(records) if all(str(r.get(c) or "").strip() for c in require)]
    blank = len(records) - len(candidates)
    duplicates = 0
    if dedup:
        seen: set[str] = set()
        unique = []
        for i in candidates:
            if keys[i] not in seen:
                seen.add(keys[i])
                unique.append(i)
        duplicates = len(candidates) - len(unique)
        candidates = unique
    counts = _counts(wanted, len(candidates))
    if sum(counts.values()) > len(candidates):
        raise DataError(
            f"{src.name}: asked for {sum(counts.values())} rows but only {len(candidates)} are "
            "available" + (" after de-duplication" if dedup else "")
        )
    rng = random.Random(seed)
    rng.shuffle(candidates)
    label_of = [str(r.get(stratify, "")) if stratify else "" for r in records]
    pools: dict[str, list[int]] = {}
    for i in candidates:
        pools.setdefault(label_of[i], []).append(i)
    total = len(candidates)
    shares = {lab: len(p) / total for lab, p in pools.items()} if total else {}
    order = [n for n in counts if n in holdout] + [n for n in counts if n not in holdout]
    chosen: dict[str, list[int]] = {}
    leaked = 0
    held_out_keys: set[str] = set()
    for name in order:
        if name not in holdout and held_out_keys:
            for lab, pool in pools.items():
                kept = [i for i in pool if keys[i] not in held_out_keys]
                leaked += len(pool) - len(kept)
                pools[lab] = kept
            held_out_keys = set()
        quota = _quota(counts[name], pools, shares)
        picked: list[int] = []
        for lab, taken in quota.items():
            picked += pools[lab][:taken]
            pools[lab] = pools[lab][taken:]
        if len(picked) < counts[name]:
            raise DataError(
                f"{src.name}: not enough rows for split {name!r}: wanted {counts[name]}, "
                f"{len(picked)} left after earlier splits and the leakage guard"
            )
        chosen[name] = sorted(picked)
        if name in holdout:
            held_out_keys |= {keys[i] for i in picked}
    final = {name: list(chosen[name]) for name in counts}
    for target, extra in (augment or {}).items():
        if target not in final:
            raise DataError(f"augment target {target!r} is not a split ({', '.join(final)})")
        for name in extra:
            final[target] = final[target] + chosen[name]
    assert_no_leakage({n: [keys[i] for i in idx] for n, idx in final.items()}, [h for h in holdout if h in final])
    near = near_leakage(final, keys, [h for h in holdout if h in final], leakage_threshold)
    near_dropped = _drop_near_copies(final, near, leakage)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fmt = src.resolved_format()
    files = {name: _write(out, name, fmt, [records[i] for i in idx], columns) for name, idx in final.items()}
    report = SplitReport(
        source=src.name,
        seed=seed,
        stratify=stratify,
        stratify_reason=reason,
        key_columns=keys_cols,
        rows_in=len(records),
        sizes={n: len(idx) for n, idx in final.items()},
        labels={n: dict(sorted(Counter(label_of[i] for i in idx).items())) for n, idx in final.items()}
        if stratify
        else {},
        blank_dropped=blank,
        duplicates_dropped=duplicates,
        leakage_dropped=leaked,
        near_leakage=len(near),
        near_leakage_dropped=near_dropped,
        leakage_mode=leakage,
        leakage_threshold=leakage_threshold,
        near_leakage_examples=[
            {
                "holdout": p.holdout,
                "holdout_row": p.holdout_index + 1,
                "training": p.training,
                "training_row": p.training_index + 1,
                "similarity": round(p.similarity, 4),
            }
            for p in near[:LEAKAGE_EXAMPLES]
        ],
        augmented={k: list(v) for k, v in (augment or {}).items()},
    )
    report_file = out / "split_report.json"
    report_file.write_bytes(orjson.dumps(report.model_dump(), option=orjson.OPT_INDENT_2) + b"\n")
    return SplitResult(out, files, report, report_file)


@dataclass(frozen=True)
class NearCopy:
    """A held-out row and a training row whose key texts are near-copies (indexes into the input rows)."""

    holdout: str
    holdout_index: int
    training: str
    training_index: int
    similarity: float


def near_leakage(
    splits: Mapping[str, Sequence[int]], keys: Sequence[str], holdout: Sequence[str], threshold: float
) -> list[NearCopy]:
    """Every (held-out row, training row) pair whose key texts reach ``threshold`` estimated Jaccard similarity
    over word shingles (the MinHash of the near-dedup filter), in held-out row order.

    Exact copies never get here (the exact guard keeps them out of the pools); this catches the edited ones - a
    changed punctuation mark, a signature line, one word - that would let an evaluation question leak into SFT,
    RFT or DPO training and inflate every metric after it.
    """
    held = sorted({i for name in holdout for i in splits.get(name, ())})
    train = sorted({i for name, idx in splits.items() if name not in holdout for i in idx} - set(held))
    if not held or not train:
        return []
    from novaflow.data.lsh import find_near_duplicates  # start-up: numba loads only when splits are compared

    rows = held + train
    tokens = words(string_array([keys[i].replace("\x1f", " ") for i in rows]))
    sigs, has_words = signatures(tokens)
    groups = np.array([0] * len(held) + [1] * len(train), dtype=np.int64)
    found = find_near_duplicates(sigs, has_words, threshold, pairs_between=groups)
    split_of_held = {i: name for name in holdout for i in splits.get(name, ())}
    split_of_train: dict[int, str] = {}
    for name, idx in splits.items():
        if name not in holdout:
            for i in idx:
                split_of_train.setdefault(i, name)  # an augmented row is named by the split it was drawn for
    pairs: list[NearCopy] = []
    for t, h, score in zip(found.rows.tolist(), found.first.tolist(), found.scores.tolist(), strict=True):
        hi, ti = rows[h], rows[t]
        pairs.append(NearCopy(split_of_held[hi], hi, split_of_train[ti], ti, float(score)))
    return sorted(pairs, key=lambda p: (p.holdout_index, p.training_index))


def _drop_near_copies(final: dict[str, list[int]], pairs: Sequence[NearCopy], mode: str) -> int:
    """Apply the leakage mode to the splits in place; returns how many rows were removed."""
    if mode == "keep" or not pairs:
        return 0
    if mode == "drop-eval":
        gone = {p.holdout_index for p in pairs}
        names = {p.holdout for p in pairs}
    else:
        gone = {p.training_index for p in pairs}
        names = set(final) - {p.holdout for p in pairs}
    removed = 0
    for name in names:
        before = len(final[name])
        final[name] = [i for i in final[name] if i not in gone]
        removed += before - len(final[name])
    return removed


def choose_stratify(
    stratify: str | None,
    records: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    auto_column: str | Sequence[str] | None,
) -> tuple[str | None, str]:
    """(the column to stratify by or None, the reason, as the split report says it).

    ``auto_column`` may list candidates (the canonical response names); the first present one is used.
    """
    if stratify is None or stratify.lower() == NONE:
        return None, "not stratified (stratify=none)"
    if stratify != AUTO:
        return stratify, f"stratified by {stratify!r} (asked for)"
    candidates = [auto_column] if isinstance(auto_column, str) else list(auto_column or ())
    auto_column = next((c for c in candidates if c in columns), None)
    if not auto_column:
        return None, "not stratified (automatic: no single response column to stratify by)"
    distinct = len({str(r.get(auto_column, "")) for r in records})
    if distinct <= MAX_STRATA:
        return auto_column, f"stratified by {auto_column!r} (automatic: {distinct} distinct values)"
    return None, (
        f"not stratified (automatic: {auto_column!r} has {distinct} distinct values, more than {MAX_STRATA}; "
        "pass --stratify COLUMN to choose one)"
    )


def _write(out: Path, name: str, fmt: str, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    if fmt == "csv":
        path = out / f"{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "parquet":
        path = out / f"{name}.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path = out / f"{name}.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path
