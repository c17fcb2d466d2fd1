"""How well novaflow overlaps and packs jobs, measured as a user runs it and printed beside the ideal.

(a) `novaflow run end-to-end --local` (the case study: baseline, SFT, RFT, an evaluation after each) at two emulated
    job durations D. The run's wall time grows by ``slope x D``: the number of jobs one after another on its
    critical path. Ideal for [sft, rft] with a baseline: 3 (SFT, RFT, the evaluation after RFT; the baseline and the
    evaluation after SFT can run beside them). Goal: <= 3.2.
(b) `novaflow run sweep --local` over 4 SFT variants under a p5 quota that fits 2 SFT jobs (4 instances each) at
    once, against the ideal: the same sweep with one variant plus one more SFT duration (4 jobs at 2 at once are
    2 waves). Goal: <= 1.2 x ideal. Printed as unavailable while the build has no `run sweep` command.

Each run is a fresh process with a fresh PREFECT_HOME, as on a new machine; durations are set with
NOVAFLOW_LOCAL_JOB_SECONDS (and, to model real ratios, NOVAFLOW_LOCAL_EVALUATION_JOB_SECONDS). The durations are
minimums: a job's own compute (seconds on a loaded 2-core machine) hides a shorter one, so the defaults are long.

    python bench/orchestration.py [--low 8] [--high 24] [--eval-ratio 1.0] [--repeat 1] [--part a|b|both]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOVAFLOW = str(Path(sys.executable).with_name("novaflow"))
IDEAL_SLOPE = 3.0
SLOPE_GOAL = 3.2
SWEEP_GOAL = 1.2
SWEEP_VARIANTS = ("1e-5", "2e-5", "3e-5", "4e-5")
SFT_INSTANCES = 4
QUOTA = 2 * SFT_INSTANCES


def timed(args: list[str], work: Path, seconds: float, eval_ratio: float) -> tuple[float, str]:
    """Wall seconds and stdout of one fresh-process ``novaflow`` run with emulated jobs of ``seconds``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NOVAFLOW_", "PREFECT_API_URL"))}
    env.update(
        PREFECT_HOME=str(work / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        NOVAFLOW_LOCAL_JOB_SECONDS=str(seconds),
        NOVAFLOW_LOCAL_EVALUATION_JOB_SECONDS=str(seconds * eval_ratio),
    )
    start = time.perf_counter()
    done = subprocess.run([NOVAFLOW, *args], env=env, capture_output=True, text=True, cwd=work)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall, done.stdout


def end_to_end_wall(seconds: float, eval_ratio: float) -> float:
    with tempfile.TemporaryDirectory(prefix="novaflow-bench-orch-") as tmp:
        work = Path(tmp)
        wall, _ = timed(["run", "end-to-end", "--local", "--work-dir", str(work / "runs")], work, seconds, eval_ratio)
    return wall


def part_a(low: float, high: float, eval_ratio: float, repeat: int) -> None:
    print(
        f"(a) novaflow run end-to-end --local, stages [sft, rft] with a baseline, job durations {low:g} s and "
        f"{high:g} s, median of {repeat}"
    )
    walls = {d: statistics.median(end_to_end_wall(d, eval_ratio) for _ in range(repeat)) for d in (low, high)}
    slope = (walls[high] - walls[low]) / (high - low)
    for d, wall in walls.items():
        print(f"    D = {d:g} s: wall {wall:.1f} s")
    if slope <= 0:
        verdict = "not measurable: the longer jobs' run was not slower; the machine is too busy - use --repeat"
    else:
        verdict = "OK" if slope <= SLOPE_GOAL else f"over the goal {SLOPE_GOAL}"
    print(
        f"    slope {slope:.2f} job durations on the critical path   ideal {IDEAL_SLOPE:.0f}   "
        f"ratio {slope / IDEAL_SLOPE:.2f} x ideal   ({verdict})"
    )


def sweep_available() -> bool:
    done = subprocess.run([NOVAFLOW, "run", "sweep", "--help"], capture_output=True, text=True)
    return done.returncode == 0


def sweep_wall(values: tuple[str, ...], seconds: float, eval_ratio: float) -> float:
    with tempfile.TemporaryDirectory(prefix="novaflow-bench-sweep-") as tmp:
        work = Path(tmp)
        args = [
            "run",
            "sweep",
            "--local",
            "--stages",
            "sft",
            "--vary",
            "sft.overrides.lr=" + ",".join(values),
            "--quota",
            f"ml.p5.48xlarge={QUOTA}",
            "--work-dir",
            str(work / "runs"),
        ]
        wall, _ = timed(args, work, seconds, eval_ratio)
    return wall


def part_b(seconds: float, eval_ratio: float) -> None:
    n = len(SWEEP_VARIANTS)
    print(
        f"(b) novaflow run sweep --local, {n} SFT variants ({SFT_INSTANCES} x ml.p5.48xlarge each) under "
        f"--quota ml.p5.48xlarge={QUOTA}, job duration {seconds:g} s"
    )
    if not sweep_available():
        print("    unavailable: this build has no `novaflow run sweep` command")
        return
    one = sweep_wall(SWEEP_VARIANTS[:1], seconds, eval_ratio)
    waves = math.ceil(n / (QUOTA // SFT_INSTANCES))
    ideal = one + (waves - 1) * seconds
    wall = sweep_wall(SWEEP_VARIANTS, seconds, eval_ratio)
    verdict = "OK" if wall / ideal <= SWEEP_GOAL else f"over the goal {SWEEP_GOAL}"
    print(f"    one variant: {one:.1f} s; ideal for {n} ({waves} waves of SFT): {ideal:.1f} s")
    print(f"    {n} variants: wall {wall:.1f} s   ratio {wall / ideal:.2f} x ideal   ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--low", type=float, default=8.0, help="The shorter job duration, seconds.")
    parser.add_argument("--high", type=float, default=24.0, help="The longer job duration, seconds.")
    parser.add_argument(
        "--eval-ratio", type=float, default=1.0, help="Evaluation job duration as a fraction of a training job's."
    )
    parser.add_argument("--part", choices=("a", "b", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=1, help="Runs per duration in (a); the median is used.")
    args = parser.parse_args()
    print(f"novaflow orchestration benchmark, {os.cpu_count()} cores, evaluation/training duration {args.eval_ratio:g}")
    if args.part in ("a", "both"):
        part_a(args.low, args.high, args.eval_ratio, args.repeat)
    if args.part in ("b", "both"):
        part_b(args.high, args.eval_ratio)


if __name__ == "__main__":
    main()
