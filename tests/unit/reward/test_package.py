"""The deployment zip: deterministic bytes, the entry module at the root, fixed metadata."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import reward_lambda
from novaflow.reward.package import HANDLER, RUNTIME, build_zip, code_sha256, write_zip

SOURCE = Path(reward_lambda.__file__).parent


def test_same_source_same_bytes_regardless_of_mtime_and_mode(tmp_path: Path) -> None:
    copy = tmp_path / "src"
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for i, path in enumerate(sorted(copy.glob("*.py"))):
        os.utime(path, (1_000_000 + i, 2_000_000_000 - i))
        path.chmod(0o600 if i % 2 else 0o755)
    assert build_zip(copy) == build_zip(SOURCE) == build_zip()


def test_changed_source_changes_code_sha(tmp_path: Path) -> None:
    copy = tmp_path / "src"
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "grader.py").write_text((copy / "grader.py").read_text() + "\n# changed\n")
    assert code_sha256(build_zip(copy)) != code_sha256(build_zip(SOURCE))


def test_entries_sorted_with_entry_module_at_root_and_fixed_metadata() -> None:
    with zipfile.ZipFile(io.BytesIO(build_zip())) as archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names)
        assert names[0] == "lambda_function.py"
        expected = {"lambda_function.py"} | {f"reward_lambda/{p.name}" for p in SOURCE.glob("*.py")}
        assert set(names) == expected
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert archive.read(info) == (SOURCE / Path(info.filename).name).read_bytes()
    assert HANDLER == "lambda_function.lambda_handler" and RUNTIME == "python3.12"


def test_write_zip_reports_lambdas_code_sha256(tmp_path: Path) -> None:
    path, sha = write_zip(tmp_path / "out" / "reward.zip")
    assert sha == base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


@pytest.mark.slow
def test_zip_runs_standalone_with_standard_library_only(tmp_path: Path) -> None:
    """The extracted zip imports with no site-packages at all, as on a bare python3.12 runtime."""
    with zipfile.ZipFile(io.BytesIO(build_zip())) as archive:
        archive.extractall(tmp_path)
    code = (
        "import sys; sys.path.insert(0, '.'); import json, lambda_function; "
        "print(json.dumps(lambda_function.lambda_handler("
        "[{'id': 1, 'messages': [{'role': 'assistant', 'content': 'HQ'}], 'reference_answer': 'HQ'}], None)))"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert proc.stdout.startswith('[{"id": 1, "aggregate_reward_score": 1.0, ')
