"""A terminal run that starts a temporary Prefect server turns that server's telemetry off: the telemetry heartbeat
writes a session row into the server's SQLite database at start-up (and under load collides with the run's writes:
``sqlite3.OperationalError: database is locked`` with a traceback), so with it off the row never appears."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_run_on_a_temporary_server_starts_it_without_telemetry(aws, tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    home.mkdir()
    params = tmp_path / "cleanup.json"
    params.write_text(json.dumps({"dry_run": True}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # Prefect's own defaults
    env.update(aws.env)  # type: ignore[attr-defined]
    env["PREFECT_HOME"] = str(home)
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "240"  # a busy test machine
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "novaflow.cli", "run", "flow", "cleanup", "--params", str(params)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Starting temporary server" in done.stderr
    assert "telemetry" not in done.stderr.lower() and "Traceback" not in done.stderr
    with sqlite3.connect(home / "prefect.db") as db:
        keys = [row[0] for row in db.execute("select key from configuration")]
        runs = db.execute("select count(*) from flow_run").fetchone()[0]
    assert runs == 1  # the run used this server's database
    assert "TELEMETRY_SESSION" not in keys, keys
