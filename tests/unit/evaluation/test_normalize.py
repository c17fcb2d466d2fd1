from __future__ import annotations

import pytest

from novaflow.evaluation.normalize import helm_normalizer

# The normalizer's quirks (docs/gen-qa-metrics.md#the-normalizer-behind-qem-and-f1_score_quasi), one row each.
TABLE = [
    ("32.", "32.0"),
    ("1.0", "10.0"),
    ("3.14", "314.0"),
    ("314", "314.0"),
    ("0.5", "5.0"),
    ("05", "5.0"),
    ("-5", "5.0"),
    ("+5", "5.0"),
    ("$1,000", "1000.0"),
    ("1,5", "15.0"),
    ("3/4", "34.0"),
    ("1e3", "1000.0"),
    ("1e400", "inf"),
    ("Infinity", "inf"),
    ("NaN", "nan"),
    ("12345678901234567890", "1.2345678901234567e+19"),
    ("٣", "3.0"),
    ("LQ_EDIT", "lqedit"),
    ("LQ_CLOSE", "lqclose"),
    ("apple-pie", "apple pie"),
    ("don't", "dont"),
    ("U.S.A.", "usa"),
    ("The Answer", "answer"),
    ("an apple", "apple"),
    ("The cat, the hat.", "cat hat"),
    ("the the", ""),
    ("A", ""),
    ("a\nb", "b"),
    ("A\tB", "b"),
    ("x\ty", "x y"),
    ("¿Qué?", "¿qué"),
    ("café!", "café"),
    ("The answer is 42.", "answer is 42.0"),
]


@pytest.mark.parametrize(("text", "expected"), TABLE)
def test_helm_normalizer_reproduces_every_documented_quirk(text: str, expected: str) -> None:
    assert helm_normalizer(text) == expected


def test_qem_equalities_from_the_reference() -> None:
    assert helm_normalizer("The answer is 42.") == helm_normalizer("answer is 42")
    assert helm_normalizer("3.14") == helm_normalizer("314")
    assert helm_normalizer("0.5") == helm_normalizer("05") == helm_normalizer("5")
    assert helm_normalizer("-5") == helm_normalizer("5")
