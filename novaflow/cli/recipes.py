"""`novaflow recipes`: Show and refresh Nova recipe templates and instance tables."""

from __future__ import annotations

import typer

app = typer.Typer(help="Show and refresh Nova recipe templates and instance tables.", no_args_is_help=True)
