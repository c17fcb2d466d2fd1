"""The compiled curation kernels against a slow plain-Python statement of the same definitions, on seeded random
rows (non-ASCII and astral characters, empty and very short rows, repeated text, URLs, mojibake), so a change to
either side that drifts from the other fails here."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from ftfy.badness import badness

from novaflow.data import kernels, minhash, ngrams, quality
from novaflow.data.quality import QualityThresholds, score_quality

MASK = (1 << 64) - 1
CHAR_BASE, WORD_BASE = int(kernels.CHAR_BASE), int(kernels.WORD_BASE)
SPACE = {9, 10, 11, 12, 13, 28, 29, 30, 31, 32}
PUNCTUATION = {c for c in range(128) if not chr(c).isalnum() and chr(c) != "_" and not chr(c).isspace()}
PIECES = [
    *"abcdefghij XYZ 0123456789",
    " ", " ", "\n", "\t", ".", ",", "'", "-", "(", ")", "_", "!", "\x1c",
    "é", "ü", "ß", "Ω", "日本", "–", "…", "Ã©", "Â£", "â€œ", "\ufffd", "😀", "𝔘𝔫", "œ", "Ã ",
    "à\x80\x81", "Ð\x9d", "\x85",
    "http://example.com/a?b=1 ", "https://porn.example/x ", "word ", "the same words again ",
]  # fmt: skip


def _rows(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = ["", "a", "A.", "...", " ", "\n\n", "one two", "x" * 12, "ab" * 40]
    while len(out) < count:
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 120)))
        if rng.random() < 0.2:
            text = text[: rng.randint(1, 30)] * rng.randint(2, 12)  # repeated text
        out.append(text)
    return out


def _mix(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def _range_hash(raw: bytes) -> int:
    acc = sum((b + 1) * pow(CHAR_BASE, k, 1 << 64) for k, b in enumerate(raw)) + len(raw) * WORD_BASE
    return _mix(acc & MASK)


def _window_hash(hashes: list[int]) -> int:
    return _mix(sum(h * pow(WORD_BASE, k, 1 << 64) for k, h in enumerate(hashes)) & MASK)


def _words(lowered: bytes) -> list[int]:
    """Runs of non-space bytes, ASCII punctuation stripped from both ends, empty ones dropped; hashed."""
    out = []
    for token in bytes(32 if b in SPACE else b for b in lowered).split(b" "):
        core = [i for i, b in enumerate(token) if b not in PUNCTUATION and b not in SPACE]
        if core:
            out.append(_range_hash(token[core[0] : core[-1] + 1]))
    return out


def _signature(words: list[int], shingle: int) -> bytes:
    if not words:
        return bytes(256)
    if len(words) < shingle:
        hashes = [_mix(sum(words) & MASK)]
    else:
        hashes = [_window_hash(words[i : i + shingle]) for i in range(len(words) - shingle + 1)]
    bins: dict[int, int] = {}
    for h in hashes:
        bins[h >> 56] = min(bins.get(h >> 56, 1 << 32), h & 0xFFFFFFFF)
    out = []
    for j in range(256):
        distance = next(d for d in range(256) if (j + d) % 256 in bins)
        out.append((bins[(j + distance) % 256] + distance * 0x9E3779B1) & 0xFF)
    return bytes(out)


@pytest.fixture(scope="module")
def rows() -> list[str]:
    return _rows(600, seed=27)


def test_words_and_signatures_equal_the_plain_definitions(rows: list[str]) -> None:
    arr = pa.array(rows)
    tokens = ngrams.words(arr)
    lowered = pc.utf8_lower(arr).to_pylist()  # Arrow's lower-casing is part of the definition
    expected = [_words(text.encode()) for text in lowered]
    got: list[list[int]] = [[] for _ in rows]
    for h, r in zip(tokens.hashes.tolist(), tokens.rows.tolist(), strict=True):
        got[r].append(h)
    assert got == expected
    for shingle in (1, 3, 5):
        sigs, has_words = minhash.signatures(tokens, shingle)
        assert [bytes(s) for s in sigs] == [_signature(w, shingle) for w in expected]
        assert has_words.tolist() == [bool(w) for w in expected]


def test_string_keys_are_the_byte_range_hash_of_each_row(rows: list[str]) -> None:
    """The compiled key (four interleaved sums) is the plain definition and the numpy one, for every length mod 4,
    whatever the row's neighbours and whether the array is a slice."""
    texts = [*rows, *("abcdefgh"[:k] for k in range(9)), "é😀x" * 3]
    array = pa.array(texts)
    keys = kernels.string_keys(*ngrams.utf8_view(array))
    assert keys.tolist() == [_range_hash(t.encode()) for t in texts]
    assert keys.tolist() == ngrams.string_hashes(array).tolist()
    assert kernels.string_keys(*ngrams.utf8_view(array.slice(5, 40))).tolist() == keys[5:45].tolist()
    assert len(set(keys.tolist())) == len(set(texts))


def test_a_short_row_signature_does_not_depend_on_its_neighbours() -> None:
    alone = minhash.signatures(ngrams.words(pa.array(["Hello"])))[0][0]
    among = minhash.signatures(ngrams.words(pa.array(["a", "Hello", "three words here", "x y"])))[0][1]
    assert bytes(alone) == bytes(among)


def test_word_repetition_is_exact_where_it_can_fail_and_a_bound_elsewhere(rows: list[str]) -> None:
    arr = pa.array(rows)
    tokens = ngrams.words(arr)
    per_row = [_words(t.encode()) for t in pc.utf8_lower(arr).to_pylist()]
    for limit in (0.0, 0.3):
        total, repeated = kernels.word_repetition(tokens.hashes, tokens.rows, len(rows), 10, limit)
        for i, words in enumerate(per_row):
            grams = [_window_hash(words[k : k + 10]) for k in range(len(words) - 9)]
            exact = sum(1 for g in grams if grams.count(g) > 1)
            assert total[i] == len(grams)
            assert repeated[i] >= exact
            if repeated[i] / max(len(grams), 1) > limit:
                assert repeated[i] == exact


def test_text_counts_equal_the_plain_definitions(rows: list[str]) -> None:
    arr = pa.array(rows)
    data, offsets = ngrams.utf8_view(arr)
    chars, alnum, lines, line_chars, flags, highest, repeated, mojibake, (a_rows, a_points) = kernels.text_counts(
        data, offsets, quality._alnum_table(), 10
    )
    astral = np.zeros(len(rows), dtype=np.int64)
    np.add.at(astral, a_rows, [chr(int(p)).isalnum() for p in a_points])
    for i, text in enumerate(rows):
        raw = text.encode()
        non_empty = [line for line in text.split("\n") if line]
        grams = [text[k : k + 10] for k in range(len(text) - 9)]
        assert chars[i] == len(text)
        assert alnum[i] + astral[i] == sum(ch.isalnum() for ch in text)
        assert (lines[i], line_chars[i]) == (len(non_empty), sum(map(len, non_empty)))
        assert bool(flags[i] & 1) == ("http" in text)
        assert bool(flags[i] & 2) == any(b >= 0x80 for b in raw)
        two = len(re.findall("[\xc0-\xdf][\x80-\xbf]", text))
        three = len(re.findall("[\xe0-\xef][\x80-\xbf][\x80-\xbf]", text))
        assert mojibake[i] == 2 * two + 3 * three + text.count("\ufffd")
        assert sorted(a_points[a_rows == i].tolist()) == sorted(ord(c) for c in text if ord(c) > 0xFFFF)
        assert highest[i] >= max((grams.count(g) for g in grams), default=0)
        assert repeated[i] >= sum(1 for g in grams if grams.count(g) > 1)


def test_badness_read_around_its_characters_counts_what_ftfy_counts_on_the_whole_row(rows: list[str]) -> None:
    marks = quality._badness_marks()
    assert marks is not None, "ftfy's badness expression no longer fits the marks; the whole rows are read"
    table, _ = marks
    rng = random.Random(3)
    marked = [chr(c) for c in np.flatnonzero(table)]
    dense = [
        "".join(rng.choice([*marked, *"ab Z\n.'", "Ã", "Â ", "😀"]) for _ in range(rng.randint(0, 40)))
        for _ in range(3000)
    ]
    texts = rows + dense + ["Ã x", "Â ", "x Ã ", "вЂ"]
    arr = pa.array(texts)
    wide = np.flatnonzero([any(ord(c) > 127 for c in t) for t in texts])
    assert quality._badness_counts(arr, wide).tolist() == [badness(t) for t in texts]


def test_quality_verdicts_equal_a_plain_reading_of_the_sub_filters(rows: list[str]) -> None:
    limits = QualityThresholds(min_length=20, max_char_repetition=0.3, max_word_repetition=0.3)
    arr = pa.array(rows)
    result = score_quality(arr, ngrams.words(arr), limits)
    per_row_words = [_words(t.encode()) for t in pc.utf8_lower(arr).to_pylist()]
    for i, text in enumerate(rows):
        failed, score = _plain_quality(text, per_row_words[i], limits)
        assert result.failed[i] == failed, (i, text)
        if failed is not None:
            assert float(result.scores[i]) == pytest.approx(score, abs=1e-12), (i, text)


def _plain_quality(text: str, words: list[int], limits: QualityThresholds) -> tuple[str | None, float]:
    n = len(text)
    one = pa.array([text])
    url_chars = n - len(pc.replace_substring_regex(one, quality.URL_PATTERN, "")[0].as_py())
    url = url_chars / n if n else 1.0
    porn = bool(pc.match_substring_regex(one, quality._PORN_URL)[0].as_py())
    alnum = sum(ch.isalnum() for ch in text) / n if n else 0.0
    word_grams = [_window_hash(words[k : k + limits.word_ngram]) for k in range(len(words) - limits.word_ngram + 1)]
    word_rep = sum(word_grams.count(g) > 1 for g in word_grams) / len(word_grams) if word_grams else 0.0
    grams = [text[k : k + limits.char_ngram] for k in range(n - limits.char_ngram + 1)]
    freq = sorted((grams.count(g) for g in set(grams)), reverse=True)
    top = min(int(len(freq) ** 0.5), sum(f > 1 for f in freq))
    char_rep = sum(freq[:top]) / len(grams) if grams else 0.0
    two = len(re.findall("[\xc0-\xdf][\x80-\xbf]", text))
    three = len(re.findall("[\xe0-\xef][\x80-\xbf][\x80-\xbf]", text))
    moji = (2 * two + 3 * three + text.count("\ufffd")) / max(n, 1)
    bad = badness(text) / max(n, 1)  # ftfy's own definition
    lines = [line for line in text.split("\n") if line]
    average = sum(map(len, lines)) / len(lines) if lines else 0.0
    checks = [
        ("url", url > limits.max_url_ratio or porn, url),
        ("alphanumeric", alnum < limits.min_alnum_ratio, alnum),
        ("word-repetition", word_rep > limits.max_word_repetition, word_rep),
        ("char-repetition", char_rep > limits.max_char_repetition, char_rep),
        ("mojibake", moji > limits.max_mojibake_ratio or bad > limits.max_badness, max(moji, bad)),
        ("length", n < limits.min_length, float(n)),
        (
            "line-length",
            not lines or (len(lines) >= limits.min_lines and average < limits.min_avg_line_length),
            average,
        ),
    ]
    return next(((name, score) for name, fail, score in checks if fail), (None, 0.0))


@pytest.mark.slow
def test_after_warming_a_filtered_chunk_compiles_nothing_more() -> None:
    """The image build runs ``python -m novaflow.data.kernels`` (:func:`kernels.warm`); a kernel it leaves out, or
    calls with other argument types than the filters pass, would compile on every run of the image."""
    import json
    import subprocess
    import sys

    probe = """
import json, re
from pathlib import Path
import pyarrow as pa
from novaflow.data import kernels
kernels.warm()
sources = "".join(path.read_text() for path in Path(kernels.__file__).parent.glob("*.py"))
found = re.findall(r"from novaflow\\.data\\.kernels import ([\\w, ]+)", sources)
names = {n.strip() for line in found for n in line.split(",")}
warmed = {name: len(getattr(kernels, name).signatures) for name in sorted(names)}
from novaflow.data.filters import CurationConfig, documents, judge_chunk
text = "Plain text here and there.\\nhttp://x.io/a " * 9
rows = pa.array(["", None, "a", text, "Ã© caf\\u00e9 \\U0001d518 \\ufffd " * 20])
docs = documents({"query": rows.slice(1), "response": rows.slice(1)}, ("query", "response"))
judge_chunk(docs, CurationConfig.parse("near-dedup,quality,language=en,dedup"))
judge_chunk(pa.array([""] * 3), CurationConfig.parse("near-dedup,quality"))
after = {name: len(getattr(kernels, name).signatures) for name in sorted(names)}
print(json.dumps([warmed, after]))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    warmed, after = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"split_words", "minhash_signatures", "word_repetition", "text_counts", "pattern_segments"} <= set(warmed)
    assert {"join_pair", "string_keys"} <= set(warmed)
    assert all(count == 1 for count in warmed.values()), warmed
    assert after == warmed


@pytest.mark.slow
@pytest.mark.parametrize("spec", [None, "near-dedup"])
def test_numba_loads_only_when_a_filter_runs(tmp_path: Path, spec: str | None) -> None:
    """numba and LLVM cost ~0.3 s and ~170 MB resident: a ``data prepare`` without filters never imports them."""
    import json
    import subprocess
    import sys

    source = tmp_path / "ten.csv"
    source.write_text("query,response\n" + "".join(f"question {i} here,answer {i} there\n" for i in range(10)))
    argv = ["data", "prepare", str(source), "--method", "sft", "--out", str(tmp_path / "out")]
    argv += ["--filter", spec] if spec else []
    probe = (
        f"from novaflow.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit as e:\n    assert not e.code, e\n"
        "import json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert ("numba" in loaded, "llvmlite" in loaded) == (bool(spec), bool(spec))


def test_a_slice_with_nulls_reads_like_its_copy(rows: list[str]) -> None:
    """Chunks arrive as slices of a column (read in place, not copied), some with nulls (read as empty text)."""
    column = pa.array([None if i % 7 == 3 else text for i, text in enumerate(rows)])
    part = column.slice(5, 200)
    copy = pa.array([text or "" for text in part.to_pylist()])
    for a, b in zip(ngrams.utf8_view(part), ngrams.utf8_view(copy), strict=True):
        assert a.tolist() == b.tolist()
    limits = QualityThresholds()
    assert (
        score_quality(part, ngrams.words(part), limits).failed == score_quality(copy, ngrams.words(copy), limits).failed
    )
    assert bytes(minhash.signatures(ngrams.words(part))[0]) == bytes(minhash.signatures(ngrams.words(copy))[0])
