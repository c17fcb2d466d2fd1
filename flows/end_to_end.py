"""`end-to-end`: the case study as one flow.

prepare and split the data -> baseline evaluation -> the training stages in ``stages`` order (SFT, DPO, RFT with
its reward Lambda deployed and verified first), each from the model of the one before and each evaluated after ->
stage comparison with paired significance -> gated deployment of the last stage's approved model package version
-> smoke invocation -> optional clean-up. Every stage can be skipped (``skip``), handed an existing job
(``<stage>.existing_job``) or run on another platform (``<stage>.platform``: SMTJ, SERVERLESS, BEDROCK). The
same flow runs against AWS or, with the endpoint pointed at the embedded AWS, offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run as current_flow_run

from flows.deploy_stage import deploy_and_smoke, teardown_stage
from flows.hooks import STOP_ON_EXIT, FlowHooks
from flows.params import EndToEndParams, EvaluationParams, resolve_model
from flows.runners import thread_pool
from flows.stages import (
    STAGE_LABELS,
    TRAINING_STAGES,
    EvalContext,
    RewardChoice,
    RunLog,
    TrainedModel,
    check_reward,
    evaluate_model,
    flow_run_scratch,
    prepare_data,
    registry_group,
    require_registry,
    require_supported,
    reward_lambda,
    spec_for,
    train,
)
from flows.summary import run_report, run_summary_markdown
from flows.tracking import close_tracking, finish_tracking, start_tracking
from novaflow.catalog import DataFormat, Method, get_model
from novaflow.evaluation.results import EvalResult
from novaflow.evaluation.tasks import GEN_QA, RFT_EVAL, check_metric, resolve_task
from novaflow.settings import NovaflowSettings
from reward_lambda.labels import DEFAULT_LABELS
from tasks.common import artifact_key
from tasks.credentials import CredentialsParameter, use_run_credentials
from tasks.evaluation import compare_stages_task
from tasks.reports import publish_report_task
from tasks.runs import run_name_held

HOOKS: FlowHooks = {
    "on_cancellation": [*STOP_ON_EXIT["on_cancellation"], close_tracking],
    "on_crashed": [*STOP_ON_EXIT["on_crashed"], close_tracking],
}
"""The jobs' hooks, and MLflow runs closed as KILLED / FAILED when the flow run does not finish."""


def plan_checks(params: EndToEndParams, settings: NovaflowSettings | None = None) -> None:
    """What can be refused before anything runs: each stage's evaluation task on this model, the gate metric."""
    version = get_model(resolve_model(params.model, settings)).version
    tasks = stage_tasks(params)
    for task in tasks.values():
        resolve_task(task, version)
    if "deploy" not in params.skip and params.deploy.enabled and len(tasks) >= 2:
        order = list(tasks.values())
        check_metric(params.deploy.gate.metric, (order[0], order[-1]), version)


def stage_tasks(params: EndToEndParams) -> dict[str, str]:
    """The evaluation task of every stage that runs (the baseline's defaults to the others')."""
    skip = set(params.skip)
    task = params.evaluation.task or GEN_QA
    tasks = {"baseline": params.baseline.task or task} if "baseline" not in skip else {}
    tasks.update({stage: task for stage in params.training_stages()})
    return tasks


@flow(name="end-to-end", task_runner=thread_pool(max_workers=4), on_failure=[close_tracking], **HOOKS)
def end_to_end(
    params: EndToEndParams = EndToEndParams(), aws_credentials: CredentialsParameter = None
) -> dict[str, Any]:
    """Data -> baseline -> SFT -> eval -> reward Lambda -> RFT -> eval -> compare -> gated deploy -> smoke.

    A second run of the same run name waits for the first (see :func:`tasks.runs.run_name_held`), then attaches
    to its jobs; local files go to a scratch directory of this flow run, so two runs never write the same file.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    settings = use_run_credentials(aws_credentials)
    settings.require("bucket", "role_arn")
    skip = set(params.skip)
    model = params.model or settings.model
    order = params.training_stages()
    jobs = {stage: getattr(params, stage) for stage in order}
    checks: list[tuple[Method, str]] = [(Method.EVALUATION, params.evaluation.platform)]
    if "baseline" not in skip:
        checks.append((Method.EVALUATION, params.baseline.platform))
    checks += [(TRAINING_STAGES[stage], jobs[stage].platform) for stage in order]
    require_supported(model, checks)
    group = registry_group(params.registry, model, params.run_name)
    require_registry(group, [params.evaluation, *jobs.values()])
    methods = [Method.EVALUATION, *(TRAINING_STAGES[stage] for stage in order)]
    plan_checks(params, settings)
    home = Path(params.work_dir) / params.run_name
    wait = params.wait.max_wait_hours * 3600
    with run_name_held(params.run_name, home, wait_seconds=wait), flow_run_scratch(home) as work:
        return _run(params, settings, model, methods, group, home, work)


def _run(
    params: EndToEndParams,
    settings: NovaflowSettings,
    model: str,
    methods: list[Method],
    group: str | None,
    home: Path,
    work: Path,
) -> dict[str, Any]:
    logger = get_run_logger()
    skip = set(params.skip)
    order = params.training_stages()
    jobs = {stage: getattr(params, stage) for stage in order}
    tasks = stage_tasks(params)
    rft_eval = RFT_EVAL in tasks.values()
    log = RunLog(params.run_name)
    log.tracker = start_tracking(params, model, current_flow_run.ui_url)
    prefix = settings.s3_uri("runs", params.run_name)
    is_sample = params.data.source == "sample"

    with log.stage("data") as rec:
        data = prepare_data(params.data, model, work, prefix, methods=methods, eval_rft=rft_eval, log=log)
        uris = data.uris
        rec.detail = ", ".join(f"{fmt.value}: {uri}" for fmt, uri in uris.items())

    choice: RewardChoice | None = None
    reward_arn: str | None = None
    own_reward = bool(params.reward.source or params.reward.function_arn)
    if DataFormat.RFT in uris and (rft_eval or "rft" in order) and (own_reward or not is_sample):
        with log.stage("reward-check") as rec:
            choice = check_reward(
                params.reward, uris[DataFormat.RFT], is_sample=is_sample, rows_file=data.files.get(DataFormat.RFT)
            )
            rec.detail = choice.kind
    if rft_eval:
        with log.stage("reward-lambda"):
            reward_arn = deployed_reward(params, uris[DataFormat.RFT], choice, log)

    context = EvalContext(run_prefix=prefix, eval_rft_uri=data.eval_rft_uri, reward_arn=reward_arn)

    def evaluate_on_eval_rows(stage: str, trained: TrainedModel | None, job: EvaluationParams) -> EvalResult:
        return evaluate_model(stage, model, uris[DataFormat.EVAL], trained, job, params.wait, log, context)

    stages: dict[str, EvalResult] = {}
    if "baseline" not in skip:
        with log.stage("baseline-eval"):
            baseline_job = params.baseline.model_copy(update={"task": tasks["baseline"]})
            stages["Baseline"] = evaluate_on_eval_rows("baseline", None, baseline_job)

    trained: TrainedModel | None = None
    for stage in order:
        method, job = TRAINING_STAGES[stage], jobs[stage]
        extra: dict[str, Any] = {}
        if method is Method.RFT_LORA:
            if reward_arn is None:
                with log.stage("reward-lambda"):
                    reward_arn = deployed_reward(params, uris[DataFormat.RFT], choice, log)
            extra["reward_lambda_arn"] = reward_arn
        with log.stage(stage):
            spec = spec_for(
                model,
                method,
                job,
                group=group,
                train_uri=uris[method.data_format],
                model_name_or_path=trained.source_for(job.platform) if trained else None,
                **extra,
            )
            trained = train(stage, spec, job, params.wait, log, group=group)
        with log.stage(f"post-{stage}-eval"):
            stages[f"Post-{STAGE_LABELS[stage]}"] = evaluate_on_eval_rows(f"post-{stage}", trained, params.evaluation)

    comparison = None
    if len(stages) >= 2:
        with log.stage("compare"):
            comparison = compare_stages_task(stages)

    deployment = gate = None
    if "deploy" not in skip and params.deploy.enabled and trained is not None and comparison is not None:
        with log.stage("deploy"):
            gate, deployment = deploy_and_smoke(
                params, trained, comparison, model=model, eval_uri=uris[DataFormat.EVAL], log=log
            )
    if params.cleanup:
        with log.stage("cleanup"):
            teardown_stage(params.run_name, log, params.deploy)
    with log.stage("report"):
        content = run_report(
            log,
            params,
            stages,
            comparison,
            region=settings.region,
            console=settings.console_url,
            deployment=deployment,
            flow_run_url=current_flow_run.ui_url,
        )
        report = publish_report_task(content, str(home / "report.html"), s3_uri=f"{prefix}/report.html")
        log.locations.update({f"report-{k}": v for k, v in report.items()})
    finish_tracking(log, home, stages, comparison, deployment)

    rows = comparison.table_records() if comparison is not None else None
    create_markdown_artifact(
        run_summary_markdown(
            log, comparison_rows=rows, gate=gate, deployment=deployment, endpoint=settings.resolved_endpoint_url()
        ),
        key=artifact_key("run-summary", params.run_name),
        description=f"novaflow end-to-end run {params.run_name}",
    )
    logger.info("run %s finished in %.1f s", params.run_name, sum(s.seconds for s in log.stages))
    return {
        "run_name": params.run_name,
        "stages": {s.stage: round(s.seconds, 3) for s in log.stages},
        "jobs": {k: r.name for k, r in log.jobs.items()},
        "metrics": {name: stage_metrics(result) for name, result in stages.items()},
        "comparison": rows,
        "report": report,
        "gate": gate,
        "deployment": deployment,
        "mlflow_run": log.tracker.parent_id if log.tracker is not None and log.tracker.active else None,
    }


def deployed_reward(
    params: EndToEndParams, rows_uri: str, choice: RewardChoice | None, log: RunLog | None = None
) -> str:
    """Deploy and verify the reward (the case study's label grader when nothing was chosen)."""
    if choice is None:
        choice = RewardChoice("labels", labels=tuple(params.reward.labels or DEFAULT_LABELS))
    return reward_lambda(params.reward, rows_uri, choice, log)


def stage_metrics(result: EvalResult) -> dict[str, float]:
    """A stage's metrics by name: gen_qa's, then the added task's as ``<task>:<metric>``."""
    values = {row.name: row.value for row in result.metrics.rows}
    for prefix, related in result.related.items():
        values.update({f"{prefix}:{row.name}": row.value for row in related.metrics.rows})
    return values
