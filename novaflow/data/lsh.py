"""Near-duplicate clusters from MinHash signatures: LSH banding for candidate pairs, each candidate verified on its
whole signature, the verified pairs joined into clusters (the first row of each cluster is kept).

The signatures (:mod:`novaflow.data.minhash`, 256 bytes a row) wait in a temporary file while chunks pass
(:class:`SignatureStore`), so memory stays flat in rows; once all chunks are in, the file is mapped once and read
in place by compiled loops (:mod:`novaflow.data.lsh_loops`, numba), the bands shared among threads.

Why compiled loops: the densified one-permutation signatures are not uniform within a band - a row of few shingles
fills runs of empty bins from one value, so rows share a band by that construction and nothing else. At 600,000
rows of a forum dump every band has ~600,000 candidate edges, 22 million in all (14 million distinct pairs), of
which 52,000 reach 0.8: the work is per candidate, so a candidate must cost a few cache lines and no Python. The
numpy version (a sort per band, gathered copies per batch of pairs) took 16 s of the 600,000-row run.
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

from novaflow.data.minhash import BITS, DEFAULT_THRESHOLD, NUM_PERM
from novaflow.data.ngrams import sorted_unique

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

_CHANCE = 1.0 / (1 << BITS)
_READ_ROWS = 65_536
"""Rows whose signatures are copied at once to score the reported pairs."""
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

    @contextmanager
    def mapped(self) -> Iterator[_Mapping]:
        """The whole file as a read-only (rows, 256) array, mapped once: reading a row costs no system call and no
        copy, and the pages are the OS cache's (clean, reclaimable), not the process's heap."""
        self._file.flush()
        if not self.rows:
            yield _Mapping(np.zeros((0, NUM_PERM), dtype=np.uint8), None)
            return
        region = mmap.mmap(self._file.fileno(), self.rows * NUM_PERM, access=mmap.ACCESS_READ)
        if hasattr(mmap, "MADV_RANDOM"):  # not on Windows
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
        if self.region is not None and len(self.region) > _RESIDENT_BYTES and hasattr(mmap, "MADV_DONTNEED"):
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
    so a cluster is a connected component of the verified candidates and memory holds each thread's current band
    (its keys and groups), never the candidates. Each row of a cluster but its first is reported with its
    similarity to that first row.

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
    from novaflow.data import lsh_loops as loops  # start-up: numba loads when the decision runs, not before

    def work(first_band: int) -> _Bands:
        state = _Bands(count, len(index), groups is not None)
        for band in range(first_band, bands, threads):
            loops.band_keys(mapping.rows, mapping.words, index, band, per_band, state.keys)
            loops.group_band(state.keys, state.leader, state.previous)
            found = loops.verify_band(
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
        loops.merge(parent, other.parent)
    roots = loops.roots(parent)
    members = np.flatnonzero(roots != np.arange(count))
    firsts = roots[members]
    return Clusters(members, firsts, _scores(mapping.rows, firsts, members))


_THREAD_ROWS = 50_000
"""Below this many rows the bands run on the calling thread (starting threads costs more than they save)."""


def _threads(rows: int, bands: int) -> int:
    """Threads the bands are shared among: the compiled loops release the GIL, so each core takes every n-th band;
    at most 4, as each thread holds its own band state (about 40 bytes a row)."""
    if rows < _THREAD_ROWS:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(bands, cores, 4))


class _Bands:
    """One thread's state over its bands: the current band's keys and groups, its own union-find (merged with the
    others' at the end: the components of the union of their verified pairs are the components of all of them),
    and the verified pairs between groups (leakage mode)."""

    def __init__(self, count: int, eligible: int, between: bool) -> None:
        self.keys = np.empty(eligible, dtype=np.uint64)
        # positions in 4 bytes (2 billion rows would be 512 GB of signatures): half the cache lines of 8
        self.leader = np.empty(eligible, dtype=np.int32)
        self.previous = np.empty(eligible, dtype=np.int32)
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


def warm() -> None:
    """Compile (or load from the cache) every compiled loop for each argument type a run passes: a store's read-only
    mapping and an in-memory array, clusters and pairs between groups - so that an image can pay the compilation
    at build time (``python -m novaflow.data.lsh``) instead of its first filtered run."""
    from novaflow.data import lsh_loops as loops  # start-up: numba loads only when asked for

    rows = np.random.default_rng(0).integers(0, 256, (8, NUM_PERM), dtype=np.uint8)
    rows[1] = rows[0]
    everyone = np.ones(len(rows), dtype=bool)
    find_near_duplicates(rows, everyone)
    find_near_duplicates(rows, everyone, pairs_between=np.arange(len(rows), dtype=np.int64) % 2)
    store = SignatureStore()
    try:
        store.append(rows, everyone)
        find_near_duplicates(store, store.has_words())
    finally:
        store.close()
    loops.merge(np.arange(len(rows), dtype=np.int64), np.zeros(len(rows), dtype=np.int64))  # runs with threads only


if __name__ == "__main__":
    warm()
