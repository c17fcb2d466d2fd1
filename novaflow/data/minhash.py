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

from novaflow.data.ngrams import Tokens

NUM_PERM = 256
BITS = 8
SHINGLE_WORDS = 3
"""Words per shingle by default: rows are questions and answers of tens of words, where one changed word in a
5-word shingling already costs 10 of ~50 shingles; 3 keeps a row with a signature line or an edited word close
to its original and still tells different rows apart."""
DEFAULT_THRESHOLD = 0.8

U8 = npt.NDArray[np.uint8]


def signatures(tokens: Tokens, shingle: int = SHINGLE_WORDS) -> tuple[U8, npt.NDArray[np.bool_]]:
    """The b-bit signature of every row of a chunk, and which rows have words at all (the others never match)."""
    from novaflow.data.kernels import minhash_signatures  # deferred: numba loads only when a filter runs

    sigs, has_words = minhash_signatures(tokens.hashes, tokens.rows, tokens.count, shingle)
    return sigs, has_words
