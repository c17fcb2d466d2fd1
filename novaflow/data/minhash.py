"""MinHash signatures of rows over word shingles: 256 bytes a row that estimate the rows' Jaccard similarity.

Signatures are computed for a whole chunk at once by one-permutation hashing with densification (Li, Owen and
Zhang 2012; Shrivastava 2017): each shingle is hashed once and falls into one of :data:`NUM_PERM` bins whose
minimum is kept, an empty bin borrows from the next full one. That estimates the Jaccard similarity of the rows'
shingle sets like classic MinHash with :data:`NUM_PERM` permutations at 1/256th of the hashing (per-row
``datasketch.MinHash`` measured 60 us a row here, a minute at 600,000 rows). Only the lowest 8 bits of each
minimum are kept (b-bit MinHash, Li and Koenig 2010): 256 bytes a row, written to a temporary file as chunks
pass, so memory stays flat in rows; the estimate corrects for the 1/256 chance that two bytes agree by accident.

Which rows are near-duplicates of which is decided from these signatures by :mod:`novaflow.data.lsh` (banding,
verification, clusters; the file the signatures wait in).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from novaflow.data.ngrams import Tokens, mix, word_ngrams

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

U8 = npt.NDArray[np.uint8]


def signatures(tokens: Tokens, shingle: int = SHINGLE_WORDS) -> tuple[U8, npt.NDArray[np.bool_]]:
    """The b-bit signature of every row of a chunk, and which rows have words at all (the others never match)."""
    n = tokens.count
    hashes, rows = word_ngrams(tokens, shingle)
    per_row = tokens.per_row()
    short = np.flatnonzero((per_row > 0) & (per_row < shingle))
    if len(short):  # a row shorter than one shingle is one shingle of all its words
        starts = np.searchsorted(tokens.rows, short)
        with np.errstate(over="ignore"):
            sums = np.add.reduceat(tokens.hashes, starts) if len(tokens.hashes) else np.zeros(0, np.uint64)
        whole = mix(sums[: len(short)] if len(starts) == len(short) else sums)
        hashes = np.concatenate([hashes, whole])
        rows = np.concatenate([rows, short])
    bins = (hashes >> np.uint64(64 - NUM_PERM.bit_length() + 1)).astype(np.int64)
    values = hashes & np.uint64(0xFFFFFFFF)
    flat = np.full(n * NUM_PERM, _EMPTY, dtype=np.uint64)
    np.minimum.at(flat, rows * NUM_PERM + bins, values)
    has_words = per_row > 0
    return _densify(flat.reshape(n, NUM_PERM), has_words), has_words


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
