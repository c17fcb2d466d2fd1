"""Every request novaflow can build, validated against botocore's own model of the API (types, required members,
lengths and string patterns): all platforms, models, methods and evaluation tasks, with and without each optional
field. A combination the service refuses must be refused by novaflow with its reason instead."""

from __future__ import annotations

import itertools
from typing import Any

import botocore.session
import pytest

from novaflow.catalog import SUBMITTABLE, SUPPORT, Method, Platform
from novaflow.errors import RecipeError
from novaflow.jobs.request import model_package_group_arn, validate_request
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission
from novaflow.settings import NovaflowSettings

ACCOUNT = "111122223333"
LAMBDA = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:nova-reward"
PACKAGE = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/nova-tuned/3"
OPTIONS: dict[str, dict[str, Any]] = {
    "kms": {"kms_key_id": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
    "vpc": {"subnets": ("subnet-0abc", "subnet-0def"), "security_group_ids": ("sg-0123",)},
    "validation": {"validation_uri": "s3://golden-bucket/nf/data/validation.jsonl"},
    "model_package": {"model_name_or_path": PACKAGE},
    "checkpoint": {"model_name_or_path": "s3://golden-bucket/nf/jobs/sft/output/checkpoints/"},
    "tags": {"tags": {"team": "search", "cost-center": "ml-42"}},
    "runtime": {"max_runtime_seconds": 3 * 86400},
    "image": {"image_uri": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/nova-cpt:latest"},
}
EVAL_TASKS = ("gen_qa", "mmlu", "judge", "rft_eval")


def combinations() -> list[tuple[str, ...]]:
    """No option, each option alone, and every option at once (with each of the two starting points)."""
    names = sorted(OPTIONS)
    rest = tuple(n for n in names if n not in ("model_package", "checkpoint"))
    return [(), *((n,) for n in names), (*rest, "model_package"), (*rest, "checkpoint")]


ENUMERATED = SUBMITTABLE - {Platform.SERVERLESS, Platform.SMHP}
"""A serverless request names hub content ARNs looked up in the account first: every serverless request is held to
the same botocore model in tests/unit/jobs/test_serverless_requests.py, with the references resolved. A HyperPod
job is no AWS API request: its objects are held to the hub's chart in tests/unit/jobs/test_hyperpod_job.py."""


def jobs() -> list[tuple[Platform, str, Method, str | None]]:
    out = []
    for method, support in SUPPORT.items():
        if not support.built:
            continue
        for platform, model in itertools.product(sorted(support.platforms & ENUMERATED), sorted(support.models)):
            for task in EVAL_TASKS if method is Method.EVALUATION else (None,):
                out.append((platform, model, method, task))
    return out


def expected_refusal(platform: Platform, model: str, method: Method, options: tuple[str, ...]) -> str | None:
    """What the service would refuse, in the words novaflow uses (None: the request must validate)."""
    if method is Method.CPT and platform is Platform.SMTJ and "image" not in options:
        return "AWS publishes no SageMaker training job image for CPT"
    if platform is Platform.BEDROCK and ({"model_package", "checkpoint"} & set(options)):
        return "Bedrock customization starts from the base model or a Bedrock custom model ARN"
    if (
        platform is Platform.BEDROCK
        and "validation" in options
        and model == "nova-lite-2"
        and method.value == "sft_lora"
    ):
        return "Bedrock does not use validation data when fine-tuning Nova 2"
    return None


@pytest.fixture(scope="module")
def clients() -> dict[Platform, Any]:
    session = botocore.session.get_session()
    make = session.create_client
    return {
        Platform.SMTJ: make("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"),
        Platform.BEDROCK: make("bedrock", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"),
    }


SETTINGS = NovaflowSettings(bucket="golden-bucket", prefix="nf", role_arn=f"arn:aws:iam::{ACCOUNT}:role/nova-exec")
OPERATION = {Platform.SMTJ: "CreateTrainingJob", Platform.BEDROCK: "CreateModelCustomizationJob"}


def spec_for(platform: Platform, model: str, method: Method, task: str | None, options: tuple[str, ...]) -> JobSpec:
    fields: dict[str, Any] = {}
    for name in options:
        fields.update(OPTIONS[name])
    train = {
        "gen_qa": "s3://golden-bucket/nf/data/eval/gen_qa.jsonl",
        "mmlu": None,
        "judge": "s3://golden-bucket/nf/data/judge/llm_judge.jsonl",
        "rft_eval": "s3://golden-bucket/nf/data/rft/rft.jsonl",
        None: "s3://golden-bucket/nf/data/train/train.jsonl",
    }[task]
    needs_lambda = method is Method.RFT_LORA or task == "rft_eval"
    return JobSpec(
        platform=platform,
        model=model,
        method=method,
        eval_task=task,
        train_uri=train,
        reward_lambda_arn=LAMBDA if needs_lambda else None,
        **fields,
    )


@pytest.mark.slow
def test_every_buildable_request_matches_the_aws_model_or_is_refused_with_its_reason(clients) -> None:
    built = refused = 0
    for (platform, model, method, task), options in itertools.product(jobs(), combinations()):
        spec = spec_for(platform, model, method, task, options)
        reason = expected_refusal(platform, model, method, options)
        where = f"{platform.value} {model} {method.value} {task} {options}"
        try:
            request = prepare_submission(spec, SETTINGS).request()
            validate_request(clients[platform], OPERATION[platform], request)
        except RecipeError as exc:
            assert reason is not None, f"{where}: {exc}"
            assert reason in str(exc), where
            refused += 1
            continue
        assert reason is None, f"{where}: built although the service refuses it ({reason})"
        built += 1
        if "model_package" in options and platform is Platform.SMTJ:
            assert request["ModelPackageConfig"] == {
                "ModelPackageGroupArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package-group/nova-tuned",
                "SourceModelPackageArn": PACKAGE,
            }
    assert (built, refused) == (len(jobs()) * len(combinations()) - refused, refused)
    assert built > 250 and refused > 0


def test_patterns_beyond_botocore_s_own_checks_are_enforced(clients) -> None:
    spec = spec_for(Platform.SMTJ, "nova-lite-2", Method.SFT_LORA, None, ())
    request = prepare_submission(spec, SETTINGS).request()
    bad = {**request, "VpcConfig": {"Subnets": ["subnet_with_underscore"], "SecurityGroupIds": ["sg-1"]}}
    with pytest.raises(RecipeError, match=r"VpcConfig\.Subnets\[0\]='subnet_with_underscore' does not match"):
        validate_request(clients[Platform.SMTJ], "CreateTrainingJob", bad)
    long_tag = {**request, "Tags": [{"Key": "k" * 129, "Value": "v"}]}
    with pytest.raises(RecipeError, match=r"Tags\[0\]\.Key is 129 characters, more than 128"):
        validate_request(clients[Platform.SMTJ], "CreateTrainingJob", long_tag)


def test_a_model_package_without_a_version_has_no_group_and_is_refused() -> None:
    assert model_package_group_arn(PACKAGE) == f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package-group/nova-tuned"
    with pytest.raises(RecipeError, match="is not a versioned model package ARN"):
        model_package_group_arn(f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/standalone")
