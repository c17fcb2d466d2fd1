"""Acceptance: emulated Nova jobs read recipe + data from S3 and write outputs novaflow's parser reads."""

from __future__ import annotations

import io
import json
import re
import tarfile

import boto3
import pytest

from novaflow.data.samples import SYSTEM_PROMPT, generate_stackoverflow_csv
from novaflow.evaluation.parser import parse_eval_output
from novaflow.local.aws.server import LOCAL_ROLE_ARN
from novaflow.local.emulator import scenario
from novaflow.settings import load_settings

B = "s3://novaflow-local"
KEYS = ["em", "qem", "f1", "f1_score_quasi", "rouge1", "rouge2", "rougeL", "bleu"]


@pytest.fixture(scope="module")
def questions(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    return scenario.load_questions(generate_stackoverflow_csv(tmp_path_factory.mktemp("so") / "so.csv", 1400, seed=5))


def _upload(questions: list[dict[str, str]]) -> None:
    train, rft, test = questions[:800], questions[800:1200], questions[1200:]
    scenario.put(
        f"{B}/data/train.jsonl",
        scenario.jsonl([scenario.converse_row(SYSTEM_PROMPT, q["Body"], q["Y"]) for q in train]),
    )
    scenario.put(
        f"{B}/data/rft/rft.jsonl",
        scenario.jsonl([scenario.rft_row(SYSTEM_PROMPT, q["Body"], q["Y"], q["Id"]) for q in rft]),
    )
    scenario.put(
        f"{B}/data/eval/gen_qa.jsonl",
        scenario.jsonl([scenario.gen_qa_row(SYSTEM_PROMPT, q["Body"], q["Y"], q["Id"]) for q in test]),
    )


def _evaluate(name: str, model: str) -> object:
    scenario.submit(
        name,
        scenario.eval_recipe("byod-eval", model),
        f"{B}/data/eval/",
        f"{B}/out",
        LOCAL_ROLE_ARN,
        data_type="S3Prefix",
    )
    job = scenario.wait(name, timeout=30)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return parse_eval_output(f"{B}/out/{name}/output/output.tar.gz", settings=load_settings())


def test_sft_then_evaluation_beats_the_base_model(twin, questions) -> None:
    _upload(questions)
    scenario.submit(
        "sft-a", scenario.sft_recipe("sft", max_steps=60), f"{B}/data/train.jsonl", f"{B}/out", LOCAL_ROLE_ARN
    )
    job = scenario.wait("sft-a", timeout=30)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    archive = boto3.client("s3").get_object(Bucket="novaflow-local", Key="out/sft-a/output/output.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(archive["Body"].read())) as tar:
        assert sorted(tar.getnames()) == ["manifest.json", "step_wise_training_metrics.csv"]
        manifest = json.loads(tar.extractfile("manifest.json").read())
        csv_lines = tar.extractfile("step_wise_training_metrics.csv").read().decode().splitlines()
    checkpoint = manifest["checkpoint_s3_bucket"]
    assert checkpoint == "s3://customer-escrow-123456789012-smtj-local/sft-a/outputs/checkpoints"
    assert csv_lines[0] == "step_number,epoch_number,training_loss" and len(csv_lines) == 61
    steps = [m for m in scenario.job_log("sft-a") if "global_step:" in m]
    assert len(steps) == 60
    losses = [float(re.search(r"reduced_train_loss: ([\d.e+-]+)", m).group(1)) for m in steps]
    assert sum(losses[-10:]) < sum(losses[:10])

    base = _evaluate("eval-base", "nova-lite-2/prod")
    tuned = _evaluate("eval-sft", checkpoint)
    for result in (base, tuned):
        assert set(KEYS) <= set(result.metrics.names())
        assert len(result.samples) == 200
    base_em, tuned_em = base.metrics.get("em").value, tuned.metrics.get("em").value
    assert tuned_em > base_em + 0.3
    # The base model rambles: its predictions are sentences; the tuned model answers with the label only.
    assert sum(len(s.prediction) > 12 for s in base.samples) > 100
    assert {s.prediction for s in tuned.samples} <= {"HQ", "LQ_EDIT", "LQ_CLOSE"}


def test_rft_invokes_the_reward_lambda_and_rewards_rise(twin, questions) -> None:
    from novaflow.reward.package import build_zip

    _upload(questions)
    function = boto3.client("lambda").create_function(
        FunctionName="SageMaker-novaflow-reward",
        Runtime="python3.12",
        Role=LOCAL_ROLE_ARN,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": build_zip()},
        Timeout=60,
    )
    scenario.submit(
        "sft-b", scenario.sft_recipe("sft", max_steps=10), f"{B}/data/train.jsonl", f"{B}/out", LOCAL_ROLE_ARN
    )
    assert scenario.wait("sft-b")["TrainingJobStatus"] == "Completed"
    start = "s3://customer-escrow-123456789012-smtj-local/sft-b/outputs/checkpoints"
    scenario.submit(
        "rft-b",
        scenario.rft_recipe("rft", start, function["FunctionArn"], max_steps=16, batch=128),
        f"{B}/data/rft/",
        f"{B}/out",
        LOCAL_ROLE_ARN,
        data_type="S3Prefix",
    )
    job = scenario.wait("rft-b", timeout=60)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = scenario.job_log("rft-b")
    invokes = [m for m in lines if f"Invoking reward Lambda {function['FunctionArn']} with" in m]
    assert len(invokes) == 64  # per step: 32 prompts x 4 generations = 128 samples = 4 Invokes of 32
    rewards = [float(re.search(r"critic/rewards/mean:([-\d.e]+)", m).group(1)) for m in lines if " step:" in m]
    assert len(rewards) == 16
    assert sum(rewards[-5:]) / 5 > sum(rewards[:5]) / 5


def test_reward_lambda_error_fails_the_rft_job(twin, questions) -> None:
    from novaflow.reward.package import build_zip

    _upload(questions)
    function = boto3.client("lambda").create_function(
        FunctionName="SageMaker-broken",
        Runtime="python3.12",
        Role=LOCAL_ROLE_ARN,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": build_zip()},
        Timeout=60,
    )
    twin.control.lambda_error("SageMaker-broken", "grader exploded")
    scenario.submit(
        "rft-c",
        scenario.rft_recipe("rft", "nova-lite-2/prod", function["FunctionArn"], max_steps=2),
        f"{B}/data/rft/",
        f"{B}/out",
        LOCAL_ROLE_ARN,
        data_type="S3Prefix",
    )
    job = scenario.wait("rft-c", timeout=30)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(f"AlgorithmError: reward Lambda {function['FunctionArn']} failed: ")
    assert "grader exploded" in job["FailureReason"]


def test_an_evaluation_task_the_emulator_lacks_fails_with_a_clear_reason(twin, questions) -> None:
    _upload(questions)
    recipe = scenario.eval_recipe("mmmu", "nova-lite-2/prod")
    recipe["evaluation"] = {"task": "mmmu", "strategy": "zs_cot", "metric": "accuracy"}
    scenario.submit("eval-mmmu", recipe, f"{B}/data/eval/", f"{B}/out", LOCAL_ROLE_ARN, data_type="S3Prefix")
    job = scenario.wait("eval-mmmu", timeout=20)
    assert (job["TrainingJobStatus"], job["FailureReason"]) == (
        "Failed",
        "ClientError: the local emulator cannot evaluate task='mmmu' (it has gen_qa, llm_judge, rubric_llm_judge, "
        "rft_eval and a packaged sample of mmlu, mmlu_pro, gpqa, bbh, math, ifeval, strong_reject)",
    )
