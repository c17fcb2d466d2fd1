"""`novaflow deploy`: Deploy a trained model to a SageMaker endpoint or Bedrock, invoke it, tear it down.

Every command talks to whatever ``AWS_ENDPOINT_URL`` points at, so the same commands work against AWS and
against ``novaflow local up``. ``create --dry-run`` validates the tier and prints the exact SageMaker requests
without calling AWS.
"""

from __future__ import annotations

import json
import sys

import typer

from novaflow.cli.components import app as components_app
from novaflow.cli.options import model_option
from novaflow.deploy.names import DEFAULT_CONTEXT_LENGTH, DEFAULT_MAX_CONCURRENCY, TARGETS

app = typer.Typer(
    help="Deploy a trained model to a SageMaker endpoint or Bedrock, invoke it, tear it down.", no_args_is_help=True
)
TARGET = typer.Option("sagemaker", help=f"Where it runs: {', '.join(TARGETS)}.")
app.add_typer(components_app, name="components")


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Endpoint / deployment name (also tags everything created for it)."),
    checkpoint: str = typer.Option(None, help="s3:// checkpoint prefix (manifest.json checkpoint_s3_bucket)."),
    from_job: str = typer.Option(None, help="Training job whose checkpoint to deploy (with --output-uri)."),
    model_package: str = typer.Option(
        None, help="Model package version ARN to deploy; it must be Approved (novaflow registry approve)."
    ),
    output_uri: str = typer.Option(None, help="S3 output path the job was created with."),
    target: str = TARGET,
    model: str = model_option("Nova model the checkpoint was trained from"),
    instance_type: str = typer.Option("ml.p5.48xlarge", help="SageMaker hosting instance."),
    instance_count: int = typer.Option(1, min=1, help="SageMaker instance count."),
    context_length: int = typer.Option(
        DEFAULT_CONTEXT_LENGTH, help="CONTEXT_LENGTH (must fit a tier of the instance)."
    ),
    max_concurrency: int = typer.Option(
        DEFAULT_MAX_CONCURRENCY, help="MAX_CONCURRENCY (must fit a tier of the instance)."
    ),
    model_units: int = typer.Option(1, min=1, help="Model units (bedrock_pt)."),
    mode: str = typer.Option("create", help="create (fail if it exists) or update (SageMaker: new config in place)."),
    dry: bool = typer.Option(False, "--dry-run", help="Validate and print the SageMaker requests; call nothing."),
) -> None:
    """Deploy a checkpoint and wait until it serves (re-running with the same settings finds it again)."""
    from pydantic import ValidationError

    from novaflow.deploy.targets import check_target
    from novaflow.settings import load_settings

    check_target(target)
    try:
        if model_package:
            from novaflow.registry.packages import deployable_checkpoint

            version, checkpoint = deployable_checkpoint(model_package, settings=load_settings())
            typer.echo(f"{version.arn} is {version.status}: deploying {checkpoint}", err=True)
        _create(
            name,
            checkpoint,
            from_job,
            output_uri,
            target,
            model,
            instance_type,
            instance_count,
            context_length,
            max_concurrency,
            model_units,
            mode,
            dry,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "input"
        raise typer.BadParameter(f"{field}: {first.get('msg', 'invalid')} (got {first.get('input')!r})") from None


def _create(
    name: str,
    checkpoint: str | None,
    from_job: str | None,
    output_uri: str | None,
    target: str,
    model: str,
    instance_type: str,
    instance_count: int,
    context_length: int,
    max_concurrency: int,
    model_units: int,
    mode: str,
    dry: bool,
) -> None:
    from novaflow.deploy.endpoint_spec import build_endpoint_config_request, build_endpoint_request, build_model_request
    from novaflow.deploy.roles import default_role_name
    from novaflow.deploy.targets import build_endpoint_spec, deploy_checkpoint
    from novaflow.settings import load_settings

    if dry and target == "sagemaker_ic":
        _print_component_requests(
            name, checkpoint, model, instance_type, instance_count, context_length, max_concurrency
        )
        return
    if dry:
        if target != "sagemaker":
            raise typer.BadParameter(
                "--dry-run prints SageMaker requests; use --target sagemaker or sagemaker_ic", param_hint="--dry-run"
            )
        spec = build_endpoint_spec(
            name,
            checkpoint or "s3://checkpoint-to-be-resolved/",
            model=model,
            instance_type=instance_type,
            instance_count=instance_count,
            context_length=context_length,
            max_concurrency=max_concurrency,
        )
        settings = load_settings()
        role = f"arn:aws:iam::<account>:role/{default_role_name(name, 'sagemaker')}"
        typer.echo(
            json.dumps(
                {
                    "CreateModel": build_model_request(spec, region=settings.region, role_arn=role),
                    "CreateEndpointConfig": build_endpoint_config_request(spec),
                    "CreateEndpoint": build_endpoint_request(spec),
                },
                indent=2,
            )
        )
        return
    if checkpoint is None:
        if not (from_job and output_uri):
            raise typer.BadParameter(
                "give --checkpoint, --model-package, or --from-job with --output-uri", param_hint="--checkpoint"
            )
        from novaflow.jobs.outputs import resolve_checkpoint

        checkpoint = resolve_checkpoint(output_uri, from_job, settings=load_settings())
        typer.echo(f"checkpoint of {from_job}: {checkpoint}", err=True)
    served = deploy_checkpoint(
        target,
        name,
        checkpoint,
        model=model,
        instance_type=instance_type,
        instance_count=instance_count,
        context_length=context_length,
        max_concurrency=max_concurrency,
        model_units=model_units,
        mode=mode,
        on_status=lambda s: typer.echo(f"{name}: {s}", err=True),
        settings=load_settings(),
    )
    typer.echo(f"{target} {name} {served.status}; invoke id: {served.invoke_id}")


def _print_component_requests(
    name: str,
    checkpoint: str | None,
    model: str,
    instance_type: str,
    instance_count: int,
    context_length: int,
    max_concurrency: int,
) -> None:
    """The four requests of a one-component endpoint, validated offline (tier, instance type, capacity)."""
    from novaflow.deploy.components import (
        ComponentEndpointSpec,
        ComponentSpec,
        build_component_endpoint_config_request,
        build_component_model_request,
        build_inference_component_request,
        check_components,
    )
    from novaflow.deploy.environment import EndpointEnvironment
    from novaflow.deploy.roles import default_role_name
    from novaflow.deploy.targets import component_name
    from novaflow.settings import load_settings

    endpoint = ComponentEndpointSpec(endpoint_name=name, instance_type=instance_type, instance_count=instance_count)
    component = ComponentSpec(
        component_name=component_name(name),
        checkpoint_uri=checkpoint or "s3://checkpoint-to-be-resolved/",
        model=model,
        environment=EndpointEnvironment(context_length=context_length, max_concurrency=max_concurrency),
    )
    check_components(endpoint, [component])
    region = load_settings().region
    endpoint_role = f"arn:aws:iam::<account>:role/{default_role_name(name, 'sagemaker')}"
    model_role = f"arn:aws:iam::<account>:role/{default_role_name(component.component_name, 'sagemaker')}"
    requests = {
        "CreateEndpointConfig": build_component_endpoint_config_request(endpoint, role_arn=endpoint_role),
        "CreateEndpoint": {"EndpointName": name, "EndpointConfigName": endpoint.config_name},
        "CreateModel": build_component_model_request(endpoint, component, region=region, role_arn=model_role),
        "CreateInferenceComponent": build_inference_component_request(endpoint, component),
    }
    typer.echo(json.dumps(requests, indent=2))


@app.command("status")
def status(name: str = typer.Argument(..., help="Endpoint / deployment name."), target: str = TARGET) -> None:
    """Status of a deployment (and SageMaker's / Bedrock's failure reason, if any)."""
    from novaflow.deploy.targets import deployment_status
    from novaflow.settings import load_settings

    info = deployment_status(target, name, settings=load_settings())
    typer.echo(f"{target} {name}: {info['status']}" + ("" if info["managed"] else " (not created by novaflow)"))
    if info.get("failure_reason"):
        typer.echo(f"failure reason: {info['failure_reason']}")
    typer.echo(f"arn: {info['arn']}")


def _write_through(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


@app.command("invoke")
def invoke(
    name: str = typer.Argument(..., help="Endpoint name, or Bedrock deployment name / ARN."),
    prompt: str = typer.Argument(..., help="The user message."),
    target: str = TARGET,
    system: str = typer.Option(None, help="System prompt."),
    max_tokens: int = typer.Option(256, min=1, help="Largest answer in tokens."),
    temperature: float = typer.Option(0.0, min=0.0, max=2.0, help="Sampling temperature."),
    stream: bool = typer.Option(False, "--stream", help="Stream the answer; report time to first token."),
) -> None:
    """Ask the deployed model one question."""
    from novaflow.deploy.stream import StreamResult
    from novaflow.deploy.targets import ask, resolve_invoke_id
    from novaflow.settings import load_settings

    settings = load_settings()
    invoke_id = resolve_invoke_id(target, name, settings=settings)
    if stream:
        result = ask(
            target,
            invoke_id,
            prompt,
            system=system,
            max_tokens=max_tokens,
            temperature=temperature,
            stream=True,
            on_text=_write_through,
            settings=settings,
        )
        typer.echo("")
        if not isinstance(result, StreamResult):
            raise typer.Exit(1)
        first = "never" if result.first_token_seconds is None else f"{result.first_token_seconds * 1000:.0f} ms"
        typer.echo(
            f"first token: {first}; total: {result.total_seconds * 1000:.0f} ms; {len(result.pieces)} pieces", err=True
        )
        return
    answer = ask(
        target,
        invoke_id,
        prompt,
        system=system,
        max_tokens=max_tokens,
        temperature=temperature,
        settings=settings,
    )
    typer.echo(answer.text)
    latency = getattr(answer, "latency_seconds", 0.0)
    typer.echo(f"latency: {latency * 1000:.0f} ms", err=True)


@app.command("delete")
def delete(
    name: str = typer.Argument(None, help="Deployment name; omit with --all."),
    everything: bool = typer.Option(False, "--all", help="Every deployment novaflow created in this account."),
    target: str = typer.Option(None, help=f"Limit the search to one target ({', '.join(TARGETS)})."),
    dry: bool = typer.Option(False, "--dry-run", help="Show what would be removed; remove nothing."),
) -> None:
    """Remove what novaflow created for a deployment (only resources tagged by novaflow); safe to re-run."""
    from novaflow.deploy.targets import teardown_services
    from novaflow.deploy.teardown import teardown
    from novaflow.settings import load_settings

    if (name is None) == (not everything):
        raise typer.BadParameter("give a deployment name or --all (not both)", param_hint="NAME")
    services = teardown_services(target) if target else ("sagemaker", "bedrock", "iam")
    report = teardown(None if everything else name, dry_run=dry, services=services, settings=load_settings())
    verb = "would remove" if dry else "removed"
    for line in report.removed:
        typer.echo(f"{verb} {line}")
    for line in report.already_gone:
        typer.echo(f"already gone {line}")
    for line in report.kept:
        typer.echo(f"kept {line}")
    for line in report.failed + report.unlisted:
        typer.echo(f"FAILED {line}", err=True)
    if not (report.removed or report.already_gone or report.failed or report.unlisted):
        typer.echo("nothing of novaflow's found")
    if not report.ok:
        raise typer.Exit(1)
