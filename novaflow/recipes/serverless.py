"""What SageMaker serverless customization trains with: the hub recipe behind a model and technique, the regions
it runs in, and the flat hyperparameters it accepts.

A serverless job names no recipe and no image. The service takes the base model's hub content, picks the recipe
for the job's technique and PEFT choice, and reads the job's ``HyperParameters`` under the names of that recipe's
hub override spec (``learning_rate``, ``lora_alpha``, ``max_context_length``, ...), as strings. novaflow reads the
same spec from the tables derived from the recipe hub (:mod:`novaflow.recipes.published`) and picks the recipe the
way sagemaker v3 does when no compute is given: the first recipe of the model, in the hub's order, with the
technique, the PEFT choice and a SageMaker-training-job template. Every value is then typed and range-checked
here, for free, instead of failing a job at AWS.

Example:
    >>> spec = hyperparameter_spec(get_model("nova-lite-2"), Method.SFT_LORA)
    >>> spec.parameters["learning_rate"].default
    1e-05
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from novaflow.catalog import Method, NovaModel
from novaflow.errors import RecipeError
from novaflow.recipes.overrides import OverrideSpec, coerce
from novaflow.recipes.package_files import read_yaml
from novaflow.recipes.published import Parameter, PublishedRecipe, load_published

MAX_HYPERPARAMETERS = 100
"""CreateTrainingJob accepts at most 100 HyperParameters entries (the API model; botocore does not check it)."""

TECHNIQUES: dict[Method, tuple[str, bool]] = {
    Method.SFT_LORA: ("SFT", True),
    Method.SFT_FULL: ("SFT", False),
    Method.DPO_LORA: ("DPO", True),
    Method.DPO_FULL: ("DPO", False),
    Method.RFT_LORA: ("RLVR", True),
}
"""Training method -> the ``CustomizationTechnique`` of ``ServerlessJobConfig`` and whether ``Peft`` is LORA."""

RLVR_REGIONS = frozenset({"us-east-1", "us-west-2"})
"""The recipe hub lists no serverless SKU for any RLVR recipe, while sagemaker v3 trains RLVR serverless in the
regions it allows Nova customization in: novaflow follows v3 (README, "Where the references and AWS disagree")."""

NOT_HYPERPARAMETERS = frozenset(
    {
        "data_path",
        "output_path",
        "data_s3_path",
        "output_s3_path",
        "training_data_name",
        "validation_data_name",
        "validation_data_path",
        "reward_lambda_arn",
    }
)
"""Spec entries a serverless job carries elsewhere (input channels, output path, evaluator): never sent."""

CUSTOM_SCORER_TASKS = frozenset({"gen_qa", "rft_eval"})
"""Evaluation tasks scored per sample (by the gen_qa metrics or a reward function): ``CustomScorerEvaluation``;
every other task (benchmarks, LLM judges) is a ``BenchmarkEvaluation``."""
EVAL_INFERENCE_KEYS = (
    "max_new_tokens",
    "temperature",
    "top_k",
    "top_p",
    "aggregation",
    "postprocessing",
    "max_model_len",
)
"""Inference settings an evaluation job takes from the model's deterministic evaluation recipe (as v3 does)."""

LEAF_ALIASES = {"max_length": "max_context_length"}
"""Recipe leaf names whose hub parameter has no recipe path (the hub names the SFT/DPO sequence length so)."""


@dataclass(frozen=True)
class HyperparameterSpec:
    """The hub override spec a serverless job is checked against, and where it came from."""

    recipe: PublishedRecipe
    parameters: Mapping[str, Parameter]
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Recipe leaf names (``lr``, ``alpha``) -> the hub name they stand for."""

    def name_of(self, key: str) -> str | None:
        """The hub name for ``key`` given as a hub name, a recipe leaf name or a full recipe path."""
        if key in self.parameters:
            return key
        return self.aliases.get(key) or self.aliases.get(key.rsplit(".", 1)[-1])

    def defaults(self) -> dict[str, Any]:
        """Every parameter with a default, as v3 sends them when nothing is overridden."""
        return {name: p.default for name, p in self.parameters.items() if p.default is not None}

    def check(self, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Typed values under hub names, and every problem (unknown key, wrong type, out of range)."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for key, raw in overrides.items():
            name = self.name_of(key)
            if name is None:
                allowed = ", ".join(sorted(self.parameters))
                problems.append(f"unknown serverless hyperparameter {key!r} for {self.recipe.name}; allowed: {allowed}")
                continue
            spec = _override_spec(self.parameters[name])
            value = coerce(spec, raw)
            problem = spec.problem(value)
            if problem:
                problems.append(problem)
                continue
            values[name] = value
        return values, problems


def _override_spec(parameter: Parameter) -> OverrideSpec:
    return OverrideSpec(
        key=parameter.name,
        path=parameter.name,
        type=parameter.type,
        min=parameter.min,
        max=parameter.max,
        enum=parameter.enum,
    )


def hyperparameter_text(value: Any) -> str:
    """A hyperparameter value as the service receives it: Python's ``str`` of the typed value (as v3 sends it)."""
    return str(value)


def _has_smtj_template(recipe: PublishedRecipe) -> bool:
    return bool(recipe.images.get("SMTJ")) or recipe.technique == "EVALUATION"


def training_recipe(model: NovaModel, method: Method) -> PublishedRecipe:
    """The hub recipe a serverless training job of ``model`` runs (the first one in hub order)."""
    if method not in TECHNIQUES:
        offered = ", ".join(m.value for m in TECHNIQUES)
        raise RecipeError(f"{method.value} has no serverless technique: serverless trains {offered}.")
    technique, lora = TECHNIQUES[method]
    found = sorted(
        (
            r
            for r in load_published().select(hub_model=model.hub_name, technique=technique, peft=lora)
            if _has_smtj_template(r)
        ),
        key=lambda r: r.name,
    )
    if not found:
        raise RecipeError(f"AWS publishes no serverless {method.value} recipe for {model.key}.")
    return found[0]


def evaluation_recipe(model: NovaModel) -> PublishedRecipe:
    """The deterministic (bring-your-own-dataset) evaluation recipe whose inference settings serverless uses."""
    found = sorted(
        load_published().select(hub_model=model.hub_name, technique="EVALUATION", evaluation_task="gen_qa"),
        key=lambda r: r.name,
    )
    if not found:
        raise RecipeError(f"AWS publishes no evaluation recipe for {model.key}.")
    return found[0]


def hyperparameter_spec(model: NovaModel, method: Method) -> HyperparameterSpec:
    """The override spec of the recipe serverless trains ``method`` of ``model`` with (minus channel/path keys)."""
    recipe = evaluation_recipe(model) if method is Method.EVALUATION else training_recipe(model, method)
    parameters = {n: p for n, p in recipe.parameters.items() if n not in NOT_HYPERPARAMETERS}
    aliases: dict[str, str] = {}
    for name, parameter in parameters.items():
        for path in parameter.paths:
            aliases.setdefault(path, name)
            aliases.setdefault(path.rsplit(".", 1)[-1], name)
    for leaf, name in LEAF_ALIASES.items():
        if name in parameters and leaf not in parameters:
            aliases.setdefault(leaf, name)
    return HyperparameterSpec(recipe, parameters, {k: v for k, v in aliases.items() if k not in parameters})


def regions(model: NovaModel, method: Method) -> frozenset[str]:
    """Regions serverless runs ``method`` of ``model`` in."""
    if method is Method.RFT_LORA:
        training_recipe(model, method)  # refuses a model AWS publishes no RLVR recipe for
        return RLVR_REGIONS
    recipe = evaluation_recipe(model) if method is Method.EVALUATION else training_recipe(model, method)
    return frozenset(recipe.serverless_regions)


def availability_problem(model: NovaModel, method: Method, region: str) -> str | None:
    """Why serverless cannot run ``method`` of ``model`` in ``region`` (None when it can)."""
    try:
        where = regions(model, method)
    except RecipeError as exc:
        return str(exc)
    if region in where:
        return None
    listed = ", ".join(sorted(where)) or "no region"
    return (
        f"Serverless {method.value} of {model.key} is not offered in {region}: it runs in {listed}; "
        f"set NOVAFLOW_REGION to one of them or use platform SMTJ."
    )


def evaluation_type(task: str) -> str:
    """``CustomScorerEvaluation`` for gen_qa and rft_eval, ``BenchmarkEvaluation`` for benchmarks and judges."""
    return "CustomScorerEvaluation" if task in CUSTOM_SCORER_TASKS else "BenchmarkEvaluation"


@dataclass(frozen=True)
class TokenCostEstimate:
    """Tokens x price per million; an estimate from a dated, editable table, never a quote."""

    tokens: int
    price_per_million: float | None
    currency: str
    as_of: str
    basis: str
    source: str = ""

    @property
    def total(self) -> float | None:
        if self.price_per_million is None:
            return None
        return round(self.tokens / 1e6 * self.price_per_million, 2)

    def describe(self) -> str:
        if self.total is None:
            return (
                f"Cost estimate unavailable: ~{self.tokens:,} billable tokens ({self.basis}) but no price in the "
                f"serverless price table (as of {self.as_of}); add one to your prices file."
            )
        caveat = "; PLACEHOLDER prices: edit the table" if self.source == "placeholder" else ""
        return (
            f"ESTIMATE ({self.basis}): ~{self.tokens:,} tokens x {self.price_per_million:.2f} {self.currency}/1M = "
            f"{self.total:,.2f} {self.currency} (serverless price table as of {self.as_of}{caveat})"
        )


@dataclass(frozen=True)
class ServerlessPriceTable:
    training: Mapping[str, float]
    evaluation: Mapping[str, float]
    currency: str
    as_of: str
    source: str

    def estimate(self, model: str, method: Method, tokens: int, *, basis: str) -> TokenCostEstimate:
        prices = self.evaluation if method is Method.EVALUATION else self.training
        return TokenCostEstimate(tokens, prices.get(model), self.currency, self.as_of, basis, self.source)


def load_serverless_prices(path: str | None = None) -> ServerlessPriceTable:
    """The packaged table, or the user's copy (``path``)."""
    raw = read_yaml("serverless_prices.yaml", path)
    return ServerlessPriceTable(
        {str(k): float(v) for k, v in (raw.get("training") or {}).items() if v is not None},
        {str(k): float(v) for k, v in (raw.get("evaluation") or {}).items() if v is not None},
        str(raw["currency"]),
        str(raw["as_of"]),
        str(raw.get("source", "")),
    )


def billable_tokens(data_tokens: int, rows: int, hyperparameters: Mapping[str, Any], method: Method) -> tuple[int, str]:
    """Tokens a job will process, from its data and the passes over it the hyperparameters ask for."""
    if method is Method.EVALUATION:
        return data_tokens, "the evaluation data's input tokens, generated tokens not counted"
    if "max_steps" in hyperparameters and "global_batch_size" in hyperparameters and rows:
        samples = int(hyperparameters["max_steps"]) * int(hyperparameters["global_batch_size"])
        return round(data_tokens * samples / rows), f"{samples} samples = max_steps x global_batch_size"
    epochs = int(hyperparameters.get("max_epochs") or 1)
    return data_tokens * epochs, f"{epochs} epoch(s) over the training data"
