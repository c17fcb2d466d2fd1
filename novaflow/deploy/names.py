"""Names the deployment commands offer, in a module light enough for ``novaflow deploy --help`` to import."""

from __future__ import annotations

TARGETS: tuple[str, ...] = ("sagemaker", "sagemaker_ic", "bedrock_od", "bedrock_pt")
"""Where a checkpoint can be deployed: a SageMaker endpoint, an inference component of a SageMaker endpoint (several
models on one endpoint), Bedrock on demand, Bedrock provisioned throughput."""
COMPONENT_SEPARATOR = "/"
"""An inference component's invoke id is ``<endpoint>/<component>`` (neither name may contain a slash)."""


DEFAULT_CONTEXT_LENGTH = 4000
DEFAULT_MAX_CONCURRENCY = 1
"""The inference container's CONTEXT_LENGTH / MAX_CONCURRENCY when none is given: the service's own defaults
(docs/inference.md#sagemaker-endpoint), the one source for the CLI, the flows' form and the deploy functions.
They fit the smallest tier of every model on every supported instance type."""


def deployment_name(run_name: str, explicit: str | None = None) -> str:
    """A valid SageMaker / Bedrock name for a run's deployment (letters, digits, hyphens, <= 63): ``explicit``, else
    ``novaflow-<run_name>``."""
    import re

    if explicit:
        return explicit
    base = re.sub(r"[^a-zA-Z0-9-]+", "-", f"novaflow-{run_name}").strip("-")
    return re.sub(r"-{2,}", "-", base)[:63].rstrip("-")
