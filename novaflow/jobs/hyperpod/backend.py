"""The HyperPod backend: describe / create / stop a Nova job on the cluster's EKS API, and tail its logs.

Same four verbs as the other platforms (:mod:`novaflow.jobs.backends`), so submit (describe-then-create by the
spec-hash name: a re-run attaches), wait and stop need no HyperPod branch. Stop deletes the job and every other
object of it - its ConfigMap, and for RFT the chart's services (hub, NATS, vLLM generation, prompter, ``rbs``,
Redis) - since Kubernetes has no "stopped" PyTorchJob and a service left behind keeps its nodes. For the
same reason the rollout services of an RFT job whose trainer has ended are deleted when describe first sees the end
(the trainer's PyTorchJob stays, with its status, for attach and the outputs). The
status comes from the PyTorchJob's conditions - the latest true one of Created, Running, Restarting, Succeeded,
Failed - which is the real status sagemaker v3 lacks for HyperPod. Logs are read from the cluster's log group
(``/aws/sagemaker/Clusters/<cluster>/<cluster-id>``), the events of the job's pods only. See docs/hyperpod.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from novaflow.aws import get_client, is_not_found, wrap_client_error
from novaflow.catalog import Platform
from novaflow.errors import ConfigError, JobError
from novaflow.jobs.backend_base import JobState
from novaflow.jobs.hyperpod import objects as kube_objects
from novaflow.jobs.hyperpod.cluster import HyperPodCluster, KubeConnection, describe_cluster
from novaflow.jobs.hyperpod.job import CONFIG_PREFIX, JOB_GROUP, JOB_KIND, JOB_PLURAL, JOB_VERSION
from novaflow.jobs.hyperpod.rft import VLLM_SUFFIX, is_rft_job, object_refs
from novaflow.jobs.logs import LogLine
from novaflow.jobs.records import map_status
from novaflow.recipes.hyperpod_derive import MANAGED_BY, MANAGED_BY_LABEL
from novaflow.settings import NovaflowSettings

log = logging.getLogger(__name__)
LOG_STREAM_PREFIX = "SagemakerHyperPodTrainingJob"
"""HyperPod writes the pods' lines to streams of this prefix in the cluster's log group (as the Forge SDK reads)."""


def job_status(obj: dict[str, Any]) -> tuple[str, str | None, int]:
    """(raw status, the latest condition's message, restarts) from a PyTorchJob's ``status.conditions``."""
    conditions = [c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("status") == "True"]
    restarts = sum(1 for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Restarting")
    if not conditions:
        return "Pending", None, restarts
    latest = max(enumerate(conditions), key=lambda ic: (str(ic[1].get("lastTransitionTime") or ""), ic[0]))[1]
    return str(latest.get("type")), latest.get("message"), restarts


def _created(obj: dict[str, Any]) -> datetime | None:
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    if not stamp:
        return None
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def kube_error(exc: Any, action: str, cluster: HyperPodCluster) -> JobError:
    """One line for what the EKS API refused, with the fix for the refusals a user meets."""
    status = getattr(exc, "status", None)
    if status in (401, 403):
        return JobError(
            f"{action}: the EKS API of HyperPod cluster {cluster.name} refused the caller ({status}): add an EKS "
            f"access entry for your IAM principal on {cluster.eks_cluster_name} with a policy that may manage the "
            "job's objects in the namespace (`novaflow jobs submit --dry-run` prints the aws eks commands; "
            "docs/hyperpod.md#access)."
        )
    reason = getattr(exc, "reason", "") or ""
    return JobError(f"{action} on HyperPod cluster {cluster.name} failed: {status} {reason}".rstrip())


class HyperPodBackend:
    """One cluster and namespace; the Kubernetes connection is opened on first use."""

    platform = Platform.SMHP
    create_operation = ""
    """No botocore operation: the request is the chart's job object (checked by the fidelity test)."""

    def __init__(
        self,
        settings: NovaflowSettings,
        cluster: str | None = None,
        namespace: str | None = None,
        client: BaseClient | None = None,
    ) -> None:
        self.settings = settings
        name = cluster or self.settings.hyperpod_cluster
        if not name:
            raise ConfigError(
                "No HyperPod cluster named: pass --cluster NAME (a flow stage's cluster) or set "
                "NOVAFLOW_HYPERPOD_CLUSTER."
            )
        self.cluster_name = name
        self.namespace = namespace or self.settings.hyperpod_namespace
        self._client = client or get_client("sagemaker", self.settings)
        self._cluster: HyperPodCluster | None = None
        self._kube: KubeConnection | None = None
        self._released: set[str] = set()
        """Finished RFT jobs whose rollout services this backend has deleted."""

    @property
    def client(self) -> BaseClient:
        return self._client

    @property
    def cluster(self) -> HyperPodCluster:
        if self._cluster is None:
            self._cluster = describe_cluster(self.cluster_name, self.settings)
        return self._cluster

    def _api_client(self) -> Any:
        if self._kube is None:
            self._kube = KubeConnection(self.cluster, self.settings)
        return self._kube.api_client()

    def _api(self) -> tuple[Any, Any]:
        from kubernetes import client as k8s

        api = self._api_client()
        return k8s.CustomObjectsApi(api), k8s.CoreV1Api(api)

    def describe(self, name: str) -> JobState | None:
        from kubernetes.client.exceptions import ApiException

        jobs, _ = self._api()
        try:
            obj = jobs.get_namespaced_custom_object(JOB_GROUP, JOB_VERSION, self.namespace, JOB_PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise kube_error(exc, f"Describing job {name}", self.cluster) from None
        raw, message, restarts = job_status(obj)
        secondary = raw + (f" after {restarts} restart{'s' if restarts != 1 else ''}" if restarts else "")
        if map_status(raw).terminal and is_rft_job(obj) and name not in self._released:
            self._release(name)
        return JobState(
            name=name,
            status=map_status(raw),
            raw_status=raw,
            failure_reason=message if raw == "Failed" else None,
            secondary_status=secondary,
            arn=f"{self.cluster.arn}/{self.namespace}/{name}",
            created=_created(obj),
            raw=obj,
        )

    def create(self, request: dict[str, Any]) -> str | None:
        """Create the job's objects in order (the PyTorchJob last). An object that exists already is kept - a
        crashed earlier attempt left it - except the PyTorchJob: its ``409`` raises ``ClientError``
        ``ConflictException`` (submit then attaches to it, as on the other platforms)."""
        from kubernetes.client.exceptions import ApiException

        api = self._api_client()
        objects: list[dict[str, Any]] = request["objects"]
        name = next(o for o in objects if o["kind"] == JOB_KIND)["metadata"]["name"]
        for obj in objects:
            try:
                kube_objects.create(api, self.namespace, obj)
            except ApiException as exc:
                if exc.status == 409 and obj["kind"] == JOB_KIND:
                    raise ClientError(
                        {"Error": {"Code": "ConflictException", "Message": f"pytorchjobs {name} already exists"}},
                        "CreateNamespacedCustomObject",
                    ) from None
                if exc.status != 409:
                    what = f"{obj['kind']} {obj['metadata']['name']}"
                    raise kube_error(exc, f"Creating {what} of job {name}", self.cluster) from None
        return f"{self.cluster.arn}/{self.namespace}/{name}"

    def stop(self, name: str) -> None:
        """Delete the job and every other object a Nova chart may have created for it (the RFT services too):
        nothing of the job is left running. Absent objects are already stopped."""

        refs = [(f"{JOB_GROUP}/{JOB_VERSION}", JOB_KIND, name), ("v1", "ConfigMap", CONFIG_PREFIX + name)]
        self._delete(name, refs + [ref for ref in object_refs(name) if ref not in refs])

    def _release(self, name: str) -> None:
        """Delete a finished RFT job's rollout services (all but its PyTorchJob). The vLLM StatefulSet goes last,
        so when it is absent the rest is gone too, and a later describe costs one read."""
        from kubernetes.client.exceptions import ApiException

        sentinel = ("apps/v1", "StatefulSet", name + VLLM_SUFFIX)
        try:
            kube_objects.call(
                self._api_client(), "GET", kube_objects.path_of(*sentinel[:2], self.namespace, sentinel[2])
            )
        except ApiException as exc:
            if exc.status != 404:
                raise kube_error(exc, f"Reading the generation service of job {name}", self.cluster) from None
            self._released.add(name)
            return
        rest = [ref for ref in object_refs(name) if ref[1] != JOB_KIND and ref != sentinel]
        self._delete(name, [*rest, sentinel])
        self._released.add(name)

    def _delete(self, name: str, refs: list[tuple[str, str, str]]) -> None:
        """Delete each (apiVersion, kind, name) of job ``name``; absent ones are gone already."""
        from kubernetes.client.exceptions import ApiException

        api = self._api_client()
        for api_version, kind, object_name in refs:
            try:
                kube_objects.delete(api, self.namespace, api_version, kind, object_name)
            except ApiException as exc:
                if exc.status != 404:
                    raise kube_error(exc, f"Deleting {kind} {object_name} of job {name}", self.cluster) from None

    def own_jobs(self) -> list[dict[str, Any]]:
        """Every job novaflow created in the namespace (its ``managed-by`` label), any status."""
        from kubernetes.client.exceptions import ApiException

        jobs, _ = self._api()
        try:
            listing = jobs.list_namespaced_custom_object(
                JOB_GROUP, JOB_VERSION, self.namespace, JOB_PLURAL, label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}"
            )
        except ApiException as exc:
            raise kube_error(exc, "Listing novaflow's jobs", self.cluster) from None
        return list(listing.get("items") or [])

    def rollout_nodes(self) -> dict[str, int]:
        """RFT job name -> its vLLM generation replicas, from novaflow's ``<job>-vllm`` StatefulSets (what an RFT
        job holds beside its PyTorchJob's nodes)."""
        from kubernetes.client.exceptions import ApiException

        path = kube_objects.path_of("apps/v1", "StatefulSet", self.namespace)
        try:
            listing = kube_objects.call(
                self._api_client(), "GET", path, query=[("labelSelector", f"{MANAGED_BY_LABEL}={MANAGED_BY}")]
            )
        except ApiException as exc:
            raise kube_error(exc, "Listing novaflow's RFT generation services", self.cluster) from None
        return {
            str(item["metadata"]["name"]).removesuffix(VLLM_SUFFIX): int((item.get("spec") or {}).get("replicas") or 0)
            for item in listing.get("items") or []
            if str(item["metadata"]["name"]).endswith(VLLM_SUFFIX)
        }

    def log_tailer(self, name: str) -> HyperPodLogTailer:
        return HyperPodLogTailer(name, self.cluster.log_group, self.settings)


@dataclass
class HyperPodLogTailer:
    """New lines of one job from the cluster's log group: ``FilterLogEvents`` on HyperPod's training-job streams
    with the job name as the filter term, each event once."""

    job_name: str
    log_group: str
    settings: NovaflowSettings
    client: BaseClient | None = None
    seen: set[str] = field(default_factory=set)
    start_time: int = 0

    def __post_init__(self) -> None:
        self.client = self.client or get_client("logs", self.settings)

    def poll(self) -> list[LogLine]:
        out: list[LogLine] = []
        kwargs: dict[str, Any] = {
            "logGroupName": self.log_group,
            "logStreamNamePrefix": LOG_STREAM_PREFIX,
            "filterPattern": f'"{self.job_name}"',
            "startTime": self.start_time,
        }
        try:
            while True:
                page = self.client.filter_log_events(**kwargs)  # type: ignore[union-attr]
                for event in page.get("events", []):
                    key = str(
                        event.get("eventId")
                        or (event.get("logStreamName"), event.get("timestamp"), event.get("message"))
                    )
                    if key in self.seen:
                        continue
                    self.seen.add(key)
                    stream, text = _split_pod(str(event.get("message", "")), str(event.get("logStreamName", "")))
                    out.append(LogLine(stream, int(event.get("timestamp", 0)), text))
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        except ClientError as exc:
            if is_not_found(exc):
                return out
            raise wrap_client_error(exc, f"Reading the logs of HyperPod job {self.job_name}") from exc
        if out:
            self.start_time = max(line.timestamp for line in out)
        return sorted(out, key=lambda line: line.timestamp)


def _split_pod(message: str, stream: str) -> tuple[str, str]:
    """``[<pod>] <line>`` -> (pod, line): a pod's lines are told apart by the pod name they carry."""
    if message.startswith("[") and "] " in message:
        pod, _, text = message[1:].partition("] ")
        return pod, text.rstrip("\n")
    return stream, message.rstrip("\n")
