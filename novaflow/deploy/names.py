"""Names the deployment commands offer, in a module light enough for ``novaflow deploy --help`` to import."""

from __future__ import annotations

TARGETS: tuple[str, ...] = ("sagemaker", "bedrock_od", "bedrock_pt")
"""Where a checkpoint can be deployed: a SageMaker endpoint, Bedrock on demand, Bedrock provisioned throughput."""
