from __future__ import annotations

import json

from typer.testing import CliRunner

from novaflow.aws import get_client
from novaflow.cli import app
from novaflow.errors import ConfigError
from novaflow.settings import load_settings
from reward_lambda.labels import extract_label

runner = CliRunner()
SYSTEM = "Classify the Stack Overflow question. Answer with exactly one label: HQ, LQ_EDIT or LQ_CLOSE."
SM = ["--instance-type", "ml.g6.48xlarge", "--context-length", "8000", "--max-concurrency", "8"]


def test_create_status_invoke_stream_delete(checkpoint: str) -> None:
    created = runner.invoke(app, ["deploy", "create", "nova-cli", "--checkpoint", checkpoint, *SM])
    assert created.exit_code == 0, created.output
    assert created.stdout.strip() == "sagemaker nova-cli InService; invoke id: nova-cli"

    status = runner.invoke(app, ["deploy", "status", "nova-cli"])
    assert status.stdout.splitlines() == [
        "sagemaker nova-cli: InService",
        "arn: arn:aws:sagemaker:us-east-1:123456789012:endpoint/nova-cli",
    ]

    plain = runner.invoke(app, ["deploy", "invoke", "nova-cli", "Title: segfault in C", "--system", SYSTEM])
    assert plain.exit_code == 0 and extract_label(plain.stdout) is not None
    assert plain.stderr.startswith("latency: ")
    streamed = runner.invoke(
        app, ["deploy", "invoke", "nova-cli", "Title: segfault in C", "--system", SYSTEM, "--stream"]
    )
    assert streamed.exit_code == 0 and streamed.stdout == plain.stdout
    assert streamed.stderr.startswith("first token: ") and " ms; total: " in streamed.stderr

    dry = runner.invoke(app, ["deploy", "delete", "nova-cli", "--dry-run", "--target", "sagemaker"])
    assert dry.stdout.splitlines()[0] == "would remove sagemaker endpoint nova-cli"
    deleted = runner.invoke(app, ["deploy", "delete", "nova-cli", "--target", "sagemaker"])
    assert deleted.exit_code == 0
    assert [line.split(" ")[2] for line in deleted.stdout.splitlines()] == [
        "endpoint",
        "endpoint-config",
        "model",
        "role",
    ]
    again = runner.invoke(app, ["deploy", "delete", "nova-cli", "--target", "sagemaker"])
    assert again.stdout.strip() == "nothing of novaflow's found"


def test_bad_tier_is_refused_before_aws(checkpoint: str) -> None:
    result = runner.invoke(
        app,
        [
            "deploy",
            "create",
            "nova-cli",
            "--checkpoint",
            checkpoint,
            "--instance-type",
            "ml.g6.48xlarge",
            "--context-length",
            "8000",
            "--max-concurrency",
            "9",
        ],
    )
    assert isinstance(result.exception, ConfigError)
    assert "allowed tiers: (CONTEXT_LENGTH<=8000, MAX_CONCURRENCY<=8)" in str(result.exception)
    status = runner.invoke(app, ["deploy", "status", "nova-cli"])
    assert "does not exist" in str(status.exception)


def test_delete_needs_a_name_or_all() -> None:
    result = runner.invoke(app, ["deploy", "delete"])
    assert result.exit_code == 2 and "give a deployment name or --all" in result.output


def test_components_add_list_invoke_remove(checkpoint: str) -> None:
    common = ["--instance-type", "ml.g6.48xlarge", "--instance-count", "2", "--context-length", "8000"]
    for name in ("cli-a", "cli-b"):
        added = runner.invoke(
            app, ["deploy", "components", "add", "nova-cli-ic", name, "--checkpoint", checkpoint, *common]
        )
        assert added.exit_code == 0, added.output
        assert added.stdout.startswith(f"nova-cli-ic/{name}: InService (1 copy(ies) of {name}-")
    listed = runner.invoke(app, ["deploy", "components", "list", "nova-cli-ic"])
    assert [line.split(":")[0] for line in listed.stdout.splitlines()] == ["nova-cli-ic/cli-a", "nova-cli-ic/cli-b"]
    asked = runner.invoke(
        app,
        [
            "deploy",
            "invoke",
            "nova-cli-ic/cli-b",
            "Title: segfault in C",
            "--system",
            SYSTEM,
            "--target",
            "sagemaker_ic",
        ],
    )
    assert asked.exit_code == 0 and extract_label(asked.stdout) is not None
    removed = runner.invoke(app, ["deploy", "components", "remove", "nova-cli-ic", "cli-a"])
    assert removed.stdout.splitlines()[0] == "removed sagemaker inference-component cli-a"
    listed = runner.invoke(app, ["deploy", "components", "list", "nova-cli-ic"])
    assert [line.split(":")[0] for line in listed.stdout.splitlines()] == ["nova-cli-ic/cli-b"]
    deleted = runner.invoke(app, ["deploy", "delete", "nova-cli-ic", "--target", "sagemaker_ic"])
    assert deleted.exit_code == 0 and deleted.stdout.splitlines()[:2] == [
        "removed sagemaker inference-component cli-b",
        "removed sagemaker endpoint nova-cli-ic",
    ]


def test_components_dry_run_prints_the_four_requests_and_refuses_a_tier_in_one_line() -> None:
    args = ["deploy", "create", "ab", "--target", "sagemaker_ic", "--checkpoint", "s3://escrow/job/outputs/checkpoints"]
    args += ["--instance-type", "ml.g6.48xlarge", "--max-concurrency", "8", "--dry-run"]
    shown = runner.invoke(app, [*args, "--context-length", "8000"])
    assert shown.exit_code == 0, shown.output
    requests = json.loads(shown.stdout)
    assert list(requests) == ["CreateEndpointConfig", "CreateEndpoint", "CreateModel", "CreateInferenceComponent"]
    assert (
        requests["CreateInferenceComponent"]["Specification"]["ComputeResourceRequirements"][
            "NumberOfAcceleratorDevicesRequired"
        ]
        == 8
    )
    assert "ModelName" not in requests["CreateEndpointConfig"]["ProductionVariants"][0]
    refused = runner.invoke(app, [*args, "--context-length", "9000"])
    assert refused.exit_code != 0 and "is not supported for nova-lite-2 on ml.g6.48xlarge" in str(refused.exception)
    assert get_client("sagemaker", settings=load_settings()).list_endpoints()["Endpoints"] == []
