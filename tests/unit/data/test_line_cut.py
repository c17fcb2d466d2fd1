"""Cutting lines out of a written JSONL file: the same bytes whatever the scan block, the copy mechanism, or where
the cut lines are (first, last, runs, all of them); the file's hash and counts reported; bad files named."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import numpy as np
import pytest

from novaflow.data import line_cut
from novaflow.data.line_cut import cut_lines
from novaflow.errors import DataError


def _lines(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [b'{"row":%d,"text":"%s"}' % (i, ("é" * rng.randint(0, 40)).encode()) for i in range(count)]


def _cut(path: Path, cut: list[int]) -> tuple[line_cut.CutFile, list[tuple[int, bytes]]]:
    seen: list[tuple[int, bytes]] = []
    result = cut_lines(path, np.array(cut, dtype=np.int64), lambda i, body: seen.append((i, body)))
    return result, seen


def _written(tmp_path: Path, seed: int) -> tuple[Path, bytes]:
    """A 30-line data file and its bytes."""
    path = tmp_path / "data.jsonl"
    original = b"".join(line + b"\n" for line in _lines(30, seed=seed))
    path.write_bytes(original)
    return path, original


CASES = [[], [0], [49], [0, 1, 2], [47, 48, 49], [3, 10, 11, 12, 30], list(range(50))]


@pytest.mark.parametrize("cut", CASES)
@pytest.mark.parametrize("block", [1, 7, 64, 8 << 20])
def test_cut_lines_leave_the_other_lines_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: list[int], block: int
) -> None:
    lines = _lines(50, seed=len(cut) + block)
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    monkeypatch.setattr(line_cut, "SCAN_BLOCK", block)
    result, seen = _cut(path, cut)
    expected = b"".join(line + b"\n" for i, line in enumerate(lines) if i not in set(cut))
    assert path.read_bytes() == expected
    assert seen == [(i, lines[i]) for i in cut]
    assert result == line_cut.CutFile(50 - len(cut), len(expected), hashlib.sha256(expected).hexdigest())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]  # no rewrite file left behind


def _ends(lines: list[bytes]) -> np.ndarray:
    return np.cumsum([len(line) + 1 for line in lines], dtype=np.int64)


@pytest.mark.parametrize("cut", CASES)
def test_known_line_ends_cut_the_same_bytes_without_scanning_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: list[int]
) -> None:
    """The writer's line ends give exactly the scan's spans: same file, same cut lines handed over, same counts and
    hash - and the file is never searched for newlines."""
    lines = _lines(50, seed=len(cut) + 11)
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))

    def no_scan(*args: object) -> None:
        raise AssertionError("the file was scanned for its lines")

    monkeypatch.setattr(line_cut, "_cut_spans", no_scan)
    seen: list[tuple[int, bytes]] = []
    result = cut_lines(path, np.array(cut, dtype=np.int64), lambda i, body: seen.append((i, body)), _ends(lines))
    expected = b"".join(line + b"\n" for i, line in enumerate(lines) if i not in set(cut))
    assert path.read_bytes() == expected
    assert seen == [(i, lines[i]) for i in cut]
    assert result == line_cut.CutFile(50 - len(cut), len(expected), hashlib.sha256(expected).hexdigest())


def test_line_ends_that_do_not_match_the_file_are_refused_and_the_file_kept(tmp_path: Path) -> None:
    """Ends from a different write (a longer or shorter file, a last byte that is not a newline, fewer lines than
    the cut needs) name the file and what to do, and leave it as it was."""
    path, original = _written(tmp_path, seed=6)
    lines = original.splitlines()
    ends = _ends(lines)
    keep = lambda i, body: None  # noqa: E731
    for wrong, message in [
        (ends[:-1], rf"data\.jsonl: holds {len(original)} bytes, not the {int(ends[-2])} written in 29 lines; "),
        (ends + 1, rf"data\.jsonl: holds {len(original)} bytes, not the {int(ends[-1]) + 1} written in 30 lines; "),
    ]:
        with pytest.raises(DataError, match=message + "prepare it again"):
            cut_lines(path, np.array([1], dtype=np.int64), keep, wrong)
    with pytest.raises(DataError, match=r"data\.jsonl: has 30 lines, fewer than the rows to cut out \(last: 30\)"):
        cut_lines(path, np.array([2, 30], dtype=np.int64), keep, ends)
    path.write_bytes(original[:-1] + b" ")
    with pytest.raises(DataError, match=r"data\.jsonl: the data file does not end with a newline"):
        cut_lines(path, np.array([1], dtype=np.int64), keep, ends)
    assert path.read_bytes() == original[:-1] + b" "
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]


def _every_third_cut(tmp_path: Path) -> tuple[Path, bytes, line_cut.CutFile]:
    lines = _lines(40, seed=3)
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    result, _ = _cut(path, [i for i in range(40) if i % 3 == 0])
    return path, b"".join(line + b"\n" for i, line in enumerate(lines) if i % 3), result


def test_without_kernel_copies_the_runs_are_written_from_the_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A platform without ``copy_file_range`` (macOS)."""
    monkeypatch.delattr(os, "copy_file_range", raising=False)
    path, expected, result = _every_third_cut(tmp_path)
    assert path.read_bytes() == expected
    assert result.sha256 == hashlib.sha256(expected).hexdigest()


def test_a_file_system_refusing_kernel_copies_part_way_gets_the_rest_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def refuses_the_third(src: int, dst: int, count: int, offset_src: int | None = None) -> int:
        calls.append(count)
        if len(calls) == 3:
            raise OSError(95, "Operation not supported")
        return os.write(dst, os.pread(src, count, offset_src or 0))

    monkeypatch.setattr(os, "copy_file_range", refuses_the_third, raising=False)
    path, expected, result = _every_third_cut(tmp_path)
    assert len(calls) == 3  # the rest went through write()
    assert path.read_bytes() == expected
    assert result.sha256 == hashlib.sha256(expected).hexdigest()


def test_a_file_without_a_final_newline_or_with_fewer_lines_is_named(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"a":1}\n{"a":2}')
    with pytest.raises(DataError, match=r"data\.jsonl: the data file does not end with a newline"):
        _cut(path, [0])
    assert path.read_bytes() == b'{"a":1}\n{"a":2}'  # untouched
    path.write_bytes(b'{"a":1}\n{"a":2}\n')
    with pytest.raises(DataError, match=r"data\.jsonl: has 2 lines, fewer than the rows to cut out \(last: 5\)"):
        _cut(path, [1, 5])
    assert path.read_bytes() == b'{"a":1}\n{"a":2}\n'


def test_an_empty_file_stays_empty(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"")
    result, seen = _cut(path, [])
    assert (result.rows, result.bytes, seen) == (0, 0, [])
    assert result.sha256 == hashlib.sha256(b"").hexdigest()


def test_a_failure_while_the_cut_lines_are_handled_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path, original = _written(tmp_path, seed=9)

    def refuse(index: int, body: bytes) -> None:
        if index == 20:
            raise DataError("row 21: not what we expected")

    with pytest.raises(DataError, match="row 21: not what we expected"):
        cut_lines(path, np.array([3, 20, 25], dtype=np.int64), refuse)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]


def test_then_runs_after_the_last_cut_line_and_its_failure_leaves_the_file(tmp_path: Path) -> None:
    """``then`` sees every cut line handed over, before the file is replaced; if it raises, nothing changes."""
    path, original = _written(tmp_path, seed=8)
    events: list[object] = []

    def then() -> None:
        events.append(("then", path.read_bytes() == original))

    cut_lines(path, np.array([4, 9], dtype=np.int64), lambda i, body: events.append(i), then=then)
    assert events == [4, 9, ("then", True)]
    assert len(path.read_bytes().splitlines()) == 28

    path.write_bytes(original)

    def failing() -> None:
        raise DataError("accounting failed")

    with pytest.raises(DataError, match="accounting failed"):
        cut_lines(path, np.array([4, 9], dtype=np.int64), lambda i, body: None, then=failing)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]


def test_a_read_failing_while_hashing_fails_the_cut_and_leaves_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash goes into the manifest: a read error on the hashing thread is raised, not swallowed with it."""
    path, original = _written(tmp_path, seed=4)
    real = os.pread
    hashing: list[str] = []

    def failing_on_the_hash_thread(fd: int, count: int, offset: int) -> bytes:
        if line_cut.threading.current_thread().name == "novaflow-hash-data":
            hashing.append("read")
            raise OSError(5, "Input/output error")
        return real(fd, count, offset)

    monkeypatch.setattr(os, "pread", failing_on_the_hash_thread)
    with pytest.raises(OSError, match="Input/output error"):
        _cut(path, [2, 7])
    assert hashing == ["read"]
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]


def test_a_copy_failing_on_its_thread_fails_the_cut_and_leaves_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy runs on a thread of its own: whatever stops it is raised in the caller, never a short file kept."""
    path, original = _written(tmp_path, seed=5)

    def broken_copy(*args: object) -> None:
        raise RuntimeError("copy stopped half-way")

    monkeypatch.setattr(line_cut, "_copy", broken_copy)
    with pytest.raises(RuntimeError, match="copy stopped half-way"):
        _cut(path, [2, 7])
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]
