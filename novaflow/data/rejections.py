"""A rejected row: where it came from (file, 1-based row), which field, and why.

Nothing is lost: every row that does not make it into a Nova file is written to ``rejected.jsonl`` with enough
context to find and fix it in the source.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Rejection:
    """One rejected row. ``row`` is the 1-based record number in ``source`` (for JSONL: the line number)."""

    source: str
    row: int | None
    field: str
    reason: str
    record: Any = dataclasses.field(default=None, compare=False)  # the class has its own `field`

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "row": self.row, "field": self.field, "reason": self.reason}
        if self.record is not None:
            out["record"] = self.record
        return out

    @property
    def kind(self) -> str:
        """The reason without row-specific detail, for counting rejections by reason."""
        return self.reason.split(":", 1)[0]
