"""The dpo and cpt flows on SMTJ: preference pairs and raw text prepared by novaflow, a training job on the
technique's image, and an evaluation of the result; the end-to-end flow with ``stages: [sft, dpo]``."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import boto3
import pytest

from flows.end_to_end import end_to_end
from flows.params import JobParams
from flows.single_stage import BaselineEvalParams, CptParams, DpoParams, baseline_eval, cpt, dpo
from novaflow.data.io import upload_prepared
from novaflow.data.prepare import prepare_dataset
from novaflow.data.samples import CASE_STUDY_COLUMNS, SAMPLE_CSV, SYSTEM_PROMPT
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.data.splits import split_dataset
from novaflow.registry.packages import default_group, list_versions
from novaflow.settings import load_settings
from tests.flows.helpers import FAST_WAIT, artifacts_of, small_params, training_jobs

LABELS = ("HQ", "LQ_EDIT", "LQ_CLOSE")
CPT_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/nova-cpt:given-by-aws"


def _upload(source: DatasetSource, fmt: str, model: str, out: Path, prefix: str) -> str:
    prepared = prepare_dataset(source, fmt, model, out, settings=load_settings())
    return upload_prepared(prepared, f"s3://novaflow-local/{prefix}", settings=load_settings())[prepared.data_file.name]


@pytest.fixture
def data(aws, tmp_path) -> dict[str, str]:
    """Preference pairs (the right label preferred over another), raw question text, and gen_qa rows."""
    split = split_dataset(
        DatasetSource(path=str(SAMPLE_CSV)),
        {"train": 400, "eval": 120},
        tmp_path / "s",
        seed=5,
        settings=load_settings(),
    )
    with split.files["train"].open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    pairs = tmp_path / "pairs.csv"
    with pairs.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["Body", "chosen", "rejected"])
        writer.writeheader()
        for row in rows:
            other = LABELS[(LABELS.index(row["Y"]) + 1) % 3]
            writer.writerow({"Body": row["Body"], "chosen": row["Y"], "rejected": other})
    eval_source = DatasetSource(
        path=str(split.files["eval"]), columns=ColumnMap(**CASE_STUDY_COLUMNS), system_prompt=SYSTEM_PROMPT
    )
    pair_source = DatasetSource(
        path=str(pairs),
        columns=ColumnMap(query="Body", chosen="chosen", rejected="rejected"),
        system_prompt=SYSTEM_PROMPT,
    )
    text_source = DatasetSource(path=str(split.files["train"]), columns=ColumnMap(text="Body"))
    return {
        "dpo": _upload(pair_source, "dpo", "nova-micro", tmp_path / "dpo", "pref/dpo"),
        "eval-micro": _upload(eval_source, "eval", "nova-micro", tmp_path / "em", "pref/eval-micro"),
        "cpt": _upload(text_source, "cpt", "nova-lite-2", tmp_path / "cpt", "pref/cpt"),
        "eval": _upload(eval_source, "eval", "nova-lite-2", tmp_path / "e", "pref/eval"),
    }


def test_the_dpo_flow_trains_toward_the_preferred_answers_and_evaluates(data) -> None:
    base = baseline_eval(BaselineEvalParams(model="nova-micro", eval_uri=data["eval-micro"], wait=FAST_WAIT))
    state = dpo(
        DpoParams(
            run_name="pref",
            model="nova-micro",
            train_uri=data["dpo"],
            eval_uri=data["eval-micro"],
            wait=FAST_WAIT,
            dpo=JobParams(overrides={"max_epochs": 3}),
        ),
        return_state=True,
    )
    assert state.is_completed(), state.message
    result = state.result()
    sm = boto3.client("sagemaker")
    (job,) = [j for j in training_jobs() if "dpo-lora" in j["TrainingJobName"]]
    described = sm.describe_training_job(TrainingJobName=job["TrainingJobName"])
    assert described["AlgorithmSpecification"]["TrainingImage"].endswith("nova-fine-tune-repo:SM-TJ-DPO-latest")
    assert described["ResourceConfig"]["InstanceType"] == "ml.g5.48xlarge"
    # the evaluation after DPO: the model moved toward the preferred (right) answers
    assert result["metrics"]["em"] > base["em"] + 0.2, (base, result["metrics"])
    (version,) = list_versions(default_group("nova-micro", "pref"), settings=load_settings())
    assert version.lineage["method"] == "dpo_lora" and version.lineage["stage"] == "dpo"
    assert version.metrics["em"] == pytest.approx(result["metrics"]["em"], abs=1e-6)
    assert "run-summary-pref" in artifacts_of(state.state_details.flow_run_id)


def test_the_cpt_flow_adapts_to_the_corpus_and_evaluates(data) -> None:
    refused = cpt(CptParams(run_name="corpus", train_uri=data["cpt"], wait=FAST_WAIT), return_state=True)
    assert refused.is_failed()
    assert "AWS publishes no SageMaker training job image for CPT" in str(refused.message)
    assert training_jobs() == []  # refused before anything was created

    state = cpt(
        CptParams(
            run_name="corpus",
            train_uri=data["cpt"],
            eval_uri=data["eval"],
            wait=FAST_WAIT,
            cpt=JobParams(image_uri=CPT_IMAGE, overrides={"max_steps": 30}),
        ),
        return_state=True,
    )
    assert state.is_completed(), state.message
    result = state.result()
    (job,) = [j for j in training_jobs() if "-cpt-" in j["TrainingJobName"]]
    logs = boto3.client("logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=job["TrainingJobName"] + "/"
    )
    events = logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamName=streams["logStreams"][0]["logStreamName"],
        startFromHead=True,
    )
    lines = [e["message"] for e in events["events"]]
    (line,) = [line for line in lines if "Held-out perplexity" in line]
    before, after = (float(x) for x in re.findall(r"([\d.]+) (?:before|after)", line))
    assert after < before  # the model learnt the corpus's language
    assert set(result["metrics"]) >= {"em", "f1"}  # the evaluation after CPT ran and was reported


def test_end_to_end_stages_sft_then_dpo_each_from_the_one_before(aws, tmp_path) -> None:
    params = small_params("sft-dpo", tmp_path, model="nova-micro", stages=["sft", "dpo"], skip=["deploy"])
    state = end_to_end(params, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert set(result["metrics"]) == {"baseline", "post-sft", "post-dpo"}
    sft_version, dpo_version = list_versions(default_group("nova-micro", "sft-dpo"), settings=load_settings())
    assert (sft_version.lineage["stage"], dpo_version.lineage["stage"]) == ("sft", "dpo")
    assert dpo_version.lineage["source"] == sft_version.checkpoint_uri  # DPO started from the SFT model
    dpo_job = boto3.client("sagemaker").describe_training_job(TrainingJobName=result["jobs"]["dpo"])
    assert dpo_job["AlgorithmSpecification"]["TrainingImage"].endswith(":SM-TJ-DPO-latest")
    assert dpo_job["HyperParameters"]["base_model_location"] == sft_version.checkpoint_uri
    # the preference pairs came from the run's own rows (each row's answer over another row's)
    assert dpo_version.lineage["data:train"].endswith("/data/dpo/data/train.jsonl")
