"""The curation filters' per-row loops, compiled with numba: one pass over each row's UTF-8 bytes instead of a
dozen numpy passes over the whole chunk.

Each kernel states the same definitions as the numpy code it replaced (docs/curation.md#how-the-filters-are-computed),
with the same stable hashes, so signatures and verdicts are the same bytes; tests/unit/data/test_kernels.py
compares them with a plain-Python reading of those definitions. This module imports numba, so only the filters
import it (lazily): a ``data prepare`` without filters never pays for it. ``cache=True`` writes the compiled code
next to the module (``__pycache__``) the first time; the Docker image compiles it at build time
(``python -m novaflow.data.kernels``) because its user cannot write site-packages. ``nogil=True``: the kernels
release the GIL, so threads can run them side by side.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from novaflow.data.hash_bases import CHAR_BASE, WORD_BASE

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

NUM_BINS = 256
EMPTY = np.uint64(1 << 32)
ROTATION_LOW = np.uint8(0x9E3779B1 & 0xFF)
_ONE = np.uint64(1)
_WORD_BASE_INVERSE = np.uint64(pow(int(WORD_BASE), -1, 2**64))
_LOW32 = np.uint64(0xFFFFFFFF)
_LOW8 = np.uint64(0xFF)
_BIN_SHIFT = np.uint64(56)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_GRAM_MIX = np.uint64(0x9E3779B97F4A7C15)
_SPACE, _WORD = 1, 0
_NL = 10


@njit(cache=True, nogil=True, inline="always")
def _mix(x: Any) -> Any:
    """splitmix64's finalizer (:func:`novaflow.data.ngrams.mix`)."""
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


@njit(cache=True, nogil=True)
def split_words(data: Any, offsets: Any, kind: Any) -> Any:  # pragma: no cover - compiled
    """Hashes and rows of every row's words: runs of non-space bytes with punctuation stripped from both ends
    (``kind``: 0 word byte, 1 space, 2 punctuation); a word's hash is that of its byte range."""
    n = len(offsets) - 1
    bound = len(data) // 2 + n + 1
    hashes = np.empty(bound, dtype=np.uint64)
    rows = np.empty(bound, dtype=np.int64)
    count = 0
    for r in range(n):
        first = -1  # the current word's first core byte (-1: none yet in this run of non-space bytes)
        h = np.uint64(0)
        p = _ONE
        word = np.uint64(0)  # the hash of the run's bytes up to its last core byte so far, and their count
        size = 0
        for i in range(offsets[r], offsets[r + 1] + 1):
            k = kind[data[i]] if i < offsets[r + 1] else _SPACE  # the row ends a word
            if k == _SPACE:
                if first >= 0:
                    hashes[count] = _mix(word + np.uint64(size) * WORD_BASE)
                    rows[count] = r
                    count += 1
                    first = -1
                continue
            if first < 0:
                if k != _WORD:
                    continue  # punctuation before the first core byte is stripped
                first = i
                h = np.uint64(0)
                p = _ONE
            h += (np.uint64(data[i]) + _ONE) * p
            p *= CHAR_BASE
            if k == _WORD:  # punctuation after the last core byte is stripped: remember the word up to here
                word = h
                size = i + 1 - first
    return hashes[:count].copy(), rows[:count].copy()


@njit(cache=True, nogil=True, inline="always")
def _run_end(rows: Any, i: int) -> int:
    """The end of the run of words of row ``rows[i]`` that starts at ``i`` (rows ascending)."""
    j = i
    while j < len(rows) and rows[j] == rows[i]:
        j += 1
    return j


@njit(cache=True, nogil=True, inline="always")
def _window(hashes: Any, start: int, width: int) -> Any:
    """Hash of the words ``hashes[start:start + width]``: sum of ``hashes[start + k] * WORD_BASE**k``, mixed."""
    acc = np.uint64(0)
    p = _ONE
    for k in range(width):
        acc += hashes[start + k] * p
        p *= WORD_BASE
    return _mix(acc)


@njit(cache=True, nogil=True)
def _rolling_windows(hashes: Any, start: int, width: int, count: int, out: Any) -> None:  # pragma: no cover
    """:func:`_window` of ``count`` consecutive windows from ``start``, each from the one before: drop the first
    word, divide by the base (times its inverse modulo 2**64), add the next word at the highest power."""
    acc = np.uint64(0)
    p = _ONE
    for k in range(width):
        acc += hashes[start + k] * p
        p *= WORD_BASE
    top = p * _WORD_BASE_INVERSE  # WORD_BASE ** (width - 1)
    out[0] = _mix(acc)
    for s in range(1, count):
        acc = (acc - hashes[start + s - 1]) * _WORD_BASE_INVERSE + hashes[start + s + width - 1] * top
        out[s] = _mix(acc)


@njit(cache=True, nogil=True)
def minhash_signatures(hashes: Any, rows: Any, n: int, shingle: int) -> Any:  # pragma: no cover - compiled
    """One-permutation MinHash of every row's word shingles, densified, lowest byte of each bin kept
    (:func:`novaflow.data.minhash.signatures`); a row of fewer words than a shingle is one shingle of them all."""
    out = np.zeros((n, NUM_BINS), dtype=np.uint8)
    has_words = np.zeros(n, dtype=np.bool_)
    table = np.empty(NUM_BINS, dtype=np.uint64)
    total = len(hashes)
    i = 0
    while i < total:
        r = rows[i]
        j = _run_end(rows, i)
        has_words[r] = True
        table[:] = EMPTY
        if j - i < shingle:
            acc = np.uint64(0)
            for k in range(i, j):
                acc += hashes[k]
            _put(table, _mix(acc))
        else:
            for s in range(i, j - shingle + 1):
                _put(table, _window(hashes, s, shingle))
        _densify_row(table, out[r])
        i = j
    return out, has_words


@njit(cache=True, nogil=True, inline="always")
def _put(table: Any, h: Any) -> None:
    b = np.int64(h >> _BIN_SHIFT)
    v = h & _LOW32
    if v < table[b]:
        table[b] = v


@njit(cache=True, nogil=True)
def _densify_row(table: Any, out: Any) -> None:  # pragma: no cover - compiled
    """An empty bin takes the lowest byte of the next full bin to its right (circularly), plus the distance times
    the rotation's low byte (one-permutation hashing with densification, :mod:`novaflow.data.minhash`)."""
    following = -1
    for j in range(2 * NUM_BINS - 1, -1, -1):
        if table[j % NUM_BINS] != EMPTY:
            following = j
        if j < NUM_BINS:
            if table[j] != EMPTY:
                out[j] = np.uint8(table[j] & _LOW8)
            else:
                low = np.int64(table[following % NUM_BINS] & _LOW8)
                out[j] = np.uint8((low + (following - j) * np.int64(ROTATION_LOW)) & 0xFF)


@njit(cache=True, nogil=True)
def _table_bits(items: int) -> int:  # pragma: no cover - compiled
    bits = 6
    while (1 << bits) < 8 * items and bits < 22:
        bits += 1
    return bits


@njit(cache=True, nogil=True)
def word_repetition(hashes: Any, rows: Any, n: int, width: int, limit: float) -> Any:  # pragma: no cover
    """Per row: word ``width``-grams (inside the row) and how many of them occur more than once in it.

    Counted first in a small hashed table (a collision only raises a count); a row whose bound exceeds ``limit``
    is counted exactly by sorting its n-gram hashes. The counts of a row within ``limit`` may be upper bounds."""
    total = np.zeros(n, dtype=np.int64)
    repeated = np.zeros(n, dtype=np.int64)
    size = len(hashes)
    grams = np.empty(max(size, 1), dtype=np.uint64)
    counts = np.zeros(1 << _table_bits(size), dtype=np.int32)
    i = 0
    while i < size:
        r = rows[i]
        j = _run_end(rows, i)
        windows = j - i - width + 1
        if windows > 0:
            total[r] = windows
            _rolling_windows(hashes, i, width, windows, grams)
            repeated[r] = _repeated_bound(grams, windows, counts)
            if repeated[r] / windows > limit:
                repeated[r] = _repeated_exact(grams[:windows].copy())
        i = j
    return total, repeated


@njit(cache=True, nogil=True)
def _repeated_bound(grams: Any, count: int, counts: Any) -> int:  # pragma: no cover - compiled
    shift = np.uint64(64 - _table_bits(count))
    for s in range(count):
        counts[np.int64(grams[s] >> shift)] += 1
    repeated = 0
    for s in range(count):
        if counts[np.int64(grams[s] >> shift)] > 1:
            repeated += 1
    for s in range(count):
        counts[np.int64(grams[s] >> shift)] = 0
    return repeated


@njit(cache=True, nogil=True)
def _repeated_exact(grams: Any) -> int:  # pragma: no cover - compiled
    grams.sort()
    repeated = 0
    run = 1
    for k in range(1, len(grams) + 1):
        if k < len(grams) and grams[k] == grams[k - 1]:
            run += 1
            continue
        if run > 1:
            repeated += run
        run = 1
    return repeated


@njit(cache=True, nogil=True, inline="always")
def _code_point(data: Any, i: int, b: Any) -> Any:
    """The code point of the (valid UTF-8) multi-byte character whose lead byte ``b`` is at ``data[i]``."""
    if b < 0xE0:
        return ((np.int64(b) & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F)
    if b < 0xF0:
        return ((np.int64(b) & 0x0F) << 12) | ((np.int64(data[i + 1]) & 0x3F) << 6) | (np.int64(data[i + 2]) & 0x3F)
    return (
        ((np.int64(b) & 0x07) << 18)
        | ((np.int64(data[i + 1]) & 0x3F) << 12)
        | ((np.int64(data[i + 2]) & 0x3F) << 6)
        | (np.int64(data[i + 3]) & 0x3F)
    )


@njit(cache=True, nogil=True)
def text_counts(data: Any, offsets: Any, alnum: Any, gram: int) -> Any:  # pragma: no cover - compiled
    """Per row, in one pass over its bytes: characters, alphanumeric characters of the Basic Multilingual Plane
    (``alnum``: ``str.isalnum`` per code point), non-empty lines (split at ``\\n``) and their characters, flags of
    the bytes the regular-expression filters need, and the bounds of the character repetition filter.

    ``flags`` bits: 1 ``http`` occurs, 2 a non-ASCII character, 16 a character beyond the BMP (also listed: rows
    and code points, for the caller to look up). ``mojibake``: characters in UTF-8-read-as-Latin-1 patterns
    (U+00C0-U+00DF then U+0080-U+00BF twice, U+00E0-U+00EF then two of U+0080-U+00BF thrice; their last character
    cannot start another, so every match counts) and U+FFFD once each. ``highest``/``repeated``: counts of the
    last ``min(gram, 8)`` bytes of every ``gram``-character window in a hashed table (a collision only raises a
    count): an n-gram occurs at most as often as its last bytes, and repeats only if they do. Those bytes are read
    from a register of the last 8 bytes as each window ends.
    """
    n = len(offsets) - 1
    chars = np.zeros(n, dtype=np.int64)
    alnums = np.zeros(n, dtype=np.int64)
    lines = np.zeros(n, dtype=np.int64)
    line_chars = np.zeros(n, dtype=np.int64)
    flags = np.zeros(n, dtype=np.int64)
    highest = np.zeros(n, dtype=np.int64)
    repeated = np.zeros(n, dtype=np.int64)
    mojibake = np.zeros(n, dtype=np.int64)
    astral_points = np.empty(len(data) // 4 + 1, dtype=np.int64)
    astral_rows = np.empty(len(data) // 4 + 1, dtype=np.int64)
    astral = 0
    longest = 0
    for r in range(n):
        longest = max(longest, offsets[r + 1] - offsets[r])
    buckets = np.empty(longest + 1, dtype=np.int64)
    counts = np.zeros(1 << _table_bits(longest), dtype=np.int32)
    key_shift = np.uint64(64 - 8 * min(gram, 8))
    eight = np.uint64(8)
    top_byte = np.uint64(56)
    for r in range(n):
        lo = offsets[r]
        hi = offsets[r + 1]
        shift = np.uint64(64 - _table_bits(hi - lo))
        salt = np.uint64(r) * _GRAM_MIX
        c = 0
        a = 0
        line = 0
        f = 0
        m = 0
        before = np.int64(0)  # the code points of the two characters before this one
        last = np.int64(0)
        reg = np.uint64(0)
        for i in range(lo, hi):
            b = data[i]
            if b < 0x80 or b >= 0xC0:  # a character starts here: the window of `gram` characters before it ends
                if c >= gram:
                    bucket = np.int64((((reg >> key_shift) ^ salt) * _M1) >> shift)
                    buckets[c - gram] = bucket
                    counts[bucket] += 1
                c += 1
                if b == _NL:
                    if line:
                        lines[r] += 1
                        line_chars[r] += line
                    line = 0
                    before = last
                    last = np.int64(b)
                else:
                    line += 1
                    if b < 0x80:
                        before = last
                        last = np.int64(b)
                        if alnum[b]:
                            a += 1
                        if b == 0x68 and i + 3 < hi and data[i + 1] == 0x74 and data[i + 2] == 0x74:
                            if data[i + 3] == 0x70:
                                f |= 1
                    else:
                        f |= 2
                        point = _code_point(data, i, b)
                        if b >= 0xF0:
                            f |= 16
                            astral_points[astral] = point
                            astral_rows[astral] = r
                            astral += 1
                            point = np.int64(0)  # U+0000 is not alphanumeric: the caller looks these up
                        if alnum[point]:
                            a += 1
                        if 0x80 <= point < 0xC0:  # U+0080-U+00BF ends a 2- or 3-character mojibake pattern
                            if 0xC0 <= last < 0xE0:
                                m += 2
                            elif 0x80 <= last < 0xC0 and 0xE0 <= before < 0xF0:
                                m += 3
                        elif point == 0xFFFD:
                            m += 1
                        before = last
                        last = point
            reg = (reg >> eight) | (np.uint64(b) << top_byte)
        windows = c - gram + 1
        if windows > 0:
            bucket = np.int64((((reg >> key_shift) ^ salt) * _M1) >> shift)
            buckets[windows - 1] = bucket
            counts[bucket] += 1
            most = 0
            rep = 0
            for s in range(windows):
                got = counts[buckets[s]]
                most = max(most, got)
                if got > 1:
                    rep += 1
            for s in range(windows):
                counts[buckets[s]] = 0
            highest[r] = most
            repeated[r] = rep
        if line:
            lines[r] += 1
            line_chars[r] += line
        chars[r] = c
        alnums[r] = a
        flags[r] = f
        mojibake[r] = m
    astral_found = (astral_rows[:astral].copy(), astral_points[:astral].copy())
    return chars, alnums, lines, line_chars, flags, highest, repeated, mojibake, astral_found


@njit(cache=True, nogil=True)
def pattern_segments(data: Any, offsets: Any, which: Any, table: Any, reach: int) -> Any:  # pragma: no cover
    """The parts of rows ``which`` a pattern can match in: every character ``table`` marks (code points; the
    pattern's every match holds one) with ``reach`` characters on each side, overlapping parts merged. Returns the
    parts' bytes laid end to end, their offsets and the row of each."""
    total = 0
    longest = 0
    for r in which:
        total += offsets[r + 1] - offsets[r]
        longest = max(longest, offsets[r + 1] - offsets[r])
    out = np.empty(total, dtype=np.uint8)
    seg_offsets = np.zeros(total + 1, dtype=np.int32)
    seg_rows = np.empty(total, dtype=np.int64)
    starts = np.empty(longest + 1, dtype=np.int64)
    marked = np.empty(longest + 1, dtype=np.int64)
    size = len(table)
    count = 0
    written = 0
    for r in which:
        lo = offsets[r]
        hi = offsets[r + 1]
        c = 0
        m = 0
        for i in range(lo, hi):
            b = data[i]
            if b >= 0x80 and b < 0xC0:
                continue
            starts[c] = i
            if b >= 0xC0:
                point = _code_point(data, i, b)
                if point < size and table[point]:
                    marked[m] = c
                    m += 1
            elif b < size and table[b]:
                marked[m] = c
                m += 1
            c += 1
        starts[c] = hi
        k = 0
        while k < m:
            first = max(marked[k] - reach, 0)
            last = min(marked[k] + reach + 1, c)
            k += 1
            while k < m and marked[k] - reach <= last:
                last = min(marked[k] + reach + 1, c)
                k += 1
            for i in range(starts[first], starts[last]):
                out[written] = data[i]
                written += 1
            seg_rows[count] = r
            count += 1
            seg_offsets[count] = written
    return out[:written].copy(), seg_offsets[: count + 1].copy(), seg_rows[:count].copy()


@njit(cache=True, nogil=True)
def join_pair(left: Any, left_offsets: Any, right: Any, right_offsets: Any, separator: int) -> Any:  # pragma: no cover
    """Row ``i`` of two string columns joined by one separator byte: the bytes and the offsets of the result
    (Arrow's ``binary_join_element_wise`` measured 3 ns a byte, ten times this copy)."""
    n = len(left_offsets) - 1
    out = np.empty(len(left) + len(right) + n, dtype=np.uint8)
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[0] = 0
    at = 0
    for r in range(n):
        for i in range(left_offsets[r], left_offsets[r + 1]):
            out[at] = left[i]
            at += 1
        out[at] = separator
        at += 1
        for i in range(right_offsets[r], right_offsets[r + 1]):
            out[at] = right[i]
            at += 1
        offsets[r + 1] = at
    return out, offsets


@njit(cache=True, nogil=True)
def string_keys(data: Any, offsets: Any) -> Any:  # pragma: no cover - compiled
    """:func:`novaflow.data.ngrams.string_hashes` of every row, one pass over its bytes: the sum of ``(byte + 1) *
    CHAR_BASE**k`` over the row's bytes (Horner's rule from its last byte), its length times ``WORD_BASE`` added,
    mixed. Four interleaved sums (every fourth byte, base ``CHAR_BASE**4``) keep four multiplications in flight
    instead of waiting on one: ~0.9 ns a byte, half the time of a single sum, against the numpy version's ~8
    (prefix sums over the whole chunk). Exact-dedup keys and the report's prompt keys of a filtered run."""
    n = len(offsets) - 1
    out = np.empty(n, dtype=np.uint64)
    one = np.uint64(1)
    base2 = CHAR_BASE * CHAR_BASE
    base3 = base2 * CHAR_BASE
    base4 = base2 * base2
    for r in range(n):
        lo = offsets[r]
        hi = offsets[r + 1]
        a0 = np.uint64(0)
        a1 = np.uint64(0)
        a2 = np.uint64(0)
        a3 = np.uint64(0)
        i = hi
        while i - 4 >= lo:  # a_k holds the bytes at positions (from lo) = k mod 4 of the part read so far
            i -= 4
            a0 = a0 * base4 + (np.uint64(data[i]) + one)
            a1 = a1 * base4 + (np.uint64(data[i + 1]) + one)
            a2 = a2 * base4 + (np.uint64(data[i + 2]) + one)
            a3 = a3 * base4 + (np.uint64(data[i + 3]) + one)
        acc = a0 + a1 * CHAR_BASE + a2 * base2 + a3 * base3
        while i > lo:  # the first (length mod 4) bytes
            i -= 1
            acc = acc * CHAR_BASE + (np.uint64(data[i]) + one)
        out[r] = _mix(acc + np.uint64(hi - lo) * WORD_BASE)
    return out


def warm() -> None:
    """Compile (or load from the cache) every kernel the filters call, with the argument types they pass: text
    bytes read-only (read in place from Arrow's buffers), offsets and row numbers int64, tables bool, sizes int,
    limits float. tests/unit/data/test_kernels.py checks that a filtered chunk then compiles nothing more."""
    text = "Warm the kernels: one row, two lines.\nhttp://example.com É Ã©\n😀".encode()
    data = np.frombuffer(text, dtype=np.uint8)
    offsets = np.array([0, len(text), len(text)], dtype=np.int64)
    table = np.zeros(0x10000, dtype=np.bool_)
    hashes, rows = split_words(data, offsets, np.zeros(256, dtype=np.uint8))
    minhash_signatures(hashes, rows, 2, 3)
    word_repetition(hashes, rows, 2, 10, 0.5)
    text_counts(data, offsets, table, 10)
    pattern_segments(data, offsets, np.arange(2, dtype=np.int64), table, 6)
    join_pair(data, offsets, data, offsets, 10)
    string_keys(data, offsets)


if __name__ == "__main__":
    warm()
