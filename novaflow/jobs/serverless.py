"""SageMaker serverless customization: the CreateTrainingJob request without instances, and what it refers to.

Shaped as sagemaker v3 sends it when a trainer (``SFTTrainer``, ``DPOTrainer``, ``RLVRTrainer``) is given no
compute, and as an evaluator's pipeline step sends it (checked by ``tests/aws/jobs/test_sagemaker_fidelity.py``):
``ServerlessJobConfig`` names the base model by its hub content ARN, accepts the EULA, and says the job type,
technique, PEFT choice, evaluation type and evaluator; ``ModelPackageConfig`` names the group the trained model is
registered in (and the version to continue from); ``HyperParameters`` is the flat string map of the technique's
hub spec (:mod:`novaflow.recipes.serverless`, at most 100 entries); there is no ``AlgorithmSpecification`` or
``ResourceConfig``. Three things the request refers to live in AWS and are looked up (read-only in a dry run,
created on submit): the base model's hub content, the model package group, and - for RLVR and scored evaluations
- the reward Lambda registered as an evaluator, once per code version.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from novaflow.aws import get_client, is_not_found, wrap_client_error
from novaflow.catalog import Method
from novaflow.errors import RecipeError
from novaflow.jobs.request import job_tags
from novaflow.jobs.spec import JobSpec
from novaflow.recipes import serverless as hub_spec
from novaflow.recipes.service import eval_task
from novaflow.registry.packages import VERSION_ARN_RE, ensure_group, group_arn
from novaflow.settings import NovaflowSettings

PUBLIC_HUB = "SageMakerPublicHub"
EVALUATOR_HUB = "novaflow-evaluators"
EVALUATOR_VERSION = "1.0.0"
EVALUATOR_SCHEMA = "2.0.0"
COMPRESSION = "NONE"
"""Serverless outputs stay uncompressed: the checkpoint manifest and evaluation results are read in place."""
SDK_TAG_KEYS = ("sagemaker-sdk:jumpstart-model-id", "sagemaker-sdk:jumpstart-hub-name")


@dataclass(frozen=True)
class ServerlessRefs:
    """What a serverless request points at in AWS, resolved before it is built."""

    base_model_arn: str
    gated: bool
    model_package_group_arn: str | None = None
    evaluator_arn: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def is_package_arn(value: str | None) -> bool:
    return bool(value and VERSION_ARN_RE.match(value))


def _source_package(spec: JobSpec) -> str | None:
    start = spec.model_name_or_path
    if not start:
        return None
    if start.startswith("s3://"):
        raise RecipeError(
            f"Serverless jobs start from the base model or a registered model package version, not the checkpoint "
            f"{start}: register it (novaflow registry) and pass the version ARN, or use platform SMTJ."
        )
    if not is_package_arn(start):
        raise RecipeError(
            f"model_name_or_path {start!r} is neither a model package version ARN nor an s3:// checkpoint."
        )
    return start


def evaluation_task(spec: JobSpec) -> str:
    """The task's name as AWS publishes it for the model (``judge`` is the judge of the model's Nova version)."""
    return eval_task(spec.nova, spec.eval_task).name


def needs_evaluator(spec: JobSpec) -> bool:
    """RLVR always; an evaluation when it is scored by the reward Lambda (rft_eval, or gen_qa given one)."""
    if spec.method is Method.RFT_LORA:
        return True
    return spec.method is Method.EVALUATION and bool(spec.reward_lambda_arn)


def serverless_hyperparameters(spec: JobSpec, job_name: str, *, evaluator: bool = False) -> dict[str, str]:
    """The flat ``HyperParameters`` map: the hub spec's defaults, the overrides, strings as v3 sends them."""
    values, problems = typed_hyperparameters(spec, job_name, evaluator=evaluator)
    if problems:
        raise RecipeError(f"Serverless hyperparameters of {job_name}: " + "; ".join(problems))
    return {k: hub_spec.hyperparameter_text(v) for k, v in values.items()}


def typed_hyperparameters(spec: JobSpec, job_name: str, *, evaluator: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Hyperparameters as typed values (before they become strings) and every problem with them."""
    parameters = hub_spec.hyperparameter_spec(spec.nova, spec.method)
    if spec.method is Method.EVALUATION:
        values, problems = _evaluation_hyperparameters(spec, parameters, evaluator=evaluator)
    else:
        values = parameters.defaults()
        overrides, problems = parameters.check(spec.overrides)
        values.update(overrides)
        if "name" in parameters.parameters and "name" not in overrides:
            values["name"] = job_name
    if len(values) > hub_spec.MAX_HYPERPARAMETERS:
        problems.append(
            f"{job_name} would send {len(values)} hyperparameters; CreateTrainingJob accepts at most "
            f"{hub_spec.MAX_HYPERPARAMETERS}: drop overrides"
        )
    return values, problems


def _evaluation_hyperparameters(
    spec: JobSpec, parameters: hub_spec.HyperparameterSpec, *, evaluator: bool
) -> tuple[dict[str, Any], list[str]]:
    published = eval_task(spec.nova, spec.eval_task)
    task, strategy, metric = published.name, published.strategy, published.metric
    custom = hub_spec.evaluation_type(task) == "CustomScorerEvaluation"
    # A scored evaluation is v3's custom scorer: the gen_qa task with the reward function as its evaluator.
    values: dict[str, Any] = (
        {"task": "gen_qa", "strategy": "gen_qa", "metric": "all"}
        if custom
        else {"task": task, "strategy": strategy, "metric": metric}
    )
    if custom:
        values["lambda_type"] = "rft"
    defaults = parameters.defaults()
    values.update({k: defaults[k] for k in hub_spec.EVAL_INFERENCE_KEYS if k in defaults})
    overrides, problems = parameters.check(spec.overrides)
    values.update(overrides)
    if evaluator:
        values["postprocessing"] = True
        values.setdefault("aggregation", "mean")
    return values, problems


def input_channels(spec: JobSpec) -> list[dict[str, Any]]:
    """Data channels: Converse for SFT/DPO, S3Prefix for RLVR, one S3Prefix ``train`` channel for evaluation."""
    if spec.method is Method.EVALUATION:
        if not spec.train_uri:
            return []
        return [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": spec.train_uri}},
            }
        ]
    data_type = "S3Prefix" if spec.method is Method.RFT_LORA else "Converse"
    return [
        {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {"S3Uri": uri, "S3DataType": data_type, "S3DataDistributionType": "FullyReplicated"}
            },
        }
        for name, uri in spec.data_channels().items()
    ]


def serverless_job_config(spec: JobSpec, refs: ServerlessRefs) -> dict[str, Any]:
    config: dict[str, Any] = {"BaseModelArn": refs.base_model_arn, "AcceptEula": spec.accept_eula}
    if spec.method is Method.EVALUATION:
        config["JobType"] = "Evaluation"
        config["EvaluationType"] = hub_spec.evaluation_type(evaluation_task(spec))
    else:
        technique, lora = hub_spec.TECHNIQUES[spec.method]
        config["JobType"] = "FineTuning"
        config["CustomizationTechnique"] = technique
        if lora:
            config["Peft"] = "LORA"
    if refs.evaluator_arn:
        config["EvaluatorArn"] = refs.evaluator_arn
    return config


def sdk_tags(spec: JobSpec) -> list[dict[str, str]]:
    """The tags v3 puts on every serverless job (the hub model it customizes), then novaflow's own."""
    values = (spec.nova.hub_name, PUBLIC_HUB)
    return [{"Key": k, "Value": v} for k, v in zip(SDK_TAG_KEYS, values, strict=True)] + job_tags(spec)


def build_serverless_request(spec: JobSpec, refs: ServerlessRefs, *, job_name: str) -> dict[str, Any]:
    """The CreateTrainingJob parameters of a resolved serverless spec."""
    if not spec.role_arn:
        raise RecipeError("No execution role: set NOVAFLOW_ROLE_ARN (a role trusting sagemaker.amazonaws.com).")
    if not spec.output_uri:
        raise RecipeError("Spec is not resolved: call spec.resolve(settings) first (output_uri).")
    source = _source_package(spec)
    output: dict[str, Any] = {"S3OutputPath": spec.output_uri}
    if spec.kms_key_id:
        output["KmsKeyId"] = spec.kms_key_id
    output["CompressionType"] = COMPRESSION
    request: dict[str, Any] = {"TrainingJobName": job_name, "RoleArn": spec.role_arn}
    channels = input_channels(spec)
    if channels:
        request["InputDataConfig"] = channels
    request["OutputDataConfig"] = output
    request["ServerlessJobConfig"] = serverless_job_config(spec, refs)
    request["HyperParameters"] = serverless_hyperparameters(spec, job_name, evaluator=bool(refs.evaluator_arn))
    if spec.method is not Method.EVALUATION or source:
        if not refs.model_package_group_arn:
            raise RecipeError(f"{job_name}: a serverless job needs the model package group its model is registered in.")
        packages = {"ModelPackageGroupArn": refs.model_package_group_arn}
        if source:
            packages["SourceModelPackageArn"] = source
        request["ModelPackageConfig"] = packages
    if spec.subnets or spec.security_group_ids:
        request["VpcConfig"] = {
            "SecurityGroupIds": list(spec.security_group_ids or ()),
            "Subnets": list(spec.subnets or ()),
        }
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": spec.max_runtime_seconds}
    request["Tags"] = sdk_tags(spec)
    return request


# -- what the request refers to -------------------------------------------------------------------------
def base_model(spec: JobSpec, client: BaseClient) -> tuple[str, bool]:
    """(hub content ARN, gated) of the spec's base model in the SageMaker Public Hub."""
    name = spec.nova.hub_name
    try:
        content = client.describe_hub_content(HubName=PUBLIC_HUB, HubContentType="Model", HubContentName=name)
    except ClientError as exc:
        if is_not_found(exc):
            raise RecipeError(
                f"The SageMaker Public Hub has no model {name} in {spec.region}: serverless customization of "
                f"{spec.model} is not offered there."
            ) from None
        raise wrap_client_error(exc, f"Reading hub content {name}") from exc
    document = json.loads(content.get("HubContentDocument") or "{}")
    return str(content["HubContentArn"]), bool(document.get("GatedBucket"))


def evaluator_name(function_name: str, code_sha256: str) -> str:
    """Hub content name of a reward function's evaluator: the function's name and a hash of its code."""
    digest = hashlib.sha256(code_sha256.encode()).hexdigest()[:10]
    stem = re.sub(r"-{2,}", "-", re.sub(r"[^a-zA-Z0-9]+", "-", function_name)).strip("-")[:52].rstrip("-")
    return f"{stem}-{digest}"


def evaluator_document(lambda_arn: str) -> str:
    """The ``JsonDoc`` a reward function is registered as (subtype ``AWS/Evaluator``)."""
    inner = json.dumps({"EvaluatorType": "RewardFunction", "Reference": lambda_arn})
    return json.dumps({"SubType": "AWS/Evaluator", "JsonContent": inner})


def _account(settings: NovaflowSettings) -> str:
    return str(get_client("sts", settings).get_caller_identity()["Account"])


def evaluator(lambda_arn: str, settings: NovaflowSettings, *, create: bool = False) -> tuple[str, str | None]:
    """(evaluator ARN, note) for the reward Lambda: reused when this code version is registered, imported
    otherwise (``create``), or only named (dry run)."""
    lam = get_client("lambda", settings)
    sm = get_client("sagemaker", settings)
    try:
        config = lam.get_function(FunctionName=lambda_arn)["Configuration"]
    except ClientError as exc:
        if is_not_found(exc):
            raise RecipeError(
                f"Reward Lambda {lambda_arn} does not exist: deploy it first (novaflow reward deploy)."
            ) from None
        raise wrap_client_error(exc, f"Reading reward Lambda {lambda_arn}") from exc
    name = evaluator_name(str(config["FunctionName"]), str(config.get("CodeSha256", "")))
    region = settings.region
    try:
        found = sm.describe_hub_content(HubName=EVALUATOR_HUB, HubContentType="JsonDoc", HubContentName=name)
        reference = json.loads(json.loads(found["HubContentDocument"]).get("JsonContent") or "{}").get("Reference")
        if reference == lambda_arn:
            return str(found["HubContentArn"]), None
        raise RecipeError(
            f"Evaluator {name} in hub {EVALUATOR_HUB} refers to {reference}, not {lambda_arn}: delete it or "
            "rename the function."
        )
    except ClientError as exc:
        if not is_not_found(exc):
            raise wrap_client_error(exc, f"Reading evaluator {name}") from exc
    planned = (
        f"arn:aws:sagemaker:{region}:{_account(settings)}:hub-content/"
        f"{EVALUATOR_HUB}/JsonDoc/{name}/{EVALUATOR_VERSION}"
    )
    if not create:
        return planned, f"the reward Lambda will be registered as evaluator {planned} at submit"
    _ensure_evaluator_hub(sm)
    try:
        response = sm.import_hub_content(
            HubName=EVALUATOR_HUB,
            HubContentName=name,
            HubContentVersion=EVALUATOR_VERSION,
            HubContentType="JsonDoc",
            DocumentSchemaVersion=EVALUATOR_SCHEMA,
            HubContentDocument=evaluator_document(lambda_arn),
            HubContentDescription=f"novaflow reward function {config['FunctionName']}, code {config.get('CodeSha256')}",
        )
        return str(response["HubContentArn"]), None
    except ClientError as exc:
        if "already exists" in str(exc).lower():  # a concurrent submitter registered the same code version
            found = sm.describe_hub_content(HubName=EVALUATOR_HUB, HubContentType="JsonDoc", HubContentName=name)
            return str(found["HubContentArn"]), None
        raise wrap_client_error(exc, f"Registering reward Lambda {lambda_arn} as an evaluator") from exc


def _ensure_evaluator_hub(sm: BaseClient) -> None:
    try:
        sm.describe_hub(HubName=EVALUATOR_HUB)
        return
    except ClientError as exc:
        if not is_not_found(exc):
            raise wrap_client_error(exc, f"Reading hub {EVALUATOR_HUB}") from exc
    try:
        sm.create_hub(HubName=EVALUATOR_HUB, HubDescription="novaflow: reward functions registered as evaluators")
    except ClientError as exc:
        if "already exists" not in str(exc).lower():
            raise wrap_client_error(exc, f"Creating hub {EVALUATOR_HUB}") from exc


def resolve_refs(spec: JobSpec, settings: NovaflowSettings, *, create: bool = False) -> ServerlessRefs:
    """Look up (dry run) or make sure of (``create``) what the request refers to."""
    sm = get_client("sagemaker", settings)
    base_arn, gated = base_model(spec, sm)
    notes: list[str] = []
    group = None
    if spec.method is not Method.EVALUATION or is_package_arn(spec.model_name_or_path):
        if not spec.model_package_group:
            raise RecipeError("A serverless job needs model_package_group (the registry group of its model).")
        group = (
            ensure_group(spec.model_package_group, settings)
            if create
            else group_arn(spec.model_package_group, settings)
        )
        if group is None:
            account = _account(settings)
            group = f"arn:aws:sagemaker:{spec.region}:{account}:model-package-group/{spec.model_package_group}"
            notes.append(f"model package group {spec.model_package_group} does not exist yet: submit creates it")
    evaluator_arn = None
    if needs_evaluator(spec):
        if not spec.reward_lambda_arn:
            raise RecipeError(f"{spec.method.value} on serverless needs reward_lambda_arn (the reward function).")
        evaluator_arn, note = evaluator(spec.reward_lambda_arn, settings, create=create)
        if note:
            notes.append(note)
    return ServerlessRefs(base_arn, gated, group, evaluator_arn, tuple(notes))
