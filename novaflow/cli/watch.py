"""`novaflow watch`: resume suspended novaflow runs when their jobs end (see :mod:`flows.watcher`)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Resume runs suspended in wait.mode suspend when their jobs end.")


@app.callback(invoke_without_command=True)
def watch(
    interval: float = typer.Option(
        30.0, "--interval", min=0.1, help="Seconds between two polls of the suspended runs' jobs (without events)."
    ),
    events_queue: str = typer.Option(
        None,
        "--events-queue",
        help="SQS queue for the jobs' end events (created with its EventBridge rules when missing); "
        "default: setting watch_events_queue; none = poll.",
    ),
    safety_interval: float = typer.Option(
        None,
        "--safety-interval",
        min=0.1,
        help="With events: seconds between two safety-net polls; default: setting watch_safety_seconds.",
    ),
    once: bool = typer.Option(False, "--once", help="One round, then exit."),
) -> None:
    """Watch the Prefect server PREFECT_API_URL points at: a suspended run is resumed when a job it waits on ends."""
    from flows.watcher import watch as run_watch
    from novaflow.settings import load_settings

    settings = load_settings()
    queue = events_queue or settings.watch_events_queue
    safety = safety_interval or settings.watch_safety_seconds
    how = (
        f"from job events (queue {queue}), polling every {safety:g} s too" if queue else f"polling every {interval:g} s"
    )
    typer.echo(f"novaflow watch: resuming suspended runs whose jobs have ended, {how}", err=True)
    try:
        run_watch(settings, interval=interval, safety_interval=safety, events_queue=queue, once=once, log=typer.echo)
    except KeyboardInterrupt:
        typer.echo("novaflow watch: stopped", err=True)
