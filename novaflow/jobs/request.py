"""The exact CreateTrainingJob / CreateModelCustomizationJob requests for a Nova recipe.

Shaped field for field like the request sagemaker v3's ``ModelTrainer.from_recipe(...).train()`` sends (checked by
the fidelity test in ``tests/aws/jobs/test_sagemaker_fidelity.py``): the resolved recipe as its own ``recipe``
channel, ``sagemaker_recipe_local_path`` pointing at it in the container, ``base_model`` or
``base_model_location``, ``reward_lambda_arn`` for RFT, and ``Converse`` vs ``S3Prefix`` data channels. Every
request is validated against botocore's service model before it is sent, so a malformed request fails here, for
free, instead of at AWS.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, cast

import regex
from botocore.client import BaseClient
from botocore.exceptions import ParamValidationError
from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.validate import validate_parameters

from novaflow.catalog import DataFormat, Method
from novaflow.errors import RecipeError
from novaflow.jobs.spec import JobSpec
from novaflow.recipes.build import ResolvedRecipe
from novaflow.recipes.overrides import get_path
from novaflow.recipes.service import image_uri

RECIPE_CHANNEL = "recipe"
RECIPE_CONTAINER_PATH = "/opt/ml/input/data/recipe/recipe.yaml"
TENSORBOARD_LOCAL_PATH = "/opt/ml/output/tensorboard"
DEFAULT_VOLUME_GB = 30
MODEL_PACKAGE_ARN_PREFIX = "arn:aws:sagemaker:"
BEDROCK_ARN_PREFIX = "arn:aws:bedrock:"


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
            "TrainingImage": spec.image_uri or training_image(recipe, spec),
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
        request["ModelPackageConfig"] = {
            "ModelPackageGroupArn": model_package_group_arn(path),
            "SourceModelPackageArn": path,
        }
    tags = job_tags(spec)
    if tags:
        request["Tags"] = tags
    return request


def training_image(recipe: ResolvedRecipe, spec: JobSpec) -> str:
    """The image AWS publishes for the job's recipe in the job's region (the error lists where it exists)."""
    if recipe.published is None or not spec.region:
        raise RecipeError("No published recipe or region for this job: resolve the spec on SMTJ first.")
    return image_uri(recipe.published, spec.nova, spec.region)


_VERSIONED_PACKAGE = re.compile(r"^(arn:aws[\w-]*:sagemaker:[\w-]+:\d{12}):model-package/([\w-]{1,63})/\d+$")


def model_package_group_arn(package_arn: str) -> str:
    """The group of a versioned model package: CreateTrainingJob requires it next to ``SourceModelPackageArn``."""
    match = _VERSIONED_PACKAGE.match(package_arn)
    if not match:
        raise RecipeError(
            f"{package_arn} is not a versioned model package ARN "
            "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>): continue training from a "
            "registered version, or from its s3:// checkpoint"
        )
    return f"{match.group(1)}:model-package-group/{match.group(2)}"


def bedrock_refusals(spec: JobSpec) -> list[str]:
    """Options Bedrock customization refuses (or silently drops) for this model and method, with the reason."""
    problems = []
    base = spec.model_name_or_path
    if base and not base.startswith(BEDROCK_ARN_PREFIX) and base != spec.nova.model_type:
        problems.append(
            f"model_name_or_path: Bedrock customization starts from the base model or a Bedrock custom model ARN "
            f"(arn:aws:bedrock:...), not {base!r}; import the checkpoint into Bedrock first or train on SMTJ"
        )
    if spec.validation_uri and spec.nova.version == 2 and spec.method.value.startswith("sft"):
        problems.append(
            "validation_uri: Bedrock does not use validation data when fine-tuning Nova 2 (the Nova 2 SFT data "
            "guide: validation sets are not supported during SFT training); drop validation_uri"
        )
    return problems


def job_tags(spec: JobSpec) -> list[dict[str, str]]:
    """User tags plus the spec hash, so a job found in the console leads back to its spec."""
    tags = {**spec.tags, "novaflow:spec-hash": spec.spec_hash()[:32]}
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def build_bedrock_request(spec: JobSpec, recipe: ResolvedRecipe, *, job_name: str) -> dict[str, Any]:
    """CreateModelCustomizationJob parameters (SFT LoRA or RFT LoRA)."""
    if not spec.role_arn:
        raise RecipeError("No Bedrock service role: set NOVAFLOW_ROLE_ARN (a role trusting bedrock.amazonaws.com).")
    if not spec.train_uri or not spec.output_uri:
        raise RecipeError("Bedrock customization needs train_uri and output_uri (s3:// URIs).")
    refused = bedrock_refusals(spec)
    if refused:
        raise RecipeError("; ".join(refused))
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
    """Check ``params`` against botocore's model of ``operation``; raise :class:`RecipeError` listing every issue.

    botocore checks types, required members and minimum lengths; the service also enforces each string's pattern
    and maximum length from the same model, so those are checked here too (a Bedrock base model given as an
    ``s3://`` path passes botocore and fails at AWS).
    """
    shape = client.meta.service_model.operation_model(operation).input_shape
    name = params.get("TrainingJobName") or params.get("jobName") or params.get("JobName")
    try:
        validate_parameters(params, shape)
    except ParamValidationError as exc:
        raise RecipeError(
            f"{operation} request for {name} does not match the AWS API: {exc.kwargs.get('report', exc)}"
        ) from None
    problems = list(string_problems(shape, params, ""))
    if problems:
        raise RecipeError(f"{operation} request for {name} does not match the AWS API: " + "; ".join(problems))


def string_problems(shape: Shape, value: Any, path: str) -> Iterator[str]:
    """Strings in ``value`` that break their shape's ``pattern`` or ``max`` length (Java regex syntax, via regex)."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = cast(StructureShape, shape).members
        for key, item in value.items():
            if key in members:
                yield from string_problems(members[key], item, f"{path}.{key}" if path else key)
    elif kind == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            yield from string_problems(cast(ListShape, shape).member, item, f"{path}[{i}]")
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            yield from string_problems(cast(MapShape, shape).value, item, f"{path}.{key}")
    elif kind == "string" and isinstance(value, str):
        meta = shape.metadata
        if "max" in meta and len(value) > meta["max"]:
            yield f"{path} is {len(value)} characters, more than {meta['max']}"
        if "pattern" in meta and not _compiled(meta["pattern"]).fullmatch(value):
            yield f"{path}={value!r} does not match the pattern {meta['pattern']!r}"


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern)
