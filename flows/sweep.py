"""`sweep`: variants of one end-to-end run as one graph, equal work done once, a leaderboard, one winner.

Each variant is the base parameters with a patch (``sft.overrides.lr=1e-5``, ``stages=[sft]``). Its end-to-end
graph is built as a run of its own would build it; the graphs are then merged: a stage whose key, parameters and
upstream stages are equal in several variants is one node, so the data is prepared and uploaded once, the baseline
evaluated once, and a grid that varies only RFT settings trains one SFT job. The merged graph runs like any run's
(stages start when their inputs exist; a failure stops the rest). Every variant is checked (its dry runs) before
anything is spent, and a bad one is refused by its name. Then the leaderboard: each variant's last stage against
the baseline, p-values adjusted over the variants compared (Holm), the gate applied after the adjustment; only
the winner may be deployed, and with the registry on the winner's version is Approved and the others Rejected.

Jobs keep their spec-hash names, so a sweep run again submits nothing (every job is attached), and a sweep with a
variant added runs only the new variant's jobs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flows.end_to_end import RunPlan, plan_checks, run_plan, smoke_labels
from flows.graph import run_stages
from flows.hooks import JOB_HOOKS
from flows.params import EndToEndParams, resolve_model
from flows.runners import thread_pool
from flows.stages.baseline import BASELINE
from flows.stages.checks import TRAINING_STAGES, registry_group, require_registry, require_supported
from flows.stages.cleanup import cleanup_stage
from flows.stages.compare import COMPARE
from flows.stages.context import StageContext
from flows.stages.deploy import DEPLOY, Deployment, deploy_stage
from flows.stages.evaluation import evaluation_key
from flows.stages.jobs import spec_for
from flows.stages.prepare_data import PreparedData, flow_run_scratch
from flows.stages.run_log import RunLog
from flows.stages.smoke import SMOKE, smoke_stage
from flows.stages.training import TrainedModel
from flows.tracking import experiment_name
from novaflow.catalog import DataFormat, Method
from novaflow.errors import ConfigError, NovaflowError
from novaflow.evaluation.compare import StageComparison
from novaflow.evaluation.tasks import higher_is_better
from novaflow.jobs.dryrun import dry_run
from novaflow.jobs.records import JobRecord
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission
from novaflow.recipes.serverless import load_serverless_prices
from novaflow.recipes.tables import load_price_table
from novaflow.registry.packages import APPROVED, REJECTED
from novaflow.reports.run import RunReport
from novaflow.runs.context import RunContext
from novaflow.runs.graph import Graph, Stage
from novaflow.settings import NovaflowSettings
from novaflow.sweeps.leaderboard import Leaderboard, VariantOutcome, build_leaderboard
from novaflow.sweeps.plan import PlannedJob, SweepPlan, plan_sweep, usage_cost
from novaflow.sweeps.variants import Variant, apply_patch
from novaflow.tracking.mlflow import FLOW_RUN_TAG, resolve_tracking_uri
from tasks.common import artifact_key, publish_table
from tasks.credentials import CredentialsParameter, run_context
from tasks.jobs import job_usage_task
from tasks.quotas import run_capacities
from tasks.registry import set_approval_task
from tasks.reports import publish_report_task
from tasks.runs import current_flow_run_id, run_name_held, run_notifications
from tasks.tracking import finish_tracking_task, start_tracking_task, track_stage_task


class SweepVariant(BaseModel):
    """One variant as the run form takes it: a name and a patch of dot paths in the end-to-end parameters."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., description="Names the variant in the leaderboard, the report and MLflow.")
    patch: dict[str, Any] = Field(
        default_factory=dict,
        description="Dot path -> value, e.g. {'sft.overrides.lr': 1e-5, 'stages': ['sft']}.",
    )


PREFLIGHT_LATER = frozenset({"train_uri", "train", "validation", "reward_lambda_arn", "model_name_or_path"})
"""Dry-run fields a sweep cannot check before it runs: what earlier stages produce (data, checkpoints, Lambdas).
Each job's own dry run checks them again before it is submitted."""


def variant_params(base: EndToEndParams, variants: Sequence[Variant]) -> dict[str, EndToEndParams]:
    """Each variant's parameters: the base with its patch, the sweep's run name (one data prefix, so equal work
    has equal spec hashes), no deployment or clean-up of its own (only the winner is deployed, by the sweep)."""
    if not variants:
        raise ConfigError("sweep: no variants; give --vary PATH=V1,V2 or --variants FILE")
    raw = base.model_dump(mode="json")
    out: dict[str, EndToEndParams] = {}
    for variant in variants:
        patched = apply_patch(raw, variant)
        patched.update(run_name=base.run_name, cleanup=False)
        patched["deploy"]["enabled"] = False
        try:
            out[variant.name] = EndToEndParams.model_validate(patched)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ConfigError(f"variant {variant.name}: {where}: {first.get('msg', 'invalid')}") from None
    return out


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


@dataclass
class MergedGraph:
    """The variants' graphs as one: each node with the variants that share it, and where each variant's stage is."""

    graph: Graph
    node_of: dict[tuple[str, str], str] = field(default_factory=dict)
    """(variant, stage key) -> node key."""
    key_of: dict[str, str] = field(default_factory=dict)
    """Node key -> the stage key it runs."""
    shared_by: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Node key -> the variants that run it."""


def merge_graphs(
    plans: Mapping[str, RunPlan], context_for: Callable[[tuple[str, ...], str], StageContext]
) -> MergedGraph:
    """One node per distinct stage: equal key, identity and upstream nodes (its signature). A node every variant
    shares keeps its stage key (``data``, ``baseline``); the others are named ``<variants>/<key>``
    (``lr-1e-05/rft``). Each node runs with ``context_for(<its variants>, <its signature>)``."""
    names = list(plans)
    signatures: dict[tuple[str, str], str] = {}

    def signature(variant: str, key: str) -> str:
        if (variant, key) not in signatures:
            graph = plans[variant].graph
            upstream = sorted(signature(variant, up) for up in graph.upstream(key))
            text = "|".join([key, graph.stages[key].identity, *upstream])
            signatures[(variant, key)] = hashlib.sha256(text.encode()).hexdigest()
        return signatures[(variant, key)]

    sharing: dict[str, list[str]] = {}
    for variant in names:
        for key in plans[variant].graph.order():
            sharing.setdefault(signature(variant, key), []).append(variant)
    merged = MergedGraph(Graph([]))
    for sig, variants in sharing.items():
        first = variants[0]
        key = next(k for (v, k), s in signatures.items() if v == first and s == sig)
        node = key if len(variants) == len(names) else f"{'+'.join(variants)}/{key}"
        merged.shared_by[node] = tuple(variants)
        merged.key_of[node] = key
        for variant in variants:
            merged.node_of[(variant, key)] = node
    for sig, variants in sharing.items():
        first = variants[0]
        key = next(k for (v, k), s in signatures.items() if v == first and s == sig)
        stage = plans[first].graph.stages[key]
        mapping = {need: merged.node_of[(first, plans[first].graph.producer[need])] for need in stage.needs}
        ctx = context_for(tuple(variants), sig)
        merged.graph.add(_renamed(stage, merged.node_of[(first, key)], mapping, ctx))
    merged.graph.check()
    return merged


def _renamed(stage: Stage, node: str, mapping: Mapping[str, str], ctx: StageContext) -> Stage:
    def run(_: Any, inputs: Mapping[str, Any]) -> Any:
        return stage.run(ctx, {need: inputs[mapping[need]] for need in stage.needs})

    return Stage(node, tuple(mapping[need] for need in stage.needs), run, identity=stage.identity)


@flow(name="sweep", task_runner=thread_pool(max_workers=4), **JOB_HOOKS)
def sweep(
    base: EndToEndParams = EndToEndParams(),
    variants: list[SweepVariant] | None = None,
    aws_credentials: CredentialsParameter = None,
) -> dict[str, Any]:
    """Run every variant of ``base`` as one graph (equal stages once), rank them, deploy only the winner.

    Args:
        base: The end-to-end parameters every variant starts from; ``run_name`` names the sweep.
        variants: Named patches of ``base`` (dot paths: ``sft.overrides.lr``, ``stages``, ``data.sft_rows``).
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    run = run_context(aws_credentials, base.run_name)
    run.settings.require("bucket", "role_arn")
    named = [Variant(v.name, dict(v.patch)) for v in (variants or [])]
    params = variant_params(base, named)
    specs = {name: preflight(name, variant, run) for name, variant in params.items()}
    plans = {name: run_plan(variant) for name, variant in params.items()}
    home = Path(base.work_dir) / base.run_name
    wait = base.wait.max_wait_hours * 3600
    notify = base.notifications
    with (
        run_name_held(base.run_name, wait_seconds=wait, settings=run.settings),
        run_notifications(base.run_name, notify.sns_topic_arn, notify.events, run.settings),
        flow_run_scratch(home) as work,
    ):
        return _run(base, params, {v.name: v.label() for v in named}, plans, specs, run, home, work)


def _run(
    base: EndToEndParams,
    params: Mapping[str, EndToEndParams],
    labels: Mapping[str, str],
    plans: Mapping[str, RunPlan],
    specs: Mapping[str, Mapping[str, JobSpec]],
    run: RunContext,
    home: Path,
    work: Path,
) -> dict[str, Any]:
    logger = get_run_logger()
    sweep_name = base.run_name
    every = tuple(plans)
    contexts: dict[tuple[str, ...], StageContext] = {}

    def context_for(variants: tuple[str, ...], signature: str) -> StageContext:
        """A node's context: the log of the variants that share it (their jobs, curves), and a place of its own
        named by its signature - ``runs/<sweep>/<signature>`` in S3, ``<work>/<signature>`` locally - so equal work
        lands where it landed before however many variants share it (a re-run, or a sweep with one more variant,
        finds its data and jobs)."""
        if variants not in contexts:
            first = params[variants[0]]
            model = resolve_model(first.model, run.settings)
            group = registry_group(first.registry, model, sweep_name)
            name = sweep_name if variants == every else f"{sweep_name}-{'+'.join(variants)}"
            contexts[variants] = StageContext(run, model, RunLog(name), first.wait, group, work)
        shared = contexts[variants]
        place = RunContext(run_name=f"{sweep_name}/{signature[:12]}", settings=run.settings)
        return replace(shared, run=place, work=work / signature[:12])

    merged = merge_graphs(plans, context_for)
    spending = sweep_plan(base, specs, merged, run)
    for line in spending.lines():
        logger.info(line)
    shared = [node for node, vs in merged.shared_by.items() if len(vs) > 1]
    logger.info(
        "sweep %s: %d variants, %d stages in the merged graph (%d shared: %s)",
        sweep_name,
        len(plans),
        len(merged.graph.stages),
        len(shared),
        ", ".join(shared) or "none",
    )
    sweep_ctx = StageContext(run, resolve_model(base.model, run.settings), RunLog(sweep_name), base.wait, None, work)
    outputs = run_stages(merged.graph, sweep_ctx).outputs

    timeline = {t.stage: t for t in sweep_ctx.log.stages}
    prices, serverless_prices = load_price_table(), load_serverless_prices()
    outcomes: list[VariantOutcome] = []
    candidates: dict[str, TrainedModel | None] = {}
    for name, plan in plans.items():
        nodes = [merged.node_of[(name, key)] for key in plan.graph.stages]
        comparison: StageComparison | None = outputs.get(merged.node_of.get((name, COMPARE), ""))
        candidate = outputs.get(merged.node_of[(name, plan.candidate)]) if plan.candidate else None
        candidates[name] = candidate
        spans = [timeline[n] for n in nodes if n in timeline]
        records = _jobs_of(name, plan, merged, contexts)
        cost, basis = usage_cost([job_usage_task(r, run.settings) for r in records], prices, serverless_prices)
        outcomes.append(
            VariantOutcome(
                name=name,
                patch=labels[name],
                comparison=comparison,
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
        deployment = _deploy_winner(base, board.winner, candidates[board.winner], plans, merged, outputs, sweep_ctx)
    elif base.cleanup:
        run_stages(Graph([cleanup_stage(base.deploy, [])]), sweep_ctx)
    for line in board.lines():
        logger.info(line)
    publish_table(
        board.records(),
        key=artifact_key("sweep-leaderboard", sweep_name),
        description=f"Sweep {sweep_name}: {len(plans)} variants on {gate.metric}; {board.winner_line()}",
    )
    report = _publish_report(base, board, plans, merged, outputs, contexts, sweep_ctx, home, deployment)
    mlflow_run = _track(base, board, run)
    create_markdown_artifact(
        "\n".join([f"# novaflow sweep `{sweep_name}`", "", "```", *spending.lines(), "", *board.lines(), "```", ""]),
        key=artifact_key("sweep-summary", sweep_name),
        description=f"novaflow sweep {sweep_name}: {board.winner_line()}",
    )
    return {
        "sweep": sweep_name,
        "variants": {name: outcome.patch for name, outcome in zip(plans, outcomes, strict=True)},
        "nodes": {node: list(vs) for node, vs in merged.shared_by.items()},
        "plan": spending.lines(),
        "jobs": _all_jobs(contexts, every),
        "leaderboard": board.records(),
        "lines": board.lines(),
        "winner": board.winner,
        "winner_line": board.winner_line(),
        "deployment": deployment,
        "report": report,
        "timeline": {t.stage: (round(t.start, 3), round(t.end, 3)) for t in sweep_ctx.log.stages},
        "mlflow_run": mlflow_run,
    }


def _jobs_of(
    name: str, plan: RunPlan, merged: MergedGraph, contexts: Mapping[tuple[str, ...], StageContext]
) -> list[JobRecord]:
    """The jobs a variant used (shared ones included): each of its stages' jobs, in the log of who ran them."""
    jobs: list[JobRecord] = []
    for key in plan.graph.stages:
        node = merged.node_of[(name, key)]
        log = contexts[merged.shared_by[node]].log
        jobs += [r for k, r in log.jobs.items() if k == key or k.startswith(f"{key}-")]
    return jobs


def _all_jobs(contexts: Mapping[tuple[str, ...], StageContext], every: tuple[str, ...]) -> dict[str, str]:
    """Every job of the sweep by node (``sft`` when all variants share it, ``<variants>/sft`` otherwise)."""
    out: dict[str, str] = {}
    for variants, ctx in contexts.items():
        for key, record in ctx.log.jobs.items():
            out[key if variants == every else f"{'+'.join(variants)}/{key}"] = record.name
    return out


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
    base: EndToEndParams,
    winner: str,
    trained: TrainedModel | None,
    plans: Mapping[str, RunPlan],
    merged: MergedGraph,
    outputs: Mapping[str, Any],
    ctx: StageContext,
) -> str | None:
    """The winner deployed under the sweep's name (and smoke-tested, and torn down with ``cleanup``)."""
    if trained is None:
        return None
    data: PreparedData = outputs[merged.node_of[(winner, "data")]]
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
    base: EndToEndParams,
    board: Leaderboard,
    plans: Mapping[str, RunPlan],
    merged: MergedGraph,
    outputs: Mapping[str, Any],
    contexts: Mapping[tuple[str, ...], StageContext],
    ctx: StageContext,
    home: Path,
    deployment: str | None,
) -> dict[str, str]:
    """One HTML report for the sweep: the leaderboard, every evaluation, the training curves overlaid by variant,
    the timeline of the merged graph."""
    evaluations: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for name, plan in plans.items():
        for key in plan.evaluations:
            node = merged.node_of[(name, key)]
            evaluations.setdefault(node, outputs[node])
        for key in plan.graph.stages:
            node = merged.node_of[(name, key)]
            series = contexts[merged.shared_by[node]].log.curves.get(key)
            if series is not None:
                curves.setdefault(node, series)
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
