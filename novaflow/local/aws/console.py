"""The embedded AWS's job pages: what a local run's report links to instead of the AWS console.

A local run's jobs exist only in this server, so a link to the real SageMaker console would open someone's AWS
account (or a login page) and show nothing of the run. :func:`fake_aws_environment` sets ``NOVAFLOW_CONSOLE_URL`` to
``<server>/moto-api/ext/console``; a job link then opens ``.../sagemaker/jobs/<name>?region=...``, served here from
the same state ``DescribeTrainingJob`` answers from.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

from moto.core.models import DEFAULT_ACCOUNT_ID

CONSOLE_PATH = "/moto-api/ext/console"
JOBS_PATH = CONSOLE_PATH + "/sagemaker/jobs/"

_SHOWN = (
    "TrainingJobName",
    "TrainingJobStatus",
    "SecondaryStatus",
    "FailureReason",
    "CreationTime",
    "TrainingStartTime",
    "TrainingEndTime",
    "ResourceConfig",
    "OutputDataConfig",
    "ModelArtifacts",
    "OutputModelPackageArn",
)


def job_page(full_url: str) -> tuple[int, dict[str, str], str]:
    """The page of the training job named in ``full_url`` (404 naming it when the server has no such job)."""
    url = urlparse(full_url)
    name = url.path.rsplit("/", 1)[-1]
    region = (parse_qs(url.query).get("region") or ["us-east-1"])[0]
    headers = {"Content-Type": "text/html; charset=utf-8"}
    try:
        job = _describe(name, region)
    except Exception:  # moto raises its own ValidationException for an unknown job
        body = f"<h1>No training job {html.escape(name)}</h1><p>in {html.escape(region)} on this embedded AWS.</p>"
        return 404, headers, _page(f"No training job {name}", body)
    rows = "".join(
        f"<tr><th>{html.escape(key)}</th><td>{html.escape(_text(job[key]))}</td></tr>" for key in _SHOWN if key in job
    )
    body = (
        f"<h1>{html.escape(name)}</h1><p>Training job on the embedded AWS ({html.escape(region)}), as "
        f"DescribeTrainingJob answers it.</p><table>{rows}</table>"
        f"<details><summary>Full description</summary><pre>{html.escape(json.dumps(job, indent=2, default=str))}"
        "</pre></details>"
    )
    return 200, headers, _page(name, body)


def _describe(name: str, region: str) -> dict[str, Any]:
    from moto.sagemaker.models import sagemaker_backends

    described: dict[str, Any] = sagemaker_backends[DEFAULT_ACCOUNT_ID][region].describe_training_job(name)
    return described


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _page(title: str, body: str) -> str:
    style = "body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:1em}td{font-family:monospace}"
    head = f"<head><title>{html.escape(title)}</title><style>{style}</style></head>"
    return f"<!doctype html><html>{head}<body>{body}</body></html>"
