"""Names the deployment commands offer, in a module light enough for ``novaflow deploy --help`` to import."""

from __future__ import annotations

TARGETS: tuple[str, ...] = ("sagemaker", "sagemaker_ic", "bedrock_od", "bedrock_pt")
"""Where a checkpoint can be deployed: a SageMaker endpoint, an inference component of a SageMaker endpoint (several
models on one endpoint), Bedrock on demand, Bedrock provisioned throughput."""
COMPONENT_SEPARATOR = "/"
"""An inference component's invoke id is ``<endpoint>/<component>`` (neither name may contain a slash)."""
