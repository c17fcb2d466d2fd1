"""Seeded (gold, prediction) pairs that exercise tokenizers: non-ASCII, punctuation, labels, numbers, empties."""

from __future__ import annotations

import random

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "Paris",
    "paris",
    "HQ",
    "LQ_EDIT",
    "LQ_CLOSE",
    "3.14",
    "314",
    "-5",
    "$1,000",
    "don't",
    "U.S.A.",
    "café",
    "naïve",
    "résumé",
    "Ünïcode",
    "¿Qué?",
    "x\ty",
    "a\nb",
    "an",
    "apple-pie",
    "1e3",
    "NaN",
    "Infinity",
    "٣",
    ".",
    ",",
    "!!",
    "(ok)",
    "e.g.",
    "12345678901234567890",
    "very",
    "very",
    "good",
    "42.",
    "answer",
    "is",
    "The",
    "A",
    "—",
    "日本語",
    "emoji🙂",
    "  ",
    "",
]


def random_pairs(n: int, seed: int = 0, max_len: int = 30) -> list[tuple[str, str]]:
    rnd = random.Random(seed)
    pairs = []
    for _ in range(n):
        gold = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, max_len)))
        if rnd.random() < 0.3:
            pred = gold
        elif rnd.random() < 0.5:
            words = gold.split()
            rnd.shuffle(words)
            pred = " ".join(words[: rnd.randint(0, len(words))]) + rnd.choice(["", ".", " ", "\n", "!"])
        else:
            pred = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, max_len)))
        pairs.append((gold, pred))
    pairs += [("", ""), ("", "x"), ("x", ""), ("   ", " "), ("HQ", "HQ"), ("The", "A")]
    return pairs
