"""The end-to-end flow on the embedded AWS: artifacts, failure handling, nothing left running."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from mlflow.tracking import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

from flows.end_to_end import end_to_end
from flows.params import EndToEndParams
from novaflow.evaluation.parser import parse_eval_output
from novaflow.settings import load_settings
from tests.flows.helpers import FAST_WAIT, artifacts_of, logs_of, sft_job_name, small_params, training_jobs


def test_failing_job_fails_the_flow_with_reason_and_log_tail(aws, tmp_path, monkeypatch) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    params = small_params("e2e-failing", tmp_path)
    name = sft_job_name(params)
    aws.control.fail_job(name, "AlgorithmError: CUDA out of memory (emulated)")
    state = end_to_end(params, return_state=True)
    assert state.is_failed()
    logs = "\n".join(logs_of(state.state_details.flow_run_id))
    assert (
        f"sft job {name} did not complete (Failed): Job {name} failed: AlgorithmError: CUDA out of memory (emulated)."
    ) in logs
    assert "last log lines:" in logs and "[ERROR] Training job failed: AlgorithmError" in logs
    assert state.message.endswith(
        f": stage sft failed: Job {name} failed: AlgorithmError: CUDA out of memory (emulated)."
    ), state.message
    # No later stage ran: only the baseline evaluation (beside SFT) and the failed SFT job exist, nothing was
    # deployed.
    names = sorted(j["TrainingJobName"] for j in training_jobs())
    assert len(names) == 2 and name in names
    assert boto3.client("sagemaker").list_endpoints()["Endpoints"] == []
    # MLflow has what ran (data; the baseline and the reward Lambda when they finished before SFT failed) and the
    # failure hook closed the parent run as FAILED.
    client = MlflowClient(tracking_uri=uri)
    parent = _parent_run(client, state.state_details.flow_run_id)
    assert parent.info.status == "FAILED"
    assert {"data"} <= set(_stage_runs(client, parent)) <= {"data", "baseline", "reward-lambda"}


@dataclass
class Run:
    params: EndToEndParams
    state: Any
    result: dict[str, Any]
    arts: dict[str, Any]
    slots_before: int
    mlflow_uri: str
    work: Path


@pytest.fixture(scope="module")
def run(local_aws_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One offline end-to-end run with MLFLOW_TRACKING_URI set, read back by several tests."""
    work = tmp_path_factory.mktemp("e2e")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    # The account's p5 quota, as --quota / wait.quotas give it when Service Quotas cannot be read.
    params = small_params("e2e-artifacts", work, wait=FAST_WAIT.model_copy(update={"quotas": {"ml.p5.48xlarge": 8}}))
    slots_before = _active_slots("novaflow-quota-ml.p5.48xlarge")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        state = end_to_end(params, return_state=True)
    assert state.is_completed(), state.message
    try:
        yield Run(params, state, state.result(), artifacts_of(state.state_details.flow_run_id), slots_before, uri, work)
    finally:
        local_aws_session.reset()


def test_end_to_end_leaves_artifacts_that_match_the_jobs_outputs(run: Run) -> None:
    state, result, arts, slots_before = run.state, run.result, run.arts, run.slots_before
    report = orjson.loads((run.work / "e2e-artifacts" / "report.json").read_bytes())

    # One metric table per evaluation, equal (to the 4 decimals people read) to what the evaluation archive in S3
    # says; the report's JSON keeps the exact value.
    for stage in ("baseline", "post-sft", "post-rft"):
        name = stage
        table = {row["metric"]: row for row in arts[f"eval-{stage}-metrics"]["data"]}
        job = result["jobs"][stage]
        archive = parse_eval_output(
            f"s3://novaflow-local/novaflow/jobs/{job}/output/output.tar.gz", settings=load_settings()
        )
        exact = archive.metrics.get("em").value
        assert table["em"]["value"] == round(exact, 4)
        assert next(m for m in report["stages"][name]["metrics"] if m["metric"] == "em")["value"] == exact
        assert set(table) >= {"rouge1", "rouge2", "rougeL", "em", "qem", "f1", "f1_score_quasi", "bleu"}

    # The comparison carries every stage and a paired test for each delta.
    deltas = arts["eval-comparison"]["data"]
    pairs = {(d["baseline_stage"], d["candidate_stage"]) for d in deltas}
    assert ("baseline", "post-sft") in pairs and ("baseline", "post-rft") in pairs
    em = next(
        d
        for d in deltas
        if d["metric"] == "em" and d["candidate_stage"] == "post-sft" and d["baseline_stage"] == "baseline"
    )
    assert float(em["p_value"]) < 0.05 and em["ci_low"] > 0  # SFT really learned on the emulator

    assert {
        "data-report-sft-sft",
        "data-report-eval-eval",
        "data-report-rft-rft",
        "data-splits",
        "reward-verification",
        "deploy-gate",
        "eval-report",
    } <= set(arts)
    assert arts["data-splits"]["data"]
    summary = arts["run-summary-e2e-artifacts"]["data"]
    for stage in ("baseline", "sft", "rft"):
        assert result["jobs"][stage] in summary
    assert "## Cost estimates" in summary and "## Gate" in summary
    progress = [k for k, a in arts.items() if a["type"] == "progress"]
    assert progress and all(arts[k]["data"] == 100 for k in progress)
    # One progress card per stage, named by the stage, never by a job's hash name.
    assert {"sft-progress", "rft-progress"} <= set(progress)
    assert not [k for k in progress if re.search(r"[0-9a-f]{12}", k)], progress

    # Every job held its instances' slots of the p5 quota's limit (created on first use) and gave them back.
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("novaflow-quota-ml.p5.48xlarge")
    assert (limit.limit, limit.active_slots) == (8, slots_before)
    held = "holds 4 slot(s) of novaflow-quota-ml.p5.48xlarge"
    assert any(held in line for line in logs_of(state.state_details.flow_run_id))

    # Training log lines reached the Prefect run log.
    assert any("reduced_train_loss" in line for line in logs_of(state.state_details.flow_run_id))
    # Cleanup ran: no endpoint, endpoint config or model is left behind.
    sm = boto3.client("sagemaker")
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []


def test_every_table_artifact_shows_at_most_four_decimals(run: Run) -> None:
    tables = {k: a["data"] for k, a in run.arts.items() if a["type"] == "table"}
    assert {"eval-baseline-metrics", "eval-comparison", "data-splits", "reward-verification"} <= set(tables)
    assert {"sft-metrics", "rft-metrics"} <= set(tables)  # the training-log metrics tables, named by stage
    for key, rows in tables.items():
        for row in rows:
            for column, value in row.items():
                text = json.dumps(value)
                if isinstance(value, float) or (isinstance(value, str) and re.fullmatch(r"-?\d+\.\d+", value)):
                    decimals = len(text.strip('"').split(".")[1]) if "." in text and "e" not in text else 0
                    assert decimals <= 4, f"{key}: {column} = {text}"
                if column.endswith("p_value"):
                    assert isinstance(value, str) and re.fullmatch(r"\d\.\d{3}e[+-]\d+", value), (key, value)


def test_the_report_has_html_tables_the_headline_and_the_training_curves(run: Run) -> None:
    from novaflow.jobs.outputs import training_metrics_csv
    from novaflow.jobs.series import parse_step_wise_csv

    html = (run.work / "e2e-artifacts" / "report.html").read_text(encoding="utf-8")
    report = orjson.loads((run.work / "e2e-artifacts" / "report.json").read_bytes())
    assert html.count("<table class='sortable") >= 8 and "|---|" not in html
    assert "gate metric: em" in html and ">approved<" in html and "sagemaker novaflow-e2e-artifacts" in html
    assert "sft: training loss by step" in html and "rft: reward and policy by step" in html
    # The curves are the jobs' own numbers: the SFT loss is the step-wise CSV the job left in S3, exactly.
    sft = report["curves"]["sft"]
    csv = parse_step_wise_csv(
        training_metrics_csv("s3://novaflow-local/novaflow/jobs", run.result["jobs"]["sft"], settings=load_settings())
        or ""
    )
    assert sft["steps"] == [int(s) for s in csv["step"]] and sft["values"]["loss"] == [float(v) for v in csv["loss"]]
    rft = report["curves"]["rft"]
    assert rft["steps"] == [1, 2, 3, 4, 5]
    assert {"reward_mean", "reward_min", "reward_max", "kl", "entropy", "response_length"} <= set(rft["values"])
    assert report["gate"]["approved"] is True and report["deployment"] == "sagemaker novaflow-e2e-artifacts"
    # The same page and JSON are in S3, and the run's link artifact points there.
    s3 = boto3.client("s3")
    key = "novaflow/runs/e2e-artifacts/report"
    assert s3.get_object(Bucket="novaflow-local", Key=f"{key}.html")["Body"].read().decode() == html
    assert (
        orjson.loads(
            s3.get_object(Bucket="novaflow-local", Key="novaflow/runs/e2e-artifacts/report.json")["Body"].read()
        )
        == report
    )
    # The report's link opens in a browser (a presigned link to the S3 copy), and says where else the report is.
    link = run.arts["eval-report"]
    assert link["data"].startswith("[run report e2e-artifacts](http") and "X-Amz-Signature=" in link["data"]
    assert "s3://novaflow-local/novaflow/runs/e2e-artifacts/report.html" in link["description"]
    assert str((run.work / "e2e-artifacts" / "report.html").resolve()) in link["description"]


def test_the_report_opens_in_a_headless_browser(run: Run) -> None:
    from tests.browser import open_page

    page = open_page(run.work / "e2e-artifacts" / "report.html")
    assert page.console == []  # no error, no warning, nothing
    figures = re.findall(r'<div id="(fig-\d+)" class="plotly-graph-div js-plotly-plot"', page.dom)
    assert len(figures) >= 8  # every figure div was turned into a plot by plotly.js
    segments = re.split(r'<div id="fig-\d+" ', page.dom)[1:]
    assert len(segments) == len(figures) and all("main-svg" in seg for seg in segments)  # and each has its <svg>


def test_mlflow_has_a_parent_run_with_eval_metrics_per_stage_and_training_curves(run: Run) -> None:
    client = MlflowClient(tracking_uri=run.mlflow_uri)
    flow_run_id = run.state.state_details.flow_run_id
    parent = _parent_run(client, flow_run_id)
    assert parent.info.status == "FINISHED" and parent.info.run_name == "e2e-artifacts"
    assert parent.data.params["data.eval_rows"] == "150" and parent.data.tags["novaflow.gate"] == "approved"
    assert run.result["mlflow_run"] == parent.info.run_id
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.html", "report.json", "comparison.csv", "metrics-baseline.csv"} <= artifacts
    report = orjson.loads((run.work / "e2e-artifacts" / "report.json").read_bytes())
    delta = next(
        d
        for d in report["comparison"]["deltas"]
        if (d["metric"], d["baseline_stage"], d["candidate_stage"]) == ("em", "baseline", "post-rft")
    )
    assert parent.data.metrics["em.post-rft_vs_baseline.delta"] == delta["delta"]

    stages = _stage_runs(client, parent)
    assert {"data", "baseline", "sft", "post-sft", "reward-lambda", "rft", "post-rft"} <= set(stages)
    for stage in ("baseline", "post-sft", "post-rft"):
        name = stage
        exact = {m["metric"]: m for m in report["stages"][name]["metrics"]}
        metrics = stages[stage].data.metrics
        assert metrics["em"] == exact["em"]["value"] and metrics["em_stderr"] == exact["em"]["stderr"]
        assert set(exact) <= set(metrics)
        assert stages[stage].data.params["job_name"] == run.result["jobs"][stage]
    loss = client.get_metric_history(stages["sft"].info.run_id, "loss")
    curve = report["curves"]["sft"]
    assert [(m.step, m.value) for m in sorted(loss, key=lambda m: m.step)] == list(
        zip(curve["steps"], curve["values"]["loss"], strict=True)
    )
    reward = client.get_metric_history(stages["rft"].info.run_id, "reward_mean")
    assert sorted(m.step for m in reward) == [1, 2, 3, 4, 5]


def _parent_run(client: Any, flow_run_id: Any) -> Any:
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`prefect.flow_run_id` = '{flow_run_id}'",
    )
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    return parents[0]


def _stage_runs(client: Any, parent: Any) -> dict[str, Any]:
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    return {c.info.run_name: c for c in children}


def test_an_existing_training_job_limit_is_kept() -> None:
    from tasks.runs import ensure_concurrency_limit

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="team-jobs", limit=1))
        ensure_concurrency_limit("team-jobs", 5)
        ensure_concurrency_limit("new-jobs", 3)
        assert client.read_global_concurrency_limit_by_name("team-jobs").limit == 1
        assert client.read_global_concurrency_limit_by_name("new-jobs").limit == 3


def _active_slots(name: str) -> int:
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(name).active_slots
        except ObjectNotFound:
            return 0


def test_stages_ran_side_by_side_as_the_graph_allows(run: Run) -> None:
    """From the stages' own recorded start and end offsets: the baseline beside SFT, RFT beside the evaluation of
    SFT, the comparison after every evaluation; the summary shows the same offsets."""
    t = {key: tuple(span) for key, span in run.result["timeline"].items()}
    start, end = {k: v[0] for k, v in t.items()}, {k: v[1] for k, v in t.items()}
    assert start["baseline"] >= end["data"] and start["sft"] >= end["data"]
    assert start["baseline"] < end["sft"] and start["sft"] < end["baseline"]  # side by side
    assert start["rft"] >= end["sft"] and start["post-sft"] >= end["sft"]
    assert start["rft"] < end["post-sft"]  # RFT does not wait for the evaluation of SFT
    assert start["post-rft"] >= end["rft"]
    assert start["compare"] >= max(end["baseline"], end["post-sft"], end["post-rft"])
    assert start["gate"] >= end["compare"] and start["deploy"] >= end["gate"] and start["smoke"] >= end["deploy"]
    assert start["cleanup"] >= max(e for k, e in end.items() if k not in {"cleanup", "report"})
    summary = run.arts["run-summary-e2e-artifacts"]["data"]
    for key, (begin, finish) in t.items():
        assert f"| {key} | {begin:.1f} | {finish:.1f} |" in summary
    report = orjson.loads((run.work / "e2e-artifacts" / "report.json").read_bytes())
    timeline = {row["key"]: (round(row["start"], 3), round(row["end"], 3)) for row in report["timeline"]}
    assert timeline == {k: v for k, v in t.items() if k != "report"}  # the report is drawn before it ends


URL = re.compile(r"\b(?:https?|file)://\S+")


def test_every_link_and_path_the_run_prints_opens_after_the_run(run: Run) -> None:
    """What a person clicks in the run log or an artifact exists after the run: a link never swallows the
    punctuation after it (the UI links up to the next space), a file:// link and a printed local path exist, and an
    http link (a presigned S3 link served by the endpoint the run talks to) opens."""
    import urllib.request
    from urllib.parse import unquote, urlparse

    texts = logs_of(run.state.state_details.flow_run_id)
    texts += [str(a.get("data") or "") + "\n" + str(a.get("description") or "") for a in run.arts.values()]
    links = {m.group(0).rstrip("])") for text in texts for m in URL.finditer(text)}
    assert links, "the run printed no link at all"
    assert not [u for u in links if u[-1] in ";,."], links
    for url in sorted(links):
        if url.startswith("file://"):
            assert Path(unquote(urlparse(url).path)).exists(), url
        elif urlparse(url).hostname in ("127.0.0.1", "localhost"):
            with urllib.request.urlopen(url) as page:
                assert page.status == 200, url
    assert not [k for k, a in run.arts.items() if not a.get("description")], "artifacts without a description"
    # The report's job links open the embedded AWS's own job pages, never the real AWS console.
    page = (run.work / "e2e-artifacts" / "report.html").read_text()
    assert "console.aws.amazon.com" not in page
    pattern = r"href=[\"'](http://127\.0\.0\.1:\d+/moto-api/ext/console/sagemaker/jobs/[^\"']+)"
    job_links = set(re.findall(pattern, page))
    assert len(job_links) >= 3, job_links
    for url in sorted(job_links):
        with urllib.request.urlopen(url.replace("&amp;", "&")) as job:
            assert "TrainingJobStatus" in job.read().decode()
    work = str(run.work)
    paths = {m.group(0).rstrip(".,;:)`'\"") for text in texts for m in re.finditer(re.escape(work) + r"\S*", text)}
    assert not [p for p in paths if not Path(p).exists()], paths
