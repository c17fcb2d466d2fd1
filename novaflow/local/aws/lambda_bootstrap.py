"""The program :mod:`novaflow.local.aws.lambda_exec` runs in a fresh interpreter for each Lambda invocation.

It is started by path (``python -I -S -u lambda_bootstrap.py TASK_DIR HANDLER CONTEXT_JSON``, the event on
stdin) and imports only the standard library: the interpreter sees the function's extracted zip and plain
site-packages, never novaflow, as the AWS runtime would. The result document travels on a private copy of the
original stdout; fd 1 is pointed at stderr so whatever the handler prints lands in the function's log.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The attributes and method of the AWS runtime's context object that handlers use."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.function_name: str = fields["function_name"]
        self.function_version: str = fields["function_version"]
        self.invoked_function_arn: str = fields["invoked_function_arn"]
        self.memory_limit_in_mb: int = fields["memory_limit_in_mb"]
        self.aws_request_id: str = fields["aws_request_id"]
        self.log_group_name: str = fields["log_group_name"]
        self.log_stream_name: str = fields["log_stream_name"]
        self._deadline: float = fields["deadline"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


class _RequestId(logging.Filter):
    """Stamps every record with the invocation's request id, as the runtime's log format expects."""

    def __init__(self, request_id: str) -> None:
        super().__init__()
        self.request_id = request_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _log_like_the_runtime(request_id: str) -> None:
    """Root logger lines as the Python runtime writes them: level, UTC time with milliseconds, request id."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_RequestId(request_id))
    logging.getLogger().addHandler(handler)


def main(argv: list[str]) -> None:
    result_fd = os.dup(1)
    os.dup2(2, 1)
    task_dir, handler_name, context = argv[1], argv[2], json.loads(argv[3])
    sys.path[:0] = [task_dir]
    sys.path.extend(context["site_dirs"])
    os.chdir(task_dir)

    def emit(document: dict[str, Any]) -> None:
        with os.fdopen(result_fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(document))

    _log_like_the_runtime(context["aws_request_id"])
    try:
        module_name, _, function_name = handler_name.rpartition(".")
        event = json.loads(sys.stdin.read() or "{}")
        try:
            function = getattr(importlib.import_module(module_name), function_name)
        except Exception as exc:
            message = f"Unable to import module '{module_name}': {exc}"
            print(f"[ERROR] Runtime.ImportModuleError: {message}", file=sys.stderr)
            emit({"ok": False, "errorType": "Runtime.ImportModuleError", "errorMessage": message, "stackTrace": []})
            return
        result = function(event, LambdaContext(context))
    except SystemExit:
        raise
    except BaseException as exc:
        print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exc()
        frames = traceback.extract_tb(exc.__traceback__)[1:]  # from the handler down, without this frame
        emit(
            {
                "ok": False,
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_list(frames),
            }
        )
        return
    try:
        payload = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        message = f"Unable to marshal response: {exc}"
        emit({"ok": False, "errorType": "Runtime.MarshalError", "errorMessage": message, "stackTrace": []})
    else:
        emit({"ok": True, "payload": payload})


if __name__ == "__main__":
    main(sys.argv)
