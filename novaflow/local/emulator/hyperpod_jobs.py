"""Fulfil a Nova PyTorchJob on an emulated HyperPod cluster, as training jobs are fulfilled.

The job object the Kubernetes API accepted says everything: its recipe is the ConfigMap mounted at ``/config``
(``config.yaml``), the data and output paths are in the recipe's ``run`` block, the node count is one ``Master``
plus the ``Worker`` replicas. The same worker and stand-in models as for training jobs
(:mod:`novaflow.local.emulator.fulfilment`) do the work; what differs is where things land, in HyperPod's layout:

- outputs under ``<run.output_s3_path>/<job>/`` (``manifest.json`` and ``step_wise_training_metrics.csv`` as plain
  files, the evaluation results beside them);
- the checkpoint in the HyperPod escrow bucket (``customer-escrow-<account>-smhp-<id>``);
- log lines in the cluster's log group (``/aws/sagemaker/Clusters/<cluster>/<cluster-id>``), in streams named
  ``SagemakerHyperPodTrainingJob/<namespace>/<pod>``, each line carrying its pod's name.

``status.conditions`` follow the run: Created at once, Running when the worker starts, then Succeeded, or Failed
with the reason as the condition's message. See docs/hyperpod.md.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

from novaflow.local.emulator import aws_io as storage
from novaflow.local.emulator import jobstate
from novaflow.local.emulator.fulfilment import _work
from novaflow.local.emulator.job_context import JobContext
from novaflow.local.emulator.joblog import JobLog

LOG_STREAM_PREFIX = "SagemakerHyperPodTrainingJob"
RUNNING_STAGES = ("Downloading", "Training", "Uploading", "Completed")


@dataclass(frozen=True)
class ClusterPlace:
    """Where a job runs: the embedded AWS's URL, account, region, the cluster's log group and the namespace."""

    aws_url: str
    account: str
    region: str
    log_group: str
    namespace: str


def escrow_bucket(account: str) -> str:
    """The emulated HyperPod escrow bucket (training jobs use ``...-smtj-...``)."""
    return f"customer-escrow-{account}-smhp-local"


class HyperPodJobLog(JobLog):
    """The pod's lines in the cluster's log group; each line starts with ``[<pod>]``."""

    def __init__(self, place: ClusterPlace, pod: str) -> None:
        stream = f"{LOG_STREAM_PREFIX}/{place.namespace}/{pod}"
        super().__init__(place.aws_url, pod, place.region, group=place.log_group, stream=stream, prefix=f"[{pod}] ")
        self.escrow = (storage.escrow_bucket(place.account), escrow_bucket(place.account))

    def line(self, message: str, level: str = "INFO") -> None:
        """The trainers name the training-job escrow bucket; on HyperPod the checkpoint lands in its own."""
        super().line(message.replace(*self.escrow), level)


class HyperPodJobContext(JobContext):
    """A job context whose recipe came from the ConfigMap and whose outputs land in HyperPod's layout."""

    recipe: dict[str, Any] | None = None

    def read_recipe(self) -> dict[str, Any]:
        assert self.recipe is not None
        return self.recipe

    def write_outputs(self, files: Any, directories: tuple[str, ...] = ()) -> str:
        root = f"{self.output_path.rstrip('/')}/{self.name}"
        for path, body in files.items():
            storage.write_bytes(self.url, f"{root}/{path}", body)
        return root

    def write_training_output(self, checkpoint_uri: str, metrics_csv: str) -> str:
        """The checkpoint moves to the HyperPod escrow bucket; the manifest points there."""
        bucket = escrow_bucket(self.account)
        s3 = storage.client("s3", self.url, self.region)
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
        source_bucket = checkpoint_uri[5:].split("/", 1)[0]
        target = f"s3://{bucket}/{self.name}/outputs/checkpoints"
        prefix = checkpoint_uri[5 + len(source_bucket) + 1 :].rstrip("/") + "/"
        for key in storage.list_keys(self.url, checkpoint_uri.rstrip("/") + "/"):
            s3.copy_object(
                Bucket=bucket,
                Key=f"{self.name}/outputs/checkpoints/{key[len(prefix) :]}",
                CopySource={"Bucket": source_bucket, "Key": key},
            )
        return super().write_training_output(target, metrics_csv)


def _pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    return spec


def _config_map_name(job: dict[str, Any]) -> str | None:
    for volume in _pod_spec(job).get("volumes") or []:
        if volume.get("name") == "training-config":
            return str((volume.get("configMap") or {}).get("name"))
    return None


def start(place: ClusterPlace, job: dict[str, Any], config_maps: dict[tuple[str, str], dict[str, Any]]) -> Any:
    """Start fulfilling ``job`` in a background thread; returns its :class:`~novaflow.local.jobstate.JobRun`."""
    name = job["metadata"]["name"]
    run = jobstate.JobRun(name=name)
    cm_name = _config_map_name(job)
    config = config_maps.get((place.namespace, cm_name or ""))
    text = ((config or {}).get("data") or {}).get("config.yaml")
    if text is None:
        run.fail(f'MountVolume.SetUp failed for volume "training-config": configmap "{cm_name}" not found')
        run.exited()
        return run
    recipe = yaml.safe_load(text)
    run_block = recipe.get("run") or {}
    channels = {
        channel: {"ChannelName": channel, "DataSource": {"S3DataSource": {"S3Uri": uri}}}
        for channel, uri in (
            ("train", run_block.get("data_s3_path")),
            ("validation", run_block.get("validation_data_s3_path")),
        )
        if uri
    }
    image = str((_pod_spec(job).get("containers") or [{}])[0].get("image", ""))
    ctx = HyperPodJobContext(
        name=name,
        url=place.aws_url,
        account=place.account,
        region=place.region,
        hyperparameters={},
        channels=channels,
        output_path=str(run_block.get("output_s3_path") or ""),
        run=run,
        compressed=False,
        image=image,
    )
    ctx.recipe = recipe
    ctx.log = HyperPodJobLog(place, f"{name}-master-0")
    threading.Thread(target=_work, args=(ctx,), name=f"nova-hyperpod-{name}", daemon=True).start()
    return run


def stop(run: Any) -> None:
    """The job was deleted: its pods stop at the next step boundary."""
    with run.lock:
        run.stop_requested = True
    run.released.set()


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def job_status(run: Any, created: str) -> dict[str, Any]:
    """``status`` of the PyTorchJob as the training operator writes it, from the run's progress."""
    status, _ = run.status()
    name = run.name
    conditions: list[dict[str, Any]] = [
        _condition("Created", "True", "PyTorchJobCreated", f"PyTorchJob {name} is created.", created)
    ]
    running_at = next((_when(t) for stage, t in run.history if stage in RUNNING_STAGES), None)
    terminal = status in ("Completed", "Failed")
    if running_at is not None or terminal:
        at = running_at or created
        conditions.append(
            _condition(
                "Running", "False" if terminal else "True", "PyTorchJobRunning", f"PyTorchJob {name} is running.", at
            )
        )
    ended = _when(run.end_time) if run.end_time else created
    if status == "Completed":
        message = f"PyTorchJob {name} is successfully completed."
        conditions.append(_condition("Succeeded", "True", "PyTorchJobSucceeded", message, ended))
    elif status == "Failed":
        conditions.append(_condition("Failed", "True", "PyTorchJobFailed", str(run.failure_reason), ended))
    out: dict[str, Any] = {"conditions": conditions, "startTime": created}
    if terminal:
        out["completionTime"] = ended
    return out


def _condition(kind: str, status: str, reason: str, message: str, at: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": at,
        "lastTransitionTime": at,
    }
