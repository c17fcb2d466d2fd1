"""Prefect tasks for deployment: the gate, the optional human approval, deploy, smoke test and teardown.

Thin wrappers over :mod:`novaflow.deploy`. Deploying is idempotent in the domain (an existing deployment of the
same spec is reused), so the deploy task is not cached: a re-run re-checks AWS instead of trusting a stale
record. The approval step is a plain function, not a task, because ``pause_flow_run`` must run in the flow
itself. Teardown raises after reporting when anything could not be removed: a quiet failure there is a bill.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from novaflow.catalog import DEFAULT_MODEL
from novaflow.deploy.gate import GateDecision, decide_gate
from novaflow.deploy.names import DEFAULT_CONTEXT_LENGTH, DEFAULT_MAX_CONCURRENCY
from novaflow.deploy.smoke import SmokeReport, load_eval_rows, smoke_test
from novaflow.deploy.stream import StreamResult
from novaflow.deploy.targets import Served, ask, deploy_checkpoint, teardown_services
from novaflow.deploy.teardown import TeardownReport, teardown
from novaflow.errors import DeployError
from novaflow.evaluation.compare import StageComparison
from novaflow.settings import NovaflowSettings
from tasks.common import AWS_RETRIES, artifact_key, publish_table


@task(name="deploy-gate")
def gate_task(
    comparison: StageComparison,
    metric: str = "em",
    *,
    min_delta: float = 0.0,
    require_significance: bool = True,
    alpha: float = 0.05,
    higher_is_better: bool = True,
    baseline: str | None = None,
    candidate: str | None = None,
) -> GateDecision:
    """Decide whether to deploy; the reason goes to the run log and a ``deploy-gate`` artifact either way."""
    decision = decide_gate(
        comparison,
        metric,
        min_delta=min_delta,
        require_significance=require_significance,
        alpha=alpha,
        higher_is_better=higher_is_better,
        baseline=baseline,
        candidate=candidate,
    )
    logger = get_run_logger()
    (logger.info if decision.approved else logger.warning)("deploy gate %s", decision.reason)
    create_markdown_artifact(
        gate_markdown(decision), key=artifact_key("deploy-gate"), description="Promotion gate decision"
    )
    return decision


def gate_markdown(decision: GateDecision) -> str:
    verdict = "APPROVED" if decision.approved else "REFUSED"
    return (
        f"## Deploy gate: {verdict}\n\n{decision.reason}\n\n"
        "| metric | baseline | candidate | delta | CI | p | alpha | margin | n |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        f"| {decision.metric} | {decision.baseline:.4f} | {decision.candidate:.4f} | {decision.delta:+.4f} | "
        f"[{decision.ci_low:+.4f}, {decision.ci_high:+.4f}] | {decision.p_value:.4g} | {decision.alpha} | "
        f"{decision.min_delta:+.4f} | {decision.n} |\n"
    )


class DeployApproval(RunInput):
    """What a person answers in the Prefect UI before a production deployment."""

    approve: bool = Field(False, description="Deploy this checkpoint.")
    reviewer: str = Field("", description="Who decided.")
    note: str = Field("", description="Why (kept in the run log).")


def request_approval(
    decision: GateDecision, what: str, *, timeout_seconds: int = 3600, poll_interval: int = 10
) -> DeployApproval:
    """Pause the flow run until a person approves or rejects ``what`` (call from the flow, not a task).

    Raises DeployError when rejected; a timeout fails the run (Prefect's ``FlowPauseTimeout``) with nothing
    deployed.
    """
    description = (
        f"## Approve deployment\n\n{what}\n\n{gate_markdown(decision)}\n"
        "Set **approve** and your name, then resume the run."
    )
    answer = pause_flow_run(
        wait_for_input=DeployApproval.with_initial_data(description=description, approve=False),
        timeout=timeout_seconds,
        poll_interval=poll_interval,
    )
    logger = get_run_logger()
    if not answer.approve:
        logger.warning("deployment rejected by %s: %s", answer.reviewer or "reviewer", answer.note)
        raise DeployError(
            f"Deployment of {what} rejected by {answer.reviewer or 'the reviewer'}"
            f"{': ' + answer.note if answer.note else ''}."
        )
    logger.info("deployment approved by %s%s", answer.reviewer or "reviewer", f": {answer.note}" if answer.note else "")
    return answer


@task(name="deploy-checkpoint", **AWS_RETRIES)
def deploy_task(
    target: str,
    name: str,
    checkpoint_uri: str,
    *,
    model: str = DEFAULT_MODEL,
    instance_type: str = "ml.p5.48xlarge",
    instance_count: int = 1,
    context_length: int = DEFAULT_CONTEXT_LENGTH,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    model_units: int = 1,
    mode: str = "create",
    settings: NovaflowSettings,
) -> Served:
    """Deploy (or find) the checkpoint on ``target`` and wait until it serves; statuses go to the run log."""
    logger = get_run_logger()
    served = deploy_checkpoint(
        target,
        name,
        checkpoint_uri,
        model=model,
        instance_type=instance_type,
        instance_count=instance_count,
        context_length=context_length,
        max_concurrency=max_concurrency,
        model_units=model_units,
        mode=mode,
        on_status=lambda s: logger.info("%s %s: %s", target, name, s),
        settings=settings,
    )
    logger.info("%s %s is %s; invoke with %s", target, name, served.status, served.invoke_id)
    return served


@task(name="smoke-test-deployment", **AWS_RETRIES)
def smoke_test_task(
    target: str,
    invoke_id: str,
    eval_uri: str,
    *,
    rows: int = 3,
    labels: Sequence[str] | None = None,
    settings: NovaflowSettings,
) -> SmokeReport:
    """Send ``rows`` eval rows (plain calls) plus one streamed call (time to first token); raise if any answer
    does not parse, so a deployment that cannot answer fails the run instead of billing quietly."""
    logger = get_run_logger()
    examples = load_eval_rows(eval_uri, settings, limit=rows)
    report = smoke_test(
        lambda q, s: ask(target, invoke_id, q, system=s, settings=settings).text, examples, labels=labels
    )
    streamed = ask(
        target, invoke_id, examples[0]["query"], system=examples[0].get("system"), stream=True, settings=settings
    )
    if not isinstance(streamed, StreamResult):
        raise DeployError(f"{target} {invoke_id}: streaming call returned no stream")
    table = [
        {
            "query": c.query[:80],
            "expected": c.expected,
            "answer": c.answer[:120],
            "label": c.label,
            "ok": c.ok,
            "error": c.error,
        }
        for c in report.cases
    ]
    publish_table(
        table,
        key=artifact_key("smoke-test", target),
        description=f"{report.summary()}; streamed first token after "
        f"{_seconds(streamed.first_token_seconds)}, total {streamed.total_seconds:.3f} s",
    )
    logger.info(
        "%s; stream: first token %s, %d pieces",
        report.summary(),
        _seconds(streamed.first_token_seconds),
        len(streamed.pieces),
    )
    if not report.passed:
        raise DeployError(f"{target} {invoke_id} failed its {report.summary()}")
    return report


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.3f} s"


@task(name="teardown-deployment", **AWS_RETRIES)
def teardown_task(
    deployment: str | None,
    *,
    target: str | None = None,
    dry_run: bool = False,
    settings: NovaflowSettings,
) -> TeardownReport:
    """Remove what novaflow created for ``deployment`` (all novaflow deployments when None); only tagged
    resources. Raises after the report when something could not be removed or listed."""
    services = teardown_services(target) if target else ("sagemaker", "bedrock", "iam")
    report = teardown(deployment, dry_run=dry_run, services=services, settings=settings)
    logger = get_run_logger()
    for line in report.removed:
        logger.info("%s %s", "would remove" if dry_run else "removed", line)
    for line in report.kept:
        logger.info("kept %s", line)
    rows = (
        [{"resource": r, "action": "would remove" if dry_run else "removed"} for r in report.removed]
        + [{"resource": r, "action": "already gone"} for r in report.already_gone]
        + [{"resource": r, "action": "kept"} for r in report.kept]
        + [{"resource": r, "action": "FAILED"} for r in report.failed + report.unlisted]
    )
    publish_table(
        rows or [{"resource": "(nothing found)", "action": "-"}],
        key=artifact_key("teardown", deployment or "all"),
        description=f"Teardown of {deployment or 'every novaflow deployment'}",
    )
    if not report.ok:
        raise DeployError("Teardown left resources behind: " + "; ".join(report.failed + report.unlisted))
    return report
