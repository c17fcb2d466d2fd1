"""Dry runs that must stop a job the service would refuse, before anything is created or paid for."""

from __future__ import annotations

from novaflow.aws import get_client
from novaflow.errors import RecipeError
from novaflow.jobs.dryrun import dry_run
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import submit_training_job
from tests.aws.jobs.conftest import put_jsonl


def test_bedrock_refuses_validation_data_for_nova_2_with_the_reason(aws) -> None:
    put_jsonl("data/train.jsonl", 250)
    put_jsonl("data/validation.jsonl", 30)
    spec = JobSpec(
        platform="BEDROCK",
        model="nova-lite-2",
        method="sft_lora",
        train_uri="s3://novaflow-local/data/train.jsonl",
        validation_uri="s3://novaflow-local/data/validation.jsonl",
    )
    report = dry_run(spec, simulate_iam=False)
    refusal = [p for p in report.problems if p.field == "validation_uri"]
    assert [(p.message, p.fix) for p in refusal] == [
        (
            "Bedrock does not use validation data when fine-tuning Nova 2 (the Nova 2 SFT data guide: validation "
            "sets are not supported during SFT training)",
            "drop validation_uri",
        )
    ]
    assert report.request is None
    try:
        submit_training_job(spec)
    except RecipeError as exc:
        assert "drop validation_uri" in str(exc)
    else:
        raise AssertionError("submit created a Bedrock job the service refuses")
    assert get_client("bedrock").list_model_customization_jobs()["modelCustomizationJobSummaries"] == []
    nova1 = spec.model_copy(update={"model": "nova-lite"})
    put_jsonl("data/train.jsonl", 100)
    assert [p for p in dry_run(nova1, simulate_iam=False).problems if p.field == "validation_uri"] == []


def test_bedrock_refuses_a_sagemaker_checkpoint_as_base_model(aws) -> None:
    put_jsonl("data/train.jsonl", 250)
    spec = JobSpec(
        platform="BEDROCK",
        model="nova-lite-2",
        method="sft_lora",
        train_uri="s3://novaflow-local/data/train.jsonl",
        model_name_or_path="s3://novaflow-local/jobs/sft/checkpoints/",
    )
    problems = [p for p in dry_run(spec, simulate_iam=False).problems if p.field == "model_name_or_path"]
    assert len(problems) == 1
    assert problems[0].message.startswith("Bedrock customization starts from the base model or a Bedrock custom")
    assert problems[0].fix == "import the checkpoint into Bedrock first or train on SMTJ"


def _put_rows(key: str, rows: int, *, reasoning: bool) -> str:
    import json

    answer = (
        [{"reasoningContent": {"reasoningText": {"text": "think"}}}, {"text": "HQ"}] if reasoning else [{"text": "HQ"}]
    )
    body = "".join(
        json.dumps(
            {
                "schemaVersion": "bedrock-conversation-2024",
                "messages": [
                    {"role": "user", "content": [{"text": f"q{i}"}]},
                    {"role": "assistant", "content": answer},
                ],
            }
        )
        + "\n"
        for i in range(rows)
    )
    get_client("s3").put_object(Bucket="novaflow-local", Key=key, Body=body.encode())
    return f"s3://novaflow-local/{key}"


def test_reasoning_enabled_follows_the_training_data_on_nova_2(aws) -> None:
    import yaml

    plain = _put_rows("data/plain.jsonl", 40, reasoning=False)
    thinking = _put_rows("data/thinking.jsonl", 40, reasoning=True)
    for uri, expected in ((plain, False), (thinking, True)):
        spec = JobSpec(model="nova-lite-2", method="sft_lora", train_uri=uri, overrides={"max_steps": 4})
        report = dry_run(spec, simulate_iam=False)
        assert [p for p in report.problems if p.field == "overrides"] == []
        assert yaml.safe_load(report.recipe_yaml or "")["training_config"]["reasoning_enabled"] is expected
        record = submit_training_job(spec)
        key = f"novaflow/recipes/{record.name}/recipe.yaml"
        uploaded = yaml.safe_load(get_client("s3").get_object(Bucket="novaflow-local", Key=key)["Body"].read())
        assert uploaded["training_config"]["reasoning_enabled"] is expected
    forced = JobSpec(
        model="nova-lite-2", method="sft_lora", train_uri=plain, overrides={"max_steps": 4, "reasoning_enabled": True}
    )
    problems = [(p.message, p.fix) for p in dry_run(forced, simulate_iam=False).problems if p.field == "overrides"]
    assert problems == [
        (
            f"reasoning_enabled is true but no row of {plain} carries reasoningContent",
            "set reasoning_enabled=false (reasoning mode is for data with reasoning traces)",
        )
    ]
    nova1 = JobSpec(model="nova-lite", method="sft_lora", train_uri=plain)
    assert "reasoning_enabled" not in (dry_run(nova1, simulate_iam=False).recipe_yaml or "")
