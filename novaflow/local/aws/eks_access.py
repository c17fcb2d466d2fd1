"""EKS access entries in the embedded AWS (moto 5.2.5 has none): the API calls and what the Kubernetes API asks.

Served in EKS's REST shapes and errors: ``CreateAccessEntry``, ``ListAccessEntries``, ``DescribeAccessEntry``,
``DeleteAccessEntry``, ``AssociateAccessPolicy``, ``ListAssociatedAccessPolicies`` (the entry ARN
``access-entry/<cluster>/<role|user>/<account>/<name>/<uuid>``, a role's user name
``arn:aws:sts::<account>:assumed-role/<role>/{{SessionName}}``, ``ResourceNotFoundException`` 404 and
``ResourceInUseException`` 409 with AWS's messages), and ``DisassociateAccessPolicy``. The loopback Kubernetes API
(:mod:`novaflow.local.aws.kube_api`) resolves a token's signer as EKS does - the presigned ``GetCallerIdentity``'s
access key, answered by moto's STS - and asks :func:`decide` whether that principal may act: no entry is ``401``, no
policy covering the namespace ``403``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.eks import urls as eks_urls
from moto.sts.models import sts_backends

from novaflow.jobs.hyperpod.access import AccessPolicy, allowed, principal_arn

_ENTRIES: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
"""(account, region, EKS cluster) -> principal ARN -> the entry, with its associated policies under ``_policies``."""
_LOCK = threading.Lock()
NOT_FOUND = (
    "The specified principalArn could not be found. You can view your available access entries with "
    "'list-access-entries'."
)
IN_USE = "The specified access entry resource is already in use on this cluster."


def _error(code: int, kind: str, message: str) -> tuple[int, dict[str, str], str]:
    return code, {"Content-Type": "application/json", "x-amzn-ErrorType": kind}, json.dumps({"message": message})


def _ok(body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    return 200, {"Content-Type": "application/json"}, json.dumps(body)


def _where(full_url: str, headers: Any) -> tuple[str, str, list[str], dict[str, list[str]]]:
    """(account, region, path parts after ``clusters``, query) of an EKS request."""
    parsed = urlparse(full_url)
    parts = [unquote(p) for p in parsed.path.split("/") if p]
    auth = str(headers.get("Authorization") or "")
    region = auth.split("Credential=", 1)[-1].split("/")[2] if "Credential=" in auth else "us-east-1"
    account = str(headers.get("x-moto-account-id") or os.environ.get("MOTO_ACCOUNT_ID") or DEFAULT_ACCOUNT_ID)
    return account, region, parts[1:], parse_qs(parsed.query)


def _entry(account: str, region: str, cluster: str, principal: str, body: dict[str, Any]) -> dict[str, Any]:
    kind, _, name = principal.split(":", 5)[-1].partition("/")
    now = time.time()
    username = (
        f"arn:aws:sts::{account}:assumed-role/{name.rsplit('/', 1)[-1]}/{{{{SessionName}}}}"
        if kind == "role"
        else principal
    )
    return {
        "clusterName": cluster,
        "principalArn": principal,
        "kubernetesGroups": list(body.get("kubernetesGroups") or []),
        "accessEntryArn": (
            f"arn:aws:eks:{region}:{account}:access-entry/{cluster}/{kind}/{account}/{name}/{uuid.uuid4()}"
        ),
        "createdAt": now,
        "modifiedAt": now,
        "tags": dict(body.get("tags") or {}),
        "username": body.get("username") or username,
        "type": body.get("type") or "STANDARD",
    }


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "_policies"}


def handle(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """Every access-entry call under ``/clusters/<name>/access-entries``."""
    account, region, parts, query = _where(full_url, headers)
    cluster, rest = parts[0], parts[2:]
    length = int(headers.get("Content-Length") or 0)
    raw = request.environ["wsgi.input"].read(length) if length and request.method == "POST" else b""
    body: dict[str, Any] = json.loads(raw or b"{}")
    from moto.eks.models import eks_backends

    if cluster not in eks_backends[account][region].clusters:
        return _error(404, "ResourceNotFoundException", f"No cluster found for name: {cluster}.")
    with _LOCK:
        entries = _ENTRIES.setdefault((account, region, cluster), {})
        if not rest and request.method == "POST":
            principal = str(body["principalArn"])
            if principal in entries:
                return _error(409, "ResourceInUseException", IN_USE)
            entries[principal] = {**_entry(account, region, cluster, principal, body), "_policies": []}
            return _ok({"accessEntry": _public(entries[principal])})
        if not rest:
            wanted = (query.get("associatedPolicyArn") or [""])[0]
            names = [
                p for p, e in entries.items() if not wanted or any(a["policyArn"] == wanted for a in e["_policies"])
            ]
            return _ok({"accessEntries": names})
        principal = "/".join(rest[: len(rest) if "access-policies" not in rest else rest.index("access-policies")])
        if principal not in entries:
            return _error(404, "ResourceNotFoundException", NOT_FOUND)
        entry = entries[principal]
        if "access-policies" in rest:
            policy = "/".join(rest[rest.index("access-policies") + 1 :])  # DisassociateAccessPolicy names it
            if request.method == "DELETE":
                entry["_policies"] = [a for a in entry["_policies"] if a["policyArn"] != policy]
                return _ok({})
            if request.method == "POST":
                now = time.time()
                association = {
                    "policyArn": str(body["policyArn"]),
                    "accessScope": body.get("accessScope") or {"type": "cluster"},
                    "associatedAt": now,
                    "modifiedAt": now,
                }
                others = [a for a in entry["_policies"] if a["policyArn"] != association["policyArn"]]
                entry["_policies"] = [*others, association]
                return _ok({"clusterName": cluster, "principalArn": principal, "associatedAccessPolicy": association})
            listed = {"clusterName": cluster, "principalArn": principal, "associatedAccessPolicies": entry["_policies"]}
            return _ok(listed)
        if request.method == "DELETE":
            entries.pop(principal)
            return _ok({})
        return _ok({"accessEntry": _public(entry)})


def caller_of(token_url: str, account: str) -> str:
    """The ARN STS answers for the presigned ``GetCallerIdentity`` URL (its access key's identity)."""
    query = {k.lower(): v[0] for k, v in parse_qs(urlparse(token_url).query).items()}
    access_key = query.get("x-amz-credential", "").split("/", 1)[0]
    _, arn, _ = sts_backends[account]["aws"].get_caller_identity(access_key, "us-east-1")
    return str(arn)


def decide(account: str, region: str, cluster: str, caller: str, verb: str, namespace: str) -> int:
    """200 when ``caller`` may ``verb`` in ``namespace``, 401 without an access entry, 403 without a policy."""
    with _LOCK:
        entry = (_ENTRIES.get((account, region, cluster)) or {}).get(principal_arn(caller))
        policies = [AccessPolicy.from_api(a) for a in (entry or {}).get("_policies") or []]
    if entry is None:
        return 401
    return 200 if allowed(policies, verb, namespace) else 403


def install() -> None:
    prefix = "{0}/clusters/(?P<name>[^/]+)/access-entries"
    eks_urls.url_paths[prefix + "$"] = handle
    eks_urls.url_paths[prefix + "/(?P<rest>.+)$"] = handle


def reset() -> None:
    with _LOCK:
        _ENTRIES.clear()
