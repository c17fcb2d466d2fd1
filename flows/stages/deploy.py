"""The ``deploy`` stage: the approved model on SageMaker or Bedrock (an endpoint bills by the hour, so it runs
only after the gate approved; the deploy flow, where a person already decided, runs it without a gate)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flows.params import DeployParams
from flows.stages.context import StageContext
from flows.stages.gate import GATE, GateOutcome
from novaflow.deploy.names import deployment_name
from novaflow.runs.graph import Stage
from tasks.deploy import deploy_task
from tasks.registry import approved_checkpoint_task

DEPLOY = "deploy"


@dataclass(frozen=True)
class Deployment:
    """Where the model serves: the target and what a client invokes (endpoint name or Bedrock ARN)."""

    target: str
    invoke_id: str

    def describe(self) -> str:
        return f"{self.target} `{self.invoke_id}`"


def deploy_checkpoint(ctx: StageContext, deploy: DeployParams, checkpoint: str) -> Deployment:
    """Deploy ``checkpoint`` under the run's deployment name with the form's tier and instances."""
    served = deploy_task(
        deploy.target,
        deployment_name(ctx.run.run_name, deploy.endpoint_name),
        checkpoint,
        model=ctx.model,
        instance_type=deploy.instance_type,
        instance_count=deploy.instance_count,
        context_length=deploy.context_length,
        max_concurrency=deploy.max_concurrency,
        settings=ctx.settings,
    )
    ctx.log.locations[f"deployment-{deploy.target}"] = served.invoke_id
    return Deployment(deploy.target, served.invoke_id)


def deploy_stage(deploy: DeployParams, *, checkpoint: str | None = None) -> Stage:
    """After the gate: the approved version's checkpoint (None when the gate rejected). Without a gate
    (``checkpoint`` or ``deploy.model_package`` given): that model, which must be Approved when it is a version."""
    if checkpoint is not None or deploy.model_package:

        def direct(ctx: StageContext, inputs: Mapping[str, Any]) -> Deployment:
            return deploy_checkpoint(
                ctx, deploy, checkpoint or approved_checkpoint_task(str(deploy.model_package), settings=ctx.settings)
            )

        return Stage(DEPLOY, (), direct)

    def gated(ctx: StageContext, inputs: Mapping[str, Any]) -> Deployment | None:
        outcome: GateOutcome = inputs[GATE]
        if not outcome.approved:
            return None
        version = outcome.trained.version
        deployed = deploy_checkpoint(
            ctx,
            deploy,
            approved_checkpoint_task(version.arn, settings=ctx.settings) if version else outcome.trained.checkpoint,
        )
        if version is not None:
            ctx.log.notes.append(f"deployed from model package version {version.arn}")
        return deployed

    return Stage(DEPLOY, (GATE,), gated)
