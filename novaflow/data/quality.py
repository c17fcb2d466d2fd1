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

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from novaflow.data.ngrams import (
    ASCII_ALNUM,
    SPACE_CHARS,
    WORD_CHARS,
    Tokens,
    byte_gram_counts,
    char_ngrams,
    frequency_bounds,
    ngram_frequencies,
    row_counts,
    utf8_view,
    word_ngrams,
)

F64 = npt.NDArray[np.float64]

URL_PATTERN = r"https?://(?:[a-zA-Z]|[0-9]|[$\-_@.&+]|[!*\\(\\),]|(?:%[0-9a-fA-F][0-9a-fA-F]))+"
"""The reference's URL pattern (NeMo Curator's): http(s) URLs of unreserved and percent-encoded characters."""
_PORN_URL = URL_PATTERN.replace(")+", ")*") + "porn"
_MOJIBAKE_TWO = r"[\x{c0}-\x{df}][\x{80}-\x{bf}]"
_MOJIBAKE_THREE = r"[\x{e0}-\x{ef}][\x{80}-\x{bf}][\x{80}-\x{bf}]"
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
    near-dedup). A passing row's repetition scores may be upper bounds; a failing row's scores are exact."""
    n = len(array)
    lengths = _int_array(pc.utf8_length(array))
    safe = np.maximum(lengths, 1).astype(np.float64)
    url_chars = lengths - _int_array(pc.utf8_length(pc.replace_substring_regex(array, URL_PATTERN, "")))
    url_ratio = np.where(lengths > 0, url_chars / safe, 1.0)
    url_fail = url_ratio > limits.max_url_ratio
    if limits.drop_porn_urls:
        porn = _bool_array(pc.match_substring_regex(array, _PORN_URL))
        url_fail |= porn
    alnum_ratio = np.where(lengths > 0, _alnum_counts(array) / safe, 0.0)
    word_rep = _word_repetition(tokens, limits.word_ngram, limits.max_word_repetition)
    char_rep = _char_repetition(array, limits.char_ngram, limits.max_char_repetition)
    mojibake_chars, bad = _mojibake_counts(array)
    mojibake, badness = mojibake_chars / safe, bad / safe
    average, lines = _line_lengths(array, n)
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


def _mojibake_counts(array: pa.Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per row: characters in mojibake byte patterns (U+FFFD once, 2-byte patterns twice, 3-byte thrice, as the
    reference weighs them) and ftfy's badness count. Each pattern is searched only in the rows that have a byte
    every match needs: ftfy's expression a non-ASCII one (no ASCII string of up to three characters matches it),
    the 2- and 3-byte patterns (U+00C0-U+00EF first) the lead byte 0xC3, U+FFFD its lead byte 0xEF."""
    data, offsets = utf8_view(array)
    moji = np.zeros(len(array), dtype=np.int64)
    bad = np.zeros(len(array), dtype=np.int64)
    wide = np.flatnonzero(row_counts(data >= 0x80, offsets))
    if not len(wide):
        return moji, bad
    bad[wide] = _int_array(pc.count_substring_regex(_rows(array, wide), ftfy_badness_pattern()))
    latin = np.flatnonzero(row_counts(data == 0xC3, offsets))
    if len(latin):
        sub = _rows(array, latin)
        two = _int_array(pc.count_substring_regex(sub, _MOJIBAKE_TWO))
        moji[latin] = 2 * two + 3 * _int_array(pc.count_substring_regex(sub, _MOJIBAKE_THREE))
    replaced = np.flatnonzero(row_counts(data == 0xEF, offsets))
    if len(replaced):
        moji[replaced] += _int_array(pc.count_substring(_rows(array, replaced), "\ufffd"))
    return moji, bad


def _rows(array: pa.Array, which: npt.NDArray[np.intp]) -> pa.Array:
    return array.take(pa.array(which, pa.int64()))


def _alnum_counts(array: pa.Array) -> npt.NDArray[np.int64]:
    """Characters ``str.isalnum()`` accepts, per row: ASCII ones by a byte table over the whole chunk, the others by
    decoding just the non-ASCII characters' code points and looking them up in Python's own answer for each."""
    data, offsets = utf8_view(array)
    counts = row_counts(ASCII_ALNUM[data], offsets)
    starts = np.flatnonzero(data >= 0xC0)  # the lead byte of every non-ASCII character
    if len(starts):
        alnum = starts[_is_alnum(_code_points(data, starts))]
        rows = np.searchsorted(offsets, alnum, side="right") - 1
        counts += np.bincount(rows, minlength=len(array))
    return counts


def _code_points(data: npt.NDArray[np.uint8], starts: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
    """The code points of the (valid UTF-8) multi-byte characters whose lead bytes are at ``starts``."""
    padded = np.concatenate([data, np.zeros(3, dtype=np.uint8)]).astype(np.int64)
    b0, b1, b2, b3 = (padded[starts + k] for k in range(4))
    two = ((b0 & 0x1F) << 6) | (b1 & 0x3F)
    three = ((b0 & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (b2 & 0x3F)
    four = ((b0 & 0x07) << 18) | ((b1 & 0x3F) << 12) | ((b2 & 0x3F) << 6) | (b3 & 0x3F)
    return np.where(b0 < 0xE0, two, np.where(b0 < 0xF0, three, four))


def _is_alnum(points: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    table = _alnum_table()
    out = np.zeros(len(points), dtype=bool)
    low = points < len(table)
    out[low] = table[points[low]]
    for i in np.flatnonzero(~low).tolist():  # beyond the Basic Multilingual Plane: rare
        out[i] = chr(int(points[i])).isalnum()
    return out


@lru_cache(maxsize=1)
def _alnum_table() -> npt.NDArray[np.bool_]:
    """``chr(c).isalnum()`` for every code point of the Basic Multilingual Plane (built once, ~10 ms)."""
    return np.array([chr(c).isalnum() for c in range(0x10000)], dtype=bool)


def _int_array(arr: pa.Array) -> npt.NDArray[np.int64]:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.int64)


def _bool_array(arr: pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def _word_repetition(tokens: Tokens, n: int, limit: float) -> F64:
    """Per row: the share of its word n-gram occurrences whose n-gram occurs more than once (0 under n words).

    Exact for every row that could fail; a row whose upper bound (bucket counts) is within ``limit`` gets the bound.
    """
    hashes, rows = word_ngrams(tokens, n)
    total = np.bincount(rows, minlength=tokens.count)
    bound = _share(np.bincount(rows[frequency_bounds(hashes, rows) > 1], minlength=tokens.count), total)
    suspects = bound > limit
    if not suspects.any():
        return bound
    pick = np.flatnonzero(suspects[rows])
    freq, _ = ngram_frequencies(hashes[pick], rows[pick])
    repeated = np.bincount(rows[pick][freq > 1], minlength=tokens.count)
    return np.where(suspects, _share(repeated, total), bound)


def _share(part: npt.NDArray[np.int64], total: npt.NDArray[np.int64]) -> F64:
    return np.where(total > 0, part / np.maximum(total, 1), 0.0)


def _char_repetition(array: pa.Array, n: int, limit: float) -> F64:
    """Per row: the occurrences of its top ``min(isqrt(distinct), repeated distinct)`` n-grams / all (reference).

    Exact for every row that could fail. The top n-grams are repeated ones, and at most ``isqrt(total)`` are
    counted, so the ratio is at most both ``repeated occurrences / total`` and ``isqrt(total) * highest frequency /
    total``; an n-gram occurs at most as often as its first 8 bytes and repeats only if they do. A row whose bound
    from 8-byte counts is within ``limit`` gets the bound without hashing its n-grams, which is what almost every
    row is (case-study rows: about 1 in 80 is hashed).
    """
    count = len(array)
    data, offsets = utf8_view(array)
    chars = row_counts((data & 0xC0) != 0x80, offsets)
    total = np.maximum(chars - n + 1, 0)
    grams = byte_gram_counts(data, offsets)
    top = np.floor(np.sqrt(total)).astype(np.int64) * grams.highest
    bound = _share(np.minimum(np.minimum(top, grams.repeated), total), total)
    suspects = bound > limit
    if not suspects.any():
        return bound
    which = np.flatnonzero(suspects)
    hashes, sub_rows = char_ngrams(array.take(pa.array(which, pa.int64())), n)  # the suspects' n-grams only
    rows = which[sub_rows]
    freq, first = ngram_frequencies(hashes, rows)
    singles = np.bincount(rows[freq == 1], minlength=count)
    distinct = np.flatnonzero(first & (freq > 1))  # one entry per distinct repeated n-gram, rows ascending
    d_rows, d_freq = rows[distinct], freq[distinct]
    distinct_repeated = np.bincount(d_rows, minlength=count)
    take = np.minimum(np.floor(np.sqrt(singles + distinct_repeated)).astype(np.int64), distinct_repeated)
    order = np.argsort(d_rows * (1 << 32) - d_freq, kind="stable")  # by row, most frequent first
    d_rows, d_freq = d_rows[order], d_freq[order]
    rank = np.arange(len(d_rows)) - np.searchsorted(d_rows, d_rows, side="left")
    top = rank < take[d_rows]
    summed = np.bincount(d_rows[top], weights=d_freq[top].astype(np.float64), minlength=count)
    exact = np.where(total > 0, summed / np.maximum(total, 1), 0.0)
    return np.where(suspects, exact, bound)


def _line_lengths(array: pa.Array, n: int) -> tuple[F64, npt.NDArray[np.int64]]:
    """Mean length of the non-empty lines (split at ``\\n``) and how many there are, per row."""
    lists = pc.split_pattern(array, "\n")
    lengths = _int_array(pc.utf8_length(pc.list_flatten(lists)))
    rows = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    keep = lengths > 0
    lines = np.bincount(rows[keep], minlength=n)
    chars = np.bincount(rows[keep], weights=lengths[keep].astype(np.float64), minlength=n)
    return np.where(lines > 0, chars / np.maximum(lines, 1), 0.0), lines


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
