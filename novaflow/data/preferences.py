"""Preference pairs for DPO: from a table (prompt, chosen and rejected columns), or derived from labelled rows.

Nova DPO reads Converse records whose last message holds the candidates with a ``preferenceLabel``. Teams more
often have a table of (prompt, chosen, rejected) - the shape preference datasets are published in - so a row of
such a table becomes that record here, and is then validated exactly like a record written by hand. A team with
labelled data but no pairs gets contrastive pairs: each row's own answer preferred over the answer of another
row that answers differently (chosen by seed, so the same data gives the same pairs).

Example:
    >>> preference_record({"q": "Sort a list?", "y": "HQ", "n": "LQ_EDIT"}, ColumnMap(query="q", chosen="y",
    ...                   rejected="n"), system="Label it.")["messages"][1]["candidates"][0]["preferenceLabel"]
    'preferred'
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from novaflow.data.formats import SCHEMA_VERSION
from novaflow.data.loaders import iter_chunks
from novaflow.data.rejections import Rejection
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.errors import DataError

PAIR_KEYS = ("query", "chosen", "rejected")


def pair_columns(source: DatasetSource, columns: list[str]) -> dict[str, str]:
    """The columns that hold prompt, chosen and rejected answer (and the system prompt, when mapped)."""
    resolved = source.columns.resolved(columns)
    found: dict[str, str] = {}
    for key in (*PAIR_KEYS, "system"):
        value = resolved.get(key)
        if isinstance(value, str):
            if value not in columns:
                raise DataError(
                    f"{source.name}: mapped column {value!r} ({key}) is not in the file; columns found: "
                    f"{', '.join(columns)}"
                )
            found[key] = value
        elif key in PAIR_KEYS:
            raise DataError(
                f"{source.name}: DPO needs a column for '{key}'; map one with --map {key}=COLUMN, or give rows that "
                f"already carry messages with candidates (columns found: {', '.join(columns)})"
            )
    return found


def preference_record(
    row: dict[str, Any], columns: ColumnMap | dict[str, str], system: str | None = None
) -> dict[str, Any]:
    """One table row as the Nova DPO record (validation happens on the record, as for any other)."""
    names = (
        columns if isinstance(columns, dict) else {k: v for k, v in columns.model_dump().items() if isinstance(v, str)}
    )

    def text(key: str) -> Any:
        value = row.get(names.get(key, key))
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    record: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION}
    prompt = system if system is not None else (text("system") if "system" in names else None)
    if prompt:
        record["system"] = [{"text": prompt}]
    record["messages"] = [
        {"role": "user", "content": [{"text": text("query")}]},
        {
            "role": "assistant",
            "candidates": [
                {"content": [{"text": text("chosen")}], "preferenceLabel": "preferred"},
                {"content": [{"text": text("rejected")}], "preferenceLabel": "non-preferred"},
            ],
        },
    ]
    return record


def pair_record(
    source: str, number: int, row: dict[str, Any], names: dict[str, str], system: str | None
) -> dict[str, Any] | Rejection:
    """The DPO record a row of a pairs table stands for, or its rejection when both answers are the same."""
    if str(row.get(names["chosen"])).strip() == str(row.get(names["rejected"])).strip():
        reason = "chosen and rejected are the same answer: a preference pair needs two different answers"
        return Rejection(source, number, names["rejected"], reason, record=row)
    return preference_record(row, names, system)


def pair_field(field: str, names: dict[str, str]) -> str:
    """The table column a problem of the built DPO record comes from (``messages[1].candidates[1]`` -> rejected)."""
    for prefix, key in (("messages[1].candidates[0]", "chosen"), ("messages[1].candidates[1]", "rejected")):
        if field.startswith(prefix):
            return names[key]
    if field.startswith("messages[0]"):
        return names["query"]
    if field.startswith("system"):
        return names.get("system", "--system")
    return field


def derive_pairs(source: DatasetSource, response: str, out: Path, *, seed: int = 0) -> Path:
    """A CSV of the source's rows plus ``chosen`` (the row's answer) and ``rejected`` (another row's different
    answer); rows whose answer no other row differs from are left out."""
    rows: list[dict[str, Any]] = []
    for chunk in iter_chunks(source):
        rows.extend(chunk.table.to_pylist() if chunk.table is not None else (chunk.records or []))
    if rows and response not in rows[0]:
        raise DataError(f"{source.name}: no column {response!r} to derive preference pairs from")
    answers = sorted({str(r.get(response)) for r in rows if r.get(response) not in (None, "")})
    if len(answers) < 2:
        raise DataError(
            f"{source.name}: preference pairs need at least two different answers in {response!r}; give a file "
            "of pairs (data.preferences) instead"
        )
    rng = random.Random(seed)
    kept = []
    for row in rows:
        own = row.get(response)
        if own in (None, ""):
            continue
        others = [a for a in answers if a != str(own)]
        kept.append(
            {
                **{k: "" if v is None else str(v) for k, v in row.items()},
                "chosen": str(own),
                "rejected": rng.choice(others),
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(pa.Table.from_pylist(kept), out)
    return out
