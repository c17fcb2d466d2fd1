"""Crash and cancel safety: a killed run re-attaches on re-run (no duplicate job), on the same machine and on
another worker that shares only the S3 result storage; a cancelled deployed run stops the SageMaker job it started;
a deployed run killed during SFT leaves the job running, and the automation novaflow installs re-runs the flow run,
which attaches to the job and finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.deployments import run_deployment
from prefect.states import Cancelling
from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket
from prefect_aws.workers.ecs_worker import ECSWorker
from prefect_kubernetes.worker import KubernetesWorker

from flows.end_to_end import end_to_end
from novaflow.local.aws.server import LOCAL_BUCKET
from novaflow.settings import load_settings
from tests.flows.helpers import (
    FAST_WAIT,
    artifacts_of,
    logs_of,
    process_worker,
    sft_job_name,
    small_params,
    training_jobs,
)
from tests.flows.helpers import child_env as _child_env
from tests.flows.helpers import wait_for as _wait_for

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))  # the CLI of the interpreter running the tests
RUN_FLOW = (
    "import sys; from flows.end_to_end import end_to_end; from flows.params import EndToEndParams; "
    "state = end_to_end(EndToEndParams.model_validate_json(sys.argv[1]), return_state=True); "
    "print(state.state_details.flow_run_id, state.type.value)"
)
PRODUCTION_POOLS = {"ecs": "novaflow-ecs", "kubernetes": "novaflow-k8s"}
EXPECTED_JOBS = Counter({"nova-lite-2-eval-gen-qa": 3, "nova-lite-2-sft-lora": 1, "nova-lite-2-rft-lora": 1})


def _status(name: str) -> str | None:
    try:
        return boto3.client("sagemaker").describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
    except Exception:
        return None


def test_killed_run_reattaches_on_rerun_with_one_job_per_stage(aws, tmp_path) -> None:
    # The embedded account has no quotas unless a test sets them, so no quota slot outlives the killed run.
    params = small_params("crash-rerun", tmp_path, skip=["deploy"])
    sft = sft_job_name(params)
    # the first run dies while SFT is training; its lease on the run name lapses 3 s after its last renewal
    _kill_during_sft(aws, params, env=_child_env(aws, NOVAFLOW_RUN_LEASE_SECONDS="3"), cwd=ROOT)

    state = end_to_end(params, return_state=True)
    assert state.is_completed(), state.message
    # the killed run still looks Running to Prefect; its lease expired, so this run waited at most 3 s for it
    lines = logs_of(state.state_details.flow_run_id)
    waited = [line for line in lines if "is in use by" in line]
    assert len(waited) <= 1 and all("waiting for it to finish" in line for line in waited)
    names = [j["TrainingJobName"] for j in training_jobs()]
    kinds = Counter(n.rsplit("-", 1)[0] for n in names)
    # baseline, post-SFT and post-RFT evaluations (three different specs), one SFT and one RFT job.
    assert kinds == EXPECTED_JOBS
    assert len(set(names)) == len(names) == 5
    assert sft in names


def _kill_during_sft(aws: Any, params: Any, *, env: dict[str, str], cwd: Path, after_registered: bool = False) -> None:
    """Run ``params`` end to end in a child and SIGKILL it while its SFT job trains (the machine dies).

    At once when the job is training, which may be before the submit task has stored its result (only the
    job's name then protects), or, ``after_registered``, once the run has recorded the job as its own, which it
    does after the submit task returned, so the submit's result is stored: the run is waiting on the job."""
    sft = sft_job_name(params)
    aws.control.stall_job(sft)
    child = subprocess.Popen(
        [sys.executable, "-c", RUN_FLOW, params.model_dump_json()],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: _status(sft) == "InProgress", 180, f"{sft} to be training")
        if after_registered:
            _wait_for(lambda: _registered(sft), 120, f"the run to register {sft}")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    aws.control.release_job(sft)


def _registered(job: str) -> bool:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=LOCAL_BUCKET, Prefix="novaflow/runs/")
    return any(obj["Key"].endswith(f"/jobs/{job}.json") for page in pages for obj in page.get("Contents", []))


def test_killed_on_worker_a_rerun_on_worker_b_attaches_through_results_on_s3(aws, tmp_path) -> None:
    """Two workers share the Prefect server and an S3 result storage block, nothing on disk: each has its own
    PREFECT_HOME (so its own local result storage) and its own working directory."""
    boto3.client("s3").create_bucket(Bucket="novaflow-prefect-results")
    S3Bucket(
        bucket_name="novaflow-prefect-results",
        bucket_folder="results",
        credentials=AwsCredentials(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
            aws_client_parameters=AwsClientParameters(endpoint_url=aws.url),
        ),
    ).save("novaflow-results", overwrite=True)
    # Relative work_dir: each worker prepares its data under its own working directory.
    params = small_params("two-workers", Path("novaflow-runs"), skip=["deploy"])
    sft = sft_job_name(params)
    homes = {w: tmp_path / f"worker-{w}" for w in "ab"}
    envs = {}
    for worker, home in homes.items():
        (home / "cwd").mkdir(parents=True)
        env = _child_env(
            aws, PREFECT_HOME=str(home / "prefect"), PREFECT_DEFAULT_RESULT_STORAGE_BLOCK="s3-bucket/novaflow-results"
        )
        env.pop("PREFECT_LOCAL_STORAGE_PATH", None)
        envs[worker] = env

    _kill_during_sft(aws, params, env=envs["a"], cwd=homes["a"] / "cwd", after_registered=True)
    written_by_a = _result_keys()
    assert written_by_a  # the baseline and SFT submit records, among the other task results of the run
    done = subprocess.run(
        [sys.executable, "-c", RUN_FLOW, params.model_dump_json()],
        env=envs["b"],
        cwd=homes["b"] / "cwd",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_id, final = done.stdout.split()[-2:]
    assert final == "COMPLETED"

    names = [j["TrainingJobName"] for j in training_jobs()]
    assert Counter(n.rsplit("-", 1)[0] for n in names) == EXPECTED_JOBS
    assert len(set(names)) == 5 and sft in names
    # Worker B did not describe-and-attach: its SFT (and baseline) submit came from the record worker A wrote
    # to S3, so the submit body never ran for them on B.
    lines = logs_of(run_id)
    assert len([line for line in lines if line == "Finished in state Cached(type=COMPLETED)"]) == 2
    assert not [line for line in lines if sft in line and line.startswith(("created job", "attached to job"))]
    assert len([line for line in lines if line.startswith("created job ")]) == 3
    assert written_by_a < _result_keys()
    assert not any((home / "prefect" / "storage").exists() for home in homes.values())


def _result_keys() -> set[str]:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket="novaflow-prefect-results")
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


@pytest.mark.slow
def test_cancelling_a_deployed_run_stops_its_training_job(aws, tmp_path) -> None:
    env = _child_env(aws, PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_RUNNER_POLL_FREQUENCY="1")
    with process_worker(env, "novaflow-local", [], ROOT):
        with get_client(sync_client=True) as client:
            # `deploy --all` registers the ECS and Kubernetes deployments too, offline: their pools only need
            # to exist, with the templates the workers ship (the server checks the job variables against them).
            for kind in (ECSWorker, KubernetesWorker):
                client.create_work_pool(
                    WorkPoolCreate(
                        name=PRODUCTION_POOLS[kind.type],
                        type=kind.type,
                        base_job_template=kind.get_default_base_job_template(),
                    ),
                    overwrite=True,
                )
        deploy = subprocess.run(
            [PREFECT, "--no-prompt", "deploy", "--all"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180
        )
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        with get_client(sync_client=True) as client:
            for name, pool in (("ecs", "novaflow-ecs"), ("kubernetes", "novaflow-k8s")):
                deployment = client.read_deployment_by_name(f"end-to-end/{name}")
                assert deployment.work_pool_name == pool
                assert deployment.job_variables["env"]["PREFECT_DEFAULT_RESULT_STORAGE_BLOCK"] == (
                    "s3-bucket/novaflow-results"
                )
        params = small_params("cancel-deployed", tmp_path, skip=["baseline", "deploy"], cleanup=False)
        sft = sft_job_name(params)
        aws.control.stall_job(sft)
        run = run_deployment("end-to-end/local", parameters={"params": params.model_dump(mode="json")}, timeout=0)
        _wait_for(lambda: _status(sft) == "InProgress", 180, f"{sft} to be training")
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, Cancelling(), force=True)
            final = _wait_for(lambda: _final(client, run.id), 90, "the run to be cancelled")
        assert final == "CANCELLED"
        assert _wait_for(lambda: _status(sft) in {"Stopping", "Stopped"} and _status(sft), 30, "the job to stop")
        assert _wait_for(lambda: _status(sft) == "Stopped", 30, "Stopped")


def _final(client: Any, run_id: Any) -> str | None:
    state = client.read_flow_run(run_id).state
    return state.type.value if state is not None and state.is_final() else None


def _settled(client: Any, run_id: Any) -> str | None:
    """The run's final state once no re-run can follow: Completed, or final after its last allowed re-run."""
    from flows.automations import MAX_CRASH_RERUNS, RERUN_STATE_NAME

    final = _final(client, run_id)
    if final in (None, "COMPLETED"):
        return final
    if final == "CRASHED" and _state_names(client, run_id).count(RERUN_STATE_NAME) < MAX_CRASH_RERUNS:
        return None  # the automation re-runs it
    return final


@pytest.mark.slow
def test_a_deployed_run_killed_during_sft_keeps_its_job_and_the_automation_reruns_it_to_the_end(aws, tmp_path) -> None:
    from flows.automations import MAX_CRASH_RERUNS, RERUN_CRASHED, RERUN_STATE_NAME, apply_automations

    assert RERUN_CRASHED in apply_automations(None)
    env = _child_env(aws, PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_RUNNER_POLL_FREQUENCY="1")
    with process_worker(env, "novaflow-local", ["end-to-end/local"], ROOT):
        params = small_params(
            "crash-deployed",
            tmp_path,
            skip=["baseline", "deploy"],
            cleanup=False,
        )
        sft = sft_job_name(params)
        aws.control.stall_job(sft)
        run = run_deployment("end-to-end/local", parameters={"params": params.model_dump(mode="json")}, timeout=0)
        _wait_for(lambda: _status(sft) == "InProgress", 180, f"{sft} to be training")
        _wait_for(lambda: _registered(sft), 120, f"the run to register {sft}")
        pid = _wait_for(lambda: _flow_process(str(run.id)), 30, "the flow run's process")
        os.kill(pid, signal.SIGKILL)  # the container dies: no hook runs
        with get_client(sync_client=True) as client:
            _wait_for(lambda: _state_names(client, run.id).count("Crashed") >= 1, 60, "the run to be marked Crashed")
            assert _status(sft) == "InProgress"  # the crash did not stop the job
            aws.control.release_job(sft)
            _wait_for(lambda: RERUN_STATE_NAME in _state_names(client, run.id), 60, "the automation to re-run it")
            # A late second report of the one kill can mark the running re-run Crashed (the worker then ends it) and
            # the automation re-runs again: the run is over when it completed or has used all its re-runs.
            final = _wait_for(lambda: _settled(client, run.id), 420, "the re-run to finish")
            names = _state_names(client, run.id)
            assert final == "COMPLETED", " | ".join(
                f"{st.name}: {st.message}"
                for st in sorted(client.read_flow_run_states(run.id), key=lambda st: st.timestamp)[5:]
            ) + "\n".join(logs_of(run.id)[-15:])
            # The process worker may report the one kill twice (its runner, then the worker itself, sometimes after
            # the re-run was already scheduled): each report is a Crashed event, so one kill can use two re-runs,
            # never more than the automation allows.
            assert 1 <= names.count(RERUN_STATE_NAME) <= MAX_CRASH_RERUNS, names
            assert names.count(RERUN_STATE_NAME) == names.count("Crashed")
            assert client.read_flow_run(run.id).run_count >= 2  # the killed attempt and the re-run(s)
        assert _status(sft) == "Completed"
        # one SFT job: the re-run attached to it (its submit came from the first attempt's cached record)
        assert [j["TrainingJobName"] for j in training_jobs()].count(sft) == 1
        lines = logs_of(run.id)
        assert not [line for line in lines if line.startswith("created job") and sft in line][1:]


def _flow_process(run_id: str) -> int | None:
    """The pid of the process that runs flow run ``run_id`` (the worker sets PREFECT__FLOW_RUN_ID in its env)."""
    marker = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:
            continue
    return None


def _state_names(client: Any, run_id: Any) -> list[str]:
    return [state.name for state in sorted(client.read_flow_run_states(run_id), key=lambda st: st.timestamp)]


@pytest.mark.slow
def _suspended_during_sft(aws: Any, tmp_path: Path, name: str, client: Any) -> tuple[Any, Any, str]:
    """Start a suspend-mode deployed run whose SFT job is held InProgress; return (params, run, SFT job) once the
    run is Suspended and its flow-run process has exited (the state both suspended-run tests start from)."""
    params = small_params(
        name,
        tmp_path,
        skip=["baseline", "deploy"],
        cleanup=False,
        wait=FAST_WAIT.model_copy(update={"mode": "suspend"}),
    )
    sft = sft_job_name(params)
    aws.control.stall_job(sft)
    run = run_deployment("end-to-end/local", parameters={"params": params.model_dump(mode="json")}, timeout=0)
    _wait_for(lambda: client.read_flow_run(run.id).state_name == "Suspended", 240, "the run to suspend")
    assert _status(sft) == "InProgress"
    _wait_for(lambda: _flow_process(str(run.id)) is None, 60, "the suspended run's process to exit")
    return params, run, sft


@pytest.mark.timeout(900)  # four suspend/resume cycles through a process worker, then a block-mode run
def test_a_suspended_deployed_run_holds_no_process_while_sft_runs_and_finishes_as_block_mode(aws, tmp_path) -> None:
    """wait.mode suspend: while SFT trains the run is Suspended and no flow-run process exists; `novaflow watch`
    resumes it when the job ends; it finishes with the numbers a block-mode run of the same name computes."""
    env = _child_env(aws, PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_RUNNER_POLL_FREQUENCY="1")
    watcher = None
    with process_worker(env, "novaflow-local", ["end-to-end/local"], ROOT):
        try:
            with get_client(sync_client=True) as client:
                params, run, sft = _suspended_during_sft(aws, tmp_path, "suspended", client)
                assert client.read_flow_run(run.id).state_name == "Suspended"
                watcher = subprocess.Popen(
                    [sys.executable, "-m", "novaflow.cli", "watch", "--interval", "0.5"],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
                time.sleep(3)
                assert client.read_flow_run(run.id).state_name == "Suspended"  # the job still runs: not resumed
                assert _flow_process(str(run.id)) is None  # and nothing holds a worker slot meanwhile
                aws.control.release_job(sft)
                final = _wait_for(lambda: _final(client, run.id), 400, "the resumed run to finish")
                assert final == "COMPLETED", _state_names(client, run.id)
                names = _state_names(client, run.id)
                flow_run = client.read_flow_run(run.id)
            # SFT, then RFT's evaluation at least (the evaluation after SFT and RFT may both end before the run parks)
            assert names.count("Suspended") >= 2
            jobs = [j["TrainingJobName"] for j in training_jobs()]
            assert jobs.count(sft) == 1
            assert Counter(n.rsplit("-", 1)[0] for n in jobs) == EXPECTED_JOBS - Counter({"nova-lite-2-eval-gen-qa": 1})
            # The stages overlap as in block mode: once SFT ended, the evaluation after it and RFT were both submitted
            # before the run suspended again (on both, or on the one still running).
            lines = logs_of(run.id)
            suspensions = [i for i, line in enumerate(lines) if line.startswith("suspending: stage(s) ")]
            assert lines[suspensions[0]] == (
                f"suspending: stage(s) sft wait on job(s) {sft}; "
                "`novaflow watch` resumes this run when one of them ends"
            )
            created = [line for line in lines[: suspensions[1]] if line.startswith("created job ")]
            assert [kind for kind in ("-rft-lora-", "-eval-gen-qa-") if any(kind in line for line in created)] == [
                "-rft-lora-",
                "-eval-gen-qa-",
            ], created
            # Worker-seconds held per job-second: the run's Running time against its jobs' own durations.
            sm = boto3.client("sagemaker")
            job_seconds = 0.0
            for record in _ledger(str(run.id)):
                job = sm.describe_training_job(TrainingJobName=record)
                job_seconds += (job["TrainingEndTime"] - job["CreationTime"]).total_seconds()
            ratio = flow_run.total_run_time.total_seconds() / job_seconds
            print(f"suspend mode: {flow_run.total_run_time.total_seconds():.1f} worker-s for {job_seconds:.1f} job-s")
            print(f"suspend mode: worker-seconds held per job-second = {ratio:.2f}")

            block = end_to_end(params.model_copy(update={"wait": FAST_WAIT}), return_state=True)
            assert block.is_completed(), block.message
            assert [j["TrainingJobName"] for j in training_jobs()].count(sft) == 1  # the block run attached
            comparisons = [
                {k: v for k, v in artifacts_of(run_id).items() if "comparison" in k}
                for run_id in (run.id, block.state_details.flow_run_id)
            ]
            assert comparisons[0] and comparisons[0] == comparisons[1]  # the same numbers, suspended or blocking
        finally:
            if watcher is not None:
                watcher.send_signal(signal.SIGINT)
                try:
                    watcher.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    watcher.kill()


def _ledger(run_id: str) -> list[str]:
    from novaflow.runs.ledger import jobs_of_run

    return [record["job_name"] for record in jobs_of_run(run_id, settings=load_settings())]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cancelling_a_suspended_run_stops_its_job_through_the_automation(aws, tmp_path) -> None:
    """A suspended run has no process, so no cancellation hook: the automation runs stop-run-jobs instead."""
    from flows.automations import STOP_CANCELLED, apply_automations

    env = _child_env(aws, PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_RUNNER_POLL_FREQUENCY="1")
    sft = None
    with process_worker(env, "novaflow-local", ["end-to-end/local", "stop-run-jobs/default"], ROOT):
        try:
            assert STOP_CANCELLED in apply_automations(None)
            with get_client(sync_client=True) as client:
                _, run, sft = _suspended_during_sft(aws, tmp_path, "cancel-suspended", client)
                client.set_flow_run_state(run.id, Cancelling(), force=True)
                assert _wait_for(lambda: _final(client, run.id), 60, "the run to be cancelled") == "CANCELLED"
            assert _wait_for(lambda: _status(sft) == "Stopped", 180, f"{sft} to be stopped by the automation")
        finally:
            if sft is not None:
                aws.control.release_job(sft)
