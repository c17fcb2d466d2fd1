"""Processing-job fulfilment: run the job's container command on this machine, once per instance.

Stock moto records a CreateProcessingJob and reports it Completed at once without running anything. Here the job
is InProgress while, for every instance, its ``ProcessingInputs`` are downloaded from the embedded S3 into a
directory that stands for the container's ``/opt/ml`` (an input with the ``ShardedByS3Key`` distribution gives
instance ``i`` of ``N`` the objects ``i, i + N, ...`` in key order: each about 1/N of them, as SageMaker does), the
``AppSpecification`` command runs as a subprocess of this Python (``python`` in the entry point is this
interpreter; every ``/opt/ml`` path in the arguments points into that directory;
``/opt/ml/config/resourceconfig.json`` names the instance as SageMaker does), with the job's ``Environment`` and
the embedded AWS as its endpoint. When every instance exits 0 the ``ProcessingOutputConfig`` directories are
uploaded and the job is Completed; otherwise it is Failed with the last line the command printed as its
``FailureReason`` (docs/embedded-aws.md#processing-jobs). The instances run one after the other: on a laptop they
would only contend for the same cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from novaflow.aws import split_s3_uri
from novaflow.local.emulator.aws_io import client

CONTAINER_ROOT = "/opt/ml"
_TIMEOUT = 3600


def on_processing_job_created(job: Any, request: dict[str, Any], url: str, account: str, region: str) -> None:
    """Mark the job InProgress and run it on a background thread (the CreateProcessingJob call returns now)."""
    job.processing_job_status = "InProgress"
    job.processing_resources = request.get("ProcessingResources")
    job.environment = request.get("Environment") or None
    job.processing_end_time = None
    threading.Thread(
        target=_run, args=(job, request, url, region), name=f"nova-processing-{job.processing_job_name}", daemon=True
    ).start()


def _run(job: Any, request: dict[str, Any], url: str, region: str) -> None:
    from moto.core.utils import utcnow

    try:
        count = int((request.get("ProcessingResources") or {}).get("ClusterConfig", {}).get("InstanceCount", 1))
        with tempfile.TemporaryDirectory(prefix=f"novaflow-processing-{job.processing_job_name}-") as tmp:
            roots = [Path(tmp) / f"algo-{i + 1}" for i in range(count)]
            for i, root in enumerate(roots):
                _run_instance(request, root, i, count, url, region)
            for root in roots:
                _upload_outputs(request, root, url, region)
        job.processing_job_status = "Completed"
    except Exception as exc:
        job.failure_reason = str(exc)[:1024]
        job.processing_job_status = "Failed"
    job.processing_end_time = utcnow()
    job.last_modified_time = job.processing_end_time


def _local(path: str, root: Path) -> Path:
    if not path.startswith(CONTAINER_ROOT):
        raise ValueError(f"path {path} is outside {CONTAINER_ROOT}; the local stand-in maps only that tree")
    return root / path[len(CONTAINER_ROOT) :].lstrip("/")


def _run_instance(request: dict[str, Any], root: Path, index: int, count: int, url: str, region: str) -> None:
    s3 = client("s3", url, region)
    for item in request.get("ProcessingInputs") or []:
        spec = item.get("S3Input") or {}
        bucket, prefix = split_s3_uri(spec["S3Uri"])
        target = _local(spec["LocalPath"], root)
        target.mkdir(parents=True, exist_ok=True)
        keys = [
            obj["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        ]
        if spec.get("S3DataDistributionType") == "ShardedByS3Key":  # 1/N of the objects each, by key order
            keys = keys[index::count]
        for key in keys:
            rest = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
            (target / rest).parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target / rest))
    for output in (request.get("ProcessingOutputConfig") or {}).get("Outputs", []):
        _local(output["S3Output"]["LocalPath"], root).mkdir(parents=True, exist_ok=True)
    config = _local(f"{CONTAINER_ROOT}/config/resourceconfig.json", root)
    config.parent.mkdir(parents=True, exist_ok=True)
    hosts = [f"algo-{i + 1}" for i in range(count)]
    config.write_text(json.dumps({"current_host": hosts[index], "hosts": hosts}), encoding="utf-8")
    app = request["AppSpecification"]
    command = [
        sys.executable if part in ("python", "python3") else part for part in app.get("ContainerEntrypoint") or []
    ]
    arguments = [
        str(_local(a, root)) if a.startswith(CONTAINER_ROOT) else a for a in app.get("ContainerArguments") or []
    ]
    defaults = {"--input": f"{CONTAINER_ROOT}/processing/input", "--out": f"{CONTAINER_ROOT}/processing/output"}
    defaults["--resource-config"] = f"{CONTAINER_ROOT}/config/resourceconfig.json"
    for flag, path in defaults.items():  # the container's default paths, moved into this instance's tree
        if flag not in arguments:
            arguments += [flag, str(_local(path, root))]
    env = {
        **os.environ,
        **(request.get("Environment") or {}),
        "AWS_ENDPOINT_URL": url,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    }
    done = subprocess.run([*command, *arguments], env=env, capture_output=True, timeout=_TIMEOUT, check=False)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"AlgorithmError: exit code {done.returncode}: {lines[-1] if lines else 'no output'}")


def _upload_outputs(request: dict[str, Any], root: Path, url: str, region: str) -> None:
    s3 = client("s3", url, region)
    for output in (request.get("ProcessingOutputConfig") or {}).get("Outputs", []):
        spec = output["S3Output"]
        bucket, prefix = split_s3_uri(spec["S3Uri"].rstrip("/") + "/")
        local = _local(spec["LocalPath"], root)
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            s3.upload_file(str(path), bucket, prefix + path.relative_to(local).as_posix())
    shutil.rmtree(root, ignore_errors=True)
