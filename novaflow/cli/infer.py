"""`novaflow infer`: run a model over a whole dataset (batch inference), on AWS or ``--local``.

``batch`` plans first - reads every row, writes the job's input file, names the job and refuses what AWS would
refuse (a custom model on Bedrock batch) - and only then uploads and submits; ``--dry-run`` stops after the plan.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import typer

from novaflow.cli.options import model_option

app = typer.Typer(help="Run a model over a dataset: batch inference as a gen_qa job or a Bedrock batch job.")

MAP_HELP = "KEY=COLUMN, repeatable: query (required), id, response (the reference), system, metadata (A,B)."
LOCAL_POLL_SECONDS = 0.2


@app.callback()
def _group() -> None:
    """Batch inference."""


@app.command("batch")
def batch(
    data: str = typer.Argument(..., help="CSV/JSONL/JSON/Parquet file, local or s3://."),
    model: str = model_option("Nova model answering (the base of a checkpoint or package)"),
    checkpoint: str | None = typer.Option(None, "--checkpoint", help="s3:// checkpoint (manifest.json) that answers."),
    model_package: str | None = typer.Option(None, "--model-package", help="Model package version ARN that answers."),
    run: str | None = typer.Option(None, "--run", help="Use this run's deployed winner (latest Approved version)."),
    mapping: list[str] = typer.Option([], "--map", help=MAP_HELP),
    system: str | None = typer.Option(None, "--system", help="One system prompt for every row."),
    fmt: str | None = typer.Option(None, "--format", help="csv, jsonl, json or parquet (default: from the extension)."),
    out: Path = typer.Option(..., "--out", help="Folder for results.jsonl, results.parquet, failures, summary."),
    platform: str = typer.Option("SMTJ", "--platform", help="SMTJ (gen_qa evaluation job) or BEDROCK (base models)."),
    instance_type: str | None = typer.Option(None, help="SMTJ instance type (default from the instance table)."),
    max_new_tokens: int = typer.Option(1024, help="Longest answer, in tokens."),
    dry: bool = typer.Option(False, "--dry-run", help="Plan and validate only: nothing is uploaded or started."),
    local: bool = typer.Option(False, "--local", help="Run on the embedded AWS and the Nova emulator."),
) -> None:
    """Answer every row of DATA with the model; rows come back in input order with their ids."""
    from novaflow.data.source import ColumnMap, DatasetSource
    from novaflow.inference.batch import BatchSpec, collect_batch, plan_batch, submit_batch, wait_batch
    from novaflow.settings import load_settings

    chosen = platform.upper()
    if chosen not in ("SMTJ", "BEDROCK"):
        raise typer.BadParameter("choose SMTJ or BEDROCK", param_hint="--platform")
    spec = BatchSpec(
        data=DatasetSource.model_validate(
            {"path": data, "format": fmt, "columns": ColumnMap.parse(mapping), "system_prompt": system}
        ),
        model=model,
        checkpoint_uri=checkpoint,
        model_package_arn=model_package,
        run_name=run,
        platform=chosen,  # type: ignore[arg-type]  # checked just above
        out_dir=str(out),
        instance_type=instance_type,
        max_new_tokens=max_new_tokens,
    )
    with ExitStack() as stack:
        if local:
            from novaflow.local import LocalAws

            aws = stack.enter_context(LocalAws())
            typer.secho(f"embedded AWS on {aws.url}", err=True, fg=typer.colors.CYAN)
        settings = load_settings()  # after the embedded AWS has put its bucket and role in the environment
        plan = plan_batch(spec, out / "input", settings=settings)
        plan.raise_for_problems()
        typer.echo(plan.describe())
        if dry:
            return
        record = submit_batch(plan, settings=settings)
        typer.echo(f"{'attached to' if record.attached else 'created'} {record.name} ({record.status.value})")
        done = wait_batch(
            plan,
            record,
            poll_seconds=LOCAL_POLL_SECONDS if local else 30.0,
            max_poll_seconds=LOCAL_POLL_SECONDS if local else 300.0,
            settings=settings,
        )
        outcome = collect_batch(plan, done, settings=settings)
    typer.echo(outcome.summary.describe())
    typer.echo(
        f"results: {outcome.paths['results']} (and {outcome.paths['parquet'].name}); failures: "
        f"{outcome.paths['failures']}"
    )
