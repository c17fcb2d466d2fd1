"""Golden tests: the exact request per supported (platform, model, method) and the exact uploaded recipe."""

from __future__ import annotations

import json
import os
from pathlib import Path

import botocore.session
import pytest

from novaflow.catalog import MODELS, DataFormat, Method, Platform, method_problem
from novaflow.errors import RecipeError
from novaflow.jobs.request import validate_request
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission

GOLDEN = Path(__file__).parents[2] / "golden" / "jobs"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
LAMBDA = "arn:aws:lambda:us-east-1:111122223333:function:nova-reward"
CPT_IMAGE = "111122223333.dkr.ecr.us-east-1.amazonaws.com/nova-cpt:given-by-aws"  # AWS publishes none for SMTJ

CASES = sorted(
    (p.value, m, meth.value)
    for meth in Method
    for p in Platform
    for m in MODELS
    if method_problem(m, meth, p) is None
    and p not in (Platform.SERVERLESS, Platform.SMHP)  # test_serverless_requests.py, test_hyperpod_job.py
)
EXTRA_EVAL = [
    ("SMTJ", "nova-lite-2", "evaluation", "rft_eval"),
    ("SMTJ", "nova-micro", "evaluation", "mmlu"),
    ("SMTJ", "nova-lite", "evaluation", "llm_judge"),
]


def make_spec(platform: str, model: str, method: str, eval_task: str | None = None) -> JobSpec:
    meth = Method(method)
    task = eval_task or ("gen_qa" if meth is Method.EVALUATION else None)
    data = {
        "gen_qa": "s3://golden-bucket/nf/data/eval/gen_qa.jsonl",
        "mmlu": None,
        "rft_eval": "s3://golden-bucket/nf/data/rft/",
        "llm_judge": "s3://golden-bucket/nf/data/judge.jsonl",
    }
    folder = {DataFormat.RFT: "rft/rft", DataFormat.DPO: "dpo/train", DataFormat.CPT: "cpt/cpt"}
    train = data[task] if task else f"s3://golden-bucket/nf/data/{folder.get(meth.data_format, 'sft/train')}.jsonl"
    lam = LAMBDA if meth is Method.RFT_LORA or task == "rft_eval" else None
    return JobSpec(
        platform=platform,
        model=model,
        method=method,
        eval_task=task,
        train_uri=train,
        output_uri="s3://golden-bucket/nf/jobs",
        reward_lambda_arn=lam,
        image_uri=CPT_IMAGE if meth is Method.CPT else None,
        tags={"project": "golden"},
    )


def golden_compare(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"golden file {path} missing; run with UPDATE_GOLDEN=1 and review the diff")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def clients() -> dict[str, object]:
    session = botocore.session.get_session()
    return {
        svc: session.create_client(svc, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        for svc in ("sagemaker", "bedrock")
    }


@pytest.mark.parametrize(("platform", "model", "method", "task"), [(*c, None) for c in CASES] + EXTRA_EVAL)
def test_request_and_recipe_match_golden(platform, model, method, task, settings, clients) -> None:
    sub = prepare_submission(make_spec(platform, model, method, task), settings)
    request = sub.request()
    stem = f"{platform.lower()}_{model}_{method}" + (f"_{task}" if task and task != "gen_qa" else "")
    golden_compare(f"{stem}.request.json", json.dumps(request, indent=2, sort_keys=False) + "\n")
    golden_compare(f"{stem}.recipe.yaml", sub.recipe.to_yaml())
    if platform == "SMTJ":
        validate_request(clients["sagemaker"], "CreateTrainingJob", request)
    else:
        validate_request(clients["bedrock"], "CreateModelCustomizationJob", request)


def test_smtj_request_follows_the_contract(settings) -> None:
    sub = prepare_submission(make_spec("SMTJ", "nova-lite-2", "rft_lora"), settings)
    req = sub.request()
    assert req["TrainingJobName"] == sub.job_name and len(sub.job_name) <= 63
    assert req["HyperParameters"] == {
        "base_model": "nova-lite-2/prod",
        "reward_lambda_arn": LAMBDA,
        "sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/recipe.yaml",
    }
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in req["InputDataConfig"]}
    assert channels["train"]["S3DataType"] == "S3Prefix"
    assert channels["recipe"]["S3Uri"] == f"s3://golden-bucket/nf/recipes/{sub.job_name}/recipe.yaml"
    assert req["AlgorithmSpecification"]["TrainingImage"] == (
        "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:SM-TJ-RFT-V2-latest"
    )
    assert req["ResourceConfig"] == {"InstanceType": "ml.p5.48xlarge", "InstanceCount": 4, "VolumeSizeInGB": 30}
    assert sub.recipe.recipe["run"]["replicas"] == 4
    assert req["OutputDataConfig"]["KmsKeyId"] == "alias/nova"
    assert req["VpcConfig"] == {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}


def test_sft_channel_is_converse_and_checkpoint_becomes_base_model_location(settings) -> None:
    spec = make_spec("SMTJ", "nova-micro", "sft_lora").model_copy(
        update={"model_name_or_path": "s3://customer-escrow-1-smtj-x/job/outputs/checkpoints"}
    )
    req = prepare_submission(spec, settings).request()
    assert req["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] == "Converse"
    assert req["HyperParameters"]["base_model_location"] == "s3://customer-escrow-1-smtj-x/job/outputs/checkpoints"
    assert "base_model" not in req["HyperParameters"]


def test_region_picks_the_published_image_and_refuses_regions_without_one(settings) -> None:
    west = settings.model_copy(update={"region": "us-west-2"})
    req = prepare_submission(make_spec("SMTJ", "nova-pro", "evaluation"), west).request()
    assert req["AlgorithmSpecification"]["TrainingImage"] == (
        "176779409107.dkr.ecr.us-west-2.amazonaws.com/nova-evaluation-repo:SM-TJ-Eval-V2-latest"
    )
    eu = settings.model_copy(update={"region": "eu-west-2"})
    with pytest.raises(RecipeError, match=r"no evaluation image for nova-pro in eu-west-2 .*: use one of ap-north"):
        prepare_submission(make_spec("SMTJ", "nova-pro", "evaluation"), eu)


def test_validation_rejects_malformed_request(clients) -> None:
    with pytest.raises(RecipeError, match=r"does not match the AWS API") as info:
        validate_request(
            clients["sagemaker"],
            "CreateTrainingJob",
            {"TrainingJobName": "x", "RoleArn": "r", "ResourceConfig": {"InstanceCount": "four"}},
        )
    assert "InstanceCount" in str(info.value)


def test_unsupported_combinations_say_why(settings) -> None:
    with pytest.raises(RecipeError, match=r"RFT is only supported on Nova 2.0"):
        prepare_submission(make_spec("SMTJ", "nova-pro", "rft_lora"), settings)
    with pytest.raises(RecipeError, match=r"not supported on BEDROCK"):
        prepare_submission(make_spec("BEDROCK", "nova-lite", "sft_full"), settings)
    with pytest.raises(RecipeError, match=r"Bedrock Nova customization runs only in us-east-1"):
        prepare_submission(
            make_spec("BEDROCK", "nova-lite", "sft_lora"), settings.model_copy(update={"region": "us-west-2"})
        )
    with pytest.raises(RecipeError, match=r"rft_lora is not supported for nova-pro on SMHP: RFT is only supported"):
        prepare_submission(make_spec("SMHP", "nova-pro", "rft_lora"), settings)
