"""A sweep whose variants run as deployment runs on a process work pool: each variant one run of the packaged
``sweep-variant/default`` deployment (prefect.yaml), started by a worker in its own process, with an idempotency
key; the variants meet at their shared stages through S3 leases, so every shared job is submitted once; the sweep
builds the leaderboard from their persisted results; and a re-run of the sweep starts no second variant run and
submits no job."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter

from flows.sweep import SweepVariant, sweep
from novaflow.sweeps.runs import idempotency_key
from tests.flows.helpers import child_env, process_worker, small_params, training_jobs

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
POOL = "novaflow-local"
VARIANTS = [SweepVariant(name=f"lr-{i}", patch={"rft.overrides.lr": lr}) for i, lr in enumerate((1e-5, 3e-5))]


def _variant_runs(deployment_id: Any) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(),
        )


def test_variants_as_deployment_runs_share_their_jobs_and_a_rerun_starts_no_second_run(aws, tmp_path) -> None:
    env = child_env(aws, PREFECT_WORKER_QUERY_SECONDS="1", PYTHONPATH=str(ROOT))
    with process_worker(env, POOL, ["sweep-variant/default"], ROOT):
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name("sweep-variant/default")
        assert deployment.work_pool_name == POOL

        base = small_params("sweep-pool", tmp_path, cleanup=False, deploy={"enabled": False})
        result = sweep(base, VARIANTS, variant_runs="deployment")

        runs = {run.name: run for run in _variant_runs(deployment.id)}
        assert set(runs) == {f"sweep-pool-{v.name}" for v in VARIANTS}
        params = {name: p.model_dump(mode="json") for name, p in _setup(base).params.items()}
        for variant in VARIANTS:
            run = runs[f"sweep-pool-{variant.name}"]
            assert run.idempotency_key == idempotency_key("sweep-pool", variant.name, params[variant.name])
            assert run.state is not None and run.state.is_completed()
            assert str(run.id) == result["variant_runs"][variant.name]
            assert run.parent_task_run_id is not None  # shown under the sweep's run
        # the shared stages' jobs once, the variants' own once each: nothing submitted twice across the workers
        names = [j["TrainingJobName"] for j in training_jobs()]
        kinds = Counter(n.rsplit("-", 1)[0] for n in names)
        assert kinds == Counter(
            {
                "nova-lite-2-eval-gen-qa": 2 + len(VARIANTS),
                "nova-lite-2-sft-lora": 1,
                "nova-lite-2-rft-lora": len(VARIANTS),
            }
        )
        assert [row["variant"] for row in result["leaderboard"]] == [v.name for v in VARIANTS]
        assert all(row["jobs"] == 5 for row in result["leaderboard"])
        assert result["jobs"]["sft"] in names and result["jobs"]["baseline"] in names

        again = sweep(base, VARIANTS, variant_runs="deployment")
        assert sorted(run.name for run in _variant_runs(deployment.id)) == sorted(runs)  # no second run
        assert again["variant_runs"] == result["variant_runs"]
        assert sorted(j["TrainingJobName"] for j in training_jobs()) == sorted(names)  # no job
        assert again["leaderboard"] == result["leaderboard"]


def _setup(base: Any) -> Any:
    from flows.sweep_graph import sweep_setup

    return sweep_setup(base, VARIANTS)
