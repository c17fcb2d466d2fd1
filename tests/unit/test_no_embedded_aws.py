"""A unit-test session never starts the embedded AWS (nor exports its endpoint): proved on a real pytest run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, os, sys
import pytest

class Probe:
    fixtures = set()
    def pytest_fixture_setup(self, fixturedef, request):
        self.fixtures.add(fixturedef.argname)
    def pytest_sessionfinish(self, session, exitstatus):
        report = {"exit": int(exitstatus), "started": "local_aws_session" in self.fixtures,
                  "endpoint": os.environ.get("AWS_ENDPOINT_URL"), "key": os.environ.get("AWS_ACCESS_KEY_ID"),
                  "guard": session.config.pluginmanager.has_plugin("tests.plugins.network_guard")}
        sys.__stdout__.write("\\nPROBE " + json.dumps(report) + "\\n")

pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]], plugins=[Probe()])
"""


@pytest.mark.slow  # a pytest session in a subprocess
def test_a_unit_session_runs_without_the_embedded_aws_but_with_fake_credentials_and_the_guard() -> None:
    files = ["tests/unit/foundation/test_backoff.py", "tests/unit/local/test_moto_guards.py"]
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}  # a full run may have exported one
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PROBE "))
    assert json.loads(line.removeprefix("PROBE ")) == {
        "exit": 0,
        "started": False,
        "endpoint": None,
        "key": "testing",
        "guard": True,
    }, proc.stdout[-2000:]
