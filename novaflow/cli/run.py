"""`novaflow run`: Run the novaflow flows (end-to-end, baseline, SFT, RFT) locally or against AWS."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run the novaflow flows (end-to-end, baseline, SFT, RFT) locally or against AWS.",
                  no_args_is_help=True)
