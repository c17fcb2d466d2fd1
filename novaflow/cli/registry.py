"""`novaflow registry`: the model package versions a run registered, their lineage, and their approval."""

from __future__ import annotations

import json

import typer

app = typer.Typer(
    help="List, show, approve and reject the model package versions novaflow registered.", no_args_is_help=True
)


def _group(group: str | None, model: str | None, run_name: str | None) -> str:
    from novaflow.registry.packages import check_group_name, default_group

    if group:
        return check_group_name(group)
    if not run_name:
        raise typer.BadParameter("give --group, or --run-name (and --model) to use the run's default group")
    from novaflow.settings import load_settings

    return default_group(model or load_settings().model, run_name)


@app.command("list")
def list_versions(
    group: str = typer.Option(None, "--group", help="Model package group (default: the run's, from --run-name)."),
    run_name: str = typer.Option(
        None, "--run-name", help="The run whose versions to list (group novaflow-<run>-<model>)."
    ),
    model: str = typer.Option(None, "--model", help="The run's model (default NOVAFLOW_MODEL, else nova-lite-2)."),
    as_json: bool = typer.Option(False, "--json", help="Print the versions as JSON."),
) -> None:
    """Every version of the group, oldest first, with its approval status, lineage and metrics."""
    from novaflow.registry.packages import list_versions as versions_of
    from novaflow.settings import load_settings

    name = _group(group, model, run_name)
    versions = versions_of(name, load_settings())
    if as_json:
        typer.echo(json.dumps([_as_dict(v) for v in versions], indent=2, default=str))
        return
    typer.echo(f"model package group {name}: {len(versions)} version(s)")
    for v in versions:
        lineage = v.lineage
        metrics = ", ".join(f"{k} {val:.4f}" for k, val in sorted(v.metrics.items()))
        typer.echo(f"  v{v.version}  {v.status:<22} stage {lineage.get('stage', '-'):<8} job {lineage.get('job', '-')}")
        for key in ("method", "data:train", "data:train:sha256", "source", "flow-run", "evaluated-by"):
            if key in lineage:
                typer.echo(f"        {key}: {lineage[key]}")
        if metrics:
            typer.echo(f"        metrics: {metrics}")
        if v.approval_description:
            typer.echo(f"        approval: {v.approval_description}")


def _as_dict(version: object) -> dict[str, object]:
    from dataclasses import asdict

    out = asdict(version)  # type: ignore[call-overload]
    out["lineage"] = version.lineage  # type: ignore[attr-defined]
    out["metrics"] = version.metrics  # type: ignore[attr-defined]
    return dict(out)


@app.command("show")
def show(arn: str = typer.Argument(..., help="Model package version ARN.")) -> None:
    """One version: status, checkpoint, lineage and metrics (JSON)."""
    from novaflow.registry.packages import check_version_arn, describe_version
    from novaflow.settings import load_settings

    typer.echo(
        json.dumps(_as_dict(describe_version(check_version_arn(arn), settings=load_settings())), indent=2, default=str)
    )


def _decide(arn: str, status: str, reason: str) -> None:
    from novaflow.registry.packages import set_approval
    from novaflow.settings import load_settings

    version = set_approval(arn, status, reason, settings=load_settings())
    typer.echo(f"{version.arn}: {version.status} ({version.approval_description})")


@app.command("approve")
def approve(
    arn: str = typer.Argument(..., help="Model package version ARN."),
    reason: str = typer.Option(..., "--reason", help="Why it may be deployed (kept as ApprovalDescription)."),
) -> None:
    """Mark a version Approved: deployments may start from it."""
    from novaflow.registry.packages import APPROVED

    _decide(arn, APPROVED, reason)


@app.command("reject")
def reject(
    arn: str = typer.Argument(..., help="Model package version ARN."),
    reason: str = typer.Option(..., "--reason", help="Why it must not be deployed (kept as ApprovalDescription)."),
) -> None:
    """Mark a version Rejected: novaflow never deploys it."""
    from novaflow.registry.packages import REJECTED

    _decide(arn, REJECTED, reason)
