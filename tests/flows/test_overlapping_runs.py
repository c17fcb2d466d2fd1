"""Runs that overlap: two CLI processes with one run name, and two with different names, on one embedded AWS.

Documented outcome (README "Runs that overlap"): the second run of a name waits for the first, then finishes
by attaching to the first run's jobs, so the account sees five training jobs, not ten; different names run side
by side. Each run writes its local files to a scratch directory of its own flow run. The two runs of one name
start from two working directories with two Prefect homes (two machines that share only the Prefect server and
the AWS account): the hold on the name is the lease in S3, not anything on a disk.
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

from novaflow.runs.lease import RunNameLease
from novaflow.settings import load_settings
from tests.flows.helpers import training_jobs

pytestmark = [pytest.mark.flow, pytest.mark.slow]

PARAMS = {
    "data": {"sft_rows": 200, "eval_rows": 60, "rft_rows": 40},
    "wait": {"poll_seconds": 0.2, "max_poll_seconds": 0.5, "max_wait_hours": 0.2},
    "reward": {"verify_rows": 40},
    "deploy": {"smoke_rows": 1},
}


ROOT = Path(__file__).resolve().parents[2]


def _start(
    aws: object, tmp_path: Path, run_name: str, tag: str, *extra: str, params: dict[str, object] = PARAMS
) -> subprocess.Popen[str]:
    """``novaflow run end-to-end`` in its own process, working directory and Prefect home ("machine" ``tag``),
    pointed at the session's embedded AWS and Prefect server."""
    machine = tmp_path / tag
    (machine / "prefect").mkdir(parents=True)
    (machine / "params.json").write_text(json.dumps(params), encoding="utf-8")
    env = {**os.environ, **aws.env, "PREFECT_API_URL": str(PREFECT_API_URL.value())}  # type: ignore[attr-defined]
    env["PREFECT_HOME"] = str(machine / "prefect")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "novaflow.cli", "run", "end-to-end", "--params", "params.json"]
    cmd += ["--run-name", run_name, "--work-dir", "runs", "--cleanup", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=machine)


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
    for (out, _), tag in zip(outputs, ("first", "second"), strict=True):
        assert "novaflow end-to-end run 'twice' finished in" in out
        assert "report (local): runs/twice/report.html" in out  # relative to each machine's working directory
        assert (tmp_path / tag / "runs" / "twice" / "report.html").is_file()
        assert not any((tmp_path / tag / "runs" / "twice" / "scratch").iterdir()), "scratch of finished runs removed"
    new = {j["TrainingJobName"] for j in training_jobs()} - before
    assert len(new) == 5, sorted(new)  # baseline, SFT, post-SFT eval, RFT, post-RFT eval: once each
    waited = [err for _, err in outputs if "run name 'twice' is in use by flow run" in err]
    assert len(waited) == 1, "exactly one of the two runs waited for the other"
    assert "waiting for it to finish" in waited[0] and "is free now; this run goes on" in waited[0]
    # The one that waited deployed only after the other had deleted its endpoint: never two at once, and each
    # smoke test ran against an endpoint its own run had just deployed (both runs passed their smoke test).
    deployed = [line for out, _ in outputs for line in out.splitlines() if line.startswith("deployed: ")]
    assert deployed == ["deployed: sagemaker `novaflow-twice`"] * 2


def test_second_run_of_a_name_refuses_in_one_line_naming_the_holder_after_its_wait(aws, tmp_path: Path) -> None:
    # The holder is a run on another machine: its lease in S3 is all this machine sees of it.
    holder = RunNameLease(
        "held", holder="flow run 'elsewhere' (0000), pid 1 on worker-b", holder_id="0000", settings=load_settings()
    )
    holder.acquire(0)
    try:
        impatient_params = {**PARAMS, "wait": {**PARAMS["wait"], "max_wait_hours": 0.001}}  # type: ignore[dict-item]
        impatient = _start(aws, tmp_path, "held", "impatient", "--skip", "deploy", params=impatient_params)
        _, err = impatient.communicate(timeout=300)
    finally:
        holder.release()
    assert impatient.returncode == 2
    # the CLI's last word is one line naming the holder (the flow run's own log above it has Prefect's record)
    last = err.strip().splitlines()[-1]
    assert last == (
        "error: run name 'held' is still in use by flow run 'elsewhere' (0000), pid 1 on worker-b after 4 s; "
        "wait for it, cancel it, or pick another --run-name"
    ), err[-3000:]
    assert "waiting for it to finish" in err
