"""Drive local operation for real: `novaflow local up` + `prefect server start` + a process pool and worker +
`prefect deploy --all` + `prefect deployment run 'end-to-end/local' --watch`, each its own process, and time it
(the ECS and Kubernetes pools are created too, since `deploy --all` registers their deployments).

This is the sequence the README's "deployments" section describes, with a real Prefect server (not the test
harness). Every process is stopped at the end; loopback only.

    python bench/deployed_run.py
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def main() -> None:
    procs: list[subprocess.Popen[str]] = []
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="novaflow-deployed-") as tmp:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NOVAFLOW_", "PREFECT_"))}
        base.update(PREFECT_HOME=str(Path(tmp) / "home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
        try:
            aws = subprocess.Popen(
                [str(BIN / "novaflow"), "local", "up"],
                env=base,
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
            timings["novaflow local up"] = time.perf_counter() - t0

            port = free_port()
            api = f"http://127.0.0.1:{port}/api"
            env = dict(base, **exports, PREFECT_API_URL=api, PREFECT_WORKER_QUERY_SECONDS="2")
            procs.append(
                subprocess.Popen(
                    [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_http(f"{api}/health", 120)
            timings["prefect server start"] = time.perf_counter() - t0
            # deploy --all also registers the ECS and Kubernetes deployments: their pools must exist (no cloud needed).
            for pool, kind in (("novaflow-local", "process"), ("novaflow-ecs", "ecs"), ("novaflow-k8s", "kubernetes")):
                subprocess.run(
                    [str(BIN / "prefect"), "work-pool", "create", pool, "--type", kind, "--overwrite"],
                    env=env,
                    check=True,
                    capture_output=True,
                )
            procs.append(
                subprocess.Popen(
                    [str(BIN / "prefect"), "worker", "start", "--pool", "novaflow-local", "--type", "process"],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            deployed = subprocess.run(
                [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            if deployed.returncode != 0:
                raise SystemExit(f"prefect deploy --all failed:\n{deployed.stdout[-3000:]}\n{deployed.stderr[-3000:]}")
            timings["prefect deploy --all"] = time.perf_counter() - t0
            params = json.dumps(
                {
                    "run_name": "deployed-bench",
                    "cleanup": True,
                    "work_dir": str(Path(tmp) / "runs"),
                    "wait": {"poll_seconds": 0.5, "max_poll_seconds": 2.0},
                }
            )
            start = time.perf_counter()
            run = subprocess.run(
                [
                    str(BIN / "prefect"),
                    "deployment",
                    "run",
                    "end-to-end/local",
                    "--params",
                    json.dumps({"params": json.loads(params)}),
                    "--watch",
                ],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            timings["deployment run --watch"] = time.perf_counter() - start
            final = [line for line in run.stdout.splitlines() if line.startswith("Flow run finished")]
            print(f"deployment run exit code {run.returncode}: {final[-1] if final else run.stdout[-500:]}")
        finally:
            for proc in reversed(procs):
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    for what, seconds in timings.items():
        print(f"{what:28s} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
