from __future__ import annotations

import json
import math

import numpy as np

from novaflow.reports.format import fixed, p_text, tidy_rows, tidy_value


def test_floats_round_to_four_decimals_and_stay_numbers() -> None:
    assert tidy_value(0.006000000000000005) == 0.006
    assert tidy_value(0.86399999) == 0.864
    assert tidy_value(-1.23456) == -1.2346
    assert tidy_value(1727.2345678) == 1727.2346
    assert tidy_value(0.0) == 0.0


def test_p_values_and_tiny_values_are_scientific() -> None:
    assert tidy_value(7.335e-90, key="p_value") == "7.335e-90"
    assert tidy_value(0.03, key="p_value") == "3.000e-02"
    assert tidy_value(1, key="p_value") == "1.000e+00"
    assert tidy_value(5.625e-06, key="lr") == "5.625e-06"  # four decimals would print 0.0000


def test_everything_else_passes_through() -> None:
    assert tidy_value(3500) == 3500 and tidy_value(True) is True and tidy_value("em") == "em"
    assert tidy_value(None) is None and tidy_value(math.nan) is None and tidy_value(math.inf) == "inf"


def test_rows_with_numpy_values_become_json_with_at_most_four_decimals() -> None:
    rows = tidy_rows(
        [{"metric": "em", "delta": np.float64(0.8160000000000001), "p_value": 7.3e-90, "n": np.int64(500)}]
    )
    assert rows == [{"metric": "em", "delta": 0.816, "p_value": "7.300e-90", "n": 500}]
    assert json.dumps(rows) == '[{"metric": "em", "delta": 0.816, "p_value": "7.300e-90", "n": 500}]'


def test_display_text() -> None:
    assert fixed(0.862) == "0.8620" and fixed(0.816, signed=True) == "+0.8160" and fixed(None) == "-"
    assert fixed(2e-05) == "2.000e-05" and p_text(7.335e-90) == "7.335e-90" and p_text(math.nan) == "-"
