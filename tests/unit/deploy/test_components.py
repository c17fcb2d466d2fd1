"""Inference component requests, offline: the resources come from the hosting tiers and EC2's instance data, and
an endpoint that cannot hold every copy is refused before any AWS call."""

from __future__ import annotations

import json

import pytest

from novaflow.deploy.components import (
    ComponentEndpointSpec,
    ComponentSpec,
    build_component_endpoint_config_request,
    build_inference_component_request,
    check_components,
    component_resources,
)
from novaflow.deploy.environment import EndpointEnvironment
from novaflow.deploy.hosting import TABLE_PATH, hosting_instance, hosting_instance_types
from novaflow.errors import ConfigError

CKPT = "s3://customer-escrow-123456789012-smtj-x/job/outputs/checkpoints"


def test_every_hosting_instance_type_of_the_tiers_is_in_the_derived_table() -> None:
    table = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
    assert sorted(table["instances"]) == hosting_instance_types()
    assert table["source"].startswith(("moto ", "EC2 "))
    assert (hosting_instance("ml.p5.48xlarge").accelerators, hosting_instance("ml.g6e.xlarge").accelerators) == (8, 1)


def test_a_component_asks_for_every_accelerator_of_its_instance_type_and_its_tier_is_checked() -> None:
    endpoint = ComponentEndpointSpec(endpoint_name="ab", instance_type="ml.g6.12xlarge", instance_count=1)
    lite = ComponentSpec(
        component_name="ab-lite",
        checkpoint_uri=CKPT,
        model="nova-lite",
        environment=EndpointEnvironment(context_length=8000, max_concurrency=2),
    )
    assert component_resources(endpoint, lite) == {
        "NumberOfAcceleratorDevicesRequired": 4,
        "NumberOfCpuCoresRequired": 1,
        "MinMemoryRequiredInMb": 1024,
    }
    request = build_inference_component_request(endpoint, lite)
    assert {k: request[k] for k in ("InferenceComponentName", "EndpointName", "VariantName", "RuntimeConfig")} == {
        "InferenceComponentName": "ab-lite",
        "EndpointName": "ab",
        "VariantName": "ab",
        "RuntimeConfig": {"CopyCount": 1},
    }
    assert request["Specification"]["ModelName"] == lite.model_name
    config = build_component_endpoint_config_request(endpoint, role_arn="arn:aws:iam::123456789012:role/r")
    assert config["ProductionVariants"] == [
        {"VariantName": "ab", "InstanceType": "ml.g6.12xlarge", "InitialInstanceCount": 1}
    ]
    assert config["ExecutionRoleArn"] == "arn:aws:iam::123456789012:role/r" and config["EnableNetworkIsolation"] is True
    too_long = lite.model_copy(update={"environment": EndpointEnvironment(context_length=16000, max_concurrency=1)})
    with pytest.raises(ConfigError, match=r"is not supported for nova-lite on ml\.g6\.12xlarge; allowed tiers"):
        component_resources(endpoint, too_long)


def test_an_endpoint_too_small_for_every_copy_is_refused_with_the_count_it_needs() -> None:
    endpoint = ComponentEndpointSpec(endpoint_name="ab", instance_type="ml.g6.48xlarge", instance_count=2)
    env = EndpointEnvironment(context_length=8000, max_concurrency=8)
    a = ComponentSpec(component_name="ab-a", checkpoint_uri=CKPT, environment=env, copies=2)
    b = ComponentSpec(component_name="ab-b", checkpoint_uri=CKPT, environment=env)
    with pytest.raises(ConfigError) as refused:
        check_components(endpoint, [a, b])
    assert str(refused.value) == (
        "Endpoint ab has 2 x ml.g6.48xlarge but its components need 3 (a Nova model copy takes all 8 accelerators "
        "of one instance): raise instance_count to 3 or deploy fewer components."
    )
    with pytest.raises(ConfigError, match="names must differ"):
        check_components(endpoint, [b, b])


def test_the_packaged_hosting_table_equals_what_its_refresh_script_derives_from_ec2_data() -> None:
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[3] / "scripts" / "derive_hosting_instances.py"
    spec = importlib.util.spec_from_file_location("derive_hosting_instances", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    derived = module.derive("moto")
    assert derived["instances"] == json.loads(TABLE_PATH.read_text(encoding="utf-8"))["instances"]
    assert module.main(["--source", "moto", "--check"]) == 0


def test_side_by_side_sizes_the_endpoint_for_every_variant_and_names_the_components() -> None:
    from novaflow.deploy.components import side_by_side

    env = EndpointEnvironment(context_length=8000, max_concurrency=8)
    endpoint, parts = side_by_side(
        "sweep-ab",
        {"lr=1e-5": CKPT, "lr=5e-5/rank 16": CKPT + "-2", "base": CKPT + "-3"},
        instance_type="ml.g6.48xlarge",
        environment=env,
        copies=2,
    )
    assert (endpoint.instance_type, endpoint.instance_count) == ("ml.g6.48xlarge", 6)
    assert [p.component_name for p in parts] == ["sweep-ab-lr-1e-5", "sweep-ab-lr-5e-5-rank-16", "sweep-ab-base"]
    assert [p.checkpoint_uri for p in parts] == [CKPT, CKPT + "-2", CKPT + "-3"]
