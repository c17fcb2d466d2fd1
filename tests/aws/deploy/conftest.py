from __future__ import annotations

import pytest

from novaflow.aws import get_client

ESCROW_BUCKET = "customer-escrow-123456789012-smtj-deploytest"
CHECKPOINT = f"s3://{ESCROW_BUCKET}/nova-sft-job/outputs/checkpoints"


@pytest.fixture
def checkpoint(aws: object) -> str:
    """An escrow-style checkpoint prefix (what manifest.json's checkpoint_s3_bucket points at)."""
    s3 = get_client("s3")
    s3.create_bucket(Bucket=ESCROW_BUCKET)
    s3.put_object(Bucket=ESCROW_BUCKET, Key="nova-sft-job/outputs/checkpoints/adapter_model.safetensors",
                  Body=b"\x00" * 16)
    return CHECKPOINT


class Sleeps:
    """Injected sleep: records the requested delays, never sleeps."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def update_endpoint_in_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test-local stand-in for UpdateEndpoint, which moto 5.2.5 (and the local twin so far) lacks: the endpoint
    switches to the new config's variants. Reported to the lead; remove when the emulator implements it."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.responses import SageMakerResponse

    if "update_endpoint" in vars(SageMakerResponse):
        return

    def update_endpoint(self: SageMakerResponse) -> ActionResult:
        name = self._get_param("EndpointName")
        backend = self.sagemaker_backend
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            raise ValidationError(message=f"Could not find endpoint '{name}'.")
        config = backend.describe_endpoint_config(self._get_param("EndpointConfigName"))
        endpoint.endpoint_config_name = config["EndpointConfigName"]
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        return ActionResult({"EndpointArn": endpoint.arn})

    monkeypatch.setattr(SageMakerResponse, "update_endpoint", update_endpoint, raising=False)


@pytest.fixture
def bedrock_deployment_tags_in_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test-local stand-in for two gaps of the local twin so far (reported to the lead): tags passed to
    CreateCustomModelDeployment / CreateProvisionedModelThroughput are not stored (ListTagsForResource says
    not found), and ListProvisionedModelThroughputs is missing (HTTP 500, retried). Both are plain AWS
    behaviour that teardown relies on to prove ownership."""
    import json

    from moto.bedrock.models import BedrockBackend
    from moto.bedrock.responses import BedrockResponse

    from novaflow.local import moto_bedrock

    extra_arns: set[str] = set()
    stock_list_arns = BedrockBackend._list_arns
    monkeypatch.setattr(BedrockBackend, "_list_arns", lambda self: [*stock_list_arns(self), *sorted(extra_arns)])

    def keep_tags(name: str, arn_key: str) -> None:
        original = getattr(BedrockResponse, name)

        def create(self: BedrockResponse) -> object:
            result = original(self)
            arn = json.loads(result[2])[arn_key]
            extra_arns.add(arn)
            tags = json.loads(self.body or "{}").get("tags") or []
            if tags:
                self.bedrock_backend.tag_resource(arn, tags)
            return result

        monkeypatch.setattr(BedrockResponse, name, create)

    keep_tags("create_custom_model_deployment", "customModelDeploymentArn")
    keep_tags("create_provisioned_model_throughput", "provisionedModelArn")
    if "list_provisioned_model_throughputs" not in vars(BedrockResponse):
        def list_throughputs(self: BedrockResponse) -> str:
            items = list(getattr(moto_bedrock, "_THROUGHPUTS", {}).values())
            return json.dumps({"provisionedModelSummaries": [
                {"provisionedModelArn": t["provisionedModelArn"], "provisionedModelName": t["provisionedModelName"],
                 "modelArn": t["modelArn"], "desiredModelArn": t["desiredModelArn"],
                 "foundationModelArn": t["foundationModelArn"], "modelUnits": t["modelUnits"],
                 "desiredModelUnits": t["desiredModelUnits"], "status": "InService",
                 "creationTime": t["creationTime"], "lastModifiedTime": t["lastModifiedTime"]} for t in items]})

        monkeypatch.setattr(BedrockResponse, "list_provisioned_model_throughputs", list_throughputs, raising=False)
