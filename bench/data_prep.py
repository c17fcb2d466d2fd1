"""Benchmark: `novaflow data prepare` through the CLI against the Forge SDK loader, at 60,000 and 600,000 rows and
on input that is already in Converse form (5,000 vs 20,000 rows: the record path must stay linear).

Every measurement is one whole process, started the way a user starts it (interpreter, imports, the work, exit):
wall time from this process, CPU from ``os.wait4`` (workers included), and the peak of the resident memory summed
over the process and its descendants (novaflow's chunk workers), sampled every 20 ms from /proc. The reference is
``amzn-nova-forge==1.4.10`` (Python 3.12 only) in its own virtualenv, run offline (``TELEMETRY_OPT_OUT``, a local
``output_path``) on the same file with the same mapping; ``--setup-reference`` creates that virtualenv.

    python bench/data_prep.py                          # 60k and 600k CSV rows, Converse 5k and 20k
    python bench/data_prep.py --rows 60000 --converse ""  # one size only
    python bench/data_prep.py --setup-reference        # build .venv-forge with python3.12 first
    python bench/data_prep.py --rows 60000,600000 --converse "" --filters near-dedup,quality,language=en

With ``--filters`` (default ``near-dedup,quality,language=en``; '' to skip) every CSV size is also prepared with those
curation filters, alternating with the unfiltered runs, and the median of the pairs' ratios (goal: at most 3x at
600,000 rows; this machine's speed drifts between runs minutes apart) and the peak memory across sizes are printed; the smallest size is run once more with the largest one's process count (a worker
per core), and that pair is the flat-in-rows check (goal: at most 1.25x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_PACKAGE = "amzn-nova-forge==1.4.10"

REFERENCE_CSV = r"""
import os, sys
os.environ["TELEMETRY_OPT_OUT"] = "true"
from amzn_nova_forge.dataset.csv_dataset_loader import CSVDatasetLoader
from amzn_nova_forge.core.enums import Model, TrainingMethod
from amzn_nova_forge.dataset.operations.transform_operation import TransformMethod
from amzn_nova_forge.dataset.operations.validate_operation import ValidateMethod
src, out = sys.argv[1], sys.argv[2]
loader = CSVDatasetLoader()
loader.load(src)
loader.transform(method=TransformMethod.SCHEMA, training_method=TrainingMethod.SFT_LORA, model=Model.NOVA_LITE_2,
                 column_mappings={"question": "Body", "answer": "Y"}, output_path=out)
loader.validate(method=ValidateMethod.INVALID_RECORDS, training_method=TrainingMethod.SFT_LORA, model=Model.NOVA_LITE_2)
loader.save(os.path.join(out, "out.jsonl"))
"""

REFERENCE_CONVERSE = r"""
import os, sys
os.environ["TELEMETRY_OPT_OUT"] = "true"
from amzn_nova_forge.dataset.jsonl_dataset_loader import JSONLDatasetLoader
from amzn_nova_forge.core.enums import Model, TrainingMethod
from amzn_nova_forge.dataset.operations.validate_operation import ValidateMethod
src, out = sys.argv[1], sys.argv[2]
loader = JSONLDatasetLoader()
loader.load(src)
loader.validate(method=ValidateMethod.INVALID_RECORDS, training_method=TrainingMethod.SFT_LORA, model=Model.NOVA_LITE_2)
loader.save(os.path.join(out, "out.jsonl"))
"""


@dataclass
class Run:
    wall: float
    cpu: float
    peak_mb: float
    problem: str = ""


def met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def load() -> str:
    """``uptime``'s load averages: the machine is shared, and every wall time above depends on them."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min)"


def tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and every descendant, in KB (0 once the process is gone)."""
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status", encoding="ascii", errors="replace") as fh:
                total += next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def measure(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """One child process: wall, CPU (its own and its waited-for children's), and the sampled peak tree RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak_mb = max(peak[0], usage.ru_maxrss) / 1024
    problem = "" if proc.returncode == 0 else (err.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    return Run(wall, usage.ru_utime + usage.ru_stime, peak_mb, problem)


def generate(path: Path, rows: int, seed: int) -> None:
    """The case-study CSV, written by a child process: generating 600,000 rows here would grow this process to a
    gigabyte, and every child it starts afterwards reports that as its own peak (a child's maximum RSS counts the
    parent's pages it was forked with)."""
    code = (
        "import sys; from novaflow.data.samples import generate_stackoverflow_csv as g; "
        "g(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))"
    )
    subprocess.run([sys.executable, "-c", code, str(path), str(rows), str(seed)], check=True)


def best(cmd: list[str], repeat: int, env: dict[str, str] | None = None) -> Run:
    """The run with the lowest wall time out of ``repeat`` (other processes on a shared machine add noise)."""
    runs = [measure(cmd, env) for _ in range(max(1, repeat))]
    return min(runs, key=lambda r: (bool(r.problem), r.wall))


def paired(first: list[str], second: list[str], repeat: int) -> tuple[Run, Run, list[float]]:
    """Each command ``repeat`` times, alternating: the best run of each and every pair's ratio of wall times
    (second / first). This machine's speed drifts by a fifth between runs minutes apart, so a ratio taken within
    a pair is steadier than one between runs made minutes apart."""
    firsts: list[Run] = []
    seconds: list[Run] = []
    for _ in range(max(1, repeat)):
        firsts.append(measure(first))
        seconds.append(measure(second))
    ratios = [b.wall / a.wall for a, b in zip(firsts, seconds, strict=True) if not a.problem and not b.problem]
    return (
        min(firsts, key=lambda r: (bool(r.problem), r.wall)),
        min(seconds, key=lambda r: (bool(r.problem), r.wall)),
        ratios,
    )


def novaflow_cli() -> list[str]:
    """The console script installed beside this interpreter, as a user runs it."""
    script = Path(sys.executable).with_name("novaflow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "novaflow.cli"]


def setup_reference(venv: Path, python312: str | None) -> None:
    python = python312 or shutil.which("python3.12")
    if not python:
        pyenv = Path.home() / ".pyenv" / "versions"
        found = sorted(pyenv.glob("3.12*/bin/python3.12")) if pyenv.exists() else []
        python = str(found[-1]) if found else None
    if not python:
        raise SystemExit("no python3.12 found: install it (apt-get install python3.12 or pyenv) or pass --python312")
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", REFERENCE_PACKAGE], check=True)
    print(f"reference ready: {venv / 'bin' / 'python'} ({REFERENCE_PACKAGE})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="60000,600000", help="CSV sizes, comma separated")
    parser.add_argument("--converse", default="5000,20000", help="Converse-input sizes ('' to skip)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "novaflow-bench"))
    parser.add_argument("--reference-python", default=str(ROOT / ".venv-forge" / "bin" / "python"))
    parser.add_argument("--setup-reference", action="store_true", help=f"create .venv-forge with {REFERENCE_PACKAGE}")
    parser.add_argument("--python312", help="the Python 3.12 interpreter for --setup-reference")
    parser.add_argument("--repeat", type=int, default=3, help="novaflow runs per row (best wall time is shown)")
    parser.add_argument("--ref-repeat", type=int, default=1, help="reference runs per row")
    parser.add_argument("--startup", type=int, default=5, help="runs of the 10-row start-up check (0: skip)")
    parser.add_argument("--filters", default="near-dedup,quality,language=en", help="curation filters ('' to skip)")
    args = parser.parse_args()
    if args.setup_reference:
        setup_reference(ROOT / ".venv-forge", args.python312)

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ref_py = Path(args.reference_python)
    ref_env = {**os.environ, "TELEMETRY_OPT_OUT": "true", "AWS_EC2_METADATA_DISABLED": "true"}
    cli = novaflow_cli()
    # As a user runs it: an installed (or editable) novaflow runs from its bytecode cache; a shell that sets
    # PYTHONDONTWRITEBYTECODE would compile novaflow's ~30 modules from source in every run (~40 ms).
    cached = os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None
    tiny = work / "ten_rows.csv"
    tiny.write_text("query,response\n" + "".join(f"question {i},answer {i}\n" for i in range(10)), encoding="utf-8")
    tiny_cmd = [*cli, "data", "prepare", str(tiny), "--method", "sft", "--model", "nova-lite-2", "--out"]
    measure([*tiny_cmd, str(work / "nf_ten_rows")])  # writes the bytecode cache
    note = "; PYTHONDONTWRITEBYTECODE unset for novaflow (bytecode cached, as installed)" if cached else ""
    print(f"cpus: {os.cpu_count()}; {load()}; best of {args.repeat} novaflow runs{note}")
    rows: list[tuple[str, ...]] = []
    checks: list[str] = []
    filtered: dict[int, Run] = {}
    curated_cmds: dict[int, list[str]] = {}

    def compare(label: str, size: int, nova: Run, ref_cmd: list[str], goal: bool = True) -> None:
        rows.append((f"novaflow {label}", f"{size:,}", f"{nova.wall:.2f}", f"{nova.cpu:.2f}", f"{nova.peak_mb:.0f}", ""))  # fmt: skip
        if not ref_py.exists():
            rows.append((f"forge {label}", f"{size:,}", "-", "-", "-", f"not run: {ref_py} missing (--setup-reference)"))  # fmt: skip
            return
        # -I: the reference must not import modules lying in the working directory (a stray enum.py breaks it)
        ref = best([str(ref_py), "-I", *ref_cmd], args.ref_repeat, ref_env)
        if ref.problem:
            rows.append((f"forge {label}", f"{size:,}", "-", "-", "-", f"failed: {ref.problem[:70]}"))
            return
        speed, memory = ref.wall / nova.wall, nova.peak_mb / ref.peak_mb
        rows.append(
            (
                f"forge {label}",
                f"{size:,}",
                f"{ref.wall:.2f}",
                f"{ref.cpu:.2f}",
                f"{ref.peak_mb:.0f}",
                f"novaflow {speed:.1f}x faster, {memory:.2f} of the memory",
            )
        )
        if goal:  # the speed and memory goals are for table input; Converse input has the linearity goal below
            checks.append(f"{label} {size:,}: {speed:.1f}x the reference (goal >= 12x: {met(speed >= 12)})")
            checks.append(
                f"{label} {size:,}: memory {memory:.2f} of the reference's (goal <= 0.5: {met(memory <= 0.5)})"
            )

    for size in [int(s) for s in args.rows.split(",") if s.strip()]:
        data = work / f"so_{size}_{args.seed}.csv"
        if not data.exists():
            generate(data, size, args.seed)
        out = work / f"nf_csv_{size}"
        cmd = [*cli, "data", "prepare", str(data), "--method", "sft", "--model", "nova-lite-2", "--out", str(out)]
        plain = [*cmd, "--map", "query=Body", "--map", "response=Y"]
        curated_cmd = [*cmd[:-1], str(work / f"nf_filtered_{size}"), "--map", "query=Body", "--map", "response=Y"]
        curated_cmd += ["--filter", args.filters]
        ratios: list[float] = []
        curated: Run | None = None
        if args.filters:  # alternated: the ratio goal is read within pairs of runs
            nova, curated, ratios = paired(plain, curated_cmd, args.repeat)
        else:
            nova = best(plain, args.repeat)
        if nova.problem:
            raise SystemExit(f"novaflow failed at {size} rows: {nova.problem}")
        ref_out = work / f"ref_csv_{size}"
        ref_out.mkdir(exist_ok=True)
        label = f"CSV -> SFT ({data.stat().st_size / 1e6:.0f} MB)"
        compare(label, size, nova, ["-c", REFERENCE_CSV, str(data), str(ref_out)])
        if curated is not None:
            if curated.problem:
                raise SystemExit(f"novaflow --filter failed at {size} rows: {curated.problem}")
            filtered[size] = curated
            curated_cmds[size] = curated_cmd
            ratio = statistics.median(ratios) if ratios else curated.wall / nova.wall
            spread = (
                f"median of {len(ratios)} alternated pairs, {min(ratios):.2f}-{max(ratios):.2f}"
                if ratios
                else "best runs: every pair had a failed run"
            )
            rows.append((f"novaflow {label} --filter {args.filters}", f"{size:,}", f"{curated.wall:.2f}",
                         f"{curated.cpu:.2f}", f"{curated.peak_mb:.0f}",
                         f"{ratio:.2f}x the time without filters ({spread}; best runs {curated.wall / nova.wall:.2f}x, "
                         f"{curated.cpu / nova.cpu:.1f}x the CPU)"))  # fmt: skip
            checks.append(
                f"filters {args.filters} at {size:,}: {ratio:.2f}x the time without ({spread}; goal <= 3x: "
                f"{met(ratio <= 3)})"
            )

    if len(filtered) >= 2:
        small, large = min(filtered), max(filtered)
        growth = filtered[large].peak_mb / filtered[small].peak_mb
        checks.append(
            f"filtered peak memory {filtered[small].peak_mb:.0f} MB at {small:,} rows, {filtered[large].peak_mb:.0f} MB "
            f"at {large:,} ({growth:.2f}x for {large / small:.0f}x the rows, each size with its default process count)"
        )
        # Whether memory grows with rows, the process count held fixed: by default a small filtered input runs in one
        # process and a large one in a worker per core (each worker holds pyarrow, numba and the compiled kernels).
        cores = len(os.sched_getaffinity(0))
        same = best([*curated_cmds[small], "--workers", str(cores)], args.repeat)
        if same.problem:
            raise SystemExit(f"novaflow --filter --workers {cores} failed at {small:,} rows: {same.problem}")
        rows.append((f"novaflow --filter {args.filters} --workers {cores}", f"{small:,}", f"{same.wall:.2f}",
                     f"{same.cpu:.2f}", f"{same.peak_mb:.0f}", f"the process count of the {large:,}-row run"))  # fmt: skip
        fixed = filtered[large].peak_mb / same.peak_mb
        checks.append(
            f"filtered peak memory with {cores} workers at both sizes: {same.peak_mb:.0f} MB at {small:,} rows, "
            f"{filtered[large].peak_mb:.0f} MB at {large:,} ({fixed:.2f}x; goal flat in rows, <= 1.25x: "
            f"{met(fixed <= 1.25)})"
        )
    converse: dict[int, Run] = {}
    for size in [int(s) for s in args.converse.split(",") if s.strip()]:
        # Converse input: novaflow's own SFT output of a case-study CSV of that size (valid, varied, realistic)
        source = work / f"so_{size}_{args.seed}.csv"
        if not source.exists():
            generate(source, size, args.seed)
        seed_out = work / f"converse_src_{size}"
        made = measure([*cli, "data", "prepare", str(source), "--method", "sft", "--model", "nova-lite-2", "--out",
                        str(seed_out), "--map", "query=Body", "--map", "response=Y"])  # fmt: skip
        if made.problem:
            raise SystemExit(f"could not make the Converse input: {made.problem}")
        data = seed_out / "train.jsonl"
        out = work / f"nf_converse_{size}"
        cmd = [*cli, "data", "prepare", str(data), "--method", "sft", "--model", "nova-lite-2", "--out", str(out)]
        nova = best(cmd, args.repeat)
        if nova.problem:
            raise SystemExit(f"novaflow failed on Converse input of {size} rows: {nova.problem}")
        converse[size] = nova
        ref_out = work / f"ref_converse_{size}"
        ref_out.mkdir(exist_ok=True)
        compare("Converse JSONL -> SFT", size, nova, ["-c", REFERENCE_CONVERSE, str(data), str(ref_out)], goal=False)
    if len(converse) >= 2:
        small, large = min(converse), max(converse)
        ratio = converse[large].wall / converse[small].wall
        checks.append(
            f"Converse {large:,} rows take {ratio:.2f}x the time of {small:,} (linear: {large / small:.1f}x; "
            "goal <= 4.5x)"
        )

    if args.startup:
        base = best([sys.executable, "-c", "import pyarrow"], args.startup)
        ten = best([*tiny_cmd, str(work / "nf_ten_rows")], args.startup)
        rows.append(
            ("python -c 'import pyarrow'", "-", f"{base.wall:.2f}", f"{base.cpu:.2f}", f"{base.peak_mb:.0f}", "")
        )
        rows.append(("novaflow data prepare (start-up)", "10", f"{ten.wall:.2f}", f"{ten.cpu:.2f}",
                     f"{ten.peak_mb:.0f}", f"{ten.wall - base.wall:.2f} s above importing pyarrow"))  # fmt: skip
        above = ten.wall - base.wall
        checks.append(f"start-up: {above:.2f} s above `import pyarrow` (goal <= 0.25 s: {met(above <= 0.25)})")
    head = ("run", "rows", "wall s", "cpu s", "peak MB", "note")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for line in checks:
        print(line)
    print(f"after: {load()}")


if __name__ == "__main__":
    main()
