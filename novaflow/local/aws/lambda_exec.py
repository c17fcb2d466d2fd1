"""Patch for moto's simple Lambda backend: run the uploaded zip's real handler in a subprocess (no Docker).

Stock moto 5.2.5 with ``{"lambda": {"use_docker": false}}`` echoes the request and "succeeds" even for functions
that do not exist, so a reward Lambda tested through it proves nothing. This patch makes ``Invoke`` behave like
AWS for zip functions:

* the function's handler runs in a fresh ``sys.executable`` subprocess (about 30 ms) with the function's
  environment variables, ``AWS_LAMBDA_*`` variables and timeout - no state survives between invocations;
* the subprocess sees the extracted zip first on ``sys.path`` and site-packages *without* ``.pth`` processing, so
  code missing from the zip fails here as it would on AWS (editable installs are not visible), while boto3 - which
  the AWS runtime provides - is;
* a handler exception becomes ``FunctionError: Unhandled`` with ``{"errorMessage", "errorType", "stackTrace"}``,
  a timeout ``Sandbox.Timedout``, a non-serialisable result ``Runtime.MarshalError``, a dying process
  ``Runtime.ExitError``; an unknown function raises ``ResourceNotFoundException`` (moto's own lookup);
* ``LogType=Tail`` returns the last 4 KB of the log, base64-encoded; every invocation's log (START / output /
  END / REPORT) is also written to CloudWatch Logs ``/aws/lambda/<name>``;
* results queued through ``/moto-api/static/lambda-simple/response`` still win (moto's documented lever), and
  :func:`inject_error` queues failures for the emulator control API.

Written against the moto of :mod:`novaflow.local.aws.moto_pin`; :func:`check_internals` fails loudly when the Lambda
internals it relies on change.
"""

from __future__ import annotations

import atexit
import base64
import inspect
import json
import math
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
import zipfile
from collections import defaultdict, deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from novaflow.local.aws.moto_pin import MotoInternalsChanged

LOG_TAIL_BYTES = 4096
TIMEOUT_GRACE_SECONDS = 0.5
"""Headroom for interpreter start-up on top of the function's own timeout (AWS does not bill the init phase)."""

_LOCK = threading.Lock()
_INSTALLED = False
_ORIGINAL_INVOKE: Any = None


class _InjectedErrors:
    """Failures queued per function name for the next invocations (emulator control API, tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[str]] = defaultdict(deque)

    def add(self, function_name: str, message: str, times: int) -> None:
        with self._lock:
            self._queues[function_name].extend([message] * times)

    def pop(self, function_name: str) -> str | None:
        with self._lock:
            queue = self._queues.get(function_name)
            return queue.popleft() if queue else None

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()


class _CodeDirs:
    """Each function zip extracted once per CodeSha256 (immutable, like a Lambda's /var/task), under one temporary
    root removed at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dirs: dict[str, Path] = {}
        self._root: Path | None = None

    def get(self, code_sha_256: str, code: bytes) -> Path:
        with self._lock:
            cached = self._dirs.get(code_sha_256)
            if cached is not None and cached.is_dir():
                return cached
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="novaflow-lambda-"))
                atexit.register(shutil.rmtree, self._root, True)
            target = self._root / uuid.uuid4().hex
            target.mkdir()
            _extract(code, target)
            self._dirs[code_sha_256] = target
            return target


_ERRORS = _InjectedErrors()
_CODE_DIRS = _CodeDirs()

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
"""The program each invocation runs, by path (:mod:`novaflow.local.aws.lambda_bootstrap`)."""


def check_internals() -> None:
    """Fail loudly if the moto internals this patch relies on have changed (run at install and in a test)."""
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.logs.models import LogsBackend

    problems: list[str] = []
    expected = ["self", "function_name", "qualifier", "body", "headers", "response_headers"]
    invoke = _ORIGINAL_INVOKE or LambdaSimpleBackend.invoke
    if list(inspect.signature(invoke).parameters) != expected:
        problems.append(f"LambdaSimpleBackend.invoke{inspect.signature(invoke)} no longer takes {expected}")
    init_src = inspect.getsource(LambdaFunction.__init__) + inspect.getsource(LambdaFunction._set_function_code)
    for attr in (
        "self.code_bytes",
        "self.environment_vars",
        "self.timeout",
        "self.handler",
        "self.memory_size",
        "self.function_arn",
        "self.logs_group_name",
        "self.logs_backend",
        "self.code_sha_256",
    ):
        if attr not in init_src:
            problems.append(f"LambdaFunction no longer sets {attr}")
    if not hasattr(LambdaSimpleBackend, "get_function") or not hasattr(
        LambdaSimpleBackend("us-east-1", "123456789012"), "lambda_simple_results_queue"
    ):
        problems.append("LambdaSimpleBackend lost get_function or lambda_simple_results_queue")
    for name in ("ensure_log_group", "create_log_stream", "put_log_events"):
        if not hasattr(LogsBackend, name):
            problems.append(f"LogsBackend lost {name}")
    if problems:
        raise MotoInternalsChanged(
            "novaflow.local.aws.lambda_exec: "
            + "; ".join(problems)
            + " - re-check the patch against the new moto before upgrading."
        )


def install() -> None:
    """Wrap ``LambdaSimpleBackend.invoke`` (idempotent; class-level, so existing backends are covered)."""
    global _INSTALLED, _ORIGINAL_INVOKE
    with _LOCK:
        if _INSTALLED:
            return
        from moto.awslambda_simple.models import LambdaSimpleBackend

        check_internals()
        _ORIGINAL_INVOKE = LambdaSimpleBackend.invoke
        LambdaSimpleBackend.invoke = _invoke  # type: ignore[method-assign]
        _INSTALLED = True


def reset() -> None:
    """Forget queued errors (extracted code is immutable per CodeSha256 and stays cached)."""
    _ERRORS.clear()


def inject_error(function_name: str, message: str, times: int = 1) -> None:
    """Make the next ``times`` invocations of ``function_name`` fail with ``FunctionError: Unhandled``."""
    _ERRORS.add(function_name, message, times)


def _invoke(
    self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: dict[str, str]
) -> bytes:
    if self.lambda_simple_results_queue:  # explicitly queued results keep moto's documented behaviour
        return _ORIGINAL_INVOKE(self, function_name, qualifier, body, headers, response_headers)
    fn = self.get_function(function_name, qualifier)  # ResourceNotFoundException for unknown functions
    invocation_type = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    response_headers["x-amz-executed-version"] = str(fn.version)
    if invocation_type == "DryRun":
        return b""
    request_id = str(uuid.uuid4())
    injected = _ERRORS.pop(fn.function_name)
    if injected is not None:
        outcome = Outcome(
            False,
            error={"errorMessage": injected, "errorType": "InjectedError", "stackTrace": []},
            log=f"[ERROR] InjectedError: {injected}\n",
            duration_ms=0.0,
        )
    else:
        outcome = run_function(fn, body, request_id)
    log_text = _frame_log(outcome, request_id, fn)
    _write_cloudwatch(fn, log_text)
    response_headers["x-amz-log-result"] = base64.b64encode(log_text.encode("utf-8")[-LOG_TAIL_BYTES:]).decode("ascii")
    response_headers["x-amzn-requestid"] = request_id
    if outcome.ok:
        payload = outcome.payload.encode("utf-8")
    else:
        response_headers["x-amz-function-error"] = "Unhandled"
        payload = json.dumps(outcome.error).encode("utf-8")
    response_headers["Content-Length"] = str(len(payload))
    return payload


class Outcome:
    """What one execution produced: a JSON payload or an error document, plus the raw log."""

    def __init__(
        self,
        ok: bool,
        *,
        payload: str = "",
        error: dict[str, Any] | None = None,
        log: str = "",
        duration_ms: float = 0.0,
        max_memory_mb: int = 0,
    ) -> None:
        self.ok = ok
        self.payload = payload
        self.error = error or {}
        self.log = log
        self.duration_ms = duration_ms
        self.max_memory_mb = max_memory_mb


def run_function(fn: Any, body: Any, request_id: str) -> Outcome:
    """Execute ``fn``'s handler once in a fresh subprocess with its environment and timeout."""
    task_dir = _code_dir(fn)
    event = body.decode("utf-8") if isinstance(body, bytes) else (body or "")
    timeout = float(fn.timeout or 3)
    context = {
        "site_dirs": _site_dirs(),
        "function_name": fn.function_name,
        "function_version": str(fn.version),
        "invoked_function_arn": fn.function_arn,
        "memory_limit_in_mb": int(fn.memory_size),
        "aws_request_id": request_id,
        "log_group_name": fn.logs_group_name,
        "log_stream_name": "",
        "deadline": time.time() + timeout,
    }
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-u", str(BOOTSTRAP), str(task_dir), str(fn.handler), json.dumps(context)],
            input=event.encode("utf-8"),
            capture_output=True,
            env=_function_env(fn),
            cwd=task_dir,
            timeout=timeout + TIMEOUT_GRACE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        log = _decode(exc.stderr) + f"Task timed out after {timeout:.2f} seconds\n"
        message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
        return Outcome(
            False, error={"errorType": "Sandbox.Timedout", "errorMessage": message}, log=log, duration_ms=timeout * 1000
        )
    duration = (time.perf_counter() - started) * 1000
    log = _decode(proc.stderr)
    try:
        result = json.loads(proc.stdout.decode("utf-8"))
    except ValueError:
        message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {proc.returncode}"
        return Outcome(
            False, error={"errorType": "Runtime.ExitError", "errorMessage": message}, log=log, duration_ms=duration
        )
    if result.get("ok"):
        return Outcome(True, payload=result["payload"], log=log, duration_ms=duration)
    error = {k: result[k] for k in ("errorMessage", "errorType", "stackTrace") if k in result}
    return Outcome(False, error=error, log=log, duration_ms=duration)


def _site_dirs() -> list[str]:
    """site-packages without ``.pth`` processing: boto3 importable (as on AWS), editable installs not."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def _function_env(fn: Any) -> dict[str, str]:
    """What the AWS runtime sets, the function's own variables on top, and the endpoint of this embedded AWS."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(_code_dir(fn)),
        "_HANDLER": str(fn.handler),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(fn.timeout),
        "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
        "AWS_REGION": fn.region,
        "AWS_DEFAULT_REGION": fn.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }
    if os.environ.get("AWS_ENDPOINT_URL"):
        env["AWS_ENDPOINT_URL"] = os.environ["AWS_ENDPOINT_URL"]
    env.update({str(k): str(v) for k, v in (fn.environment_vars or {}).items()})
    return env


def _code_dir(fn: Any) -> Path:
    return _CODE_DIRS.get(fn.code_sha_256, fn.code_bytes)


def _extract(data: bytes, target: Path) -> None:
    import io

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.infolist():
            dest = (target / member.filename).resolve()
            if not dest.is_relative_to(target.resolve()):
                raise ValueError(f"zip entry {member.filename!r} escapes the task directory")
        archive.extractall(target)


def _frame_log(outcome: Outcome, request_id: str, fn: Any) -> str:
    """The log as AWS frames it: START, the function's output, END, REPORT."""
    body = outcome.log if not outcome.log or outcome.log.endswith("\n") else outcome.log + "\n"
    billed = max(1, math.ceil(outcome.duration_ms))
    return (
        f"START RequestId: {request_id} Version: {fn.version}\n{body}END RequestId: {request_id}\n"
        f"REPORT RequestId: {request_id}\tDuration: {outcome.duration_ms:.2f} ms\tBilled Duration: {billed} ms\t"
        f"Memory Size: {fn.memory_size} MB\n"
    )


def _write_cloudwatch(fn: Any, log_text: str) -> None:
    """One stream per invocation, named as AWS names them: ``YYYY/MM/DD/[<version>]<hex>``."""
    now = datetime.now(UTC)
    stream = f"{now:%Y/%m/%d}/[{fn.version}]{uuid.uuid4().hex}"
    millis = int(now.timestamp() * 1000)
    events = [{"timestamp": millis, "message": line} for line in log_text.splitlines() if line.strip()]
    logs = fn.logs_backend
    logs.ensure_log_group(fn.logs_group_name)
    logs.create_log_stream(fn.logs_group_name, stream)
    if events:
        logs.put_log_events(fn.logs_group_name, stream, events)


def _decode(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    return raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
