"""The evaluation stages: a model (the base model, a stage's checkpoint or version) on the held-out gen_qa rows,
then by the run's added task (an LLM judge, the reward Lambda, a benchmark); with the registry on, the metrics
are recorded on the stage's model package version.

The evaluation after a stage (``post-sft``) needs only that stage's model, so it runs beside the next training
stage; the gate waits for the evaluations it compares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger

from flows.params import EvaluationParams, JobParams
from flows.stages.context import StageContext
from flows.stages.jobs import run_job, spec_for
from flows.stages.training import TrainedModel
from novaflow.catalog import DataFormat, Method, Platform, get_model
from novaflow.evaluation.judging import JUDGE_FILE
from novaflow.evaluation.results import EvalResult
from novaflow.evaluation.tasks import GEN_QA, JUDGE, RFT_EVAL, resolve_task
from novaflow.jobs.spec import JobSpec
from novaflow.runs.graph import Stage
from novaflow.tracking.records import eval_metrics
from tasks.evaluation import parse_eval_output_task, upload_judge_dataset_task
from tasks.jobs import locate_eval_output_task
from tasks.registry import record_metrics_task


def evaluation_key(stage: str) -> str:
    """The one name of the evaluation after training stage ``stage`` (``post-sft``): its log lines, job record,
    metric table artifact, MLflow run, comparison column and report label."""
    return f"post-{stage}"


def evaluate(ctx: StageContext, stage: str, spec: JobSpec, job: JobParams) -> EvalResult:
    """Run an evaluation job, parse its output into the metric table artifact of the stage."""
    done = run_job(ctx, stage, spec, job)
    location = locate_eval_output_task(done, ctx.settings)
    ctx.log.locations[f"{stage}-eval-output"] = location
    result = parse_eval_output_task(location, stage, settings=ctx.settings)
    ctx.log.track_job(stage, done, {"eval_output": location}, metrics=eval_metrics(result))
    return result


@dataclass(frozen=True)
class EvalInputs:
    """What the added evaluation task of a stage needs besides the gen_qa rows."""

    eval_rft_uri: str | None = None
    """The evaluation rows in the RFT format (``rft_eval``)."""
    reward_arn: str | None = None
    """The reward Lambda that grades ``rft_eval`` answers."""


def evaluate_model(
    ctx: StageContext,
    stage: str,
    eval_uri: str,
    trained: TrainedModel | str | None,
    job: EvaluationParams,
    extra: EvalInputs | None = None,
) -> EvalResult:
    """Evaluate a stage's model (or a checkpoint URI; None: the base model) on the gen_qa rows at ``eval_uri``,
    then by ``job.task``; with the registry on, the gen_qa metrics are recorded on the stage's version.

    The added task's result is kept under ``result.related[<prefix>]`` (``judge``, ``rft_eval``, a benchmark), so
    the stage comparison and the gate see its metrics as ``<prefix>:<metric>``.
    """
    model = ctx.model
    if isinstance(trained, TrainedModel) and trained.hyperpod and Platform.parse(job.platform) is not Platform.SMHP:
        cluster, namespace = trained.hyperpod
        get_run_logger().info(
            "%s: the %s checkpoint is evaluated on HyperPod %s, where it was trained", stage, trained.stage, cluster
        )
        job = job.model_copy(update={"platform": "HYPERPOD", "cluster": cluster, "namespace": namespace})
    model_path = trained.source_for(job.platform) if isinstance(trained, TrainedModel) else trained
    spec = spec_for(model, Method.EVALUATION, job, train_uri=eval_uri, model_name_or_path=model_path)
    result = evaluate(ctx, stage, spec, job)
    if isinstance(trained, TrainedModel) and trained.version is not None:
        metrics = {row.name: row.value for row in result.metrics.rows}
        ctx.log.versions[trained.stage] = record_metrics_task(
            trained.version.arn, metrics, stage, settings=ctx.settings
        )
    prefix, recipe_task = resolve_task(job.task or GEN_QA, get_model(model).version)
    if recipe_task is None:
        return result
    extra = extra or EvalInputs()
    job = job.model_copy(update={"existing_job": None})  # an attached job is the gen_qa one, not this
    if prefix == JUDGE:
        judge_uri = upload_judge_dataset_task(result, f"{ctx.prefix}/judge/{stage}/{JUDGE_FILE}", settings=ctx.settings)
        added = spec_for(model, Method.EVALUATION, job, eval_task=recipe_task, train_uri=judge_uri)
    elif prefix == RFT_EVAL:
        if not extra.eval_rft_uri or not extra.reward_arn:
            raise ValueError(f"{stage}: rft_eval needs the evaluation rows in the RFT format and a reward Lambda")
        added = spec_for(
            model,
            Method.EVALUATION,
            job,
            eval_task=recipe_task,
            train_uri=extra.eval_rft_uri,
            model_name_or_path=model_path,
            reward_lambda_arn=extra.reward_arn,
        )
    else:
        overrides = {**job.overrides, **({"subtask": job.subtask} if job.subtask else {})}
        added = spec_for(
            model,
            Method.EVALUATION,
            job.model_copy(update={"overrides": overrides}),
            eval_task=recipe_task,
            model_name_or_path=model_path,
        )
    result.related[prefix] = evaluate(ctx, f"{stage}-{prefix}", added, job)
    return result


def evaluation_stage(
    key: str,
    job: EvaluationParams,
    *,
    of: str | None = None,
    model_path: str | None = None,
    data: str | None = "data",
    eval_uri: str | None = None,
    reward: str | None = None,
) -> Stage:
    """The stage ``key`` evaluating the model of stage ``of`` (else ``model_path``, else the base model) on the
    ``data`` stage's gen_qa rows (or ``eval_uri``); ``rft_eval`` also reads the ``reward`` stage's Lambda."""
    needs = tuple(n for n in (data if eval_uri is None else None, of, reward) if n)

    def run(ctx: StageContext, inputs: Mapping[str, Any]) -> EvalResult:
        reward_arn = inputs[reward] if reward else None
        if eval_uri is not None:
            uri, extra = eval_uri, EvalInputs(reward_arn=reward_arn)
        else:
            prepared = inputs[str(data)]
            uri, extra = prepared.uris[DataFormat.EVAL], EvalInputs(prepared.eval_rft_uri, reward_arn)
        return evaluate_model(ctx, key, uri, inputs[of] if of else model_path, job, extra)

    return Stage(key, needs, run)
