"""Server-side ``/moto-api/ext/...`` routes, so processes other than the server's can control the emulator.

A Prefect worker, a CLI subprocess or a demo notebook talks to ``novaflow local up`` in another process; fault
injection and timing must therefore travel over HTTP, like moto's own ``/moto-api/state-manager`` routes. The
client is :class:`novaflow.local.aws.control.EmulatorControl`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from moto.moto_api import state_manager
from moto.moto_api._internal import urls as api_urls

from novaflow.local.aws import console, lambda_exec, quotas
from novaflow.local.aws.control import MANAGED_MODELS
from novaflow.local.emulator import faults, jobstate

EXT = "{0}/moto-api/ext/"


def _body(request: Any, headers: Any) -> dict[str, Any]:
    length = int(headers.get("Content-Length") or 0)
    raw = request.environ["wsgi.input"].read(length) if length else b""
    return json.loads(raw or b"{}")


Response = Sequence[int | dict[str, Any] | str | bytes]
"""What a moto URL handler returns: status, headers, body."""


class Handler(Protocol):
    """A moto URL handler (moto may pass ``headers`` by keyword)."""

    def __call__(self, request: Any, full_url: str, /, headers: Any) -> Response: ...


def _route(action: Callable[[dict[str, Any]], Any]) -> Handler:
    def handler(request: Any, full_url: str, headers: Any) -> Response:
        if request.method != "POST":
            return 405, {}, json.dumps({"Error": "POST only"})
        try:
            result = action(_body(request, headers))
        except (KeyError, TypeError, ValueError) as exc:
            return 400, {"Content-Type": "application/json"}, json.dumps({"Error": f"bad request: {exc}"})
        return 200, {"Content-Type": "application/json"}, json.dumps(result if result is not None else {})

    return handler


def _set_job_duration(body: dict[str, Any]) -> dict[str, Any]:
    seconds = float(body["seconds"])
    kind = body.get("kind")
    jobstate.Timing.set(seconds, kind)
    return {"seconds": seconds, "kind": kind}


def _set_quotas(body: dict[str, Any]) -> dict[str, Any]:
    return quotas.route(body)


def _lambda_error(body: dict[str, Any]) -> None:
    inject = getattr(lambda_exec, "inject_error", None)
    if inject is None:
        raise ValueError("lambda_exec.inject_error is not available in this build")
    inject(body["function_name"], body["message"])


def _unset_transitions(body: dict[str, Any]) -> None:
    for name in body.get("model_names") or MANAGED_MODELS:
        state_manager.unset_transition(name)


ROUTES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "fail-job": lambda b: faults.fail_job(b["job_name"], b["reason"]),
    "stall-job": lambda b: faults.stall_job(b["job_name"]),
    "release-job": lambda b: faults.release_job(b["job_name"]),
    "throttle": lambda b: faults.throttle(b["operation"], int(b["times"])),
    "lambda-error": _lambda_error,
    "job-duration": _set_job_duration,
    "quotas": _set_quotas,
    "unset-transitions": _unset_transitions,
}


def _job_page(request: Any, full_url: str, headers: Any) -> Response:
    return console.job_page(full_url)


def install(on_reset: Callable[[], None]) -> None:
    """Add the routes and make ``/moto-api/reset`` also forget emulator state (idempotent)."""
    for name, action in ROUTES.items():
        api_urls.url_paths[EXT + name] = _route(action)
    api_urls.url_paths["{0}" + console.JOBS_PATH + "(?P<name>[^/?]+)"] = _job_page
    key = "{0}/moto-api/reset"
    stock = api_urls.url_paths[key]
    if getattr(stock, "_novaflow", False):
        return

    def reset_response(request: Any, full_url: str, headers: Any) -> Response:
        result = stock(request, full_url, headers)
        if request.method == "POST":
            on_reset()
        return result

    reset_response._novaflow = True  # type: ignore[attr-defined]
    api_urls.url_paths[key] = reset_response
