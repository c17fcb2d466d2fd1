"""Worker-seconds held per job-second, `wait.mode: block` against `suspend`, as a team runs it: `novaflow local up`,
`prefect server start`, a process pool and worker, `novaflow watch`, `prefect deploy`, then one deployed end-to-end
run per mode (SFT then RFT, their evaluations; no baseline, no deployment), every piece its own process.

A run holds its worker from the moment the worker picks it up (Pending) until it leaves for Suspended or a final
state: that is what an ECS task or a pod costs. Job-seconds are its jobs' own durations (CreationTime to
TrainingEndTime). The ratio is read from the Prefect server's state history and the run's job ledger on S3.
Goal (issue 24): <= 0.1 in suspend mode. The emulated jobs last ``--job-seconds`` (real ones last hours, so the
fixed cost of each resume - the process start and the replay of the cached steps - weighs far less there). Each
stretch of worker time is split into its start (Pending -> Running: process, imports) and its run (the replay and
the flow's own work up to the next suspension), so the fixed cost per resume shows where it goes.

    python bench/worker_seconds.py [--job-seconds 30] [--modes block,suspend] [--events]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from deployed_run import free_port, wait_http  # noqa: E402

HOLDING = {"PENDING", "RUNNING"}
"""Worker-held state types: the process exists from Pending (picked up; Prefect 3.9 names it Pending, then
Submitting while the process starts) through Running. By type, not name: counting the names Pending and Running
only missed the Submitting stretch, the process start, in earlier measurements."""
GOAL = 0.1


@dataclass
class Held:
    """One stretch of worker time: from Pending (picked up, process starting) to the state that ended it."""

    starting: float
    """Pending -> Running: the worker starts the process, which imports Prefect and the flow and reports Running."""
    running: float
    """Running -> Suspended (or the final state): the flow's own work, the replay of a resumed run included."""

    @property
    def seconds(self) -> float:
        return self.starting + self.running


def held_stretches(states: list[Any]) -> list[Held]:
    """Each stretch between entering a held state and leaving the held states, over the run's history."""
    ordered = sorted(states, key=lambda s: s.timestamp)
    stretches, since, running = [], None, None
    for state in ordered:
        kind = state.type.value
        if kind in HOLDING and since is None:
            since = state.timestamp
        if kind == "RUNNING" and since is not None and running is None:
            running = state.timestamp
        elif kind not in HOLDING and since is not None:
            began = running or state.timestamp
            stretches.append(Held((began - since).total_seconds(), (state.timestamp - began).total_seconds()))
            since = running = None
    return stretches


def _print_timeline(client: Any, run_id: str, states: list[Any]) -> None:
    """Every state and log line of the run, in seconds from its first state (where a resume's time goes)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    logs: list[Any] = []
    while True:
        page = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), offset=len(logs), limit=200
        )
        logs += page
        if len(page) < 200:
            break
    events = [(s.timestamp, f"== {s.name}") for s in states] + [(log.timestamp, log.message[:140]) for log in logs]
    events.sort(key=lambda e: e[0])
    t0 = events[0][0]
    for moment, text in events:
        print(f"{(moment - t0).total_seconds():8.2f}  {text}")


def measure(run_id: str, env: dict[str, str], profile: bool = False) -> tuple[list[Held], float, int]:
    """The run's held stretches, its jobs' seconds (CreationTime to TrainingEndTime), and how many jobs."""
    os.environ.update(env)
    import boto3
    from prefect.client.orchestration import get_client

    from novaflow.runs.ledger import jobs_of_run
    from novaflow.settings import load_settings

    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(run_id)
        stretches = held_stretches(states)
        if profile:
            _print_timeline(client, run_id, states)
    sm = boto3.client("sagemaker", endpoint_url=env["AWS_ENDPOINT_URL"])
    job_seconds = 0.0
    records = jobs_of_run(run_id, load_settings())
    for record in records:
        job = sm.describe_training_job(TrainingJobName=record["job_name"])
        job_seconds += (job["TrainingEndTime"] - job["CreationTime"]).total_seconds()
    return stretches, job_seconds, len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job-seconds", type=float, default=30.0, help="How long each emulated job lasts.")
    parser.add_argument("--modes", default="block,suspend", help="Which wait modes to run, in order (comma separated).")
    parser.add_argument(
        "--events",
        action="store_true",
        help="novaflow watch resumes from EventBridge job events (an SQS queue) instead of polling every second.",
    )
    parser.add_argument(
        "--profile", action="store_true", help="Print the suspended run's states and log lines in time."
    )
    args = parser.parse_args()
    procs: list[subprocess.Popen[str]] = []
    results: dict[str, tuple[list[Held], float, int]] = {}
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
            if args.events:
                watch += ["--events-queue", "novaflow-bench-watch", "--safety-interval", "60"]
            watch_log = (Path(tmp) / "watch.log").open("w")
            procs.append(subprocess.Popen(watch, env=env, cwd=ROOT, stdout=watch_log, stderr=subprocess.DEVNULL))
            deploy = [str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "end-to-end/local"]
            deployed = subprocess.run(deploy, env=env, cwd=ROOT, capture_output=True, text=True)
            if deployed.returncode != 0:
                raise SystemExit(f"prefect deploy failed:\n{deployed.stdout[-3000:]}\n{deployed.stderr[-3000:]}")
            for mode in args.modes.split(","):
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
                    results[mode] = measure(run_id, env, profile=args.profile and mode == "suspend")
        finally:
            for proc in reversed(procs):
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            watched = Path(tmp) / "watch.log"
            lines = watched.read_text().splitlines() if watched.exists() else []
            resumes = [ln for ln in lines if ln.startswith("resumed")]
    how = Counter(ln.rsplit("(", 1)[-1].rstrip(")") for ln in resumes)
    print(f"\nnovaflow watch resumed {len(resumes)} time(s): " + ", ".join(f"{n} {k}" for k, n in how.items()))
    print(f"jobs of {args.job_seconds:g} s (emulated); worker-seconds held per job-second (goal <= {GOAL} in suspend)")
    for mode, (stretches, job_seconds, jobs) in results.items():
        held = sum(s.seconds for s in stretches)
        ratio = held / job_seconds
        verdict = ("goal met" if ratio <= GOAL else "goal missed") if mode == "suspend" else ""
        print(
            f"{mode:8s} held {held:7.1f} s for {job_seconds:7.1f} job-s ({jobs} jobs): {ratio:5.2f} "
            f"(goal <= {GOAL}) {verdict}".rstrip()
        )
        n = len(stretches)
        print(
            f"         {n} stretch(es) on a worker, mean {held / max(n, 1):.1f} s: starting "
            f"{sum(s.starting for s in stretches) / max(n, 1):.1f} s (Pending -> Running), running "
            f"{sum(s.running for s in stretches) / max(n, 1):.1f} s (Running -> Suspended or the end)"
        )


if __name__ == "__main__":
    main()
