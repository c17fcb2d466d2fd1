"""`novaflow data`: Prepare, split, profile and upload datasets in the Nova formats."""

from __future__ import annotations

import typer

app = typer.Typer(help="Prepare, split, profile and upload datasets in the Nova formats.", no_args_is_help=True)
