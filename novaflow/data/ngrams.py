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

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

_BASE = np.uint64(0x100000001B3)  # odd, so it has an inverse modulo 2**64
_BASE_INVERSE = np.uint64(pow(0x100000001B3, -1, 2**64))
_WORD_BASE = np.uint64(0x9E3779B97F4A7C15)
_WORD_BASE_INVERSE = np.uint64(pow(0x9E3779B97F4A7C15, -1, 2**64))

WORD_CHARS = r"\p{L}\p{N}_"
"""Python's ``\\w`` for str patterns (letters, digits, underscore in any script); RE2's ``\\w`` is ASCII only."""
SPACE_CHARS = r"\t\n\x0b\x0c\r\x1c-\x1f\x85\p{Z}"
"""Python's ``str.split()`` whitespace; RE2's ``\\s`` is ASCII only."""
_EDGE_PUNCTUATION = rf"^[^{WORD_CHARS}{SPACE_CHARS}]+|[^{WORD_CHARS}{SPACE_CHARS}]+$"


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


_CHAR_POWERS = _Powers(_BASE, _BASE_INVERSE)
_WORD_POWERS = _Powers(_WORD_BASE, _WORD_BASE_INVERSE)


def mix(x: U64) -> U64:
    """A bijective 64-bit finalizer (splitmix64): neighbouring inputs get unrelated outputs."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def window_hashes(values: U64, starts: I64, width: int, powers: _Powers) -> U64:
    """Hash of ``values[s:s + width]`` for every ``s`` in ``starts`` (the caller keeps windows inside a row)."""
    n = len(values)
    up, down = powers.get(n + 1)
    prefix = np.zeros(n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.cumsum(values * up[:n], out=prefix[1:])
        return mix((prefix[starts + width] - prefix[starts]) * down[starts])


@dataclass
class Tokens:
    """The words of every row of a chunk, flattened: ``hashes[i]`` is a word of row ``rows[i]`` (rows ascending)."""

    hashes: U64
    rows: I64
    count: int
    """Rows in the chunk (some may have no words)."""

    def per_row(self) -> I64:
        return np.bincount(self.rows, minlength=self.count).astype(np.int64)


def words(texts: pa.Array) -> Tokens:
    """Lower-cased words split at whitespace, with punctuation stripped from both ends; empty words dropped.

    These are the words the reference's repeated-word filter counts, and near-duplicate shingles reuse them, so a
    changed punctuation mark or letter case does not make a row look new.
    """
    lists = pc.utf8_split_whitespace(pc.utf8_lower(texts))
    flat = pc.list_flatten(lists)
    rows = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    stripped = pc.replace_substring_regex(flat, _EDGE_PUNCTUATION, "")
    keep = np.asarray(pc.greater(pc.binary_length(stripped), 0).to_numpy(zero_copy_only=False), dtype=bool)
    return Tokens(string_hashes(stripped)[keep], rows[keep], len(texts))


def string_hashes(strings: pa.Array) -> U64:
    """One stable hash per string of a (null-free) string array, from its UTF-8 bytes."""
    n = len(strings)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    if strings.offset:
        strings = pa.concat_arrays([strings])  # rebase so the offsets start at the data buffer
    offsets_buf, data_buf = strings.buffers()[1], strings.buffers()[2]
    assert offsets_buf is not None
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=n + 1).astype(np.int64)
    size = int(offsets[-1])
    data = (
        np.frombuffer(data_buf, dtype=np.uint8, count=size).astype(np.uint64)
        if data_buf is not None and size
        else np.zeros(0, dtype=np.uint64)
    )
    data = data + np.uint64(1)  # a zero byte must still count
    up, down = _CHAR_POWERS.get(size + 1)
    prefix = np.zeros(size + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.cumsum(data * up[:size], out=prefix[1:])
        starts, ends = offsets[:-1], offsets[1:]
        lengths = (ends - starts).astype(np.uint64)
        return mix((prefix[ends] - prefix[starts]) * down[starts] + lengths * _WORD_BASE)


def word_ngrams(tokens: Tokens, n: int) -> tuple[U64, I64]:
    """Hashes of the n-word windows that lie inside one row, and the row of each."""
    total = len(tokens.hashes)
    if total < n:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    starts = np.arange(total - n + 1, dtype=np.int64)
    inside = tokens.rows[starts] == tokens.rows[starts + n - 1]
    starts = starts[inside]
    return window_hashes(tokens.hashes, starts, n, _WORD_POWERS), tokens.rows[starts]


def code_points(texts: list[str]) -> tuple[U64, I64]:
    """Every character of every text as one uint64 array (code points), and where each text starts."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    joined = "".join(texts).encode("utf-32-le")
    return np.frombuffer(joined, dtype=np.uint32).astype(np.uint64), starts


def char_ngrams(texts: list[str], n: int) -> tuple[U64, I64]:
    """Hashes of the n-character windows inside each text, and the row of each."""
    chars, starts = code_points(texts)
    lengths = np.diff(starts)
    windows = np.maximum(lengths - n + 1, 0)
    rows = np.repeat(np.arange(len(texts), dtype=np.int64), windows)
    if not len(rows):
        return np.zeros(0, dtype=np.uint64), rows
    first = np.repeat(starts[:-1] - np.concatenate(([0], np.cumsum(windows)[:-1])), windows)
    positions = np.arange(len(rows), dtype=np.int64) + first
    return window_hashes(chars + np.uint64(1), positions, n, _CHAR_POWERS), rows


def ngram_frequencies(hashes: U64, rows: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
    """For every occurrence: how often its n-gram occurs in its own row (exact), and whether it is the first
    occurrence of that n-gram in the row.

    Counting by sorting every n-gram of 600,000 rows would cost a minute; most n-grams occur once, so a bincount
    over hashed buckets (8 per n-gram) finds the ones that may repeat, and only those are sorted and counted
    exactly (a bucket collision can only make a single look repeated, never the reverse).
    """
    freq = np.ones(len(hashes), dtype=np.int64)
    first = np.ones(len(hashes), dtype=bool)
    if not len(hashes):
        return freq, first
    with np.errstate(over="ignore"):
        keyed = mix(hashes ^ (rows.astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93)))
    bits = max(int(len(hashes) * 8).bit_length(), 10)
    buckets = (keyed >> np.uint64(64 - bits)).astype(np.int64)
    table = np.bincount(buckets, minlength=1 << bits)
    maybe = np.flatnonzero(table[buckets] > 1)
    if not len(maybe):
        return freq, first
    order = maybe[np.argsort(keyed[maybe], kind="stable")]  # equal keys: the earlier occurrence first
    sorted_keys = keyed[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = sorted_keys[1:] != sorted_keys[:-1]
    group = np.cumsum(new) - 1
    freq[order] = np.bincount(group)[group]
    first[order] = new
    return freq, first
