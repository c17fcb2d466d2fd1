from __future__ import annotations

import math

import pytest

from novaflow.errors import JobError
from novaflow.jobs.logs import metrics_frame, parse_metric_line
from novaflow.jobs.records import JobRecord, JobStatus, map_status
from novaflow.jobs.spec import JOB_NAME_RE, JobSpec

SFT_BAR = (
    "[2026-03-01 21:16:40,581] [INFO] #015Epoch 1: : 3it [00:32, 10.68s/it, v_num=1feb, "
    "reduced_train_loss=2.66e-5, global_step=6.000, consumed_samples=448.0, train_step_timing in s=10.10, "
    'batch_time=10.80, samples/sec=5.920]{"timestamp": "2026-03-01 21:16:40", "epoch": 1,"stepId": 2, '
    '"stepType": "TRAIN","totalProcessedTokenCount": 3402}'
)
SFT_MEGATRON = (
    "[2026-01-28 17:48:54,839] [INFO] Training epoch 0, iteration 8/9 | lr: 5.625e-06 | "
    "global_batch_size: 32 | global_step: 8 | reduced_train_loss: 0.0013 | train_step_timing in s: 75.02 "
    "| consumed_samples: 28"
)
RFT_VERL = (
    "[2026-02-13 15:15:07,022] [INFO] \x1b[36m(TaskRunner pid=12647)\x1b[0m step:295 - "
    "global_seqlen/mean:4009.2 - actor/entropy:2.5429 - actor/reward_kl_penalty:-0.2924 - "
    "actor/reward_kl_penalty_coeff:0.02 - actor/pg_loss:0.0 - actor/pg_clipfrac:0.0 - actor/ppo_kl:0.0 - "
    "actor/grad_norm:0.3703 - perf/max_memory_allocated_gb:80.46 - actor/lr:1e-05 - "
    "training/global_step:295 - training/epoch:5 - critic/score/mean:0.8047 - critic/score/max:1.0 - "
    "critic/score/min:-1.0 - critic/rewards/mean:0.8314 - critic/rewards/max:1.0977 - "
    "critic/rewards/min:-0.9991 - critic/advantages/mean:0.00265 - response_length/mean:4.76 - "
    "response_length/clip_ratio:0.0 - perf/throughput:38.81"
)
RFT_SMHP = (
    "Training epoch 0, iteration 119/999 | lr: 7e-07 | global_batch_size: 256 | global_step: 119 | "
    "reduced_train_loss: 0.007075 | prompt_length: 7.26e+03 | completion_length: 635.2 | "
    "global_seq_length: 7.895e+03 | adv: 0.02718 | reasoning_length_size: 0 | train_rm_score: 0.6797 | "
    "kl: 0.0008378 | ent: 0.1944 | clipfrac: 0.004458 | train_step_timing in s: 1.232e+03 | "
    "consumed_samples: 30720"
)


def test_contract_sample_lines_parse_exactly() -> None:
    assert parse_metric_line(SFT_BAR) == {"step": 6, "loss": 2.66e-5}
    assert parse_metric_line(SFT_MEGATRON) == {"step": 8, "loss": 0.0013, "lr": 5.625e-06}
    assert parse_metric_line(RFT_VERL) == {
        "step": 295,
        "lr": 1e-05,
        "reward_mean": 0.8314,
        "reward_max": 1.0977,
        "reward_min": -0.9991,
        "score_mean": 0.8047,
        "kl": -0.2924,
        "entropy": 2.5429,
        "response_length": 4.76,
    }
    assert parse_metric_line(RFT_SMHP) == {
        "step": 119,
        "loss": 0.007075,
        "lr": 7e-07,
        "reward_mean": 0.6797,
        "kl": 0.0008378,
        "entropy": 0.1944,
        "response_length": 635.2,
    }


@pytest.mark.parametrize(
    "line",
    [
        "moto: training job x started",
        "global_step: 3 | train_step_timing in s: 1.0",
        "min_lr: 1e-6 reduced_train_loss: 0.5",
    ],
)
def test_non_metric_lines_are_skipped(line: str) -> None:
    assert parse_metric_line(line) is None


def test_metrics_frame_is_a_sorted_series_without_repeated_steps() -> None:
    lines = [SFT_MEGATRON, SFT_BAR, "noise", SFT_MEGATRON.replace("0.0013", "0.0011")]
    frame = metrics_frame(lines)
    assert list(frame.columns) == ["step", "loss", "lr"]
    assert frame["step"].tolist() == [6, 8]
    assert frame["loss"].tolist() == [2.66e-5, 0.0011]
    assert math.isnan(frame["lr"][0]) and frame["lr"][1] == 5.625e-06
    assert metrics_frame([]).empty


def spec(**kw: object) -> JobSpec:
    base = {
        "model": "nova-lite-2",
        "method": "sft_lora",
        "train_uri": "s3://b/train.jsonl",
        "output_uri": "s3://b/o",
        "role_arn": "arn:aws:iam::123456789012:role/r",
        "region": "us-east-1",
    }
    return JobSpec(**{**base, **kw})


def test_name_is_deterministic_readable_and_sensitive_to_every_field() -> None:
    a, b = spec(), spec()
    assert a.job_name() == b.job_name() and a.job_name().startswith("nova-lite-2-sft-lora-")
    names = {
        a.job_name(),
        spec(overrides={"lr": 2e-5}).job_name(),
        spec(train_uri="s3://b/other.jsonl").job_name(),
        spec(instance_count=8).job_name(),
        spec(tags={"x": "y"}).job_name(),
        spec(kms_key_id="alias/k").job_name(),
    }
    assert len(names) == 6


def test_long_prefix_is_truncated_to_a_valid_63_char_name() -> None:
    name = spec(name_prefix="My_Experiment with a very long and descriptive name!! " * 3).job_name("r12")
    assert len(name) <= 63 and JOB_NAME_RE.match(name) and name.endswith("-r12")
    assert name.startswith("My-Experiment-with-a-very-long")


def test_recipe_file_content_is_hashed(tmp_path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("a: 1\n")
    first = spec(recipe_file=str(f)).job_name()
    f.write_text("a: 2\n")
    assert spec(recipe_file=str(f)).job_name() != first


def test_status_mapping_keeps_stopped_apart_and_rejects_unknowns() -> None:
    assert map_status("Stopped") is JobStatus.STOPPED and map_status("Stopping") is JobStatus.STOPPING
    assert map_status("Failed") is JobStatus.FAILED and map_status("Succeeded") is JobStatus.COMPLETED
    assert not JobStatus.STOPPING.terminal and JobStatus.STOPPED.terminal
    with pytest.raises(JobError, match=r"Unknown job status 'Paused'"):
        map_status("Paused")


def test_record_round_trip(tmp_path) -> None:
    rec = JobRecord(
        platform="SMTJ",
        name="n",
        spec_hash="h",
        method="sft_lora",
        model="nova-lite-2",
        data={"train": "s3://b/t"},
        output_uri="s3://b/o",
        status="Completed",
    )
    path = rec.save(tmp_path / "records" / "n.json")
    assert JobRecord.load(path) == rec
    path.write_text("{not json")
    with pytest.raises(JobError, match=r"is not a valid novaflow job record"):
        JobRecord.load(path)
