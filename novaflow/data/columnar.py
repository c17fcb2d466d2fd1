"""Column-mapped transforms: table rows -> gen_qa, SFT Converse (Nova 1 and 2), RFT and CPT records.

Validation is vectorized over pyarrow string arrays (missing, blank, reserved keywords), so 60,000 rows cost a
handful of array passes instead of 60,000 model instantiations; only valid rows become dicts, and orjson
serializes them (UTF-8 as is, every JSON escape reversible, so text survives byte for byte).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from array import array
from collections import Counter
from collections.abc import Mapping, MutableSequence, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from pyarrow import _compute

from novaflow.catalog import DataFormat
from novaflow.data.arrow_arrays import positions_array, string_array
from novaflow.data.converse import gen_qa_image_problem
from novaflow.data.formats import DEFAULT_RFT_SYSTEM, RESERVED_PATTERN, RESERVED_RE, SCHEMA_VERSION
from novaflow.data.loaders import Chunk
from novaflow.data.rejections import Rejection
from novaflow.data.source import DatasetSource, referenced_columns, template_parts
from novaflow.errors import DataError

BLANK_PATTERN = r"^[\t\n\x0b\x0c\r\x1c-\x1f\x85\p{Z}]*$"
"""Empty or only whitespace, with exactly the characters Python's ``str.strip()`` removes (tested)."""
TEXT_KEYS = ("query", "response", "system", "reasoning", "text", "id", "reference_answer")


@dataclass(frozen=True)
class FieldPlan:
    """How one output field is filled: from a column/template, or a constant."""

    key: str
    spec: str | None
    constant: str | None = None
    required: bool = True
    keywords: bool = False

    @property
    def label(self) -> str:
        return self.spec if self.spec is not None else f"--system ({self.key})"


@dataclass
class ColumnarPlan:
    """Everything decided once per file: which fields, from where, checked how."""

    source: DatasetSource
    data_format: DataFormat
    nova_version: int
    columns: list[str]
    fields: dict[str, FieldPlan]
    metadata: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    images: bool = False
    """gen_qa rows from JSON input that carry ``images`` (list of ``{"data": "data:image/...;base64,..."}``)."""


@dataclass
class ChunkOutput:
    """Serialized valid rows of one chunk plus what the data-quality report needs to know about them."""

    lines: list[bytes]
    rejected: list[Rejection]
    labels: list[str | None] | Mapping[str, int]
    """One label per valid row (None: no label), or already counted (:meth:`packed`)."""
    prompt_chars: MutableSequence[int]
    total_chars: MutableSequence[int]
    keys: MutableSequence[int]
    """A 64-bit key of each prompt text, to count exact duplicates without keeping the texts: ``hash()`` without
    filters (chunk workers share one hash seed, see :mod:`novaflow.data.workers`); with filters the seed-free
    :func:`novaflow.data.kernels.string_keys` (set by :func:`novaflow.data.filters.curate`), so that the calling
    process, whose seed nobody can pass on, transforms chunks beside its workers."""
    features: list[frozenset[str]] | None = None
    """Record path only: the optional features each valid row uses, for the dataset-wide consistency rule."""
    rows: list[int] | None = None
    """Record path only: the row number of each valid row (a consistency rejection names it)."""
    joined: bytes | None = None
    """The lines as one blob, each ending in a newline: what a chunk worker sends back instead of ``lines``."""
    count: int | None = None
    """How many lines ``joined`` holds."""
    texts: dict[str, list[Any]] | None = None
    """The valid rows' field values (query, response, system, text, ...) for the curation filters."""
    curation: Any = None
    """What the dataset-wide duplicate filters need from this chunk (:class:`novaflow.data.filters.ChunkCuration`)."""
    lengths: array[int] | None = None
    """Each line's bytes with its newline, kept by :meth:`packed` when the chunk was curated: the rows the duplicate
    filters drop are cut out of the written file by these, without reading the file to find its lines."""

    @property
    def rows_out(self) -> int:
        return len(self.lines) if self.count is None else self.count

    def blob(self) -> bytes:
        return self.joined if self.joined is not None else joined_lines(self.lines)

    def line_lengths(self) -> array[int] | None:
        """Bytes of each line with its newline (4 bytes a row: a line is a row of an Arrow string array, which
        holds less than 2 GB), or None when the lines were joined without keeping them."""
        if self.lengths is not None or self.joined is not None:
            return self.lengths
        lengths = array("I")
        lengths.frombytes((np.fromiter(map(len, self.lines), dtype=np.uint32, count=len(self.lines)) + 1).tobytes())
        return lengths

    def packed(self) -> ChunkOutput:
        """This output as a chunk worker sends it: lines joined, labels counted, numbers as int64 arrays.

        A few large objects cross a pipe (and are taken in by the caller) far faster than one per row.
        """
        if self.joined is None:
            self.count = len(self.lines)
            if self.curation is not None:
                self.lengths = self.line_lengths()
            self.joined, self.lines = joined_lines(self.lines), []
        if isinstance(self.labels, list):
            counted = Counter(self.labels)
            counted.pop(None, None)
            self.labels = dict(counted)  # type: ignore[arg-type]
        self.prompt_chars = array("q", self.prompt_chars)
        self.total_chars = array("q", self.total_chars)
        self.keys = array("q", self.keys)
        self.texts = None  # used where the chunk was transformed; not worth a trip through the pipe
        return self

    def subset(self, keep: list[int]) -> None:
        """Keep only the valid rows at ``keep`` (ascending), in every per-row field (before :meth:`packed`)."""
        assert self.joined is None and isinstance(self.labels, list)
        self.lines = [self.lines[i] for i in keep]
        self.labels = [self.labels[i] for i in keep]
        self.prompt_chars = array("q", [self.prompt_chars[i] for i in keep])
        self.total_chars = array("q", [self.total_chars[i] for i in keep])
        self.keys = array("q", [self.keys[i] for i in keep])
        if self.features is not None:
            self.features = [self.features[i] for i in keep]
        if self.rows is not None:
            self.rows = [self.rows[i] for i in keep]


def joined_lines(lines: list[bytes]) -> bytes:
    """JSONL: every line followed by a newline (a JSON line never holds a raw newline, so counting them counts rows)."""
    if not lines:
        return b""
    lines.append(b"")
    blob = b"\n".join(lines)
    lines.pop()
    return blob


def plan_columns(
    source: DatasetSource, data_format: DataFormat, nova_version: int, columns: Sequence[str]
) -> ColumnarPlan:
    """Resolve the mapping against the file's columns; a missing mapped column is one clear error."""
    resolved = source.columns.resolved(columns)
    explicit = {
        k
        for k in ("query", "response", "system", "reference_answer", "id", "reasoning", "text")
        if getattr(source.columns, k)
    }
    wanted: dict[str, bool] = {
        DataFormat.EVAL: {"query": True, "response": True, "system": False},
        DataFormat.SFT: {"query": True, "response": True, "system": False, "reasoning": False},
        DataFormat.RFT: {"query": True, "reference_answer": False, "id": False, "system": False},
        DataFormat.CPT: {"text": True},
        DataFormat.MTRL: {"query": True, "reference_answer": False, "id": False, "system": False},
    }[data_format]
    if (
        data_format in (DataFormat.RFT, DataFormat.MTRL)
        and "reference_answer" not in resolved
        and "response" in resolved
    ):
        resolved["reference_answer"] = resolved["response"]
    if data_format is DataFormat.EVAL and "metadata" not in resolved and "metadata" in columns:
        resolved["metadata"] = ("metadata",)
    if data_format is DataFormat.CPT and "text" not in resolved and "query" in resolved:
        resolved["text"] = resolved["query"]
    notes: list[str] = []
    if data_format is DataFormat.SFT and nova_version == 1 and "reasoning" in resolved:
        if "reasoning" in explicit:
            raise DataError(
                f"{source.name}: reasoning content is supported only on nova-lite-2; drop "
                "--map reasoning=... or pick --model nova-lite-2"
            )
        notes.append("column 'reasoning' ignored: reasoning content is Nova 2 only")
        resolved.pop("reasoning")
    plans: dict[str, FieldPlan] = {}
    keywords = data_format in (DataFormat.SFT, DataFormat.RFT)
    for key, required in wanted.items():
        spec = resolved.get(key)
        if key == "system" and source.system_prompt is not None:
            plans[key] = FieldPlan(key, None, constant=source.system_prompt, keywords=keywords)
            continue
        if key == "system" and data_format is DataFormat.RFT and spec is None:
            plans[key] = FieldPlan(key, None, constant=DEFAULT_RFT_SYSTEM, keywords=keywords)
            continue
        if spec is None:
            if required:
                raise DataError(
                    f"{source.name}: no column for '{key}' ({data_format.value}); map one with "
                    f"--map {key}=COLUMN (columns found: {', '.join(columns)})"
                )
            continue
        assert isinstance(spec, str)
        _require_columns(source, key, referenced_columns(spec, columns), columns)
        plans[key] = FieldPlan(key, spec, required=True, keywords=keywords and key not in ("id", "reference_answer"))
    metadata = tuple(resolved.get("metadata", ()))
    if metadata and data_format in (DataFormat.EVAL, DataFormat.RFT):
        _require_columns(source, "metadata", list(metadata), columns)
        clash = {"messages", "id", "reference_answer", "tools"} & set(metadata)
        if data_format is DataFormat.RFT and clash:
            raise DataError(
                f"{source.name}: metadata column(s) {sorted(clash)} would overwrite RFT fields; rename them"
            )
    elif metadata:
        notes.append(f"metadata columns ignored for {data_format.value}: {', '.join(metadata)}")
        metadata = ()
    for plan in plans.values():
        if plan.constant is not None:
            _check_constant(source, plan)
    images = data_format is DataFormat.EVAL and "images" in columns
    return ColumnarPlan(source, data_format, nova_version, list(columns), plans, metadata, notes, images)


def _require_columns(source: DatasetSource, key: str, needed: list[str], columns: Sequence[str]) -> None:
    missing = [c for c in needed if c not in columns]
    if not missing:
        return
    hint = ""
    if len(columns) == 1 and any(d in columns[0] for d in (";", "\t", "|", ",")):
        hint = f"; the header was read as one column - wrong delimiter (now {source.delimiter!r})?"
    raise DataError(
        f"{source.name}: mapped column {missing[0]!r} ({key}) is not in the file; columns found: "
        f"{', '.join(columns)}{hint}"
    )


def _check_constant(source: DatasetSource, plan: FieldPlan) -> None:
    text = plan.constant or ""
    if not text.strip():
        raise DataError(f"{source.name}: the constant system prompt is empty")
    if plan.keywords and (m := RESERVED_RE.search(text)):
        raise DataError(f"{source.name}: the constant system prompt contains the reserved keyword {m.group(0)!r}")


def _table_array(table: pa.Table, name: str, key: str, source: DatasetSource) -> pa.Array:
    column = table.column(name)
    arr = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()  # a CSV block is one chunk: no copy
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_large_string(arr.type) or pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        return arr.cast(pa.string())
    raise DataError(f"{source.name}: column {name!r} ({key}) has type {arr.type}; expected text")


def _record_array(records: list[dict[str, Any]], name: str, key: str, errors: list[str | None]) -> pa.Array:
    out: list[str | None] = []
    for i, rec in enumerate(records):
        value = rec.get(name)
        if isinstance(value, str):
            out.append(value)
            continue
        if key == "id" and isinstance(value, int) and not isinstance(value, bool):
            out.append(str(value))
            continue
        out.append(None)
        if errors[i] is None and value is not None:
            errors[i] = f"{name}|wrong type: expected a string, got {_type_name(value)}"
    return string_array(out)


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", bool: "boolean", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def _field_array(
    chunk: Chunk, plan: FieldPlan, columns: Sequence[str], source: DatasetSource, errors: list[str | None]
) -> pa.Array:
    assert plan.spec is not None
    parts: list[pa.Array | str] = []
    for is_col, text in template_parts(plan.spec, columns):
        if not is_col:
            parts.append(text)
        elif chunk.table is not None:
            parts.append(_table_array(chunk.table, text, plan.key, source))
        else:
            parts.append(_record_array(chunk.records or [], text, plan.key, errors))
    if len(parts) == 1 and not isinstance(parts[0], str):
        return parts[0]
    return _call("binary_join_element_wise", *parts, "")


def transform_chunk(chunk: Chunk, plan: ColumnarPlan) -> ChunkOutput:
    """Validate and convert one chunk; the first failing check of a row is its rejection reason.

    A table chunk without nulls (every CSV chunk) is converted whole while the kernel thread searches it for reserved
    keywords (Arrow's RE2 kernel: a fifth of the chunk's CPU, without the GIL; one kernel call per field, as each GIL
    hand-over costs on a loaded machine); the rows a check then rejects are taken out of the output again. The output
    is the same as converting only the valid rows.
    """
    n = len(chunk)
    source = plan.source
    errors: list[str | None] = [None] * n
    arrays: dict[str, pa.Array] = {}
    for key, fplan in plan.fields.items():
        if fplan.spec is not None:
            arrays[key] = _field_array(chunk, fplan, plan.columns, source, errors)
    reference_objects = _rft_object_answers(chunk, plan, errors)
    images = _eval_images(chunk, errors) if plan.images else None
    whole = chunk.table is not None and not any(a.null_count for a in arrays.values())
    checks = [(key, fplan) for key, fplan in plan.fields.items() if key in arrays]
    searched = [key for key, fplan in checks if fplan.keywords]
    found = None
    if whole and searched:
        started = threading.Lock()
        started.acquire()
        found = _kernel_thread().submit(_reserved_hits, arrays, searched, started)
        started.acquire()  # released once the search is about to run without the GIL: see _reserved_hits
    early = None
    if whole:
        every = list(range(n))
        values = {k: a.to_pylist() for k, a in arrays.items()}
        early = _build(plan, values, _metadata_values(chunk, plan, every), n, [], _str_lengths(values))
    blanks = {key: _matches(arrays[key], BLANK_PATTERN) for key, _ in checks}  # while the search may still run
    reserved_hits = found.result() if found is not None else _reserved_hits(arrays, searched)
    for key, fplan in checks:
        label = fplan.label
        arr = arrays[key]
        if arr.null_count:
            _mark(errors, _call("is_null", arr), f"{label}|missing value for {key}")
        if reference_objects is not None and key == "reference_answer":
            _clear_object_answers(errors, reference_objects, label)
        _mark(errors, blanks[key], f"{label}|empty {key}")
        if key in reserved_hits:
            for i in _true_indexes(reserved_hits[key]):
                if errors[i] is None:
                    m = RESERVED_RE.search(arr[i].as_py())
                    errors[i] = f"{label}|reserved keyword {m.group(0) if m else '?'!r} in {key}"
    valid = [i for i, e in enumerate(errors) if e is None]
    rejected = list(chunk.rejected)
    for i, err in enumerate(errors):
        if err is not None:
            field_name, _, reason = err.partition("|")
            rejected.append(Rejection(source.name, chunk.rows[i], field_name, reason, record=_raw_row(chunk, i)))
    taken = {k: _take(a, valid) for k, a in arrays.items()}
    if early is not None:
        out = early
        out.rejected = rejected
        if len(valid) < n:
            out.subset(valid)
    else:
        values = {k: a.to_pylist() for k, a in taken.items()}
        if reference_objects is not None and "reference_answer" in values:
            references = values["reference_answer"]
            for j, i in enumerate(valid):
                if reference_objects[i] is not None:
                    references[j] = reference_objects[i]
        meta = _metadata_values(chunk, plan, valid)
        out = _build(plan, values, meta, len(valid), rejected, _char_counts(taken))
    out.texts = dict(taken)  # Arrow arrays: the curation filters read them without a round trip through Python
    out.rows = [chunk.rows[i] for i in valid]
    if images is not None:
        out.lines = [
            line[:-1] + b',"images":' + orjson.dumps(images[i]) + b"}" for line, i in zip(out.lines, valid, strict=True)
        ]
    return out


def _reserved_hits(
    arrays: dict[str, pa.Array], keys: list[str], started: threading.Lock | None = None
) -> dict[str, pa.Array]:
    """Where each of ``keys``' values holds a reserved keyword (Arrow's RE2 kernel, null for null): the one check
    that reads every byte with a regular expression, run on the kernel thread beside the caller's Python work.

    ``started`` is released just before the search, and the caller waits for it: otherwise this thread, which
    needs the GIL to begin and again between two fields, got it only when the caller blocked on the result, and the
    search ran after the caller's work instead of beside it (the caller waited a third of its transform time; the
    unfiltered 600,000-row run took 5.4 to 7.0 s before, 4.9 to 5.4 s after). All fields are searched in one
    kernel call over a chunked array for the same reason."""
    if started is not None:
        started.release()
    if len(keys) < 2:
        return {key: _matches(arrays[key], RESERVED_PATTERN) for key in keys}
    found = _matches(pa.chunked_array([arrays[key] for key in keys]), RESERVED_PATTERN).combine_chunks()
    out: dict[str, pa.Array] = {}
    start = 0
    for key in keys:
        out[key] = found.slice(start, len(arrays[key]))
        start += len(arrays[key])
    return out


@functools.cache
def _kernel_thread() -> ThreadPoolExecutor:
    """One thread for Arrow kernels that run beside this thread's Python work (they release the GIL); kept for the
    process's next chunks (starting a thread per chunk cost ~0.1-0.7 ms each on a loaded machine)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="novaflow-kernels")


def _call(kernel: str, *args: Any, options: Any = None) -> Any:
    """Arrow's compute kernel ``kernel`` (``pyarrow.compute.call_function``, defined in ``pyarrow._compute``).

    Start-up: importing ``pyarrow.compute`` builds a Python wrapper with a parsed docstring for each of its ~300
    kernels, ~30 ms of the ~150 ms a small ``data prepare`` may spend above ``import pyarrow``; the few kernels
    used here are called by name instead.
    """
    return _compute.call_function(kernel, list(args), options)


def _matches(arr: pa.Array, pattern: str) -> pa.Array:
    """``pyarrow.compute.match_substring_regex``: where each value matches ``pattern`` (RE2), null for null."""
    return _call("match_substring_regex", arr, options=_compute.MatchSubstringOptions(pattern))


def _mark(errors: list[str | None], mask: pa.Array, message: str) -> None:
    for i in _true_indexes(mask):
        if errors[i] is None:
            errors[i] = message


def _true_indexes(mask: pa.Array) -> list[int]:
    # Kleene AND with validity turns nulls into False; ``fill_null(mask, False)`` would build a Python scalar,
    # which makes pyarrow import pandas (+80 MB resident) just to rule out pandas types.
    # ``true_count`` counts set bits in place: three fewer kernel calls (each a GIL release) per check and chunk
    filled = _call("and_kleene", mask, _call("is_valid", mask)) if mask.null_count else mask
    if not filled.true_count:
        return []
    return _call("indices_nonzero", filled).to_pylist()


def _take(arr: pa.Array, valid: list[int]) -> pa.Array:
    if len(valid) == len(arr):
        return arr
    return _call("take", arr, positions_array(valid))


def _take_values(arr: pa.Array, valid: list[int]) -> list[Any]:
    return _take(arr, valid).to_pylist()


def _char_counts(taken: dict[str, pa.Array]) -> dict[str, np.ndarray]:
    """Characters per value of the text fields the report measures, counted by Arrow (code points, as ``len(str)``
    counts them; valid rows have no nulls there)."""
    counted = ("query", "response", "system", "text")
    return {k: _lengths(a) for k, a in taken.items() if k in counted}


def _str_lengths(values: dict[str, list[Any]]) -> dict[str, np.ndarray]:
    """:func:`_char_counts` of values already in Python (strings, no None): ``len`` is stored in each ``str``, where
    Arrow's ``utf8_length`` reads every byte again (~25 ms of CPU per 60,000 Stack Overflow rows)."""
    counted = ("query", "response", "system", "text")
    return {k: np.fromiter(map(len, v), dtype=np.int64, count=len(v)) for k, v in values.items() if k in counted}


def _lengths(arr: pa.Array) -> np.ndarray:
    """Code points per value, read straight from Arrow's int32 buffer: ``Array.to_numpy`` imports pandas, a fifth of
    a second of every ``data prepare`` for no gain on a null-free number array."""
    lengths = _call("utf8_length", arr)
    if len(lengths) == 0:
        return np.zeros(0, dtype=np.int64)
    if lengths.null_count:
        lengths = _call("fill_null", lengths, 0)
    data = lengths.buffers()[1]
    assert data is not None and lengths.type == pa.int32()
    return np.frombuffer(data, dtype=np.int32, count=len(lengths), offset=lengths.offset * 4).astype(np.int64)


def _rft_object_answers(chunk: Chunk, plan: ColumnarPlan, errors: list[str | None]) -> list[Any] | None:
    """RFT reference answers may be non-empty objects in JSON input; strings take the vectorized path."""
    fplan = plan.fields.get("reference_answer")
    if plan.data_format is not DataFormat.RFT or fplan is None or chunk.records is None:
        return None
    if fplan.spec not in plan.columns:
        return None
    out: list[Any] = []
    for i, rec in enumerate(chunk.records):
        value = rec.get(fplan.spec)
        if isinstance(value, dict):
            out.append(value)
            if not value and errors[i] is None:
                errors[i] = f"{fplan.spec}|empty reference_answer object"
            elif (error := errors[i]) is not None and error.startswith(f"{fplan.spec}|wrong type"):
                errors[i] = None
        else:
            out.append(None)
    return out


def _eval_images(chunk: Chunk, errors: list[str | None]) -> list[Any]:
    """Validate gen_qa ``images``; a row without them is rejected, since every row must have them or none."""
    out: list[Any] = []
    for i, rec in enumerate(chunk.records or []):
        value = rec.get("images")
        out.append(value)
        if errors[i] is not None:
            continue
        if not isinstance(value, list) or not value:
            errors[i] = "images|optional field consistency: other rows have images, this one has none"
            continue
        for j, img in enumerate(value):
            if problem := gen_qa_image_problem(img.get("data") if isinstance(img, dict) else None):
                errors[i] = f"images[{j}].data|{problem}"
                break
    return out


def _clear_object_answers(errors: list[str | None], objects: list[Any], label: str) -> None:
    for i, obj in enumerate(objects):
        if obj and errors[i] == f"{label}|missing value for reference_answer":
            errors[i] = None


def _raw_row(chunk: Chunk, i: int) -> Any:
    if chunk.table is not None:
        return chunk.table.slice(i, 1).to_pylist()[0]
    return (chunk.records or [])[i]


def _metadata_values(chunk: Chunk, plan: ColumnarPlan, valid: list[int]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for name in plan.metadata:
        if chunk.table is not None:
            out[name] = _take_values(chunk.table.column(name).combine_chunks(), valid)
        else:
            records = chunk.records or []
            out[name] = [records[i].get(name) for i in valid]
    return out


def prompt_field(data_format: DataFormat) -> str:
    """The field whose text is a row's prompt for the report (lengths, duplicate keys): ``text`` for CPT."""
    return "text" if data_format is DataFormat.CPT else "query"


def _build(
    plan: ColumnarPlan,
    values: dict[str, list[Any]],
    meta: dict[str, list[Any]],
    n: int,
    rejected: list[Rejection],
    chars: dict[str, np.ndarray],
) -> ChunkOutput:
    system_plan = plan.fields.get("system")
    constant = system_plan.constant if system_plan is not None else None
    systems = values.get("system")
    data_format = plan.data_format
    if data_format is DataFormat.EVAL:
        queries, responses = values["query"], values["response"]
        lines = _eval_lines(queries, responses, systems, constant, _eval_metadata(plan, meta, n))
        labels: list[str | None] = list(responses)
        prompts, answers = queries, responses
    elif data_format is DataFormat.SFT:
        queries, responses = values["query"], values["response"]
        lines = _sft_lines(queries, responses, systems, constant, values.get("reasoning"))
        labels = list(responses)
        prompts, answers = queries, responses
    elif data_format is DataFormat.MTRL:
        queries = values["query"]
        references = values.get("reference_answer")
        lines = task_lines(queries, systems or [constant] * n, values.get("id"), references)
        labels = [a if isinstance(a, str) else None for a in references] if references is not None else [None] * n
        prompts = queries
        answers = [str(a) for a in references] if references is not None else [""] * n
    elif data_format is DataFormat.RFT:
        queries = values["query"]
        references = values.get("reference_answer")
        lines = _rft_lines(queries, systems or [constant] * n, values.get("id"), references, meta)
        labels = [a if isinstance(a, str) else None for a in references] if references is not None else [None] * n
        prompts = queries
        answers = (
            [a if isinstance(a, str) else orjson.dumps(a).decode() for a in references]
            if references is not None
            else [""] * n
        )
    else:
        prompts = values["text"]
        lines = [b'{"text":' + x + b"}" for x in map(orjson.dumps, prompts)]
        labels = [None] * n
        answers = [""] * n
    prompt_key = prompt_field(data_format)
    system_chars = chars["system"] if systems is not None else len(constant) if constant is not None else 0
    prompt_chars = chars[prompt_key] + system_chars
    if data_format in (DataFormat.EVAL, DataFormat.SFT):
        total = prompt_chars + chars["response"]
    else:  # RFT answers may be objects (counted as their JSON text); CPT has none
        total = prompt_chars + np.fromiter(map(len, answers), dtype=np.int64, count=n)
    return ChunkOutput(lines, rejected, labels, _int64s(prompt_chars, n), _int64s(total, n), list(map(hash, prompts)))


def _int64s(values: np.ndarray, n: int) -> array[int]:
    return array("q", np.broadcast_to(values, (n,)).astype(np.int64).tobytes())


# Rows are assembled from pre-serialized pieces: orjson escapes each string once and the constant parts are
# serialized once per file. The result is byte-identical to ``orjson.dumps(dict)`` (the golden files pin it).
_SFT_HEAD = b'{"schemaVersion":"' + SCHEMA_VERSION.encode() + b'"'
_SFT_USER = b',"messages":[{"role":"user","content":[{"text":'
_SFT_ASSISTANT = b'}]},{"role":"assistant","content":['
_SFT_TAIL = b"}]}]}"


def _sft_lines(
    queries: list[str],
    responses: list[str],
    systems: list[str] | None,
    constant: str | None,
    reasoning: list[str] | None,
) -> list[bytes]:
    dumps = orjson.dumps
    if systems is not None:
        heads: list[bytes] | None = [
            _SFT_HEAD + b',"system":[{"text":' + s + b"}]" + _SFT_USER for s in map(dumps, systems)
        ]
        head = b""
    else:
        heads = None
        head = _SFT_HEAD + (b',"system":[{"text":' + dumps(constant) + b"}]" if constant is not None else b"")
        head += _SFT_USER
    query_json = list(map(dumps, queries))
    response_json = list(map(dumps, responses))
    if reasoning is not None:
        mids = [
            _SFT_ASSISTANT + b'{"reasoningContent":{"reasoningText":{"text":' + x + b'}}},{"text":'
            for x in map(dumps, reasoning)
        ]
    else:
        mids = None
    mid = _SFT_ASSISTANT + b'{"text":'
    tail = _SFT_TAIL
    # one comprehension per shape: no per-row branches (600,000 rows: 1.8 s -> 0.7 s of CPU)
    if heads is None and mids is None:
        return [head + query + mid + answer + tail for query, answer in zip(query_json, response_json, strict=True)]
    if heads is None:
        assert mids is not None
        return [
            head + query + middle + answer + tail
            for query, middle, answer in zip(query_json, mids, response_json, strict=True)
        ]
    if mids is None:
        return [
            start + query + mid + answer + tail
            for start, query, answer in zip(heads, query_json, response_json, strict=True)
        ]
    return [
        start + query + middle + answer + tail
        for start, query, middle, answer in zip(heads, query_json, mids, response_json, strict=True)
    ]


def _eval_lines(
    queries: list[str], responses: list[str], systems: list[str] | None, constant: str | None, metas: list[str] | None
) -> list[bytes]:
    dumps = orjson.dumps
    qs = list(map(dumps, queries))
    rs = list(map(dumps, responses))
    n = len(qs)
    sys_parts = (
        [b',"system":' + s for s in map(dumps, systems)]
        if systems is not None
        else [b',"system":' + dumps(constant)] * n
        if constant is not None
        else [b""] * n
    )
    meta_parts = [b',"metadata":' + m for m in map(dumps, metas)] if metas is not None else [b""] * n
    return [b'{"query":' + qs[i] + b',"response":' + rs[i] + sys_parts[i] + meta_parts[i] + b"}" for i in range(n)]


def task_lines(
    queries: list[str], systems: list[str | None], ids: list[str] | None, references: list[Any] | None
) -> list[bytes]:
    """Multi-turn RFT task rows from a table: the prompt as chat messages (the system prompt first, when there is
    one), the reference as ``answer``; without an id column, the id is a hash of the prompt (stable across runs)."""
    out = []
    for i, query in enumerate(queries):
        system = systems[i]
        prompt: Any = [{"role": "system", "content": system}, {"role": "user", "content": query}] if system else query
        task_id = str(ids[i]) if ids is not None else "task-" + hashlib.sha256(query.encode()).hexdigest()[:16]
        row: dict[str, Any] = {"id": task_id, "metadata": {"prompt": prompt}}
        if references is not None and references[i] is not None:
            row["answer"] = references[i] if isinstance(references[i], str) else orjson.dumps(references[i]).decode()
        out.append(orjson.dumps(row))
    return out


def _rft_lines(
    queries: list[str],
    systems: list[str | None],
    ids: list[str] | None,
    references: list[Any] | None,
    meta: dict[str, list[Any]],
) -> list[bytes]:
    dumps = orjson.dumps
    n = len(queries)
    qs = list(map(dumps, queries))
    if len(set(map(id, systems))) == 1 and n:
        sys_parts = [b'"messages":[{"role":"system","content":' + dumps(systems[0])] * n
    else:
        sys_parts = [b'"messages":[{"role":"system","content":' + s for s in map(dumps, systems)]
    id_parts = [b'{"id":' + x + b"," for x in map(dumps, ids)] if ids is not None else [b"{"] * n
    reference_parts = (
        [b',"reference_answer":' + x for x in map(dumps, references)] if references is not None else [b""] * n
    )
    extra = [b""] * n
    for name, col in meta.items():
        key = b"," + dumps(name) + b":"
        extra = [e + key + v for e, v in zip(extra, map(dumps, col), strict=True)]
    return [
        id_parts[i]
        + sys_parts[i]
        + b'},{"role":"user","content":'
        + qs[i]
        + b"}]"
        + reference_parts[i]
        + extra[i]
        + b"}"
        for i in range(n)
    ]


def _eval_metadata(plan: ColumnarPlan, meta: dict[str, list[Any]], n: int) -> list[str] | None:
    """gen_qa metadata is a string: one column's value as is, several columns as a JSON object string."""
    if not meta:
        return None
    if len(meta) == 1:
        (col,) = meta.values()
        return [v if isinstance(v, str) else orjson.dumps(v).decode() for v in col]
    names = list(meta)
    return [orjson.dumps({k: meta[k][i] for k in names}).decode() for i in range(n)]
