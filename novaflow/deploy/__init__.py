"""Deployment of trained Nova checkpoints: SageMaker endpoints and Bedrock, invocation, the gate, teardown.

One module per concern: ``tiers`` (what the container supports), ``endpoint_spec`` (exact requests, offline),
``endpoint`` / ``bedrock`` (create and wait), ``invoke`` + ``stream`` (ask the model, time the first token),
``gate`` (promote or not), ``smoke`` (does it answer), ``teardown`` (remove only what novaflow made).

The names below load their module on first use, so importing one submodule (the CLI's help does) does not
import them all. ``teardown`` is not among them: the name is its submodule's (``novaflow.deploy.teardown``).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "BedrockDeployment": "novaflow.deploy.bedrock",
    "BedrockMode": "novaflow.deploy.bedrock",
    "BedrockSpec": "novaflow.deploy.bedrock",
    "DeployMode": "novaflow.deploy.endpoint_spec",
    "EndpointDeployment": "novaflow.deploy.endpoint",
    "EndpointEnvironment": "novaflow.deploy.environment",
    "EndpointSpec": "novaflow.deploy.endpoint_spec",
    "EndpointStatus": "novaflow.deploy.endpoint",
    "GateDecision": "novaflow.deploy.gate",
    "SmokeReport": "novaflow.deploy.smoke",
    "StreamAssembler": "novaflow.deploy.stream",
    "StreamResult": "novaflow.deploy.stream",
    "TeardownReport": "novaflow.deploy.teardown",
    "converse": "novaflow.deploy.invoke",
    "converse_stream": "novaflow.deploy.invoke",
    "decide_gate": "novaflow.deploy.gate",
    "deploy_bedrock": "novaflow.deploy.bedrock",
    "deploy_sagemaker_endpoint": "novaflow.deploy.endpoint",
    "describe_endpoint_status": "novaflow.deploy.endpoint",
    "invoke_endpoint": "novaflow.deploy.invoke",
    "invoke_endpoint_stream": "novaflow.deploy.invoke",
    "load_eval_rows": "novaflow.deploy.smoke",
    "plan_teardown": "novaflow.deploy.teardown",
    "smoke_test": "novaflow.deploy.smoke",
    "validate_tier": "novaflow.deploy.tiers",
    "wait_for_endpoint": "novaflow.deploy.endpoint",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'novaflow.deploy' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
