"""A smoke test right after deployment: send a few rows of the eval set and check the answers parse.

It catches the failures that make a deployment useless while it bills - a container that answers empty text,
a chat template that was lost, a model that answers prose instead of a label - in seconds, not after a full
evaluation. It does not measure quality; the evaluation step does that.

Example:
    >>> report = smoke_test(lambda q, s: invoke_endpoint("nova-sft", q, system=s).text, rows, labels=DEFAULT_LABELS)
    ...                                                                                      # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novaflow import storage
from novaflow.errors import DataError, NovaflowError
from novaflow.settings import NovaflowSettings
from reward_lambda.labels import extract_label

Ask = Callable[[str, "str | None"], str]


@dataclass
class SmokeCase:
    """One row: what was asked, what came back, the label parsed from it (when labels are known)."""

    query: str
    expected: str
    answer: str
    label: str | None
    ok: bool
    error: str | None = None


@dataclass
class SmokeReport:
    """``passed`` when every answer parsed; ``matches`` counts answers equal to the expected label."""

    cases: list[SmokeCase] = field(default_factory=list)
    labels: tuple[str, ...] | None = None

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.ok for c in self.cases)

    @property
    def matches(self) -> int:
        return sum(
            1 for c in self.cases if c.label is not None and c.label == extract_label(c.expected, self.labels or ())
        )

    def summary(self) -> str:
        ok = sum(c.ok for c in self.cases)
        text = f"smoke test: {ok}/{len(self.cases)} answers parsed"
        if self.labels:
            text += f", {self.matches}/{len(self.cases)} equal to the expected label"
        bad = [c for c in self.cases if not c.ok]
        if bad:
            text += "; first failure: " + (bad[0].error or f"unparseable answer {bad[0].answer[:80]!r}")
        return text


def load_eval_rows(location: str | Path, settings: NovaflowSettings, limit: int = 3) -> list[dict[str, Any]]:
    """The first ``limit`` rows of a ``gen_qa.jsonl`` (local path or s3:// URI), each with a non-blank query."""
    name = str(location)
    lines = (
        line
        for _, line in storage.numbered_lines(
            location, settings=settings, hint="expected gen_qa.jsonl from data preparation"
        )
    )
    return _rows(lines, name, limit)


def _rows(lines: Any, name: str, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if len(rows) >= limit:
            break
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{name}, line {number}: not JSON ({exc})") from None
        if not isinstance(row, dict) or not isinstance(row.get("query"), str) or not row["query"].strip():
            raise DataError(f"{name}, line {number}, field 'query': missing or blank")
        rows.append(row)
    if not rows:
        raise DataError(f"{name}: no rows to smoke-test with")
    return rows


def smoke_test(ask: Ask, rows: Sequence[dict[str, Any]], *, labels: Sequence[str] | None = None) -> SmokeReport:
    """Ask each row's query (with its system prompt); an answer is ok when it is non-blank and, with
    ``labels``, names exactly one of them. Errors from ``ask`` are recorded per row, not raised."""
    report = SmokeReport(labels=tuple(labels) if labels else None)
    for row in rows:
        query, expected = row["query"], str(row.get("response", ""))
        try:
            answer = ask(query, row.get("system"))
        except NovaflowError as exc:
            report.cases.append(SmokeCase(query, expected, "", None, ok=False, error=str(exc)))
            continue
        label = extract_label(answer, labels) if labels else None
        ok = bool(answer.strip()) and (label is not None if labels else True)
        report.cases.append(SmokeCase(query, expected, answer, label, ok=ok))
    return report
