"""How the emulator reaches the embedded AWS: ordinary boto3 clients against the server's own URL.

The emulator runs inside the moto server process, but it reads and writes S3, CloudWatch Logs and Lambda through
the public API, as the real Nova containers do, so what it writes is exactly what any client would see (and a
Lambda invocation really goes through the reward engineer's execution patch). The URL comes from the ``Host``
header of the request that started the work, which also works for ``novaflow local up`` in another process.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from novaflow.aws import get_client, split_s3_uri
from novaflow.local.models.classifier import LM_FORMAT, CorpusModel, LinearPolicy
from novaflow.local.models.generative import FORMAT as GENERATIVE_FORMAT
from novaflow.local.models.generative import GenerativePolicy
from novaflow.settings import load_settings

ACCOUNT = "123456789012"
StandIn = LinearPolicy | GenerativePolicy
"""A fine-tuned stand-in: the label classifier or the generative model (both answer prompts and checkpoint)."""
_POLICIES: dict[str, StandIn | CorpusModel] = {}
_LOCK = threading.Lock()


def client(service: str, url: str, region: str = "us-east-1") -> Any:
    # The emulator's own calls must not be throttled into failure by an injected throttle meant for the caller.
    return get_client(service, load_settings(endpoint_url=url, region=region, max_attempts=10))


def escrow_bucket(account: str = ACCOUNT) -> str:
    """The emulated escrow bucket where SMTJ checkpoints live: ``customer-escrow-<acct>-smtj-<id>``
    (docs/training-jobs.md#output-layout)."""
    return f"customer-escrow-{account}-smtj-local"


def read_bytes(url: str, uri: str) -> bytes:
    bucket, key = split_s3_uri(uri)
    return client("s3", url).get_object(Bucket=bucket, Key=key)["Body"].read()


def write_bytes(url: str, uri: str, body: bytes) -> None:
    bucket, key = split_s3_uri(uri)
    client("s3", url).put_object(Bucket=bucket, Key=key, Body=body)


def list_keys(url: str, prefix_uri: str) -> list[str]:
    bucket, prefix = split_s3_uri(prefix_uri)
    s3 = client("s3", url)
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def ensure_bucket(url: str, bucket: str) -> None:
    s3 = client("s3", url)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)


def save_policy(url: str, checkpoint_uri: str, policy: StandIn | CorpusModel) -> None:
    bucket, _ = split_s3_uri(checkpoint_uri)
    ensure_bucket(url, bucket)
    for name, body in policy.to_files().items():
        write_bytes(url, checkpoint_uri.rstrip("/") + "/" + name, body)


def load_model(url: str, checkpoint_uri: str) -> StandIn | CorpusModel:
    """The trained stand-in stored at ``checkpoint_uri`` (cached: checkpoints are written once)."""
    root = checkpoint_uri.rstrip("/")
    with _LOCK:
        cached = _POLICIES.get(root)
    if cached is not None:
        return cached
    meta = read_bytes(url, root + "/model.json")
    model: StandIn | CorpusModel
    found = json.loads(meta).get("format")
    if found == GENERATIVE_FORMAT:
        names = ["model.npz", "pairs.jsonl.gz"]
        if json.loads(meta).get("classifier"):
            names += ["classifier.npz", "classifier.json"]
        files = {name: read_bytes(url, f"{root}/{name}") for name in names}
        model = GenerativePolicy.from_files({"model.json": meta, **files})
    elif found == LM_FORMAT:
        model = CorpusModel.from_files(read_bytes(url, root + "/model.npz"), meta)
    else:
        model = LinearPolicy.from_files(read_bytes(url, root + "/model.npz"), meta)
    with _LOCK:
        _POLICIES[root] = model
    return model


def load_policy(url: str, checkpoint_uri: str) -> StandIn | None:
    """The fine-tuned model at ``checkpoint_uri``; None for a CPT checkpoint, which learnt no task (training
    from it starts the task from scratch, as from the base model)."""
    model = load_model(url, checkpoint_uri)
    return None if isinstance(model, CorpusModel) else model


def clear_cache() -> None:
    with _LOCK:
        _POLICIES.clear()
