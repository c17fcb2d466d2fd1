"""The model registry against the embedded AWS: versions with lineage, approvals, and `novaflow registry`."""

from __future__ import annotations

import json

import boto3
import pytest
from typer.testing import CliRunner

from novaflow.cli import app
from novaflow.errors import ConfigError, DeployError
from novaflow.registry.lineage import clean, metric_properties
from novaflow.registry.packages import (
    APPROVED,
    REJECTED,
    annotate,
    default_group,
    deployable_checkpoint,
    list_versions,
    register_checkpoint,
    set_approval,
)
from novaflow.settings import load_settings

runner = CliRunner()
GROUP = default_group("nova-lite-2", "case-study")
CKPT = "s3://customer-escrow-123456789012-smtj-local/nova-lite-2-sft-lora-1/outputs/checkpoints"


def _register(job: str = "nova-lite-2-sft-lora-1", **lineage: str) -> object:
    facts = {"stage": "sft", "data:train": "s3://novaflow-local/data/train.jsonl", **lineage}
    return register_checkpoint(
        GROUP, CKPT, model="amazon.nova-2-lite-v1", job_name=job, lineage=facts, settings=load_settings()
    )


def test_a_checkpoint_is_registered_once_per_job_with_its_lineage(aws) -> None:
    assert GROUP == "novaflow-case-study-nova-lite-2"
    first = _register()
    assert (first.group, first.version, first.status) == (GROUP, 1, "PendingManualApproval")
    assert first.checkpoint_uri == CKPT and first.base_model == "nova-textgeneration-lite-v2"
    assert first.lineage == {
        "job": "nova-lite-2-sft-lora-1",
        "model": "nova-lite-2",
        "stage": "sft",
        "data:train": "s3://novaflow-local/data/train.jsonl",
    }
    assert _register().arn == first.arn  # a re-run finds the version instead of adding one
    second = _register("nova-lite-2-rft-lora-2", stage="rft", source=first.arn)
    assert second.version == 2 and second.lineage["source"] == first.arn
    tags = boto3.client("sagemaker").list_tags(
        ResourceArn=boto3.client("sagemaker").describe_model_package_group(ModelPackageGroupName=GROUP)[
            "ModelPackageGroupArn"
        ]
    )["Tags"]
    assert {"Key": "novaflow:managed", "Value": "true"} in tags
    assert [v.version for v in list_versions(GROUP, settings=load_settings())] == [1, 2]


def test_metrics_and_approval_are_recorded_and_a_rejected_version_is_never_deployed(aws) -> None:
    version = _register()
    annotated = annotate(
        version.arn, metric_properties({"em": 0.862, "f1": 0.9}, stage="post-sft"), settings=load_settings()
    )
    assert annotated.metrics == {"em": 0.862, "f1": 0.9}
    assert annotated.lineage["stage"] == "sft" and annotated.lineage["evaluated-by"] == "post-sft"
    with pytest.raises(DeployError, match=r"is PendingManualApproval: approve it first \(novaflow registry approve"):
        deployable_checkpoint(version.arn, settings=load_settings())
    reason = "refused: the candidate is not better than the baseline; em: baseline 0.9, candidate 0.8"
    rejected = set_approval(version.arn, REJECTED, reason, settings=load_settings())
    assert (rejected.status, rejected.approval_description) == (REJECTED, reason)
    with pytest.raises(DeployError) as err:
        deployable_checkpoint(version.arn, settings=load_settings())
    assert str(err.value) == (
        f"Model package {version.arn} is Rejected: {reason}; a rejected version is never deployed."
    )
    approved = set_approval(version.arn, APPROVED, "approved by ana", settings=load_settings())
    assert deployable_checkpoint(version.arn, settings=load_settings()) == (approved, CKPT)
    assert approved.metrics == {"em": 0.862, "f1": 0.9}  # the approval kept the lineage


def test_registry_values_fit_the_service_pattern() -> None:
    assert clean('s3://b/k {"a": 1}, x') == "s3://b/k __a_: 1__ x"  # braces, quotes, commas are not allowed
    assert len(clean("x" * 300)) == 256
    with pytest.raises(ConfigError, match=r"is not a model package version ARN"):
        set_approval(
            "arn:aws:sagemaker:us-east-1:123456789012:model-package/g", APPROVED, "x", settings=load_settings()
        )


def test_the_registry_cli_lists_shows_approves_and_rejects(aws) -> None:
    version = _register()
    annotate(version.arn, metric_properties({"em": 0.5}), settings=load_settings())
    listed = runner.invoke(app, ["registry", "list", "--run-name", "case-study", "--model", "nova-lite-2"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[:5] == [
        f"model package group {GROUP}: 1 version(s)",
        "  v1  PendingManualApproval  stage sft      job nova-lite-2-sft-lora-1",
        "        data:train: s3://novaflow-local/data/train.jsonl",
        "        metrics: em 0.5000",
    ]
    rejected = runner.invoke(app, ["registry", "reject", version.arn, "--reason", "worse than the baseline"])
    assert rejected.output.strip() == f"{version.arn}: Rejected (worse than the baseline)"
    shown = json.loads(runner.invoke(app, ["registry", "show", version.arn]).output)
    assert shown["status"] == "Rejected" and shown["lineage"]["job"] == "nova-lite-2-sft-lora-1"
    assert runner.invoke(app, ["registry", "approve", version.arn, "--reason", "ok"]).exit_code == 0
    missing = runner.invoke(app, ["registry", "list", "--group", "novaflow-nothing"])
    assert missing.exit_code != 0
    assert "Model package group novaflow-nothing does not exist" in str(missing.exception or missing.output)
