"""The one vocabulary of novaflow: Nova models, platforms, training methods, data formats and what may run where.

Every API names the same model differently (recipe ``model_type``, prod path, hub content name, Bedrock id) and
getting one of them wrong costs a failed job, so a name a user types is resolved once, at the edge (CLI option,
spec or flow parameter validator, :func:`~novaflow.data.prepare.prepare_dataset`), to one :class:`NovaModel`; past
the edge code passes the canonical key (``nova-lite-2``) or the model itself. The training method decides the data
format (:attr:`Method.data_format`), and :data:`SUPPORT` is the single table saying which model, method and platform
go together and why not when they do not: data preparation, job specs, the dry run and the flows all ask it.

AWS grows this catalog (new models, methods, platforms); adding one is adding a row here. Availability follows the
Nova customization documentation (https://docs.aws.amazon.com/nova/latest/userguide/customize-fine-tune.html and
https://docs.aws.amazon.com/sagemaker/latest/dg/nova-model.html).

Example:
    >>> get_model("amazon.nova-2-lite-v1").key
    'nova-lite-2'
    >>> Method("rft_lora").data_format
    <DataFormat.RFT: 'rft'>
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Self

from novaflow.errors import ConfigError, DataError


class _Named(str, Enum):
    """An enum whose members also accept their value in any letter case (``smtj``, ``SFT_LORA``)."""

    @classmethod
    def _missing_(cls, value: object) -> _Named | None:
        if isinstance(value, str):
            wanted = value.strip().lower()
            for member in cls:
                if member.value.lower() == wanted:
                    return member
        return None

    @classmethod
    def parse(cls, value: str | _Named) -> Self:
        """The member for ``value``; a ConfigError listing the choices (not a bare ValueError) otherwise."""
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise ConfigError(f"Unknown {cls._label()} {value!r}: use one of {choices}.") from None

    @classmethod
    def _label(cls) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__).lower()


class Platform(_Named):
    """Where a job runs.

    ``SMTJ`` is a SageMaker training job on instances novaflow chooses (recipe channel, training image);
    ``SERVERLESS`` is SageMaker serverless model customization: a training job without instances, which the
    service sizes itself and whose result it registers as a model package version; ``SMHP`` is a job on a team's
    SageMaker HyperPod cluster (EKS orchestrator), accepted as ``HYPERPOD`` too (the Forge SDK's and the recipe
    hub's name is SMHP, sagemaker v3's ``HyperPodCompute`` and the CLI say HyperPod).
    """

    SMTJ = "SMTJ"
    BEDROCK = "BEDROCK"
    SMHP = "SMHP"
    SERVERLESS = "SERVERLESS"

    @classmethod
    def _missing_(cls, value: object) -> Platform | None:
        if isinstance(value, str) and value.strip().lower() == "hyperpod":
            return cls.SMHP
        found = super()._missing_(value)
        return found if isinstance(found, Platform) else None


class DataFormat(_Named):
    """The shape of a prepared dataset file; each training method reads exactly one of them."""

    EVAL = "eval"
    SFT = "sft"
    RFT = "rft"
    CPT = "cpt"
    DPO = "dpo"
    MTRL = "mtrl"
    """Multi-turn (agentic) RFT: one task per row (``id``, ``metadata.prompt``) that the team's agent plays."""

    @classmethod
    def of(cls, value: str | DataFormat | Method) -> DataFormat:
        """A data format from its own name or from a training method's (``sft_lora`` -> ``sft``)."""
        if isinstance(value, Method):
            return value.data_format
        if isinstance(value, DataFormat):
            return value
        try:
            return cls(value)
        except ValueError:
            pass
        try:
            return Method(value).data_format
        except ValueError:
            formats = ", ".join(f.value for f in cls)
            raise ConfigError(
                f"Unknown data format {value!r}: use one of {formats} (or the training method, e.g. sft_lora)."
            ) from None


class Method(_Named):
    """Training (and evaluation) methods, named as the Forge SDK named them (sagemaker v3 has a trainer each)."""

    SFT_LORA = "sft_lora"
    SFT_FULL = "sft_full"
    RFT_LORA = "rft_lora"
    DPO_LORA = "dpo_lora"
    DPO_FULL = "dpo_full"
    CPT = "cpt"
    RFT_MULTITURN = "rft_multiturn"
    """Agentic RFT: the service sends rollouts to the team's agent, which calls the policy and reports rewards."""
    EVALUATION = "evaluation"

    @property
    def data_format(self) -> DataFormat:
        """The format of the data this method trains (or evaluates) on."""
        return _DATA_FORMATS[self]

    @property
    def is_training(self) -> bool:
        return self is not Method.EVALUATION


_DATA_FORMATS: dict[Method, DataFormat] = {
    Method.SFT_LORA: DataFormat.SFT,
    Method.SFT_FULL: DataFormat.SFT,
    Method.RFT_LORA: DataFormat.RFT,
    Method.DPO_LORA: DataFormat.DPO,
    Method.DPO_FULL: DataFormat.DPO,
    Method.CPT: DataFormat.CPT,
    Method.RFT_MULTITURN: DataFormat.MTRL,
    Method.EVALUATION: DataFormat.EVAL,
}


@dataclass(frozen=True)
class NovaModel:
    """One Nova model under all its names."""

    key: str
    version: int
    model_type: str
    model_path: str
    hub_name: str
    alias: str
    multimodal: bool

    @property
    def bedrock_id(self) -> str:
        """Cross-region inference id: ``model_type`` without the context suffix, with the ``us.`` geo prefix."""
        return "us." + self.model_type.rsplit(":", 1)[0]

    @property
    def bedrock_base_model_id(self) -> str:
        """Base model identifier for Bedrock customization (``amazon.nova-2-lite-v1:0:256k``)."""
        return self.model_type

    @property
    def spellings(self) -> frozenset[str]:
        """Every name this model is accepted under (compared lower-cased)."""
        return frozenset(
            {
                self.key,
                self.key.replace("-", "_"),
                self.model_type.lower(),
                self.model_type.rsplit(":", 1)[0],
                self.model_path,
                self.hub_name,
                self.alias,
                self.bedrock_id,
                self.bedrock_id.removeprefix("us."),
            }
        )


MODELS: dict[str, NovaModel] = {
    m.key: m
    for m in (
        NovaModel(
            "nova-micro",
            1,
            "amazon.nova-micro-v1:0:128k",
            "nova-micro/prod",
            "nova-textgeneration-micro",
            "amazon.nova-micro-v1",
            multimodal=False,
        ),
        NovaModel(
            "nova-lite",
            1,
            "amazon.nova-lite-v1:0:300k",
            "nova-lite/prod",
            "nova-textgeneration-lite",
            "amazon.nova-lite-v1",
            multimodal=True,
        ),
        NovaModel(
            "nova-pro",
            1,
            "amazon.nova-pro-v1:0:300k",
            "nova-pro/prod",
            "nova-textgeneration-pro",
            "amazon.nova-pro-v1",
            multimodal=True,
        ),
        NovaModel(
            "nova-lite-2",
            2,
            "amazon.nova-2-lite-v1:0:256k",
            "nova-lite-2/prod",
            "nova-textgeneration-lite-v2",
            "amazon.nova-2-lite-v1",
            multimodal=True,
        ),
    )
}
DEFAULT_MODEL = "nova-lite-2"
"""The model of the case study; ``NOVAFLOW_MODEL`` (``settings.model``) changes it for every command and flow."""

ALIASES: dict[str, NovaModel] = {name: model for model in MODELS.values() for name in sorted(model.spellings)}
"""The one alias table: every accepted spelling -> its model. Data, jobs, deployments and flows all resolve here."""

NOVA_1 = frozenset(key for key, m in MODELS.items() if m.version == 1)
NOVA_2 = frozenset(key for key, m in MODELS.items() if m.version == 2)


def get_model(name: str | NovaModel) -> NovaModel:
    """The model for any of its spellings (key, model type, prod path, hub name, alias, Bedrock id)."""
    if isinstance(name, NovaModel):
        return name
    model = ALIASES.get(name.strip().lower())
    if model is None:
        known = ", ".join(MODELS)
        raise ConfigError(f"Unknown Nova model {name!r}: use one of {known} (or its model type / hub name / alias).")
    return model


def canonical_model(name: str | NovaModel) -> str:
    """The catalog key (``nova-lite-2``) for any spelling: what specs store and hash."""
    return get_model(name).key


def model_field(value: str) -> str:
    """:func:`canonical_model` for pydantic validators whose errors must stay field errors (settings, flow
    parameters): the same message, raised as ValueError."""
    try:
        return canonical_model(value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


@dataclass(frozen=True)
class Support:
    """Where one method runs: the models and platforms AWS offers it on, and why other models cannot use it."""

    models: frozenset[str]
    platforms: frozenset[Platform]
    reason: str = ""
    built: bool = True
    """False while novaflow prepares the data for the method but builds no recipe for it yet."""


_ALL = frozenset(MODELS)
_SAGEMAKER = frozenset({Platform.SMTJ, Platform.SMHP})
_SERVERLESS = frozenset({Platform.SERVERLESS})
_RFT_REASON = "RFT is only supported on Nova 2.0 (nova-lite-2)"
_DPO_REASON = "DPO is only supported on Nova 1 models (nova-micro, nova-lite, nova-pro)"
_MTRL_REASON = "multi-turn RFT is only offered for Nova 2 Lite (nova-lite-2)"

SUPPORT: dict[Method, Support] = {
    Method.SFT_LORA: Support(_ALL, _SAGEMAKER | _SERVERLESS | {Platform.BEDROCK}),
    Method.SFT_FULL: Support(_ALL, _SAGEMAKER | _SERVERLESS),
    Method.RFT_LORA: Support(NOVA_2, _SAGEMAKER | _SERVERLESS | {Platform.BEDROCK}, _RFT_REASON),
    Method.DPO_LORA: Support(NOVA_1, _SAGEMAKER | _SERVERLESS, _DPO_REASON),
    Method.DPO_FULL: Support(NOVA_1, _SAGEMAKER | _SERVERLESS, _DPO_REASON),
    Method.CPT: Support(_ALL, _SAGEMAKER),
    Method.RFT_MULTITURN: Support(NOVA_2, _SERVERLESS, _MTRL_REASON),
    Method.EVALUATION: Support(_ALL, _SAGEMAKER | _SERVERLESS),
}
"""Method -> where it runs. The one support table: data preparation, jobs, the dry run and the flows read it."""

SUBMITTABLE = frozenset({Platform.SMTJ, Platform.BEDROCK, Platform.SERVERLESS, Platform.SMHP})
"""Platforms novaflow submits to."""
HYPERPOD_UNBUILT = {
    Method.RFT_LORA: "RFT on HyperPod runs the recipe hub's RFT chart (a hub, NATS, Redis and vLLM generation "
    "services beside the trainer), which novaflow does not build yet: run rft_lora on SMTJ or SERVERLESS"
}
"""Methods AWS offers on HyperPod that novaflow does not submit there yet, with the reason and the way out."""


@cache
def escrow_accounts() -> dict[str, str]:
    """Region -> the AWS-owned account holding the Nova images there (from the published inference image table).
    Training and evaluation images exist in fewer regions than inference:
    :func:`novaflow.recipes.support.region_problem` asks the job's recipe."""
    # start-up: the published tables (frozen dataclasses, JSON) load when a region is checked, not for `data prepare`
    from novaflow.recipes.published import load_published

    return {region: uri.split(".", 1)[0] for region, uri in sorted(load_published().inference_images.items())}


BEDROCK_REGIONS = frozenset({"us-east-1"})
SERVERLESS_REGIONS = frozenset(
    {"us-east-1", "us-west-2", "ap-southeast-2", "ap-northeast-1", "eu-central-1", "eu-west-1"}
)
"""Regions the recipe hub lists serverless SKUs in (its ``serverless_sku`` table); which technique runs where is
narrower and is checked per recipe by :mod:`novaflow.recipes.serverless`."""


def method_problem(model: str | NovaModel, method: Method, platform: Platform) -> str | None:
    """Why ``method`` cannot run for ``model`` on ``platform`` (None when it can): the one place that says so."""
    nova = get_model(model)
    support = SUPPORT[method]
    if platform not in support.platforms:
        where = ", ".join(p.value for p in Platform if p in support.platforms)
        return f"{method.value} is not supported on {platform.value}: it runs on {where}."
    if nova.key not in support.models:
        return f"{method.value} is not supported for {nova.key} on {platform.value}: {support.reason}."
    if not support.built:
        return (
            f"novaflow does not build {method.value} recipes yet: prepare the data with "
            f"`novaflow data prepare --method {method.data_format.value}` and submit with your own recipe tooling."
        )
    if platform not in SUBMITTABLE:
        return f"novaflow does not submit to {platform.value}: use platform SMTJ, SERVERLESS, BEDROCK or SMHP."
    if platform is Platform.SMHP and method in HYPERPOD_UNBUILT:
        return HYPERPOD_UNBUILT[method] + "."
    return None


def data_format_problem(model: str | NovaModel, data_format: DataFormat) -> str | None:
    """Why no method that reads ``data_format`` can train ``model`` (None when one can)."""
    nova = get_model(model)
    readers = [m for m in Method if m.data_format is data_format]
    if any(nova.key in SUPPORT[m].models for m in readers):
        return None
    return f"{data_format.value} data is of no use for {nova.key}: {SUPPORT[readers[0]].reason}."


def check_data_format(model: str | NovaModel, data_format: DataFormat) -> None:
    """DataError with the reason when data in ``data_format`` cannot be used with ``model``."""
    problem = data_format_problem(model, data_format)
    if problem:
        raise DataError(problem)
