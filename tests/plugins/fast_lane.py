"""The fast lane (``pytest -m "not slow"``): what is slow is marked so, and a fast test that starts a process is
named.

Slow by where or what it uses, so nobody has to remember the marker: every test under ``tests/flows`` (whole flows
on the session's Prefect test server) and every test that uses the embedded AWS (a moto server; ``tests/aws``
uses it throughout). A test elsewhere that starts a subprocess or a worker process carries
``@pytest.mark.slow`` itself; when one does not, this plugin fails it in teardown naming what it started, as the
network guard does (the process still runs, so the code under test behaves as it would).
"""

from __future__ import annotations

import multiprocessing.process
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SLOW_FOLDERS = ("tests/flows/", "tests/aws/")
"""Folders whose every test runs a whole flow (``tests/flows``) or uses the embedded AWS (``tests/aws``, through its
conftest's autouse fixture)."""
FAST_LANE = "not slow"
_WHOLLY_SLOW = re.compile(r"^pytestmark = (\[[^\]\n]*)?pytest\.mark\.slow\b", re.MULTILINE)
SLOW_FIXTURES = frozenset({"local_aws_session"})
"""Fixtures that start a server (the embedded AWS)."""
_ROOT = Path(__file__).parents[2]
_STARTED: list[str] = []
_REAL_POPEN_INIT = subprocess.Popen.__init__
_REAL_PROCESS_START = multiprocessing.process.BaseProcess.start


def is_slow_by_place(item: pytest.Item) -> bool:
    where = Path(str(item.fspath)).resolve()
    in_slow_folder = any(where.is_relative_to(_ROOT / folder) for folder in SLOW_FOLDERS)
    return in_slow_folder or bool(SLOW_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """In the fast lane, the slow folders and the modules whose every test is slow are not even imported (their
    imports - Prefect, its workers, MLflow, hypothesis - cost seconds of collection for tests that would all be
    deselected)."""
    if (config.option.markexpr or "").strip() != FAST_LANE:
        return None
    where = collection_path.resolve()
    if any(where.is_relative_to(_ROOT / folder) for folder in SLOW_FOLDERS):
        return True
    if where.suffix == ".py" and _WHOLLY_SLOW.search(where.read_text(encoding="utf-8")):
        return True  # the module marks all its tests slow: do not pay for its imports either
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if is_slow_by_place(item):
            item.add_marker(pytest.mark.slow)


def _popen_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
    _STARTED.append(f"subprocess {args if isinstance(args, str) else ' '.join(map(str, args))[:120]}")
    _REAL_POPEN_INIT(self, args, *rest, **kwargs)


def _process_start(self: multiprocessing.process.BaseProcess) -> None:
    _STARTED.append(f"process {self.name}")
    _REAL_PROCESS_START(self)


@pytest.fixture(autouse=True)
def _fast_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.node.get_closest_marker("slow") is not None:
        yield
        return
    _STARTED.clear()
    monkeypatch.setattr(subprocess.Popen, "__init__", _popen_init)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", _process_start)
    yield
    started, _STARTED[:] = list(_STARTED), []
    if started:
        pytest.fail(
            f"{request.node.nodeid} is in the fast lane but started {started[0]}"
            + (f" (and {len(started) - 1} more)" if len(started) > 1 else "")
            + ": mark it @pytest.mark.slow (CONTRIBUTING.md#tests)",
            pytrace=False,
        )
