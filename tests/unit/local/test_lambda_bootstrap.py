"""The Lambda bootstrap is a real module run by path: its result document, log routing and error shapes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from novaflow.local.aws.lambda_exec import BOOTSTRAP, _site_dirs

pytestmark = pytest.mark.slow  # every test here starts a process (see tests/plugins/fast_lane.py)

HANDLER = textwrap.dedent("""
    import importlib.util, logging

    def handler(event, context):
        print("printed", event["n"])
        logging.getLogger().warning("logged")
        if event.get("fail"):
            raise KeyError("missing " + context.function_name)
        return {"double": event["n"] * 2, "left": context.get_remaining_time_in_millis() > 0,
                "sees_novaflow": importlib.util.find_spec("novaflow") is not None}

    def unmarshallable(event, context):
        return {1, 2}
""")


def invoke(task_dir: Path, handler: str, event: dict[str, Any]) -> tuple[dict[str, Any], str]:
    context = {
        "site_dirs": _site_dirs(),
        "function_name": "probe",
        "function_version": "$LATEST",
        "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:probe",
        "memory_limit_in_mb": 128,
        "aws_request_id": "req-1",
        "log_group_name": "/aws/lambda/probe",
        "log_stream_name": "",
        "deadline": 4102444800.0,
    }
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-u", str(BOOTSTRAP), str(task_dir), handler, json.dumps(context)],
        input=json.dumps(event).encode(),
        capture_output=True,
        check=True,
        cwd=task_dir,
        timeout=60,
    )
    return json.loads(proc.stdout), proc.stderr.decode()


def test_result_on_stdout_prints_and_logs_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(HANDLER)
    result, log = invoke(tmp_path, "app.handler", {"n": 21})
    assert result == {"ok": True, "payload": json.dumps({"double": 42, "left": True, "sees_novaflow": False})}
    assert log.splitlines()[0] == "printed 21"
    assert log.splitlines()[1].startswith("[WARNING]\t") and log.splitlines()[1].endswith("Z\treq-1\tlogged")


def test_handler_error_import_error_and_marshal_error(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(HANDLER)
    failed, log = invoke(tmp_path, "app.handler", {"n": 1, "fail": True})
    assert (failed["ok"], failed["errorType"], failed["errorMessage"]) == (False, "KeyError", "'missing probe'")
    assert len(failed["stackTrace"]) == 1 and f'File "{tmp_path / "app.py"}"' in failed["stackTrace"][0]
    assert "[ERROR] KeyError: 'missing probe'" in log
    missing, _ = invoke(tmp_path, "nowhere.handler", {})
    assert missing["errorType"] == "Runtime.ImportModuleError"
    assert missing["errorMessage"] == "Unable to import module 'nowhere': No module named 'nowhere'"
    marshal, _ = invoke(tmp_path, "app.unmarshallable", {})
    assert marshal["errorType"] == "Runtime.MarshalError"
    assert marshal["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"
