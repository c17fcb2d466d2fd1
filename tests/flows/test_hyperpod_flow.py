"""The end-to-end flow with its SFT stage on a HyperPod cluster of the embedded AWS: the SFT job is a PyTorchJob
on the cluster, its checkpoint is evaluated on the same cluster (AWS evaluates SMHP checkpoints only there), and
the run reaches the comparison and the gate like the case study."""

from __future__ import annotations

from typing import Any

import pytest

from flows.end_to_end import end_to_end
from flows.params import JobParams
from novaflow.jobs.hyperpod.backend import HyperPodBackend
from novaflow.settings import load_settings
from tests.flows.helpers import small_params, training_jobs


@pytest.mark.slow
def test_end_to_end_with_sft_on_hyperpod_runs_to_the_comparison(aws: Any, tmp_path: Any) -> None:
    aws.add_hyperpod("nova:ml.p5.48xlarge=8")
    params = small_params(
        "e2e-hyperpod", tmp_path, skip=["rft", "deploy"], sft=JobParams(platform="HYPERPOD", cluster="nova")
    )
    state = end_to_end(params, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    on_cluster = {job["metadata"]["name"]: job for job in HyperPodBackend(load_settings(), "nova").own_jobs()}
    sft, post_sft = result["jobs"]["sft"], result["jobs"]["post-sft"]
    assert sorted(on_cluster) == sorted([sft, post_sft])  # the SFT job and the evaluation of its checkpoint
    assert all(job["status"]["conditions"][-1]["type"] == "Succeeded" for job in on_cluster.values())
    assert [j["TrainingJobName"] for j in training_jobs()] == [result["jobs"]["baseline"]]
    metrics = result["metrics"]
    assert metrics["post-sft"]["em"] > metrics["baseline"]["em"]
    assert result["comparison"]


@pytest.mark.slow
def test_a_single_stage_rft_run_on_hyperpod_finishes_and_leaves_nothing_running(aws: Any, tmp_path: Any) -> None:
    """RFT on HyperPod from the base model: the job is the hub's whole RFT chart, its reward Lambda is the run's own
    (deployed by the flow, called by the emulated trainer), its checkpoint is evaluated on the same cluster, and the
    run's clean-up leaves none of the chart's objects behind."""
    from novaflow.jobs.hyperpod import objects as kube_objects
    from novaflow.jobs.hyperpod.rft import object_refs

    aws.add_hyperpod("nova:ml.p5.48xlarge=8")
    params = small_params(
        "e2e-hyperpod-rft",
        tmp_path,
        stages=["rft"],
        skip=["deploy"],
        rft=JobParams(platform="HYPERPOD", cluster="nova", overrides={"global_batch_size": 16, "max_steps": 5}),
    )
    state = end_to_end(params, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    backend = HyperPodBackend(load_settings(), "nova")
    on_cluster = {job["metadata"]["name"]: job for job in backend.own_jobs()}
    rft, post_rft = result["jobs"]["rft"], result["jobs"]["post-rft"]
    assert sorted(on_cluster) == sorted([rft, post_rft])
    assert all(job["status"]["conditions"][-1]["type"] == "Succeeded" for job in on_cluster.values())
    assert "post-rft" in result["metrics"] and result["comparison"]
    api = backend._api_client()
    services = [ref for ref in object_refs(rft) if ref[1] != "PyTorchJob" and "config" not in ref[2]]
    left = [
        ref
        for ref in services
        if any(
            item["metadata"]["name"] == ref[2]
            for item in kube_objects.call(api, "GET", kube_objects.path_of(ref[0], ref[1], "kubeflow"))["items"]
        )
    ]
    assert left == []  # a finished RFT job's services are deleted with the run's clean-up
