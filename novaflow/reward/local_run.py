"""Run a reward package's handler on this machine, in a child process, before anything is deployed or paid for.

The zip is extracted to a temporary folder and its ``lambda_function.lambda_handler`` is called once per batch in
a fresh interpreter (``python -I``: no user site, no ``PYTHON*`` variables, the package first on ``sys.path``), so
what runs is exactly what would be uploaded, a crash or an endless loop in the team's code cannot take the flow
down, and an exception comes back as the Lambda runtime reports it: ``errorType`` and ``errorMessage``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_SECONDS = 120.0
_RUNNER = r"""
import json, os, sys, traceback
out = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.path.insert(0, sys.argv[1])
try:
    import lambda_function
    result = lambda_function.lambda_handler(json.load(sys.stdin), None)
    text = json.dumps({"ok": True, "result": result}, allow_nan=False)
except BaseException as exc:
    traceback.print_exc()
    text = json.dumps({"ok": False, "errorType": type(exc).__name__, "errorMessage": str(exc)})
out.write(text)
out.close()
"""


@dataclass(frozen=True)
class LocalOutcome:
    """What one local invocation returned: the handler's result, or the error the runtime would report."""

    ok: bool
    result: Any = None
    error_type: str = ""
    error_message: str = ""
    log: str = ""


class LocalPackage:
    """An extracted reward zip that can be invoked repeatedly (``with`` removes the folder)."""

    def __init__(self, zip_bytes: bytes, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.timeout_seconds = timeout_seconds
        self._folder = tempfile.TemporaryDirectory(prefix="novaflow-reward-local-")
        self.root = Path(self._folder.name)
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
            for member in archive.namelist():
                if not (self.root / member).resolve().is_relative_to(self.root.resolve()):
                    raise ValueError(f"zip entry {member!r} escapes the package folder")
            archive.extractall(self.root)

    def __enter__(self) -> LocalPackage:
        return self

    def __exit__(self, *exc: object) -> None:
        self._folder.cleanup()

    def invoke(self, event: Any, env: dict[str, str] | None = None) -> LocalOutcome:
        """One call of the handler; ``env`` adds variables to the child's environment (an agent's runtime URL)."""
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-c", _RUNNER, str(self.root)],
                input=json.dumps(event).encode("utf-8"),
                capture_output=True,
                cwd=self.root,
                timeout=self.timeout_seconds,
                check=False,
                env={**os.environ, **env} if env else None,
            )
        except subprocess.TimeoutExpired:
            return LocalOutcome(False, error_type="Timeout", error_message=f"no answer in {self.timeout_seconds:.0f} s")
        log = done.stderr.decode("utf-8", "replace")
        try:
            answer = json.loads(done.stdout.decode("utf-8"))
        except ValueError:
            message = f"the handler process exited with status {done.returncode}: {log.strip()[-300:]}"
            return LocalOutcome(False, error_type="ExitError", error_message=message, log=log)
        if answer.get("ok"):
            return LocalOutcome(True, result=answer["result"], log=log)
        return LocalOutcome(False, error_type=answer["errorType"], error_message=answer["errorMessage"], log=log)
