"""The single-stage flows on prepared S3 data: baseline-eval, sft, rft, verify-reward, deploy and cleanup.

One test per flow, so a failing stage fails alone: the data, the baseline, the SFT result and the deployment are
module-scoped fixtures that later stages start from (deploy starts from the SFT checkpoint, so a failing RFT
does not hide it). The embedded AWS keeps its state for the module and is reset after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from flows.deploy_stage import CleanupParams, DeployFlowParams, cleanup, deploy
from flows.params import DataParams, DeployParams, JobParams, RewardParams
from flows.single_stage import (
    BaselineEvalParams,
    RftParams,
    SftParams,
    VerifyRewardParams,
    baseline_eval,
    rft,
    sft,
    verify_reward,
)
from flows.stages.prepare_data import prepare_data
from flows.stages.run_log import RunLog
from novaflow.settings import load_settings
from tests.flows.helpers import FAST_WAIT, artifacts_of

ESCROW_PREFIX = "s3://customer-escrow-123456789012-smtj-"


@pytest.fixture(scope="module")
def module_aws(local_aws_session: Any) -> Iterator[Any]:
    yield local_aws_session
    local_aws_session.reset()


@pytest.fixture(scope="module")
def uploaded(module_aws: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The sample split, prepared and uploaded by the end-to-end flow's own data stage."""
    data = DataParams(sft_rows=300, eval_rows=100, rft_rows=100, augment_rft_with_sft=False, seed=3)
    work: Path = tmp_path_factory.mktemp("single")
    prepared = prepare_data(
        data, "nova-lite-2", work, "s3://novaflow-local/single", log=RunLog("single"), settings=load_settings()
    )
    return {fmt.value: uri for fmt, uri in prepared.uris.items()}


@pytest.fixture(scope="module")
def baseline(uploaded: dict[str, str]) -> dict[str, Any]:
    return baseline_eval(BaselineEvalParams(eval_uri=uploaded["eval"], wait=FAST_WAIT))


@pytest.fixture(scope="module")
def trained(uploaded: dict[str, str]) -> dict[str, Any]:
    return sft(SftParams(train_uri=uploaded["sft"], eval_uri=uploaded["eval"], wait=FAST_WAIT))


@pytest.fixture(scope="module")
def served(trained: dict[str, Any], uploaded: dict[str, str]) -> dict[str, Any]:
    return deploy(
        DeployFlowParams(
            run_name="single",
            checkpoint_uri=trained["checkpoint"],
            eval_uri=uploaded["eval"],
            deploy=DeployParams(smoke_rows=2),
        )
    )


def test_data_stage_uploads_one_file_per_format(uploaded: dict[str, str]) -> None:
    assert uploaded == {
        "sft": "s3://novaflow-local/single/data/sft/data/train.jsonl",
        "eval": "s3://novaflow-local/single/data/eval/data/gen_qa.jsonl",
        "rft": "s3://novaflow-local/single/data/rft/data/rft.jsonl",
    }


def test_baseline_eval_scores_the_base_model(baseline: dict[str, Any]) -> None:
    assert 0.0 <= baseline["em"] < 0.7  # the base model has not learned the labels


def test_sft_learns_the_labels(trained: dict[str, Any], baseline: dict[str, Any]) -> None:
    assert trained["checkpoint"].startswith(ESCROW_PREFIX)
    assert trained["metrics"]["em"] > baseline["em"] + 0.3  # the emulated SFT learned the labels


def test_rft_from_the_sft_checkpoint_verifies_its_reward_first(
    trained: dict[str, Any], uploaded: dict[str, str]
) -> None:
    state = rft(
        RftParams(
            train_uri=uploaded["rft"],
            checkpoint_uri=trained["checkpoint"],
            eval_uri=uploaded["eval"],
            wait=FAST_WAIT,
            rft=JobParams(overrides={"max_steps": 5}),
        ),
        return_state=True,
    )
    assert state.is_completed(), state.message
    reinforced = state.result()
    assert reinforced["checkpoint"].startswith(ESCROW_PREFIX) and reinforced["checkpoint"] != trained["checkpoint"]
    assert "reward-verification" in artifacts_of(state.state_details.flow_run_id)


def test_verify_reward_on_the_rft_rows(uploaded: dict[str, str]) -> None:
    checked = verify_reward(VerifyRewardParams(rows_uri=uploaded["rft"], deploy=False))
    assert checked["ok"] is True


def test_deploy_serves_the_checkpoint_and_passes_its_smoke_test(served: dict[str, Any]) -> None:
    assert set(served) == {"target", "invoke_id", "smoke"}
    assert (served["target"], served["invoke_id"]) == ("sagemaker", "novaflow-single")
    assert served["smoke"].startswith("smoke test: 2/2 answers parsed")


def test_cleanup_removes_the_deployment(served: dict[str, Any]) -> None:
    removed = cleanup(CleanupParams(deployment=served["invoke_id"]))
    assert any(r.startswith("sagemaker endpoint novaflow-single") for r in removed["removed"])
    assert boto3.client("sagemaker").list_endpoints()["Endpoints"] == []


@pytest.mark.slow
def test_rft_on_a_teams_own_rows_grades_their_own_labels(trained: dict[str, Any], uploaded: dict[str, str]) -> None:
    """The single-stage flow takes a team's rows: without reward.labels, the label grader grades their reference
    answers, never the committed sample's HQ / LQ_EDIT / LQ_CLOSE (which none of these rows carries)."""
    s3, bucket = boto3.client("s3"), "novaflow-local"
    renamed = {"HQ": "keep", "LQ_EDIT": "edit", "LQ_CLOSE": "close"}
    rows = [json.loads(line) for line in _read(s3, uploaded["rft"]).splitlines() if line.strip()]
    own = []
    for row in rows:
        text = json.dumps(row)
        for old, new in renamed.items():
            text = text.replace(f'"{old}"', f'"{new}"').replace(f"{old}, ", f"{new}, ").replace(f"{old}.", f"{new}.")
        own.append(text)
    key = "single/own/rft.jsonl"
    s3.put_object(Bucket=bucket, Key=key, Body=("\n".join(own) + "\n").encode())
    function = "SageMaker-novaflow-own-labels"
    state = rft(
        RftParams(
            run_name="own-labels",
            train_uri=f"s3://{bucket}/{key}",
            checkpoint_uri=trained["checkpoint"],
            wait=FAST_WAIT,
            reward=RewardParams(function_name=function),
            rft=JobParams(overrides={"max_steps": 5}),
        ),
        return_state=True,
    )
    assert state.is_completed(), state.message
    expected = ",".join(dict.fromkeys(json.loads(line)["reference_answer"] for line in own))
    assert set(expected.split(",")) == {"keep", "edit", "close"}
    variables = boto3.client("lambda").get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    assert variables["REWARD_LABELS"] == expected


def _read(s3: Any, uri: str) -> str:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
