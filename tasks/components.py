"""Prefect tasks for inference components: several models on one endpoint (the sweep's top-k side by side).

Thin wrappers over :mod:`novaflow.deploy.components`: deploying is idempotent there (a component already running the
same model is kept), so these add the run log, retries on transient AWS errors and a table of the components.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task

from novaflow.deploy.components import (
    ComponentDeployment,
    ComponentEndpointSpec,
    ComponentSpec,
    deploy_components,
    remove_component,
)
from novaflow.settings import NovaflowSettings
from tasks.common import AWS_RETRIES, artifact_key, publish_table


@task(name="deploy-inference-components", **AWS_RETRIES)
def deploy_components_task(
    endpoint: ComponentEndpointSpec, components: Sequence[ComponentSpec], *, settings: NovaflowSettings
) -> ComponentDeployment:
    """Create the endpoint when missing and every component, each InService on return; publishes the table."""
    deployment = deploy_components(endpoint, components, settings=settings)
    logger = get_run_logger()
    for status in deployment.components:
        logger.info("inference component %s on %s: %s", status.name, endpoint.endpoint_name, status.status)
    publish_table(
        [
            {"component": c.name, "model": c.model_name, "copies": c.copies, "status": c.status}
            for c in deployment.components
        ],
        key=artifact_key("inference-components", endpoint.endpoint_name),
        description=f"Inference components on {endpoint.endpoint_name} ({endpoint.instance_count} x "
        f"{endpoint.instance_type}); invoke each as {endpoint.endpoint_name}/<component>",
    )
    return deployment


@task(name="remove-inference-component", **AWS_RETRIES)
def remove_component_task(endpoint_name: str, component_name: str, *, settings: NovaflowSettings) -> list[str]:
    """Remove one component (and its model and role); the endpoint's other components keep serving."""
    removed = remove_component(endpoint_name, component_name, settings=settings)
    get_run_logger().info("removed %s", ", ".join(removed) or "nothing (already gone)")
    return removed
