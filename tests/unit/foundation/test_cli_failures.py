"""A failure a user can fix is one line with a hint and exit code 2; ``--debug`` shows the traceback instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from novaflow.cli import main
from novaflow.cli.failures import PREFECT_TIMEOUT_SETTING, explain


def _cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process (clients, credentials and Prefect state of this one cannot leak into it)."""
    return subprocess.run(
        [sys.executable, "-m", "novaflow.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-2000:]
    return errors[0]


def _env(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOVAFLOW_", "PREFECT_API_URL"))}
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.mark.slow
def test_missing_credentials_is_one_line_naming_the_ways_to_provide_them(tmp_path: Path) -> None:
    env = _env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, AWS_SESSION_TOKEN=None, AWS_ENDPOINT_URL=None)
    line = _one_error_line(_cli(["jobs", "status", "some-job"], env, tmp_path))
    assert line.startswith("error: no usable AWS credentials (Unable to locate credentials): configure a profile")
    assert "`aws sso login`" in line and "--local` needs none" in line


@pytest.mark.slow
def test_an_unreachable_endpoint_is_one_line_naming_it(tmp_path: Path) -> None:
    env = _env(AWS_ENDPOINT_URL="http://127.0.0.1:9", NOVAFLOW_MAX_ATTEMPTS="1")
    line = _one_error_line(_cli(["jobs", "status", "some-job"], env, tmp_path))
    assert line.startswith("error: cannot reach AWS_ENDPOINT_URL=http://127.0.0.1:9 (Could not connect to the endpoint")
    assert line.endswith("is `novaflow local up` still running? (unset AWS_ENDPOINT_URL to use AWS)")


@pytest.mark.slow
def test_a_temporary_prefect_server_too_slow_to_start_names_the_setting_and_the_alternative(tmp_path: Path) -> None:
    env = _env(PREFECT_HOME=str(tmp_path / "prefect"), **{PREFECT_TIMEOUT_SETTING: "1"})  # a server needs ~10 s
    proc = _cli(["run", "end-to-end", "--local", "--work-dir", str(tmp_path / "runs")], env, tmp_path)
    line = _one_error_line(proc)
    assert line == (
        "error: the temporary Prefect server did not start in time (Timed out while attempting to connect to "
        f"ephemeral Prefect API server): raise {PREFECT_TIMEOUT_SETTING} (e.g. 180) on a busy machine, or start one "
        "yourself with `prefect server start` and export PREFECT_API_URL=http://127.0.0.1:4200/api"
    )


def test_temporary_servers_run_without_telemetry_and_offline_ones_start_patient(monkeypatch) -> None:
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    from novaflow.cli.run import LOCAL_SERVER_STARTUP_SECONDS, prefect_updates

    monkeypatch.delenv(PREFECT_TIMEOUT_SETTING, raising=False)
    local = prefect_updates(local=True)
    assert local[PREFECT_SERVER_ANALYTICS_ENABLED] is False
    assert local[PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS] == LOCAL_SERVER_STARTUP_SECONDS
    monkeypatch.delenv("PREFECT_API_URL", raising=False)  # a run that starts a temporary server: telemetry off
    # (no API URL from the settings context either: a flow test's session server may have set one in this process)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert prefect_updates(local=False)[PREFECT_SERVER_ANALYTICS_ENABLED] is False
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")  # the user's own server keeps its setting
    assert PREFECT_SERVER_ANALYTICS_ENABLED not in prefect_updates(local=False)
    monkeypatch.delenv("PREFECT_API_URL")
    monkeypatch.setenv(PREFECT_TIMEOUT_SETTING, "300")  # the user's own value wins
    assert PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS not in prefect_updates(local=True)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON (Expecting property name enclosed in double quotes"),
        ("[1, 2]", "expected a JSON object of flow parameters, got list"),
        (json.dumps({"data": {"sft_rows": "many"}}), "data.sft_rows: Input should be a valid integer"),
        (json.dumps({"colour": "red"}), "colour: Extra inputs are not permitted"),
    ],
)
def test_a_bad_parameters_file_is_one_line_naming_file_and_field(tmp_path: Path, capsys, content, expected) -> None:
    path = tmp_path / "p.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "end-to-end", "--local", "--params", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --params {path}: {expected}"), err
    assert len(err.splitlines()) == 1


def test_debug_lets_the_traceback_through(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(Exception, match="expected a JSON object of flow parameters"):
        main(["--debug", "run", "end-to-end", "--params", str(path)])


def test_an_unexpected_exception_is_one_line_pointing_at_debug() -> None:
    assert explain(KeyError("x")) == "unexpected KeyError: 'x' (run `novaflow --debug ...` for the traceback)"
