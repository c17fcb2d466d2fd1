"""The exact CreateTrainingJob / CreateModelCustomizationJob requests for a Nova recipe.

Shaped field for field like the request sagemaker v3's ``ModelTrainer.from_recipe(...).train()`` sends (checked by
the fidelity test in ``tests/aws/jobs/test_sagemaker_fidelity.py``): the resolved recipe as its own ``recipe``
channel, ``sagemaker_recipe_local_path`` pointing at it in the container, ``base_model`` or
``base_model_location``, ``reward_lambda_arn`` for RFT, and ``Converse`` vs ``S3Prefix`` data channels
(nova-contract §9). Every request is validated against botocore's service model before it is sent, so a
malformed request fails here, for free, instead of at AWS.
"""

from __future__ import annotations

from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

from novaflow.catalog import DataFormat, Method
from novaflow.errors import RecipeError
from novaflow.jobs.spec import JobSpec
from novaflow.recipes.build import ResolvedRecipe
from novaflow.recipes.images import image_uri
from novaflow.recipes.overrides import get_path

RECIPE_CHANNEL = "recipe"
RECIPE_CONTAINER_PATH = "/opt/ml/input/data/recipe/recipe.yaml"
TENSORBOARD_LOCAL_PATH = "/opt/ml/output/tensorboard"
DEFAULT_VOLUME_GB = 30
MODEL_PACKAGE_ARN_PREFIX = "arn:aws:sagemaker:"


def data_type(method: Method) -> str:
    """``Converse`` for SFT, CPT and DPO data, ``S3Prefix`` for RFT and evaluation data (a folder of JSONL)."""
    return "S3Prefix" if method.data_format in (DataFormat.RFT, DataFormat.EVAL) else "Converse"


def s3_channel(name: str, uri: str, s3_data_type: str, *, input_mode: bool = False) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {"S3DataType": s3_data_type, "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
        },
    }
    if input_mode:
        channel["InputMode"] = "File"
    return channel


def recipe_hyperparameters(recipe: dict[str, Any]) -> dict[str, str]:
    """Hyperparameters the Nova container reads besides the recipe (as sagemaker v3 ``_get_args_from_nova_recipe``)."""
    hyper: dict[str, str] = {}
    run = recipe.get("run", {})
    path = str(run.get("model_name_or_path") or "")
    if path.startswith("s3://"):
        hyper["base_model_location"] = path
    elif path and not path.startswith(MODEL_PACKAGE_ARN_PREFIX):
        hyper["base_model"] = path
    if recipe.get("evaluation"):
        lambda_arn = str((recipe.get("processor") or {}).get("lambda_arn") or "")
        if lambda_arn and "{{" not in lambda_arn:
            hyper["eval_lambda_arn"] = lambda_arn
    if run.get("reward_lambda_arn"):
        hyper["reward_lambda_arn"] = str(run["reward_lambda_arn"])
    hyper["sagemaker_recipe_local_path"] = RECIPE_CONTAINER_PATH
    return hyper


def build_training_job_request(
    spec: JobSpec, recipe: ResolvedRecipe, *, job_name: str, recipe_uri: str, instance_type: str, instance_count: int
) -> dict[str, Any]:
    """The CreateTrainingJob parameters for a resolved spec (SMTJ)."""
    if not spec.role_arn:
        raise RecipeError("No execution role: set NOVAFLOW_ROLE_ARN (a role trusting sagemaker.amazonaws.com).")
    if not spec.output_uri or not spec.region:
        raise RecipeError("Spec is not resolved: call spec.resolve(settings) first (output_uri and region).")
    channels = [s3_channel(name, uri, data_type(spec.method)) for name, uri in spec.data_channels().items()]
    channels.append(s3_channel(RECIPE_CHANNEL, recipe_uri, "S3Prefix", input_mode=True))
    output: dict[str, Any] = {"S3OutputPath": spec.output_uri}
    if spec.kms_key_id:
        output["KmsKeyId"] = spec.kms_key_id
    output["CompressionType"] = "GZIP"
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "HyperParameters": recipe_hyperparameters(recipe.recipe),
        "AlgorithmSpecification": {
            "TrainingInputMode": "File",
            "TrainingImage": spec.image_uri or image_uri(spec.region, spec.nova, spec.method),
        },
        "RoleArn": spec.role_arn,
        "InputDataConfig": channels,
        "OutputDataConfig": output,
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": instance_count,
            "VolumeSizeInGB": DEFAULT_VOLUME_GB,
        },
    }
    if spec.subnets or spec.security_group_ids:
        request["VpcConfig"] = {
            "SecurityGroupIds": list(spec.security_group_ids or ()),
            "Subnets": list(spec.subnets or ()),
        }
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": spec.max_runtime_seconds}
    request["TensorBoardOutputConfig"] = {"S3OutputPath": spec.output_uri, "LocalPath": TENSORBOARD_LOCAL_PATH}
    path = str(get_path(recipe.recipe, "run.model_name_or_path")) if "run" in recipe.recipe else ""
    if path.startswith(MODEL_PACKAGE_ARN_PREFIX):
        request["ModelPackageConfig"] = {"SourceModelPackageArn": path}
    tags = job_tags(spec)
    if tags:
        request["Tags"] = tags
    return request


def job_tags(spec: JobSpec) -> list[dict[str, str]]:
    """User tags plus the spec hash, so a job found in the console leads back to its spec."""
    tags = {**spec.tags, "novaflow:spec-hash": spec.spec_hash()[:32]}
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def build_bedrock_request(spec: JobSpec, recipe: ResolvedRecipe, *, job_name: str) -> dict[str, Any]:
    """CreateModelCustomizationJob parameters (SFT LoRA or RFT LoRA; nova-contract §6.6, §10.2)."""
    if not spec.role_arn:
        raise RecipeError("No Bedrock service role: set NOVAFLOW_ROLE_ARN (a role trusting bedrock.amazonaws.com).")
    if not spec.train_uri or not spec.output_uri:
        raise RecipeError("Bedrock customization needs train_uri and output_uri (s3:// URIs).")
    hyper = dict(recipe.recipe["hyperParameters"])
    request: dict[str, Any] = {
        "jobName": job_name,
        "customModelName": job_name,
        "roleArn": spec.role_arn,
        "baseModelIdentifier": spec.model_name_or_path or spec.nova.model_type,
        "trainingDataConfig": {"s3Uri": spec.train_uri},
        "outputDataConfig": {"s3Uri": spec.output_uri},
    }
    if spec.validation_uri:
        request["validationDataConfig"] = {"validators": [{"s3Uri": spec.validation_uri}]}
    if spec.method is Method.RFT_LORA:
        if not spec.reward_lambda_arn:
            raise RecipeError("Bedrock RFT needs reward_lambda_arn (deploy it with `novaflow reward deploy`).")
        request["customizationType"] = "REINFORCEMENT_FINE_TUNING"
        request["customizationConfig"] = {
            "rftConfig": {
                "graderConfig": {"lambdaGrader": {"lambdaArn": spec.reward_lambda_arn}},
                "hyperParameters": hyper,
            }
        }
    else:
        request["customizationType"] = "FINE_TUNING"
        request["hyperParameters"] = {k: str(v) for k, v in hyper.items()}
    if spec.kms_key_id:
        request["customModelKmsKeyId"] = spec.kms_key_id
    if spec.subnets or spec.security_group_ids:
        request["vpcConfig"] = {
            "subnetIds": list(spec.subnets or ()),
            "securityGroupIds": list(spec.security_group_ids or ()),
        }
    request["jobTags"] = [{"key": t["Key"], "value": t["Value"]} for t in job_tags(spec)]
    return request


def validate_request(client: BaseClient, operation: str, params: dict[str, Any]) -> None:
    """Check ``params`` against botocore's model of ``operation``; raise :class:`RecipeError` listing every issue."""
    shape = client.meta.service_model.operation_model(operation).input_shape
    try:
        validate_parameters(params, shape)
    except ParamValidationError as exc:
        raise RecipeError(
            f"{operation} request for {params.get('TrainingJobName') or params.get('jobName')} "
            f"does not match the AWS API: {exc.kwargs.get('report', exc)}"
        ) from None
