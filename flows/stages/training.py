"""A training stage (SFT, DPO, RFT, CPT): one job from the model of the stage before it (or the base model), its
checkpoint, its curves and, with the registry on, the model package version that holds it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flows.params import JobParams
from flows.stages.context import StageContext
from flows.stages.jobs import run_job, spec_for
from novaflow.catalog import Method, Platform
from novaflow.errors import ConfigError
from novaflow.jobs.spec import JobSpec
from novaflow.registry.packages import ModelVersion
from novaflow.runs.graph import Stage
from novaflow.tracking.records import series_points
from tasks.jobs import resolve_checkpoint_task, training_series_task
from tasks.registry import register_model_task
from tasks.runs import current_flow_run_id


@dataclass(frozen=True)
class TrainedModel:
    """What a training stage produced: its checkpoint and, with the registry on, its model package version."""

    stage: str
    checkpoint: str
    version: ModelVersion | None = None
    hyperpod: tuple[str | None, str | None] | None = None
    """(cluster, namespace) when the stage trained on HyperPod: AWS evaluates such a checkpoint only there."""

    def source_for(self, platform: Platform | str) -> str:
        """What a job on ``platform`` starts from (or evaluates): the version for SERVERLESS, else the checkpoint."""
        if Platform.parse(platform) is not Platform.SERVERLESS:
            return self.checkpoint
        if self.version is None:
            raise ConfigError(
                f"A SERVERLESS job after the {self.stage} stage needs that stage's model package version: turn the "
                "registry on (registry.enabled) or run the job on SMTJ."
            )
        return self.version.arn


def train(ctx: StageContext, stage: str, spec: JobSpec, job: JobParams) -> TrainedModel:
    """Run a training job to the end; its checkpoint (from the registered version or manifest.json), its curves,
    and with a registry group the model package version holding it with its lineage."""
    log, settings = ctx.log, ctx.settings
    done = run_job(ctx, stage, spec, job)
    checkpoint = resolve_checkpoint_task(done, settings)
    log.locations[f"{stage}-checkpoint"] = checkpoint
    series = training_series_task(stage, done, settings)
    log.curves[stage] = series
    outputs = {"checkpoint": checkpoint}
    version = None
    if ctx.group:
        version = register_model_task(
            done, spec, ctx.group, checkpoint, stage=stage, flow_run=current_flow_run_id(), settings=settings
        )
        log.versions[stage] = version
        log.model_package_version = version.arn
        log.locations[f"{stage}-model-package"] = version.arn
        outputs["model_package"] = version.arn
    log.track_job(stage, done, outputs, series=series_points(series))
    hyperpod = (done.cluster, done.namespace) if done.platform is Platform.SMHP else None
    return TrainedModel(stage, checkpoint, version, hyperpod)


def training_stage(
    key: str,
    method: Method,
    job: JobParams,
    *,
    data: str | None = "data",
    train_uri: str | None = None,
    after: str | None = None,
    start_from: str | None = None,
    reward: str | None = None,
    agent: str | None = None,
) -> Stage:
    """The stage ``key`` training ``method``: rows from the ``data`` stage's output in the method's format (or the
    given ``train_uri``), starting from the model of the stage ``after`` (or ``start_from``, or the base model);
    RFT names the reward Lambda the ``reward`` stage gave, multi-turn RFT the agent the ``agent`` stage checked."""
    needs = tuple(n for n in (data if train_uri is None else None, after, reward, agent) if n)

    def run(ctx: StageContext, inputs: Mapping[str, Any]) -> TrainedModel:
        uri = train_uri or inputs[str(data)].uris[method.data_format]
        previous: TrainedModel | None = inputs[after] if after else None
        extra: dict[str, Any] = {"reward_lambda_arn": inputs[reward]} if reward else {}
        if agent:
            extra["agent_arn"] = inputs[agent]
        spec = spec_for(
            ctx.model,
            method,
            job,
            group=ctx.group,
            train_uri=uri,
            model_name_or_path=previous.source_for(job.platform) if previous else start_from,
            **extra,
        )
        return train(ctx, key, spec, job)

    return Stage(key, needs, run)
