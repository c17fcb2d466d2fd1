"""Small hand-written inputs whose every byte is known, so outputs can be compared exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

SAID = 'He said "use pandas" – ok?'
TRICKY_BODY = '<p>Why does\r\nthis fail?</p>\n<pre><code>def f():\n\treturn "naïve 数据 🙂"\n</code></pre>\n'


def quote(field: str) -> str:
    """RFC 4180 quoting, written out by hand so the test does not trust the code under test."""
    return '"' + field.replace('"', '""') + '"'


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def tricky_csv(tmp_path: Path) -> Path:
    """BOM, CRLF record ends, a quoted multi-line body with CRLF/LF/tab/HTML/quotes/non-ASCII, an empty-ish field."""
    text = f"\ufeffId,Body,Y\r\n1,{quote(TRICKY_BODY)},HQ\r\n2,{quote(SAID)},LQ_EDIT\r\n3,plain,LQ_CLOSE\r\n"
    return write_bytes(tmp_path / "tricky.csv", text.encode("utf-8"))
