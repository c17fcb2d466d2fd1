"""The sweep flow offline: three variants over RFT settings as one graph - the data prepared and uploaded once, one
baseline and one SFT job, a leaderboard whose numbers are the variants' own comparisons, only the winner deployed
and Approved; a bad variant refused by its name before anything runs; the same sweep again submits nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from flows.deploy_stage import CleanupParams, cleanup
from flows.params import EndToEndParams
from flows.sweep import SweepVariant, sweep
from novaflow.errors import ConfigError
from novaflow.recipes.tables import load_price_table
from novaflow.registry.packages import default_group, list_versions
from novaflow.settings import load_settings
from novaflow.sweeps.leaderboard import holm_adjust
from tests.flows.helpers import artifacts_of, logs_of, small_params, training_jobs, wait_for

pytestmark = pytest.mark.slow

LRS = (1e-5, 2e-5, 3e-5)
VARIANTS = [SweepVariant(name=f"rft-lr-{i}", patch={"rft.overrides.lr": lr}) for i, lr in enumerate(LRS)]


@dataclass
class Swept:
    base: EndToEndParams
    result: dict[str, Any]
    arts: dict[str, Any]
    flow_run_id: Any
    jobs: list[dict[str, Any]]
    endpoints: list[str]


@pytest.fixture(scope="module")
def swept(local_aws_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swept]:
    work = tmp_path_factory.mktemp("sweep")
    base = small_params("sweep-rft", work, cleanup=False, tracking={"mlflow_uri": f"sqlite:///{work / 'mlflow.db'}"})
    state = sweep(base, VARIANTS, return_state=True)
    assert state.is_completed(), state.message
    endpoints = [e["EndpointName"] for e in boto3.client("sagemaker").list_endpoints()["Endpoints"]]
    try:
        yield Swept(
            base,
            state.result(),
            artifacts_of(state.state_details.flow_run_id),
            state.state_details.flow_run_id,
            training_jobs(),
            endpoints,
        )
    finally:
        local_aws_session.reset()


def test_a_grid_over_rft_settings_shares_the_data_the_baseline_and_one_sft_job(swept: Swept) -> None:
    names = [j["TrainingJobName"] for j in swept.jobs]
    assert sum("-sft-lora-" in n for n in names) == 1
    assert sum("-rft-lora-" in n for n in names) == 3
    assert sum("-eval-" in n for n in names) == 1 + 1 + 3  # baseline, after SFT, after each RFT
    assert len(names) == len(set(names)) == 9
    assert swept.result["plan"][0] == "plan: 9 jobs for 3 variants (3 shared between variants)"
    nodes = swept.result["nodes"]
    every = [v.name for v in VARIANTS]
    for shared in ("data", "baseline", "sft", "post-sft", "reward-lambda"):
        assert nodes[shared] == every
    assert {f"{v}/rft" for v in every} <= set(nodes) and {f"{v}/post-rft" for v in every} <= set(nodes)
    # The data was prepared and uploaded once: one file per format, under the sweep's prefix (in the place named
    # by the data stage's signature, where a re-run or a sweep with one more variant finds it again).
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="novaflow-local", Prefix="novaflow/runs/")["Contents"]]
    data = sorted(k for k in keys if "/data/" in k and k.endswith(".jsonl") and "rejected" not in k)
    assert len(data) == 3 and len({k.split("/data/")[0] for k in data}) == 1, data
    assert data[0].startswith("novaflow/runs/sweep-rft/")
    assert [k.split("/data/", 1)[1] for k in data] == [
        "eval/data/gen_qa.jsonl",
        "rft/data/rft.jsonl",
        "sft/data/train.jsonl",
    ]


def test_each_variant_is_a_subflow_of_its_own_with_its_stages_and_the_shared_ones_run_once(swept: Swept) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        runs = {name: client.read_flow_run(run_id) for name, run_id in swept.result["variant_runs"].items()}
        for name, run in runs.items():
            assert run.name == f"sweep-rft-{name}" and run.state is not None and run.state.is_completed()
            assert run.parent_task_run_id is not None  # a subflow: shown under the sweep's run in the UI
            assert client.read_task_run(run.parent_task_run_id).flow_run_id == swept.flow_run_id
            assert client.read_flow(run.flow_id).name == "sweep-variant"
    # each variant's run logs its own stages, shared ones included (met there, not run again), and the shared
    # stages' work is in exactly one of them: the data uploaded once, each job dry-run and created by one
    # variant's run only - the others met it at the stage, they did not race to its job
    logs = [logs_of(run.id) for run in runs.values()]
    for lines in logs:
        for stage in ("data", "baseline", "sft", "post-sft", "rft", "post-rft"):
            assert f"stage {stage}: started" in lines
    every = [line for lines in logs for line in lines]
    uploads = sorted(sum(line.startswith("uploaded s3://") for line in lines) for lines in logs)
    assert uploads == [0] * (len(VARIANTS) - 1) + [3]  # one variant's run uploaded the three files, once
    created = sorted(line.split()[2] for line in every if line.startswith("created job "))
    assert created == sorted(j["TrainingJobName"] for j in swept.jobs) and len(created) == 3 + 2 * len(VARIANTS)
    assert len([line for line in every if line.startswith("Dry run for job ")]) == len(created)


def test_the_leaderboard_ranks_the_variants_with_holm_adjusted_p_values(swept: Swept) -> None:
    rows = swept.arts["sweep-leaderboard-sweep-rft"]["data"]
    assert [r["variant"] for r in rows] == [v.name for v in VARIANTS]
    assert [r["patch"] for r in rows] == ["rft.overrides.lr=1e-05", "rft.overrides.lr=2e-05", "rft.overrides.lr=3e-05"]
    exact = {r["variant"]: r for r in swept.result["leaderboard"]}
    p_values = [exact[v.name]["p_value"] for v in VARIANTS]
    for row, adjusted in zip(rows, holm_adjust(p_values), strict=True):
        mine = exact[row["variant"]]
        # the delta is the variant's last stage against the shared baseline, from its own comparison
        assert mine["delta"] == pytest.approx(mine["post-rft:em"] - mine["baseline:em"], abs=1e-4)
        assert mine["baseline:em"] == exact[VARIANTS[0].name]["baseline:em"]  # one baseline for all
        assert mine["p_holm"] == pytest.approx(adjusted, abs=1e-4)
        assert mine["jobs"] == 5 and mine["gate"] in {"pass", "fail"}
    # the cost is what AWS reports the variant's jobs (shared ones included) were billed: seconds x instances x rate
    prices = load_price_table().prices
    sagemaker = boto3.client("sagemaker")
    for variant in VARIANTS:
        nodes = ["baseline", "sft", "post-sft", f"{variant.name}/rft", f"{variant.name}/post-rft"]
        jobs = [sagemaker.describe_training_job(TrainingJobName=swept.result["jobs"][n]) for n in nodes]
        expected = sum(
            j["BillableTimeInSeconds"]
            / 3600
            * j["ResourceConfig"]["InstanceCount"]
            * prices[j["ResourceConfig"]["InstanceType"]]
            for j in jobs
        )
        assert exact[variant.name]["cost"] == pytest.approx(round(expected, 2), abs=0.011)
        assert exact[variant.name]["cost_basis"] == "instance-hours"
    winner = swept.result["winner"]
    passing = [r for r in swept.result["leaderboard"] if r["gate"] == "pass"]
    assert winner == max(passing, key=lambda r: r["delta"])["variant"]
    assert swept.result["winner_line"] == f"winner: {winner}" and swept.result["lines"][-1] == f"winner: {winner}"


def test_only_the_winner_is_deployed_and_approved(swept: Swept) -> None:
    winner = swept.result["winner"]
    assert swept.endpoints == ["novaflow-sweep-rft"]
    assert swept.result["deployment"] == "sagemaker `novaflow-sweep-rft`"
    versions = {v.arn: v for v in list_versions(default_group("nova-lite-2", "sweep-rft"), settings=load_settings())}
    by_variant = {r["variant"]: r["model_package_version"] for r in swept.result["leaderboard"]}
    assert versions[by_variant[winner]].status == "Approved"
    for name, arn in by_variant.items():
        if name != winner:
            assert versions[arn].status == "Rejected"
            assert versions[arn].approval_description == f"sweep sweep-rft: not the winner (winner: {winner})"
    report = Path(swept.result["report"]["local"]).read_text(encoding="utf-8")
    assert "Leaderboard" in report and f"winner: {winner}" in report


def test_mlflow_has_a_parent_run_for_the_sweep_and_a_child_per_variant(swept: Swept) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=swept.base.tracking.mlflow_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (parent,) = [r for r in runs if r.info.run_id == swept.result["mlflow_run"]]
    assert parent.data.tags["novaflow.sweep"] == "sweep-rft"
    assert parent.data.tags["novaflow.winner"] == swept.result["winner"]
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == {v.name for v in VARIANTS}
    for row in swept.result["leaderboard"]:
        child = children[row["variant"]]
        assert child.data.params["patch"] == row["patch"]
        assert child.data.metrics["post-rft:em"] == pytest.approx(row["post-rft:em"], abs=1e-4)
        assert child.data.tags["novaflow.winner"] == ("yes" if row["variant"] == swept.result["winner"] else "no")


def test_the_same_sweep_again_submits_nothing_and_a_new_variant_only_its_own_jobs(swept: Swept) -> None:
    cleanup(CleanupParams(deployment="novaflow-sweep-rft"))
    before = sorted(j["TrainingJobName"] for j in swept.jobs)
    again = sweep(swept.base.model_copy(update={"cleanup": True}), VARIANTS)
    assert sorted(j["TrainingJobName"] for j in training_jobs()) == before
    assert again["jobs"] == swept.result["jobs"]
    assert again["winner"] == swept.result["winner"]
    more = [*VARIANTS, SweepVariant(name="rft-lr-3", patch={"rft.overrides.lr": 4e-5})]
    grown = sweep(swept.base.model_copy(update={"cleanup": True}), more)
    new = sorted(set(j["TrainingJobName"] for j in training_jobs()) - set(before))
    assert len(new) == 2 and sum("-rft-lora-" in n for n in new) == 1 and sum("-eval-" in n for n in new) == 1
    assert {grown["jobs"]["rft-lr-3/rft"], grown["jobs"]["rft-lr-3/post-rft"]} == set(new)


def test_a_bad_variant_is_refused_by_its_name_before_anything_runs(aws, tmp_path) -> None:
    base = small_params("sweep-bad", tmp_path)
    before = training_jobs()
    bad = [VARIANTS[0], SweepVariant(name="huge-batch", patch={"sft.overrides.global_batch_size": -3})]
    state = sweep(base, bad, return_state=True)
    assert state.is_failed()
    with pytest.raises(ConfigError, match=r"^variant huge-batch: sft: overrides: "):
        state.result()
    unknown = [SweepVariant(name="typo", patch={"sft.overides.lr": 1e-5})]
    with pytest.raises(ConfigError, match=r"^variant typo: sft.overides.lr: no parameter 'overides' in sft"):
        sweep(base, unknown)
    assert training_jobs() == before  # nothing was submitted


def test_a_failing_variant_stops_the_others_and_fails_the_sweep_naming_it(aws, tmp_path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    base = small_params("sweep-fail", tmp_path, stages=["sft"], skip=["baseline"], deploy={"enabled": False})
    lrs = [
        SweepVariant(name="lr-a", patch={"sft.overrides.lr": 1e-5}),
        SweepVariant(name="lr-b", patch={"sft.overrides.lr": 2e-5}),
    ]
    aws.control.set_job_duration(60, "training")  # both SFT jobs train long enough to be caught at it
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(sweep, base, lrs, return_state=True)

            def both() -> list[str]:
                names = [j["TrainingJobName"] for j in training_jobs() if "-sft-lora-" in j["TrainingJobName"]]
                return names if len(names) == 2 else []

            failing, other = wait_for(both, 120, "both variants' SFT jobs")
            aws.control.stall_job(other)
            aws.control.fail_job(failing, "AlgorithmError: loss is NaN (emulated)")
            state = running.result(timeout=180)
    finally:
        aws.control.set_job_duration(0.2, "training")
    assert state.is_failed()
    assert re.search(
        rf"VariantFailed: variant lr-[ab]: stage sft failed: Job {failing} failed: AlgorithmError: loss is NaN",
        state.message,
    ), state.message
    sagemaker = boto3.client("sagemaker")
    assert sagemaker.describe_training_job(TrainingJobName=other)["TrainingJobStatus"] == "Stopped"  # not billing
    assert sorted(j["TrainingJobName"] for j in training_jobs()) == sorted([failing, other])  # nothing after it


def test_suspend_mode_needs_deployment_runs(aws, tmp_path) -> None:
    base = small_params("sweep-suspend", tmp_path, wait={"mode": "suspend"})
    with pytest.raises(ConfigError, match=r"^sweep: wait.mode suspend needs variant_runs deployment"):
        sweep(base, VARIANTS)
    assert training_jobs() == []
