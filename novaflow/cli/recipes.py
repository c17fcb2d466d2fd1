"""`novaflow recipes`: Show and refresh Nova recipe templates and instance tables."""

from __future__ import annotations

from pathlib import Path

import typer

from novaflow.cli.options import METHODS_HELP, model_option

app = typer.Typer(help="Show and refresh Nova recipe templates and instance tables.", no_args_is_help=True)


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs; values stay strings and are typed by the override spec."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE (e.g. lr=1e-5)", param_hint="--override")
        out[key.strip()] = value.strip()
    return out


def allowed_text(row: dict[str, object]) -> str:
    """``[low, high]``, the enum, or ``any`` - plus ``x N`` when the value must be a multiple of N."""
    if row["enum"] is not None:
        text = str(row["enum"])
    elif row["min"] is None and row["max"] is None:
        text = "any"
    else:
        low = "-inf" if row["min"] is None else row["min"]
        high = "inf" if row["max"] is None else row["max"]
        text = f"[{low}, {high}]"
    return f"{text} x{row['multiple_of']}" if row["multiple_of"] else text


@app.command("show")
def show(
    model: str = model_option(),
    method: str = typer.Option("sft_lora", help=METHODS_HELP),
    platform: str = typer.Option("SMTJ", help="SMTJ or BEDROCK."),
    eval_task: str = typer.Option(None, help="Evaluation task (gen_qa, mmlu, rft_eval, llm_judge, ...)."),
    instance_type: str = typer.Option(None, help="Instance type (the recipe and its limits depend on it)."),
    override: list[str] = typer.Option([], "--override", "-o", help="KEY=VALUE, repeatable."),
    reward_lambda_arn: str = typer.Option(None, help="Reward Lambda ARN (RFT)."),
    keys: bool = typer.Option(False, "--keys", help="List overridable keys, their limits and where they come from."),
) -> None:
    """Print the resolved recipe (or its override keys) for a model and method."""
    from novaflow.recipes.build import build_recipe
    from novaflow.recipes.overrides import describe_overrides
    from novaflow.recipes.published import load_published

    recipe = build_recipe(
        model,
        method,
        platform=platform,
        run_name="<job-name>",
        eval_task=eval_task,
        overrides=parse_overrides(override),
        reward_lambda_arn=reward_lambda_arn,
        instance_type=instance_type,
    )
    if keys:
        if recipe.published is not None:
            tables = load_published()
            typer.echo(
                f"recipe {recipe.published.name} ({tables.repo}@{tables.commit[:12]}), template {recipe.template}"
            )
        for row in describe_overrides(recipe.recipe, recipe.specs):
            names = ", ".join(str(n) for n in row["names"] if not str(n).startswith("recipes."))
            typer.echo(
                f"{row['key']:<26} {row['type']:<7} {row['value']!s:<12} {allowed_text(row):<30} "
                f"{row['source']}  (names: {names})"
            )
    else:
        typer.echo(recipe.to_yaml(), nl=False)
    for problem in recipe.problems:
        typer.secho(f"problem: {problem}", err=True, fg=typer.colors.YELLOW)
    if recipe.problems:
        raise typer.Exit(1)


@app.command("sync")
def sync(
    out: Path = typer.Option(Path("instances.yaml"), help="Where to write the refreshed instance table."),
    instances_file: Path | None = typer.Option(None, help="Start from this table instead of the packaged one."),
) -> None:
    """Refresh instance types and counts from the SageMaker Public Hub (needs AWS credentials)."""
    import yaml

    from novaflow.recipes.hub import sync_instance_table
    from novaflow.recipes.tables import load_instance_table

    table, changes = sync_instance_table(load_instance_table(instances_file))
    out.write_text(yaml.safe_dump(table.data, sort_keys=False), encoding="utf-8")
    for change in changes:
        typer.echo(change)
    typer.echo(f"{len(changes)} change(s); wrote {out} (use it with --instances-file)")
