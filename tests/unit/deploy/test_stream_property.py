"""Any chunking of a response stream gives the same text (hypothesis: 300 drawn chunkings, seconds, so slow)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novaflow.deploy.stream import StreamAssembler
from tests.unit.deploy.test_stream import PIECES, split_at, sse_stream

pytestmark = pytest.mark.slow


@settings(max_examples=300, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40), crlf=st.booleans())
def test_any_chunking_gives_the_same_text(cuts: list[int], crlf: bool) -> None:
    data = sse_stream(PIECES, crlf=crlf)
    asm = StreamAssembler(clock=lambda: 0.0)
    produced = []
    for chunk in split_at(data, cuts):
        produced.extend(asm.feed(chunk))
    result = asm.close()
    assert result.text == "".join(PIECES)
    assert produced == PIECES
    assert result.finish_reason == "stop"
    assert result.usage == {"prompt_tokens": 12, "completion_tokens": len(PIECES)}
    assert asm.done
