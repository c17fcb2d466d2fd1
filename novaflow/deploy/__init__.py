"""Deployment of trained Nova checkpoints: SageMaker endpoints and Bedrock, invocation, the gate, teardown.

One module per concern: ``tiers`` (what the container supports), ``endpoint_spec`` (exact requests, offline),
``endpoint`` / ``bedrock`` (create and wait), ``invoke`` + ``stream`` (ask the model, time the first token),
``gate`` (promote or not), ``smoke`` (does it answer), ``teardown`` (remove only what novaflow made).
"""

from __future__ import annotations

from novaflow.deploy.bedrock import BedrockDeployment, BedrockMode, BedrockSpec, deploy_bedrock
from novaflow.deploy.endpoint import (
    EndpointDeployment,
    EndpointStatus,
    deploy_sagemaker_endpoint,
    describe_endpoint_status,
    wait_for_endpoint,
)
from novaflow.deploy.endpoint_spec import DeployMode, EndpointSpec
from novaflow.deploy.environment import EndpointEnvironment
from novaflow.deploy.gate import GateDecision, decide_gate
from novaflow.deploy.invoke import converse, converse_stream, invoke_endpoint, invoke_endpoint_stream
from novaflow.deploy.smoke import SmokeReport, load_eval_rows, smoke_test
from novaflow.deploy.stream import StreamAssembler, StreamResult
from novaflow.deploy.teardown import TeardownReport, plan_teardown, teardown
from novaflow.deploy.tiers import validate_tier

__all__ = [
    "BedrockDeployment",
    "BedrockMode",
    "BedrockSpec",
    "DeployMode",
    "EndpointDeployment",
    "EndpointEnvironment",
    "EndpointSpec",
    "EndpointStatus",
    "GateDecision",
    "SmokeReport",
    "StreamAssembler",
    "StreamResult",
    "TeardownReport",
    "converse",
    "converse_stream",
    "decide_gate",
    "deploy_bedrock",
    "deploy_sagemaker_endpoint",
    "describe_endpoint_status",
    "invoke_endpoint",
    "invoke_endpoint_stream",
    "load_eval_rows",
    "plan_teardown",
    "smoke_test",
    "teardown",
    "validate_tier",
    "wait_for_endpoint",
]
