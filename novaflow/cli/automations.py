"""`novaflow automations`: the Prefect automations novaflow installs (re-run a crashed run; notify on failed runs and
runs waiting for approval)."""

from __future__ import annotations

import json

import typer

app = typer.Typer(
    help="Prefect automations: re-run crashed runs; notify on failed runs and runs waiting for approval.",
    no_args_is_help=True,
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
    block: str | None = typer.Option(
        None, "--block", help="Notification block BLOCK-TYPE/NAME, e.g. slack-webhook/alerts (none: no notifications)."
    ),
    max_reruns: int | None = typer.Option(
        None, "--max-reruns", min=0, help="Re-runs of one crashed flow run (0: none; default 3)."
    ),
) -> None:
    """Create (or update in place) the automations on the Prefect server PREFECT_API_URL points at."""
    from flows.automations import MAX_CRASH_RERUNS, apply_automations

    reruns = MAX_CRASH_RERUNS if max_reruns is None else max_reruns
    for name, automation_id in apply_automations(_block_id(block) if block else None, reruns).items():
        typer.echo(f"{name}: {automation_id}")


@app.command("show")
def show(
    block_id: str = typer.Option(
        "00000000-0000-0000-0000-000000000000", "--block-id", help="Block id to show in the definitions."
    ),
) -> None:
    """Print the automation definitions as JSON (what `apply` sends), without a server."""
    from flows.automations import wanted_automations

    for automation in wanted_automations(block_id):
        typer.echo(json.dumps(automation.model_dump(mode="json", exclude={"id"}), indent=2))
