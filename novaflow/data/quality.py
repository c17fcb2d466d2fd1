"""The text-quality filter: the seven sub-filters of the Forge SDK's default text filter, vectorized over a chunk.

The reference (``default_text_filter`` in the curator wheel the Forge SDK bundles) applies, in this order: URL
ratio, alphanumeric ratio, repeated word 10-grams, repeated character 10-grams, mojibake, minimum length and
average line length, each row by row in Python. The defaults in :class:`QualityThresholds` are its defaults
(docs/curation.md#quality lists them with their meaning). Here each sub-filter is a few pyarrow/RE2 or numpy passes
over the whole chunk; a row's reason is the first sub-filter it fails, in the reference's order, with its score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from novaflow.data.arrow_arrays import take
from novaflow.data.ngrams import (
    SPACE_CHARS,
    WORD_CHARS,
    Tokens,
    char_ngrams,
    ngram_frequencies,
    utf8_view,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

URL_PATTERN = r"https?://(?:[a-zA-Z]|[0-9]|[$\-_@.&+]|[!*\\(\\),]|(?:%[0-9a-fA-F][0-9a-fA-F]))+"
"""The reference's URL pattern (NeMo Curator's): http(s) URLs of unreserved and percent-encoded characters."""
_PORN_URL = URL_PATTERN.replace(")+", ")*") + "porn"
SUB_FILTERS = ("url", "alphanumeric", "word-repetition", "char-repetition", "mojibake", "length", "line-length")


class QualityThresholds(BaseModel):
    """Thresholds of the quality sub-filters; the defaults are the reference's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_url_ratio: float = Field(0.2, ge=0, le=1, description="URL characters / all characters, at most.")
    drop_porn_urls: bool = Field(True, description="Drop rows with a URL containing 'porn' (reference default).")
    min_alnum_ratio: float = Field(0.25, ge=0, le=1, description="Letters and digits / all characters, at least.")
    max_word_repetition: float = Field(0.5, ge=0, le=1, description="Share of word n-grams that repeat, at most.")
    word_ngram: int = Field(10, ge=1, description="Words per n-gram for the repetition ratio.")
    max_char_repetition: float = Field(
        0.5, ge=0, le=1, description="Share of character n-grams taken by the most repeated ones, at most."
    )
    char_ngram: int = Field(10, ge=1, description="Characters per n-gram for the repetition ratio.")
    max_mojibake_ratio: float = Field(
        0.05, ge=0, description="Characters in UTF-8-read-as-Latin-1 patterns (and U+FFFD) / all, at most."
    )
    max_badness: float = Field(
        1.0, ge=0, description="ftfy badness (suspicious sequences) per character, at most (reference: 1)."
    )
    min_length: int = Field(50, ge=0, description="Characters, at least.")
    max_length: int | None = Field(None, ge=1, description="Characters, at most (none: no upper bound).")
    min_avg_line_length: float = Field(10, ge=0, description="Mean characters per non-empty line, at least.")
    max_avg_line_length: float | None = Field(None, description="Mean characters per non-empty line, at most.")
    min_lines: int = Field(2, ge=1, description="The minimum mean line length applies from this many lines.")


@dataclass
class QualityResult:
    """Per row: the first sub-filter failed (None: passed) and its score."""

    failed: list[str | None]
    scores: F64


def score_quality(array: pa.Array, tokens: Tokens, limits: QualityThresholds) -> QualityResult:
    """Score every row of a chunk on the seven sub-filters; ``tokens`` are the rows' words (shared with
    near-dedup). A passing row's repetition scores may be upper bounds; a failing row's scores are exact.

    One compiled pass a row (:func:`novaflow.data.kernels.text_counts`) counts characters, letters and digits,
    lines and the repetition bounds, and flags the rows the regular expressions (URLs, mojibake) can match at all;
    Arrow's RE2 then reads only those rows."""
    from novaflow.data.kernels import text_counts, word_repetition  # deferred: numba loads only for filters

    n = len(array)
    if array.null_count:
        array = pa.concat_arrays([pc.fill_null(array, "")])
    data, offsets = utf8_view(array)
    counts = text_counts(data, offsets, _alnum_table(), limits.char_ngram)
    lengths, alnum, lines, line_chars, flags, highest, repeated, mojibake_chars, astral = counts
    safe = np.maximum(lengths, 1).astype(np.float64)
    url_chars = np.zeros(n, dtype=np.int64)
    url_fail = np.zeros(n, dtype=bool)
    linked = np.flatnonzero(flags & _HTTP)
    if len(linked):  # both URL patterns start with http
        sub = _rows(array, linked)
        unlinked = pc.utf8_length(pc.replace_substring_regex(sub, URL_PATTERN, ""))
        url_chars[linked] = lengths[linked] - _int_array(unlinked)
        if limits.drop_porn_urls:
            url_fail[linked] = _bool_array(pc.match_substring_regex(sub, _PORN_URL))
    url_ratio = np.where(lengths > 0, url_chars / safe, 1.0)
    url_fail |= url_ratio > limits.max_url_ratio
    alnum_ratio = np.where(lengths > 0, _add_astral_alnum(alnum, *astral) / safe, 0.0)
    total_words, repeated_words = word_repetition(
        tokens.hashes, tokens.rows, n, limits.word_ngram, limits.max_word_repetition
    )
    word_rep = _share(repeated_words, total_words)
    char_rep = _char_repetition(array, lengths, highest, repeated, limits.char_ngram, limits.max_char_repetition)
    bad = _badness_counts(array, np.flatnonzero(flags & _WIDE))
    mojibake, badness = mojibake_chars / safe, bad / safe
    average = np.where(lines > 0, line_chars / np.maximum(lines, 1), 0.0)
    checks: list[tuple[str, npt.NDArray[np.bool_], F64]] = [
        ("url", url_fail, url_ratio),
        ("alphanumeric", alnum_ratio < limits.min_alnum_ratio, alnum_ratio),
        ("word-repetition", word_rep > limits.max_word_repetition, word_rep),
        ("char-repetition", char_rep > limits.max_char_repetition, char_rep),
        (
            "mojibake",
            (mojibake > limits.max_mojibake_ratio) | (badness > limits.max_badness),
            np.maximum(mojibake, badness),
        ),
        (
            "length",
            (lengths < limits.min_length) | ((lengths > limits.max_length) if limits.max_length else False),
            lengths.astype(np.float64),
        ),
        ("line-length", _line_fail(average, lines, limits), average),
    ]
    failed: list[str | None] = [None] * n
    scores = np.zeros(n, dtype=np.float64)
    for name, mask, values in reversed(checks):  # the first failing sub-filter (reference order) wins
        hit = np.flatnonzero(mask)
        for i in hit.tolist():
            failed[i] = name
        scores[hit] = values[hit]
    return QualityResult(failed, scores)


_HTTP, _WIDE = 1, 2
"""The bits of :func:`novaflow.data.kernels.text_counts`'s per-row flags."""


def _badness_counts(array: pa.Array, wide: npt.NDArray[np.intp]) -> I64:
    """ftfy's badness count of rows ``wide`` (every match holds a non-ASCII character): its expression (in RE2 form)
    read only around the characters every match holds (a few characters each side, :func:`_badness_marks`), not
    over the whole row: 1/80th of the text on the case study, the same matches (a match lies within its width of
    each of its characters). The segments are read with ftfy's own compiled expression: Arrow's RE2 compiles the
    expression (large Unicode classes) again on every call, a chunk's, which made it twice the cost on 465-row
    chunks (60,000 case-study rows: 0.20 s against 0.09 s of CPU). Whole rows (the fallback) still go to RE2, at
    about 400 ns a byte."""
    n = len(array)
    if not len(wide):
        return np.zeros(n, dtype=np.int64)
    marks = _badness_marks()
    if marks is None:  # an ftfy whose expression breaks the assumptions: read the whole rows
        out = np.zeros(n, dtype=np.int64)
        out[wide] = _int_array(pc.count_substring_regex(_rows(array, wide), ftfy_badness_pattern()))
        return out
    from novaflow.data.kernels import pattern_segments  # deferred: numba loads only for filters

    table, reach = marks
    data, offsets = utf8_view(array)
    seg_data, seg_offsets, seg_rows = pattern_segments(data, offsets, wide.astype(np.int64), table, reach)
    if not len(seg_rows):
        return np.zeros(n, dtype=np.int64)
    from ftfy.badness import BADNESS_RE  # deferred: only the quality filter needs ftfy

    segments = pa.StringArray.from_buffers(len(seg_rows), pa.py_buffer(seg_offsets), pa.py_buffer(seg_data))
    counts = np.array([len(BADNESS_RE.findall(text)) for text in segments.to_pylist()], dtype=np.int64)
    return np.bincount(seg_rows, weights=counts, minlength=n).astype(np.int64)


@lru_cache(maxsize=1)
def _badness_marks() -> tuple[npt.NDArray[np.bool_], int] | None:
    """The characters that mark where ftfy's badness expression can match, and how far a match reaches from one.

    Read from the expression's parse tree: every alternative must hold a character class (or literal) of non-ASCII
    characters only; those characters are marked, so every match holds a marked character and lies within
    ``longest match - 1`` characters of it. ``^`` (start of text) is the only anchor allowed: a part that does not
    start its row starts ``reach`` characters before its first mark, on an unmarked character, where no
    alternative anchored at ``^`` (they begin with a marked class) can match. None when an ftfy release breaks this.
    """
    import importlib
    import re

    sre_parse: Any = importlib.import_module("re._parser")  # the standard library's parser of ftfy's expression

    from ftfy.badness import BADNESS_RE  # deferred: only the quality filter needs ftfy

    if BADNESS_RE.flags & re.IGNORECASE:
        return None
    tree = sre_parse.parse(BADNESS_RE.pattern, BADNESS_RE.flags)
    longest = tree.getwidth()[1]
    items = list(tree)
    branches = items[0][1][1] if len(items) == 1 and items[0][0] == sre_parse.BRANCH else [items]
    marked: set[int] = set()
    for branch in branches:
        found = False
        for position, (op, arg) in enumerate(branch):
            if op == sre_parse.AT and not (position == 0 and arg == sre_parse.AT_BEGINNING):
                return None
            points = _explicit_points(op, arg, sre_parse)
            if points is not None and min(points) >= 0x80:
                marked |= points
                found = True
        if not found or longest > 64:
            return None
    table = np.zeros(max(marked) + 1, dtype=bool)
    table[sorted(marked)] = True
    return table, int(longest) - 1


def _explicit_points(op: Any, arg: Any, parser: Any) -> set[int] | None:
    """The code points a literal or a plain character class matches; None for anything else (negated classes,
    categories such as ``\\w``, repeats, groups)."""
    if op == parser.LITERAL:
        return {int(arg)}
    if op != parser.IN:
        return None
    points: set[int] = set()
    for kind, value in arg:
        if kind == parser.LITERAL:
            points.add(int(value))
        elif kind == parser.RANGE:
            points.update(range(int(value[0]), int(value[1]) + 1))
        else:
            return None
    return points or None


def _rows(array: pa.Array, which: npt.NDArray[np.intp]) -> pa.Array:
    return take(array, which)


def _add_astral_alnum(counts: I64, rows: I64, points: I64) -> I64:
    """Add the letters and digits beyond the Basic Multilingual Plane (emoji, historic scripts), which the compiled
    pass lists for Python's own ``str.isalnum``: each distinct code point is looked up once."""
    if not len(points):
        return counts
    distinct, which = np.unique(points, return_inverse=True)
    alnum = np.array([chr(int(p)).isalnum() for p in distinct], dtype=bool)
    return counts + np.bincount(rows[alnum[which]], minlength=len(counts))


@lru_cache(maxsize=1)
def _alnum_table() -> npt.NDArray[np.bool_]:
    """``chr(c).isalnum()`` for every code point of the Basic Multilingual Plane (built once, ~10 ms)."""
    return np.array([chr(c).isalnum() for c in range(0x10000)], dtype=bool)


def _int_array(arr: pa.Array) -> npt.NDArray[np.int64]:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.int64)


def _bool_array(arr: pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def _share(part: npt.NDArray[np.int64], total: npt.NDArray[np.int64]) -> F64:
    return np.where(total > 0, part / np.maximum(total, 1), 0.0)


def _char_repetition(array: pa.Array, chars: I64, highest: I64, repeated: I64, n: int, limit: float) -> F64:
    """Per row: the occurrences of its top ``min(isqrt(distinct), repeated distinct)`` n-grams / all (reference).

    Exact for every row that could fail. The top n-grams are repeated ones, and at most ``isqrt(total)`` are
    counted, so the ratio is at most both ``repeated occurrences / total`` and ``isqrt(total) * highest frequency /
    total``; ``highest`` and ``repeated`` come from counting the windows' first bytes (upper bounds). A row whose
    bound is within ``limit`` gets the bound without hashing its n-grams, which is what almost every row is
    (case-study rows: about 1 in 80 is hashed).
    """
    count = len(array)
    total = np.maximum(chars - n + 1, 0)
    top = np.floor(np.sqrt(total)).astype(np.int64) * highest
    bound = _share(np.minimum(np.minimum(top, repeated), total), total)
    suspects = bound > limit
    if not suspects.any():
        return bound
    which = np.flatnonzero(suspects)
    hashes, sub_rows = char_ngrams(take(array, which), n)  # the suspects' n-grams only
    rows = which[sub_rows]
    freq, first = ngram_frequencies(hashes, rows)
    singles = np.bincount(rows[freq == 1], minlength=count)
    distinct = np.flatnonzero(first & (freq > 1))  # one entry per distinct repeated n-gram, rows ascending
    d_rows, d_freq = rows[distinct], freq[distinct]
    distinct_repeated = np.bincount(d_rows, minlength=count)
    counted = np.minimum(np.floor(np.sqrt(singles + distinct_repeated)).astype(np.int64), distinct_repeated)
    order = np.argsort(d_rows * (1 << 32) - d_freq, kind="stable")  # by row, most frequent first
    d_rows, d_freq = d_rows[order], d_freq[order]
    rank = np.arange(len(d_rows)) - np.searchsorted(d_rows, d_rows, side="left")
    top = rank < counted[d_rows]
    summed = np.bincount(d_rows[top], weights=d_freq[top].astype(np.float64), minlength=count)
    exact = np.where(total > 0, summed / np.maximum(total, 1), 0.0)
    return np.where(suspects, exact, bound)


def _line_fail(average: F64, lines: npt.NDArray[np.int64], limits: QualityThresholds) -> npt.NDArray[np.bool_]:
    fail = lines == 0
    if limits.max_avg_line_length is not None:
        fail |= average > limits.max_avg_line_length
    short = (lines >= limits.min_lines) & (average < limits.min_avg_line_length)
    return np.asarray(fail | short, dtype=bool)


@lru_cache(maxsize=1)
def ftfy_badness_pattern() -> str:
    """ftfy's badness expression in RE2 syntax, so Arrow counts its matches over a whole column at once.

    ftfy writes it in verbose mode with Python's Unicode ``\\s``/``\\w``; RE2 has neither, so the whitespace and
    comments outside character classes are dropped and the two classes are spelled out (a test compares the counts
    with ``ftfy.badness.badness`` row by row).
    """
    from ftfy.badness import BADNESS_RE  # deferred: only the quality filter needs ftfy

    source = BADNESS_RE.pattern
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            pair = source[i : i + 2]
            if not in_class and pair == "\\s":
                out.append(f"[{SPACE_CHARS}]")
            elif not in_class and pair == "\\w":
                out.append(f"[{WORD_CHARS}]")
            else:
                out.append(pair)
            i += 2
            continue
        if in_class:
            in_class = ch != "]" or (bool(out) and out[-1] == "[")
            out.append(ch)
        elif ch == "[":
            in_class = True
            out.append(ch)
        elif ch == "#":
            while i < len(source) and source[i] != "\n":
                i += 1
            continue
        elif not ch.isspace():
            out.append(ch)
        i += 1
    return "".join(out)


def describe(name: str, score: float, limits: QualityThresholds) -> str:
    """The rejection reason for a failed sub-filter: what was measured against which threshold."""
    if name == "url":
        if score > limits.max_url_ratio:
            return f"quality (url): url ratio {score:.3f} > {limits.max_url_ratio}"
        return "quality (url): a pornographic url"

    if name == "alphanumeric":
        return f"quality (alphanumeric): ratio {score:.3f} < {limits.min_alnum_ratio}"
    if name == "word-repetition":
        limit = limits.max_word_repetition
        return f"quality (word-repetition): {limits.word_ngram}-gram repetition {score:.3f} > {limit}"
    if name == "char-repetition":
        limit = limits.max_char_repetition
        return f"quality (char-repetition): {limits.char_ngram}-gram repetition {score:.3f} > {limit}"
    if name == "mojibake":
        return f"quality (mojibake): {score:.3f} per character > {limits.max_mojibake_ratio}"
    if name == "length":
        bound = f"< {limits.min_length}" if score < limits.min_length else f"> {limits.max_length}"
        return f"quality (length): {int(score)} characters {bound}"
    upper = limits.max_avg_line_length or math.inf
    return f"quality (line-length): mean line length {score:.1f} outside [{limits.min_avg_line_length}, {upper}]"
