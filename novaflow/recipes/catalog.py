"""The Nova model catalog: which models exist, what they are called in each API, and where they can train.

One table instead of strings scattered through the code, because every API names the same model differently
(recipe ``model_type``, prod path, hub content name, Bedrock id) and getting one of them wrong costs a failed job.
AWS grows this catalog; :func:`get_model` accepts every spelling a user is likely to type.

Example:
    >>> get_model("amazon.nova-2-lite-v1").model_type
    'amazon.nova-2-lite-v1:0:256k'
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from novaflow.errors import RecipeError


class Platform(str, Enum):
    """Where a job runs. HyperPod is modelled so specs can name it; submission raises until it is built."""

    SMTJ = "SMTJ"
    BEDROCK = "BEDROCK"
    SMHP = "SMHP"


class Method(str, Enum):
    """Training methods novaflow builds recipes for (values as in the reference SDK)."""

    SFT_LORA = "sft_lora"
    SFT_FULL = "sft_full"
    RFT_LORA = "rft_lora"
    EVALUATION = "evaluation"

    @property
    def is_training(self) -> bool:
        return self is not Method.EVALUATION

    @property
    def family(self) -> str:
        """``sft`` / ``rft`` / ``evaluation``: decides the data channel type and the image."""
        return self.value.split("_")[0]


@dataclass(frozen=True)
class NovaModel:
    """One Nova model under all its names (nova-contract §2.1)."""

    key: str
    version: int
    model_type: str
    model_path: str
    hub_name: str
    alias: str

    @property
    def bedrock_id(self) -> str:
        """Cross-region inference id: ``model_type`` without the context suffix, with the ``us.`` geo prefix."""
        return "us." + self.model_type.rsplit(":", 1)[0]

    @property
    def bedrock_base_model_id(self) -> str:
        """Base model identifier for Bedrock customization (``amazon.nova-2-lite-v1:0:256k``)."""
        return self.model_type


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
        ),
        NovaModel(
            "nova-lite",
            1,
            "amazon.nova-lite-v1:0:300k",
            "nova-lite/prod",
            "nova-textgeneration-lite",
            "amazon.nova-lite-v1",
        ),
        NovaModel(
            "nova-pro", 1, "amazon.nova-pro-v1:0:300k", "nova-pro/prod", "nova-textgeneration-pro", "amazon.nova-pro-v1"
        ),
        NovaModel(
            "nova-lite-2",
            2,
            "amazon.nova-2-lite-v1:0:256k",
            "nova-lite-2/prod",
            "nova-textgeneration-lite-v2",
            "amazon.nova-2-lite-v1",
        ),
    )
}

ESCROW_ACCOUNTS: dict[str, str] = {
    "us-east-1": "708977205387",
    "us-west-2": "176779409107",
    "eu-west-2": "470633809225",
    "ap-northeast-1": "878185805882",
}
BEDROCK_REGIONS = frozenset({"us-east-1"})

# (platform, method) -> models; nova-contract §3.2 restricted to the methods novaflow builds recipes for.
SUPPORTED: dict[tuple[Platform, Method], frozenset[str]] = {
    (Platform.SMTJ, Method.SFT_LORA): frozenset(MODELS),
    (Platform.SMTJ, Method.SFT_FULL): frozenset(MODELS),
    (Platform.SMTJ, Method.RFT_LORA): frozenset({"nova-lite-2"}),
    (Platform.SMTJ, Method.EVALUATION): frozenset(MODELS),
    (Platform.BEDROCK, Method.SFT_LORA): frozenset(MODELS),
    (Platform.BEDROCK, Method.RFT_LORA): frozenset({"nova-lite-2"}),
}


def get_model(name: str) -> NovaModel:
    """Look a model up by key, enum value, model type, prod path, hub name, alias or Bedrock id."""
    wanted = name.strip().lower()
    for model in MODELS.values():
        spellings = {
            model.key,
            model.key.replace("-", "_"),
            model.model_type.lower(),
            model.model_path,
            model.hub_name,
            model.alias,
            model.bedrock_id,
            model.bedrock_id.removeprefix("us."),
            model.model_type.rsplit(":", 1)[0],
        }
        if wanted in spellings:
            return model
    known = ", ".join(MODELS)
    raise RecipeError(f"Unknown Nova model {name!r}: use one of {known} (or its model type / hub name / alias).")


def check_supported(model: NovaModel, method: Method, platform: Platform, region: str | None = None) -> None:
    """Raise with the reason when the combination cannot run (before anything is uploaded or paid for)."""
    if platform is Platform.SMHP:
        raise RecipeError("HyperPod (SMHP) submission is not implemented yet: use platform SMTJ or BEDROCK.")
    models = SUPPORTED.get((platform, method))
    if models is None:
        raise RecipeError(
            f"{method.value} is not supported on {platform.value}: Bedrock customization takes "
            f"sft_lora or rft_lora only."
        )
    if model.key not in models:
        hint = " Note: RFT is only supported on Nova 2.0 (nova-lite-2)." if method is Method.RFT_LORA else ""
        raise RecipeError(f"{method.value} is not supported for {model.key} on {platform.value}.{hint}")
    if region is not None:
        if region not in ESCROW_ACCOUNTS:
            raise RecipeError(
                f"Region {region!r} has no Nova customization images: use one of {', '.join(ESCROW_ACCOUNTS)}."
            )
        if platform is Platform.BEDROCK and region not in BEDROCK_REGIONS:
            raise RecipeError(
                f"Bedrock Nova customization runs only in us-east-1, not {region}: set "
                f"NOVAFLOW_REGION=us-east-1 or use platform SMTJ."
            )


def image_uri(region: str, model: NovaModel, method: Method) -> str:
    """The SageMaker training-job image for a Nova recipe (nova-contract §9.3)."""
    account = ESCROW_ACCOUNTS.get(region)
    if account is None:
        raise RecipeError(
            f"Region {region!r} has no Nova customization images: use one of {', '.join(ESCROW_ACCOUNTS)}."
        )
    v2 = "-V2" if model.version == 2 else ""
    if method is Method.EVALUATION:
        repo, tag = "nova-evaluation-repo", f"SM-TJ-Eval{v2}-latest"
    elif method.family == "rft":
        repo, tag = "nova-fine-tune-repo", f"SM-TJ-RFT{v2}-latest"
    else:
        repo, tag = "nova-fine-tune-repo", f"SM-TJ-SFT{v2}-latest"
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{repo}:{tag}"
