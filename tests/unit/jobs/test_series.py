"""Training curves from the log lines and the step-wise CSV, in the formats the Nova containers write."""

from __future__ import annotations

from novaflow.jobs.series import parse_step_wise_csv, series_from_sources
from novaflow.local.emulator.joblog import rft_step_line, sft_step_line


def _sft_lines() -> list[str]:
    return [
        "[2026-01-28 17:48:54,839] [INFO] " + sft_step_line(0, step, 3, 1e-5 * step, 32, loss, 0.5, 32 * step)
        for step, loss in ((1, 1.234567891), (2, 0.987654321), (3, 0.5))
    ] + ["[2026-01-28 17:48:55,000] [INFO] Saved checkpoint to s3://escrow/job/outputs/checkpoints"]


def test_sft_loss_from_logs_alone() -> None:
    series = series_from_sources("sft", "job", logs=_sft_lines(), csv=None)
    assert series.steps == [1, 2, 3] and series.sources == ["cloudwatch-logs"]
    assert series.points("loss") == [(1, 1.23457), (2, 0.987654), (3, 0.5)]  # the log prints 6 digits
    assert series.points("lr") == [(1, 1e-05), (2, 2e-05), (3, 3e-05)]


def test_the_csv_value_wins_where_both_have_one() -> None:
    csv = "step_number,epoch_number,training_loss\n1,0,1.234567891\n2,0,0.987654321\n3,0,0.5\n4,1,0.25\n"
    series = series_from_sources("sft", "job", logs=_sft_lines(), csv=csv)
    assert series.sources == ["step_wise_training_metrics.csv", "cloudwatch-logs"]
    assert series.points("loss") == [(1, 1.234567891), (2, 0.987654321), (3, 0.5), (4, 0.25)]
    assert series.points("lr") == [(1, 1e-05), (2, 2e-05), (3, 3e-05)]  # only the logs have it
    assert series.points("epoch") == [(1, 0.0), (2, 0.0), (3, 0.0), (4, 1.0)]


def test_rft_reward_spread_kl_and_length_from_verl_lines() -> None:
    metrics = {
        "critic/rewards/mean": 0.25,
        "critic/rewards/max": 1.0,
        "critic/rewards/min": -1.0,
        "actor/reward_kl_penalty": 0.0123,
        "actor/entropy": 0.9,
        "response_length/mean": 2.5,
    }
    lines = [f"[2026-02-13 15:15:07,022] [INFO] \x1b[36m{rft_step_line(s, 0, metrics)}\x1b[0m" for s in (1, 2)]
    csv = "step_number,epoch_number,train_reward_mean,policy_entropy,kl\n1,0,0.25,0.9,0.0123\n2,0,0.25,0.9,0.0123\n"
    series = series_from_sources("rft", "job", logs=lines, csv=csv)
    assert series.points("reward_mean") == [(1, 0.25), (2, 0.25)]
    assert series.points("reward_min") == [(1, -1.0), (2, -1.0)] and series.points("reward_max") == [(1, 1.0), (2, 1.0)]
    assert series.points("kl") == [(1, 0.0123), (2, 0.0123)]
    assert series.points("response_length") == [(1, 2.5), (2, 2.5)]


def test_nothing_to_read_is_an_empty_series() -> None:
    series = series_from_sources("sft", "job", logs=["no metrics here"], csv=None)
    assert series.empty and series.points("loss") == []
    assert parse_step_wise_csv("a,b\n1,2\n").empty
