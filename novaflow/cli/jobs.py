"""`novaflow jobs`: Submit, watch, tail and stop SageMaker / Bedrock training and evaluation jobs."""

from __future__ import annotations

import typer

app = typer.Typer(help="Submit, watch, tail and stop SageMaker / Bedrock training and evaluation jobs.", no_args_is_help=True)
