"""`novaflow eval`: Compute gen_qa metrics, parse evaluation outputs, compare stages, build reports."""

from __future__ import annotations

import typer

app = typer.Typer(help="Compute gen_qa metrics, parse evaluation outputs, compare stages, build reports.", no_args_is_help=True)
