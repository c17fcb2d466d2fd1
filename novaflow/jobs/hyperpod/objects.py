"""Create, read and delete any namespaced Kubernetes object a Nova chart renders, through one REST path.

The SFT chart renders a ConfigMap and a PyTorchJob; the RFT chart adds Secrets, Services, Deployments, StatefulSets
and batch Jobs. Rather than one typed API per kind, the backend calls the Kubernetes REST API the way
``kubectl``/helm do: ``/api/v1/namespaces/<ns>/<plural>`` for the core group and
``/apis/<group>/<version>/namespaces/<ns>/<plural>`` for the others, with the Kubernetes client's ``ApiClient`` (its
request serialization, bearer token, TLS and ``ApiException``). :data:`PLURALS` is every kind a Nova chart renders;
a chart release adding a kind fails :func:`path_of` loudly (and the RFT fidelity test) instead of being skipped.
"""

from __future__ import annotations

from typing import Any

from novaflow.errors import ConfigError

PLURALS = {
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "Job": "jobs",
    "PyTorchJob": "pytorchjobs",
}
"""Kind -> its resource name in the API path."""


def path_of(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    """The REST path of ``kind`` objects in ``namespace`` (of one object, with ``name``)."""
    if kind not in PLURALS:
        raise ConfigError(f"novaflow does not know how to create a {kind} ({api_version}) on HyperPod")
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{base}/namespaces/{namespace}/{PLURALS[kind]}"
    return f"{path}/{name}" if name else path


def call(api_client: Any, method: str, path: str, body: Any = None, query: list[tuple[str, str]] | None = None) -> Any:
    """One REST call with the client's bearer token; the parsed JSON answer (``ApiException`` on an error)."""
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    request = api_client.param_serialize(
        method=method,
        resource_path=path,
        query_params=query or [],
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(*request)
    response.read()
    return api_client.response_deserialize(response, {"2XX": "object"}).data


def create(api_client: Any, namespace: str, obj: dict[str, Any]) -> Any:
    return call(api_client, "POST", path_of(obj["apiVersion"], obj["kind"], namespace), body=obj)


def delete(api_client: Any, namespace: str, api_version: str, kind: str, name: str) -> Any:
    """Delete one object; its pods go with it (``propagationPolicy=Foreground``, as ``kubectl delete`` waits)."""
    return call(
        api_client,
        "DELETE",
        path_of(api_version, kind, namespace, name),
        query=[("propagationPolicy", "Foreground")],
    )
