"""`novaflow automations`: the Prefect automations that notify people (a run failed; a run waits for approval)."""

from __future__ import annotations

import json

import typer

app = typer.Typer(
    help="Prefect automations: notify on failed runs and on runs waiting for approval.", no_args_is_help=True
)


def _block_id(slug: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    if "/" not in slug:
        raise typer.BadParameter("expected BLOCK-TYPE/NAME such as slack-webhook/team-alerts", param_hint="--block")
    block_type, name = slug.split("/", 1)
    with get_client(sync_client=True) as client:
        try:
            return str(client.read_block_document_by_name(name=name, block_type_slug=block_type).id)
        except ObjectNotFound:
            raise typer.BadParameter(
                f"no notification block {slug}: create it first (prefect block create {block_type})",
                param_hint="--block",
            ) from None


@app.command("apply")
def apply(
    block: str = typer.Option(..., "--block", help="Notification block BLOCK-TYPE/NAME, e.g. slack-webhook/alerts."),
) -> None:
    """Create (or update in place) both automations on the Prefect server PREFECT_API_URL points at."""
    from flows.automations import FAILED_RUN, WAITING_FOR_APPROVAL, apply_automations

    ids = apply_automations(_block_id(block))
    for name, automation_id in zip((FAILED_RUN, WAITING_FOR_APPROVAL), ids, strict=True):
        typer.echo(f"{name}: {automation_id}")


@app.command("show")
def show(
    block_id: str = typer.Option(
        "00000000-0000-0000-0000-000000000000", "--block-id", help="Block id to show in the definitions."
    ),
) -> None:
    """Print both automation definitions as JSON (what `apply` sends), without a server."""
    from flows.automations import approval_automation, failed_run_automation

    for automation in (failed_run_automation(block_id), approval_automation(block_id)):
        typer.echo(json.dumps(automation.model_dump(mode="json", exclude={"id"}), indent=2))
