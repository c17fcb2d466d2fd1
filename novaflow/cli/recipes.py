"""`novaflow recipes`: Show and refresh Nova recipe templates and instance tables."""

from __future__ import annotations

from pathlib import Path

import typer

from novaflow.catalog import Platform
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
    platform: str = typer.Option("SMTJ", help="SMTJ, SERVERLESS or BEDROCK."),
    eval_task: str = typer.Option(None, help="Evaluation task (gen_qa, mmlu, rft_eval, llm_judge, ...)."),
    instance_type: str = typer.Option(None, help="Instance type (the recipe and its limits depend on it)."),
    override: list[str] = typer.Option([], "--override", "-o", help="KEY=VALUE, repeatable."),
    reward_lambda_arn: str = typer.Option(None, help="Reward Lambda ARN (RFT)."),
    keys: bool = typer.Option(False, "--keys", help="List overridable keys, their limits and where they come from."),
) -> None:
    """Print the resolved recipe (or its override keys) for a model and method."""
    if Platform.parse(platform) is Platform.SERVERLESS:
        _show_serverless(model, method, eval_task, parse_overrides(override))
        return
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


def _show_serverless(model: str, method: str, eval_task: str | None, overrides: dict[str, str]) -> None:
    """A serverless job has no recipe: show the hyperparameters it sends, each with its hub limits."""
    from novaflow.catalog import Method, get_model
    from novaflow.jobs.serverless import typed_hyperparameters
    from novaflow.jobs.spec import JobSpec
    from novaflow.recipes.serverless import hyperparameter_spec

    spec = JobSpec(
        platform=Platform.SERVERLESS, model=model, method=Method.parse(method), eval_task=eval_task, overrides=overrides
    )
    parameters = hyperparameter_spec(get_model(model), spec.method)
    values, problems = typed_hyperparameters(spec, "<job-name>")
    typer.echo(f"# serverless {spec.method.value} of {spec.model}: hyperparameters of {parameters.recipe.name}")
    for name, value in values.items():
        parameter = parameters.parameters.get(name)
        limits = ""
        if parameter is not None and parameter.enum:
            limits = f"  {list(parameter.enum)}"
        elif parameter is not None and parameter.limits:
            limits = f"  [{parameter.min}, {parameter.max}]"
        typer.echo(f"{name:<26} {value!s:<14}{limits}")
    for problem in problems:
        typer.secho(f"problem: {problem}", err=True, fg=typer.colors.YELLOW)
    if problems:
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
    from novaflow.settings import load_settings

    table, changes = sync_instance_table(load_instance_table(instances_file), settings=load_settings())
    out.write_text(yaml.safe_dump(table.data, sort_keys=False), encoding="utf-8")
    for change in changes:
        typer.echo(change)
    typer.echo(f"{len(changes)} change(s); wrote {out} (use it with --instances-file)")
