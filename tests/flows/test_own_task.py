"""Bring your own task, end to end offline: a dataset that is not the case study, the team's own reward file,
judged and benchmark evaluations, the gate on a judge metric, and refusals before anything is paid for."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from flows.end_to_end import end_to_end
from flows.params import DataParams, EndToEndParams, EvaluationParams
from novaflow.cli import app, main
from novaflow.errors import EvaluationError
from novaflow.evaluation.parser import parse_eval_output
from novaflow.local.models import benchmarks
from novaflow.settings import load_settings
from tests.flows.helpers import FAST_WAIT, artifacts_of, training_jobs

MY_REWARD = '''
import re


def lambda_handler(event, context):
    """Numeric answers: 1 when the last number in the answer is the reference, else 0."""
    out = []
    for sample in event:
        reference = sample.get("reference_answer")
        if reference is None:
            reference = (sample.get("metadata") or {}).get("reference_answer")
        numbers = re.findall(r"-?\\d+", str(sample["messages"][-1]["content"]))
        right = bool(numbers) and numbers[-1] == str(reference).strip()
        out.append({"id": sample["id"], "aggregate_reward_score": 1.0 if right else 0.0,
                    "metrics_list": [{"name": "correct", "value": float(right), "type": "Metric"}]})
    print(f"my_reward graded {len(out)} samples")
    return out
'''


def arithmetic_jsonl(path: Path, n: int = 1200, seed: int = 13) -> Path:
    """The issue's dataset: ``qid, prompt, answer`` with free-form numeric answers (no label column)."""
    rng = random.Random(seed)
    forms = ["What is {a} {op} {b}?", "Compute {a} {op} {b}.", "Calculate {a} {op} {b} and give the number."]
    lines = []
    for i in range(n):
        a, b, op = rng.randint(2, 99), rng.randint(2, 99), rng.choice("+-*")
        answer = {"+": a + b, "-": a - b, "*": a * b}[op]
        prompt = rng.choice(forms).format(a=a, op=op, b=b)
        lines.append(json.dumps({"qid": f"q{i:04d}", "prompt": prompt, "answer": str(answer)}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def table(output: str) -> dict[str, list[str]]:
    """The printed comparison: metric -> its cells (value ± stderr per stage, then the deltas)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("metric "))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1 :]:
        if line.startswith(("gate:", "deployed:", "report")):
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    return rows


def value(cell: str) -> float:
    return float(cell.split()[0])


def test_the_arithmetic_task_runs_end_to_end_with_the_users_reward(aws, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = arithmetic_jsonl(tmp_path / "qa.jsonl")
    (tmp_path / "my_reward.py").write_text(MY_REWARD, encoding="utf-8")
    args = ["run", "end-to-end", "--local", "--data", str(data), "--map", "query=prompt", "--map", "response=answer"]
    args += ["--map", "id=qid", "--sizes", "800,200,200", "--reward", "my_reward.py", "--run-name", "arithmetic"]
    result = CliRunner().invoke(app, [*args, "--work-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    rows = table(result.output)
    baseline, sft, rft = (value(cell) for cell in rows["em"][:3])
    assert sft > baseline + 0.5 and rft >= sft - 0.05
    assert "accuracy" not in rows  # not a label task: no label accuracy is invented
    split = json.loads((tmp_path / "runs" / "arithmetic" / "splits" / "split_report.json").read_text())
    assert split["stratify"] is None
    assert re.fullmatch(
        r"not stratified \(automatic: 'answer' has \d+ distinct values, more than 20; pass --stratify COLUMN to "
        r"choose one\)",
        split["stratify_reason"],
    )
    # The team's handler really ran inside the Lambda runtime of the embedded AWS: during verification and for
    # every RFT rollout batch, as the RFT job's own log says.
    logs = boto3.client("logs")
    group = "/aws/lambda/SageMaker-novaflow-reward"
    printed = [
        e["message"]
        for s in logs.describe_log_streams(logGroupName=group)["logStreams"]
        for e in logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"]
        if e["message"].startswith("my_reward graded ")
    ]
    rft_job = next(j["TrainingJobName"] for j in training_jobs() if "rft-lora" in j["TrainingJobName"])
    stream = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=rft_job)
    job_lines = [
        e["message"]
        for e in logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream["logStreams"][0]["logStreamName"]
        )["events"]
    ]
    invokes = [line for line in job_lines if "Invoking reward Lambda arn:aws:lambda:" in line]
    assert invokes and len(printed) > len(invokes)  # verification batches + one per RFT invocation
    assert sum(int(p.split()[2]) for p in printed) >= 5 * 32 * 2  # at least every RFT rollout was graded


def _small(run: str, tmp_path: Path, **changes: Any) -> EndToEndParams:
    data = DataParams(
        source=str(arithmetic_jsonl(tmp_path / f"{run}.jsonl", n=600)),
        columns={"query": "prompt", "response": "answer", "id": "qid"},
        sft_rows=300,
        eval_rows=80,
        rft_rows=60,
    )
    values: dict[str, Any] = {"run_name": run, "work_dir": str(tmp_path), "wait": FAST_WAIT, "cleanup": True}
    values.update({"data": data, "skip": ["rft"], **changes})
    return EndToEndParams(**values)


def test_a_judge_evaluation_flow_and_the_gate_on_a_judge_metric(aws, tmp_path) -> None:
    params = _small(
        "own-judge",
        tmp_path,
        evaluation=EvaluationParams(task="judge"),
        deploy={"gate": {"metric": "judge:winrate"}, "smoke_rows": 1},
    )
    state = end_to_end(params, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    arts = artifacts_of(state.state_details.flow_run_id)
    for stage in ("baseline", "post-sft"):
        name = stage
        judged = parse_eval_output(
            f"s3://novaflow-local/novaflow/jobs/{result['jobs'][stage + '-judge']}/output/output.tar.gz",
            settings=load_settings(),
        )
        assert judged.task == "custom|rubric_llm_judge_judge|0"  # Nova 2's judge
        assert result["metrics"][name]["judge:winrate"] == judged.metrics.get("winrate").value
        assert {r["metric"] for r in arts[f"eval-{stage}-judge-metrics"]["data"]} >= {"winrate", "score_margin"}
    # The judge saw the reference as A and the stage's answer as B.
    gen_qa = parse_eval_output(
        f"s3://novaflow-local/novaflow/jobs/{result['jobs']['post-sft']}/output/output.tar.gz", settings=load_settings()
    )
    body = boto3.client("s3").get_object(
        Bucket="novaflow-local", Key="novaflow/runs/own-judge/judge/post-sft/llm_judge.jsonl"
    )
    judge_rows = [json.loads(line) for line in body["Body"].read().decode().splitlines()]
    assert [(r["response_A"], r["response_B"]) for r in judge_rows] == [(s.gold, s.prediction) for s in gen_qa.samples]
    deltas = [d for d in arts["eval-comparison"]["data"] if d["metric"] == "judge:winrate"]
    assert [(d["baseline_stage"], d["candidate_stage"], d["test"]) for d in deltas] == [
        ("baseline", "post-sft", "sign-flip")
    ]
    assert (
        result["gate"].startswith("post-sft vs baseline: approved: ") and "judge:winrate: baseline " in result["gate"]
    )


def test_a_benchmark_evaluation_flow_scores_the_packaged_sample(aws, tmp_path) -> None:
    params = _small("own-mmlu", tmp_path, evaluation=EvaluationParams(task="mmlu"), skip=["rft", "deploy"])
    state = end_to_end(params, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    items = benchmarks.sample("mmlu")
    for stage in ("baseline", "post-sft"):
        name = stage
        archive = parse_eval_output(
            f"s3://novaflow-local/novaflow/jobs/{result['jobs'][stage + '-mmlu']}/output/output.tar.gz",
            settings=load_settings(),
        )
        scores = [benchmarks.score("mmlu", item, s.prediction) for item, s in zip(items, archive.samples, strict=True)]
        assert result["metrics"][name]["mmlu:accuracy"] == pytest.approx(sum(scores) / len(scores))
    rows = {r["metric"]: r for r in result["comparison"]}
    assert rows["mmlu:accuracy"]["baseline"] == result["metrics"]["baseline"]["mmlu:accuracy"]


def test_what_cannot_work_is_refused_before_anything_runs(aws, tmp_path, monkeypatch, capsys) -> None:
    params = _small("own-refused", tmp_path, deploy={"gate": {"metric": "judge:winrate"}})
    with pytest.raises(
        EvaluationError, match="gate metric 'judge:winrate' is not produced by evaluation task 'gen_qa'"
    ):
        end_to_end(params)
    constant = tmp_path / "constant.py"
    constant.write_text("def grade(response, reference_answer, sample):\n    return 0.5\n", encoding="utf-8")
    params = _small("own-constant", tmp_path, skip=[], reward={"source": str(constant)})
    state = end_to_end(params, return_state=True)
    assert state.is_failed()
    assert "constant.py: returns the same reward 0.5 for all " in state.message
    assert training_jobs() == []  # no baseline, no SFT: nothing was paid for
    broken = tmp_path / "broken.py"
    broken.write_text("def lambda_handler(event):\n    return []\n", encoding="utf-8")
    data = arithmetic_jsonl(tmp_path / "qa.jsonl", n=50)
    monkeypatch.setattr(
        "sys.argv",
        [
            "novaflow",
            "run",
            "end-to-end",
            "--local",
            "--data",
            str(data),
            "--map",
            "query=prompt",
            "--reward",
            str(broken),
        ],
    )
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {broken}: line 1: lambda_handler takes (event); it is called as lambda_handler(event, context)"
    )
    assert training_jobs() == []
