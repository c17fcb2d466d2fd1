"""Check a file that is already in a Nova format, row by row, as the service reads it: no mapping, no rewriting.

:func:`~novaflow.data.prepare.prepare_dataset` builds Nova records from any table and drops what it does not
map. A team that already has Converse, DPO, RFT, gen_qa or CPT JSONL wants the other question answered: will AWS
take this file as it is? The row rules are the record path's (:mod:`novaflow.data.converse`) plus the two flat
formats here, and the dataset rule is the same: an optional field is on every row or on none.

Example:
    >>> result = validate_records([{"text": "a document"}], "cpt", "nova-lite-2", source="cpt.jsonl")
    >>> result.ok
    True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from novaflow.catalog import DataFormat, Method, NovaModel, data_format_problem, get_model
from novaflow.data.converse import RowProblem, check_converse, check_rft, gen_qa_image_problem
from novaflow.data.multiturn import check_mtrl
from novaflow.data.rejections import Rejection
from novaflow.errors import DataError

GEN_QA_OPTIONAL = ("system", "images")
"""The optional gen_qa fields every row must have or none (the reference SDK's list: ``metadata`` may vary)."""


def check_cpt(row: dict[str, Any]) -> set[str]:
    """A CPT record is exactly ``{"text": <non-blank string>}``."""
    if extra := sorted(set(row) - {"text"}):
        raise RowProblem(extra[0], f"unexpected key {extra[0]!r}: a CPT record holds only 'text'")
    if "text" not in row:
        raise RowProblem("text", "missing 'text'")
    text = row["text"]
    if not isinstance(text, str):
        raise RowProblem("text", f"wrong type: text must be a string, got {_kind(text)}")
    if not text.strip():
        raise RowProblem("text", "empty text")
    return set()


def check_gen_qa(row: dict[str, Any]) -> set[str]:
    """A gen_qa record: ``query`` and ``response`` strings, optional ``system``/``metadata`` strings and ``images``.

    Other keys are ignored by the evaluation container, as by the Forge SDK's validator. Returns the optional fields
    the row uses.
    """
    for key in ("query", "response"):
        if key not in row or row[key] is None:
            raise RowProblem(key, f"missing '{key}'")
        if not isinstance(row[key], str):
            raise RowProblem(key, f"wrong type: {key} must be a string, got {_kind(row[key])}")
        if not row[key].strip():
            raise RowProblem(key, f"empty {key}")
    used = set()
    for key in ("system", "metadata"):
        if row.get(key) is not None:
            if not isinstance(row[key], str):
                raise RowProblem(key, f"wrong type: {key} must be a string, got {_kind(row[key])}")
            if key in GEN_QA_OPTIONAL:
                used.add(key)
    if row.get("images") is not None:
        images = row["images"]
        if not isinstance(images, list) or not images:
            raise RowProblem("images", "must be a non-empty list of {data: data:image/...;base64,...}")
        for i, image in enumerate(images):
            data = image.get("data") if isinstance(image, dict) else None
            if problem := gen_qa_image_problem(data):
                raise RowProblem(f"images[{i}].data", problem)
        used.add("images")
    return used


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


@dataclass
class ValidationResult:
    """Rows checked, and every rejected row with its field and reason."""

    source: str
    rows: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected


def check_record(row: Any, data_format: DataFormat, model: NovaModel) -> set[str]:
    """The optional features one record uses; :class:`RowProblem` for the first rule it breaks."""
    if not isinstance(row, dict):
        raise RowProblem("row", "must be a JSON object")
    if problem := data_format_problem(model, data_format):
        raise RowProblem("model", problem)
    if data_format is DataFormat.CPT:
        return check_cpt(row)
    if data_format is DataFormat.EVAL:
        return check_gen_qa(row)
    if data_format is DataFormat.RFT:
        return check_rft(row)[1]
    if data_format is DataFormat.MTRL:
        return check_mtrl(row)[1]
    dpo = data_format is DataFormat.DPO
    return check_converse(row, nova_version=model.version, multimodal=model.multimodal, dpo=dpo)


def validate_records(
    rows: Iterable[Any], data_format: DataFormat | Method | str, model: str | NovaModel, *, source: str = "<records>"
) -> ValidationResult:
    """Check every record (numbered from 1) and the optional-field rule across them."""
    return _validate(enumerate(rows, 1), DataFormat.of(data_format), get_model(model), ValidationResult(source))


def _validate(
    numbered: Iterable[tuple[int, Any]], data_format: DataFormat, model: NovaModel, result: ValidationResult
) -> ValidationResult:
    source = result.source
    kept: list[tuple[int, Any, frozenset[str]]] = []
    for number, row in numbered:
        result.rows += 1
        try:
            kept.append((number, row, frozenset(check_record(row, data_format, model))))
        except RowProblem as problem:
            result.rejected.append(Rejection(source, number, problem.field, problem.reason, record=row))
    if data_format is DataFormat.MTRL:
        kept = _unique_task_ids(kept, result)
    counts = Counter(f for _, _, features in kept for f in features)
    for number, row, features in kept:
        for feature, count in sorted(counts.items()):
            if count != len(kept) and (feature in features) != (count * 2 > len(kept)):
                reason = (
                    f"optional field consistency: {feature!r} is in {count} of {len(kept)} rows; "
                    "every row must have it or none"
                )
                result.rejected.append(Rejection(source, number, feature, reason, record=row))
                break
    result.rejected.sort(key=lambda r: r.row or 0)
    return result


def _unique_task_ids(
    kept: list[tuple[int, Any, frozenset[str]]], result: ValidationResult
) -> list[tuple[int, Any, frozenset[str]]]:
    """A multi-turn task's id names its trajectories: a repeated id is rejected (the first one stays)."""
    first: dict[str, int] = {}
    out = []
    for number, row, features in kept:
        task_id = str(row.get("id"))
        if task_id in first:
            reason = f"duplicate id {task_id!r} (first on row {first[task_id]}): task ids must be unique"
            result.rejected.append(Rejection(result.source, number, "id", reason, record=row))
            continue
        first[task_id] = number
        out.append((number, row, features))
    return out


def validate_file(path: str, data_format: DataFormat | Method | str, model: str | NovaModel) -> ValidationResult:
    """:func:`validate_records` over a local JSONL file (row = line number); an unparsable line is rejected."""
    import orjson

    result = ValidationResult(path.rstrip("/").rsplit("/", 1)[-1])
    parsed: list[tuple[int, Any]] = []
    try:
        with open(path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    parsed.append((number, orjson.loads(line)))
                except orjson.JSONDecodeError as exc:
                    result.rows += 1
                    result.rejected.append(Rejection(result.source, number, "line", f"not valid JSON: {exc}"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    return _validate(parsed, DataFormat.of(data_format), get_model(model), result)
