"""`novaflow reward`: Build, deploy and verify the RFT reward Lambda."""

from __future__ import annotations

import typer

app = typer.Typer(help="Build, deploy and verify the RFT reward Lambda.", no_args_is_help=True)
