"""The record path: rows that already carry ``messages`` (Converse, OpenAI style, DPO, RFT) are validated whole.

Also enforces optional-field consistency (§5.1: if any row has an optional field, every row must), which is a
property of the dataset rather than of a row; the minority side is rejected so the majority survives.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from novaflow.data.converse import RowProblem, check_converse, check_rft
from novaflow.data.formats import Method
from novaflow.data.openai import openai_to_converse
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


def uses_record_path(method: Method, columns: list[str]) -> bool:
    """DPO always; SFT and RFT when rows already have ``messages``."""
    return method is Method.DPO or (method in (Method.SFT, Method.RFT) and "messages" in columns)


def transform_record(
    source: str, number: int, row: dict[str, Any], method: Method, nova_version: int, multimodal: bool
) -> RecordRow | Rejection:
    try:
        if method is Method.RFT:
            out, features = check_rft(row)
        else:
            out = row if "schemaVersion" in row or method is Method.DPO else openai_to_converse(row, nova_version)
            features = check_converse(out, nova_version=nova_version, multimodal=multimodal, dpo=method is Method.DPO)
    except RowProblem as problem:
        return Rejection(source, number, problem.field, problem.reason, record=row)
    prompt, answer = _texts(out, method)
    label = answer if method is not Method.DPO else None
    return RecordRow(number, out, frozenset(features), label, len(prompt), len(prompt) + len(answer), hash(prompt))


def _texts(out: dict[str, Any], method: Method) -> tuple[str, str]:
    """Prompt text (system + user turns) and the final answer text, for the length statistics."""
    messages = out.get("messages") or []
    if method is Method.RFT:
        prompt = "".join(m["content"] for m in messages if isinstance(m.get("content"), str))
        ra = out.get("reference_answer")
        return prompt, ra if isinstance(ra, str) else ""
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


def enforce_consistency(rows: list[RecordRow], source: str) -> tuple[list[RecordRow], list[Rejection]]:
    """Reject the minority for every optional feature that only some rows use."""
    n = len(rows)
    counts = Counter(f for r in rows for f in r.features)
    keep: list[RecordRow] = []
    rejected: list[Rejection] = []
    for r in rows:
        for feature, count in sorted(counts.items()):
            if count == n:
                continue
            majority_has = count * 2 > n
            if (feature in r.features) != majority_has:
                rejected.append(
                    Rejection(
                        source,
                        r.row,
                        feature,
                        f"optional field consistency: {feature!r} is in {count} of {n} rows; "
                        "every row must have it or none",
                        record=r.out,
                    )
                )
                break
        else:
            keep.append(r)
    return keep, rejected
