"""`end-to-end`: the case study as one flow, run as a graph of stages (:func:`run_plan`).

prepare and split the data -> baseline evaluation beside the training stages in ``stages`` order (SFT, DPO, RFT
with its reward Lambda deployed and verified first), each from the model of the one before and each evaluated
beside the next -> stage comparison with paired significance -> gated deployment of the last stage's approved
model package version -> smoke invocation -> optional clean-up. Every stage can be skipped (``skip``), handed an
existing job (``<stage>.existing_job``) or run on another platform (``<stage>.platform``: SMTJ, SERVERLESS,
BEDROCK). The same flow runs against AWS or, with the endpoint pointed at the embedded AWS, offline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run as current_flow_run
from pydantic import BaseModel

from flows.graph import run_stages
from flows.hooks import JOB_HOOKS, FlowHooks
from flows.params import EndToEndParams, resolve_model
from flows.runners import thread_pool
from flows.stages.agent import AGENT_CHECK, agent_check_stage
from flows.stages.baseline import BASELINE, baseline_stage
from flows.stages.checks import TRAINING_STAGES, registry_group, require_registry, require_supported
from flows.stages.cleanup import cleanup_stage
from flows.stages.compare import COMPARE, compare_stage
from flows.stages.context import StageContext
from flows.stages.deploy import DEPLOY, Deployment, deploy_stage
from flows.stages.evaluation import evaluation_key, evaluation_stage
from flows.stages.gate import GATE, GateOutcome, gate_stage
from flows.stages.prepare_data import data_stage, flow_run_scratch
from flows.stages.reward import REWARD_CHECK, needs_reward, reward_check_stage
from flows.stages.reward_lambda import REWARD_LAMBDA, reward_lambda_stage
from flows.stages.run_log import RunLog
from flows.stages.smoke import smoke_stage
from flows.stages.training import training_stage
from flows.summary import run_report, run_summary_markdown
from flows.tracking import close_tracking, finish_tracking, start_tracking
from novaflow.catalog import Method, get_model
from novaflow.errors import ConfigError
from novaflow.evaluation.results import EvalResult
from novaflow.evaluation.tasks import GEN_QA, RFT_EVAL, check_metric, resolve_task
from novaflow.runs.graph import Graph, Stage, after
from novaflow.settings import NovaflowSettings
from reward_lambda.labels import DEFAULT_LABELS
from tasks.common import artifact_key
from tasks.credentials import CredentialsParameter, run_context
from tasks.reports import publish_report_task
from tasks.runs import run_name_held, run_notifications

HOOKS: FlowHooks = {
    "on_cancellation": [*JOB_HOOKS["on_cancellation"], close_tracking],
    "on_crashed": [*JOB_HOOKS["on_crashed"], close_tracking],
}
"""The jobs' hooks, and MLflow runs closed as KILLED / FAILED when the flow run does not finish."""


def plan_checks(params: EndToEndParams, settings: NovaflowSettings) -> None:
    """What can be refused before anything runs: each stage's evaluation task on this model, the gate metric."""
    version = get_model(resolve_model(params.model, settings)).version
    tasks = stage_tasks(params)
    for task in tasks.values():
        resolve_task(task, version)
    if "deploy" not in params.skip and params.deploy.enabled and len(tasks) >= 2:
        order = list(tasks.values())
        check_metric(params.deploy.gate.metric, (order[0], order[-1]), version)
    if params.deploy.model_package:
        raise ConfigError(
            "deploy.model_package is for the deploy flow; the end-to-end flow deploys the version it trained."
        )


def stage_tasks(params: EndToEndParams) -> dict[str, str]:
    """The evaluation task of every stage that runs (the baseline's defaults to the others')."""
    skip = set(params.skip)
    task = params.evaluation.task or GEN_QA
    tasks = {"baseline": params.baseline.task or task} if "baseline" not in skip else {}
    tasks.update({stage: task for stage in params.training_stages()})
    return tasks


@dataclass(frozen=True)
class RunPlan:
    """The run's graph, the evaluations its comparison shows (baseline first) and the stage the gate judges."""

    graph: Graph
    evaluations: tuple[str, ...]
    candidate: str | None


def run_plan(params: EndToEndParams) -> RunPlan:
    """The graph of an end-to-end run from its parameters.

    data -> [baseline | first training stage], each training stage -> [its evaluation | the next training stage],
    every evaluation -> compare -> gate -> deploy -> smoke, and cleanup after everything else. A reward to check
    (a team's file or Lambda, or a team's rows) is checked before any job is paid for; the reward Lambda is
    deployed and verified beside them, before RFT (or an ``rft_eval`` evaluation) needs it.
    """
    skip = set(params.skip)
    order = params.training_stages()
    tasks = stage_tasks(params)
    rft_eval = RFT_EVAL in tasks.values()
    methods = [Method.EVALUATION, *(TRAINING_STAGES[stage] for stage in order)]
    model = params.model or ""
    is_sample = params.data.source == "sample"
    stages: list[Stage] = [
        identified(data_stage(params.data, methods, eval_rft=rft_eval), model, params.data, methods, rft_eval)
    ]
    checks: tuple[str, ...] = ()
    if needs_reward(trains_rft="rft" in order, rft_eval=rft_eval):
        stages += [
            identified(reward_check_stage(params.reward, is_sample=is_sample), params.reward, is_sample),
            identified(reward_lambda_stage(params.reward), params.reward),
        ]
        checks = (REWARD_CHECK,)
    eval_reward = REWARD_LAMBDA if rft_eval else None
    evaluations: list[str] = []
    if "baseline" not in skip:
        job = params.baseline.model_copy(update={"task": tasks["baseline"]})
        stages.append(identified(after(baseline_stage(job, reward=eval_reward), *checks), job))
        evaluations.append(BASELINE)
    previous: str | None = None
    for stage in order:
        method, job = TRAINING_STAGES[stage], getattr(params, stage)
        reward = REWARD_LAMBDA if method is Method.RFT_LORA else None
        agent = None
        if method is Method.RFT_MULTITURN:
            stages.append(identified(agent_check_stage(params.agent), params.agent))
            agent = AGENT_CHECK
        training = training_stage(stage, method, job, after=previous, reward=reward, agent=agent)
        stages.append(identified(after(training, *checks), job, params.registry))
        evaluation = evaluation_stage(evaluation_key(stage), params.evaluation, of=stage, reward=eval_reward)
        stages.append(identified(evaluation, params.evaluation, params.registry))
        evaluations.append(evaluation_key(stage))
        previous = stage
    if len(evaluations) >= 2:
        stages.append(compare_stage(evaluations))
        if "deploy" not in skip and params.deploy.enabled and previous is not None:
            stages += [gate_stage(params.deploy, previous), deploy_stage(params.deploy)]
            if params.deploy.smoke_rows:
                stages.append(smoke_stage(params.deploy.smoke_rows, smoke_labels(params)))
    if params.cleanup:
        needed = {need for stage in stages for need in stage.needs}
        stages.append(cleanup_stage(params.deploy, [s.key for s in stages if s.gives not in needed]))
    return RunPlan(Graph(stages), tuple(evaluations), previous)


def identified(stage: Stage, *parts: Any) -> Stage:
    """``stage`` with an identity from the parameters it reads, so a sweep runs equal stages of its variants once
    (the stages it reads from count too: see :func:`flows.sweep.merge_graphs`)."""
    return replace(stage, identity=fingerprint(parts))


def fingerprint(parts: Sequence[Any]) -> str:
    """A short hash of parameters (pydantic models by their JSON, everything else by ``repr``)."""
    text = "|".join(p.model_dump_json() if isinstance(p, BaseModel) else repr(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def smoke_labels(params: EndToEndParams) -> list[str] | None:
    """The labels a smoke-test answer must name: the reward's, the sample's, or none (any answer)."""
    return params.reward.labels or (list(DEFAULT_LABELS) if params.data.source == "sample" else None)


@flow(name="end-to-end", task_runner=thread_pool(max_workers=4), on_failure=[close_tracking], **HOOKS)
def end_to_end(
    params: EndToEndParams = EndToEndParams(), aws_credentials: CredentialsParameter = None
) -> dict[str, Any]:
    """Data -> [baseline | SFT] -> [eval | reward Lambda -> RFT] -> eval -> compare -> gated deploy -> smoke.

    A stage starts as soon as what it needs exists (see :func:`run_plan`); when one fails, the others are stopped
    with their jobs and the run fails naming it. A second run of the same run name waits for the first (see
    :func:`tasks.runs.run_name_held`), then attaches to its jobs; local files go to a scratch directory of this
    flow run, so two runs never write the same file.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    run = run_context(aws_credentials, params.run_name)
    settings = run.settings
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
    plan_checks(params, settings)
    plan = run_plan(params)
    home = Path(params.work_dir) / params.run_name
    wait = params.wait.max_wait_hours * 3600
    notify = params.notifications
    with (
        run_name_held(params.run_name, wait_seconds=wait, settings=settings),
        run_notifications(params.run_name, notify.sns_topic_arn, notify.events, settings),
        flow_run_scratch(home) as work,
    ):
        log = RunLog(params.run_name)
        log.tracker = start_tracking(params, model, current_flow_run.ui_url)
        ctx = StageContext(run, model, log, params.wait, group, work)
        return _run(params, ctx, plan, home)


def _run(params: EndToEndParams, ctx: StageContext, plan: RunPlan, home: Path) -> dict[str, Any]:
    log = ctx.log
    outputs = run_stages(plan.graph, ctx).outputs
    stages: dict[str, EvalResult] = {key: outputs[key] for key in plan.evaluations}
    comparison = outputs.get(COMPARE)
    outcome: GateOutcome | None = outputs.get(GATE)
    deployed: Deployment | None = outputs.get(DEPLOY)
    gate = outcome.summary if outcome is not None else None
    deployment = deployed.describe() if deployed is not None else None
    with log.stage("report"):
        content = run_report(
            log,
            params,
            stages,
            comparison,
            region=ctx.settings.region,
            console=ctx.settings.console_url,
            deployment=deployment,
            flow_run_url=current_flow_run.ui_url,
        )
        report = publish_report_task(
            content, str(home / "report.html"), s3_uri=f"{ctx.prefix}/report.html", settings=ctx.settings
        )
        log.locations.update({f"report-{k}": v for k, v in report.items()})
    finish_tracking(log, home, stages, comparison, deployment)

    rows = comparison.table_records() if comparison is not None else None
    create_markdown_artifact(
        run_summary_markdown(
            log, comparison_rows=rows, gate=gate, deployment=deployment, endpoint=ctx.settings.resolved_endpoint_url()
        ),
        key=artifact_key("run-summary", params.run_name),
        description=f"novaflow end-to-end run {params.run_name}",
    )
    get_run_logger().info("run %s finished in %.1f s", params.run_name, log.wall_seconds)
    return {
        "run_name": params.run_name,
        "stages": {s.stage: round(s.seconds, 3) for s in log.stages},
        "timeline": {s.stage: (round(s.start, 3), round(s.end, 3)) for s in log.stages},
        "jobs": {k: r.name for k, r in log.jobs.items()},
        "metrics": {name: stage_metrics(result) for name, result in stages.items()},
        "comparison": rows,
        "report": report,
        "gate": gate,
        "deployment": deployment,
        "mlflow_run": log.tracker.parent_id if log.tracker is not None and log.tracker.active else None,
    }


def stage_metrics(result: EvalResult) -> dict[str, float]:
    """A stage's metrics by name: gen_qa's, then the added task's as ``<task>:<metric>``."""
    values = {row.name: row.value for row in result.metrics.rows}
    for prefix, related in result.related.items():
        values.update({f"{prefix}:{row.name}": row.value for row in related.metrics.rows})
    return values
