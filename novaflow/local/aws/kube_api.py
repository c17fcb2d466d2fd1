"""A small Kubernetes API on loopback: the EKS API of the embedded AWS's HyperPod clusters.

It serves what novaflow's HyperPod backend calls, in Kubernetes' own shapes and errors: every kind a Nova chart
renders (:data:`KINDS`: PyTorchJobs, ConfigMaps, Secrets, Services, Deployments, StatefulSets, batch Jobs - create,
get, list with a label selector, delete), PyTorchJobs with ``status.conditions`` that move as the emulated job runs
(Created, Running, Succeeded or Failed), and ``SelfSubjectAccessReview`` (what the dry run asks). Every request must
carry the bearer token ``aws eks get-token`` makes: a presigned STS ``GetCallerIdentity`` URL that signs the
``x-k8s-aws-id`` header; anything else is ``401 Unauthorized``, as EKS answers. The token's signer must have an
access entry on the cluster (``401`` otherwise) with an access policy covering the namespace (``403`` otherwise; see
:mod:`novaflow.local.aws.eks_access`). A created PyTorchJob is handed to the emulator
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

from novaflow.local.aws import eks_access
from novaflow.local.aws.hyperpod_clusters import hyperpod_of
from novaflow.local.emulator import hyperpod_jobs

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - the token format, not a secret
TOKEN_VALIDITY = timedelta(minutes=15)
JOBS = ("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob")
KINDS = {
    ("", "v1", "configmaps"): "ConfigMap",
    ("", "v1", "secrets"): "Secret",
    ("", "v1", "services"): "Service",
    ("apps", "v1", "deployments"): "Deployment",
    ("apps", "v1", "statefulsets"): "StatefulSet",
    ("batch", "v1", "jobs"): "Job",
    (JOBS[0], JOBS[1], JOBS[2]): JOBS[3],
}
"""(group, version, resource) -> kind: every kind the Nova charts render."""
VERBS = {"GET": "get", "POST": "create", "DELETE": "delete"}


@dataclass
class ClusterApi:
    """One EKS cluster's objects, by (resource, namespace, name)."""

    name: str
    aws_url: str
    account: str
    region: str
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    runs: dict[tuple[str, str], Any] = field(default_factory=dict)
    callers: dict[str, str] = field(default_factory=dict)
    """Token -> the ARN STS answered for it (EKS caches the authentication too)."""

    @property
    def jobs(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(ns, name): obj for (kind, ns, name), obj in self.objects.items() if kind == JOBS[2]}

    @property
    def config_maps(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(ns, name): obj for (kind, ns, name), obj in self.objects.items() if kind == "configmaps"}


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


def _token_url(header: str) -> str:
    encoded = header.removeprefix("Bearer ").strip().removeprefix(TOKEN_PREFIX)
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()


def _refusal(cluster: ClusterApi, caller: str, method: str, rest: list[str]) -> tuple[int, dict[str, Any]] | None:
    """EKS's answer to a caller it does not admit: ``401`` without an access entry, ``403`` without an access policy
    for the verb in the namespace (an access review is answered, not refused); None when the caller may go on."""
    namespace = rest[rest.index("namespaces") + 1] if "namespaces" in rest[:-1] else ""
    decision = eks_access.decide(cluster.account, cluster.region, cluster.name, caller, VERBS[method], namespace)
    if decision == 401:
        return 401, status_body(401, "Unauthorized", "Unauthorized")
    if decision == 200 or "selfsubjectaccessreviews" in rest:
        return None
    found = _resource(rest)
    group, resource = (found[0], found[2]) if found else ("", rest[-1] if rest else "")
    full = f"{resource}.{group}" if group else resource
    message = (
        f'{full} is forbidden: User "{caller}" cannot {VERBS[method]} resource "{resource}" in API group "{group}" '
        f'in the namespace "{namespace}"'
    )
    return 403, status_body(403, "Forbidden", message, {"group": group, "kind": resource})


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
        header = str(self.headers.get("Authorization"))
        if header not in cluster.callers:
            cluster.callers[header] = eks_access.caller_of(_token_url(header), cluster.account)
        caller = cluster.callers[header]
        refused = _refusal(cluster, caller, method, rest)
        if refused is not None:
            self._send(*refused)
            return
        try:
            body = self._body() if method == "POST" else {}
            if "selfsubjectaccessreviews" in rest:
                attributes = (body.get("spec") or {}).get("resourceAttributes") or {}
                verdict = eks_access.decide(
                    cluster.account,
                    cluster.region,
                    cluster.name,
                    caller,
                    str(attributes.get("verb") or "get"),
                    str(attributes.get("namespace") or ""),
                )
                code, body = 201, {**body, "status": {"allowed": verdict == 200}}
            else:
                code, body = dispatch(cluster, method, rest, query, body)
        except (KeyError, TypeError, ValueError) as exc:
            code, body = 400, status_body(400, "BadRequest", f"the request is invalid: {exc}")
        self._send(code, body)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")


def _not_found(group: str, kind: str, name: str) -> tuple[int, dict[str, Any]]:
    full = f"{kind}.{group}" if group else kind
    return 404, status_body(404, "NotFound", f'{full} "{name}" not found', {"name": name, "group": group, "kind": kind})


def _exists(group: str, kind: str, name: str) -> tuple[int, dict[str, Any]]:
    full = f"{kind}.{group}" if group else kind
    return 409, status_body(
        409, "AlreadyExists", f'{full} "{name}" already exists', {"name": name, "group": group, "kind": kind}
    )


def _with_status(cluster: ClusterApi, key: tuple[str, str, str]) -> dict[str, Any]:
    obj = cluster.objects[key]
    if key[0] != JOBS[2]:
        return obj
    run = cluster.runs[(key[1], key[2])]
    return {**obj, "status": hyperpod_jobs.job_status(run, obj["metadata"]["creationTimestamp"])}


def _resource(rest: list[str]) -> tuple[str, str, str, str, str | None] | None:
    """(group, version, resource, namespace, name) of a namespaced object path, or None."""
    if rest[:2] == ["api", "v1"]:
        group, version, tail = "", "v1", rest[2:]
    elif rest[:1] == ["apis"] and len(rest) >= 3:
        group, version, tail = rest[1], rest[2], rest[3:]
    else:
        return None
    if len(tail) not in (3, 4) or tail[0] != "namespaces" or (group, version, tail[2]) not in KINDS:
        return None
    return group, version, tail[2], tail[1], tail[3] if len(tail) == 4 else None


def dispatch(
    cluster: ClusterApi, method: str, rest: list[str], query: dict[str, str], body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for one API call under ``/clusters/<name>``, once the caller is authorized."""
    if rest == ["version"]:
        return 200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-eks-novaflow"}
    found = _resource(rest)
    if found is None:
        return 404, status_body(404, "NotFound", "the server could not find the requested resource")
    group, version, resource, namespace, name = found
    kind = KINDS[(group, version, resource)]
    with _LOCK:
        if name is None and method == "GET":
            selector = query.get("labelSelector", "")
            items = [
                _with_status(cluster, key)
                for key, obj in sorted(cluster.objects.items())
                if key[:2] == (resource, namespace)
                and _matches((obj.get("metadata") or {}).get("labels") or {}, selector)
            ]
            api_version = f"{group}/{version}" if group else version
            return 200, {"apiVersion": api_version, "kind": f"{kind}List", "items": items, "metadata": {}}
        if name is None and method == "POST":
            if body.get("kind") != kind:
                return 400, status_body(400, "BadRequest", f"kind {body.get('kind')!r} is not {kind}")
            name = str(body["metadata"]["name"])
            if (resource, namespace, name) in cluster.objects:
                return _exists(group, resource, name)
            metadata = {
                **body["metadata"],
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": _now(),
                "resourceVersion": "1",
            }
            cluster.objects[(resource, namespace, name)] = {**body, "metadata": metadata}
            if kind == JOBS[3]:
                cluster.runs[(namespace, name)] = hyperpod_jobs.start(
                    hyperpod_jobs.ClusterPlace(
                        cluster.aws_url, cluster.account, cluster.region, _log_group(cluster), namespace
                    ),
                    cluster.objects[(resource, namespace, name)],
                    cluster.config_maps,
                    cluster.objects,
                )
            return 201, _with_status(cluster, (resource, namespace, name))
        if name is None:
            return 405, status_body(405, "MethodNotAllowed", f"{method} is not supported here")
        if (resource, namespace, name) not in cluster.objects:
            return _not_found(group, resource, name)
        if method == "DELETE":
            cluster.objects.pop((resource, namespace, name))
            if kind == JOBS[3]:
                hyperpod_jobs.stop(cluster.runs.pop((namespace, name)))
            return 200, status_body(200, "", "", {"name": name, "group": group, "kind": resource})
        return 200, _with_status(cluster, (resource, namespace, name))


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
