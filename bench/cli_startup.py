"""Benchmark: how long `novaflow --help` and `novaflow VERB --help` take next to `python -c "import boto3"`.

The goal is every line within 2x of importing boto3 on the same machine. Uses hyperfine when it is installed
(``apt-get install hyperfine``), otherwise the best of ``--runs`` timed runs of each command.

    python bench/cli_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from novaflow.cli import GROUPS  # the verb table only: importing it loads no verb group

VERBS = tuple(GROUPS)


def _best(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def _hyperfine(commands: list[list[str]], runs: int) -> list[float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            ["hyperfine", "-N", "--warmup", "2", "--runs", str(runs), "--export-json", out.name, "--style", "none"]
            + [" ".join(c) for c in commands],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        results = json.loads(Path(out.name).read_text())["results"]
    return [r["median"] for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    script = Path(sys.executable).with_name("novaflow")
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "novaflow.cli"]
    commands = [[sys.executable, "-c", '"import boto3"'], [*cli, "--help"], *([*cli, v, "--help"] for v in VERBS)]
    if shutil.which("hyperfine"):
        how, times = "hyperfine median", _hyperfine(commands, args.runs)
    else:
        how = f"best of {args.runs}"
        times = [_best([c.strip('"') for c in cmd], args.runs) for cmd in commands]
    base = times[0]
    print(f"{how}; goal: every novaflow line within 2.0x of importing boto3")
    for cmd, seconds in zip(commands, times, strict=True):
        label = "python -c 'import boto3'" if cmd is commands[0] else " ".join(["novaflow", *cmd[len(cli) :]])
        print(f"{label:28} {seconds * 1000:7.0f} ms  {seconds / base:4.2f}x")


if __name__ == "__main__":
    main()
