"""A finished file takes an older one's name without a rename over it (which ext4 makes pay for both files), the
older one freed on a thread of its own; the Python collector held back while a phase builds many objects."""

from __future__ import annotations

import gc
import os
import threading
from pathlib import Path

import pytest

from novaflow.data import file_swap
from novaflow.data.file_swap import move_over
from novaflow.data.gc_pause import collector_paused


def _no_replace(*args: object) -> None:
    raise AssertionError("os.replace called: the rename went over an existing file")


def test_the_new_file_takes_the_name_and_a_reader_of_the_old_one_keeps_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = tmp_path / "train.jsonl", tmp_path / "train.jsonl.partial"
    old.write_bytes(b"old rows\n" * 1000)
    new.write_bytes(b"new rows\n")
    monkeypatch.setattr(os, "replace", _no_replace)
    with old.open("rb") as reader:
        move_over(new, old)
        assert reader.read() == b"old rows\n" * 1000  # its inode lives while it is open
    for thread in threading.enumerate():
        if thread.name == "novaflow-release-old-file":
            thread.join()
    assert old.read_bytes() == b"new rows\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]


def test_a_missing_old_file_is_a_plain_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    monkeypatch.setattr(os, "replace", _no_replace)
    monkeypatch.setattr(file_swap, "release_later", lambda close: started.append("release"))
    (tmp_path / "a").write_bytes(b"x")
    move_over(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b").read_bytes() == b"x" and not (tmp_path / "a").exists()
    assert started == []  # nothing to release


def test_where_an_open_file_cannot_be_unlinked_the_plain_replace_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows refuses to unlink a file that is open."""
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(b"old")
    new.write_bytes(b"new")

    def refuse(path: object) -> None:
        raise PermissionError(13, "The process cannot access the file because it is being used")

    monkeypatch.setattr(os, "unlink", refuse)
    move_over(new, old)
    assert old.read_bytes() == b"new" and not new.exists()


def test_a_missing_new_file_is_an_error_that_leaves_the_old_file(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"old")
    with pytest.raises(FileNotFoundError):
        move_over(tmp_path / "absent", tmp_path / "old")
    assert (tmp_path / "old").read_bytes() == b"old"


def test_the_collector_is_held_back_in_the_block_and_restored_as_it_was() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("failed in the block")
    assert gc.isenabled()
