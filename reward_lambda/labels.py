"""Tolerant label extraction from free model text (one implementation for the grader and the evaluation).

A model asked for "the label only" still answers "**LQ_EDIT**", "The answer is lq_edit." or a paragraph. We
accept any of those when exactly one known label is named; an answer that names two different labels is no
prediction, because rewarding a hedge teaches the model to hedge.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

DEFAULT_LABELS: tuple[str, ...] = ("HQ", "LQ_EDIT", "LQ_CLOSE")


def _canon(text: str) -> str:
    """Upper-case and turn every run of non-alphanumerics into one underscore-free separator."""
    return re.sub(r"[^0-9A-Z]+", " ", text.upper()).strip()


def _label_pattern(label: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in _canon(label).split()]
    # Parts of a label may be joined by '_', '-', a space or nothing ("LQ_EDIT", "lq-edit", "LQ EDIT", "LQEDIT").
    body = r"[\s_\-]?".join(parts)
    return re.compile(rf"(?<![0-9A-Z]){body}(?![0-9A-Z])")


_CACHE: dict[tuple[str, ...], list[tuple[str, re.Pattern[str]]]] = {}


def _patterns(labels: Sequence[str]) -> list[tuple[str, re.Pattern[str]]]:
    key = tuple(labels)
    pats = _CACHE.get(key)
    if pats is None:
        pats = [(label, _label_pattern(label)) for label in labels]
        _CACHE[key] = pats
    return pats


def extract_label(text: object, labels: Iterable[str] = DEFAULT_LABELS) -> str | None:
    """The single label ``text`` names, in its canonical spelling, or None.

    Case, punctuation and markdown are ignored. None when no label or more than one different label appears.
    A label that is a prefix of another (``LQ`` vs ``LQ_EDIT``) is not counted inside the longer one.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    upper = text.upper()
    found: set[str] = set()
    spans: list[tuple[int, int]] = []
    # Longest labels first so a short label inside a long one is not double counted.
    for label, pattern in sorted(_patterns(tuple(labels)), key=lambda lp: -len(lp[0])):
        for match in pattern.finditer(upper):
            start, end = match.span()
            if any(s <= start and end <= e for s, e in spans):
                continue
            spans.append((start, end))
            found.add(label)
    if len(found) == 1:
        return next(iter(found))
    return None
