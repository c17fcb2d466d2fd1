"""Shared helpers of the flow tests: small case-study parameters, job names, artifact and log read-back."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterName,
    FlowRunFilterState,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypeFilter
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from flows.params import DataParams, EndToEndParams, JobParams, WaitParams, resolve_model
from flows.stages.jobs import spec_for
from novaflow.catalog import Method
from novaflow.settings import load_settings

FAST_WAIT = WaitParams(poll_seconds=0.2, max_poll_seconds=0.5, max_wait_hours=0.1)


def small_params(run_name: str, work_dir: Path, **changes: Any) -> EndToEndParams:
    """The case study at a tenth of its size: 350 SFT / 150 eval / 100 (+350) RFT rows."""
    values: dict[str, Any] = {
        "run_name": run_name,
        "work_dir": str(work_dir),
        "wait": FAST_WAIT,
        "cleanup": True,
        "data": DataParams(sft_rows=350, eval_rows=150, rft_rows=100),
    }
    values.update(changes)
    return EndToEndParams(**values)


def data_uri(params: EndToEndParams, split: str) -> str:
    file = {"sft": "train.jsonl", "eval": "gen_qa.jsonl", "rft": "rft.jsonl"}[split]
    return load_settings().s3_uri("runs", params.run_name, "data", split) + f"/data/{file}"


def sft_job_name(params: EndToEndParams) -> str:
    """The deterministic SFT job name a run of ``params`` submits (computed without running anything).

    The case-study rows carry no reasoning content, so the submitted Nova 2 spec has reasoning_enabled off
    (novaflow.jobs.reasoning sets it from the data at submit).
    """
    spec = spec_for(
        resolve_model(params.model, settings=load_settings()),
        Method.SFT_LORA,
        JobParams(overrides={"reasoning_enabled": False}),
        train_uri=data_uri(params, "sft"),
    )
    return spec.resolve(load_settings()).job_name()


def training_jobs() -> list[dict[str, Any]]:
    sm = boto3.client("sagemaker")
    jobs: list[dict[str, Any]] = []
    for page in sm.get_paginator("list_training_jobs").paginate():
        jobs.extend(page["TrainingJobSummaries"])
    return jobs


def artifacts_of(flow_run_id: Any) -> dict[str, Any]:
    """Latest artifact per key of a flow run (tables decoded from their JSON strings)."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    out: dict[str, Any] = {}
    for art in sorted(found, key=lambda a: a.created):
        data = art.data
        if art.type == "table" and isinstance(data, str):
            data = json.loads(data)
        out[art.key or f"unkeyed-{art.id}"] = {"type": art.type, "data": data, "description": art.description}
    return out


def logs_of(flow_run_id: Any) -> list[str]:
    """Every log line of a flow run, in order (read in pages: the API returns at most 200 at a time)."""
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # the log worker sends in the background; the last lines may still be queued
    messages: list[str] = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                offset=len(messages),
                limit=200,
            )
            messages += [entry.message for entry in page]
            if len(page) < 200:
                return messages


def resume_when_paused(
    run_name: str, answer: dict[str, Any], on_pause: Callable[[], None] | None = None, tries: int = 600
) -> threading.Thread:
    """Like a person in the UI: wait for the run to pause, look (``on_pause``), then answer its input form."""

    def worker() -> None:
        with get_client(sync_client=True) as client:
            for _ in range(tries):
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        name=FlowRunFilterName(any_=[run_name]),
                        state=FlowRunFilterState(type=StateTypeFilter(any_=[StateType.PAUSED])),
                    )
                )
                if runs:
                    if on_pause is not None:
                        on_pause()
                    resume_flow_run(runs[0].id, run_input=answer)
                    return
                time.sleep(0.2)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    return thread


def baseline_job_name(params: EndToEndParams) -> str:
    """The deterministic name of the baseline evaluation job a run of ``params`` submits (gen_qa on the eval rows)."""
    spec = spec_for(
        resolve_model(params.model, settings=load_settings()),
        Method.EVALUATION,
        JobParams(),
        train_uri=data_uri(params, "eval"),
    )
    return spec.resolve(load_settings()).job_name()


def child_env(aws: Any, **extra: str) -> dict[str, str]:
    """The environment of a worker (or flow) subprocess: this one's, the embedded AWS's, this test's server."""
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ)
    env.update(aws.env)
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    env.update(extra)
    return env


def wait_for(predicate: Any, seconds: float, what: str) -> Any:
    """``predicate()``'s first truthy value, polled every 0.3 s; fails naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@contextmanager
def process_worker(env: dict[str, str], pool: str, deployments: list[str], root: Path) -> Iterator[None]:
    """A ``prefect worker`` of a process pool running (creating the pool), ``deployments`` of ``root``'s
    prefect.yaml deployed to it; the worker is stopped at the end."""
    import signal
    import subprocess
    import sys

    prefect = str(Path(sys.executable).with_name("prefect"))
    worker = subprocess.Popen(
        [prefect, "worker", "start", "--pool", pool, "--type", "process"],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with get_client(sync_client=True) as client:
            wait_for(lambda: _pool_exists(client, pool), 60, f"the worker's pool {pool}")
        for name in deployments:
            deploy = subprocess.run(
                [prefect, "--no-prompt", "deploy", "--name", name],
                env=env,
                cwd=root,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        yield
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def _pool_exists(client: Any, name: str) -> bool:
    try:
        client.read_work_pool(name)
        return True
    except Exception:
        return False
