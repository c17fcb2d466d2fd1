"""Golden serverless requests: every model and method serverless offers, built offline from fixed references.

The references (hub content, group, evaluator ARNs) are what ``resolve_refs`` finds in AWS; fixing them here
pins the request shape itself, field for field, and checks it against botocore's model of CreateTrainingJob.
"""

from __future__ import annotations

import json

import botocore.session
import pytest

from novaflow.catalog import MODELS, Method, Platform, get_model, method_problem
from novaflow.errors import RecipeError
from novaflow.jobs.request import validate_request
from novaflow.jobs.serverless import (
    ServerlessRefs,
    build_serverless_request,
    evaluator_document,
    evaluator_name,
    serverless_hyperparameters,
)
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission
from novaflow.recipes import serverless as hub_spec
from tests.unit.jobs.test_requests_golden import LAMBDA, golden_compare

GROUP = "arn:aws:sagemaker:us-east-1:111122223333:model-package-group/novaflow-golden-nova"
EVALUATOR = (
    "arn:aws:sagemaker:us-east-1:111122223333:hub-content/novaflow-evaluators/JsonDoc/nova-reward-0a1b2c3d4e/1.0.0"
)
PACKAGE = "arn:aws:sagemaker:us-east-1:111122223333:model-package/novaflow-golden-nova/3"
CASES = sorted(
    (model, method.value)
    for method in Method
    for model in MODELS
    if method is not Method.RFT_MULTITURN  # a CreateJob request, not a training job: tests/unit/jobs/test_agent_rft.py
    and method_problem(model, method, Platform.SERVERLESS) is None
    and hub_spec.availability_problem(get_model(model), method, "us-east-1") is None
)
TASKS = [("nova-lite-2", "rft_eval"), ("nova-micro", "mmlu"), ("nova-lite", "llm_judge")]


def refs(model: str, *, evaluator: bool = False) -> ServerlessRefs:
    hub = get_model(model).hub_name
    base = f"arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/{hub}/1.0.0"
    return ServerlessRefs(base, True, GROUP, EVALUATOR if evaluator else None)


def make_spec(model: str, method: str, task: str | None = None, **changes: object) -> JobSpec:
    meth = Method(method)
    train = {
        Method.RFT_LORA: "s3://golden-bucket/nf/data/rft/rft.jsonl",
        Method.DPO_LORA: "s3://golden-bucket/nf/data/dpo/train.jsonl",
        Method.DPO_FULL: "s3://golden-bucket/nf/data/dpo/train.jsonl",
        Method.EVALUATION: None if task == "mmlu" else "s3://golden-bucket/nf/data/eval/gen_qa.jsonl",
    }.get(meth, "s3://golden-bucket/nf/data/sft/train.jsonl")
    values: dict[str, object] = {
        "platform": "SERVERLESS",
        "model": model,
        "method": method,
        "eval_task": task,
        "train_uri": train,
        "output_uri": "s3://golden-bucket/nf/jobs",
        "reward_lambda_arn": LAMBDA if meth is Method.RFT_LORA or task == "rft_eval" else None,
        "model_package_group": "novaflow-golden-nova",
        "accept_eula": True,
        "tags": {"project": "golden"},
    }
    values.update(changes)
    return JobSpec(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sagemaker() -> object:
    session = botocore.session.get_session()
    return session.create_client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _request(spec: JobSpec, settings: object) -> dict[str, object]:
    sub = prepare_submission(spec, settings)  # type: ignore[arg-type]
    sub.serverless = refs(spec.model, evaluator=bool(spec.reward_lambda_arn))
    return sub.request()


@pytest.mark.parametrize(
    ("model", "method", "task"), [(*c, None) for c in CASES] + [(m, "evaluation", t) for m, t in TASKS]
)
def test_serverless_request_matches_golden(model, method, task, settings, sagemaker) -> None:
    request = _request(make_spec(model, method, task), settings)
    stem = f"serverless_{model}_{method}" + (f"_{task}" if task else "")
    golden_compare(f"{stem}.request.json", json.dumps(request, indent=2) + "\n")
    validate_request(sagemaker, "CreateTrainingJob", request)  # type: ignore[arg-type]
    assert "AlgorithmSpecification" not in request and "ResourceConfig" not in request
    assert all(isinstance(v, str) for v in request["HyperParameters"].values())  # type: ignore[union-attr]
    assert len(request["HyperParameters"]) <= 100  # type: ignore[arg-type]


def test_the_request_says_technique_peft_and_where_the_model_goes(settings) -> None:
    assert refs("nova-lite-2").base_model_arn.endswith(
        ":aws:hub-content/SageMakerPublicHub/Model/nova-textgeneration-lite-v2/1.0.0"
    )
    rft = _request(make_spec("nova-lite-2", "rft_lora"), settings)
    assert rft["ServerlessJobConfig"] == {
        "BaseModelArn": refs("nova-lite-2").base_model_arn,
        "AcceptEula": True,
        "JobType": "FineTuning",
        "CustomizationTechnique": "RLVR",
        "Peft": "LORA",
        "EvaluatorArn": EVALUATOR,
    }
    assert rft["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix"  # type: ignore[index]
    assert "reward_lambda_arn" not in rft["HyperParameters"]  # type: ignore[operator]
    assert rft["HyperParameters"]["max_length"] == "8192"  # type: ignore[index]
    full = _request(make_spec("nova-micro", "dpo_full"), settings)
    assert "Peft" not in full["ServerlessJobConfig"]  # type: ignore[operator]
    assert full["ServerlessJobConfig"]["CustomizationTechnique"] == "DPO"  # type: ignore[index]
    assert full["OutputDataConfig"] == {
        "S3OutputPath": "s3://golden-bucket/nf/jobs",
        "KmsKeyId": "alias/nova",
        "CompressionType": "NONE",
    }
    assert full["ModelPackageConfig"] == {"ModelPackageGroupArn": GROUP}
    assert full["Tags"][:2] == [  # type: ignore[index]
        {"Key": "sagemaker-sdk:jumpstart-model-id", "Value": "nova-textgeneration-micro"},
        {"Key": "sagemaker-sdk:jumpstart-hub-name", "Value": "SageMakerPublicHub"},
    ]
    base_eval = _request(make_spec("nova-lite-2", "evaluation"), settings)
    assert "ModelPackageConfig" not in base_eval and "EvaluatorArn" not in base_eval["ServerlessJobConfig"]  # type: ignore[operator]
    assert base_eval["HyperParameters"] == {
        "task": "gen_qa",
        "strategy": "gen_qa",
        "metric": "all",
        "lambda_type": "rft",
        "max_new_tokens": "32768",
        "temperature": "0",
        "top_k": "-1",
        "top_p": "1.0",
    }
    tuned = _request(make_spec("nova-lite-2", "evaluation", model_name_or_path=PACKAGE), settings)
    assert tuned["ModelPackageConfig"] == {"ModelPackageGroupArn": GROUP, "SourceModelPackageArn": PACKAGE}


def test_overrides_take_hub_or_recipe_names_and_are_checked(settings) -> None:
    spec = make_spec(
        "nova-lite-2", "sft_lora", overrides={"lr": "2e-5", "alpha": 128, "max_length": 16384, "max_steps": "20"}
    )
    hyper = serverless_hyperparameters(spec.resolve(settings), "job-1")
    assert (hyper["learning_rate"], hyper["lora_alpha"], hyper["max_context_length"]) == ("2e-05", "128", "16384")
    assert (hyper["max_steps"], hyper["name"]) == ("20", "job-1")
    bad = make_spec("nova-lite-2", "sft_lora", overrides={"learning_rate": 2, "lora_alpha": 33, "epochs": 3})
    with pytest.raises(RecipeError) as err:
        prepare_submission(bad, settings)
    message = str(err.value)
    assert "learning_rate=2.0 is above the maximum 1" in message
    assert "lora_alpha=33 is not allowed; use one of [32, 64, 96, 128, 160, 192]" in message
    assert "unknown serverless hyperparameter 'epochs' for nova_lite_2_0_p5_gpu_lora_sft" in message


def test_more_than_100_hyperparameters_is_refused_before_aws(settings, monkeypatch) -> None:
    spec = make_spec("nova-lite-2", "sft_lora").resolve(settings)
    real = hub_spec.HyperparameterSpec.defaults
    monkeypatch.setattr(
        hub_spec.HyperparameterSpec, "defaults", lambda self: {**real(self), **{f"k{i}": i for i in range(90)}}
    )
    with pytest.raises(RecipeError, match=r"would send 110 hyperparameters; CreateTrainingJob accepts at most 100"):
        serverless_hyperparameters(spec, "job-1")


def test_serverless_starts_from_a_registered_version_never_an_s3_checkpoint(settings) -> None:
    spec = make_spec("nova-lite-2", "sft_lora", model_name_or_path="s3://escrow/job/outputs/checkpoints")
    with pytest.raises(RecipeError, match=r"not the checkpoint s3://escrow/job/outputs/checkpoints: register it"):
        build_serverless_request(spec.resolve(settings), refs("nova-lite-2"), job_name="j")
    continued = _request(make_spec("nova-lite-2", "rft_lora", model_name_or_path=PACKAGE), settings)
    assert continued["ModelPackageConfig"]["SourceModelPackageArn"] == PACKAGE  # type: ignore[index]


def test_availability_follows_the_recipe_tables_and_v3_for_rlvr() -> None:
    lite2 = get_model("nova-lite-2")
    assert hub_spec.availability_problem(lite2, Method.SFT_LORA, "eu-west-1") is None
    assert hub_spec.availability_problem(lite2, Method.RFT_LORA, "eu-west-1") == (
        "Serverless rft_lora of nova-lite-2 is not offered in eu-west-1: it runs in us-east-1, us-west-2; "
        "set NOVAFLOW_REGION to one of them or use platform SMTJ."
    )
    assert hub_spec.availability_problem(get_model("nova-micro"), Method.DPO_LORA, "ap-southeast-2") is None
    with pytest.raises(RecipeError, match=r"SageMaker serverless customization of Nova is not offered in 'eu-west-2'"):
        prepare_submission(make_spec("nova-micro", "sft_lora"), load_region("eu-west-2"))


def load_region(region: str) -> object:
    from novaflow.settings import load_settings

    return load_settings(
        bucket="golden-bucket", prefix="nf", role_arn="arn:aws:iam::111122223333:role/r", region=region
    )


def test_an_evaluator_is_named_by_function_and_code_version() -> None:
    first = evaluator_name("SageMaker-novaflow-reward", "abc=")
    assert first == "SageMaker-novaflow-reward-" + __import__("hashlib").sha256(b"abc=").hexdigest()[:10]
    assert evaluator_name("SageMaker-novaflow-reward", "def=") != first
    assert len(evaluator_name("x" * 80, "abc=")) <= 63
    assert json.loads(json.loads(evaluator_document(LAMBDA))["JsonContent"]) == {
        "EvaluatorType": "RewardFunction",
        "Reference": LAMBDA,
    }


def test_the_catalogs_serverless_regions_are_the_recipe_hubs() -> None:
    from novaflow.catalog import SERVERLESS_REGIONS
    from novaflow.recipes.published import load_published

    published = {region for r in load_published().recipes.values() for region in r.serverless_regions}
    assert SERVERLESS_REGIONS == published


def test_fields_added_later_do_not_rename_jobs_submitted_before() -> None:
    spec = JobSpec(model="nova-lite-2", method="sft_lora", train_uri="s3://b/t.jsonl", output_uri="s3://b/o")
    assert "model_package_group" not in spec.canonical() and "accept_eula" not in spec.canonical()
    assert spec.model_copy(update={"accept_eula": True}).job_name() != spec.job_name()
