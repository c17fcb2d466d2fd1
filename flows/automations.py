"""Prefect automations novaflow installs: a crashed run is re-run; people hear when a run fails or waits for them.

A crashed deployed run of a flow that submits jobs is scheduled again (the same flow run, so it takes back its
run-name lease at once and its cached submits attach to the jobs it started), a bounded number of times: the
trigger matches the crashed run's ``prefect.run-count`` 1..N, so the N+1th crash is left alone and the sweeper
(:mod:`flows.sweeper`) stops its jobs once they outlive the run. A crash keeps the jobs running
(:mod:`flows.hooks`); only a cancel stops them.

A failed, crashed or timed-out run of any novaflow flow, and an end-to-end run paused at the deployment gate for a
person's approval, each send a notification through a notification block you own (Slack, Teams, e-mail, a
webhook: ``prefect block create slack-webhook`` or the UI). Automations run on a self-hosted Prefect server as on
Prefect Cloud. ``novaflow automations apply [--block slack-webhook/<name>]`` creates them, and applying again
updates them in place (they are found by name).
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast
from uuid import UUID

from prefect.automations import Automation
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState, RunDeployment, SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture

FLOW_NAMES = ("end-to-end", "baseline-eval", "sft", "rft", "verify-reward", "deploy", "cleanup")
JOB_FLOW_NAMES = ("end-to-end", "baseline-eval", "sft", "rft", "dpo", "cpt", "sweep", "sweep-variant")
"""The flows that submit training jobs: the ones a crash must not cost a job, so the ones re-run after a crash.
(A sweep's variant subflows ledger their jobs under the sweep's run; a variant's deployment run under its own.)"""
FAILED_RUN = "novaflow: run failed"
WAITING_FOR_APPROVAL = "novaflow: run waiting for approval"
RERUN_CRASHED = "novaflow: re-run crashed run"
MAX_CRASH_RERUNS = 3
"""How many times one flow run is re-run after crashing (its 4th crash is left to the sweeper)."""
RERUN_STATE_NAME = "Rerun after crash"
STOP_CANCELLED = "novaflow: stop jobs of a cancelled run"
STOP_TIMED_OUT = "novaflow: stop jobs of a suspended run that timed out"
STOP_DEPLOYMENT = "stop-run-jobs/default"
"""The deployment (prefect.yaml) the stop automation runs; ``automations apply`` installs it only when it exists."""

_FAILED_BODY = (
    "novaflow flow run {{ flow.name }}/{{ flow_run.name }} is {{ flow_run.state.name }}: "
    "{{ flow_run.state.message }}\n"
    "The run log names the failed stage, its job and the job's last log lines.\n"
    "Flow run: {{ flow_run|ui_url }}"
)
_APPROVAL_BODY = (
    "novaflow flow run {{ flow.name }}/{{ flow_run.name }} passed its deployment gate and waits for a person: "
    "open {{ flow_run|ui_url }} and approve or reject (the form says what would be deployed). "
    "It times out after the run's approval_timeout_seconds and then deploys nothing."
)


def _flows_trigger(events: set[str]) -> EventTrigger:
    return EventTrigger(
        expect=events,
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related={"prefect.resource.role": "flow", "prefect.resource.name": list(FLOW_NAMES)},
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(0),
    )


def rerun_crashed_automation(max_reruns: int = MAX_CRASH_RERUNS) -> Automation:
    """Schedule a crashed deployed run of a job-submitting flow again, while its run count is at most ``max_reruns``.

    Only deployed runs can be re-scheduled (a worker picks them up); the related-deployment match keeps the
    automation from touching runs started from a terminal, which Prefect would refuse to reschedule anyway.
    """
    return Automation(
        name=RERUN_CRASHED,
        description=(
            f"Re-run a crashed novaflow run (at most {max_reruns} times); it attaches to the jobs it started, "
            "which kept running."
        ),
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            match={
                "prefect.resource.id": "prefect.flow-run.*",
                "prefect.run-count": [str(n) for n in range(1, max_reruns + 1)],
            },
            match_related=[
                {"prefect.resource.role": "flow", "prefect.resource.name": list(JOB_FLOW_NAMES)},
                {"prefect.resource.role": "deployment"},
            ],
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.SCHEDULED,
                name=RERUN_STATE_NAME,
                message="novaflow re-runs this crashed run; it attaches to the jobs it started, which kept running",
            )
        ],
    )


def stop_cancelled_automation(deployment_id: str) -> Automation:
    """Stop the jobs of a cancelled run of a job-submitting flow by running the ``stop-run-jobs`` deployment.

    A running run's own cancellation hook stops its jobs; a run suspended in ``wait.mode: suspend`` has no process
    to run a hook, so the server starts this deployment with the run's id. Both together are harmless: stopping is
    idempotent.
    """
    return Automation(
        name=STOP_CANCELLED,
        description="Stop the training jobs of a cancelled novaflow run (also when it was suspended).",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Cancelled"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": list(JOB_FLOW_NAMES)},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            RunDeployment(
                source="selected",
                deployment_id=UUID(deployment_id),
                # a plain Jinja value renders to the id's text (a bare "{{ flow_run.id }}" would be upgraded to
                # "| tojson", which cannot encode a UUID)
                parameters={"flow_run_id": {"__prefect_kind": "jinja", "template": "{{ flow_run.id }}"}},
            )
        ],
    )


PAUSE_EXPIRED = "The flow was paused and never resumed."
"""The message Prefect's server fails a paused or suspended run with when its timeout passes (pause expirations)."""


def stop_timed_out_automation(deployment_id: str) -> Automation:
    """Stop the jobs, and free the holds, of a run whose suspension timed out (``wait.max_wait_hours`` passed with
    no resume): the server fails it with no process alive, so, as for a cancel, ``stop-run-jobs`` does it."""
    stop = stop_cancelled_automation(deployment_id)
    return Automation(
        name=STOP_TIMED_OUT,
        description="Stop the training jobs of a novaflow run whose suspension timed out, and free its holds.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed"},
            match={"prefect.resource.id": "prefect.flow-run.*", "prefect.state-message": PAUSE_EXPIRED},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": list(JOB_FLOW_NAMES)},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=stop.actions,
    )


def failed_run_automation(block_document_id: str) -> Automation:
    """Failed, crashed and timed-out runs of every novaflow flow (cancelled runs are someone's decision)."""
    return Automation(
        name=FAILED_RUN,
        description="Notify when a novaflow flow run fails, crashes or times out.",
        trigger=_flows_trigger({"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}),
        actions=[
            SendNotification(
                block_document_id=UUID(block_document_id),
                subject="novaflow run {{ flow_run.name }} {{ flow_run.state.name }}",
                body=_FAILED_BODY,
            )
        ],
    )


def approval_automation(block_document_id: str) -> Automation:
    """An end-to-end run paused by the gate's human approval (``deploy.gate.human_approval``)."""
    return Automation(
        name=WAITING_FOR_APPROVAL,
        description="Notify when a novaflow run is paused waiting for a person to approve its deployment.",
        trigger=_flows_trigger({"prefect.flow-run.Paused", "prefect.flow-run.Suspended"}),
        actions=[
            SendNotification(
                block_document_id=UUID(block_document_id),
                subject="novaflow run {{ flow_run.name }} waits for approval",
                body=_APPROVAL_BODY,
            )
        ],
    )


def wanted_automations(
    block_document_id: str | None, max_reruns: int = MAX_CRASH_RERUNS, stop_deployment_id: str | None = None
) -> list[Automation]:
    """The crash re-run (unless ``max_reruns`` is 0); the cancelled and timed-out run stops when their deployment
    exists; the two
    notifications when there is a block to send them."""
    wanted = [rerun_crashed_automation(max_reruns)] if max_reruns > 0 else []
    if stop_deployment_id:
        wanted += [stop_cancelled_automation(stop_deployment_id), stop_timed_out_automation(stop_deployment_id)]
    if block_document_id:
        wanted += [failed_run_automation(block_document_id), approval_automation(block_document_id)]
    return wanted


def apply_automations(block_document_id: str | None, max_reruns: int = MAX_CRASH_RERUNS) -> dict[str, str]:
    """Create the automations, or update them in place when they exist; returns their ids by name."""
    ids: dict[str, str] = {}
    for wanted in wanted_automations(block_document_id, max_reruns, _deployment_id(STOP_DEPLOYMENT)):
        existing = _read(wanted.name)
        if existing is None:
            ids[wanted.name] = str(cast(Automation, wanted.create()).id)
        else:
            wanted.id = existing.id
            wanted.update()
            ids[wanted.name] = str(existing.id)
    return ids


def _read(name: str) -> Automation | None:
    from prefect.exceptions import ObjectNotFound

    try:
        return cast(Automation, Automation.read(name=name))  # sync call: the sync-compatible API returns the value
    except (ObjectNotFound, ValueError):
        return None


def _deployment_id(name: str) -> str | None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return str(client.read_deployment_by_name(name).id)
        except ObjectNotFound:
            return None
