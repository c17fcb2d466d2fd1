"""Curation filters for ``data prepare``: exact and near duplicates, language, text quality.

Each filter looks at one text per row: the fields the user names (default: the query and the response) joined by
a newline, as a reader of the example sees it. Row-local filters (``language``, ``quality``) run per chunk, where
the chunk is transformed (a worker process when the input is large); the duplicate filters need every row, so a
chunk only contributes 8 bytes (exact) and a 256-byte signature (near) per row, and the duplicates are decided once
all chunks are in (:func:`decide_duplicates`), the first row of each cluster kept. Every removed row is kept in
``rejected.jsonl`` with the filter, its score and, for duplicates, the row it duplicates.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from novaflow.data.arrow_arrays import string_array, take
from novaflow.data.columnar import ChunkOutput
from novaflow.data.lsh import SignatureStore, find_near_duplicates
from novaflow.data.minhash import DEFAULT_THRESHOLD, SHINGLE_WORDS, signatures
from novaflow.data.ngrams import utf8_view, words
from novaflow.data.quality import QualityThresholds, describe, score_quality
from novaflow.data.rejections import Rejection
from novaflow.errors import DataError

FILTER_NAMES = ("dedup", "near-dedup", "language", "quality")
DEFAULT_FIELDS = ("query", "response")
FIELD_NAMES = ("query", "response", "system", "text", "reference_answer", "reasoning")


class CurationConfig(BaseModel):
    """Which filters run, on which fields, with which thresholds (defaults: the reference's where it has one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    filters: tuple[str, ...] = Field((), description=f"Filters to run, in any order: {', '.join(FILTER_NAMES)}.")
    languages: tuple[str, ...] = Field((), description="language: ISO 639-1 codes to keep, e.g. [en, de].")
    fields: tuple[str, ...] = Field(DEFAULT_FIELDS, description="Fields whose text the filters read, joined.")
    near_dedup_threshold: float = Field(DEFAULT_THRESHOLD, gt=0, le=1, description="Jaccard similarity, at least.")
    shingle_words: int = Field(SHINGLE_WORDS, ge=1, description="Words per near-dedup shingle.")
    min_language_percent: int = Field(0, ge=0, le=100, description="CLD2's percent for the kept language, at least.")
    quality: QualityThresholds = Field(default_factory=QualityThresholds)

    @field_validator("filters")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in value if f not in FILTER_NAMES]
        if unknown:
            raise ValueError(f"unknown filter {unknown[0]!r}; known: {', '.join(FILTER_NAMES)}")
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in value if f not in FIELD_NAMES]
        if unknown or not value:
            raise ValueError(f"filter fields must be some of {', '.join(FIELD_NAMES)} (got {', '.join(value)})")
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.filters)

    def uses(self, name: str) -> bool:
        return name in self.filters

    @classmethod
    def parse(cls, spec: str | Sequence[str] | None, **options: Any) -> CurationConfig:
        """``"near-dedup,quality,language=en,de"`` (or its items as a list) -> a config; ``options`` set the rest.

        A ``language=`` value runs to the next filter name, so its codes are separated by commas like the names.
        """
        items = [spec] if isinstance(spec, str) else list(spec or [])
        tokens = [t.strip() for item in items for t in item.split(",") if t.strip()]
        filters: list[str] = []
        languages: list[str] = []
        current = ""
        for token in tokens:
            name, eq, value = token.partition("=")
            if name in FILTER_NAMES:
                current = name
                if name not in filters:
                    filters.append(name)
                if eq and name != "language":
                    raise DataError(f"--filter {token}: only language takes a value (language=en,de)")
                if eq:
                    languages.append(value.strip().lower())
            elif current == "language" and not eq:
                languages.append(token.lower())
            else:
                raise DataError(f"--filter {token}: unknown filter; known: {', '.join(FILTER_NAMES)}")
        if "language" in filters and not [code for code in languages if code]:
            raise DataError("--filter language needs the languages to keep, e.g. language=en or language=en,de")
        quality = options.pop("quality", None) or QualityThresholds()
        return cls(filters=tuple(filters), languages=tuple(c for c in languages if c), quality=quality, **options)


@dataclass
class ChunkCuration:
    """What a chunk hands on for the dataset-wide duplicate filters, one entry per row it kept."""

    keys: npt.NDArray[np.uint64] | None
    """Hash of the row's normalized text (exact duplicates)."""
    signatures: npt.NDArray[np.uint8] | None
    has_words: npt.NDArray[np.bool_] | None


def documents(texts: dict[str, Any], fields: Sequence[str]) -> pa.Array:
    """One text per row: the named fields present in the data, joined by a newline (objects as JSON).

    ``texts`` values are Arrow string arrays (the columnar path hands its own) or Python lists (the record path).
    """
    present = [f for f in fields if f in texts]
    if not present and "text" in texts:
        present = ["text"]  # CPT rows have one field
    if not present:
        raise DataError(
            f"filter fields {', '.join(fields)}: none of them is in this data ({', '.join(sorted(texts))}); "
            "name others with --filter-fields"
        )
    columns = [_strings(texts[f]) for f in present]
    joined = columns[0]
    for column in columns[1:]:
        joined = _join_lines(joined, column)
    return joined


def _join_lines(left: pa.Array, right: pa.Array) -> pa.Array:
    """Each row of ``left``, a newline, the same row of ``right`` (neither has nulls), in one compiled copy (a
    chunk's text is far below the 2 GB a string column's 32-bit offsets hold)."""
    from novaflow.data.kernels import join_pair  # deferred: numba loads only when a filter runs

    data, offsets = join_pair(*utf8_view(left), *utf8_view(right), ord("\n"))
    return pa.StringArray.from_buffers(len(left), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data))


def _strings(values: Any) -> pa.Array:
    if isinstance(values, pa.Array):
        return values if not values.null_count else pc.fill_null(values, "")
    return string_array([v if isinstance(v, str) else _json(v) for v in values])


def _json(value: Any) -> str:
    return "" if value is None else orjson.dumps(value).decode()


@dataclass
class RowVerdicts:
    """Per row of a chunk: None (kept) or (filter, score, reason)."""

    removed: list[tuple[str, float, str] | None]
    curation: ChunkCuration


def judge_chunk(array: pa.Array, config: CurationConfig) -> RowVerdicts:
    """Run the row-local filters on one chunk's documents and compute what the duplicate filters need."""
    n = len(array)
    removed: list[tuple[str, float, str] | None] = [None] * n
    tokens = words(array) if config.uses("quality") or config.uses("near-dedup") else None
    if config.uses("quality"):
        assert tokens is not None
        result = score_quality(array, tokens, config.quality)
        for i, name in enumerate(result.failed):
            if name is not None:
                score = float(result.scores[i])
                removed[i] = ("quality", round(score, 4), describe(name, score, config.quality))
    if config.uses("language"):
        from novaflow.data.language import PREFIX_CHARS, detect_all  # start-up: pycld2 loads only for this filter

        todo = np.flatnonzero(np.fromiter((r is None for r in removed), dtype=bool, count=n))
        wanted = set(config.languages)
        texts = pc.utf8_slice_codeunits(take(array, todo), 0, PREFIX_CHARS).to_pylist()
        codes, percents = detect_all(texts)
        least = config.min_language_percent
        for i, code, percent in zip(todo.tolist(), codes, percents, strict=True):
            if code not in wanted:
                reason = f"language: {code} ({percent}%), not {'/'.join(config.languages)}"
                removed[i] = ("language", percent / 100, reason)
            elif percent < least:
                removed[i] = ("language", percent / 100, f"language: {code} at {percent}% < {least}%")
    kept = np.array([r is None for r in removed], dtype=bool)
    keys = None
    if config.uses("dedup"):
        from novaflow.data.kernels import string_keys  # deferred: numba loads only when a filter runs

        normalized = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.utf8_lower(array), r"\s+", " "))
        keys = string_keys(*utf8_view(normalized))[kept]
    sigs = has_words = None
    if config.uses("near-dedup"):
        assert tokens is not None
        sigs, has_words = signatures(tokens, config.shingle_words)
        sigs, has_words = sigs[kept], has_words[kept]
    return RowVerdicts(removed, ChunkCuration(keys, sigs, has_words))


class DuplicateIndex:
    """The duplicate filters' per-row state across chunks: 8 bytes of key in memory, signatures in a file."""

    def __init__(self, config: CurationConfig) -> None:
        self.config = config
        self._keys: list[npt.NDArray[np.uint64]] = []
        self.store = SignatureStore() if config.uses("near-dedup") else None

    def add(self, curation: ChunkCuration | None) -> None:
        if curation is None:
            return
        if curation.keys is not None:
            self._keys.append(curation.keys)
        if self.store is not None and curation.signatures is not None and curation.has_words is not None:
            self.store.append(curation.signatures, curation.has_words)

    def decide(self) -> list[tuple[int, str, float, int]]:
        """``(line, filter, score, first line)`` for every written line that duplicates an earlier one."""
        out: list[tuple[int, str, float, int]] = []
        exact = np.zeros(0, dtype=np.int64)
        if self._keys:
            keys = np.concatenate(self._keys)
            _, first_index, inverse = np.unique(keys, return_index=True, return_inverse=True)
            firsts = first_index[inverse]
            exact = np.flatnonzero(firsts != np.arange(len(keys)))
            out += [(int(i), "dedup", 1.0, int(firsts[i])) for i in exact]
        if self.store is not None and self.store.rows:
            eligible = self.store.has_words()
            eligible[exact] = False
            found = find_near_duplicates(self.store, eligible, self.config.near_dedup_threshold)
            out += [
                (int(r), "near-dedup", round(float(s), 4), int(f))
                for r, f, s in zip(found.rows, found.first, found.scores, strict=True)
            ]
            self.store.close()
        return sorted(out)


def prompt_keys(prompts: pa.Array) -> array[int]:
    """:func:`~novaflow.data.kernels.string_keys` of each prompt, as the int64 array the report keeps."""
    from novaflow.data.kernels import string_keys  # deferred: numba loads only when a filter runs

    keys = array("q")
    keys.frombytes(string_keys(*utf8_view(prompts)).tobytes())
    return keys


def rejection(source: str, row: int | None, verdict: tuple[str, float, str], record: Any, field: str) -> Rejection:
    name, score, reason = verdict
    return Rejection(source, row, field, reason, record=record, filter=name, score=score)


def curate(output: ChunkOutput, config: CurationConfig, source: str, prompt: str) -> None:
    """Apply the row-local filters to a transformed chunk in place; its removed rows join its rejections.

    The chunk's prompt keys (``prompt``: the field holding the prompt text) become the seed-free
    :func:`~novaflow.data.kernels.string_keys`, comparable whichever process transformed the chunk."""
    if output.texts is None or not output.rows_out:
        output.texts = None
        return
    output.keys = prompt_keys(_strings(output.texts[prompt]))
    docs = documents(output.texts, config.fields)
    verdicts = judge_chunk(docs, config)
    rows: list[int | None] = list(output.rows) if output.rows is not None else [None] * len(docs)
    field = "+".join(f for f in config.fields if f in output.texts) or "text"
    keep: list[int] = []
    for i, verdict in enumerate(verdicts.removed):
        if verdict is None:
            keep.append(i)
            continue
        output.rejected.append(rejection(source, rows[i], verdict, orjson.loads(output.lines[i]), field))
    if len(keep) < len(docs):
        output.subset(keep)
    output.texts = None
    output.curation = verdicts.curation
