"""The HELM normalizer exactly as lighteval 0.10 applies it for ``qem`` and ``f1_score_quasi``.

Its quirks (punctuation removed before the float cast, so ``"3.14"`` becomes ``"314.0"``; hyphens split tokens; only
ASCII punctuation removed) are what make Nova's quasi metrics what they are, so they are reproduced, not fixed.
Tokens repeat a lot across an evaluation set, hence the per-token cache.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache

_SPLIT = re.compile(" |-")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NO_PUNCT = str.maketrans("", "", string.punctuation)


@lru_cache(maxsize=200_000)
def _normalize_token(token: str) -> str:
    text = token.lower().translate(_NO_PUNCT)
    try:
        text = str(float(text))
    except ValueError:
        pass
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def helm_normalizer(text: str) -> str:
    """Normalize ``text`` the way lighteval's ``helm_normalizer`` does.

    Its steps and quirks: docs/gen-qa-metrics.md#the-normalizer-behind-qem-and-f1_score_quasi.

    Example:
        >>> helm_normalizer("The answer is 3.14!")
        'answer is 314.0'
    """
    tokens = (_normalize_token(t) for t in _SPLIT.split(text))
    return " ".join(t for t in tokens if t != "").strip()
