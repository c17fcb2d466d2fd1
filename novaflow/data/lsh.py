"""Near-duplicate clusters from MinHash signatures: LSH banding for candidate pairs, each candidate verified on its
whole signature, the verified pairs joined into clusters (the first row of each cluster is kept).

The signatures (:mod:`novaflow.data.minhash`, 256 bytes a row) wait in a temporary file while chunks pass
(:class:`SignatureStore`), so memory stays flat in rows; once all chunks are in, the file is mapped once and read
in place by compiled loops (numba; imported only by the filter modules, a plain ``data prepare`` never loads it).

Why compiled loops: the densified one-permutation signatures are not uniform per band - a row of few shingles fills
runs of empty bins from one value, so rows that share a band by that construction and nothing else are common. At
600,000 rows of a forum dump every band has ~600,000 candidate edges, 22 million in all (14 million distinct
pairs), of which 52,000 reach 0.8. Verification has to be cheap per pair, not per band: a pair is rejected as soon
as more bytes disagree than the threshold allows (a few of its 32 words for most false candidates), a pair already
in one cluster or rejected before (a fixed-size cache) is not read again, and the grouping of a band is one pass
over the rows with a hash table (no sort). Measured: 14 s of numpy (a sort per band, gathered copies per batch)
became about a second.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from numba import njit

from novaflow.data.minhash import BITS, DEFAULT_THRESHOLD, NUM_PERM
from novaflow.data.ngrams import sorted_unique

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

_CHANCE = 1.0 / (1 << BITS)
_READ_ROWS = 65_536
_WORDS = NUM_PERM // 8
"""A signature row as 64-bit words: bytes are compared eight at a time."""
_RESIDENT_BYTES = 256 << 20
"""A signature file larger than this is dropped from the process's mapping after every band (its pages stay in the
OS cache and are mapped again on the next touch), so the mapped part of a 6M-row file does not add up band after
band; a smaller file (600,000 rows: 154 MB) stays mapped for the whole phase."""


class SignatureStore:
    """Signatures appended chunk by chunk to a temporary file (256 bytes a row), read back through one memory map."""

    def __init__(self, directory: Path | None = None) -> None:
        self._file: BinaryIO = tempfile.TemporaryFile(dir=directory, prefix="novaflow-minhash-")
        self.rows = 0
        self.words: list[npt.NDArray[np.bool_]] = []

    def append(self, sigs: U8, has_words: npt.NDArray[np.bool_]) -> None:
        self._file.write(np.ascontiguousarray(sigs, dtype=np.uint8).tobytes())
        self.words.append(np.asarray(has_words, dtype=bool))
        self.rows += len(sigs)

    def iter_blocks(self) -> Iterator[tuple[int, U8]]:
        """(first row, signatures) blocks of up to 65,536 rows, read in order."""
        self._file.flush()
        self._file.seek(0)
        start = 0
        while start < self.rows:
            count = min(_READ_ROWS, self.rows - start)
            data = self._file.read(count * NUM_PERM)
            yield start, np.frombuffer(data, dtype=np.uint8).reshape(count, NUM_PERM)
            start += count

    @contextmanager
    def mapped(self) -> Iterator[_Mapping]:
        """The whole file as a read-only (rows, 256) array, mapped once: reading a row costs no system call and no
        copy, and the pages are the OS cache's (clean, reclaimable), not the process's heap."""
        self._file.flush()
        if not self.rows:
            yield _Mapping(np.zeros((0, NUM_PERM), dtype=np.uint8), None)
            return
        region = mmap.mmap(self._file.fileno(), self.rows * NUM_PERM, access=mmap.ACCESS_READ)
        region.madvise(mmap.MADV_RANDOM)  # verification reads rows at random: no read-ahead around each touch
        mapping = _Mapping(np.frombuffer(region, dtype=np.uint8).reshape(self.rows, NUM_PERM), region)
        try:
            yield mapping
        finally:
            mapping.rows = np.zeros((0, NUM_PERM), dtype=np.uint8)
            with suppress(BufferError):  # a view still held (an exception's frames): unmapped when it is collected
                region.close()

    def has_words(self) -> npt.NDArray[np.bool_]:
        return np.concatenate(self.words) if self.words else np.zeros(0, dtype=bool)

    def close(self) -> None:
        self._file.close()


@dataclass
class _Mapping:
    rows: U8
    region: mmap.mmap | None

    @property
    def words(self) -> U64:
        """The rows as 32 64-bit words each (the same memory)."""
        return self.rows.view(np.uint64) if len(self.rows) else np.zeros((0, _WORDS), dtype=np.uint64)

    def release(self) -> None:
        """Drop the mapped pages from the process when the file is large (see :data:`_RESIDENT_BYTES`)."""
        if self.region is not None and len(self.region) > _RESIDENT_BYTES:
            self.region.madvise(mmap.MADV_DONTNEED)


@dataclass
class Clusters:
    """Rows found to be near-duplicates: ``rows[i]`` duplicates ``first[i]`` (the first row of its cluster) with
    estimated similarity ``scores[i]``; rows are indexes into the signature order."""

    rows: I64
    first: I64
    scores: npt.NDArray[np.float64]


def similarity(a: U8, b: U8) -> npt.NDArray[np.float64]:
    """Estimated Jaccard similarity of signature rows ``a[i]`` and ``b[i]`` (b-bit corrected, clipped to [0, 1])."""
    return _estimate(agreeing_bytes(a, b))


def _estimate(agreeing: I64) -> npt.NDArray[np.float64]:
    """Similarity from the count of agreeing bytes: two unrelated bytes agree by chance once in 256."""
    agree = agreeing / NUM_PERM
    return np.asarray(np.clip((agree - _CHANCE) / (1 - _CHANCE), 0.0, 1.0), dtype=np.float64)


def min_agreeing(threshold: float) -> int:
    """The fewest agreeing bytes whose estimate reaches ``threshold``, by the very arithmetic of :func:`similarity`
    (so a pair the compiled loop accepts is exactly a pair whose score is >= threshold)."""
    reached = np.flatnonzero(_estimate(np.arange(NUM_PERM + 1, dtype=np.int64)) >= threshold)
    return int(reached[0]) if len(reached) else NUM_PERM + 1


_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)


def agreeing_bytes(a: U8, b: U8) -> I64:
    """How many of the 256 bytes of ``a[i]`` and ``b[i]`` are equal: 32 XORed 64-bit words a row, each zero byte
    flagged in its high bit and the flags counted (a tenth of comparing the bytes one by one)."""
    x = np.ascontiguousarray(a).view(np.uint64) ^ np.ascontiguousarray(b).view(np.uint64)
    with np.errstate(over="ignore"):
        zero = ~(((x & _LOW7) + _LOW7) | x | _LOW7)  # high bit of each byte: set where the byte of x is zero
    counts: I64 = np.bitwise_count(zero).sum(axis=1, dtype=np.int64)
    return counts


def band_layout(threshold: float) -> tuple[int, int]:
    """(bands, rows per band): the most rows per band (fewest false candidates) that still make a pair at
    ``threshold - 0.05`` a candidate with probability >= 0.99; candidates are verified, so recall is what counts."""
    target = max(threshold - 0.05, 0.05)
    agree = target + (1 - target) * _CHANCE
    best = (NUM_PERM, 1)
    for rows in range(1, NUM_PERM + 1):
        bands = NUM_PERM // rows
        if 1 - (1 - agree**rows) ** bands >= 0.99:
            best = (bands, rows)
    return best


def find_near_duplicates(
    source: SignatureStore | U8,
    eligible: npt.NDArray[np.bool_],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    pairs_between: npt.NDArray[np.int64] | None = None,
) -> Clusters:
    """Clusters of rows whose estimated similarity reaches ``threshold``; ``eligible`` rows only.

    Band by band, the rows that agree on all the band's bytes form a group, and each row after the first of its
    group is a candidate with the group's first row and with the group's previous row (in row order). Every
    candidate at the threshold joins the two rows' clusters (union-find; the root is the cluster's smallest row),
    so a cluster is a connected component of the verified candidates and memory holds one band's table, never the
    candidates. Each row of a cluster but its first is reported with its similarity to that first row.

    ``pairs_between`` (one group number per row) restricts pairs to rows of different groups, for the leakage
    guard across splits; then every verified pair is reported (``first`` is the row of the lower group number).
    """
    if isinstance(source, SignatureStore):
        with source.mapped() as mapping:
            return _find(mapping, eligible, threshold, pairs_between)
    return _find(_Mapping(np.ascontiguousarray(source, dtype=np.uint8), None), eligible, threshold, pairs_between)


def _find(
    mapping: _Mapping, eligible: npt.NDArray[np.bool_], threshold: float, groups: npt.NDArray[np.int64] | None
) -> Clusters:
    count = len(mapping.rows)
    bands, per_band = band_layout(threshold)
    allowed = NUM_PERM - min_agreeing(threshold)
    index = np.flatnonzero(eligible[:count]).astype(np.int64)
    group_of = np.asarray(groups, dtype=np.int64) if groups is not None else np.zeros(0, dtype=np.int64)
    threads = _threads(len(index), bands)

    def work(first_band: int) -> _Bands:
        state = _Bands(count, len(index), groups is not None)
        for band in range(first_band, bands, threads):
            _band_keys(mapping.rows, mapping.words, index, band, per_band, state.keys)
            _group_band(state.keys, state.leader, state.previous)
            found = _verify_band(
                mapping.words, index, state.leader, state.previous, allowed,
                state.parent, groups is not None, group_of, state.out,
            )  # fmt: skip
            if found:
                state.verified.append(state.out[:found].copy())
            mapping.release()
        return state

    if threads == 1:
        states = [work(0)]
    else:
        with ThreadPoolExecutor(threads, thread_name_prefix="novaflow-lsh") as pool:
            states = list(pool.map(work, range(threads)))
    if groups is not None:
        return _pairs_across(mapping.rows, [v for state in states for v in state.verified], count, group_of)
    parent = states[0].parent
    for other in states[1:]:
        _merge(parent, other.parent)
    roots = _roots(parent)
    members = np.flatnonzero(roots != np.arange(count))
    firsts = roots[members]
    return Clusters(members, firsts, _scores(mapping.rows, firsts, members))


_THREAD_ROWS = 50_000
"""Below this many rows the bands run on the calling thread (starting threads costs more than they save)."""


def _threads(rows: int, bands: int) -> int:
    """Threads the bands are shared among: the compiled loops release the GIL, so each core takes every n-th band."""
    if rows < _THREAD_ROWS:
        return 1
    return max(1, min(bands, len(os.sched_getaffinity(0)), 4))


class _Bands:
    """One thread's state over its bands: the current band's groups, its own union-find (merged with the others'
    at the end: the components of the union of their verified pairs are the components of all of them), its cache
    of rejected pairs, and the verified pairs between groups (leakage mode)."""

    def __init__(self, count: int, eligible: int, between: bool) -> None:
        self.keys = np.empty(eligible, dtype=np.uint64)
        self.leader = np.empty(eligible, dtype=np.int64)
        self.previous = np.empty(eligible, dtype=np.int64)
        self.parent = np.arange(count, dtype=np.int64)
        self.out = np.empty(2 * eligible if between else 0, dtype=np.int64)
        self.verified: list[I64] = []


def _scores(sigs: U8, a: I64, b: I64) -> npt.NDArray[np.float64]:
    """Similarity of rows ``a[i]`` and ``b[i]``, gathered in batches so the copies stay small."""
    out = np.zeros(len(a))
    for start in range(0, len(a), _READ_ROWS):
        stop = start + _READ_ROWS
        out[start:stop] = similarity(sigs[a[start:stop]], sigs[b[start:stop]])
    return out


def _pairs_across(sigs: U8, verified: list[I64], count: int, groups: I64) -> Clusters:
    """Every verified pair between different groups, ``first`` in the lower group (the leakage guard's form)."""
    if not verified:
        return Clusters(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    codes = sorted_unique(np.concatenate(verified))
    pairs = np.stack([codes // count, codes % count], axis=1)
    flip = groups[pairs[:, 0]] > groups[pairs[:, 1]]
    pairs[flip] = pairs[flip][:, ::-1]
    return Clusters(pairs[:, 1].copy(), pairs[:, 0].copy(), _scores(sigs, pairs[:, 0], pairs[:, 1]))


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_HIGH = np.uint64(0x8080808080808080)
_ONES = np.uint64(0x0101010101010101)


@njit(cache=True, nogil=True, inline="always")
def _mix(x: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    """splitmix64's finalizer, as :func:`novaflow.data.ngrams.mix` (bijective: equal keys iff equal inputs)."""
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
def _find_root(parent: I64, row: np.int64) -> np.int64:  # pragma: no cover - compiled
    while parent[row] != row:
        parent[row] = parent[parent[row]]  # path halving: chains stay short
        row = parent[row]
    return row


@njit(cache=True, nogil=True, inline="always")
def _close(words: U64, a: np.int64, b: np.int64, allowed: int) -> bool:  # pragma: no cover - compiled
    """Whether at most ``allowed`` of the 256 bytes differ. All 32 words are compared without a branch: stopping
    early at the word where the count passes ``allowed`` measured 2.5x slower (the four cache lines of a row are
    then fetched one after another, and the exit mispredicts)."""
    differ = 0
    for w in range(_WORDS):
        x = words[a, w] ^ words[b, w]
        flags = (((x & _LOW7) + _LOW7) | x) & _HIGH  # high bit of each byte: set where the byte of x is not 0
        differ += np.int64(((flags >> np.uint64(7)) * _ONES) >> np.uint64(56))
    return differ <= allowed


@njit(cache=True, nogil=True, inline="always")
def _candidate(
    words: U64, a: np.int64, b: np.int64, count: int, allowed: int,
    parent: I64, between: bool, groups: I64, out: I64, found: int,
) -> int:  # fmt: skip  # pragma: no cover - compiled
    """Verify one candidate pair and record it: joined (clusters) or appended to ``out`` (pairs between groups).
    Returns the new length of ``out``. The pair is compared before anything else is looked up: nearly every
    candidate is false, and a look-up in the union-find or a cache of rejected pairs (tried: 2 MB) is one more
    cache miss per candidate, which cost more than the comparisons it saved."""
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
def _band_keys(sigs: U8, words: U64, rows: I64, band: int, per_band: int, out: U64) -> None:  # pragma: no cover
    """``out[i]``: the key of ``rows[i]`` in ``band``, read from the mapped signatures in row order (one cache line
    a row; measured 10 ms a band at 600,000 rows, less than writing and reading back every band's keys)."""
    for i in range(len(rows)):
        out[i] = _band_key(sigs, words, rows[i], band, per_band)


_BUCKET_ROWS = 256
"""Rows a band's keys are partitioned into buckets of, on average, by their top bits: each bucket is grouped in a
hash table small enough for the core's cache (one table for 600,000 rows is 16 MB of cache misses)."""


@njit(cache=True, nogil=True)
def _group_band(keys: U64, leader: I64, previous: I64) -> None:  # pragma: no cover - compiled
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
    order = np.empty(count, dtype=np.int64)
    for i in range(count):
        b = np.int64(keys[i] >> shift)
        order[fill[b]] = i
        fill[b] += 1
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
            key = keys[i]
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


@njit(cache=True, nogil=True)
def _verify_band(
    words: U64, index: I64, leader: I64, previous: I64, allowed: int,
    parent: I64, between: bool, groups: I64, out: I64,
) -> int:  # fmt: skip  # pragma: no cover - compiled
    """Verify a band's candidates in row order (each row with its group's first and previous row: the row read in
    order, its partners often still in the cache); returns how many pairs were appended to ``out``."""
    count = len(parent)
    found = 0
    for i in range(len(index)):
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
def _merge(parent: I64, other: I64) -> None:  # pragma: no cover - compiled
    """Join into ``parent`` every row's cluster of ``other`` (roots stay the smallest rows)."""
    for row in range(len(parent)):
        root_a, root_b = _find_root(parent, row), _find_root(parent, _find_root(other, row))
        if root_a < root_b:
            parent[root_b] = root_a
        elif root_b < root_a:
            parent[root_a] = root_b


@njit(cache=True, nogil=True)
def _roots(parent: I64) -> I64:  # pragma: no cover - compiled
    """Every row's cluster root (its smallest row)."""
    out = np.empty_like(parent)
    for row in range(len(parent)):
        out[row] = _find_root(parent, row)
    return out
