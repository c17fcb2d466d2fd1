"""Assemble streamed model output into text, and time the first token.

SageMaker's ``PayloadPart.Bytes`` chunks are cut wherever the transport cuts them: a chunk may end in the middle
of an SSE ``data:`` line, of a JSON object, or of a multi-byte UTF-8 character. Bytes are therefore buffered
until a full line arrives and only then decoded and parsed (docs/inference.md#invoking). Both SSE
(``data: {...}`` ... ``data: [DONE]``) and bare JSON lines are accepted.

Example:
    >>> asm = StreamAssembler(clock=iter([0.0, 0.5, 0.7]).__next__)
    >>> asm.feed(b'data: {"choices": [{"delta": {"content": "H')
    []
    >>> asm.feed(b'Q"}}]}\\n\\ndata: [DONE]\\n\\n')
    ['HQ']
    >>> asm.close().text
    'HQ'
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from novaflow.errors import DeployError

DONE_MARKER = "[DONE]"
_SSE_SKIP = ("event:", "id:", "retry:", ":")


@dataclass
class StreamResult:
    """The assembled answer plus timing: seconds from the request to the first text and to the end."""

    text: str
    first_token_seconds: float | None
    total_seconds: float
    chunks: int
    records: int
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    pieces: list[str] = field(default_factory=list)


class TextTimer:
    """Collects text pieces and notes when the first non-empty one arrived (on an injectable clock)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter, start: float | None = None) -> None:
        self.clock = clock
        self.start = clock() if start is None else start
        self.first: float | None = None
        self.pieces: list[str] = []

    def add(self, text: str) -> None:
        if not text:
            return
        if self.first is None:
            self.first = self.clock() - self.start
        self.pieces.append(text)

    def elapsed(self) -> float:
        return self.clock() - self.start


class StreamAssembler:
    """Feed raw chunks with :meth:`feed`; :meth:`close` returns the :class:`StreamResult`."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter, start: float | None = None) -> None:
        self.timer = TextTimer(clock, start)
        self._buffer = bytearray()
        self.chunks = 0
        self.records = 0
        self.done = False
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None

    def feed(self, data: bytes) -> list[str]:
        """Add one chunk; return the text pieces completed by it (possibly none)."""
        self.chunks += 1
        self._buffer.extend(data)
        produced: list[str] = []
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                break
            line = bytes(self._buffer[:newline])
            del self._buffer[: newline + 1]
            produced.extend(self._line(line))
        return produced

    def close(self) -> StreamResult:
        """Flush a final line without newline; DeployError if the stream ended inside a record."""
        if self._buffer.strip():
            tail = bytes(self._buffer)
            self._buffer.clear()
            try:
                self._line(tail)
            except DeployError as exc:
                raise DeployError(f"model stream ended in the middle of a record: {tail[:200]!r}") from exc
        return StreamResult(
            text="".join(self.timer.pieces),
            first_token_seconds=self.timer.first,
            total_seconds=self.timer.elapsed(),
            chunks=self.chunks,
            records=self.records,
            finish_reason=self.finish_reason,
            usage=self.usage,
            pieces=list(self.timer.pieces),
        )

    def _line(self, raw: bytes) -> list[str]:
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise DeployError(f"model stream line is not UTF-8: {raw[:200]!r}") from exc
        if not line or line.startswith(_SSE_SKIP):
            return []
        if line.startswith("data:"):
            line = line[5:].strip()
        if line == DONE_MARKER:
            self.done = True
            return []
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DeployError(f"model stream record is not JSON: {line[:200]!r}") from exc
        self.records += 1
        text = self._record(record)
        self.timer.add(text)
        return [text] if text else []

    def _record(self, record: Any) -> str:
        if not isinstance(record, dict):
            raise DeployError(f"model stream record is not a JSON object: {str(record)[:200]!r}")
        if "error" in record:
            raise DeployError(f"model stream reported an error: {record['error']}")
        if record.get("usage"):
            self.usage = record["usage"]
        choice = first_choice(record)
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        return choice_text(choice)


def first_choice(record: dict[str, Any]) -> dict[str, Any]:
    choices = record.get("choices") or []
    return choices[0] if choices and isinstance(choices[0], dict) else {}


def choice_text(choice: dict[str, Any]) -> str:
    """Text of an OpenAI-style choice: streaming ``delta.content``, chat ``message.content`` or ``text``."""
    for key in ("delta", "message"):
        part = choice.get(key)
        if isinstance(part, dict):
            content = part.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(c.get("text", "") for c in content if isinstance(c, dict))
    text = choice.get("text")
    return text if isinstance(text, str) else ""
