"""Worker-seconds held per job-second, `wait.mode: block` against `suspend`, as a team runs it: `novaflow local up`,
`prefect server start`, a process pool and worker, `novaflow watch`, `prefect deploy`, then one deployed end-to-end
run per mode (SFT then RFT, their evaluations; no baseline, no deployment), every piece its own process.

A run holds its worker from the moment the worker picks it up (Pending) until it leaves for Suspended or a final
state: that is what an ECS task or a pod costs. Job-seconds are its jobs' own durations (CreationTime to
TrainingEndTime). The ratio is read from the Prefect server's state history and the run's job ledger on S3.
Goal (issue 24): <= 0.1 in suspend mode. The emulated jobs last ``--job-seconds`` (real ones last hours, so the
fixed cost of each resume - the replay of the cached steps - weighs far less there).

    python bench/worker_seconds.py [--job-seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from deployed_run import free_port, wait_http  # noqa: E402

HOLDING = {"Pending", "Running"}
"""Worker-held states: the process exists from Pending (picked up, starting) through Running."""
GOAL = 0.1


def held_seconds(states: list[Any]) -> float:
    """Seconds between entering a held state and leaving the held states, summed over the run's history."""
    ordered = sorted(states, key=lambda s: s.timestamp)
    held, since = 0.0, None
    for state in ordered:
        if state.name in HOLDING and since is None:
            since = state.timestamp
        elif state.name not in HOLDING and since is not None:
            held += (state.timestamp - since).total_seconds()
            since = None
    return held


def measure(run_id: str, env: dict[str, str]) -> tuple[float, float]:
    from novaflow.settings import load_settings

    os.environ.update(env)
    import boto3
    from prefect.client.orchestration import get_client

    from novaflow.runs.ledger import jobs_of_run

    with get_client(sync_client=True) as client:
        held = held_seconds(client.read_flow_run_states(run_id))
    sm = boto3.client("sagemaker", endpoint_url=env["AWS_ENDPOINT_URL"])
    job_seconds = 0.0
    for record in jobs_of_run(run_id, settings=load_settings()):
        job = sm.describe_training_job(TrainingJobName=record["job_name"])
        job_seconds += (job["TrainingEndTime"] - job["CreationTime"]).total_seconds()
    return held, job_seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job-seconds", type=float, default=30.0)
    args = parser.parse_args()
    procs: list[subprocess.Popen[str]] = []
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="novaflow-worker-seconds-") as tmp:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NOVAFLOW_", "PREFECT_"))}
        base.update(PREFECT_HOME=str(Path(tmp) / "home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
        try:
            aws = subprocess.Popen(
                [str(BIN / "novaflow"), "local", "up"],
                env=dict(base, NOVAFLOW_LOCAL_JOB_SECONDS=str(args.job_seconds)),
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            procs.append(aws)
            exports: dict[str, str] = {}
            while len(exports) < 10:
                line = aws.stdout.readline()  # type: ignore[union-attr]
                if line.startswith("export "):
                    key, _, value = line[7:].strip().partition("=")
                    exports[key] = value
            port = free_port()
            api = f"http://127.0.0.1:{port}/api"
            env = dict(base, **exports, PREFECT_API_URL=api, PREFECT_WORKER_QUERY_SECONDS="1")
            server = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
            procs.append(subprocess.Popen(server, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_http(f"{api}/health", 180)
            pool = [str(BIN / "prefect"), "work-pool", "create", "novaflow-local", "--type", "process", "--overwrite"]
            subprocess.run(pool, env=env, check=True, capture_output=True)
            worker = [str(BIN / "prefect"), "worker", "start", "--pool", "novaflow-local", "--type", "process"]
            procs.append(
                subprocess.Popen(worker, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
            watch = [str(BIN / "novaflow"), "watch", "--interval", "1"]
            procs.append(
                subprocess.Popen(watch, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
            deploy = [str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "end-to-end/local"]
            deployed = subprocess.run(deploy, env=env, cwd=ROOT, capture_output=True, text=True)
            if deployed.returncode != 0:
                raise SystemExit(f"prefect deploy failed:\n{deployed.stdout[-3000:]}\n{deployed.stderr[-3000:]}")
            for mode in ("block", "suspend"):
                params = {
                    "run_name": f"worker-seconds-{mode}",
                    "skip": ["baseline", "deploy"],
                    "work_dir": str(Path(tmp) / "runs"),
                    "wait": {"poll_seconds": 1.0, "max_poll_seconds": 2.0, "mode": mode},
                }
                command = [str(BIN / "prefect"), "deployment", "run", "end-to-end/local"]
                run = subprocess.run(
                    [*command, "--params", json.dumps({"params": params}), "--watch"],
                    env=env,
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                )
                run_id = next((ln.split("UUID:")[-1].strip() for ln in run.stdout.splitlines() if "UUID:" in ln), None)
                final = [ln for ln in run.stdout.splitlines() if ln.startswith("Flow run finished")]
                print(f"{mode}: {final[-1] if final else run.stdout[-400:]}", flush=True)
                if run_id:
                    results[mode] = measure(run_id, env)
        finally:
            for proc in reversed(procs):
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    print(
        f"\njobs of {args.job_seconds:g} s (emulated); worker-seconds held per job-second (goal <= {GOAL} in suspend)"
    )
    for mode, (held, job_seconds) in results.items():
        print(f"{mode:8s} held {held:7.1f} s for {job_seconds:7.1f} job-s: {held / job_seconds:5.2f}")


if __name__ == "__main__":
    main()
