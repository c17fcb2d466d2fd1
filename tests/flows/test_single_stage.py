"""The single-stage flows on prepared S3 data: baseline-eval, sft, rft, verify-reward, deploy and cleanup."""

from __future__ import annotations

import boto3
import pytest

from flows.deploy_stage import CleanupParams, DeployFlowParams, cleanup, deploy
from flows.params import DeployParams, JobParams
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
from novaflow.data.io import upload_prepared
from novaflow.data.prepare import prepare_dataset
from novaflow.data.samples import CASE_STUDY_COLUMNS, SAMPLE_CSV, SYSTEM_PROMPT
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.data.splits import split_dataset
from tests.flows.helpers import FAST_WAIT, artifacts_of


@pytest.fixture
def uploaded(aws, tmp_path) -> dict[str, str]:
    split = split_dataset(
        DatasetSource(path=str(SAMPLE_CSV)), {"sft": 300, "eval": 100, "rft": 100}, tmp_path / "splits", seed=3
    )
    uris = {}
    for name in ("sft", "eval", "rft"):
        source = DatasetSource(
            path=str(split.files[name]), columns=ColumnMap(**CASE_STUDY_COLUMNS), system_prompt=SYSTEM_PROMPT
        )
        prepared = prepare_dataset(source, name, "nova-lite-2", tmp_path / name)
        uris[name] = upload_prepared(prepared, f"s3://novaflow-local/single/{name}")[prepared.data_file.name]
    return uris


def test_single_stage_flows_chain_through_s3(uploaded) -> None:
    base = baseline_eval(BaselineEvalParams(eval_uri=uploaded["eval"], wait=FAST_WAIT))
    trained = sft(SftParams(train_uri=uploaded["sft"], eval_uri=uploaded["eval"], wait=FAST_WAIT))
    assert trained["checkpoint"].startswith("s3://customer-escrow-123456789012-smtj-")
    assert trained["metrics"]["em"] > base["em"] + 0.3  # the emulated SFT learned the labels

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
    assert reinforced["checkpoint"] != trained["checkpoint"]
    assert "reward-verification" in artifacts_of(state.state_details.flow_run_id)

    checked = verify_reward(VerifyRewardParams(rows_uri=uploaded["rft"], deploy=False))
    assert checked["ok"] is True

    served = deploy(
        DeployFlowParams(
            run_name="single",
            checkpoint_uri=reinforced["checkpoint"],
            eval_uri=uploaded["eval"],
            deploy=DeployParams(smoke_rows=2),
        )
    )
    assert served == {"target": "sagemaker", "invoke_id": "novaflow-single", "smoke": served["smoke"]} and served[
        "smoke"
    ].startswith("smoke test: 2/2 answers parsed")
    removed = cleanup(CleanupParams(deployment="novaflow-single"))
    assert any(r.startswith("sagemaker endpoint novaflow-single") for r in removed["removed"])
    assert boto3.client("sagemaker").list_endpoints()["Endpoints"] == []
