"""The one moto-pin guard: fail loudly when the installed moto is not the pinned one, or when an upgrade moves the
internals the embedded AWS patches rely on. Run this file against a candidate moto before moving the pin."""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from novaflow.local.aws import moto_pin

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


def test_installed_moto_is_the_pin_of_pyproject_and_of_the_code() -> None:
    extras = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    pins = [m.group(1) for spec in extras["local"] if (m := re.fullmatch(r"moto\[server\]==(\S+)", spec))]
    assert pins == [moto_pin.PINNED_MOTO] == [version("moto")]
    moto_pin.check_version()


def test_another_moto_is_refused_before_anything_is_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto

    monkeypatch.setattr(moto, "__version__", "9.9.9")
    with pytest.raises(
        moto_pin.MotoInternalsChanged, match=r"^moto is 9\.9\.9, the embedded AWS is pinned to 5\.2\.5: run"
    ):
        moto_pin.check_version()


def test_lambda_internals_the_execution_patch_relies_on() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from novaflow.local.aws import lambda_exec

    lambda_exec.check_internals()
    lambda_exec.install()
    lambda_exec.install()  # idempotent: the original is not wrapped twice
    assert LambdaSimpleBackend.invoke is lambda_exec._invoke
    assert lambda_exec._ORIGINAL_INVOKE is not lambda_exec._invoke


def test_sagemaker_objects_we_subclass_still_hard_code_their_status() -> None:
    from moto.sagemaker import models

    from novaflow.local.aws import moto_sagemaker

    stock_job = moto_sagemaker._StockTrainingJob
    source = inspect.getsource(stock_job.__init__)
    assert 'self.training_job_status = "Completed"' in source
    assert 'self.secondary_status = "Completed"' in source
    assert "def gen_response_object" in inspect.getsource(models.BaseObject)
    assert 'self.endpoint_status = "InService"' in inspect.getsource(moto_sagemaker._StockEndpoint.__init__)
    assert hasattr(models.FakeEndpointConfig, "validate_instance_type")
    assert hasattr(models.SageMakerModelBackend, "create_training_job")
    assert "training_jobs" in inspect.getsource(models.SageMakerModelBackend.__init__)


def test_patched_classes_are_installed_under_moto_module_names() -> None:
    from moto.bedrock import models as br
    from moto.sagemaker import models as sm

    from novaflow.local.aws import moto_bedrock, moto_sagemaker, patches

    patches.install()
    assert sm.FakeTrainingJob is moto_sagemaker.ManagedTrainingJob
    assert sm.FakeEndpoint is moto_sagemaker.ManagedEndpoint
    assert br.ModelCustomizationJob is moto_bedrock.ManagedCustomizationJob
    assert br.CustomModel is moto_bedrock.ManagedCustomModel
    # moto's model metaclass derives the service from the module name.
    assert moto_sagemaker.ManagedTrainingJob.__module__ == "moto.sagemaker.models"
    assert moto_bedrock.ManagedCustomModel.__module__ == "moto.bedrock.models"


def test_managed_state_and_state_manager_api() -> None:
    from moto.moto_api import state_manager
    from moto.moto_api._internal.managed_state_model import ManagedState

    state = ManagedState("novaflow::guard", [("A", "B"), ("B", "C")])
    state_manager.set_transition("novaflow::guard", {"progression": "manual", "times": 1})
    try:
        assert state.status == "A"
        state.advance()
        assert state.status == "B"
    finally:
        state_manager.unset_transition("novaflow::guard")
    assert state_manager.get_transition("novaflow::guard") == {"progression": "immediate"}


def test_routing_hooks_exist() -> None:
    from moto.core.eventstream import EventStreamEncoder
    from moto.core.responses import BaseResponse
    from moto.moto_api._internal import urls as api_urls
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sagemakerruntime import urls as rt_urls

    assert "{0}/moto-api/reset" in api_urls.url_paths
    assert any("invocations$" in path for path in rt_urls.url_paths)
    assert callable(DomainDispatcherApplication.infer_service_region_host)
    assert callable(BaseResponse.call_action) and callable(BaseResponse.serialized)
    assert hasattr(EventStreamEncoder, "encode_message")


@pytest.mark.parametrize("operation", ["Converse", "ConverseStream"])
def test_bedrock_runtime_operations_route_to_methods(operation: str) -> None:
    from moto.bedrockruntime import responses
    from moto.core.utils import camelcase_to_underscores

    from novaflow.local.aws import patches

    patches.install()
    assert hasattr(responses.BedrockRuntimeResponse, camelcase_to_underscores(operation))


def test_bedrock_tagging_checks_arns_through_list_arns() -> None:
    """Deployment and throughput tags rely on moto's tagger accepting every ARN ``_list_arns`` returns."""
    from moto.bedrock import models
    from moto.utilities.tagging_service import TaggingService

    from novaflow.local.aws import moto_bedrock

    for method in (
        models.BedrockBackend.tag_resource,
        models.BedrockBackend.untag_resource,
        models.BedrockBackend.list_tags_for_resource,
    ):
        assert "if resource_arn not in self._list_arns():" in inspect.getsource(method)
    assert "self.tagger = TaggingService()" in inspect.getsource(models.BedrockBackend.__init__)
    assert callable(TaggingService.delete_all_tags_for_resource)
    assert "custom_models" in inspect.getsource(moto_bedrock._StockListArns)


def test_operations_the_embedded_aws_adds_are_still_missing_from_moto() -> None:
    """If moto grows its own UpdateEndpoint or ListProvisionedModelThroughputs, ours would silently replace it:
    compare the two before keeping ours."""
    from moto.bedrock import responses as br_responses
    from moto.sagemaker import models as sm_models
    from moto.sagemaker import responses as sm_responses

    assert "def list_provisioned_model_throughputs" not in inspect.getsource(br_responses)
    assert "def update_endpoint(" not in inspect.getsource(sm_responses)
    assert "def update_endpoint(" not in inspect.getsource(sm_models)


def test_endpoint_internals_update_endpoint_uses() -> None:
    from novaflow.local.aws import moto_sagemaker, patches

    stock = moto_sagemaker._StockEndpoint
    assert callable(stock._process_production_variants)
    init = inspect.getsource(stock.__init__)
    assert "self.data_capture_config = data_capture_config" in init
    assert "self.creation_time = self.last_modified_time = utcnow()" in init
    patches.install()
    from moto.sagemaker import responses

    assert responses.SageMakerResponse.update_endpoint is moto_sagemaker._response_update_endpoint


def test_moto_still_lacks_what_the_serverless_patches_add() -> None:
    """When moto grows hubs or serverless jobs, these patches must be revisited (not silently layered over)."""
    from moto.sagemaker import models, responses

    from novaflow.local.aws import moto_sagemaker

    stock_responses = inspect.getsource(responses)  # the module's file: patched attributes do not change it
    for operation in ("describe_hub_content", "import_hub_content", "create_hub"):
        assert f"def {operation}" not in stock_responses
    assert "ServerlessJobConfig" not in stock_responses and "ModelPackageConfig" not in stock_responses
    stock_job = inspect.getsource(moto_sagemaker._StockTrainingJob.__init__)
    assert "serverless_job_config" not in stock_job and "hub_content" not in inspect.getsource(models).lower()
    assert 'self.algorithm_specification["MetricDefinitions"]' in stock_job


def test_registry_internals_the_patches_rely_on() -> None:
    from moto.sagemaker import models

    from novaflow.local.aws import moto_registry

    update = inspect.signature(moto_registry.update_model_package)
    stock = inspect.getsource(models.SageMakerModelBackend.update_model_package)
    assert "model_package.customer_metadata_properties = customer_metadata_properties" in stock or (
        models.SageMakerModelBackend.update_model_package is moto_registry.update_model_package
    )
    assert list(update.parameters)[1:] == [
        "model_package_arn",
        "model_approval_status",
        "approval_description",
        "customer_metadata_properties",
        "customer_metadata_properties_to_remove",
        "additional_inference_specifications_to_add",
    ]
    assert "self.client_token = client_token" in inspect.getsource(models.ModelPackage.__init__)
    assert "model_package_groups" in inspect.getsource(models.SageMakerModelBackend.__init__)


def test_service_quotas_internals_the_quota_patch_relies_on() -> None:
    from moto.sagemaker import responses
    from moto.servicequotas.models import ServiceQuotasBackend
    from moto.servicequotas.responses import ServiceQuotasResponse

    # The quota patch adds ListServiceQuotas beside these two and wraps CreateTrainingJob's backend method, whose
    # keyword resource_config carries the instances a job asks for.
    assert {"list_aws_default_service_quotas", "get_service_quota"} <= set(vars(ServiceQuotasBackend))
    assert "backend" in vars(ServiceQuotasResponse)
    assert 'resource_config=self._get_param("ResourceConfig")' in inspect.getsource(responses)  # the module's text
