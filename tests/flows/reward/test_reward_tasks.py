"""The reward tasks inside a flow: deploy, then verify with the distribution published as a table artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect import flow
from prefect.artifacts import Artifact

from novaflow.errors import RewardError
from novaflow.settings import load_settings
from tasks.reward import deploy_reward_lambda_task, verify_reward_task

PREDS = [{"prediction": "HQ", "gold": "HQ"}, {"prediction": "LQ_CLOSE", "gold": "LQ_EDIT"}]


@flow
def deploy_and_verify(predictions: str, require_ok: bool = True) -> dict:
    reward = deploy_reward_lambda_task(settings=load_settings())
    verification = verify_reward_task(
        predictions=predictions,
        function_name=reward.function_name,
        require_ok=require_ok,
        key_suffix="test",
        settings=load_settings(),
    )
    return {"arn": reward.arn, "ok": verification.ok}


@pytest.mark.flow
def test_verification_table_artifact(aws: object, tmp_path: Path) -> None:
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(p) + "\n" for p in PREDS))
    result = deploy_and_verify(str(preds))
    assert result["ok"] and result["arn"].endswith(":function:SageMaker-novaflow-reward:1")
    artifact = Artifact.get("reward-verification-test")
    assert artifact is not None and artifact.type == "table"
    rows = json.loads(artifact.data)
    assert [(r["source"], r["runner"], r["n"], r["mean"], r["share_max"]) for r in rows] == [
        ("predictions", "local", 2, 0.0, 0.5),
        ("predictions", "lambda", 2, 0.0, 0.5),
    ]
    assert artifact.description.startswith("**Reward verification: OK**")


@pytest.mark.flow
def test_failed_verification_fails_the_task(aws: object, tmp_path: Path) -> None:
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"prediction": "HQ", "gold": "??"}) + "\n")
    with pytest.raises(RewardError, match="reward verification failed: predictions: 1 of 1 samples invalid"):
        deploy_and_verify(str(preds))
