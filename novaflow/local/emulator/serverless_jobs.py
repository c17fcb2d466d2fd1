"""Serverless training jobs in the embedded AWS: what CreateTrainingJob accepts without instances, and what its
worker trains.

moto 5.2.5 ignores ``ServerlessJobConfig``, ``ModelPackageConfig`` and ``MlflowConfig`` and crashes on a job
without an algorithm. AWS checks a serverless request against the base model's hub content before it creates the
job - the model exists and its EULA is accepted, the technique has a recipe, the hyperparameters are that recipe's,
the reward function is a registered evaluator, the model package group exists - so the same checks run here, with
errors a caller can act on. The worker then trains from the flat hyperparameters: :func:`recipe_of` turns them
into the recipe the Nova emulator already runs, so a serverless SFT and an SMTJ SFT of the same data and settings
train the same stand-in model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.sagemaker.exceptions import ResourceNotFound, ValidationError

from novaflow.catalog import get_model
from novaflow.recipes.published import load_published
from novaflow.recipes.serverless import MAX_HYPERPARAMETERS, NOT_HYPERPARAMETERS

PUBLIC_CONTENT_VERSION = "1.0.0"
"""The version of every public Nova hub content in the embedded AWS (its hub, :mod:`novaflow.local.aws.moto_hub`,
publishes them under it; a serverless job's ``BaseModelArn`` may leave it out)."""

HUB_CONTENT_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[\w-]+:(?:\d{12}|aws):hub-content/(?P<hub>[^/]+)/(?P<type>[^/]+)/"
    r"(?P<name>[^/]+)(?:/(?P<version>[\d.]+))?$"
)
REWARD_TECHNIQUES = frozenset({"RLVR", "RLAIF"})


@dataclass(frozen=True)
class ServerlessPlan:
    """What a serverless job's worker needs, resolved from the request when the job is created."""

    job_type: str
    technique: str | None
    evaluation_type: str | None
    model_key: str
    start: str
    """The model to start from: the base model's prod path, or the source model package's checkpoint."""
    base_content: tuple[str, str]
    """(hub content name, version) of the base model: what the registered version records."""
    group_name: str | None
    lambda_arn: str | None


def parse_hub_content_arn(arn: str, field: str) -> tuple[str, str, str, str | None]:
    match = HUB_CONTENT_ARN.match(arn or "")
    if not match:
        raise ValidationError(f"{field} {arn!r} is not a hub content ARN (arn:aws:sagemaker:...:hub-content/...).")
    return match["hub"], match["type"], match["name"], match["version"]


def _content(backend: Any, arn: str, field: str, kind: str) -> Any:
    hub, found_kind, name, version = parse_hub_content_arn(arn, field)
    if found_kind != kind:
        raise ValidationError(f"{field} {arn} names hub content of type {found_kind}; it must be a {kind}.")
    try:
        return backend.describe_hub_content(hub, kind, name, version)
    except ResourceNotFound:
        raise ValidationError(f"{field} {arn} does not exist.") from None


def evaluator_lambda(backend: Any, arn: str) -> str:
    """The Lambda a reward-function evaluator (a ``JsonDoc`` of subtype ``AWS/Evaluator``) invokes."""
    content = _content(backend, arn, "EvaluatorArn", "JsonDoc")
    try:
        document = json.loads(content.document)
        inner = json.loads(document.get("JsonContent") or "{}")
    except ValueError:
        raise ValidationError(f"EvaluatorArn {arn}: the hub content is not an evaluator document.") from None
    reference = inner.get("Reference")
    if document.get("SubType") != "AWS/Evaluator" or not isinstance(reference, str) or not reference:
        raise ValidationError(
            f"EvaluatorArn {arn}: expected SubType AWS/Evaluator with a Reference to a reward function."
        )
    return reference


def _group_name(backend: Any, arn: str) -> str:
    name = arn.rsplit("/", 1)[-1]
    if name not in backend.model_package_groups or backend.model_package_groups[name].arn != arn:
        raise ValidationError(f"ModelPackageGroupArn {arn} does not exist: create the model package group first.")
    return name


def source_checkpoint(backend: Any, arn: str) -> str:
    """The checkpoint of a registered version (``InferenceSpecification.Containers[0].ModelDataSource``)."""
    try:
        package = backend.describe_model_package(arn)
    except ValidationError:
        raise ValidationError(f"SourceModelPackageArn {arn} does not exist.") from None
    containers = (package.inference_specification or {}).get("Containers") or []
    uri = ((containers[0].get("ModelDataSource") or {}).get("S3DataSource") or {}).get("S3Uri") if containers else None
    if not uri:
        raise ValidationError(f"SourceModelPackageArn {arn} has no model data to continue from.")
    return str(uri).rstrip("/")


def _recipe_entry(document: dict[str, Any], technique: str, lora: bool) -> dict[str, Any] | None:
    for entry in document.get("RecipeCollection", []):
        if (
            entry.get("CustomizationTechnique") == technique
            and bool(entry.get("Peft")) == lora
            and not entry.get("IsSubscriptionModel")
            and entry.get("SmtjOverrideParamsS3Uri")
        ):
            return dict(entry)
    return None


def validate_request(backend: Any, param: Callable[[str], Any]) -> dict[str, Any]:
    """Refuse what AWS refuses; the serverless fields to keep on the job (shown by DescribeTrainingJob)."""
    serverless = param("ServerlessJobConfig")
    hyper = param("HyperParameters") or {}
    if len(hyper) > MAX_HYPERPARAMETERS:
        raise ValidationError(
            f"1 validation error detected: Value at 'hyperParameters' failed to satisfy constraint: Member must "
            f"have length less than or equal to {MAX_HYPERPARAMETERS} (got {len(hyper)} entries)."
        )
    if serverless is None:
        for name in ("AlgorithmSpecification", "ResourceConfig"):
            if param(name) is None:
                raise ValidationError(f"{name} is required for a training job without ServerlessJobConfig.")
        return {}
    for name in ("AlgorithmSpecification", "ResourceConfig"):
        if param(name) is not None:
            raise ValidationError(
                f"A serverless training job (ServerlessJobConfig) takes no {name}: the service chooses the "
                "algorithm and the compute."
            )
    content = _content(backend, serverless.get("BaseModelArn", ""), "BaseModelArn", "Model")
    document = json.loads(content.document)
    if document.get("GatedBucket") and not serverless.get("AcceptEula"):
        raise ValidationError(
            f"Model {content.name} requires accepting its end-user license agreement: set "
            "ServerlessJobConfig.AcceptEula to true."
        )
    packages = param("ModelPackageConfig")
    if packages:
        _group_name(backend, packages.get("ModelPackageGroupArn", ""))
        if packages.get("SourceModelPackageArn"):
            source_checkpoint(backend, packages["SourceModelPackageArn"])
    if serverless.get("EvaluatorArn"):
        evaluator_lambda(backend, serverless["EvaluatorArn"])
    job_type = serverless.get("JobType")
    if job_type == "FineTuning":
        _validate_fine_tuning(serverless, packages, content.name, document, hyper)
    elif not serverless.get("EvaluationType"):
        raise ValidationError("ServerlessJobConfig.EvaluationType is required when JobType is Evaluation.")
    extra = {
        "serverless_job_config": serverless,
        "model_package_config": packages,
        "mlflow_config": param("MlflowConfig"),
    }
    return {k: v for k, v in extra.items() if v}


def _validate_fine_tuning(
    serverless: dict[str, Any],
    packages: dict[str, Any] | None,
    model: str,
    document: dict[str, Any],
    hyper: dict[str, str],
) -> None:
    technique = serverless.get("CustomizationTechnique")
    if not technique:
        raise ValidationError("ServerlessJobConfig.CustomizationTechnique is required when JobType is FineTuning.")
    if not packages:
        raise ValidationError(
            "ModelPackageConfig.ModelPackageGroupArn is required for serverless fine-tuning: the service "
            "registers the trained model as a version of that group."
        )
    lora = serverless.get("Peft") == "LORA"
    entry = _recipe_entry(document, technique, lora)
    if entry is None:
        kind = "LoRA" if lora else "full-rank"
        raise ValidationError(f"Model {model} has no serverless {technique} {kind} recipe.")
    spec = next(r for r in load_published().select(hub_model=get_model(model).hub_name) if r.name == entry["Name"])
    allowed = set(spec.parameters) - NOT_HYPERPARAMETERS
    unknown = sorted(set(hyper) - allowed)
    if unknown:
        raise ValidationError(
            f"HyperParameters {', '.join(unknown)} are not parameters of {entry['Name']}; allowed: "
            f"{', '.join(sorted(allowed))}."
        )
    if (
        technique in REWARD_TECHNIQUES
        and not serverless.get("EvaluatorArn")
        and not hyper.get("preset_reward_function")
    ):
        raise ValidationError(f"{technique} needs a reward: ServerlessJobConfig.EvaluatorArn (a reward function).")


def plan(backend: Any, job: Any) -> ServerlessPlan:
    """The worker's view of a created serverless job (the request was validated at create)."""
    serverless = job.serverless_job_config
    _, _, name, version = parse_hub_content_arn(serverless["BaseModelArn"], "BaseModelArn")
    model = get_model(name)
    packages = getattr(job, "model_package_config", None) or {}
    source = packages.get("SourceModelPackageArn")
    evaluator = serverless.get("EvaluatorArn")
    return ServerlessPlan(
        job_type=serverless["JobType"],
        technique=serverless.get("CustomizationTechnique"),
        evaluation_type=serverless.get("EvaluationType"),
        model_key=model.key,
        start=source_checkpoint(backend, source) if source else model.model_path,
        base_content=(name, version or PUBLIC_CONTENT_VERSION),
        group_name=packages["ModelPackageGroupArn"].rsplit("/", 1)[-1]
        if packages.get("ModelPackageGroupArn")
        else None,
        lambda_arn=evaluator_lambda(backend, evaluator) if evaluator else None,
    )


def _number(hyper: dict[str, str], key: str, default: float) -> float:
    try:
        return float(hyper[key])
    except (KeyError, ValueError):
        return default


def recipe_of(plan: ServerlessPlan, hyper: dict[str, str], job_name: str) -> dict[str, Any]:
    """The recipe the Nova emulator runs for a serverless job: the flat hyperparameters put where recipes keep
    them (``learning_rate`` -> ``optim_config.lr``, ``adam_beta`` -> ``dpo_cfg.beta``, ...)."""
    run: dict[str, Any] = {
        "name": hyper.get("name") or job_name,
        "model_type": get_model(plan.model_key).model_type,
        "model_name_or_path": plan.start,
        "replicas": 1,
    }
    if plan.job_type == "Evaluation":
        evaluation = {k: hyper[k] for k in ("task", "strategy", "metric") if k in hyper}
        inference = {k: hyper[k] for k in ("max_new_tokens", "temperature", "top_k", "top_p") if k in hyper}
        recipe: dict[str, Any] = {"run": run, "evaluation": evaluation, "inference": inference}
        if plan.lambda_arn:
            recipe["processor"] = {"lambda_arn": plan.lambda_arn, "lambda_type": hyper.get("lambda_type", "rft")}
        return recipe
    lr = _number(hyper, "learning_rate", 1e-5)
    batch = int(_number(hyper, "global_batch_size", 32))
    config: dict[str, Any] = {"global_batch_size": batch}
    if "max_steps" in hyper:
        config["max_steps"] = int(_number(hyper, "max_steps", 10))
    if plan.technique in REWARD_TECHNIQUES:
        run["reward_lambda_arn"] = plan.lambda_arn
        config["rollout"] = {"rewards": {"api_endpoint": {"lambda_arn": plan.lambda_arn}}}
        config["trainer"] = {"max_steps": int(_number(hyper, "max_steps", 10)), "optim_config": {"lr": lr}}
        return {"run": run, "training_config": config}
    config["trainer"] = {"max_epochs": int(_number(hyper, "max_epochs", 1))}
    config["optim_config"] = {"lr": lr}
    config["lr_scheduler"] = {
        "warmup_steps": int(_number(hyper, "warmup_steps", 0)),
        "min_lr": _number(hyper, "min_lr", 0.0),
    }
    if plan.technique == "DPO":
        config["model"] = {"dpo_cfg": {"beta": _number(hyper, "adam_beta", 0.1)}}
    return {"run": run, "training_config": config}
