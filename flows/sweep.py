"""`sweep`: variants of one end-to-end run, each its own flow run, equal work done once, a leaderboard, a winner.

Each variant is the base parameters with a patch (``sft.overrides.lr=1e-5``, ``stages=[sft]``). Its end-to-end
graph is built as a run of its own would build it; the graphs are then merged (:mod:`flows.sweep_graph`): a stage
whose key, parameters and upstream stages are equal in several variants is one node, so the data is prepared and
uploaded once, the baseline evaluated once, and a grid that varies only RFT settings trains one SFT job. Each
variant then runs as a flow run of its own - a subflow by default, or a deployment run on a work pool
(:mod:`flows.sweep_runs`) - with its stages, logs and artifacts, meeting the others at the shared stages
(:mod:`flows.sweep_variant`); stages start when their inputs exist, and a failure stops the rest. Every variant is
checked (its dry runs) before anything is spent, and a bad one is refused by its name. Then the leaderboard: each
variant's last stage against the baseline, p-values adjusted over the variants compared (Holm), the gate applied
after the adjustment; only the winner may be deployed, and with the registry on the winner's version is Approved
and the others Rejected.

Jobs keep their spec-hash names, so a sweep run again submits nothing (every job is attached), and a sweep with a
variant added runs only the new variant's jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.end_to_end import plan_checks, smoke_labels
from flows.graph import run_stages
from flows.hooks import JOB_HOOKS
from flows.params import EndToEndParams, resolve_model
from flows.runners import thread_pool
from flows.stages.baseline import BASELINE
from flows.stages.checks import TRAINING_STAGES, registry_group, require_registry, require_supported
from flows.stages.cleanup import cleanup_stage
from flows.stages.context import StageContext
from flows.stages.deploy import DEPLOY, Deployment, deploy_stage
from flows.stages.evaluation import evaluation_key
from flows.stages.jobs import spec_for
from flows.stages.prepare_data import DATA, PreparedData, flow_run_scratch
from flows.stages.run_log import RunLog, StageRecord
from flows.stages.smoke import SMOKE, smoke_stage
from flows.stages.training import TrainedModel
from flows.sweep_graph import MergedGraph, SweepSetup, SweepVariant, sweep_setup
from flows.sweep_runs import credentials_for_runs, run_variant_deployments, run_variant_subflows, variant_launches
from flows.tracking import experiment_name
from flows.variant_stages import VariantResult, variant_jobs, variant_timeline
from novaflow.catalog import DataFormat, Method
from novaflow.errors import ConfigError, NovaflowError
from novaflow.evaluation.tasks import higher_is_better
from novaflow.jobs.dryrun import dry_run
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission
from novaflow.recipes.serverless import load_serverless_prices
from novaflow.recipes.tables import load_price_table
from novaflow.registry.packages import APPROVED, REJECTED
from novaflow.reports.run import RunReport
from novaflow.runs.context import RunContext
from novaflow.runs.graph import Graph
from novaflow.settings import NovaflowSettings
from novaflow.sweeps.leaderboard import Leaderboard, VariantOutcome, build_leaderboard
from novaflow.sweeps.plan import PlannedJob, SweepPlan, plan_sweep, usage_cost
from novaflow.sweeps.runs import VARIANT_DEPLOYMENT, VARIANT_RUNS, VariantRuns
from novaflow.tracking.mlflow import FLOW_RUN_TAG, resolve_tracking_uri
from tasks.common import artifact_key, publish_table
from tasks.credentials import CredentialsParameter, run_context
from tasks.jobs import job_usage_task
from tasks.quotas import run_capacities
from tasks.registry import set_approval_task
from tasks.reports import publish_report_task
from tasks.runs import current_flow_run_id, run_name_held, run_notifications
from tasks.tracking import finish_tracking_task, start_tracking_task, track_stage_task

__all__ = ["SweepVariant", "sweep"]


PREFLIGHT_LATER = frozenset({"train_uri", "train", "validation", "reward_lambda_arn", "model_name_or_path"})
"""Dry-run fields a sweep cannot check before it runs: what earlier stages produce (data, checkpoints, Lambdas).
Each job's own dry run checks them again before it is submitted."""


def job_specs(params: EndToEndParams, ctx: RunContext) -> dict[str, JobSpec]:
    """The spec of every job stage of a variant as far as it is known before the run: the data and checkpoints
    earlier stages will produce stand in as their planned locations (each job's own dry run checks them again)."""
    model = params.model or ctx.settings.model
    data = f"{ctx.prefix}/data"
    specs: dict[str, JobSpec] = {}
    eval_uri = f"{data}/eval/data/gen_qa.jsonl"
    if "baseline" not in params.skip:
        specs[BASELINE] = spec_for(model, Method.EVALUATION, params.baseline, train_uri=eval_uri)
    previous: str | None = None
    for stage in params.training_stages():
        method, job = TRAINING_STAGES[stage], getattr(params, stage)
        uri = f"{data}/{method.data_format.value}/data/planned.jsonl"
        start = f"{ctx.prefix}/planned/{previous}/checkpoint/" if previous else None
        extra = {"reward_lambda_arn": _planned_lambda(params, ctx)} if method is Method.RFT_LORA else {}
        specs[stage] = spec_for(model, method, job, train_uri=uri, model_name_or_path=start, **extra)
        checkpoint = f"{ctx.prefix}/planned/{stage}/checkpoint/"
        specs[evaluation_key(stage)] = spec_for(
            model, Method.EVALUATION, params.evaluation, train_uri=eval_uri, model_name_or_path=checkpoint
        )
        previous = stage
    return specs


def preflight(name: str, params: EndToEndParams, ctx: RunContext) -> dict[str, JobSpec]:
    """What can be refused before anything is spent, named by the variant: the model's support of each stage, the
    registry, the evaluation tasks and gate metric, and each job's dry run (recipe overrides, instances, region,
    image, role). Returns the variant's planned job specs."""
    try:
        model = params.model or ctx.settings.model
        order = params.training_stages()
        jobs = {stage: getattr(params, stage) for stage in order}
        require_supported(model, [(TRAINING_STAGES[s], jobs[s].platform) for s in order])
        require_registry(registry_group(params.registry, model, params.run_name), [params.evaluation, *jobs.values()])
        plan_checks(params, ctx.settings)
        specs = job_specs(params, ctx)
        for stage, spec in specs.items():
            _refuse(stage, dry_run(spec, ctx.settings, simulate_iam=False))
    except NovaflowError as exc:
        raise ConfigError(f"variant {name}: {exc}") from None
    return specs


def sweep_plan(
    base: EndToEndParams, specs: Mapping[str, Mapping[str, JobSpec]], merged: MergedGraph, ctx: RunContext
) -> SweepPlan:
    """The jobs of the merged graph (a shared job once), how many run at once under the quotas found, and the cost
    upper bound (every job at its maximum runtime)."""
    planned: list[PlannedJob] = []
    for node, variants in merged.shared_by.items():
        key = merged.key_of[node]
        spec = specs[variants[0]].get(key)
        if spec is None:
            continue
        try:
            sub = prepare_submission(spec.resolve(ctx.settings), ctx.settings, strict=False)
        except NovaflowError:
            continue  # its dry run said why; the plan counts what it can
        planned.append(
            PlannedJob(
                name=node,
                stage=key,
                variants=variants,
                platform=spec.platform.value,
                instance_type=sub.instance_type,
                instance_count=sub.instance_count,
                max_hours=spec.max_runtime_seconds / 3600,
            )
        )
    return plan_sweep(planned, run_capacities(ctx.settings, base.wait.quotas), load_price_table())


def _planned_lambda(params: EndToEndParams, ctx: RunContext) -> str:
    """The reward Lambda RFT will name: the one given, or the one the run deploys (in the role's account)."""
    if params.reward.function_arn:
        return params.reward.function_arn
    account = (ctx.settings.role_arn or "").split(":")[4:5] or ["000000000000"]
    return f"arn:aws:lambda:{ctx.settings.region}:{account[0]}:function:{params.reward.function_name}"


def _refuse(stage: str, report: Any) -> None:
    problems = [p for p in report.problems if p.field not in PREFLIGHT_LATER]
    if problems:
        first = problems[0]
        raise ConfigError(f"{stage}: {first.field}: {first.message} ({first.fix})")


@flow(name="sweep", task_runner=thread_pool(max_workers=4), **JOB_HOOKS)
def sweep(
    base: EndToEndParams = EndToEndParams(),
    variants: list[SweepVariant] | None = None,
    variant_runs: VariantRuns = VARIANT_RUNS[0],
    variant_deployment: str = VARIANT_DEPLOYMENT,
    aws_credentials: CredentialsParameter = None,
) -> dict[str, Any]:
    """Run every variant of ``base`` as a flow run of its own (equal stages once), rank them, deploy only the winner.

    Args:
        base: The end-to-end parameters every variant starts from; ``run_name`` names the sweep.
        variants: Named patches of ``base`` (dot paths: ``sft.overrides.lr``, ``stages``, ``data.sft_rows``).
        variant_runs: subflow: each variant a subflow of this run, in this process. deployment: each variant a run
            of ``variant_deployment`` on its work pool (spread over the pool's workers), started with an
            idempotency key, so a retried or re-run sweep never starts a second run of a variant.
        variant_deployment: The deployment a variant runs as with ``variant_runs: deployment``.
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    run = run_context(aws_credentials, base.run_name)
    run.settings.require("bucket", "role_arn")
    setup = sweep_setup(base, variants)
    if variant_runs == "subflow" and any(p.wait.mode == "suspend" for p in setup.params.values()):
        raise ConfigError(
            "sweep: wait.mode suspend needs variant_runs deployment (--variant-runs deployment): Prefect suspends "
            "and resumes deployment runs only, and a variant's subflow is none"
        )
    specs = {name: preflight(name, variant, run) for name, variant in setup.params.items()}
    home = Path(base.work_dir) / base.run_name
    wait = base.wait.max_wait_hours * 3600
    notify = base.notifications
    with (
        run_name_held(base.run_name, wait_seconds=wait, settings=run.settings),
        run_notifications(base.run_name, notify.sns_topic_arn, notify.events, run.settings),
        flow_run_scratch(home) as work,
    ):
        ctx = StageContext(run, resolve_model(base.model, run.settings), RunLog(base.run_name), base.wait, None, work)
        spending = sweep_plan(base, specs, setup.merged, run)
        for line in spending.lines():
            get_run_logger().info(line)
        shared = setup.merged.shared()
        get_run_logger().info(
            "sweep %s: %d variants as %s runs, %d stages in the merged graph (%d shared: %s)",
            base.run_name,
            len(setup.plans),
            variant_runs,
            len(setup.merged.graph.stages),
            len(shared),
            ", ".join(shared) or "none",
        )
        if variant_runs == "deployment":
            launches = variant_launches(setup, ctx, credentials_for_runs(aws_credentials))
            results = run_variant_deployments(variant_deployment, launches, ctx)
        else:
            results = run_variant_subflows(setup, ctx)
        return _finish(setup, results, spending, ctx, home)


def _finish(
    setup: SweepSetup, results: Mapping[str, VariantResult], spending: SweepPlan, ctx: StageContext, home: Path
) -> dict[str, Any]:
    """The leaderboard from the variants' results, the registry's decisions, the winner deployed, the report."""
    base, merged, run = setup.base, setup.merged, ctx.run
    sweep_name = setup.name
    logger = get_run_logger()
    timeline = variant_timeline(setup, results)
    ctx.log.stages += [StageRecord(t.key, t.start, t.end, status=t.status) for t in timeline]
    jobs = {node: record for name in setup.plans for node, record in variant_jobs(setup, results[name]).items()}
    prices, serverless_prices = load_price_table(), load_serverless_prices()
    labels = setup.labels()
    outcomes: list[VariantOutcome] = []
    candidates: dict[str, TrainedModel | None] = {}
    for name, plan in setup.plans.items():
        result = results[name]
        nodes = {merged.node_of[(name, key)] for key in plan.graph.stages}
        candidates[name] = result.candidate
        spans = [t for t in timeline if t.key in nodes]
        records = list(variant_jobs(setup, result).values())
        cost, basis = usage_cost([job_usage_task(r, run.settings) for r in records], prices, serverless_prices)
        candidate = result.candidate
        outcomes.append(
            VariantOutcome(
                name=name,
                patch=labels[name],
                comparison=result.comparison,
                wall_seconds=max(s.end for s in spans) - min(s.start for s in spans) if spans else None,
                jobs=len(records),
                cost=cost,
                cost_basis=basis,
                model_package_version=candidate.version.arn if candidate and candidate.version else None,
            )
        )
    gate = base.deploy.gate
    board = build_leaderboard(
        outcomes,
        metric=gate.metric,
        min_delta=gate.min_delta,
        alpha=gate.alpha,
        require_significance=gate.require_significance,
        higher_is_better=higher_is_better(gate.metric) if gate.higher_is_better is None else gate.higher_is_better,
    )
    _record_decisions(board, candidates, sweep_name, run.settings)
    deployment = None
    if board.winner and base.deploy.enabled and "deploy" not in base.skip:
        winner = results[board.winner]
        data: PreparedData = winner.outputs[merged.node_of[(board.winner, DATA)]]
        deployment = _deploy_winner(base, candidates[board.winner], data, ctx)
    elif base.cleanup:
        run_stages(Graph([cleanup_stage(base.deploy, [])]), ctx)
    for line in board.lines():
        logger.info(line)
    publish_table(
        board.records(),
        key=artifact_key("sweep-leaderboard", sweep_name),
        description=f"Sweep {sweep_name}: {len(setup.plans)} variants on {gate.metric}; {board.winner_line()}",
    )
    report = _publish_report(setup, board, results, ctx, home, deployment)
    mlflow_run = _track(base, board, run)
    create_markdown_artifact(
        "\n".join([f"# novaflow sweep `{sweep_name}`", "", "```", *spending.lines(), "", *board.lines(), "```", ""]),
        key=artifact_key("sweep-summary", sweep_name),
        description=f"novaflow sweep {sweep_name}: {board.winner_line()}",
    )
    return {
        "sweep": sweep_name,
        "variants": {name: outcome.patch for name, outcome in zip(setup.plans, outcomes, strict=True)},
        "variant_runs": {name: result.flow_run_id for name, result in results.items()},
        "nodes": {node: list(vs) for node, vs in merged.shared_by.items()},
        "plan": spending.lines(),
        "jobs": {node: record.name for node, record in jobs.items()},
        "leaderboard": board.records(),
        "lines": board.lines(),
        "winner": board.winner,
        "winner_line": board.winner_line(),
        "deployment": deployment,
        "report": report,
        "timeline": {t.stage: (round(t.start, 3), round(t.end, 3)) for t in ctx.log.stages},
        "mlflow_run": mlflow_run,
    }


def _record_decisions(
    board: Leaderboard,
    candidates: Mapping[str, TrainedModel | None],
    sweep_name: str,
    settings: NovaflowSettings,
) -> None:
    """The winner's version Approved, every other variant's Rejected with the reason (a version two variants share
    is decided once, the winner's decision first)."""
    decided: set[str] = set()
    order = sorted(candidates, key=lambda n: n != board.winner)
    for name in order:
        trained = candidates[name]
        if trained is None or trained.version is None or trained.version.arn in decided:
            continue
        decided.add(trained.version.arn)
        if name == board.winner:
            set_approval_task(
                trained.version.arn, APPROVED, f"sweep {sweep_name}: winner; {board.reason}", settings=settings
            )
        else:
            lost = f"winner: {board.winner}" if board.winner else f"no winner: {board.reason}"
            set_approval_task(
                trained.version.arn, REJECTED, f"sweep {sweep_name}: not the winner ({lost})", settings=settings
            )


def _deploy_winner(
    base: EndToEndParams, trained: TrainedModel | None, data: PreparedData, ctx: StageContext
) -> str | None:
    """The winner deployed under the sweep's name (and smoke-tested, and torn down with ``cleanup``)."""
    if trained is None:
        return None
    checkpoint = trained.checkpoint
    if trained.version is not None:
        from tasks.registry import approved_checkpoint_task

        checkpoint = approved_checkpoint_task(trained.version.arn, settings=ctx.settings)
    stages = [deploy_stage(base.deploy, checkpoint=checkpoint)]
    if base.deploy.smoke_rows:
        stages.append(smoke_stage(base.deploy.smoke_rows, smoke_labels(base), eval_uri=data.uris[DataFormat.EVAL]))
    if base.cleanup:
        stages.append(cleanup_stage(base.deploy, [stages[-1].key]))
    done = run_stages(Graph(stages), ctx).outputs
    deployed: Deployment = done[DEPLOY]
    if done.get(SMOKE):
        ctx.log.notes.append(str(done[SMOKE]))
    return deployed.describe()


def _publish_report(
    setup: SweepSetup,
    board: Leaderboard,
    results: Mapping[str, VariantResult],
    ctx: StageContext,
    home: Path,
    deployment: str | None,
) -> dict[str, str]:
    """One HTML report for the sweep: the leaderboard, every evaluation, the training curves overlaid by variant,
    the timeline of the merged graph (each stage when whichever variant ran it)."""
    base, merged = setup.base, setup.merged
    evaluations: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for name, plan in setup.plans.items():
        result = results[name]
        for key in plan.evaluations:
            evaluations.setdefault(merged.node_of[(name, key)], result.outputs[key])
        for key, series in result.curves.items():
            curves.setdefault(merged.node_of[(name, key)], series)
    content = RunReport(
        run_name=base.run_name,
        title=f"novaflow sweep {base.run_name}",
        stages=evaluations,
        deployment=deployment.replace("`", "") if deployment else None,
        not_deployed=None if deployment else ("no winner" if not board.winner else "deployment not asked for"),
        curves=curves,
        timeline=ctx.log.timeline(),
        leaderboard=board.records(),
        winner_line=board.winner_line(),
        notes=list(ctx.log.notes),
    )
    where = publish_report_task(
        content,
        str(home / "report.html"),
        s3_uri=f"{ctx.prefix}/report.html",
        key_suffix="sweep",
        settings=ctx.settings,
    )
    return dict(where)


def _track(base: EndToEndParams, board: Leaderboard, run: RunContext) -> str | None:
    """An MLflow parent run for the sweep and one child per variant (its patch, metrics, delta and verdict)."""
    uri = resolve_tracking_uri(base.tracking.mlflow_uri)
    if not uri:
        return None
    parent = start_tracking_task(
        uri,
        experiment=experiment_name(base),
        run_name=base.run_name,
        tags={FLOW_RUN_TAG: current_flow_run_id(), "novaflow.sweep": base.run_name},
        params={"variants": len(board.rows), "metric": board.metric},
    )
    for row in board.rows:
        record = row.record()
        metrics = {k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        track_stage_task(
            parent,
            row.name,
            params={"patch": row.outcome.patch},
            metrics=metrics | row.metrics,
            tags={"novaflow.winner": "yes" if row.name == board.winner else "no"},
        )
    finish_tracking_task(parent, tags={"novaflow.winner": board.winner or "none"})
    return parent.parent_id if parent.active else None
