"""The `deploy` and `cleanup` flows: a checkpoint or approved model package version deployed and smoke-tested (the
same ``deploy`` and ``smoke`` stages the end-to-end flow runs after its gate), and novaflow's resources removed.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from pydantic import Field

from flows.graph import run_stages
from flows.hooks import JOB_HOOKS
from flows.params import MODEL_HELP, DeployParams, FormParams, ModelName, WaitParams, resolve_model
from flows.stages.context import StageContext
from flows.stages.deploy import DEPLOY, Deployment, deploy_stage
from flows.stages.run_log import RunLog
from flows.stages.smoke import SMOKE, smoke_stage
from novaflow.errors import ConfigError
from novaflow.runs.graph import Graph
from reward_lambda.labels import DEFAULT_LABELS
from tasks.credentials import CredentialsParameter, run_context, use_run_credentials
from tasks.deploy import teardown_task


class DeployFlowParams(FormParams):
    run_name: str = Field("manual", description="Names the deployment: novaflow-{run_name}.")
    model: ModelName = Field(None, description="The Nova model the checkpoint was trained from. " + MODEL_HELP)
    checkpoint_uri: str | None = Field(
        None, description="Escrow checkpoint (manifest.json checkpoint_s3_bucket); or give deploy.model_package."
    )
    eval_uri: str | None = Field(None, description="gen_qa.jsonl whose first rows are sent as a smoke test.")
    deploy: DeployParams = Field(default_factory=DeployParams)
    labels: list[str] = Field(
        list(DEFAULT_LABELS),
        description="Label set the smoke-test answers must name (empty: any answer).",
    )


class CleanupParams(FormParams):
    deployment: str | None = Field(
        None, description="Deployment name (novaflow-{run_name}); empty = every novaflow deployment."
    )
    dry_run: bool = Field(False, description="Only list what would be removed.")


@flow(name="deploy", **JOB_HOOKS)
def deploy(params: DeployFlowParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Deploy a checkpoint (no gate: the caller decided) and smoke-test it.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    run = run_context(aws_credentials, params.run_name)
    if bool(params.checkpoint_uri) == bool(params.deploy.model_package):
        raise ConfigError("Give exactly one of checkpoint_uri and deploy.model_package to deploy.")
    stages = [deploy_stage(params.deploy, checkpoint=params.checkpoint_uri)]
    if params.eval_uri and params.deploy.smoke_rows:
        stages.append(smoke_stage(params.deploy.smoke_rows, params.labels, eval_uri=params.eval_uri))
    ctx = StageContext(run, resolve_model(params.model, run.settings), RunLog(params.run_name), WaitParams())
    outputs = run_stages(Graph(stages), ctx).outputs
    deployed: Deployment = outputs[DEPLOY]
    out: dict[str, Any] = {"target": deployed.target, "invoke_id": deployed.invoke_id}
    if SMOKE in outputs:
        out["smoke"] = outputs[SMOKE]
    return out


@flow(name="cleanup")
def cleanup(params: CleanupParams = CleanupParams(), aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Tear down what novaflow created (endpoints, configs, models, Bedrock resources, roles); tagged only.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    settings = use_run_credentials(aws_credentials)
    report = teardown_task(params.deployment, dry_run=params.dry_run, settings=settings)
    return {"removed": report.removed, "kept": report.kept}
