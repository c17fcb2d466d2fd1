"""Numbers for people: four decimals, p-values and tiny values in scientific notation.

A Prefect table that shows ``0.006000000000000005`` or a p-value rounded to ``0.0000`` reads as noise or as a lie.
Everything a person reads (table artifacts, the HTML report, markdown) goes through these functions; the exact
values stay in the report's JSON and in S3, where a program reads them.

Example:
    >>> tidy_value(0.006000000000000005), tidy_value(7.335e-90, key="p_value"), tidy_value(5.625e-06)
    (0.006, '7.335e-90', '5.625e-06')
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

DECIMALS = 4
SMALLEST_FIXED = 10**-DECIMALS
"""Below this magnitude four decimals would print 0.0000: such values are written in scientific notation."""


def is_p_value(key: str | None) -> bool:
    return key is not None and (key == "p" or key.endswith(("p_value", "pvalue")))


def scientific(value: float) -> str:
    """``7.335e-90``: four significant digits, the way the gate line and papers print a p-value."""
    return f"{value:.3e}"


def tidy_value(value: Any, *, key: str | None = None) -> Any:
    """A table cell for a person: floats rounded to 4 decimals, p-values and tiny floats as scientific strings.

    Integers, strings and None pass through; NaN becomes None (an empty cell, not ``NaN``).
    """
    if isinstance(value, bool) or not isinstance(value, float | int):
        return value
    if isinstance(value, int) and not is_p_value(key):
        return value
    number = float(value)
    if math.isnan(number):
        return None
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if is_p_value(key) or (number != 0 and abs(number) < SMALLEST_FIXED):
        return scientific(number)
    return round(number, DECIMALS)


def tidy_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every row of a table artifact with its numbers tidied (keys decide which cells are p-values)."""
    return [{k: tidy_value(_plain(v), key=k) for k, v in row.items()} for row in rows]


def fixed(value: float | None, *, signed: bool = False) -> str:
    """Display text of a number: ``0.8620`` (``+0.8140`` when signed), ``-`` for missing or NaN."""
    if value is None or math.isnan(value):
        return "-"
    if value != 0 and abs(value) < SMALLEST_FIXED:
        return ("+" if signed and value > 0 else "") + scientific(value)
    return f"{value:+.{DECIMALS}f}" if signed else f"{value:.{DECIMALS}f}"


def p_text(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else scientific(value)


def _plain(value: Any) -> Any:
    """numpy scalars (``np.float64``, ``np.int64``) as Python numbers, so tidying sees what JSON will see."""
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, str | bytes) else value
