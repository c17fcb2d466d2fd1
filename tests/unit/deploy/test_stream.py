from __future__ import annotations

import json

import pytest

from novaflow.deploy.stream import StreamAssembler
from novaflow.errors import DeployError

PIECES = ["L", "Q_", "EDIT", " — ", "naïve ", "日本語", " ✓"]


def sse_stream(pieces: list[str], *, crlf: bool = False) -> bytes:
    nl = "\r\n" if crlf else "\n"
    out = []
    for i, piece in enumerate(pieces):
        record = {"id": "c1", "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        out.append(f"data: {json.dumps(record, ensure_ascii=False)}{nl}{nl}")
        if i == 0:
            out.append(f": keep-alive comment{nl}event: message{nl}")
    final = {
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": len(pieces)},
    }
    out.append(f"data: {json.dumps(final)}{nl}{nl}data: [DONE]{nl}{nl}")
    return "".join(out).encode("utf-8")


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, last = [], 0
    for p in [*points, len(data)]:
        chunks.append(data[last:p])
        last = p
    return chunks


def test_every_single_byte_boundary_including_inside_multibyte_characters() -> None:
    data = sse_stream(PIECES)
    asm = StreamAssembler(clock=lambda: 0.0)
    for i in range(len(data)):
        asm.feed(data[i : i + 1])
    result = asm.close()
    assert result.text == "".join(PIECES)
    assert result.chunks == len(data)
    assert result.records == len(PIECES) + 1


def test_first_token_time_is_when_the_first_text_completes_not_the_first_chunk() -> None:
    ticks = iter([10.0, 10.2, 11.5])  # start, first text, close
    asm = StreamAssembler(clock=ticks.__next__)
    record = b'data: {"choices": [{"delta": {"role": "assistant", "content": ""}}]}\n\n'
    assert asm.feed(record) == []  # an empty role-only delta is not a token
    assert asm.feed(b'data: {"choices": [{"delta": {"content": "H') == []
    assert asm.feed(b'Q"}}]}\n') == ["HQ"]  # clock 10.2
    assert asm.feed(b'data: {"choices": [{"delta": {"content": "!"}}]}\n') == ["!"]  # no clock read: not a first
    result = asm.close()  # 11.5
    assert result.first_token_seconds == pytest.approx(0.2)
    assert result.total_seconds == pytest.approx(1.5)
    assert result.text == "HQ!"


def test_json_lines_and_text_completion_records_are_accepted() -> None:
    asm = StreamAssembler(clock=lambda: 0.0)
    asm.feed(b'{"choices": [{"text": "LQ"}]}\n{"choices": [{"text": "_CLOSE", "finish_reason": "length"}]}')
    result = asm.close()  # the last record had no newline: flushed on close
    assert (result.text, result.finish_reason) == ("LQ_CLOSE", "length")


def test_stream_cut_inside_a_record_is_an_error() -> None:
    asm = StreamAssembler(clock=lambda: 0.0)
    asm.feed(b'data: {"choices": [{"delta": {"content": "H')
    with pytest.raises(DeployError, match="ended in the middle of a record"):
        asm.close()


def test_error_record_and_garbage_are_reported() -> None:
    with pytest.raises(DeployError, match="stream reported an error: overloaded"):
        StreamAssembler().feed(b'data: {"error": "overloaded"}\n')
    with pytest.raises(DeployError, match="record is not JSON: 'hello'"):
        StreamAssembler().feed(b"hello\n")
