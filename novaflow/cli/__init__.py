"""The ``novaflow`` command: one Typer app, one module per verb group.

Each group lives in its own module so the data, jobs, eval, reward, deploy and run commands can grow
independently. The CLI is the only part of ``novaflow`` that may import Prefect (to run flows) and
``novaflow.local`` (to start the embedded AWS for ``--local``).
"""

from __future__ import annotations

import sys

import typer

from novaflow.cli import automations, data, deploy, evaluate, jobs, local, recipes, registry, reward, run
from novaflow.errors import NovaflowError

app = typer.Typer(
    name="novaflow",
    help="Take an Amazon Nova model through data prep, SFT, RFT, evaluation and deployment - on AWS or offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(local.app, name="local")
app.add_typer(data.app, name="data")
app.add_typer(recipes.app, name="recipes")
app.add_typer(jobs.app, name="jobs")
app.add_typer(evaluate.app, name="eval")
app.add_typer(reward.app, name="reward")
app.add_typer(deploy.app, name="deploy")
app.add_typer(registry.app, name="registry")
app.add_typer(run.app, name="run")
app.add_typer(automations.app, name="automations")


def main() -> None:
    """Console entry point: novaflow errors become one red line and exit code 2, not a traceback."""
    try:
        app()
    except NovaflowError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(2)
