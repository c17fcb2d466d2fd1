"""The embedded AWS and the emulator for serverless customization, hubs, the model registry, DPO and CPT.

Everything is exercised through boto3 against the embedded server, as sagemaker v3 and novaflow reach it: the
requests are written out here (not built by novaflow's jobs layer), so these tests pin the service side alone.
"""

from __future__ import annotations

import json
import math
import re

import boto3
import pytest
from botocore.exceptions import ClientError

from novaflow.data.samples import SYSTEM_PROMPT, generate_stackoverflow_csv
from novaflow.evaluation.parser import parse_eval_output
from novaflow.local.aws.server import LOCAL_ROLE_ARN
from novaflow.local.emulator import scenario
from novaflow.settings import load_settings

B = "s3://novaflow-local"
LABELS = ("HQ", "LQ_EDIT", "LQ_CLOSE")
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:SageMaker-reward"


@pytest.fixture(scope="module")
def questions(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    return scenario.load_questions(generate_stackoverflow_csv(tmp_path_factory.mktemp("so") / "so.csv", 900, seed=7))


def _sm():  # type: ignore[no-untyped-def]
    return boto3.client("sagemaker")


def _group(name: str = "novaflow-twin") -> str:
    return str(_sm().create_model_package_group(ModelPackageGroupName=name)["ModelPackageGroupArn"])


def _code(call) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as err:
        call()
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def _log(job: str) -> list[str]:
    logs = boto3.client("logs")
    stream = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{job}/")
    name = stream["logStreams"][0]["logStreamName"]
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=name, startFromHead=True)
    return [e["message"] for e in events["events"]]


# -- hubs -------------------------------------------------------------------------------------------------
def test_the_public_hub_serves_each_nova_model_with_its_recipes_and_their_override_specs(aws) -> None:
    content = _sm().describe_hub_content(
        HubName="SageMakerPublicHub", HubContentType="Model", HubContentName="nova-textgeneration-lite-v2"
    )
    assert content["HubContentArn"] == scenario.PUBLIC_MODEL_ARN.format(name="nova-textgeneration-lite-v2")
    document = json.loads(content["HubContentDocument"])
    assert document["GatedBucket"] is True
    sft = [r for r in document["RecipeCollection"] if r.get("CustomizationTechnique") == "SFT" and r["Peft"]]
    assert [r["Name"] for r in sft] == ["nova_lite_2_0_p5_gpu_lora_sft"]
    uri = sft[0]["SmtjOverrideParamsS3Uri"]
    bucket, key = uri[5:].split("/", 1)
    spec = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert spec["learning_rate"] == {"default": 1e-05, "max": 1, "min": 0, "required": True, "type": "float"}
    assert spec["lora_alpha"]["enum"] == [32, 64, 96, 128, 160, 192]
    byod = [r for r in document["RecipeCollection"] if r.get("EvaluationType") == "DeterministicEvaluation"]
    assert [r["Type"] for r in byod] == ["Evaluation"] and "bring your own dataset" in byod[0]["DisplayName"].lower()
    assert (
        _code(
            lambda: _sm().describe_hub_content(
                HubName="SageMakerPublicHub", HubContentType="Model", HubContentName="nova-textgeneration-max"
            )
        )[0]
        == "ResourceNotFound"
    )


def test_private_hubs_hold_evaluators_by_version_with_aws_errors(aws) -> None:
    sm = _sm()
    assert _code(lambda: sm.describe_hub(HubName="rewards"))[0] == "ResourceNotFound"
    hub_arn = sm.create_hub(HubName="rewards", HubDescription="reward functions")["HubArn"]
    assert _code(lambda: sm.create_hub(HubName="rewards", HubDescription="again"))[0] == "ResourceInUse"
    document = json.dumps({"SubType": "AWS/Evaluator", "JsonContent": json.dumps({"Reference": LAMBDA})})
    common = {
        "HubName": "rewards",
        "HubContentType": "JsonDoc",
        "HubContentName": "grader",
        "DocumentSchemaVersion": "2.0.0",
    }
    first = sm.import_hub_content(**common, HubContentVersion="1.0.0", HubContentDocument=document)
    assert first == {
        "HubArn": hub_arn,
        "HubContentArn": "arn:aws:sagemaker:us-east-1:123456789012:hub-content/rewards/JsonDoc/grader/1.0.0",
        "ResponseMetadata": first["ResponseMetadata"],
    }
    code, message = _code(lambda: sm.import_hub_content(**common, HubContentVersion="1.0.0", HubContentDocument="{}"))
    assert code == "ResourceInUse" and "already exists" in message
    sm.import_hub_content(**common, HubContentVersion="1.0.1", HubContentDocument=document)
    latest = sm.describe_hub_content(HubName="rewards", HubContentType="JsonDoc", HubContentName="grader")
    assert latest["HubContentVersion"] == "1.0.1" and json.loads(latest["HubContentDocument"]) == json.loads(document)
    versions = sm.list_hub_content_versions(HubName="rewards", HubContentType="JsonDoc", HubContentName="grader")
    assert [v["HubContentVersion"] for v in versions["HubContentSummaries"]] == ["1.0.0", "1.0.1"]
    assert _code(lambda: sm.delete_hub(HubName="rewards"))[0] == "ResourceInUse"


# -- model registry ---------------------------------------------------------------------------------------
def test_the_registry_behaves_as_aws_where_stock_moto_does_not(aws) -> None:
    sm = _sm()
    _group("family")
    code, message = _code(lambda: sm.create_model_package_group(ModelPackageGroupName="family"))
    assert code == "ValidationException" and "already exists" in message
    spec = {"Containers": [{"Image": "img", "ModelDataUrl": "s3://b/model/"}]}
    arn = sm.create_model_package(
        ModelPackageGroupName="family",
        InferenceSpecification=spec,
        CustomerMetadataProperties={"novaflow:job": "job-1"},
        ClientToken="token-1",
    )["ModelPackageArn"]
    again = sm.create_model_package(ModelPackageGroupName="family", InferenceSpecification=spec, ClientToken="token-1")
    assert again["ModelPackageArn"] == arn == "arn:aws:sagemaker:us-east-1:123456789012:model-package/family/1"
    version = sm.describe_model_package(ModelPackageName=arn)
    assert version["ModelApprovalStatus"] == "PendingManualApproval"
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected", ApprovalDescription="worse than base")
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"novaflow:metric:em": "0.5"})
    version = sm.describe_model_package(ModelPackageName=arn)
    assert version["ModelApprovalStatus"] == "Rejected"
    assert version["ApprovalDescription"] == "worse than base"
    assert version["CustomerMetadataProperties"] == {"novaflow:job": "job-1", "novaflow:metric:em": "0.5"}


# -- serverless jobs ----------------------------------------------------------------------------------------
def _sft_rows(questions: list[dict[str, str]]) -> str:
    rows = [scenario.converse_row(SYSTEM_PROMPT, q["Body"], q["Y"]) for q in questions[:400]]
    return scenario.put(f"{B}/data/sft/train.jsonl", scenario.jsonl(rows))


SFT_HYPER = {"learning_rate": "1e-05", "global_batch_size": "32", "max_steps": "40", "name": "serverless-sft"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"}},
            "takes no AlgorithmSpecification",
        ),
        ({"accept_eula": False}, "requires accepting its end-user license agreement"),
        ({"group_arn": None}, "ModelPackageConfig.ModelPackageGroupArn is required"),
        ({"group_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/nope"}, "does not exist"),
        ({"hyperparameters": {**SFT_HYPER, "lr": "1e-5"}}, "HyperParameters lr are not parameters"),
        ({"hyperparameters": {f"k{i}": "1" for i in range(101)}}, "less than or equal to 100"),
        ({"technique": "RLVR"}, "RLVR needs a reward"),
        ({"technique": "DPO"}, "has no serverless DPO LoRA recipe"),
        ({"evaluator_arn": "arn:aws:sagemaker:us-east-1:123456789012:hub-content/h/JsonDoc/e/1.0.0"}, "does not exist"),
    ],
)
def test_a_serverless_request_is_refused_as_aws_refuses_it(twin, questions, change, expected) -> None:
    train = _sft_rows(questions)
    group = _group()
    kwargs = {
        "model": "nova-textgeneration-lite-v2",
        "hyperparameters": SFT_HYPER,
        "output_uri": f"{B}/out",
        "role_arn": LOCAL_ROLE_ARN,
        "train_uri": train,
        "group_arn": group,
    }
    algorithm = change.pop("AlgorithmSpecification", None)
    kwargs.update(change)
    if algorithm:
        request = {
            "TrainingJobName": "bad",
            "RoleArn": LOCAL_ROLE_ARN,
            "AlgorithmSpecification": algorithm,
            "OutputDataConfig": {"S3OutputPath": f"{B}/out"},
            "ServerlessJobConfig": {
                "BaseModelArn": scenario.PUBLIC_MODEL_ARN.format(name="nova-textgeneration-lite-v2"),
                "JobType": "FineTuning",
            },
        }
        code, message = _code(lambda: _sm().create_training_job(**request))
    else:
        code, message = _code(lambda: scenario.submit_serverless("bad", **kwargs))
    assert code == "ValidationException" and expected in message
    assert _sm().list_training_jobs()["TrainingJobSummaries"] == []


def test_a_serverless_sft_job_trains_and_registers_its_model(twin, questions) -> None:
    train = _sft_rows(questions)
    group = _group()
    scenario.submit_serverless(
        "sls-sft",
        model="nova-textgeneration-lite-v2",
        hyperparameters=SFT_HYPER,
        output_uri=f"{B}/out",
        role_arn=LOCAL_ROLE_ARN,
        train_uri=train,
        group_arn=group,
    )
    job = scenario.wait("sls-sft", timeout=60)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert "AlgorithmSpecification" not in job and "ResourceConfig" not in job and "ModelArtifacts" not in job
    assert job["ServerlessJobConfig"]["CustomizationTechnique"] == "SFT"
    assert job["ModelPackageConfig"] == {"ModelPackageGroupArn": group}
    package = job["OutputModelPackageArn"]
    assert package == "arn:aws:sagemaker:us-east-1:123456789012:model-package/novaflow-twin/1"
    version = _sm().describe_model_package(ModelPackageName=package)
    checkpoint = version["InferenceSpecification"]["Containers"][0]["ModelDataSource"]["S3DataSource"]["S3Uri"]
    assert (
        version["InferenceSpecification"]["Containers"][0]["BaseModel"]["HubContentName"]
        == "nova-textgeneration-lite-v2"
    )
    manifest = boto3.client("s3").get_object(Bucket="novaflow-local", Key="out/sls-sft/output/output/manifest.json")
    assert json.loads(manifest["Body"].read()) == {"checkpoint_s3_bucket": checkpoint.rstrip("/")}
    # BillableTokenCount: the data's tokens per row (chars / 4, rounded up) x the 40 x 32 samples trained on
    body = boto3.client("s3").get_object(Bucket="novaflow-local", Key="data/sft/train.jsonl")["Body"].read()
    lines = [line for line in body.splitlines() if line.strip()]
    assert job["BillableTokenCount"] == round(-(-sum(len(line.decode()) for line in lines) // 4) / len(lines) * 1280)
    steps = [line for line in _log("sls-sft") if "global_step:" in line]
    assert len(steps) == 40 and "global_batch_size: 32" in steps[0]
    # a second serverless job continues from the registered version, and evaluates better than the base model
    scenario.submit_serverless(
        "sls-eval",
        model="nova-textgeneration-lite-v2",
        hyperparameters={"task": "gen_qa", "strategy": "gen_qa", "metric": "all", "name": "after"},
        output_uri=f"{B}/out",
        role_arn=LOCAL_ROLE_ARN,
        train_uri=_gen_qa(questions),
        data_type="S3Prefix",
        group_arn=group,
        source_package=package,
        evaluation_type="CustomScorerEvaluation",
    )
    assert scenario.wait("sls-eval", timeout=60)["TrainingJobStatus"] == "Completed"
    tuned = parse_eval_output(f"{B}/out/sls-eval/output/output/", settings=load_settings())
    keys = boto3.client("s3").list_objects_v2(Bucket="novaflow-local", Prefix="out/sls-eval/output/output/after/")
    assert any(re.search(r"eval_results/results_.*\.json$", o["Key"]) for o in keys["Contents"])
    assert tuned.metrics.get("em").value > 0.5


def _gen_qa(questions: list[dict[str, str]]) -> str:
    rows = [scenario.gen_qa_row(SYSTEM_PROMPT, q["Body"], q["Y"], q["Id"]) for q in questions[700:]]
    return scenario.put(f"{B}/data/eval/gen_qa.jsonl", scenario.jsonl(rows))


# -- DPO and CPT ----------------------------------------------------------------------------------------------
def _other(label: str) -> str:
    return LABELS[(LABELS.index(label) + 1) % len(LABELS)] if label in LABELS else LABELS[0]


def test_dpo_moves_the_model_toward_the_preferred_candidates(twin, questions) -> None:
    pairs = [scenario.dpo_row(SYSTEM_PROMPT, q["Body"], q["Y"], _other(q["Y"])) for q in questions[:600]]
    scenario.put(f"{B}/data/dpo/train.jsonl", scenario.jsonl(pairs))
    _gen_qa(questions)
    image = "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:SM-TJ-DPO-latest"
    scenario.submit(
        "dpo-a",
        scenario.dpo_recipe("dpo", "nova-micro/prod"),
        f"{B}/data/dpo/train.jsonl",
        f"{B}/out",
        LOCAL_ROLE_ARN,
        image=image,
    )
    job = scenario.wait("dpo-a", timeout=60)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = [line for line in _log("dpo-a") if "global_step:" in line]
    losses = [float(re.search(r"reduced_train_loss: ([\d.e-]+)", line).group(1)) for line in lines]
    accuracy = [float(re.search(r"rewards/accuracies: ([\d.]+)", line).group(1)) for line in lines]
    assert len(lines) == math.ceil(2 * 600 / 64)  # max_epochs x pairs / global_batch_size
    assert losses[0] == pytest.approx(math.log(2), abs=1e-6)  # the policy starts as its reference: margin 0
    assert losses[-1] < 0.7 * losses[0] and accuracy[-1] > accuracy[0]
    # held-out questions: the preferred answers are now the model's answers
    for name, model in (("dpo-base", "nova-micro/prod"), ("dpo-after", _checkpoint("dpo-a"))):
        scenario.submit(
            name,
            scenario.eval_recipe("byod", model),
            f"{B}/data/eval/",
            f"{B}/out",
            LOCAL_ROLE_ARN,
            data_type="S3Prefix",
        )
        assert scenario.wait(name, timeout=60)["TrainingJobStatus"] == "Completed"
    base = parse_eval_output(f"{B}/out/dpo-base/output/output.tar.gz", settings=load_settings()).metrics.get("em").value
    after = (
        parse_eval_output(f"{B}/out/dpo-after/output/output.tar.gz", settings=load_settings()).metrics.get("em").value
    )
    assert after > base + 0.3


def _checkpoint(job: str) -> str:
    import io
    import tarfile

    blob = boto3.client("s3").get_object(Bucket="novaflow-local", Key=f"out/{job}/output/output.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        handle = tar.extractfile("manifest.json")
        assert handle is not None
        return str(json.loads(handle.read())["checkpoint_s3_bucket"])


def test_cpt_adapts_the_model_to_the_corpus(twin, questions) -> None:
    texts = [{"text": f"{q['Title']}\n{q['Body']}"} for q in questions]
    scenario.put(f"{B}/data/cpt/cpt.jsonl", scenario.jsonl(texts))
    scenario.submit(
        "cpt-a", scenario.cpt_recipe("cpt", max_steps=30), f"{B}/data/cpt/cpt.jsonl", f"{B}/out", LOCAL_ROLE_ARN
    )
    job = scenario.wait("cpt-a", timeout=60)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    log = _log("cpt-a")
    steps = [line for line in log if "global_step:" in line]
    losses = [float(re.search(r"reduced_train_loss: ([\d.e-]+)", line).group(1)) for line in steps]
    assert len(steps) == 30 and losses[-1] < losses[0]
    before, after = map(float, re.search(r"perplexity: ([\d.]+) before, ([\d.]+) after", "\n".join(log)).groups())
    assert after < 0.8 * before  # measured on the twentieth of the corpus the model never trained on
    meta = json.loads(
        boto3.client("s3")
        .get_object(Bucket="customer-escrow-123456789012-smtj-local", Key="cpt-a/outputs/checkpoints/model.json")[
            "Body"
        ]
        .read()
    )
    assert meta["format"] == "novaflow-standin-lm-v1" and meta["method"] == "cpt"
    assert meta["held_out_perplexity"] == [pytest.approx(before, abs=0.005), pytest.approx(after, abs=0.005)]
