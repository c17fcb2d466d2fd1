"""The polynomial bases of novaflow's stable text hashes, in one place for the numpy code (``ngrams``) and the
compiled kernels (``kernels``): a word's hash, a byte range's and a word n-gram's must be the same values on both
paths, since near-duplicate signatures and exact-dedup keys are compared across chunks and runs.

Changing a base changes every stored signature and key; numba freezes these values into the kernels' on-disk cache,
which is keyed on ``kernels.py`` alone, so touch that file (or clear ``NUMBA_CACHE_DIR``) in the same change."""

from __future__ import annotations

import numpy as np

CHAR_BASE = np.uint64(0x100000001B3)
"""Polynomial base of byte-range hashes; odd, so it has an inverse modulo 2**64."""
WORD_BASE = np.uint64(0x9E3779B97F4A7C15)
"""Polynomial base of word n-gram hashes, and the weight of a range's length in a byte-range hash."""
