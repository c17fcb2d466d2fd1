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
    assert metrics["Post-SFT"]["em"] > metrics["Baseline"]["em"]
    assert result["comparison"]
