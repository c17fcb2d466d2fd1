"""Prefect automations that tell people when a novaflow run needs them: it failed, or it waits for approval.

A failed, crashed or timed-out run of any novaflow flow, and an end-to-end run paused at the deployment gate for a
person's approval, each send a notification through a notification block you own (Slack, Teams, e-mail, a
webhook: ``prefect block create slack-webhook`` or the UI). Automations run on a self-hosted Prefect server as on
Prefect Cloud. ``novaflow automations apply --block slack-webhook/<name>`` creates them, and applying again
updates them in place (they are found by name).
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast
from uuid import UUID

from prefect.automations import Automation
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture

FLOW_NAMES = ("end-to-end", "baseline-eval", "sft", "rft", "verify-reward", "deploy", "cleanup")
FAILED_RUN = "novaflow: run failed"
WAITING_FOR_APPROVAL = "novaflow: run waiting for approval"

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


def apply_automations(block_document_id: str) -> list[str]:
    """Create both automations, or update them in place when they exist; returns their ids."""
    ids = []
    for wanted in (failed_run_automation(block_document_id), approval_automation(block_document_id)):
        existing = _read(wanted.name)
        if existing is None:
            ids.append(str(cast(Automation, wanted.create()).id))
        else:
            wanted.id = existing.id
            wanted.update()
            ids.append(str(existing.id))
    return ids


def _read(name: str) -> Automation | None:
    from prefect.exceptions import ObjectNotFound

    try:
        return cast(Automation, Automation.read(name=name))  # sync call: the sync-compatible API returns the value
    except (ObjectNotFound, ValueError):
        return None
