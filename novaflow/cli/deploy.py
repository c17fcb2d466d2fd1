"""`novaflow deploy`: Deploy a trained model to a SageMaker endpoint or Bedrock, invoke it, tear it down."""

from __future__ import annotations

import typer

app = typer.Typer(help="Deploy a trained model to a SageMaker endpoint or Bedrock, invoke it, tear it down.", no_args_is_help=True)
