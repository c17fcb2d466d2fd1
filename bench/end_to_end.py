"""Time `novaflow run end-to-end --local` on the committed sample, the way a new user runs it.

Each run is a fresh process with a fresh PREFECT_HOME (so the temporary Prefect server starts from nothing, as on
a new machine). Prints the wall time and the time of each stage (``report`` is rendering and uploading the HTML
report), and the report's size; the goal is under 90 s on 2 cores.

    python bench/end_to_end.py [--runs 2] [--platform serverless]

``--platform serverless`` runs every job as a serverless customization job (no instances; each training stage's
model registered as a model package version, the deployment made from the approved one).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOVAFLOW = str(Path(sys.executable).with_name("novaflow"))


def one_run(work: Path, extra: tuple[str, ...] = ()) -> tuple[float, dict[str, float], str, str]:
    """(wall seconds, stage seconds, the printed em row, the whole output) of one fresh-process run."""
    env = dict(os.environ, PREFECT_HOME=str(work / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env = {k: v for k, v in env.items() if not k.startswith(("AWS_", "NOVAFLOW_", "PREFECT_API_URL"))}
    start = time.perf_counter()
    done = subprocess.run(
        [NOVAFLOW, "run", "end-to-end", "--local", "--work-dir", str(work / "runs"), *extra],
        env=env,
        capture_output=True,
        text=True,
        cwd=work,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("stage times: "))
    stages = {m[1]: float(m[2]) for m in re.finditer(r"([\w-]+) ([\d.]+)s", line)}
    em = next((x for x in done.stdout.splitlines() if x.startswith("em ")), "")
    return wall, stages, em, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--platform", default=None, help="SMTJ (default) or SERVERLESS (accepts the EULA).")
    args = parser.parse_args()
    extra = ("--platform", args.platform, "--accept-eula") if args.platform else ()
    command = " ".join(["novaflow run end-to-end --local", *extra])
    print(f"{command}, committed sample, {os.cpu_count()} cores")
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="novaflow-bench-") as tmp:
            wall, stages, em, _ = one_run(Path(tmp), extra)
            report = Path(tmp) / "runs" / "case-study" / "report.html"
            report_bytes = report.stat().st_size if report.exists() else 0
        flow = sum(stages.values())
        print(
            f"run {i + 1}: wall {wall:.1f} s (flow stages {flow:.1f} s, Prefect server start + imports "
            f"{wall - flow:.1f} s) {'OK' if wall < 90 else 'OVER 90 s'}"
        )
        print("  " + "  ".join(f"{k} {v:.1f}" for k, v in stages.items()))
        print(f"  {em.split()[0]}: " + " | ".join(em.split()[1:]))
        print(f"  report.html {report_bytes / 1e6:.2f} MB, built and uploaded in {stages.get('report', 0.0):.1f} s")


if __name__ == "__main__":
    main()
