"""Dry run of a serverless job: where it is offered, its hyperparameters against the hub spec, the 100-entry
limit, the EULA, the execution role, and a token cost estimate from the editable table; nothing is created."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from novaflow.aws import get_client
from novaflow.data.formats import estimate_tokens
from novaflow.jobs.dryrun import DryRunReport, _check_role, dry_run
from novaflow.jobs.spec import JobSpec
from novaflow.recipes import serverless as hub_spec
from novaflow.settings import load_settings
from tests.aws.jobs.conftest import put_jsonl, stub_role
from tests.aws.jobs.test_dryrun import assert_read_only


def _spec(**kw: object) -> JobSpec:
    base: dict[str, object] = {"platform": "serverless", "model": "nova-lite-2", "method": "sft_lora"}
    return JobSpec(**{**base, **kw})


def test_a_good_spec_passes_reads_only_and_estimates_tokens_from_its_data(aws, calls) -> None:
    train = put_jsonl("data/train.jsonl", 20)
    calls.clear()
    report = dry_run(
        _spec(train_uri=train, accept_eula=True, overrides={"max_steps": 5}),
        simulate_iam=False,
        settings=load_settings(),
    )
    assert report.ok, report.describe()
    assert_read_only(calls)
    assert "DescribeHubContent" in calls  # the base model's hub content, read to find the model ARN
    assert report.notes[0] == "model package group novaflow-jobs-nova-lite-2 does not exist yet: submit creates it"
    sagemaker = get_client("sagemaker", settings=load_settings())
    assert sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == []

    # tokens: the data's (about 4 characters a token) per row, times max_steps x the spec's global_batch_size
    body = (
        get_client("s3", settings=load_settings())
        .get_object(Bucket="novaflow-local", Key="data/train.jsonl")["Body"]
        .read()
    )
    lines = [line for line in body.splitlines() if line.strip()]
    batch = hub_spec.hyperparameter_spec(_spec().nova, _spec().method).defaults()["global_batch_size"]
    expected = round(estimate_tokens(sum(map(len, lines))) * 5 * int(batch) / len(lines))
    cost = report.token_cost
    assert cost is not None and cost.tokens == expected
    assert cost.basis == f"{5 * int(batch)} samples = max_steps x global_batch_size"
    assert (cost.price_per_million, cost.source) == (2.50, "placeholder")
    assert "PLACEHOLDER prices: edit the table" in report.describe()


def test_an_edited_price_table_is_used(aws, tmp_path) -> None:
    train = put_jsonl("data/train.jsonl", 8)
    prices = tmp_path / "prices.yaml"
    prices.write_text("as_of: '2027-01-01'\ncurrency: EUR\nsource: our agreement\ntraining:\n  nova-lite-2: 4.0\n")
    report = dry_run(
        _spec(train_uri=train, accept_eula=True),
        simulate_iam=False,
        serverless_prices_file=str(prices),
        settings=load_settings(),
    )
    cost = report.token_cost
    assert cost is not None and (cost.price_per_million, cost.currency, cost.as_of) == (4.0, "EUR", "2027-01-01")
    assert cost.total == round(cost.tokens / 1e6 * 4.0, 2)
    assert "PLACEHOLDER" not in report.describe()


def test_every_problem_is_named_with_a_fix_and_nothing_is_created(aws, calls) -> None:
    train = put_jsonl("data/train.jsonl", 8)
    calls.clear()
    spec = _spec(train_uri=train, overrides={"learning_rate": 5.0, "lr_warmup": 3, "lora_alpha": 33})
    report = dry_run(spec, simulate_iam=False, settings=load_settings())
    assert [(p.field, p.message.split(";")[0]) for p in report.problems] == [
        ("overrides", "learning_rate=5.0 is above the maximum 1"),
        ("overrides", "unknown serverless hyperparameter 'lr_warmup' for nova_lite_2_0_p5_gpu_lora_sft"),
        ("overrides", "lora_alpha=33 is not allowed"),
        (
            "accept_eula",
            "nova-lite-2 is gated: serverless customization requires accepting its end-user license agreement",
        ),
    ]
    assert report.problems[0].fix == "change the override (see `novaflow recipes show --platform serverless`)"
    assert report.problems[-1].fix == "read the EULA, then pass accept_eula=True (CLI --accept-eula)"
    assert_read_only(calls)
    assert get_client("sagemaker", settings=load_settings()).list_training_jobs()["TrainingJobSummaries"] == []


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"method": "rft_lora", "region": "eu-west-1"},
            "Serverless rft_lora of nova-lite-2 is not offered in eu-west-1: it runs in us-east-1, us-west-2; set "
            "NOVAFLOW_REGION to one of them or use platform SMTJ.",
        ),
        (
            {"region": "eu-west-2"},
            "SageMaker serverless customization of Nova is not offered in 'eu-west-2': use one of ap-northeast-1, "
            "ap-southeast-2, eu-central-1, eu-west-1, us-east-1, us-west-2 (NOVAFLOW_REGION) or platform SMTJ.",
        ),
        (
            {"method": "dpo_lora"},
            "dpo_lora is not supported for nova-lite-2 on SERVERLESS: DPO is only supported on Nova 1 models "
            "(nova-micro, nova-lite, nova-pro).",
        ),
        ({"method": "cpt"}, "cpt is not supported on SERVERLESS: it runs on SMTJ, SMHP."),
    ],
)
def test_availability_per_model_technique_and_region(aws, calls, kw, message) -> None:
    calls.clear()
    report = dry_run(_spec(accept_eula=True, **kw), simulate_iam=False, settings=load_settings())
    assert [p.message for p in report.problems] == [message]
    assert calls == []  # refused from the tables, before any AWS call


def test_more_than_100_hyperparameters_is_a_problem(aws, monkeypatch) -> None:
    real = hub_spec.HyperparameterSpec.defaults
    monkeypatch.setattr(
        hub_spec.HyperparameterSpec, "defaults", lambda self: {**real(self), **{f"k{i}": i for i in range(90)}}
    )
    report = dry_run(
        _spec(train_uri=put_jsonl("data/t.jsonl", 2), accept_eula=True), simulate_iam=False, settings=load_settings()
    )
    assert [p.field for p in report.problems] == ["overrides"]
    assert "would send 110 hyperparameters; CreateTrainingJob accepts at most 100" in report.problems[0].message


def test_the_execution_role_is_simulated_for_the_registry_the_service_writes_to(aws) -> None:
    iam = get_client("iam", settings=load_settings())
    role = "arn:aws:iam::123456789012:role/exec"
    decisions = {
        "s3:GetObject": "allowed",
        "s3:PutObject": "allowed",
        "s3:ListBucket": "allowed",
        "sagemaker:DescribeModelPackageGroup": "allowed",
        "sagemaker:CreateModelPackage": "implicitDeny",
    }
    report = DryRunReport(job_name="j")
    with Stubber(iam) as stub:
        stub_role(stub, role, decisions)
        _check_role(_spec(role_arn=role, train_uri="s3://b/k"), load_settings(), report, simulate=True)
    assert [str(p) for p in report.problems] == [
        "role_arn: role exec is not allowed sagemaker:CreateModelPackage -> fix: attach a policy granting "
        "these actions on the data, output and Lambda resources and the model package group"
    ]
