"""The notification automations on the Prefect test server: applied idempotently, and firing for real.

A failed end-to-end run makes the server send the "run failed" notification to a webhook on this machine; the
test reads what arrived.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prefect.automations import Automation
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from typer.testing import CliRunner

from flows.automations import (
    FAILED_RUN,
    FLOW_NAMES,
    JOB_FLOW_NAMES,
    RERUN_CRASHED,
    RERUN_STATE_NAME,
    STOP_CANCELLED,
    STOP_TIMED_OUT,
    WAITING_FOR_APPROVAL,
    apply_automations,
)
from flows.end_to_end import end_to_end
from flows.params import EndToEndParams
from novaflow.cli import app


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(json.loads(body or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/notify", received
    finally:
        server.shutdown()


def _block(url: str) -> str:
    block = CustomWebhookNotificationBlock(
        name="novaflow-test", url=url, json_data={"subject": "{{subject}}", "body": "{{body}}"}, allow_private_urls=True
    )
    return str(block.save("novaflow-test", overwrite=True))


def test_apply_creates_both_automations_once_and_updates_them_in_place(webhook) -> None:  # type: ignore[no-untyped-def]
    block_id = _block(webhook[0])
    first = apply_automations(block_id)
    second = apply_automations(block_id)
    assert first == second  # found by name and updated, not duplicated
    failed = Automation.read(name=FAILED_RUN)
    assert failed.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}
    assert failed.trigger.model_dump(mode="json")["match_related"] == {
        "prefect.resource.role": "flow",
        "prefect.resource.name": list(FLOW_NAMES),
    }
    assert str(failed.actions[0].block_document_id) == block_id and "{{ flow_run|ui_url }}" in failed.actions[0].body
    approval = Automation.read(name=WAITING_FOR_APPROVAL)
    assert approval.trigger.expect == {"prefect.flow-run.Paused", "prefect.flow-run.Suspended"}
    assert "approve or reject" in approval.actions[0].body

    rerun = Automation.read(name=RERUN_CRASHED)
    assert rerun.trigger.expect == {"prefect.flow-run.Crashed"}
    trigger = rerun.trigger.model_dump(mode="json")
    assert trigger["match"]["prefect.run-count"] == ["1", "2", "3"]  # bounded: the 4th crash is left alone
    assert trigger["match_related"] == [
        {"prefect.resource.role": "flow", "prefect.resource.name": list(JOB_FLOW_NAMES)},
        {"prefect.resource.role": "deployment"},
    ]
    assert rerun.actions[0].state.value == "SCHEDULED" and rerun.actions[0].name == RERUN_STATE_NAME

    result = CliRunner().invoke(app, ["automations", "apply", "--block", "custom-webhook/novaflow-test"])
    assert result.exit_code == 0, result.output
    # (the cancelled-run stop is installed too when the stop-run-jobs deployment exists on the server)
    assert result.output.splitlines() == [f"{name}: {automation_id}" for name, automation_id in first.items()]
    assert [RERUN_CRASHED, FAILED_RUN, WAITING_FOR_APPROVAL] == [
        n for n in first if n not in {STOP_CANCELLED, STOP_TIMED_OUT}
    ]
    without_block = CliRunner().invoke(app, ["automations", "apply", "--max-reruns", "2"])
    assert [
        line for line in without_block.output.splitlines() if STOP_CANCELLED not in line and STOP_TIMED_OUT not in line
    ] == [f"{RERUN_CRASHED}: {first[RERUN_CRASHED]}"]
    assert Automation.read(name=RERUN_CRASHED).trigger.model_dump(mode="json")["match"]["prefect.run-count"] == [
        "1",
        "2",
    ]
    missing = CliRunner().invoke(app, ["automations", "apply", "--block", "slack-webhook/nope"])
    assert missing.exit_code != 0 and "no notification block slack-webhook/nope" in missing.output


def test_a_failed_run_sends_the_failed_run_notification(webhook) -> None:  # type: ignore[no-untyped-def]
    url, received = webhook
    apply_automations(_block(url))
    state = end_to_end(EndToEndParams(run_name="notify-me", model="nova-lite"), return_state=True)
    assert state.is_failed()  # nova-lite cannot do RFT: the run fails before anything is spent
    deadline = time.monotonic() + 60
    while not received and time.monotonic() < deadline:
        time.sleep(0.5)
    assert received, "the server sent no notification within 60 s"
    note = received[0]
    assert note["subject"].startswith("novaflow run ") and note["subject"].endswith(" Failed")
    assert "novaflow flow run end-to-end/" in note["body"] and "ConfigError: rft_lora is" in note["body"]
    assert "Skip the stage (skip: rft) or choose another model." in note["body"]


def test_a_run_paused_for_approval_sends_the_approval_notification(webhook) -> None:  # type: ignore[no-untyped-def]
    """The gate's pause (``pause_flow_run`` waiting for input) in a flow named like novaflow's end-to-end flow."""
    from prefect import flow
    from prefect.flow_runs import pause_flow_run

    url, received = webhook
    apply_automations(_block(url))

    @flow(name="end-to-end")
    def paused() -> None:
        pause_flow_run(timeout=5, poll_interval=1)  # nobody approves: it times out

    paused(return_state=True)
    deadline = time.monotonic() + 60
    while not any("waits for approval" in n["subject"] for n in received) and time.monotonic() < deadline:
        time.sleep(0.5)
    notes = [n for n in received if "waits for approval" in n["subject"]]
    assert notes, f"no approval notification within 60 s; got {received}"
    assert "passed its deployment gate and waits for a person" in notes[0]["body"]


def test_a_suspended_run_that_timed_out_has_its_jobs_stopped_like_a_cancelled_one() -> None:
    """The server fails an expired suspension with a fixed message; the automation matches that message (a
    resource label of the Failed event) and runs the same stop-run-jobs deployment as the cancel automation."""
    import inspect
    from uuid import uuid4

    from prefect.server.services import pause_expirations

    from flows.automations import PAUSE_EXPIRED, stop_cancelled_automation, stop_timed_out_automation

    assert f'message="{PAUSE_EXPIRED}"' in inspect.getsource(pause_expirations)
    deployment = str(uuid4())
    timed_out = stop_timed_out_automation(deployment)
    assert timed_out.name == STOP_TIMED_OUT
    trigger = timed_out.trigger.model_dump(mode="json")
    assert trigger["expect"] == ["prefect.flow-run.Failed"]
    assert trigger["match"] == {"prefect.resource.id": "prefect.flow-run.*", "prefect.state-message": PAUSE_EXPIRED}
    cancelled = stop_cancelled_automation(deployment)
    assert trigger["match_related"] == cancelled.trigger.model_dump(mode="json")["match_related"]
    assert [a.model_dump(mode="json") for a in timed_out.actions] == [
        a.model_dump(mode="json") for a in cancelled.actions
    ]
