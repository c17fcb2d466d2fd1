"""The stand-in model: base rule, hashed features, training, checkpoint round trip; log line formats."""

from __future__ import annotations

import re

import numpy as np
import pytest

from novaflow.local.emulator import emulate_sft
from novaflow.local.emulator.joblog import rft_step_line, sft_step_line, stamp
from novaflow.local.models.classifier import (
    DIM,
    Batch,
    LinearPolicy,
    base_answer,
    feature_ids,
    is_base_model,
    labels_from_system,
)
from reward_lambda.labels import extract_label

SYSTEM = "Classify the question. Reply with the label only - HQ, LQ_EDIT or LQ_CLOSE - and nothing else."


def test_labels_are_read_from_the_system_prompt_in_order() -> None:
    assert labels_from_system(SYSTEM) == ["HQ", "LQ_EDIT", "LQ_CLOSE"]
    assert labels_from_system("Answer YES_PLEASE or NO_THANKS. ONLY the LABEL.") == ["YES_PLEASE", "NO_THANKS"]
    assert labels_from_system("no labels here") == ["HQ", "LQ_EDIT", "LQ_CLOSE"]


def test_base_model_is_deterministic_verbose_and_leans_to_the_first_label() -> None:
    queries = [f"How do I parse item {i} in a loop?" for i in range(400)]
    answers = [base_answer(SYSTEM, q) for q in queries]
    assert answers == [base_answer(SYSTEM, q) for q in queries]
    labels = [extract_label(a) for a in answers]
    assert None not in labels, "every base answer names exactly one label"
    first = labels.count("HQ") / len(labels)
    terse = sum(a in {"HQ", "LQ_EDIT", "LQ_CLOSE"} for a in answers) / len(answers)
    assert first > 0.7
    assert 0 < terse < 0.3


def test_feature_ids_are_stable_sorted_and_include_the_bias() -> None:
    ids = feature_ids("Hello <code>world</code> hello")
    assert ids[0] == 0 and np.all(np.diff(ids) > 0) and ids.max() < DIM
    assert np.array_equal(ids, feature_ids("hello <CODE>World</code> HELLO"))


def test_sft_learns_a_token_rule_and_the_checkpoint_round_trips() -> None:
    rng = np.random.default_rng(0)
    users, answers = [], []
    for _ in range(600):
        label = ["HQ", "LQ_EDIT", "LQ_CLOSE"][rng.integers(3)]
        cue = {"HQ": "traceback code pre", "LQ_EDIT": "plz help urgent", "LQ_CLOSE": "why"}[label]
        users.append(f"question {rng.integers(1000)} {cue} words {rng.integers(1000)}")
        answers.append(label)
    hp = emulate_sft.sft_hyperparameters(
        {"max_steps": 60, "global_batch_size": 32, "optim_config": {"lr": 1e-5}}, len(users)
    )
    policy, history = emulate_sft.train_sft(users, answers, hp, seed=1)
    assert [h[0] for h in history] == list(range(1, 61))
    assert np.mean([h[2] for h in history[-10:]]) < np.mean([h[2] for h in history[:10]])
    assert policy.answer(["a new question with traceback code pre", "plz help urgent", "why"]) == [
        "HQ",
        "LQ_EDIT",
        "LQ_CLOSE",
    ]
    files = policy.to_files()
    again = LinearPolicy.from_files(files["model.npz"], files["model.json"])
    assert again.classes == policy.classes == ["HQ", "LQ_CLOSE", "LQ_EDIT"]
    batch = Batch.from_texts(users[:20])
    assert np.allclose(again.logits(batch), policy.logits(batch), atol=1e-4)


def test_checkpoint_of_another_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="not a novaflow-standin-v1 checkpoint"):
        LinearPolicy.from_files(b"", b'{"format": "other", "dim": 1}')


def test_base_model_paths() -> None:
    assert is_base_model("nova-lite-2/prod") and is_base_model(None)
    assert not is_base_model("s3://customer-escrow-123456789012-smtj-local/j/outputs/checkpoints")


def test_step_lines_match_the_contract_regexes() -> None:
    sft = sft_step_line(0, 8, 9, 5.625e-06, 32, 0.0013, 75.02, 256)
    assert sft == (
        "Training epoch 0, iteration 8/9 | lr: 5.625e-06 | global_batch_size: 32 | global_step: 8 | "
        "reduced_train_loss: 0.0013 | train_step_timing in s: 75.02 | consumed_samples: 256"
    )
    assert int(float(re.search(r"global_step[=:]\s*([\d.]+)", sft).group(1))) == 8
    assert re.search(r"reduced_train_loss[=:]\s*(-?[\d.]+(?:[eE][+-]?\d+)?)", sft).group(1) == "0.0013"
    rft = rft_step_line(
        3,
        0,
        {
            "critic/rewards/mean": 0.8314,
            "actor/entropy": 2.5429,
            "actor/reward_kl_penalty": -0.2924,
            "response_length/mean": 4.76,
        },
    )
    assert rft == (
        "(TaskRunner pid=1) step:3 - actor/entropy:2.5429 - actor/reward_kl_penalty:-0.2924 - "
        "training/global_step:3 - training/epoch:0 - critic/rewards/mean:0.8314 - "
        "response_length/mean:4.76"
    )
    assert re.search(r"critic/rewards/mean[=:]\s*(-?[\d.]+(?:[eE][+-]?\d+)?)", rft).group(1) == "0.8314"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", stamp(0.0)) and stamp(0.0).startswith("1970")


def test_learning_rate_schedule_warms_up_then_decays_to_min() -> None:
    assert emulate_sft.schedule(5, 100, 1e-5, 10, 1e-6) == pytest.approx(5e-6)
    assert emulate_sft.schedule(10, 100, 1e-5, 10, 1e-6) == pytest.approx(1e-5)
    assert emulate_sft.schedule(100, 100, 1e-5, 10, 1e-6) == pytest.approx(1e-6)
