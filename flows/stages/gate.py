"""The ``gate`` stage: the last trained stage against the baseline on the gate metric (paired test), then, when
asked, a person; the candidate's model package version carries every decision (``Rejected`` with the gate's
reason, ``PendingManualApproval`` while a person decides, ``Approved`` when it may be deployed), so a rejected
version can never be served."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger

from flows.params import DeployParams
from flows.stages.compare import COMPARE
from flows.stages.context import StageContext
from flows.stages.training import TrainedModel
from novaflow.deploy.names import deployment_name
from novaflow.errors import DeployError
from novaflow.evaluation.compare import StageComparison
from novaflow.evaluation.tasks import higher_is_better
from novaflow.registry.packages import APPROVED, PENDING, REJECTED
from novaflow.runs.graph import Stage
from tasks.deploy import gate_task, request_approval
from tasks.registry import set_approval_task
from tasks.runs import current_flow_run_id

GATE = "gate"


@dataclass(frozen=True)
class GateOutcome:
    """The decision on the candidate: ``summary`` is the line the run prints (``post-rft vs baseline: ...``)."""

    summary: str
    approved: bool
    trained: TrainedModel


def gate_stage(deploy: DeployParams, candidate: str) -> Stage:
    """Needs the comparison and the ``candidate`` training stage's model; the baseline is the comparison's first."""

    def run(ctx: StageContext, inputs: Mapping[str, Any]) -> GateOutcome:
        return decide(ctx, deploy, inputs[COMPARE], inputs[candidate])

    return Stage(GATE, (COMPARE, candidate), run)


def decide(ctx: StageContext, deploy: DeployParams, comparison: StageComparison, trained: TrainedModel) -> GateOutcome:
    """Gate, then the person when ``gate.human_approval``; the version's approval status follows each decision."""
    log, gate = ctx.log, deploy.gate
    baseline, candidate = comparison.stages[0], comparison.stages[-1]
    decision = gate_task(
        comparison,
        gate.metric,
        min_delta=gate.min_delta,
        require_significance=gate.require_significance,
        alpha=gate.alpha,
        higher_is_better=higher_is_better(gate.metric) if gate.higher_is_better is None else gate.higher_is_better,
        baseline=baseline,
        candidate=candidate,
    )
    log.gate = decision
    summary = f"{candidate} vs {baseline}: {decision.reason}"
    if not decision.approved:
        get_run_logger().warning("not deploying %s: %s", trained.checkpoint, decision.reason)
        log.notes.append(f"deployment skipped: {decision.reason}")
        _record(ctx, trained, REJECTED, decision.reason)
        return GateOutcome(summary, False, trained)
    reason = decision.reason
    if gate.human_approval:
        version = trained.version
        where = f"model package {version.arn}" if version else f"checkpoint `{trained.checkpoint}`"
        name = deployment_name(ctx.run.run_name, deploy.endpoint_name)
        _record(
            ctx, trained, PENDING, f"gate approved; awaiting a person in the Prefect UI (run {current_flow_run_id()})"
        )
        try:
            answer = request_approval(
                decision, f"{candidate} {where} as `{name}`", timeout_seconds=gate.approval_timeout_seconds
            )
        except DeployError as exc:
            _record(ctx, trained, REJECTED, str(exc))
            raise
        note = f": {answer.note}" if answer.note else ""
        reason = f"approved by {answer.reviewer or 'the reviewer'}{note}; {reason}"
    _record(ctx, trained, APPROVED, reason)
    return GateOutcome(summary, True, trained)


def _record(ctx: StageContext, trained: TrainedModel, status: str, reason: str) -> None:
    if trained.version is not None:
        ctx.log.versions[trained.stage] = set_approval_task(trained.version.arn, status, reason, settings=ctx.settings)
