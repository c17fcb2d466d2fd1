"""Open a page in a real headless browser (Debian's chromium): its DOM after the scripts ran, and its console.

Chromium writes every console message (console.error, uncaught exceptions, warnings) to stderr as
``INFO:CONSOLE`` lines with ``--enable-logging=stderr``; a clean page writes none. A fresh profile directory per
call keeps runs independent; the flags keep it from reaching the network (the page must be self-contained).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)
CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\]? ?(.*)")


def browser() -> str:
    """The installed browser; the test is skipped, saying so, only where none is installed (CI installs one)."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no headless browser installed (apt-get install -y chromium)")


@dataclass
class Page:
    dom: str
    console: list[str]


def open_page(path: Path, *, budget_ms: int = 10000, timeout: float = 180.0) -> Page:
    """Load ``path``, let its scripts run (virtual time), and return the DOM and every console message."""
    with tempfile.TemporaryDirectory(prefix="novaflow-browser-") as profile:
        done = subprocess.run(
            [
                browser(),
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={budget_ms}",
                "--dump-dom",
                path.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [m.group(1) for line in done.stderr.splitlines() if (m := CONSOLE.search(line))]
    return Page(done.stdout, console)
