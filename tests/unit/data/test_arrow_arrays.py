"""Arrow arrays assembled from numpy buffers equal the ones ``pa.array`` builds (which would import pandas)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from novaflow.data.arrow_arrays import positions_array, string_array, take

CASES: list[list[str | None]] = [
    [],
    [""],
    [None],
    ["a", None, "héllo wörld", "", "日本語", "😀" * 3],
    [None] * 9 + ["x"] + [None] * 7,
    [f"row {i} " * (i % 5) for i in range(1000)],
]


@pytest.mark.parametrize("values", CASES)
def test_string_array_is_what_pa_array_builds(values: list[str | None]) -> None:
    built = string_array(values)
    built.validate(full=True)
    assert built.type == pa.string()
    assert built.equals(pa.array(values, pa.string()))
    assert built.null_count == sum(v is None for v in values)
    assert built.to_pylist() == values


def test_a_lone_surrogate_is_refused_as_pa_array_refuses_it() -> None:
    with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
        string_array(["fine", "\ud800"])
    with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
        pa.array(["fine", "\ud800"], pa.string())


def test_take_by_list_or_numpy_positions_in_their_order() -> None:
    column = pa.array(["a", None, "c", "d"])
    assert take(column, [3, 0, 1]).to_pylist() == ["d", "a", None]
    assert take(column, np.array([2, 2], dtype=np.intp)).to_pylist() == ["c", "c"]
    assert take(column, []).to_pylist() == []
    assert positions_array(np.arange(3, dtype=np.int32)).equals(pa.array([0, 1, 2], pa.int64()))
