"""Arrow arrays from Python values without importing pandas.

``pa.array(values)`` (and ``pa.table`` of lists) first asks whether its argument is a pandas object, and asking
imports pandas when it is installed - it is, with MLflow: about 0.2 s and 80 MB in every process that builds an
array from a list, the chunk workers included. The arrays here are assembled from numpy buffers, which asks
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from pyarrow import _compute  # not pyarrow.compute: its ~300 kernel wrappers cost ~30 ms of start-up

_MAX_STRING_BYTES = (1 << 31) - 1
"""The most UTF-8 bytes a ``pa.string()`` array holds (32-bit offsets)."""


def positions_array(positions: npt.ArrayLike) -> pa.Array:
    """``positions`` (a list or a numpy array of integers) as an Arrow int64 array, the data shared when it can be."""
    values = np.ascontiguousarray(positions, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def take(array: pa.Array, positions: npt.ArrayLike) -> pa.Array:
    """The values of ``array`` at ``positions``, in that order."""
    return _compute.call_function("take", [array, positions_array(positions)])


def string_array(values: Sequence[str | None]) -> pa.Array:
    """``values`` as a ``pa.string()`` array, ``None`` as null. Text that is not valid Unicode (a lone surrogate)
    raises ``UnicodeEncodeError``, as ``pa.array`` does."""
    count = len(values)
    encoded = [b"" if value is None else value.encode() for value in values]
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=count), out=offsets[1:])
    if offsets[-1] > _MAX_STRING_BYTES:  # never one chunk's text; pa.array says what is wrong
        return pa.array(values, pa.string())
    nulls = np.fromiter((value is None for value in values), dtype=bool, count=count)
    null_count = int(nulls.sum())
    validity = pa.py_buffer(np.packbits(~nulls, bitorder="little")) if null_count else None
    buffers = [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), count, buffers, null_count)
