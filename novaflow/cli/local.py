"""`novaflow local`: run the embedded AWS (moto + our patches) and the Nova emulator for other processes to use."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer

from novaflow.cli.options import quota_option

app = typer.Typer(
    help="Run the embedded AWS (moto plus our patches) and the Nova service emulator on loopback.", no_args_is_help=True
)


@app.command("up")
def up(
    port: int = typer.Option(0, help="Port to listen on; 0 picks a free one."),
    host: str = typer.Option("127.0.0.1", help="Loopback address to bind (never a public interface)."),
    hyperpod: list[str] = typer.Option(
        [],
        "--hyperpod",
        help="Create a HyperPod cluster CLUSTER:TYPE=N (an EKS-orchestrated cluster with a restricted instance group "
        "of N nodes of TYPE, e.g. nova:ml.p5.48xlarge=8, and an EKS access entry for the local caller); repeatable, "
        "the first is NOVAFLOW_HYPERPOD_CLUSTER.",
    ),
    quota: list[str] = typer.Option(
        [],
        "--quota",
        help="The account's training quota of an instance type, TYPE=N instances (ml.p5.48xlarge=8), repeatable: "
        "served by Service Quotas and enforced by CreateTrainingJob. Unset types are unlimited.",
    ),
) -> None:
    """Start the embedded AWS in the foreground and print the `export` lines a shell or Prefect worker needs.

    Serves S3, SageMaker, SageMaker Runtime, CloudWatch Logs, IAM, Lambda, STS, Bedrock, EKS and (for
    --hyperpod clusters) their Kubernetes API. Ctrl-C (or SIGTERM) stops it cleanly and exits 0.
    """
    if not (host.startswith("127.") or host in {"localhost", "::1"}):
        raise typer.BadParameter("the embedded AWS only binds to loopback addresses", param_hint="--host")
    from novaflow.local import LocalAws
    from novaflow.local.aws.hyperpod_setup import parse_hyperpod_option

    for text in hyperpod:
        parse_hyperpod_option(text)  # a malformed option is one line before anything starts
    quotas = quota_option(quota)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = LocalAws(host=host, port=port, set_environ=True, quotas=quotas, hyperpod=tuple(hyperpod)).start()
    try:
        typer.echo(f"novaflow local AWS listening on {server.url}")
        for instance_type, value in sorted(quotas.items()):
            typer.echo(f"# quota: {instance_type} for training job usage = {value} instances")
        for text in hyperpod:
            name = parse_hyperpod_option(text).name
            typer.echo(
                f"HyperPod cluster {name} ({text.split(':', 1)[1]}) is InService; EKS cluster {name}-eks has an "
                "access entry for the local caller"
            )
        typer.echo("# paste into the shell of a Prefect worker or another terminal:")
        for line in server.export_lines():
            typer.echo(line)
        typer.echo("# Ctrl-C to stop", err=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    typer.echo("novaflow local AWS stopped", err=True)
