"""A sweep whose variants run as deployment runs on a process work pool: each variant one run of the packaged
``sweep-variant/default`` deployment (prefect.yaml), started by a worker in its own process, with an idempotency
key; the variants meet at their shared stages through S3 leases, so every shared job is submitted once; the sweep
builds the leaderboard from their persisted results; and a re-run of the sweep starts no second variant run and
submits no job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter
from prefect.settings import PREFECT_API_URL

from flows.sweep import SweepVariant, sweep
from novaflow.sweeps.runs import idempotency_key
from tests.flows.helpers import small_params, training_jobs

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
POOL = "novaflow-local"
VARIANTS = [SweepVariant(name=f"lr-{i}", patch={"rft.overrides.lr": lr}) for i, lr in enumerate((1e-5, 3e-5))]


def _wait_for(predicate: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def _pool_exists(client: Any) -> bool:
    try:
        client.read_work_pool(POOL)
        return True
    except Exception:
        return False


def _variant_runs(deployment_id: Any) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(),
        )


def test_variants_as_deployment_runs_share_their_jobs_and_a_rerun_starts_no_second_run(aws, tmp_path) -> None:
    env = dict(os.environ)
    env.update(aws.env)
    env.update(
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        PREFECT_WORKER_QUERY_SECONDS="1",
        PYTHONPATH=str(ROOT),
    )
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", POOL, "--type", "process"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with get_client(sync_client=True) as client:
            _wait_for(lambda: _pool_exists(client), 60, "the worker's pool")
        deploy = subprocess.run(
            [PREFECT, "--no-prompt", "deploy", "--name", "sweep-variant/default"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
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
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def _setup(base: Any) -> Any:
    from flows.sweep_graph import sweep_setup

    return sweep_setup(base, VARIANTS)
