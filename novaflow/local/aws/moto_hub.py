"""SageMaker hubs, which moto 5.2.5 does not implement: the public hub's Nova models and private hubs for evaluators.

Serverless customization starts from hub content: ``DescribeHubContent(SageMakerPublicHub, Model, <name>)`` gives
the base model's ARN and its ``RecipeCollection`` (which recipe serves which technique, and where its override
spec lives in S3), and a reward function becomes an evaluator by ``ImportHubContent`` of a ``JsonDoc`` into a
private hub. The public hub's content is generated from the tables derived from the recipe hub
(:mod:`novaflow.recipes.published`), so the emulator, sagemaker v3 and novaflow read one truth; its override
spec files are written on first use into an AWS-owned bucket of the embedded S3. Errors are AWS's:
``ResourceNotFound`` for a missing hub or content, ``ResourceInUse`` for a name or version already taken.
"""

from __future__ import annotations

import json
import threading
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses
from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError

from novaflow.catalog import MODELS, NovaModel
from novaflow.local.emulator.serverless_jobs import PUBLIC_CONTENT_VERSION
from novaflow.recipes.published import PublishedRecipe, load_published

PUBLIC_HUB = "SageMakerPublicHub"
HUB_ACCOUNT = "000000000000"
"""The embedded S3 account standing in for AWS's own (the public hub's recipe files live there)."""
HUB_TYPES = {"int": "integer", "float": "float", "bool": "boolean", "str": "string"}
EVALUATION_TYPES = {
    "gen_qa": "DeterministicEvaluation",
    "text_benchmark": "BenchmarkEvaluation",
    "multi_modal_benchmark": "BenchmarkEvaluation",
    "llm_judge": "LLMAJEvaluation",
    "rubric_llm_judge": "LLMAJEvaluation",
    "rft_eval": "CustomScorerEvaluation",
}


@dataclass
class Hub:
    name: str
    arn: str
    description: str
    display_name: str | None
    keywords: list[str]
    created: datetime = field(default_factory=utcnow)


@dataclass
class HubContent:
    hub: str
    hub_arn: str
    type: str
    name: str
    version: str
    arn: str
    schema_version: str
    document: str
    display_name: str | None = None
    description: str | None = None
    markdown: str | None = None
    keywords: list[str] = field(default_factory=list)
    created: datetime = field(default_factory=utcnow)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "HubContentName": self.name,
            "HubContentArn": self.arn,
            "HubContentVersion": self.version,
            "HubContentType": self.type,
            "DocumentSchemaVersion": self.schema_version,
            "HubContentStatus": "Available",
            "CreationTime": self.created,
            "HubContentSearchKeywords": self.keywords,
        }
        if self.display_name:
            out["HubContentDisplayName"] = self.display_name
        if self.description:
            out["HubContentDescription"] = self.description
        return out

    def describe(self) -> dict[str, Any]:
        out = self.summary()
        out.pop("CreationTime")
        out.update(
            {
                "HubName": self.hub,
                "HubArn": self.hub_arn,
                "HubContentDocument": self.document,
                "HubContentDependencies": [],
                "CreationTime": self.created,
                "LastModifiedTime": self.created,
            }
        )
        if self.markdown:
            out["HubContentMarkdown"] = self.markdown
        return out


@dataclass
class HubState:
    """Everything one account and region holds: private hubs and their contents (public ones are generated)."""

    hubs: dict[str, Hub] = field(default_factory=dict)
    contents: dict[tuple[str, str, str, str], HubContent] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_STATES: weakref.WeakKeyDictionary[Any, HubState] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def state(backend: Any) -> HubState:
    """The hub state of one moto SageMaker backend (a reset makes new backends, so state goes with them)."""
    with _STATES_LOCK:
        found = _STATES.get(backend)
        if found is None:
            found = _STATES[backend] = HubState()
        return found


def _arn(region: str, account: str, kind: str, *parts: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/" + "/".join(parts)


def public_hub_arn(region: str) -> str:
    return _arn(region, "aws", "hub", PUBLIC_HUB)


def public_content_arn(region: str, name: str, version: str = PUBLIC_CONTENT_VERSION) -> str:
    return _arn(region, "aws", "hub-content", PUBLIC_HUB, "Model", name, version)


def recipes_bucket(region: str) -> str:
    return f"jumpstart-cache-prod-{region}"


def override_key(recipe: PublishedRecipe) -> str:
    return f"recipes/{recipe.name}_override_params.json"


def k8s_payload_key(recipe: PublishedRecipe) -> str:
    """The HyperPod payload template (:mod:`novaflow.local.aws.hub_hyperpod`)."""
    return f"recipes/{recipe.name}_payload_template_k8s.yaml"


def override_document(recipe: PublishedRecipe) -> dict[str, Any]:
    """A recipe's override spec in the hub's own file format (type names, required, default, limits)."""
    out: dict[str, Any] = {}
    for name, parameter in recipe.parameters.items():
        entry: dict[str, Any] = {"type": HUB_TYPES.get(parameter.type, parameter.type), "required": parameter.required}
        if parameter.default is not None or parameter.type == "str":
            entry["default"] = parameter.default
        if parameter.min is not None:
            entry["min"] = parameter.min
        if parameter.max is not None:
            entry["max"] = parameter.max
        if parameter.enum is not None:
            entry["enum"] = list(parameter.enum)
        out[name] = entry
    return out


def recipe_entry(recipe: PublishedRecipe, region: str) -> dict[str, Any]:
    """One ``RecipeCollection`` entry as sagemaker v3 and ``novaflow recipes sync`` read it."""
    bucket = recipes_bucket(region)
    entry: dict[str, Any] = {
        "Name": recipe.name,
        "DisplayName": recipe.display_name,
        "Type": "Evaluation" if recipe.technique == "EVALUATION" else "FineTuning",
        "Peft": recipe.peft,
        "IsSubscriptionModel": False,
        "SupportedInstanceTypes": list(recipe.instance_types),
        "InstanceCount": recipe.instance_count or 1,
    }
    if recipe.technique == "EVALUATION":
        entry["EvaluationType"] = EVALUATION_TYPES.get(recipe.evaluation_task or "", "BenchmarkEvaluation")
    else:
        entry["CustomizationTechnique"] = recipe.technique
    override_uri = f"s3://{bucket}/{override_key(recipe)}"
    if recipe.images.get("SMTJ") or recipe.technique == "EVALUATION":
        entry["SmtjRecipeTemplateS3Uri"] = f"s3://{bucket}/recipes/{recipe.name}_payload_template_sm_jobs.yaml"
        entry["SmtjOverrideParamsS3Uri"] = override_uri
    if recipe.images.get("SMHP"):
        entry["HpEksPayloadTemplateS3Uri"] = f"s3://{bucket}/{k8s_payload_key(recipe)}"
        entry["HpEksOverrideParamsS3Uri"] = override_uri
    if recipe.serverless_regions:
        entry["ServerlessRegions"] = list(recipe.serverless_regions)
    return entry


def model_recipes(model: NovaModel) -> list[PublishedRecipe]:
    """The model's recipes in hub order (by name)."""
    return sorted(load_published().select(hub_model=model.hub_name), key=lambda r: r.name)


def model_document(model: NovaModel, region: str) -> dict[str, Any]:
    """The public hub's ``HubContentDocument`` of a Nova model (gated: serverless jobs must accept the EULA)."""
    return {
        "GatedBucket": True,
        "HubContentName": model.hub_name,
        "ModelType": model.model_type,
        "RecipeCollection": [recipe_entry(r, region) for r in model_recipes(model)],
    }


_WRITTEN: set[tuple[str, str]] = set()
_WRITTEN_LOCK = threading.Lock()


def ensure_recipe_files(model: NovaModel, region: str) -> None:
    """Write the model's override spec files into the AWS-owned bucket of the embedded S3 (once per S3 state)."""
    from moto.s3.models import s3_backends

    s3 = s3_backends[HUB_ACCOUNT]["aws"]
    bucket = recipes_bucket(region)
    with _WRITTEN_LOCK:
        if bucket not in s3.buckets:
            s3.create_bucket(bucket, region)
            _WRITTEN.difference_update({k for k in _WRITTEN if k[0] == bucket})
        if (bucket, model.hub_name) in _WRITTEN:
            return
        for recipe in model_recipes(model):
            body = json.dumps(override_document(recipe), indent=2, sort_keys=True).encode()
            s3.put_object(bucket, override_key(recipe), body)
            if recipe.images.get("SMHP"):
                # the HyperPod template reads the derived chart tables: only for recipes published there
                from novaflow.local.aws.hub_hyperpod import payload_template

                s3.put_object(bucket, k8s_payload_key(recipe), payload_template(recipe, region).encode())
        _WRITTEN.add((bucket, model.hub_name))


def public_model(name: str) -> NovaModel | None:
    return next((m for m in MODELS.values() if m.hub_name == name), None)


def public_content(name: str, region: str, version: str | None) -> HubContent:
    model = public_model(name)
    if model is None or version not in (None, PUBLIC_CONTENT_VERSION):
        raise ResourceNotFound(f"Hub content {name} of type Model does not exist in hub {PUBLIC_HUB}.")
    ensure_recipe_files(model, region)
    return HubContent(
        hub=PUBLIC_HUB,
        hub_arn=public_hub_arn(region),
        type="Model",
        name=name,
        version=PUBLIC_CONTENT_VERSION,
        arn=public_content_arn(region, name),
        schema_version="2.0.0",
        document=json.dumps(model_document(model, region)),
        display_name=f"Amazon {model.alias}",
        keywords=["@task:text-generation", "@capability:fine-tuning"],
    )


# -- backend operations ---------------------------------------------------------------------------------
def create_hub(self: Any, name: str, description: str, display_name: str | None, keywords: list[str]) -> Hub:
    hubs = state(self)
    with hubs.lock:
        if name == PUBLIC_HUB or name in hubs.hubs:
            raise ResourceInUseException(f"Hub {name} already exists.")
        hub = Hub(name, _arn(self.region_name, self.account_id, "hub", name), description, display_name, keywords)
        hubs.hubs[name] = hub
        return hub


def _hub(self: Any, name: str) -> Hub:
    if name == PUBLIC_HUB:
        return Hub(PUBLIC_HUB, public_hub_arn(self.region_name), "SageMaker Public Hub", "SageMaker Public Hub", [])
    found = state(self).hubs.get(name)
    if found is None:
        raise ResourceNotFound(f"Hub {name} does not exist.")
    return found


def delete_hub(self: Any, name: str) -> None:
    hubs = state(self)
    _hub(self, name)
    with hubs.lock:
        if any(key[0] == name for key in hubs.contents):
            raise ResourceInUseException(f"Hub {name} is not empty: delete its hub contents first.")
        hubs.hubs.pop(name, None)


def import_hub_content(self: Any, params: dict[str, Any]) -> HubContent:
    hub = _hub(self, params["HubName"])
    if hub.name == PUBLIC_HUB:
        raise ValidationError(f"Hub {PUBLIC_HUB} is read-only: import into a private hub.")
    kind, name = params["HubContentType"], params["HubContentName"]
    version = params.get("HubContentVersion") or "1.0.0"
    try:
        json.loads(params["HubContentDocument"])
    except ValueError as exc:
        raise ValidationError(f"HubContentDocument is not valid JSON: {exc}") from None
    hubs = state(self)
    with hubs.lock:
        key = (hub.name, kind, name, version)
        if key in hubs.contents:
            raise ResourceInUseException(
                f"Hub content {name} of type {kind} with version {version} already exists in hub {hub.name}."
            )
        content = HubContent(
            hub=hub.name,
            hub_arn=hub.arn,
            type=kind,
            name=name,
            version=version,
            arn=_arn(self.region_name, self.account_id, "hub-content", hub.name, kind, name, version),
            schema_version=params["DocumentSchemaVersion"],
            document=params["HubContentDocument"],
            display_name=params.get("HubContentDisplayName"),
            description=params.get("HubContentDescription"),
            markdown=params.get("HubContentMarkdown"),
            keywords=list(params.get("HubContentSearchKeywords") or []),
        )
        hubs.contents[key] = content
        return content


def _versions(self: Any, hub: str, kind: str, name: str) -> list[HubContent]:
    found = [c for k, c in state(self).contents.items() if k[:3] == (hub, kind, name)]
    return sorted(found, key=lambda c: tuple(int(p) for p in c.version.split(".")))


def describe_hub_content(self: Any, hub: str, kind: str, name: str, version: str | None) -> HubContent:
    _hub(self, hub)
    if hub == PUBLIC_HUB:
        if kind != "Model":
            raise ResourceNotFound(f"Hub content {name} of type {kind} does not exist in hub {hub}.")
        return public_content(name, self.region_name, version)
    versions = _versions(self, hub, kind, name)
    if version is not None:
        versions = [c for c in versions if c.version == version]
    if not versions:
        what = f"{name} of type {kind}" + (f" with version {version}" if version else "")
        raise ResourceNotFound(f"Hub content {what} does not exist in hub {hub}.")
    return versions[-1]


def delete_hub_content(self: Any, hub: str, kind: str, name: str, version: str) -> None:
    describe_hub_content(self, hub, kind, name, version)
    with state(self).lock:
        state(self).contents.pop((hub, kind, name, version), None)


def list_hub_contents(self: Any, hub: str, kind: str, name_contains: str | None) -> list[HubContent]:
    _hub(self, hub)
    if hub == PUBLIC_HUB:
        found = [public_content(m.hub_name, self.region_name, None) for m in MODELS.values()] if kind == "Model" else []
    else:
        latest: dict[str, HubContent] = {}
        for content in state(self).contents.values():
            if content.hub == hub and content.type == kind:
                latest[content.name] = _versions(self, hub, kind, content.name)[-1]
        found = list(latest.values())
    return sorted((c for c in found if not name_contains or name_contains in c.name), key=lambda c: c.name)


# -- responses ------------------------------------------------------------------------------------------
def _r_create_hub(self: Any) -> ActionResult:
    hub = self.sagemaker_backend.create_hub(
        self._get_param("HubName"),
        self._get_param("HubDescription"),
        self._get_param("HubDisplayName"),
        self._get_param("HubSearchKeywords") or [],
    )
    return ActionResult({"HubArn": hub.arn})


def _r_describe_hub(self: Any) -> ActionResult:
    hub = self.sagemaker_backend.describe_hub(self._get_param("HubName"))
    out: dict[str, Any] = {
        "HubName": hub.name,
        "HubArn": hub.arn,
        "HubDescription": hub.description,
        "HubSearchKeywords": hub.keywords,
        "HubStatus": "InService",
        "CreationTime": hub.created,
        "LastModifiedTime": hub.created,
    }
    if hub.display_name:
        out["HubDisplayName"] = hub.display_name
    return ActionResult(out)


def _r_list_hubs(self: Any) -> ActionResult:
    hubs = sorted(state(self.sagemaker_backend).hubs.values(), key=lambda h: h.name)
    return ActionResult(
        {
            "HubSummaries": [
                {
                    "HubName": h.name,
                    "HubArn": h.arn,
                    "HubDescription": h.description,
                    "HubSearchKeywords": h.keywords,
                    "HubStatus": "InService",
                    "CreationTime": h.created,
                    "LastModifiedTime": h.created,
                }
                for h in hubs
            ]
        }
    )


def _r_delete_hub(self: Any) -> EmptyResult:
    self.sagemaker_backend.delete_hub(self._get_param("HubName"))
    return EmptyResult()


def _r_import_hub_content(self: Any) -> ActionResult:
    params = {
        key: self._get_param(key)
        for key in (
            "HubName",
            "HubContentType",
            "HubContentName",
            "HubContentVersion",
            "DocumentSchemaVersion",
            "HubContentDocument",
            "HubContentDisplayName",
            "HubContentDescription",
            "HubContentMarkdown",
            "HubContentSearchKeywords",
        )
    }
    content = self.sagemaker_backend.import_hub_content(params)
    return ActionResult({"HubArn": content.hub_arn, "HubContentArn": content.arn})


def _r_describe_hub_content(self: Any) -> ActionResult:
    content = self.sagemaker_backend.describe_hub_content(
        self._get_param("HubName"),
        self._get_param("HubContentType"),
        self._get_param("HubContentName"),
        self._get_param("HubContentVersion"),
    )
    return ActionResult(content.describe())


def _r_delete_hub_content(self: Any) -> EmptyResult:
    self.sagemaker_backend.delete_hub_content(
        self._get_param("HubName"),
        self._get_param("HubContentType"),
        self._get_param("HubContentName"),
        self._get_param("HubContentVersion"),
    )
    return EmptyResult()


def _r_list_hub_contents(self: Any) -> ActionResult:
    found = self.sagemaker_backend.list_hub_contents(
        self._get_param("HubName"), self._get_param("HubContentType"), self._get_param("NameContains")
    )
    return ActionResult({"HubContentSummaries": [c.summary() for c in found]})


def _r_list_hub_content_versions(self: Any) -> ActionResult:
    backend = self.sagemaker_backend
    hub, kind, name = self._get_param("HubName"), self._get_param("HubContentType"), self._get_param("HubContentName")
    if hub == PUBLIC_HUB:
        found = [backend.describe_hub_content(hub, kind, name, None)]
    else:
        backend.describe_hub(hub)
        found = _versions(backend, hub, kind, name)
    return ActionResult({"HubContentSummaries": [c.summary() for c in found]})


def install() -> None:
    """Add the hub operations to moto's SageMaker backend and responses (idempotent)."""
    backend = sm_models.SageMakerModelBackend
    if getattr(backend, "import_hub_content", None) is import_hub_content:
        return
    backend.create_hub = create_hub  # type: ignore[attr-defined]
    backend.describe_hub = _hub  # type: ignore[attr-defined]
    backend.delete_hub = delete_hub  # type: ignore[attr-defined]
    backend.import_hub_content = import_hub_content  # type: ignore[attr-defined]
    backend.describe_hub_content = describe_hub_content  # type: ignore[attr-defined]
    backend.delete_hub_content = delete_hub_content  # type: ignore[attr-defined]
    backend.list_hub_contents = list_hub_contents  # type: ignore[attr-defined]
    resp = sm_responses.SageMakerResponse
    resp.create_hub = _r_create_hub  # type: ignore[attr-defined]
    resp.describe_hub = _r_describe_hub  # type: ignore[attr-defined]
    resp.list_hubs = _r_list_hubs  # type: ignore[attr-defined]
    resp.delete_hub = _r_delete_hub  # type: ignore[attr-defined]
    resp.import_hub_content = _r_import_hub_content  # type: ignore[attr-defined]
    resp.describe_hub_content = _r_describe_hub_content  # type: ignore[attr-defined]
    resp.delete_hub_content = _r_delete_hub_content  # type: ignore[attr-defined]
    resp.list_hub_contents = _r_list_hub_contents  # type: ignore[attr-defined]
    resp.list_hub_content_versions = _r_list_hub_content_versions  # type: ignore[attr-defined]


def reset() -> None:
    with _WRITTEN_LOCK:
        _WRITTEN.clear()
