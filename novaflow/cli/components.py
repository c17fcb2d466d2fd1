"""`novaflow deploy components`: several models on one SageMaker endpoint, as inference components.

``add`` creates the endpoint when missing (its instance type and count given here) and one component; ``remove``
deletes one component (and its model and role) while the others keep serving; ``list`` shows them. Invoke one with
``novaflow deploy invoke ENDPOINT/COMPONENT PROMPT --target sagemaker_ic``.
"""

from __future__ import annotations

import typer

from novaflow.cli.options import model_option

app = typer.Typer(help="Several models on one SageMaker endpoint: add, remove and list inference components.")


@app.command("add")
def add(
    endpoint: str = typer.Argument(..., help="Endpoint name (created when missing)."),
    component: str = typer.Argument(..., help="Inference component name."),
    checkpoint: str | None = typer.Option(None, help="s3:// checkpoint prefix (manifest.json checkpoint_s3_bucket)."),
    model_package: str | None = typer.Option(None, help="Model package version ARN; it must be Approved."),
    model: str = model_option("Nova model the checkpoint was trained from"),
    instance_type: str = typer.Option("ml.p5.48xlarge", help="The endpoint's instance type."),
    instance_count: int = typer.Option(1, min=1, help="The endpoint's instances: one per component copy."),
    context_length: int = typer.Option(4000, help="CONTEXT_LENGTH (must fit a tier of the instance)."),
    max_concurrency: int = typer.Option(1, help="MAX_CONCURRENCY (must fit a tier of the instance)."),
    copies: int = typer.Option(1, min=1, help="Copies of the model."),
) -> None:
    """Serve one more model on the endpoint; the components already there keep serving."""
    from novaflow.deploy.components import ComponentEndpointSpec, ComponentSpec, deploy_components
    from novaflow.deploy.environment import EndpointEnvironment
    from novaflow.settings import load_settings

    if bool(checkpoint) == bool(model_package):
        raise typer.BadParameter("give exactly one of --checkpoint and --model-package", param_hint="--checkpoint")
    settings = load_settings()
    if model_package:
        from novaflow.registry.packages import deployable_checkpoint

        _, checkpoint = deployable_checkpoint(model_package, settings=settings)
    assert checkpoint is not None
    spec = ComponentEndpointSpec(endpoint_name=endpoint, instance_type=instance_type, instance_count=instance_count)
    deployed = deploy_components(
        spec,
        [
            ComponentSpec(
                component_name=component,
                checkpoint_uri=checkpoint,
                model=model,
                environment=EndpointEnvironment(context_length=context_length, max_concurrency=max_concurrency),
                copies=copies,
            )
        ],
        settings=settings,
    )
    for status in deployed.components:
        typer.echo(f"{endpoint}/{status.name}: {status.status} ({status.copies} copy(ies) of {status.model_name})")


@app.command("remove")
def remove(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    component: str = typer.Argument(..., help="Inference component to remove."),
) -> None:
    """Remove one component (and its model and role, if novaflow made them); the others keep serving."""
    from novaflow.deploy.components import remove_component
    from novaflow.settings import load_settings

    removed = remove_component(endpoint, component, settings=load_settings())
    for line in removed or [f"nothing: {component} is not on {endpoint}"]:
        typer.echo(f"removed {line}" if removed else line)


@app.command("list")
def list_(endpoint: str = typer.Argument(..., help="Endpoint name.")) -> None:
    """The endpoint's inference components and their status."""
    from novaflow.deploy.components import list_components
    from novaflow.settings import load_settings

    for status in list_components(endpoint, settings=load_settings()):
        reason = f" - {status.failure_reason}" if status.failure_reason else ""
        typer.echo(
            f"{endpoint}/{status.name}: {status.status}, {status.copies} copy(ies) of {status.model_name}{reason}"
        )
