"""The record path: rows that already carry ``messages`` (Converse, OpenAI style, DPO, RFT) are validated whole.

Also enforces optional-field consistency (if any row has an optional field, every row must), which is a
property of the dataset rather than of a row; the minority side is rejected so the majority survives.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from novaflow.catalog import DataFormat
from novaflow.data.columnar import ChunkOutput
from novaflow.data.converse import RowProblem, check_converse, check_rft
from novaflow.data.loaders import Chunk
from novaflow.data.multiturn import answer_text, check_mtrl, prompt_text
from novaflow.data.openai import openai_to_converse
from novaflow.data.preferences import pair_field, pair_record
from novaflow.data.rejections import Rejection


@dataclass
class RecordRow:
    """A valid row on the record path, kept until the consistency rule has seen every row."""

    row: int
    out: dict[str, Any]
    features: frozenset[str]
    label: str | None
    prompt_chars: int
    total_chars: int
    key: int


def uses_record_path(data_format: DataFormat, columns: list[str]) -> bool:
    """DPO always; multi-turn tasks when rows have ``metadata``; SFT and RFT when rows already have ``messages``."""
    if data_format is DataFormat.MTRL:
        return "metadata" in columns or "prompt" in columns
    return data_format is DataFormat.DPO or (data_format in (DataFormat.SFT, DataFormat.RFT) and "messages" in columns)


def transform_record(
    source: str, number: int, row: dict[str, Any], data_format: DataFormat, nova_version: int, multimodal: bool
) -> RecordRow | Rejection:
    try:
        if data_format is DataFormat.RFT:
            out, features = check_rft(row)
        elif data_format is DataFormat.MTRL:
            out, features = check_mtrl(row)
        else:
            out = (
                row
                if "schemaVersion" in row or data_format is DataFormat.DPO
                else openai_to_converse(row, nova_version)
            )
            features = check_converse(
                out, nova_version=nova_version, multimodal=multimodal, dpo=data_format is DataFormat.DPO
            )
    except RowProblem as problem:
        return Rejection(source, number, problem.field, problem.reason, record=row)
    prompt, answer = _texts(out, data_format)
    label = answer if data_format is not DataFormat.DPO else None
    return RecordRow(number, out, frozenset(features), label, len(prompt), len(prompt) + len(answer), hash(prompt))


def label_of(out: dict[str, Any], data_format: DataFormat) -> str | None:
    """The label the report counts for a valid record: its final answer text (DPO rows have none)."""
    return _texts(out, data_format)[1] if data_format is not DataFormat.DPO else None


def transform_records(
    chunk: Chunk,
    source: str,
    data_format: DataFormat,
    nova_version: int,
    multimodal: bool,
    pairs: dict[str, str] | None = None,
    system: str | None = None,
    texts: bool = False,
) -> ChunkOutput:
    """Validate one chunk on the record path; valid rows come back serialized, with their feature sets.

    ``pairs`` (DPO from a table of prompt, chosen and rejected columns): each row becomes the DPO record it stands
    for and is validated as one; its problems are named by the table's column.
    """
    rejected = list(chunk.rejected)
    labels: list[str | None] = []
    features: list[frozenset[str]] = []
    rows: list[int] = []
    out = ChunkOutput([], rejected, labels, [], [], [], features=features, rows=rows)
    prompts: list[str] = []
    answers: list[str] = []
    if texts:  # the curation filters read the prompt (system and user turns) and the final answer
        out.texts = {"query": prompts, "response": answers}
    interned: dict[frozenset[str], frozenset[str]] = {}
    raw = chunk.records if chunk.records is not None else (chunk.table.to_pylist() if chunk.table is not None else [])
    for number, row in zip(chunk.rows, raw, strict=True):
        if pairs is None:
            item = transform_record(source, number, row, data_format, nova_version, multimodal)
        else:
            built = pair_record(source, number, row, pairs, system)
            if isinstance(built, Rejection):
                item = built
            else:
                item = transform_record(source, number, built, data_format, nova_version, multimodal)
                if isinstance(item, Rejection):
                    item = dataclasses.replace(item, field=pair_field(item.field, pairs), record=row)
        if isinstance(item, Rejection):
            rejected.append(item)
            continue
        out.lines.append(orjson.dumps(item.out))
        labels.append(item.label)
        out.prompt_chars.append(item.prompt_chars)
        out.total_chars.append(item.total_chars)
        out.keys.append(item.key)
        features.append(interned.setdefault(item.features, item.features))
        rows.append(number)
        if texts:
            prompt, answer = _texts(item.out, data_format)
            prompts.append(prompt)
            answers.append(answer)
    return out


def _texts(out: dict[str, Any], data_format: DataFormat) -> tuple[str, str]:
    """Prompt text (system + user turns) and the final answer text, for the length statistics."""
    if data_format is DataFormat.MTRL:
        return prompt_text(out), answer_text(out)
    messages = out.get("messages") or []
    if data_format is DataFormat.RFT:
        prompt = "".join(m["content"] for m in messages if isinstance(m.get("content"), str))
        reference = out.get("reference_answer")
        return prompt, reference if isinstance(reference, str) else ""
    system = "".join(s.get("text", "") for s in out.get("system") or [])
    user = "".join(
        c.get("text", "")
        for m in messages
        if m.get("role") == "user"
        for c in m.get("content") or []
        if isinstance(c, dict) and isinstance(c.get("text"), str)
    )
    last = messages[-1] if messages else {}
    answer = "".join(
        c.get("text", "") for c in last.get("content") or [] if isinstance(c, dict) and isinstance(c.get("text"), str)
    )
    return system + user, answer


def consistency_drops(features: Sequence[frozenset[str]]) -> list[tuple[int, str, str]]:
    """``(index, feature, reason)`` for every row on the minority side of an optional feature only some rows use.

    Needs only each row's feature set, so the record path can keep those instead of the records.
    """
    n = len(features)
    counts = Counter(f for row in features for f in row)
    partial = sorted((feature, count) for feature, count in counts.items() if count != n)
    drops: list[tuple[int, str, str]] = []
    if not partial:
        return drops
    for index, row in enumerate(features):
        for feature, count in partial:
            if (feature in row) != (count * 2 > n):
                reason = (
                    f"optional field consistency: {feature!r} is in {count} of {n} rows; every row must have it or none"
                )
                drops.append((index, feature, reason))
                break
    return drops
