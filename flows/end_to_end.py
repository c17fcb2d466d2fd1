"""`end-to-end`: the case study as one flow.

prepare and split the data -> baseline evaluation -> SFT -> evaluation -> reward Lambda (deploy + verify) -> RFT
from the SFT checkpoint -> evaluation -> stage comparison with paired significance -> gated deployment -> smoke
invocation -> optional clean-up. Every stage can be skipped (``skip``) or handed an existing job
(``<stage>.existing_job``). The same flow runs against AWS or, with the endpoint pointed at the embedded AWS,
offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.deploy_stage import deploy_and_smoke, teardown_stage
from flows.hooks import STOP_ON_EXIT
from flows.params import EndToEndParams
from flows.runners import thread_pool
from flows.stages import (
    TRAINING_STAGES,
    RunLog,
    evaluate_model,
    prepare_data,
    require_supported,
    reward_lambda,
    spec_for,
    train,
)
from flows.summary import run_summary_markdown
from novaflow.catalog import DataFormat, Method
from novaflow.evaluation.results import EvalResult
from tasks.common import artifact_key
from tasks.credentials import CredentialsParameter, use_run_credentials
from tasks.evaluation import build_report_task, compare_stages_task


@flow(name="end-to-end", task_runner=thread_pool(max_workers=4), **STOP_ON_EXIT)
def end_to_end(
    params: EndToEndParams = EndToEndParams(), aws_credentials: CredentialsParameter = None
) -> dict[str, Any]:
    """Data -> baseline -> SFT -> eval -> reward Lambda -> RFT -> eval -> compare -> gated deploy -> smoke.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    logger = get_run_logger()
    settings = use_run_credentials(aws_credentials)
    settings.require("bucket", "role_arn")
    skip = set(params.skip)
    model = params.model or settings.model
    methods = [Method.EVALUATION, *(m for stage, m in TRAINING_STAGES.items() if stage not in skip)]
    require_supported(model, methods)
    log = RunLog(params.run_name)
    work = Path(params.work_dir) / params.run_name
    prefix = settings.s3_uri("runs", params.run_name)

    with log.stage("data") as rec:
        uris = prepare_data(params.data, model, work, prefix, methods=methods, log=log)
        rec.detail = ", ".join(f"{fmt.value}: {uri}" for fmt, uri in uris.items())

    def evaluate_on_eval_rows(stage: str, model_path: str | None, job: Any) -> EvalResult:
        return evaluate_model(stage, model, uris[DataFormat.EVAL], model_path, job, params.wait, log)

    stages: dict[str, EvalResult] = {}
    if "baseline" not in skip:
        with log.stage("baseline-eval"):
            stages["Baseline"] = evaluate_on_eval_rows("baseline", None, params.baseline)

    checkpoint: str | None = None
    if "sft" not in skip:
        with log.stage("sft"):
            checkpoint = train(
                "sft",
                spec_for(model, Method.SFT_LORA, params.sft, train_uri=uris[DataFormat.SFT]),
                params.sft,
                params.wait,
                log,
            )
        with log.stage("post-sft-eval"):
            stages["Post-SFT"] = evaluate_on_eval_rows("post-sft", checkpoint, params.evaluation)

    if "rft" not in skip:
        with log.stage("reward-lambda"):
            reward = reward_lambda(params.reward, uris[DataFormat.RFT])
        with log.stage("rft"):
            rft_spec = spec_for(
                model,
                Method.RFT_LORA,
                params.rft,
                train_uri=uris[DataFormat.RFT],
                model_name_or_path=checkpoint,
                reward_lambda_arn=reward.function_arn,
            )
            checkpoint = train("rft", rft_spec, params.rft, params.wait, log)
        with log.stage("post-rft-eval"):
            stages["Post-RFT"] = evaluate_on_eval_rows("post-rft", checkpoint, params.evaluation)

    comparison = None
    report: dict[str, str] = {}
    if len(stages) >= 2:
        with log.stage("compare"):
            comparison = compare_stages_task(stages)
            report = build_report_task(
                stages, str(work / "report.html"), comparison=comparison, s3_uri=f"{prefix}/report.html"
            )
            log.locations.update({f"report-{k}": v for k, v in report.items()})

    deployment = gate = None
    if "deploy" not in skip and params.deploy.enabled and checkpoint and comparison is not None:
        with log.stage("deploy"):
            gate, deployment = deploy_and_smoke(
                params, checkpoint, comparison, model=model, eval_uri=uris[DataFormat.EVAL], log=log
            )
    if params.cleanup:
        with log.stage("cleanup"):
            teardown_stage(params.run_name, log, params.deploy)

    rows = comparison.table_records() if comparison is not None else None
    create_markdown_artifact(
        run_summary_markdown(log, comparison_rows=rows, gate=gate, deployment=deployment),
        key=artifact_key("run-summary", params.run_name),
        description=f"novaflow end-to-end run {params.run_name}",
    )
    logger.info("run %s finished in %.1f s", params.run_name, sum(s.seconds for s in log.stages))
    return {
        "run_name": params.run_name,
        "stages": {s.stage: round(s.seconds, 3) for s in log.stages},
        "jobs": {k: r.name for k, r in log.jobs.items()},
        "metrics": {name: {row.name: row.value for row in result.metrics.rows} for name, result in stages.items()},
        "comparison": rows,
        "report": report,
        "gate": gate,
        "deployment": deployment,
    }
