"""A small Kubernetes API on loopback: the EKS API of the embedded AWS's HyperPod clusters.

It serves what novaflow's HyperPod backend calls, in Kubernetes' own shapes and errors: PyTorchJobs
(``kubeflow.org/v1``: create, get, list with a label selector, delete) with ``status.conditions`` that move as the
emulated job runs (Created, Running, Succeeded or Failed), ConfigMaps (create, get, delete), and
``SelfSubjectAccessReview`` (what the dry run asks). Every request must carry the bearer token ``aws eks get-token``
makes: a presigned STS ``GetCallerIdentity`` URL that signs the ``x-k8s-aws-id`` header; anything else is
``401 Unauthorized``, as EKS answers. A created job is handed to the emulator
(:mod:`novaflow.local.emulator.hyperpod_jobs`), which fulfils it as it fulfils training jobs.

One server per process serves every EKS cluster, each under its own path (``/clusters/<eks-name>``), which is the
endpoint moto's ``DescribeCluster`` returns for it.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from novaflow.local.aws.hyperpod_clusters import hyperpod_of
from novaflow.local.emulator import hyperpod_jobs

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - the token format, not a secret
TOKEN_VALIDITY = timedelta(minutes=15)
JOBS = ("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob")


@dataclass
class ClusterApi:
    """One EKS cluster's objects."""

    name: str
    aws_url: str
    account: str
    region: str
    jobs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    runs: dict[tuple[str, str], Any] = field(default_factory=dict)
    config_maps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


_CLUSTERS: dict[str, ClusterApi] = {}
_LOCK = threading.Lock()
_SERVER: list[ThreadingHTTPServer] = []


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_body(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Kubernetes ``Status`` object (what the API returns for every error)."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 400 else "Success",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def token_problem(header: str | None) -> str | None:
    """Why EKS would refuse this ``Authorization`` header (None when it would accept it)."""
    if not header or not header.startswith("Bearer "):
        return "no bearer token"
    token = header.removeprefix("Bearer ").strip()
    if not token.startswith(TOKEN_PREFIX):
        return "the token is not an EKS token (k8s-aws-v1.)"
    try:
        encoded = token.removeprefix(TOKEN_PREFIX)
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return "the token does not decode"
    query = {k.lower(): v[0] for k, v in parse_qs(urlparse(url).query).items()}
    if query.get("action") != "GetCallerIdentity":
        return "the token is not a presigned GetCallerIdentity request"
    if "x-k8s-aws-id" not in query.get("x-amz-signedheaders", "").split(";"):
        return "the token does not sign the x-k8s-aws-id header"
    try:
        signed = datetime.strptime(query.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "the token carries no signing date"
    if datetime.now(UTC) - signed > TOKEN_VALIDITY:
        return "the token has expired"
    return None


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class _Handler(BaseHTTPRequestHandler):
    server_version = "novaflow-kube-api"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        data: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
        return data

    def _route(self, method: str) -> None:
        parsed = urlparse(self.path)
        parts = [p for p in parsed.path.split("/") if p]
        if len(parts) < 2 or parts[0] != "clusters" or parts[1] not in _CLUSTERS:
            self._send(404, status_body(404, "NotFound", "the server could not find the requested resource"))
            return
        problem = token_problem(self.headers.get("Authorization"))
        if problem:
            self._send(401, status_body(401, "Unauthorized", f"Unauthorized: {problem}"))
            return
        cluster = _CLUSTERS[parts[1]]
        rest = parts[2:]
        query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        try:
            code, body = dispatch(cluster, method, rest, query, self._body() if method == "POST" else {})
        except (KeyError, TypeError, ValueError) as exc:
            code, body = 400, status_body(400, "BadRequest", f"the request is invalid: {exc}")
        self._send(code, body)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")


def _not_found(kind: str, name: str) -> tuple[int, dict[str, Any]]:
    group = "kubeflow.org" if kind == "pytorchjobs" else ""
    full = f"{kind}.{group}" if group else kind
    return 404, status_body(404, "NotFound", f'{full} "{name}" not found', {"name": name, "group": group, "kind": kind})


def _exists(kind: str, name: str) -> tuple[int, dict[str, Any]]:
    group = "kubeflow.org" if kind == "pytorchjobs" else ""
    full = f"{kind}.{group}" if group else kind
    return 409, status_body(
        409, "AlreadyExists", f'{full} "{name}" already exists', {"name": name, "group": group, "kind": kind}
    )


def _with_status(cluster: ClusterApi, key: tuple[str, str]) -> dict[str, Any]:
    obj = cluster.jobs[key]
    return {**obj, "status": hyperpod_jobs.job_status(cluster.runs[key], obj["metadata"]["creationTimestamp"])}


def dispatch(
    cluster: ClusterApi, method: str, rest: list[str], query: dict[str, str], body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for one API call under ``/clusters/<name>``."""
    if rest == ["version"]:
        return 200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-eks-novaflow"}
    if rest[:3] == ["apis", "authorization.k8s.io", "v1"] and rest[3:] == ["selfsubjectaccessreviews"]:
        return 201, {**body, "status": {"allowed": True, "reason": "EKS access entry (embedded AWS)"}}
    if rest[:2] == ["api", "v1"] and len(rest) >= 5 and rest[2] == "namespaces" and rest[4] == "configmaps":
        return _config_maps(cluster, method, rest[3], rest[5] if len(rest) > 5 else None, body)
    if rest[:3] == ["apis", "kubeflow.org", "v1"] and len(rest) >= 6 and rest[3] == "namespaces" and rest[5] == JOBS[2]:
        return _jobs(cluster, method, rest[4], rest[6] if len(rest) > 6 else None, query, body)
    return 404, status_body(404, "NotFound", "the server could not find the requested resource")


def _config_maps(
    cluster: ClusterApi, method: str, namespace: str, name: str | None, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    with _LOCK:
        if method == "POST" and name is None:
            name = body["metadata"]["name"]
            if (namespace, name) in cluster.config_maps:
                return _exists("configmaps", name)
            obj = {**body, "metadata": {**body["metadata"], "namespace": namespace, "uid": str(uuid.uuid4())}}
            cluster.config_maps[(namespace, name)] = obj
            return 201, obj
        if name is None:
            return 405, status_body(405, "MethodNotAllowed", f"{method} is not supported here")
        if (namespace, name) not in cluster.config_maps:
            return _not_found("configmaps", name)
        if method == "DELETE":
            cluster.config_maps.pop((namespace, name))
            return 200, status_body(200, "", "", {"name": name, "kind": "configmaps"})
        return 200, cluster.config_maps[(namespace, name)]


def _jobs(
    cluster: ClusterApi, method: str, namespace: str, name: str | None, query: dict[str, str], body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    with _LOCK:
        if name is None and method == "GET":
            selector = query.get("labelSelector", "")
            items = [
                _with_status(cluster, key)
                for key, obj in sorted(cluster.jobs.items())
                if key[0] == namespace and _matches((obj.get("metadata") or {}).get("labels") or {}, selector)
            ]
            return 200, {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJobList", "items": items, "metadata": {}}
        if name is None and method == "POST":
            if body.get("kind") != JOBS[3]:
                return 400, status_body(400, "BadRequest", f"kind {body.get('kind')!r} is not {JOBS[3]}")
            name = body["metadata"]["name"]
            if (namespace, name) in cluster.jobs:
                return _exists(JOBS[2], name)
            metadata = {
                **body["metadata"],
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": _now(),
                "resourceVersion": "1",
            }
            obj = {**body, "metadata": metadata}
            cluster.jobs[(namespace, name)] = obj
            cluster.runs[(namespace, name)] = hyperpod_jobs.start(
                hyperpod_jobs.ClusterPlace(
                    cluster.aws_url, cluster.account, cluster.region, _log_group(cluster), namespace
                ),
                obj,
                cluster.config_maps,
            )
            return 201, _with_status(cluster, (namespace, name))
        if name is None:
            return 405, status_body(405, "MethodNotAllowed", f"{method} is not supported here")
        if (namespace, name) not in cluster.jobs:
            return _not_found(JOBS[2], name)
        if method == "DELETE":
            cluster.jobs.pop((namespace, name))
            hyperpod_jobs.stop(cluster.runs.pop((namespace, name)))
            return 200, status_body(200, "", "", {"name": name, "group": JOBS[0], "kind": JOBS[2]})
        return 200, _with_status(cluster, (namespace, name))


def _log_group(cluster: ClusterApi) -> str:
    """The log group of the HyperPod cluster this EKS cluster orchestrates (``/aws/sagemaker/Clusters/...``)."""
    found = hyperpod_of(cluster.account, cluster.region, cluster.name)
    if found is None:
        return f"/aws/sagemaker/Clusters/{cluster.name}/unknown"
    name, arn = found
    return f"/aws/sagemaker/Clusters/{name}/{arn.rsplit('/', 1)[-1]}"


def ensure_server() -> str:
    """The server's base URL (started on first use, in this process, on a free loopback port)."""
    with _LOCK:
        if not _SERVER:
            server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, name="novaflow-kube-api", daemon=True).start()
            _SERVER.append(server)
        host, port = str(_SERVER[0].server_address[0]), int(_SERVER[0].server_address[1])
    return f"http://{host}:{port}"


def register_cluster(name: str, aws_url: str, account: str, region: str) -> str:
    """Serve ``name``'s API; returns its endpoint (what EKS ``DescribeCluster`` shows)."""
    base = ensure_server()
    with _LOCK:
        _CLUSTERS[name] = ClusterApi(name, aws_url, account, region)
    return f"{base}/clusters/{name}"


def reset() -> None:
    """Forget every cluster and stop their jobs' workers (after ``/moto-api/reset``)."""
    with _LOCK:
        clusters = list(_CLUSTERS.values())
        _CLUSTERS.clear()
    for cluster in clusters:
        for run in cluster.runs.values():
            hyperpod_jobs.stop(run)
