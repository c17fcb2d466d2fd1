"""Close moto 5.2.5's SageMaker Runtime gaps: answers from the emulated model, unknown endpoints, streaming.

Stock ``InvokeEndpoint`` returns ``b"body"`` for any endpoint name, and ``InvokeEndpointWithResponseStream`` does
not exist (a 404 page in server mode). novaflow's deploy smoke test must see a real model answer in the Nova
chat-completion shape, an error for a deleted endpoint, and a stream whose chunk boundaries do not align with
records — so the patch routes both calls to :mod:`novaflow.local.emulator.serving`. Results queued through moto's own
``/moto-api/static/sagemaker/endpoint-results`` still win, for tests that want a canned answer.
"""

from __future__ import annotations

from typing import Any

from moto.core.eventstream import EventStreamEncoder
from moto.core.exceptions import ServiceException
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sagemaker.models import sagemaker_backends
from moto.sagemakerruntime import responses as rt_responses
from moto.sagemakerruntime import urls as rt_urls
from moto.sagemakerruntime.models import sagemakerruntime_backends

from novaflow.local.aws import moto_components
from novaflow.local.emulator import serving

STREAM_PATH = "{0}/endpoints/(?P<name>[^/]+)/invocations-response-stream$"
STREAM_CHUNK_BYTES = 48
"""Small on purpose: a chunk boundary must not be assumed to end a record (docs/inference.md#invoking)."""


class EndpointNotFound(ServiceException):
    """SageMaker Runtime's answer for an endpoint that does not exist (code ``ValidationError``)."""

    code = "ValidationError"


def _endpoint_or_error(account: str, region: str, name: str) -> Any:
    endpoint = sagemaker_backends[account][region].endpoints.get(name)
    if endpoint is None:
        raise EndpointNotFound(f"Endpoint {name} of account {account} not found.")
    # Reading the status settles an UpdateEndpoint whose transition is over, so the answer comes from the
    # config the endpoint reads as InService with, not from the one it is leaving.
    _ = endpoint.endpoint_status
    return endpoint


def _component_checkpoint(response: Any, endpoint: Any) -> str | None:
    """The model data of the inference component a call names (None: the endpoint's own variant answers)."""
    backend = sagemaker_backends[response.current_account][response.region]
    name = response.headers.get(moto_components.COMPONENT_HEADER) or response.headers.get(
        moto_components.COMPONENT_HEADER.lower()
    )
    config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
    hosts_components = any(not v.get("ModelName") for v in getattr(config, "production_variants", None) or [])
    if not name:
        if hosts_components:
            raise EndpointNotFound(  # AWS's words
                "Inference Component Name header is required for endpoints to which you plan to deploy inference "
                "components. Please include Inference Component Name header or consider using SageMaker models."
            )
        return None
    component = moto_components.find_component(backend, name)
    if component is None or component.endpoint_name != endpoint.endpoint_name:
        raise EndpointNotFound(f"Inference component {name} of endpoint {endpoint.endpoint_name} not found.")
    if component.status != "InService":
        raise EndpointNotFound(f"Inference component {name} is {component.status}, not InService.")
    return moto_components.component_checkpoint(backend, component)


def _server_url(response: Any) -> str:
    host = response.headers.get("Host") or response.headers.get("host") or ""
    return f"http://{host}"


def invoke_endpoint(self: Any) -> Any:
    name = self._get_params().get("EndpointName") or self.path.split("/")[2]
    try:
        endpoint = _endpoint_or_error(self.current_account, self.region, name)
        if sagemakerruntime_backends[self.current_account][self.region].results_queue:
            return _STOCK_INVOKE(self)
        checkpoint = _component_checkpoint(self, endpoint)
    except EndpointNotFound as exc:
        return _error(self, exc)
    body, content_type = serving.answer_sagemaker(
        endpoint, self.body, _server_url(self), stream=False, checkpoint_uri=checkpoint
    )
    headers = {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": _variant(endpoint)}
    return 200, headers, body


def invoke_endpoint_with_response_stream(self: Any) -> Any:
    name = self.path.split("/")[2]
    try:
        endpoint = _endpoint_or_error(self.current_account, self.region, name)
        checkpoint = _component_checkpoint(self, endpoint)
    except EndpointNotFound as exc:
        return _error(self, exc)
    body, content_type = serving.answer_sagemaker(
        endpoint, self.body, _server_url(self), stream=True, checkpoint_uri=checkpoint
    )
    return (
        200,
        {
            "Content-Type": "application/vnd.amazon.eventstream",
            "X-Amzn-SageMaker-Content-Type": content_type,
            "x-Amzn-Invoked-Production-Variant": _variant(endpoint),
        },
        encode_payload_parts(body),
    )


def encode_payload_parts(body: bytes, chunk: int = STREAM_CHUNK_BYTES) -> bytes:
    """The event-stream encoding of ``body`` as ``PayloadPart`` events of at most ``chunk`` bytes."""
    encoder = EventStreamEncoder()
    out = bytearray()
    for start in range(0, len(body), chunk):
        out += encoder.encode_message(
            {":message-type": "event", ":event-type": "PayloadPart", ":content-type": "application/octet-stream"},
            body[start : start + chunk],
        )
    return bytes(out)


def _variant(endpoint: Any) -> str:
    variants = getattr(endpoint, "production_variants", None) or [{}]
    return str(variants[0].get("VariantName", "AllTraffic"))


def _error(response: Any, exc: ServiceException) -> Any:
    from moto.core.responses import ActionResult

    status, headers, body = response.serialized(ActionResult(exc))
    headers["status"] = status  # moto's dispatcher reads the HTTP status from the headers
    return status, headers, body


_STOCK_INVOKE = rt_responses.SageMakerRuntimeResponse.invoke_endpoint
_STOCK_INFER = DomainDispatcherApplication.infer_service_region_host


def _infer_service_region_host(self: Any, environ: dict[str, Any], path: str) -> str | None:
    host = _STOCK_INFER(self, environ, path)
    if (
        host
        and host.startswith("api.sagemaker.")
        and environ.get("PATH_INFO", "").endswith("/invocations-response-stream")
    ):
        return "runtime." + host[len("api.") :]
    return host


def install() -> None:
    """Install the runtime patches (idempotent)."""
    resp = rt_responses.SageMakerRuntimeResponse
    if getattr(resp, "_novaflow_patched", False):
        return
    resp.invoke_endpoint = invoke_endpoint  # type: ignore[method-assign]
    resp.invoke_endpoint_with_response_stream = invoke_endpoint_with_response_stream  # type: ignore[attr-defined]
    rt_urls.url_paths[STREAM_PATH] = rt_urls.response.dispatch
    DomainDispatcherApplication.infer_service_region_host = _infer_service_region_host  # type: ignore[method-assign]
    resp._novaflow_patched = True  # type: ignore[attr-defined]
