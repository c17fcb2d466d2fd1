"""Stable 64-bit hashes of words, word n-grams and character n-grams for whole chunks at once, in numpy.

The curation filters (near-duplicates, repeated n-grams) look at every word and every character of every row;
a Python loop over them costs minutes at 600,000 rows. Here a chunk's texts are laid end to end in one buffer and
every substring hash is a difference of two prefix sums (a polynomial hash modulo 2**64, numpy's wrapping
``uint64`` arithmetic), so hashing costs a handful of array passes whatever the number of rows. The hashes are
stable across processes and machines (no ``hash()`` seed), which the sharded run needs: signatures computed on
different instances are compared in a second pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from novaflow.data.hash_bases import CHAR_BASE, WORD_BASE

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

_CHAR_BASE_INVERSE = np.uint64(pow(int(CHAR_BASE), -1, 2**64))

WORD_CHARS = r"\p{L}\p{N}_"
"""Python's ``\\w`` for str patterns (letters, digits, underscore in any script); RE2's ``\\w`` is ASCII only."""
SPACE_CHARS = r"\t\n\x0b\x0c\r\x1c-\x1f\x85\p{Z}"
"""Python's ``str.split()`` whitespace; RE2's ``\\s`` is ASCII only."""


class _Powers:
    """``base**i`` and ``base**-i`` modulo 2**64 for i up to the longest buffer seen (grown by doubling)."""

    def __init__(self, base: np.uint64, inverse: np.uint64) -> None:
        self.base, self.inverse = base, inverse
        self.up = np.ones(1, dtype=np.uint64)
        self.down = np.ones(1, dtype=np.uint64)

    def get(self, n: int) -> tuple[U64, U64]:
        if len(self.up) < n:
            size = max(n, 2 * len(self.up))
            self.up = _geometric(self.base, size)
            self.down = _geometric(self.inverse, size)
        return self.up[:n], self.down[:n]


def _geometric(ratio: np.uint64, size: int) -> U64:
    out = np.empty(size, dtype=np.uint64)
    out[0] = 1
    step = 1
    with np.errstate(over="ignore"):
        while step < size:  # doubling: out[step:2 step] = out[:step] * ratio**step
            factor = out[step - 1] * ratio
            end = min(2 * step, size)
            out[step:end] = out[: end - step] * factor
            step = end
    return out


_CHAR_POWERS = _Powers(CHAR_BASE, _CHAR_BASE_INVERSE)


def mix(x: U64) -> U64:
    """A bijective 64-bit finalizer (splitmix64): neighbouring inputs get unrelated outputs."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


@dataclass
class Tokens:
    """The words of every row of a chunk, flattened: ``hashes[i]`` is a word of row ``rows[i]`` (rows ascending)."""

    hashes: U64
    rows: I64
    count: int
    """Rows in the chunk (some may have no words)."""

    def per_row(self) -> I64:
        return np.bincount(self.rows, minlength=self.count).astype(np.int64)


_ASCII_SPACE = np.zeros(256, dtype=bool)
_ASCII_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True
_ASCII_PUNCTUATION = np.zeros(256, dtype=bool)
_ASCII_PUNCTUATION[[c for c in range(128) if not chr(c).isalnum() and chr(c) != "_" and not chr(c).isspace()]] = True
_WORD_KIND, _SPACE_KIND, _PUNCTUATION_KIND = 0, 1, 2
_BYTE_KIND = np.where(_ASCII_SPACE, _SPACE_KIND, np.where(_ASCII_PUNCTUATION, _PUNCTUATION_KIND, _WORD_KIND)).astype(
    np.uint8
)
ASCII_ALNUM = np.zeros(256, dtype=bool)
ASCII_ALNUM[[c for c in range(128) if chr(c).isalnum()]] = True


def words(texts: pa.Array) -> Tokens:
    """Lower-cased words split at whitespace, with punctuation stripped from both ends; empty words dropped.

    These are the words the reference's repeated-word filter counts, and near-duplicate shingles reuse them, so a
    changed punctuation mark or letter case does not make a row look new. Splitting and stripping run on the
    rows' UTF-8 bytes in one compiled loop a row: whitespace and punctuation are the ASCII ones (a non-ASCII byte is
    part of a word; docs/curation.md#quality notes the difference from Python's Unicode classes), letters are
    lower-cased by Arrow.
    """
    from novaflow.data.kernels import split_words  # deferred: numba loads only when a filter runs

    data, offsets = _utf8(pc.utf8_lower(texts))
    hashes, rows = split_words(data, offsets, _BYTE_KIND)
    return Tokens(hashes, rows, len(texts))


def row_counts(mask: npt.NDArray[np.bool_], offsets: I64) -> I64:
    """How many True values of a per-byte mask fall in each row.

    One ``add.reduceat`` over the rows' starts: a cumulative sum of the bools into int64 measured 50x slower (numpy
    converts every element), and this runs a dozen times a chunk."""
    out = np.zeros(len(offsets) - 1, dtype=np.int64)
    present = np.flatnonzero(offsets[1:] > offsets[:-1])  # reduceat gives an empty row its next value, not 0
    if len(present):
        out[present] = np.add.reduceat(mask, offsets[:-1][present], dtype=np.int64)
    return out


def utf8_view(strings: pa.Array) -> tuple[npt.NDArray[np.uint8], I64]:
    """The UTF-8 bytes of a string array and its offsets (from 0), without a copy where Arrow allows."""
    return _utf8(strings)


def string_hashes(strings: pa.Array) -> U64:
    """One stable hash per string of a string array (nulls hash as empty), from its UTF-8 bytes."""
    if not len(strings):
        return np.zeros(0, dtype=np.uint64)
    data, offsets = _utf8(strings)
    return _range_hashes(data, offsets[:-1], offsets[1:])


def _utf8(strings: pa.Array) -> tuple[npt.NDArray[np.uint8], I64]:
    """The UTF-8 bytes of a string array and its ``n + 1`` offsets into them (starting at 0); a slice is read in
    place (copying it measured 3 ns a byte), nulls are read as empty text. The bytes are always a read-only view
    (Arrow hands some buffers writable, some not): the compiled kernels take one array type, the one warmed."""
    if strings.null_count:
        strings = pa.concat_arrays([pc.fill_null(strings, "")])
    n = len(strings)
    offsets_buf, data_buf = strings.buffers()[1], strings.buffers()[2]
    assert offsets_buf is not None
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=n + 1, offset=4 * strings.offset).astype(np.int64)
    size = int(offsets[-1])
    data = np.frombuffer(data_buf if data_buf is not None and size else b"", dtype=np.uint8, count=size)
    data.flags.writeable = False
    return data[int(offsets[0]) :], offsets - offsets[0]


def char_ngrams(strings: pa.Array, n: int) -> tuple[U64, I64]:
    """Hashes of the n-character windows inside each string (characters are code points, as in Python), and the
    row of each: a window is the byte range from its first character's lead byte to the lead byte after its last."""
    data, offsets = _utf8(strings)
    rows_count = len(offsets) - 1
    lead = np.flatnonzero((data & 0xC0) != 0x80)  # where every character starts
    chars_before = np.searchsorted(lead, offsets)  # characters before each row's first byte
    per_row = np.diff(chars_before)
    windows = np.maximum(per_row - n + 1, 0)
    rows = np.repeat(np.arange(rows_count, dtype=np.int64), windows)
    if not len(rows):
        return np.zeros(0, dtype=np.uint64), rows
    first = np.repeat(chars_before[:-1] - np.concatenate(([0], np.cumsum(windows)[:-1])), windows)
    start_char = np.arange(len(rows), dtype=np.int64) + first
    bounds = np.append(lead, len(data))
    starts, ends = bounds[start_char], bounds[start_char + n]
    return _range_hashes(data, starts, ends), rows


def _range_hashes(data: npt.NDArray[np.uint8], starts: I64, ends: I64) -> U64:
    """Stable hash of every byte range ``data[s:e]``: a difference of prefix sums, with the length mixed in."""
    size = len(data)
    up, down = _CHAR_POWERS.get(size + 1)
    prefix = np.zeros(size + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        weighted = np.multiply(data, up[:size], dtype=np.uint64)  # (byte + 1) * up, without a widened copy
        weighted += up[:size]
        np.cumsum(weighted, out=prefix[1:])
        lengths = (ends - starts).astype(np.uint64)
        return mix((prefix[ends] - prefix[starts]) * down[starts] + lengths * WORD_BASE)


def frequency_bounds(hashes: U64, rows: I64, buckets_per_item: int = 8) -> I64:
    """For every occurrence, an upper bound of how often its n-gram occurs in its row: the count of its bucket in
    a hashed table (a collision can only raise a count, never lower it). Fewer buckets per n-gram mean a table
    that stays in cache and looser bounds."""
    if not len(hashes):
        return np.zeros(0, dtype=np.int64)
    keyed = _row_keyed(hashes, rows)
    bits = max(int(len(hashes) * buckets_per_item).bit_length(), 10)
    buckets = (keyed >> np.uint64(64 - bits)).astype(np.int64)
    return np.bincount(buckets, minlength=1 << bits)[buckets]


GROUP_BYTES = 64 << 10
"""Bytes of text counted in one hashed table by :func:`byte_gram_counts`: with 8 buckets a byte the table (4 MB)
stays in cache and about 1 position in 8 shares a bucket with another sequence (which only loosens the bounds).
One table for a whole 512 KB chunk, as before, measured twice the CPU, and a quarter of the case-study rows came out
as suspects for lack of buckets (here: about 1 in 80)."""


@dataclass
class GramCounts:
    """Per row, from the counts of the 8-byte sequences that start at each character: the highest count, and how
    many characters start a sequence that occurs more than once in the row. Both are upper bounds (a hash
    collision only raises a count)."""

    highest: I64
    repeated: I64


def byte_gram_counts(data: npt.NDArray[np.uint8], offsets: I64, buckets_per_byte: int = 8) -> GramCounts:
    """Count every row's 8-byte sequences (read as one uint64 at each position, keyed with the row) in hashed
    tables, a group of rows at a time.

    This is the cheap first look of the character repetition filter: a 10-character window occurs at most as often
    as its first 8 bytes, and it repeats only if they do.
    """
    n = len(offsets) - 1
    highest = np.zeros(n, dtype=np.int64)
    repeated = np.zeros(n, dtype=np.int64)
    size = len(data)
    if size == 0:
        return GramCounts(highest, repeated)
    padded = np.zeros(size + 16, dtype=np.uint8)
    padded[:size] = data
    lead = (data & 0xC0) != 0x80
    first = 0
    while first < n:  # rows [first, last): about GROUP_BYTES of text (at least one row)
        last = max(int(np.searchsorted(offsets, offsets[first] + GROUP_BYTES, side="right")) - 1, first + 1)
        last = min(last, n)
        lo, hi = int(offsets[first]), int(offsets[last])
        if hi > lo:
            lengths = np.diff(offsets[first : last + 1])
            packed = _grams8(padded, lo, hi)
            rows = np.repeat(np.arange(first, last, dtype=np.uint64), lengths)
            bits = max(int((hi - lo) * buckets_per_byte).bit_length(), 10)
            with np.errstate(over="ignore"):
                keyed = (packed ^ (rows * np.uint64(0x9E3779B97F4A7C15))) * np.uint64(0xBF58476D1CE4E5B9)
            buckets = (keyed >> np.uint64(64 - bits)).astype(np.intp)
            counts = np.bincount(buckets, minlength=1 << bits)[buckets]
            local = offsets[first : last + 1] - lo
            present = np.flatnonzero(lengths > 0)
            highest[first + present] = np.maximum.reduceat(counts, local[:-1][present])
            repeated[first:last] = row_counts(lead[lo:hi] & (counts > 1), local)
        first = last
    return GramCounts(highest, repeated)


def _grams8(padded: npt.NDArray[np.uint8], lo: int, hi: int) -> U64:
    """The 8 bytes at every position of ``padded[lo:hi]`` as one uint64 each: eight interleaved views of the
    buffer (positions ``lo + k``, ``lo + k + 8``, ...), five times faster than copying a strided 8-byte window."""
    out = np.empty(hi - lo, dtype=np.uint64)
    for k in range(min(8, hi - lo)):
        count = len(range(k, hi - lo, 8))
        out[k::8] = padded[lo + k : lo + k + 8 * count].view(np.uint64)
    return out


def sorted_unique(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``np.unique(values)`` by one sort: numpy 2.4's ``np.unique`` hashes integers first and measured 14x slower
    on 100,000 of them (a minute of the 600,000-row near-dedup stage went there)."""
    ordered = np.sort(values)
    keep = np.empty(len(ordered), dtype=bool)
    keep[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _row_keyed(hashes: U64, rows: I64) -> U64:
    with np.errstate(over="ignore"):
        return mix(hashes ^ (rows.astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93)))


def ngram_frequencies(hashes: U64, rows: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
    """For every occurrence: how often its n-gram occurs in its own row (exact), and whether it is the first
    occurrence of that n-gram in the row.

    Most n-grams occur once, so only the occurrences whose :func:`frequency_bounds` exceed one are sorted and
    counted exactly.
    """
    freq = np.ones(len(hashes), dtype=np.int64)
    first = np.ones(len(hashes), dtype=bool)
    if not len(hashes):
        return freq, first
    maybe = np.flatnonzero(frequency_bounds(hashes, rows) > 1)
    if not len(maybe):
        return freq, first
    keyed = _row_keyed(hashes[maybe], rows[maybe])
    local = np.argsort(keyed, kind="stable")  # equal keys: the earlier occurrence first
    order = maybe[local]
    sorted_keys = keyed[local]
    new = np.ones(len(order), dtype=bool)
    new[1:] = sorted_keys[1:] != sorted_keys[:-1]
    group = np.cumsum(new, dtype=np.int32) - 1  # bools summed into int64 measured 16x slower
    freq[order] = np.bincount(group)[group]
    first[order] = new
    return freq, first
