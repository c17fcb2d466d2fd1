"""Reading the IAM policy documents in ``infra/iam`` the way the tests need: which IAM action an API call needs,
whether a policy's Allow statements cover an action (and resource), and every AWS call the code can make.

Only Allow statements, action and resource patterns are evaluated (``*``/``?`` wildcards); conditions narrow a
grant further and are checked separately.
"""

from __future__ import annotations

import ast
import json
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

import boto3
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "infra" / "iam"
EXAMPLE_BUCKET = "my-novaflow-bucket"
SERVICES = ("s3", "sagemaker", "sagemaker-runtime", "logs", "lambda", "iam", "sts", "bedrock", "bedrock-runtime", "eks")
# botocore service (or the service id its events use) -> IAM service prefix, where they differ.
IAM_PREFIX = {
    "sagemaker-runtime": "sagemaker",
    "bedrock-runtime": "bedrock",
    "cloudwatch-logs": "logs",
    "service-quotas": "servicequotas",
}
# API operations whose IAM action has another name (AWS Service Authorization Reference); [] = no permission.
ACTIONS = {
    ("s3", "HeadObject"): ["s3:GetObject"],
    ("s3", "HeadBucket"): ["s3:ListBucket"],
    ("s3", "ListObjectsV2"): ["s3:ListBucket"],
    ("s3", "ListBuckets"): ["s3:ListAllMyBuckets"],
    ("s3", "CreateMultipartUpload"): ["s3:PutObject"],
    ("s3", "UploadPart"): ["s3:PutObject"],
    ("s3", "CompleteMultipartUpload"): ["s3:PutObject"],
    ("s3", "CopyObject"): ["s3:GetObject", "s3:PutObject"],
    ("lambda", "Invoke"): ["lambda:InvokeFunction"],
    ("sagemaker-runtime", "InvokeEndpointWithResponseStream"): ["sagemaker:InvokeEndpoint"],
    ("bedrock-runtime", "Converse"): ["bedrock:InvokeModel"],
    ("bedrock-runtime", "ConverseStream"): ["bedrock:InvokeModelWithResponseStream"],
    ("sts", "GetCallerIdentity"): [],
}
# boto3's managed-transfer methods are not operations of the model: what they call.
TRANSFERS = {
    "upload_file": "PutObject",
    "upload_fileobj": "PutObject",
    "download_file": "GetObject",
    "download_fileobj": "GetObject",
}


def load_policy(name: str, **replace: str) -> dict[str, Any]:
    text = (POLICIES / name).read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    return json.loads(text)


def iam_actions(service: str, operation: str) -> list[str]:
    return ACTIONS.get((service, operation), [f"{IAM_PREFIX.get(service, service)}:{operation}"])


def allows(policy: dict[str, Any], action: str, resource: str | None = None) -> bool:
    """True when an Allow statement names ``action`` (and, when given, ``resource``)."""
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        actions = _as_list(statement["Action"])
        if not any(fnmatchcase(action.lower(), pattern.lower()) for pattern in actions):
            continue
        if resource is None:
            return True
        if any(fnmatchcase(resource, pattern) for pattern in _as_list(statement["Resource"])):
            return True
    return False


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


@cache
def _operations(service: str) -> dict[str, str]:
    model = boto3.Session(region_name="us-east-1")._session.get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


def calls_in_code(*packages: str) -> dict[tuple[str, str], set[str]]:
    """(service, operation) -> files, for every client method a module names (called or passed on) on a
    service it gets a client for with a literal ``get_client("<service>")``; also paginators and transfers."""
    found: dict[tuple[str, str], set[str]] = {}
    for path in sorted(p for package in packages for p in (ROOT / package).rglob("*.py")):
        if "local" in path.relative_to(ROOT).parts:  # the embedded AWS, not code that runs against AWS
            continue
        tree = ast.parse(path.read_text())
        services = {
            node.args[0].value
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == "get_client"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        }
        names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        names |= {
            node.args[0].value
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) in ("get_paginator", "get_waiter")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        }
        for service in services & set(SERVICES):
            operations = dict(_operations(service))
            if service == "s3":
                operations.update(TRANSFERS)
            for name in names & set(operations):
                found.setdefault((service, operations[name]), set()).add(str(path.relative_to(ROOT)))
    return found
