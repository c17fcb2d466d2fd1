"""The CLI starts light: its heavy libraries load only when a command that needs them runs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from novaflow.cli import GROUPS

HEAVY = ("pandas", "pyarrow", "prefect", "plotly")
ALL_FILTERS = "dedup,near-dedup,quality,language=en"


def _modules_after(code: str) -> set[str]:
    """Top-level packages a fresh interpreter has imported after running ``code``."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_importing_the_cli_imports_none_of_the_heavy_libraries() -> None:
    loaded = _modules_after("import novaflow.cli")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert "boto3" not in loaded and "rich" not in loaded


@pytest.mark.slow
@pytest.mark.parametrize("verb", ["", *GROUPS])
def test_help_of_every_verb_loads_no_heavy_library(verb: str) -> None:
    args = [verb, "--help"] if verb else ["--help"]
    loaded = _modules_after(
        "import contextlib, io\nfrom novaflow.cli import main\n"
        f"with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n    main({args!r})"
    )
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_root_help_lists_every_verb_with_its_own_summary() -> None:
    """The root lists verbs from a table, not from their modules: the table must say what each module says."""
    import importlib

    from novaflow.cli import GROUPS

    for verb, (module, summary) in GROUPS.items():
        assert importlib.import_module(module).app.info.help == summary, verb


def test_help_runs_and_unknown_verbs_are_one_usage_error() -> None:
    from typer.testing import CliRunner

    from novaflow.cli import app

    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # the help wraps to the terminal's width
    assert " data Prepare, split, profile and generate datasets in the Nova formats. recipes " in text
    assert "--debug" in result.output
    wrong = CliRunner().invoke(app, ["nope"])
    assert wrong.exit_code == 2
    assert "No such command 'nope'" in wrong.output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("so.csv", ["--method", "sft", "--map", "query=Body", "--map", "response=Y"]),
        ("so.csv", ["--method", "rft", "--map", "query=Body", "--map", "reference_answer=Y"]),
        ("so.csv", ["--method", "eval", "--map", "query=Body", "--map", "response=Y"]),
        ("converse.jsonl", ["--method", "sft"]),
        ("so.csv", ["--method", "sft", "--map", "query=Body", "--map", "response=Y", "--filter", ALL_FILTERS]),
        ("converse.jsonl", ["--method", "sft", "--filter", ALL_FILTERS]),
        ("ragged.csv", ["--method", "sft", "--map", "query=q", "--map", "response=r"]),
    ],
)
def test_data_prepare_never_imports_pandas(tmp_path: Path, name: str, args: list[str]) -> None:
    """pandas costs ~0.2 s and ~30 MB of every ``data prepare``, and pyarrow imports it behind calls that look
    harmless (``Array.to_numpy``, ``pa.array`` or ``pa.table`` of a list): the preparation path must avoid them
    all, the filters' (run by every chunk worker too) and the stdlib CSV reader's included."""
    from novaflow.data.samples import generate_stackoverflow_csv

    data = generate_stackoverflow_csv(tmp_path / "so.csv", 40, 1)
    converse = tmp_path / "converse.jsonl"
    with data.open(encoding="utf-8", newline="") as fh:  # the CSV's varied texts: some rows pass every filter
        pairs = [(r["Body"], r["Y"]) for r in csv.DictReader(fh)]
    rows = [
        {
            "schemaVersion": "bedrock-conversation-2024",
            "messages": [{"role": "user", "content": [{"text": q}]}, {"role": "assistant", "content": [{"text": a}]}],
        }
        for q, a in pairs
    ]
    converse.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    ragged = tmp_path / "ragged.csv"  # a row of the wrong width: read by the stdlib reader, chunk by chunk
    ragged.write_text('q,r\n"multi\nline",x\n1,2,3\nc,d\n', encoding="utf-8")
    source = {"so.csv": data, "converse.jsonl": converse, "ragged.csv": ragged}[name]
    argv = ["data", "prepare", str(source), "--model", "nova-lite-2", "--out", str(tmp_path / "out"), *args]
    loaded = _modules_after(
        f"from novaflow.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit as e:\n    assert not e.code, e"
    )
    assert (tmp_path / "out" / "manifest.json").exists()
    assert "pandas" not in loaded


@pytest.mark.slow
def test_data_prepare_with_rejected_rows_imports_only_what_it_needs(tmp_path: Path) -> None:
    """Start-up: pyarrow.compute (a wrapper per kernel, ~30 ms), typer's other commands and pandas (behind
    ``pa.array``, ~0.2 s) stay out of a ``data prepare`` whose file has rejected rows."""
    source = tmp_path / "mixed.csv"
    source.write_text("query,response\nq1,a1\n ,a2\nUser: q3,a3\nq4,a4\n", encoding="utf-8")
    argv = ["data", "prepare", str(source), "--method", "sft", "--model", "nova-lite-2", "--out", str(tmp_path / "o")]
    probe = (
        f"import json, sys\nfrom novaflow.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit as e:\n"
        "    assert not e.code, e\nprint(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert len((tmp_path / "o" / "rejected.jsonl").read_text("utf-8").splitlines()) == 2
    unwanted = {"pandas", "pyarrow.compute", "typer.rich_utils", "novaflow.data.filters"}
    assert not loaded & unwanted, sorted(loaded & unwanted)


@pytest.mark.slow
def test_data_prepare_from_the_console_ends_without_teardown_and_loses_nothing(tmp_path: Path) -> None:
    """A process started as a user starts it (``argv`` from the command line) exits 0 without the interpreter's
    teardown: its piped output is complete and every file is whole (the manifest's hash is the data file's)."""
    import hashlib

    source = tmp_path / "ten.csv"
    source.write_text("query,response\n" + "".join(f"question {i},answer {i}\n" for i in range(10)), "utf-8")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "novaflow.cli", "data", "prepare", str(source), "--method", "sft", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"wrote {out / 'train.jsonl'}: 10 rows (10 read)",
        f"report: {out / 'report.json'}  manifest: {out / 'manifest.json'}",
    ]
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    data = (out / "train.jsonl").read_bytes()
    assert manifest["files"]["train.jsonl"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(data.splitlines()) == 10 and json.loads((out / "report.json").read_text("utf-8"))["rows_out"] == 10
