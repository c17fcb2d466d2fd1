"""``reasoning_enabled`` follows the training data on Nova 2 SFT: on only when rows carry reasoning content.

The published recipe turns reasoning mode on by default and says to turn it off when the data has no
``reasoningContent``; training with it on over plain answers teaches the model to think where the data never
does. So a job whose spec does not set the key explicitly gets it from the data, and the dry run refuses a spec
that sets it against the data.
"""

from __future__ import annotations

from pathlib import Path

from botocore.exceptions import ClientError

from novaflow.aws import get_client, split_s3_uri
from novaflow.catalog import Platform
from novaflow.jobs.spec import JobSpec
from novaflow.settings import NovaflowSettings

MARKER = b'"reasoningContent"'
KEY = "reasoning_enabled"
CHUNK = 1 << 20


def follows_data(spec: JobSpec) -> bool:
    """Whether the job has a ``reasoning_enabled`` switch that should follow its data (Nova 2 SFT on SMTJ)."""
    return spec.platform is Platform.SMTJ and spec.nova.version == 2 and spec.method.value.startswith("sft")


def reasoning_in(uri: str, settings: NovaflowSettings) -> bool | None:
    """True when any row of the JSONL at ``uri`` (local path or s3://) carries reasoning content; None if unread."""
    if not uri.startswith("s3://"):
        path = Path(uri)
        if not path.is_file():
            return None
        with path.open("rb") as fh:
            return _scan(iter(lambda: fh.read(CHUNK), b""))
    bucket, key = split_s3_uri(uri)
    try:
        body = get_client("s3", settings).get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError:
        return None
    return _scan(body.iter_chunks(CHUNK))


def _scan(chunks: object) -> bool:
    tail = b""
    for chunk in chunks:  # type: ignore[attr-defined]
        if MARKER in tail + chunk:
            return True
        tail = chunk[-len(MARKER) :]
    return False


def follow_data_reasoning(spec: JobSpec, settings: NovaflowSettings) -> JobSpec:
    """``spec`` with ``reasoning_enabled`` set from its training data, unless the user set it (or it has none)."""
    if not follows_data(spec) or KEY in spec.overrides or not spec.train_uri:
        return spec
    found = reasoning_in(spec.train_uri, settings)
    if found is None:
        return spec
    return spec.model_copy(update={"overrides": {**spec.overrides, KEY: found}})


def reasoning_problem(enabled: object, lines: list[bytes], uri: str) -> tuple[str, str] | None:
    """(problem, fix) when the recipe's ``reasoning_enabled`` contradicts the rows read from ``uri``."""
    has = any(MARKER in line for line in lines)
    if enabled is True and not has:
        return (
            f"reasoning_enabled is true but no row of {uri} carries reasoningContent",
            "set reasoning_enabled=false (reasoning mode is for data with reasoning traces)",
        )
    if enabled is False and has:
        return (
            f"reasoning_enabled is false but rows of {uri} carry reasoningContent",
            "set reasoning_enabled=true, or drop the reasoning traces from the data",
        )
    return None
