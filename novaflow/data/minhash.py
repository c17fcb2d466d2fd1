"""Near-duplicate rows by MinHash over word shingles, with LSH banding to find candidate pairs.

Signatures are computed for a whole chunk at once by one-permutation hashing with densification (Li, Owen and
Zhang 2012; Shrivastava 2017): each shingle is hashed once and falls into one of :data:`NUM_PERM` bins whose
minimum is kept, an empty bin borrows from the next full one. That estimates the Jaccard similarity of the rows'
shingle sets like classic MinHash with :data:`NUM_PERM` permutations at 1/256th of the hashing (per-row
``datasketch.MinHash`` measured 60 us a row here, a minute at 600,000 rows). Only the lowest 8 bits of each
minimum are kept (b-bit MinHash, Li and Koenig 2010): 256 bytes a row, written to a temporary file as chunks
pass, so memory stays flat in rows; the estimate corrects for the 1/256 chance that two bytes agree by accident.

Candidates are rows that agree on all values of at least one band; each candidate pair is verified on its whole
signature against the threshold, the verified pairs are joined into clusters, and the first row of each cluster
is kept: every other row is reported as a near-duplicate of it, with the estimated similarity.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from novaflow.data.ngrams import Tokens, mix, sorted_unique

NUM_PERM = 256
BITS = 8
SHINGLE_WORDS = 3
"""Words per shingle by default: rows are questions and answers of tens of words, where one changed word in a
5-word shingling already costs 10 of ~50 shingles; 3 keeps a row with a signature line or an edited word close
to its original and still tells different rows apart."""
DEFAULT_THRESHOLD = 0.8
_EMPTY = np.uint64(1 << 32)
_ROTATION_LOW = np.uint8(0x9E3779B1 & 0xFF)
"""The low byte of the rotation a borrowed bin is shifted by per bin of distance (only low bytes are kept)."""
_CHANCE = 1.0 / (1 << BITS)
_READ_ROWS = 65_536
_PAIR_BATCH = 50_000

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


def signatures(tokens: Tokens, shingle: int = SHINGLE_WORDS) -> tuple[U8, npt.NDArray[np.bool_]]:
    """The b-bit signature of every row of a chunk, and which rows have words at all (the others never match)."""
    from novaflow.data.kernels import minhash_signatures  # deferred: numba loads only when a filter runs

    sigs, has_words = minhash_signatures(tokens.hashes, tokens.rows, tokens.count, shingle)
    return sigs, has_words


def _densify(table: npt.NDArray[np.uint64], has_words: npt.NDArray[np.bool_]) -> U8:
    """Fill each empty bin from the next non-empty one to its right (circularly), shifted by the distance.

    Only the lowest 8 bits of a value are kept, and those of a sum depend only on the addends' lowest 8 bits, so
    the filling runs on bytes and the positions on int16 (a quarter of the memory traffic of 64-bit arithmetic)."""
    n = len(table)
    full = table != _EMPTY
    low = (table & np.uint64(0xFF)).astype(np.uint8)
    position = np.where(full, np.arange(NUM_PERM, dtype=np.int16), np.int16(2 * NUM_PERM))
    doubled = np.concatenate([position, position + np.int16(NUM_PERM)], axis=1)
    nearest = np.minimum.accumulate(doubled[:, ::-1], axis=1)[:, ::-1][:, :NUM_PERM]
    source = np.where(nearest >= 2 * NUM_PERM, 0, nearest % NUM_PERM).astype(np.intp)
    distance = (nearest - np.arange(NUM_PERM, dtype=np.int16)).astype(np.uint8)
    borrowed = np.take_along_axis(low, source, axis=1)
    with np.errstate(over="ignore"):
        out = np.where(full, low, borrowed + distance * _ROTATION_LOW)
    out[~has_words] = 0
    return out.reshape(n, NUM_PERM)


def similarity(a: U8, b: U8) -> npt.NDArray[np.float64]:
    """Estimated Jaccard similarity of signature rows ``a[i]`` and ``b[i]`` (b-bit corrected, clipped to [0, 1])."""
    agree = agreeing_bytes(a, b) / NUM_PERM
    return np.asarray(np.clip((agree - _CHANCE) / (1 - _CHANCE), 0.0, 1.0), dtype=np.float64)


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


class SignatureStore:
    """Signatures appended chunk by chunk to a temporary file (256 bytes a row), read back band by band."""

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

    def gather(self, *rows: I64) -> list[U8]:
        """Signatures of each array of rows (any order), through a read-only memory map of the file."""
        self._file.flush()
        mapped = np.memmap(self._file, dtype=np.uint8, mode="r", shape=(self.rows, NUM_PERM))
        try:
            return [np.array(mapped[r]) for r in rows]
        finally:
            del mapped

    def has_words(self) -> npt.NDArray[np.bool_]:
        return np.concatenate(self.words) if self.words else np.zeros(0, dtype=bool)

    def close(self) -> None:
        self._file.close()


@dataclass
class Clusters:
    """Rows found to be near-duplicates: ``rows[i]`` duplicates ``first[i]`` (the first row of its cluster) with
    estimated similarity ``scores[i]``; rows are indexes into the signature order."""

    rows: I64
    first: I64
    scores: npt.NDArray[np.float64]


def find_near_duplicates(
    source: SignatureStore | U8,
    eligible: npt.NDArray[np.bool_],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    pairs_between: npt.NDArray[np.int64] | None = None,
) -> Clusters:
    """Clusters of rows whose estimated similarity reaches ``threshold``; ``eligible`` rows only.

    Band by band, the rows that agree on the band's values are sorted together, and each is paired with the first
    and the previous row of its group. A pair already joined by earlier bands is skipped; the others are verified on
    their whole signatures and joined (union-find by labels: every row carries the smallest row of its cluster), so
    memory holds one band's keys and candidates, never every band's pairs.

    ``pairs_between`` (one group number per row) restricts pairs to rows of different groups, for the leakage
    guard across splits; then every pair is reported (``first`` is the row's partner of the lower group number).
    """
    bands, per_band = band_layout(threshold)
    count = source.rows if isinstance(source, SignatureStore) else len(source)
    index = np.flatnonzero(eligible)
    label = np.arange(count, dtype=np.int64)
    found: list[I64] = []
    with _BandKeys(source, bands, per_band, count) as band_keys:
        for band in range(bands):
            edges = _band_edges(band_keys.read(band)[index], index)
            if edges is None:
                continue
            first, other = edges
            if pairs_between is not None:
                cross = pairs_between[first] != pairs_between[other]
                found.append(_codes(first[cross], other[cross], count))
                continue
            apart = label[first] != label[other]
            if not apart.any():
                continue
            codes = sorted_unique(_codes(first[apart], other[apart], count))
            pairs = np.stack([codes // count, codes % count], axis=1)
            verified = pairs[_pair_scores(source, pairs) >= threshold]
            if len(verified):
                _join(label, verified)
    if pairs_between is not None:
        return _pairs_across(source, found, count, pairs_between, threshold)
    members = np.flatnonzero(label != np.arange(count))
    firsts = label[members]
    return Clusters(members, firsts, _pair_scores(source, np.stack([firsts, members], axis=1)))


def _codes(a: I64, b: I64, count: int) -> I64:
    """Each unordered pair as one int64 (lower row * count + higher row): one-dimensional sorts, no axis=0 unique."""
    return np.minimum(a, b) * count + np.maximum(a, b)


def _band_edges(keys: npt.NDArray[np.uint64], index: I64) -> tuple[I64, I64] | None:
    """Pairs of rows (of ``index``) whose band keys are equal: each row after the first of its group, paired with
    the group's first row and with the row before it."""
    local = np.argsort(keys, kind="stable")
    order = index[local]
    sorted_keys = keys[local]
    same = sorted_keys[1:] == sorted_keys[:-1]
    if not same.any():
        return None
    group_start = np.concatenate(([True], ~same))
    leader = order[np.maximum.accumulate(np.where(group_start, np.arange(len(order)), 0))]
    followers = np.flatnonzero(~group_start)
    return np.concatenate([leader[followers], order[followers - 1]]), np.concatenate([order[followers]] * 2)


def _join(label: I64, verified: I64) -> None:
    """Merge the clusters of the verified pairs in place: each row's label becomes the smallest row of its merged
    cluster (labels are always cluster roots, so only the roots' small graph is propagated)."""
    roots = sorted_unique(label[verified].ravel())
    local = np.searchsorted(roots, label[verified])
    comp = np.arange(len(roots))
    while True:
        low = np.minimum(comp[local[:, 0]], comp[local[:, 1]])
        updated = comp.copy()
        np.minimum.at(updated, local[:, 0], low)
        np.minimum.at(updated, local[:, 1], low)
        updated = updated[updated]  # jump to the label's own label: halves the rounds on long chains
        if np.array_equal(updated, comp):
            break
        comp = updated
    moved = np.flatnonzero(comp != np.arange(len(roots)))
    if not len(moved):
        return
    position = np.searchsorted(roots, label)
    position[position >= len(roots)] = 0
    hit = roots[position] == label
    label[hit] = roots[comp[position[hit]]]


def _pairs_across(
    source: SignatureStore | U8, found: list[I64], count: int, groups: npt.NDArray[np.int64], threshold: float
) -> Clusters:
    """Every verified pair between different groups, ``first`` in the lower group (the leakage guard's form)."""
    if not found:
        return Clusters(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    codes = sorted_unique(np.concatenate(found))
    pairs = np.stack([codes // count, codes % count], axis=1)
    scores = _pair_scores(source, pairs)
    keep = scores >= threshold
    verified, vs = pairs[keep], scores[keep]
    flip = groups[verified[:, 0]] > groups[verified[:, 1]]
    verified[flip] = verified[flip][:, ::-1]
    return Clusters(verified[:, 1].copy(), verified[:, 0].copy(), vs)


class _BandKeys:
    """Every row's key for every band, computed in one pass over the signatures and kept band-major in a temporary
    file (8 bytes a row and band), so a band is one read and memory holds one band's keys."""

    def __init__(self, source: SignatureStore | U8, bands: int, per_band: int, count: int) -> None:
        self.count = count
        self._file: BinaryIO = tempfile.TemporaryFile(prefix="novaflow-lsh-")
        fd = self._file.fileno()
        for start, block in _blocks(source):
            columns = np.ascontiguousarray(_block_keys(block, bands, per_band).T)
            for band in range(bands):
                os.pwrite(fd, columns[band].tobytes(), (band * count + start) * 8)

    def read(self, band: int) -> npt.NDArray[np.uint64]:
        data = os.pread(self._file.fileno(), self.count * 8, band * self.count * 8)
        return np.frombuffer(data, dtype=np.uint64)

    def __enter__(self) -> _BandKeys:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def _block_keys(block: U8, bands: int, per_band: int) -> npt.NDArray[np.uint64]:
    """(rows, bands) keys: a band's bytes read as 64-bit words (exact up to 8 bytes a band), mixed with the band."""
    rows = len(block)
    words = -(-per_band // 8)
    padded = np.zeros((rows, bands, words * 8), dtype=np.uint8)
    padded[:, :, :per_band] = block[:, : bands * per_band].reshape(rows, bands, per_band)
    packed = padded.view(np.uint64)  # (rows, bands, words)
    key = packed[:, :, 0].copy()
    with np.errstate(over="ignore"):
        for w in range(1, words):
            key = mix(key) ^ packed[:, :, w]
        salt = np.arange(bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        return mix(key + salt)


def _blocks(source: SignatureStore | U8) -> Iterable[tuple[int, U8]]:
    if isinstance(source, SignatureStore):
        return source.iter_blocks()
    return [(s, source[s : s + _READ_ROWS]) for s in range(0, len(source), _READ_ROWS)]


def _pair_scores(source: SignatureStore | U8, pairs: I64) -> npt.NDArray[np.float64]:
    """Estimated similarity of every pair, in batches so the gathered signatures stay small."""
    out = np.zeros(len(pairs))
    for start in range(0, len(pairs), _PAIR_BATCH):
        batch = pairs[start : start + _PAIR_BATCH]
        if isinstance(source, SignatureStore):
            left, right = source.gather(batch[:, 0], batch[:, 1])
        else:
            left, right = source[batch[:, 0]], source[batch[:, 1]]
        out[start : start + len(batch)] = similarity(left, right)
    return out
