"""Runs that overlap: two CLI processes with one run name, and two with different names, on one embedded AWS.

Documented outcome (README "Runs that overlap"): the second run of a name waits for the first, then finishes
by attaching to the first run's jobs, so the account sees five training jobs, not ten; different names run side
by side. Each run writes its local files to a scratch directory of its own flow run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from tests.flows.helpers import training_jobs

pytestmark = [pytest.mark.flow, pytest.mark.slow]

PARAMS = {
    "data": {"sft_rows": 200, "eval_rows": 60, "rft_rows": 40},
    "wait": {"poll_seconds": 0.2, "max_poll_seconds": 0.5, "max_wait_hours": 0.2},
    "reward": {"verify_rows": 40},
    "deploy": {"smoke_rows": 1},
}


def _start(aws: object, tmp_path: Path, run_name: str, tag: str, *extra: str) -> subprocess.Popen[str]:
    """``novaflow run end-to-end`` in its own process, pointed at the session's embedded AWS and Prefect server."""
    params = tmp_path / f"{tag}.json"
    params.write_text(json.dumps(PARAMS), encoding="utf-8")
    env = {**os.environ, **aws.env, "PREFECT_API_URL": str(PREFECT_API_URL.value())}  # type: ignore[attr-defined]
    cmd = [sys.executable, "-m", "novaflow.cli", "run", "end-to-end", "--params", str(params)]
    cmd += ["--run-name", run_name, "--work-dir", str(tmp_path / "runs"), "--cleanup", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)


def _finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err and "Traceback" not in out, err[-3000:]
    return out, err


def test_two_runs_of_one_name_at_once_share_five_jobs_and_both_complete(aws, tmp_path: Path) -> None:
    before = {j["TrainingJobName"] for j in training_jobs()}
    first = _start(aws, tmp_path, "twice", "first")
    time.sleep(0.5)
    second = _start(aws, tmp_path, "twice", "second")
    outputs = [_finish(first), _finish(second)]
    for out, _ in outputs:
        assert "novaflow end-to-end run 'twice' finished in" in out
        assert f"report (local): {tmp_path / 'runs' / 'twice' / 'report.html'}" in out
    new = {j["TrainingJobName"] for j in training_jobs()} - before
    assert len(new) == 5, sorted(new)  # baseline, SFT, post-SFT eval, RFT, post-RFT eval: once each
    waited = [err for _, err in outputs if "run name 'twice' is in use by flow run" in err]
    assert len(waited) == 1, "exactly one of the two runs waited for the other"
    assert "waiting for it to finish" in waited[0] and "is free now; this run goes on" in waited[0]
    assert not any((tmp_path / "runs" / "twice" / "scratch").iterdir()), "scratch of finished runs removed"


def test_two_run_names_in_parallel_both_complete(aws, tmp_path: Path) -> None:
    before = {j["TrainingJobName"] for j in training_jobs()}
    procs = [_start(aws, tmp_path, name, name, "--skip", "deploy") for name in ("left", "right")]
    for proc, name in zip(procs, ("left", "right"), strict=True):
        out, err = _finish(proc)
        assert f"novaflow end-to-end run '{name}' finished in" in out
        assert "is in use by" not in err
    assert len({j["TrainingJobName"] for j in training_jobs()} - before) == 10
