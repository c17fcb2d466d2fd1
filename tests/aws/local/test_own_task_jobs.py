"""The emulator on a team's own task: free-form answers, a user reward through the Lambda API, judge,
rft_eval and benchmark evaluations - each archive parsed and checked against a recomputation from its rows."""

from __future__ import annotations

import base64
import json
import random
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from novaflow.evaluation.parser import parse_eval_output
from novaflow.local.aws.server import LOCAL_ROLE_ARN
from novaflow.local.emulator import scenario
from novaflow.local.models import benchmarks, judge
from novaflow.local.models.classifier import base_answer
from novaflow.reward.deploy import deploy_reward_lambda
from novaflow.reward.source import build_reward_zip, load_reward_source
from novaflow.settings import load_settings
from reward_lambda.wrapper import grade_samples

B = "s3://novaflow-local"
EXACT = """
import re

def grade(response, reference_answer, sample):
    numbers = re.findall(r"-?\\d+", response)
    return {"reward": 1.0 if numbers and numbers[-1] == reference_answer else 0.0, "has_number": float(bool(numbers))}
"""


def _grade(response: str, reference: Any, sample: Any) -> dict[str, float]:
    numbers = re.findall(r"-?\d+", response)
    return {"reward": 1.0 if numbers and numbers[-1] == reference else 0.0, "has_number": float(bool(numbers))}


def arithmetic(n: int, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b, op = rng.randint(2, 99), rng.randint(2, 99), rng.choice("+-*")
        rows.append((f"q{i}", f"What is {a} {op} {b}?", str({"+": a + b, "-": a - b, "*": a * b}[op])))
    return rows


@pytest.fixture(scope="module")
def rows() -> list[tuple[str, str, str]]:
    return arithmetic(700, seed=11)


def _upload(rows: list[tuple[str, str, str]]) -> None:
    train, rft, test = rows[:400], rows[400:550], rows[550:]
    scenario.put(f"{B}/own/train.jsonl", scenario.jsonl([scenario.converse_row("", q, a) for _, q, a in train]))
    scenario.put(f"{B}/own/rft/rft.jsonl", scenario.jsonl([scenario.rft_row("", q, a, i) for i, q, a in rft]))
    scenario.put(f"{B}/own/eval/gen_qa.jsonl", scenario.jsonl([scenario.gen_qa_row("", q, a, i) for i, q, a in test]))
    scenario.put(f"{B}/own/eval-rft/rft.jsonl", scenario.jsonl([scenario.rft_row("", q, a, i) for i, q, a in test]))


def _user_reward(tmp_path: Path, code: str = EXACT, name: str = "SageMaker-own-reward") -> str:
    source = load_reward_source(_write(tmp_path / "exact.py", code), settings=load_settings())
    return deploy_reward_lambda(
        function_name=name,
        zip_bytes=build_reward_zip(source),
        environment={},
        poll_seconds=0.01,
        settings=load_settings(),
    ).function_arn


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _eval(name: str, recipe: dict[str, Any], train_uri: str | None = None) -> Any:
    scenario.submit(name, recipe, train_uri or f"{B}/own/eval/", f"{B}/out", LOCAL_ROLE_ARN, data_type="S3Prefix")
    job = scenario.wait(name, timeout=60)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return parse_eval_output(f"{B}/out/{name}/output/output.tar.gz", settings=load_settings())


def _task_recipe(task: str, strategy: str, model: str, **extra: Any) -> dict[str, Any]:
    recipe = scenario.eval_recipe(f"own-{task}", model)
    recipe["evaluation"] = {"task": task, "strategy": strategy, "metric": "all"}
    recipe.update(extra)
    return recipe


def test_free_form_answers_are_learned_and_rft_raises_the_users_reward(twin, rows, tmp_path) -> None:
    _upload(rows)
    scenario.submit(
        "own-sft", scenario.sft_recipe("sft", max_steps=30), f"{B}/own/train.jsonl", f"{B}/out", LOCAL_ROLE_ARN
    )
    job = scenario.wait("own-sft", timeout=60)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert any("retrieval-and-programs model (free-form answers)" in line for line in scenario.job_log("own-sft"))
    checkpoint = "s3://customer-escrow-123456789012-smtj-local/own-sft/outputs/checkpoints"
    base = _eval("own-eval-base", scenario.eval_recipe("e", "nova-lite-2/prod"))
    tuned = _eval("own-eval-sft", scenario.eval_recipe("e", checkpoint))
    assert base.metrics.get("em").value < 0.05
    assert tuned.metrics.get("em").value > 0.95
    seen = {a for _, _, a in rows[:400]}
    assert sum(s.prediction == s.gold and s.gold not in seen for s in tuned.samples) > 20  # answers never trained on

    arn = _user_reward(tmp_path)
    scenario.submit(
        "own-rft",
        scenario.rft_recipe("rft", "nova-lite-2/prod", arn, max_steps=12, generations=4, batch=64),
        f"{B}/own/rft/",
        f"{B}/out",
        LOCAL_ROLE_ARN,
        data_type="S3Prefix",
    )
    job = scenario.wait("own-rft", timeout=120)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = scenario.job_log("own-rft")
    assert sum(f"Invoking reward Lambda {arn} with" in m for m in lines) == 24  # 16 prompts x 4 per step, 2 calls
    rewards = [float(re.search(r"critic/rewards/mean:([-\d.e]+)", m).group(1)) for m in lines if " step:" in m]
    assert len(rewards) == 12 and sum(rewards[-4:]) / 4 > sum(rewards[:4]) / 4
    logs = boto3.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/SageMaker-own-reward")["logStreams"]
    assert len(streams) >= 24  # the user's code really ran, once per invocation, in the Lambda runtime


def test_a_reward_that_raises_fails_the_rft_job_not_the_service(twin, rows, tmp_path) -> None:
    _upload(rows)
    arn = _user_reward(
        tmp_path, "def lambda_handler(event, context):\n    raise RuntimeError('grader bug')\n", "SageMaker-bug"
    )
    scenario.submit(
        "own-rft-bug",
        scenario.rft_recipe("rft", "nova-lite-2/prod", arn, max_steps=2),
        f"{B}/own/rft/",
        f"{B}/out",
        LOCAL_ROLE_ARN,
        data_type="S3Prefix",
    )
    job = scenario.wait("own-rft-bug", timeout=60)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == f"AlgorithmError: reward Lambda {arn} failed: grader bug"
    tuned = _eval("own-eval-after-bug", scenario.eval_recipe("e", "nova-lite-2/prod"))  # the service carries on
    assert len(tuned.samples) == 150


def test_judge_evaluations_are_computed_from_the_rows(twin, rows) -> None:
    pairs = [
        {"prompt": q, "response_A": a, "response_B": b}
        for (_, q, a), b in zip(rows[:60], ["x"] * 20 + [r[2] for r in rows[20:60]], strict=True)
    ]
    pairs[5]["response_B"] = "Let me think about it. I believe the answer is 17, but I am not sure at all."
    scenario.put(f"{B}/own/judge/llm_judge.jsonl", scenario.jsonl(pairs))
    verdicts = judge.judge_rows(pairs)
    original = _eval("own-judge", _task_recipe("llm_judge", "judge", "nova-lite/prod"), f"{B}/own/judge/")
    expected = judge.aggregate(verdicts, rubric=False)
    assert {r.name: r.value for r in original.metrics} == {
        k: v for k, v in expected.items() if not k.endswith("_stderr")
    }
    assert original.samples == [] and "details" not in original.files  # the original judge writes no details
    rubric = _eval("own-rubric", _task_recipe("rubric_llm_judge", "judge", "nova-lite-2/prod"), f"{B}/own/judge/")
    assert rubric.task == "custom|rubric_llm_judge_judge|0"
    assert rubric.metrics.get("score_margin").value == pytest.approx(
        judge.aggregate(verdicts, rubric=True)["score_margin"]
    )
    assert [s.prediction for s in rubric.samples] == [v.text for v in verdicts]
    assert [s.metrics["winrate"] for s in rubric.samples][5] == 0.0


def test_rft_eval_writes_the_lambdas_answers_unchanged(twin, rows, tmp_path) -> None:
    _upload(rows)
    arn = _user_reward(tmp_path)
    result = _eval(
        "own-rft-eval",
        _task_recipe("rft_eval", "rft_eval", "nova-lite-2/prod", rl_env={"reward_lambda_arn": arn}),
        f"{B}/own/eval-rft/",
    )
    references = [a for _, _, a in rows[550:]]
    samples = [
        {"id": f"s{i}", "messages": [{"role": "assistant", "content": s.prediction}], "reference_answer": ref}
        for i, (s, ref) in enumerate(zip(result.samples, references, strict=True))
    ]
    recomputed = [o["aggregate_reward_score"] for o in grade_samples(samples, _grade)]
    assert [s.metrics["aggregate_reward_score"] for s in result.samples] == recomputed
    assert result.metrics.get("aggregate_reward_score").value == pytest.approx(sum(recomputed) / len(recomputed))
    assert {"has_number", "invalid_sample"} <= set(result.metrics.names())


def test_a_benchmark_is_scored_on_the_packaged_sample(twin) -> None:
    result = _eval("own-mmlu", _task_recipe("mmlu", "zs_cot", "nova-lite-2/prod"), f"{B}/own/none/")
    items = benchmarks.sample("mmlu")
    scores = [benchmarks.score("mmlu", item, s.prediction) for item, s in zip(items, result.samples, strict=True)]
    assert result.metrics.get("accuracy").value == pytest.approx(sum(scores) / len(scores))
    assert [s.metrics["accuracy"] for s in result.samples] == scores
    assert [s.gold for s in result.samples] == [item.gold for item in items]
    math = _eval("own-math", _task_recipe("math", "zs_cot", "nova-lite-2/prod"), f"{B}/own/none/")
    assert math.metrics.names() == ["exact_match"]


def test_lambda_log_tail_carries_the_users_prints(twin, tmp_path) -> None:
    code = "def grade(response, reference_answer, sample):\n    print('graded', sample['id'])\n    return 1.0\n"
    arn = _user_reward(tmp_path, code, "SageMaker-printer")
    response = boto3.client("lambda").invoke(
        FunctionName=arn,
        LogType="Tail",
        Payload=json.dumps(
            [{"id": "s1", "messages": [{"role": "assistant", "content": "a"}], "reference_answer": "a"}]
        ),
    )
    assert json.loads(response["Payload"].read())[0]["aggregate_reward_score"] == 1.0
    assert "graded s1" in base64.b64decode(response["LogResult"]).decode()


def test_strong_reject_has_no_details_and_its_deflection_is_computed(twin) -> None:
    result = _eval("own-reject", _task_recipe("strong_reject", "zs", "nova-lite-2/prod"), f"{B}/own/none/")
    assert result.samples == [] and "details" not in result.files
    items = benchmarks.sample("strong_reject")
    expected = [benchmarks.score("strong_reject", item, base_answer("", item.prompt)) for item in items]
    assert result.metrics.get("deflection").value == pytest.approx(sum(expected) / len(expected))
