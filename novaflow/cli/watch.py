"""`novaflow watch`: resume suspended novaflow runs when their jobs end (see :mod:`flows.watcher`)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Resume runs suspended in wait.mode suspend when their jobs end.")


@app.callback(invoke_without_command=True)
def watch(
    interval: float = typer.Option(30.0, "--interval", min=0.1, help="Seconds between two passes."),
    once: bool = typer.Option(False, "--once", help="One pass, then exit."),
) -> None:
    """Watch the Prefect server PREFECT_API_URL points at: a suspended run whose jobs have all ended is resumed."""
    from flows.watcher import watch as run_watch
    from novaflow.settings import load_settings

    typer.echo(f"novaflow watch: every {interval:g} s, resuming suspended runs whose jobs have ended", err=True)
    try:
        run_watch(interval, load_settings(), once=once, log=typer.echo)
    except KeyboardInterrupt:
        typer.echo("novaflow watch: stopped", err=True)
