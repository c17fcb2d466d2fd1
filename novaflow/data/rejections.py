"""A rejected row: where it came from (file, 1-based row), which field, and why.

Nothing is lost: every row that does not make it into a Nova file is written to ``rejected.jsonl`` with enough
context to find and fix it in the source.
"""

from __future__ import annotations

import dataclasses
import heapq
from array import array
from collections.abc import Iterable
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from novaflow.data.file_swap import move_over


@dataclasses.dataclass(frozen=True)
class Rejection:
    """One rejected row. ``row`` is the 1-based record number in ``source`` (for JSONL: the line number)."""

    source: str
    row: int | None
    field: str
    reason: str
    record: Any = dataclasses.field(default=None, compare=False)  # the class has its own `field`
    filter: str | None = None
    """The curation filter that removed a valid row (``dedup``, ``near-dedup``, ``language``, ``quality``)."""
    score: float | None = None
    """The filter's score for the row: similarity, language percent / 100, or the failing quality measure."""
    duplicate_of: int | None = None
    """Duplicates: the source row of the kept row this one repeats."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "row": self.row, "field": self.field, "reason": self.reason}
        if self.filter is not None:
            out["filter"] = self.filter
            out["score"] = self.score
            if self.duplicate_of is not None:
                out["duplicate_of"] = self.duplicate_of
        if self.record is not None:
            out["record"] = self.record
        return out

    @property
    def kind(self) -> str:
        """The reason without row-specific detail, for counting rejections by reason."""
        return self.reason.split(":", 1)[0]


class RejectionLog:
    """``rejected.jsonl`` written as rejections arrive, in row order, so they never pile up in memory.

    Rows arrive in ascending batches (chunks); a batch is sorted and appended. Rejections that arrive late with
    lower row numbers (the dataset-wide consistency rule decides at the end) are merged in when the log closes,
    and rejections without a row number go last, as a plain sort by row would place them.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._partial = path.with_name(path.name + ".partial")
        self._fh: BinaryIO | None = None
        self._rows = array("q")
        self._late: list[tuple[int, bytes]] = []
        """Rejections that came after higher row numbers were written: (row, line), merged in at the close."""
        self._unnumbered: list[Rejection] = []

    def __enter__(self) -> RejectionLog:
        self._fh = self._partial.open("wb")
        return self

    def add(self, rejected: Iterable[Rejection]) -> None:
        items = list(rejected)
        batch = sorted((r for r in items if r.row is not None), key=lambda r: r.row or 0)
        self._unnumbered.extend(r for r in items if r.row is None)
        if not batch:
            return
        self.count += len(batch)
        if self._rows and (batch[0].row or 0) < self._rows[-1]:
            # serialized now: a caller adding them while other work waits (a rewrite's copy) takes this off the close
            self._late.extend((r.row or 0, orjson.dumps(r.as_dict()) + b"\n") for r in batch)
            return
        assert self._fh is not None, "RejectionLog used outside its with block"
        self._fh.write(b"".join(orjson.dumps(r.as_dict()) + b"\n" for r in batch))
        self._rows.extend(r.row or 0 for r in batch)

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        assert self._fh is not None
        self._fh.close()
        if exc_type is not None:  # the preparation failed: no half-written log is left behind
            self._partial.unlink(missing_ok=True)
            return
        self.count += len(self._unnumbered)
        if self._late:
            self._merge_late()
        if self._unnumbered:
            with self._partial.open("ab") as fh:
                fh.write(b"".join(orjson.dumps(r.as_dict()) + b"\n" for r in self._unnumbered))
        move_over(self._partial, self.path)

    def _merge_late(self) -> None:
        late = sorted(self._late, key=itemgetter(0))
        merged = self._partial.with_name(self._partial.name + ".merge")
        with self._partial.open("rb") as old, merged.open("wb") as new:
            written = zip(self._rows, old, strict=True)
            new.writelines(line for _, line in heapq.merge(written, late, key=itemgetter(0)))
        move_over(merged, self._partial)

    def first(self, n: int) -> list[dict[str, Any]]:
        """The first ``n`` rejections in row order (after the log is closed)."""
        out: list[dict[str, Any]] = []
        with self.path.open("rb") as fh:
            for line in fh:
                if len(out) >= n:
                    break
                out.append(orjson.loads(line))
        return out
