"""The compiled loops of the near-duplicate decision (:mod:`novaflow.data.lsh`): band keys, the grouping of a
band, the verification of its candidates, the union-find. A module of its own so that numba is imported only when
the decision runs - not by a plain ``data prepare``, nor by the chunk workers, which only compute signatures.

Each loop is ``cache=True``: compiled once per install (about 2-3 s), loaded from the cache afterwards;
``python -m novaflow.data.lsh`` compiles them all ahead (an image's build step)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

WORDS = 32
"""A 256-byte signature row as 64-bit words: bytes are compared eight at a time."""
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_HIGH = np.uint64(0x8080808080808080)
_ONES = np.uint64(0x0101010101010101)


@njit(cache=True, nogil=True, inline="always")
def _mix(x: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    """splitmix64's finalizer, as :func:`novaflow.data.ngrams.mix` (bijective: equal keys iff equal inputs).

    Not imported from ``kernels``: numba's on-disk cache is keyed on this file alone, so a compiled function
    calling another module's would keep running the old code after that module changed."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


@njit(cache=True, nogil=True, inline="always")
def _band_key(sigs: U8, words: U64, row: np.int64, band: int, per_band: int) -> np.uint64:  # pragma: no cover
    """The band's bytes read as little-endian 64-bit words (exact up to 8 bytes a band), chained, mixed with the
    band number: the key the candidate groups are formed by. A band of at most 8 bytes is cut from the one or two
    aligned words it spans (a fifth of reading its bytes one by one)."""
    base = band * per_band
    if per_band <= 8:
        word = words[row, base // 8] >> np.uint64(8 * (base % 8))
        if base % 8 + per_band > 8:
            word |= words[row, base // 8 + 1] << np.uint64(64 - 8 * (base % 8))
        if per_band < 8:
            word &= (np.uint64(1) << np.uint64(8 * per_band)) - np.uint64(1)
        return _mix(word + np.uint64(band) * _GOLDEN)
    key = np.uint64(0)
    for w in range((per_band + 7) // 8):
        word = np.uint64(0)
        for j in range(min(8, per_band - 8 * w)):
            word |= np.uint64(sigs[row, base + 8 * w + j]) << np.uint64(8 * j)
        key = word if w == 0 else _mix(key) ^ word
    return _mix(key + np.uint64(band) * _GOLDEN)


@njit(cache=True, nogil=True, inline="always")
def _find_root(parent: I64, row: int) -> int:  # pragma: no cover - compiled
    while parent[row] != row:
        parent[row] = parent[parent[row]]  # path halving: chains stay short
        row = parent[row]
    return row


@njit(cache=True, nogil=True, inline="always")
def _close(words: U64, a: int, b: int, allowed: int) -> bool:  # pragma: no cover - compiled
    """Whether at most ``allowed`` of the 256 bytes differ. All 32 words are compared without a branch: stopping
    early at the word where the count passes ``allowed`` measured 2.5x slower (the four cache lines of a row are
    then fetched one after another, and the exit mispredicts)."""
    differ = np.int64(0)
    for w in range(WORDS):
        x = words[a, w] ^ words[b, w]
        flags = (((x & _LOW7) + _LOW7) | x) & _HIGH  # high bit of each byte: set where the byte of x is not 0
        differ += np.int64(((flags >> np.uint64(7)) * _ONES) >> np.uint64(56))
    return bool(differ <= allowed)


@njit(cache=True, nogil=True, inline="always")
def _candidate(
    words: U64, a: int, b: int, count: int, allowed: int,
    parent: I64, between: bool, groups: I64, out: I64, found: int,
) -> int:  # fmt: skip  # pragma: no cover - compiled
    """Verify one candidate pair and record it: joined (clusters) or appended to ``out`` (pairs between groups).
    Returns the new length of ``out``. The pair is compared before anything else is looked up: nearly every
    candidate is false, and remembering rejected pairs (tried: a 2 MB hash set, the last three rejected partners
    of each row) cost more than the comparisons it saved, though 8 of the 22 million candidates at 600,000 rows
    repeat an earlier band's."""
    if between and groups[a] == groups[b]:
        return found
    if not _close(words, a, b, allowed):
        return found
    if between:
        out[found] = min(a, b) * count + max(a, b)
        return found + 1
    root_a, root_b = _find_root(parent, a), _find_root(parent, b)
    if root_a < root_b:
        parent[root_b] = root_a
    elif root_b < root_a:
        parent[root_a] = root_b
    return found


@njit(cache=True, nogil=True)
def band_keys(sigs: U8, words: U64, rows: I64, band: int, per_band: int, out: U64) -> None:  # pragma: no cover
    """``out[i]``: the key of ``rows[i]`` in ``band``, read from the mapped signatures in row order (one cache line
    a row; measured 10 ms a band at 600,000 rows, less than writing and reading back every band's keys)."""
    for i in range(len(rows)):
        out[i] = _band_key(sigs, words, rows[i], band, per_band)


_BUCKET_ROWS = 256
"""Rows a band's keys are partitioned into buckets of, on average, by their top bits: each bucket is grouped in a
hash table small enough for the core's cache (one table for 600,000 rows is 16 MB of cache misses)."""


@njit(cache=True, nogil=True)
def group_band(keys: U64, leader: I32, previous: I32) -> None:  # pragma: no cover - compiled
    """For each position ``i`` of ``keys``: ``leader[i]`` and ``previous[i]``, the first and the last earlier
    position with the same key (-1 for the first of its key). A stable counting partition by the keys' top bits,
    then a small open-addressing table per bucket (the keys are mixed, so the bits spread evenly)."""
    count = len(keys)
    bits = 1
    while (count >> bits) > _BUCKET_ROWS:
        bits += 1
    shift = np.uint64(64 - bits)
    buckets = 1 << bits
    starts = np.zeros(buckets + 1, dtype=np.int64)
    for i in range(count):
        starts[np.int64(keys[i] >> shift) + 1] += 1
    for b in range(buckets):
        starts[b + 1] += starts[b]
    fill = starts[:-1].copy()
    order = np.empty(count, dtype=np.int32)
    ordered = np.empty(count, dtype=np.uint64)  # the keys moved along: the bucket pass then reads them in order
    for i in range(count):
        bucket = np.int64(keys[i] >> shift)
        order[fill[bucket]] = i
        ordered[fill[bucket]] = keys[i]
        fill[bucket] += 1
    largest = 1
    for b in range(buckets):
        largest = max(largest, starts[b + 1] - starts[b])
    size = 2
    while size < 2 * largest:
        size *= 2
    table_key = np.empty(size, dtype=np.uint64)
    table_first = np.empty(size, dtype=np.int64)
    table_last = np.empty(size, dtype=np.int64)
    for b in range(buckets):
        lo, hi = starts[b], starts[b + 1]
        width = 2
        while width < 2 * (hi - lo):
            width *= 2
        mask = np.uint64(width - 1)
        table_first[:width] = -1
        for j in range(lo, hi):
            i = order[j]
            key = ordered[j]
            slot = key & mask
            while table_first[slot] >= 0 and table_key[slot] != key:
                slot = (slot + np.uint64(1)) & mask
            if table_first[slot] < 0:
                table_key[slot] = key
                table_first[slot] = i
                table_last[slot] = i
                leader[i] = -1
            else:
                leader[i] = table_first[slot]
                previous[i] = table_last[slot]
                table_last[slot] = i


_AHEAD = 16
"""Positions ahead whose partner rows are fetched into the cache while the current row is compared."""


def _prefetch_typing(typingctx: Any, words: Any, row: Any) -> Any:  # pragma: no cover - compiled
    """Ask the CPU to bring the four cache lines of signature ``row`` in (LLVM's prefetch; no effect on results).
    The partners of a row are random rows of the file; fetching them a few rows ahead overlaps the misses that
    otherwise stall each comparison (measured: 1.9 -> 1.45 s of CPU verifying 600,000 rows' candidates)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        i8p = ir.IntType(8).as_pointer()
        i32, i64 = ir.IntType(32), ir.IntType(64)
        prefetch = builder.module.declare_intrinsic(
            "llvm.prefetch", [i8p], ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        )
        start = builder.add(builder.ptrtoint(data, i64), builder.mul(args[1], ir.Constant(i64, 8 * WORDS)))
        for line in range(0, 8 * WORDS, 64):  # read, keep in all cache levels, data
            address = builder.inttoptr(builder.add(start, ir.Constant(i64, line)), i8p)
            builder.call(prefetch, [address, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(words, row), codegen


_prefetch_row: Any = intrinsic(_prefetch_typing)


@njit(cache=True, nogil=True)
def verify_band(
    words: U64, index: I64, leader: I32, previous: I32, allowed: int,
    parent: I64, between: bool, groups: I64, out: I64,
) -> int:  # fmt: skip  # pragma: no cover - compiled
    """Verify a band's candidates in row order (each row with its group's first and previous row: the row read in
    order, its partners often still in the cache); returns how many pairs were appended to ``out``."""
    count = len(parent)
    found = 0
    for i in range(len(index)):
        ahead = i + _AHEAD
        if ahead < len(index) and leader[ahead] >= 0:
            _prefetch_row(words, index[leader[ahead]])
            if previous[ahead] != leader[ahead]:
                _prefetch_row(words, index[previous[ahead]])
        first = leader[i]
        if first < 0:
            continue
        row = index[i]
        found = _candidate(words, index[first], row, count, allowed, parent, between, groups, out, found)
        if previous[i] != first:
            last = index[previous[i]]
            found = _candidate(words, last, row, count, allowed, parent, between, groups, out, found)
    return found


@njit(cache=True, nogil=True)
def merge(parent: I64, other: I64) -> None:  # pragma: no cover - compiled
    """Join into ``parent`` every row's cluster of ``other`` (roots stay the smallest rows)."""
    for row in range(len(parent)):
        root_a, root_b = _find_root(parent, row), _find_root(parent, _find_root(other, row))
        if root_a < root_b:
            parent[root_b] = root_a
        elif root_b < root_a:
            parent[root_a] = root_b


@njit(cache=True, nogil=True)
def roots(parent: I64) -> I64:  # pragma: no cover - compiled
    """Every row's cluster root (its smallest row)."""
    out = np.empty_like(parent)
    for row in range(len(parent)):
        out[row] = _find_root(parent, row)
    return out
