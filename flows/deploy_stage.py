"""Gated deployment, smoke invocation and teardown, plus the `deploy` and `cleanup` flows.

Nothing is deployed unless the gate approves (and, when asked, a person): an endpoint is billed by the hour.
The candidate is the last trained stage, compared with the baseline on the same evaluation rows.
"""

from __future__ import annotations

import re
from typing import Any

from prefect import flow, get_run_logger
from pydantic import Field

from flows.params import MODEL_HELP, DeployParams, EndToEndParams, FormParams, ModelName, resolve_model
from flows.stages import RunLog, TrainedModel
from novaflow.errors import ConfigError, DeployError
from novaflow.evaluation.compare import StageComparison
from novaflow.evaluation.tasks import higher_is_better
from novaflow.registry.packages import APPROVED, PENDING, REJECTED
from reward_lambda.labels import DEFAULT_LABELS
from tasks.credentials import CredentialsParameter, use_run_credentials
from tasks.deploy import deploy_task, gate_task, request_approval, smoke_test_task, teardown_task
from tasks.registry import approved_checkpoint_task, set_approval_task
from tasks.runs import current_flow_run_id


def deployment_name(run_name: str, explicit: str | None = None) -> str:
    """A valid SageMaker / Bedrock name for the run's deployment (letters, digits, hyphens, <= 63)."""
    if explicit:
        return explicit
    base = re.sub(r"[^a-zA-Z0-9-]+", "-", f"novaflow-{run_name}").strip("-")
    return re.sub(r"-{2,}", "-", base)[:63].rstrip("-")


def deploy_and_smoke(
    params: EndToEndParams,
    trained: TrainedModel,
    comparison: StageComparison,
    *,
    model: str,
    eval_uri: str,
    log: RunLog,
) -> tuple[str, str | None]:
    """Gate (baseline vs the last stage), optional approval, deploy, smoke test; returns (gate, deployment).

    With the registry on, the candidate's version carries every decision: ``Rejected`` with the gate's reason,
    ``PendingManualApproval`` while a person decides, ``Approved`` when it deploys - and the deployment is made
    from the approved version, so a rejected one can never be served.
    """
    logger = get_run_logger()
    gate_params = params.deploy.gate
    if params.deploy.model_package:
        raise ConfigError(
            "deploy.model_package is for the deploy flow; the end-to-end flow deploys the version it trained."
        )
    baseline, candidate = comparison.stages[0], comparison.stages[-1]
    higher = gate_params.higher_is_better
    decision = gate_task(
        comparison,
        gate_params.metric,
        min_delta=gate_params.min_delta,
        require_significance=gate_params.require_significance,
        alpha=gate_params.alpha,
        higher_is_better=higher_is_better(gate_params.metric) if higher is None else higher,
        baseline=baseline,
        candidate=candidate,
    )
    log.gate = decision
    version = trained.version
    if not decision.approved:
        logger.warning("not deploying %s: %s", trained.checkpoint, decision.reason)
        log.notes.append(f"deployment skipped: {decision.reason}")
        _decide(log, trained, REJECTED, decision.reason)
        return f"{candidate} vs {baseline}: {decision.reason}", None
    name = deployment_name(params.run_name, params.deploy.endpoint_name)
    reason = decision.reason
    if gate_params.human_approval:
        where = f"model package {version.arn}" if version else f"checkpoint `{trained.checkpoint}`"
        waiting = f"gate approved; awaiting a person in the Prefect UI (run {current_flow_run_id()})"
        _decide(log, trained, PENDING, waiting)
        try:
            answer = request_approval(
                decision, f"{candidate} {where} as `{name}`", timeout_seconds=gate_params.approval_timeout_seconds
            )
        except DeployError as exc:
            _decide(log, trained, REJECTED, str(exc))
            raise
        note = f": {answer.note}" if answer.note else ""
        reason = f"approved by {answer.reviewer or 'the reviewer'}{note}; {reason}"
    _decide(log, trained, APPROVED, reason)
    checkpoint = approved_checkpoint_task(version.arn) if version else trained.checkpoint
    served = _deploy(params.deploy, name, checkpoint, model)
    log.locations[f"deployment-{params.deploy.target}"] = served.invoke_id
    if params.deploy.smoke_rows:
        labels = params.reward.labels or (list(DEFAULT_LABELS) if params.data.source == "sample" else None)
        smoke = smoke_test_task(
            params.deploy.target, served.invoke_id, eval_uri, rows=params.deploy.smoke_rows, labels=labels
        )
        log.notes.append(smoke.summary())
    if version is not None:
        log.notes.append(f"deployed from model package version {version.arn}")
    return f"{candidate} vs {baseline}: {decision.reason}", f"{params.deploy.target} `{served.invoke_id}`"


def _decide(log: RunLog, trained: TrainedModel, status: str, reason: str) -> None:
    if trained.version is not None:
        log.versions[trained.stage] = set_approval_task(trained.version.arn, status, reason)


def _deploy(deploy: DeployParams, name: str, checkpoint: str, model: str) -> Any:
    return deploy_task(
        deploy.target,
        name,
        checkpoint,
        model=model,
        instance_type=deploy.instance_type,
        instance_count=deploy.instance_count,
        context_length=deploy.context_length,
        max_concurrency=deploy.max_concurrency,
    )


def teardown_stage(run_name: str, log: RunLog, deploy: DeployParams) -> None:
    """Remove what novaflow created for this run's deployment (tagged resources only)."""
    report = teardown_task(deployment_name(run_name, deploy.endpoint_name), target=deploy.target)
    log.notes.append(f"teardown removed {len(report.removed)} resource(s)")


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


@flow(name="deploy")
def deploy(params: DeployFlowParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Deploy a checkpoint (no gate: the caller decided) and smoke-test it.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    use_run_credentials(aws_credentials)
    name = deployment_name(params.run_name, params.deploy.endpoint_name)
    if bool(params.checkpoint_uri) == bool(params.deploy.model_package):
        raise ConfigError("Give exactly one of checkpoint_uri and deploy.model_package to deploy.")
    checkpoint = params.checkpoint_uri or approved_checkpoint_task(str(params.deploy.model_package))
    served = _deploy(params.deploy, name, checkpoint, resolve_model(params.model))
    out: dict[str, Any] = {"target": params.deploy.target, "invoke_id": served.invoke_id}
    if params.eval_uri and params.deploy.smoke_rows:
        report = smoke_test_task(
            params.deploy.target,
            served.invoke_id,
            params.eval_uri,
            rows=params.deploy.smoke_rows,
            labels=params.labels or None,
        )
        out["smoke"] = report.summary()
    return out


@flow(name="cleanup")
def cleanup(params: CleanupParams = CleanupParams(), aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Tear down what novaflow created (endpoints, configs, models, Bedrock resources, roles); tagged only.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    use_run_credentials(aws_credentials)
    report = teardown_task(params.deployment, dry_run=params.dry_run)
    return {"removed": report.removed, "kept": report.kept}
