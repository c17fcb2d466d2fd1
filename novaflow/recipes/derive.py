"""Derive novaflow's service tables from the files the SageMaker HyperPod recipes repository publishes.

AWS publishes, for every Nova recipe, the override parameters it accepts (type, range, enum, default, constraints
that depend on the recipe), the instance types it runs on and the container image per region and platform. Those
files change with every release, so novaflow does not copy them by hand: this module reads a checkout of the
repository (a work tree or a bare mirror) and writes novaflow's own tables under ``novaflow/recipes/published/``,
each stamped with the repository and commit it came from. ``scripts/derive_service_specs.py`` runs it.

The per-recipe override spec is resolved the way the repository's own templating does it for the launch files the
SageMaker Public Hub serves: a parameter's default is the value in the recipe file, conditional constraints are
resolved by recipe name (or hub model id), and ``global_batch_size`` enums start at the recipe's default.

Example:
    >>> tables = derive_tables(open_checkout("/path/to/sagemaker-hyperpod-recipes"))  # doctest: +SKIP
    >>> sorted(tables)  # doctest: +SKIP
    ['images.json', 'recipes.json']
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from novaflow.errors import ConfigError

HUB_REPO = "aws/sagemaker-hyperpod-recipes"
NOVA_DIR = "launcher/recipe_templatization/nova"
PARAMETERS_FILE = f"{NOVA_DIR}/nova_recipe_template_parameters.json"
REGIONAL_FILE = f"{NOVA_DIR}/nova_regional_parameters.json"
METADATA_FILE = f"{NOVA_DIR}/nova_metadata.json"
MODEL_ID_FILE = "launcher/recipe_templatization/jumpstart_model-id_map.json"
UNSUPPORTED_FILE = "launcher/recipe_templatization/unsupported_recipes_list.json"
RECIPES_DIR = "recipes_collection/recipes"
RECIPE_KINDS = ("fine-tuning", "evaluation", "training")
OFFERED_TECHNIQUES = frozenset({"SFT", "DPO", "RLVR", "CPT", "EVALUATION"})
"""Recipe families novaflow builds or prepares data for; PPO and distillation recipes are left out of the tables."""

# The templating launcher's own rule for global_batch_size enums (values at or above the recipe's default).
BATCH_SIZE_LADDER = (8, 16, 32, 64, 128, 256, 512, 1024)
# Parameters the launcher drops from the SageMaker-training-job spec or that only HyperPod's launcher reads.
LAUNCHER_ONLY = frozenset({"namespace", "instance_type", "instance_count"})


class Checkout:
    """Read-only access to one commit of the recipes repository, from a work tree or a bare git directory."""

    def __init__(self, root: Path, commit: str, bare: bool) -> None:
        self.root = root
        self.commit = commit
        self.bare = bare

    def read(self, path: str) -> str:
        if not self.bare:
            try:
                return (self.root / path).read_text(encoding="utf-8")
            except FileNotFoundError:
                raise ConfigError(
                    f"{self.root}: {path} is missing; is this a sagemaker-hyperpod-recipes checkout?"
                ) from None
        result = _git(self.root, "show", f"{self.commit}:{path}")
        if result is None:
            raise ConfigError(f"{self.root}: {path} is missing at {self.commit}")
        return result

    def files(self, prefix: str) -> list[str]:
        if not self.bare:
            base = self.root / prefix
            return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())
        listing = _git(self.root, "ls-tree", "-r", "--name-only", self.commit, prefix) or ""
        return sorted(line for line in listing.splitlines() if line)


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "--git-dir", str(root), *args], capture_output=True, text=True, check=False, timeout=60
        )
    except FileNotFoundError:
        raise ConfigError(
            "git is not installed: it is needed to read a bare mirror of the recipes repository"
        ) from None
    return done.stdout if done.returncode == 0 else None


def open_checkout(path: str | Path) -> Checkout:
    """A checkout at ``path``: a work tree (``path/.git`` exists) or a bare repository (``path/HEAD`` exists)."""
    root = Path(path)
    if (root / ".git").exists():
        commit = (_git(root / ".git", "rev-parse", "HEAD") or "").strip()
        return Checkout(root, commit or "unknown", bare=False)
    if (root / "HEAD").exists() and (root / "objects").exists():
        commit = (_git(root, "rev-parse", "HEAD") or "").strip()
        if not commit:
            raise ConfigError(f"{root}: not a readable git repository")
        return Checkout(root, commit, bare=True)
    if (root / PARAMETERS_FILE).exists():
        return Checkout(root, "unknown", bare=False)
    raise ConfigError(
        f"{root} is not a checkout of {HUB_REPO}: clone https://github.com/{HUB_REPO} and pass its directory"
    )


# -- reading recipe files ---------------------------------------------------------------------------------------


class _RecipeLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type stubs
    """YAML as the recipe container reads it (OmegaConf): ``1e-5`` is a float, not a string."""


_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)$"),
    list("-+0123456789."),
)


def load_recipe_yaml(text: str) -> dict[str, Any]:
    data = yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(data, dict):
        raise ConfigError("recipe file is not a YAML mapping")
    return data


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and empty mappings are leaves."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


_SELECT = re.compile(r"^\$\{oc\.select:([\w.]+)(?:,[^}]*)?\}$")


def resolve_select(flat: Mapping[str, Any], value: Any) -> Any:
    """The value an ``${oc.select:path}`` interpolation points at (other values unchanged)."""
    if isinstance(value, str) and (m := _SELECT.match(value)):
        return flat.get(m.group(1))
    return value


_KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w-]*)\s*:(?P<rest>.*)$")


def _split_comment(rest: str) -> str | None:
    """The comment after a value, ignoring ``#`` inside quotes."""
    quote: str | None = None
    for i, ch in enumerate(rest):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or rest[i - 1].isspace()):
            return rest[i + 1 :].strip()
    return None


def recipe_comments(text: str) -> dict[str, str]:
    """Dotted key path -> the comment written on its line (and on comment-only lines right below it)."""
    stack: list[tuple[int, str]] = []
    out: dict[str, str] = {}
    last: str | None = None
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped:
            last = None
            continue
        if stripped.startswith("#"):
            if last is not None:
                out[last] = f"{out[last]} {stripped.lstrip('#').strip()}"
            continue
        match = _KEY_LINE.match(raw)
        if not match:
            last = None
            continue
        indent = len(match.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group("key")))
        path = ".".join(k for _, k in stack)
        comment = _split_comment(match.group("rest"))
        if comment:
            out[path] = comment
            last = path
        else:
            last = None
    return out


# -- limits written in recipe comments --------------------------------------------------------------------------

_NUM = r"-?\d+(?:\.\d+)?(?:[eE]-?\d+)?"
_RANGE_PATTERNS = (
    re.compile(rf"between\s*\[\s*(?P<lo>{_NUM})\s*,\s*(?P<hi>{_NUM})\s*\]"),
    re.compile(rf"between\s*\(\s*(?P<lo>{_NUM})\s*,\s*(?P<hi>{_NUM})\s*\]"),
    re.compile(rf"between\s+(?P<lo>{_NUM})\s+and\s+(?P<hi>{_NUM})"),
    re.compile(rf"Limits:\s*\[\s*(?P<lo>{_NUM})\s*,\s*(?P<hi>{_NUM})\s*\]"),
    re.compile(rf"\(\s*(?P<lo>{_NUM})\s*[–-]\s*(?P<hi>{_NUM})\s*\)"),
)
_ENUM_PATTERNS = (
    re.compile(r"allowed values? (?:are|is)\s+(?P<list>[\w.,\s]+?)(?:\.\s|\.$|$|\))", re.IGNORECASE),
    re.compile(r"(?:Limits|All supported values):\s*\{(?P<list>[^}]*)\}"),
    re.compile(r"options:\s*(?P<list>[^)]*)\)"),
    re.compile(r"\((?P<list>\d+(?:/\d+)+)\)"),
    re.compile(r"Scaling factor for LoRA weights\.\s*\[(?P<list>[\d,\s]+)\]"),
)
_MIN_PATTERN = re.compile(rf"Minimal is\s+(?P<lo>{_NUM})")
_MULTIPLE_PATTERN = re.compile(r"multiple of\s+(?P<n>\d+)")
_FAMILY_PATTERN = re.compile(
    rf"For (?P<family>[a-z0-9]+) instance type should be between\s*\[\s*(?P<lo>{_NUM})\s*,\s*(?P<hi>{_NUM})\s*\]"
)
_WORD_OPTIONS = re.compile(r"options are\s+(?P<list>[a-z]+(?:/[a-z]+)+)")


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and not re.search(r"[.eE]", text) else value


def _numbers(text: str) -> list[int | float]:
    return [_number(t) for t in re.findall(_NUM, text.replace(" and ", ","))]


def documented_limits(comment: str) -> dict[str, Any]:
    """The limits a recipe comment states: ``enum``, ``min``/``max``, ``multiple_of``, ``by_family``, ``words``.

    Only the phrasings the recipes actually use are recognised; anything else yields ``{}`` (no documented limit).
    """
    out: dict[str, Any] = {}
    families = {
        m.group("family"): {"min": _number(m.group("lo")), "max": _number(m.group("hi"))}
        for m in _FAMILY_PATTERN.finditer(comment)
    }
    if families:
        out["by_family"] = families
    else:
        for pattern in _RANGE_PATTERNS:
            if m := pattern.search(comment):
                out["min"], out["max"] = _number(m.group("lo")), _number(m.group("hi"))
                break
        if "min" not in out:
            for pattern in _ENUM_PATTERNS:
                if (m := pattern.search(comment)) and (values := _numbers(m.group("list").replace("/", ","))):
                    out["enum"] = values
                    break
        if not out and (m := _MIN_PATTERN.search(comment)):
            out["min"] = _number(m.group("lo"))
    if m := _MULTIPLE_PATTERN.search(comment):
        out["multiple_of"] = int(m.group("n"))
    if m := _WORD_OPTIONS.search(comment):
        out["words"] = m.group("list").split("/")
    return out


# -- matching a recipe to its template, as the launcher does ----------------------------------------------------


def evaluation_type(name: str) -> str | None:
    if "general_text_benchmark" in name:
        return "general_text_benchmark_2_0" if "_2_0" in name else "general_text_benchmark"
    if "general_multi_modal_benchmark" in name:
        return "general_multi_modal_benchmark_2_0" if "_2_0" in name else "general_multi_modal_benchmark"
    if "llm_judge" in name:
        return "llm_judge"
    if "bring_your_own_dataset" in name:
        return "bring_your_own_dataset_2_0" if "_2_0" in name else "bring_your_own_dataset"
    return None


def training_type(name: str) -> str | None:
    """The launcher's file-name rules for fine-tuning and training recipes, in its order."""
    rules = (
        ("pretrain" in name and "2_0" in name, "pretrain_2_0"),
        ("pretrain" in name, "pretrain"),
        ("distill" in name, "distill"),
        ("lora" in name and "dpo" in name, "lora_dpo"),
        ("lora" in name and "sft" in name, "lora_sft_2_0" if "_2_0" in name else "lora_sft"),
        ("dpo" in name, "dpo"),
        ("ppo" in name, "ppo"),
        ("sft" in name, "sft_2_0" if "_2_0" in name else "sft"),
        ("smtj" in name and "rft" in name, "smtj_lora_rft" if "lora" in name else "smtj_rft"),
        ("rft" in name, "lora_rft" if "lora" in name else "rft"),
    )
    return next((kind for matched, kind in rules if matched), None)


def template_key(name: str, display_name: str, templates: Mapping[str, Any]) -> str | None:
    if "Data Distillation" in display_name:
        return "nova_distill"
    kind = evaluation_type(name) if "Evaluation" in display_name else training_type(name)
    key = f"nova_{kind}_eval" if "Evaluation" in display_name else f"nova_{kind}"
    return key if kind and key in templates else None


def technique(name: str, display_name: str, kind: str) -> str:
    """SFT, DPO, RLVR, RLAIF, CPT, PPO, DISTILL or EVALUATION (the hub's CustomizationTechnique spelling)."""
    if kind == "evaluation":
        return "EVALUATION"
    for word, value in (("pretrain", "CPT"), ("distill", "DISTILL"), ("ppo", "PPO"), ("dpo", "DPO"), ("sft", "SFT")):
        if word in name:
            return value
    if "rft" in name:
        return "RLAIF" if "RLAIF" in display_name else "RLVR"
    return "OTHER"


# -- resolving a template's parameters for one recipe -----------------------------------------------------------


def placed_paths(template: Mapping[str, Any]) -> dict[str, list[str]]:
    """Parameter name -> every recipe path its ``{{placeholder}}`` fills."""
    out: dict[str, list[str]] = {}
    for path, value in flatten(template).items():
        if isinstance(value, str) and value.startswith("{{") and value.endswith("}}"):
            out.setdefault(value[2:-2].strip(), []).append(path)
    return out


def _pick(resolver: Mapping[str, Any], condition: str) -> Any:
    """The launcher's lookup: the first key contained in the condition value, else ``default``."""
    for key, value in resolver.items():
        if key != "default" and key in condition and value not in (None, [], ""):
            return value
    return resolver.get("default")


def resolve_parameters(
    params: Mapping[str, Any], template: Mapping[str, Any], recipe: Mapping[str, Any], conditions: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """The override spec the hub serves for one recipe (see the module docstring for the three rules)."""
    flat = flatten(recipe)
    paths = placed_paths(template)
    out: dict[str, dict[str, Any]] = {}
    for name, raw in params.items():
        if name in LAUNCHER_ONLY:
            continue
        spec = copy.deepcopy(dict(raw))
        spec.pop("description", None)
        where = paths.get(name, [])
        present = [p for p in where if p in flat]
        if present:
            spec["default"] = resolve_select(flat, flat[present[0]])
        conditional = spec.pop("conditional_constraints", None)
        if conditional:
            for field_name, by_condition in conditional.items():
                condition_key, resolver = next(iter(by_condition.items()))
                spec[field_name] = _pick(resolver, conditions.get(condition_key, ""))
        elif name == "global_batch_size" and "enum" in spec and spec.get("default") is not None:
            ladder = [v for v in BATCH_SIZE_LADDER if v >= spec["default"]]
            spec["enum"] = [
                v
                for v in ladder
                if (spec.get("max") is None or v <= spec["max"]) and (spec.get("min") is None or v >= spec["min"])
            ]
        spec["paths"] = where
        out[name] = spec
    return out


# -- the tables -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipeFile:
    name: str
    path: str
    kind: str


def nova_recipe_files(checkout: Checkout, known: Mapping[str, Any]) -> Iterator[RecipeFile]:
    for kind in RECIPE_KINDS:
        for path in checkout.files(f"{RECIPES_DIR}/{kind}/nova"):
            name = path.rsplit("/", 1)[-1].removesuffix(".yaml")
            if path.endswith(".yaml") and name in known:
                yield RecipeFile(name, path, kind)


def _eval_task(recipe: Mapping[str, Any], name: str) -> str | None:
    task = (recipe.get("evaluation") or {}).get("task")
    if "general_text_benchmark" in name:
        return "text_benchmark"
    if "general_multi_modal_benchmark" in name:
        return "multi_modal_benchmark"
    return str(task) if task else None


def _prod_images(section: Mapping[str, Any] | None) -> dict[str, str]:
    return dict(sorted(((section or {}).get("prod") or {}).items()))


def derive_tables(checkout: Checkout) -> dict[str, dict[str, Any]]:
    """File name -> content of every table novaflow packages (``recipes.json``, ``images.json``)."""
    templates = json.loads(checkout.read(PARAMETERS_FILE))["templates"]
    metadata = json.loads(checkout.read(METADATA_FILE))
    regional = json.loads(checkout.read(REGIONAL_FILE))
    model_ids = json.loads(checkout.read(MODEL_ID_FILE))
    unsupported = {
        p.rsplit("/", 1)[-1].removesuffix(".yaml") for p in json.loads(checkout.read(UNSUPPORTED_FILE)).get("nova", [])
    }
    recipes: dict[str, Any] = {}
    images: dict[str, Any] = {}
    read_files = [PARAMETERS_FILE, METADATA_FILE, REGIONAL_FILE, MODEL_ID_FILE, UNSUPPORTED_FILE]
    for file in nova_recipe_files(checkout, metadata):
        meta = metadata[file.name]
        display = str(meta.get("display_name") or "")
        kind_of = technique(file.name, display, file.kind)
        if kind_of not in OFFERED_TECHNIQUES:
            continue
        text = checkout.read(file.path)
        recipe = load_recipe_yaml(text)
        run = recipe.get("run") or {}
        model_type = str(run.get("model_type") or "")
        hub_model = model_ids.get(model_type)
        templated = file.name not in unsupported
        key = template_key(file.name, display, templates) if templated else None
        flat = flatten(recipe)
        comments = recipe_comments(text)
        documented = {p: lim for p, c in comments.items() if p in flat and (lim := documented_limits(c))}
        entry: dict[str, Any] = {
            "file": file.path,
            "kind": file.kind,
            "display_name": display,
            "version": meta.get("version"),
            "model_type": model_type,
            "hub_model": hub_model,
            "nova_version": 2 if "_2_0" in file.name or "_v2_" in file.name else 1,
            "technique": kind_of,
            "peft": "lora" in file.name,
            "evaluation_task": _eval_task(recipe, file.name) if file.kind == "evaluation" else None,
            "instance_types": list(meta.get("instance_types") or []),
            "instance_count": run.get("replicas"),
            "templated": templated,
            "template": key,
            "defaults": {p: resolve_select(flat, v) for p, v in flat.items()},
            "interpolations": {p: v for p, v in flat.items() if isinstance(v, str) and v.startswith("${")},
            "documented": documented,
        }
        if key:
            group = templates[key]
            conditions = {"Name": file.name, "Model_ID": hub_model or ""}
            entry["overrides"] = resolve_parameters(
                group["recipe_override_parameters"], group["recipe_template"], recipe, conditions
            )
        recipes[file.name] = entry
        regions = regional.get(file.name) or {}
        smtj = (regions.get("sm_jobs") or {}).get("container_image")
        smhp = (regions.get("k8s") or {}).get("container_image")
        sku = (regions.get("sm_jobs") or {}).get("serverless_sku")
        images[file.name] = {
            "SMTJ": _prod_images(smtj),
            "SMHP": _prod_images(smhp),
            "serverless_regions": sorted(_prod_images(sku)),
        }
    # hyperpod_derive names this module's Checkout in its types; the chart is read only when tables are derived
    from novaflow.recipes.hyperpod_derive import derive_hyperpod

    hosting = (regional.get("all") or {}).get("hosting", {}).get("container_image")
    stamp = {"repo": HUB_REPO, "commit": checkout.commit}
    return {
        "recipes.json": {
            "source": {**stamp, "files": [*read_files, f"{RECIPES_DIR}/{{{', '.join(RECIPE_KINDS)}}}/nova/**/*.yaml"]},
            "recipes": dict(sorted(recipes.items())),
        },
        "images.json": {
            "source": {**stamp, "files": [REGIONAL_FILE]},
            "training": dict(sorted(images.items())),
            "inference": _prod_images(hosting),
        },
        "hyperpod.json": derive_hyperpod(checkout),
    }


def dump_table(content: Mapping[str, Any]) -> str:
    """Stable text for a table: sorted keys, one value per line, so a refresh shows up as a readable diff."""
    return json.dumps(content, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_tables(tables: Mapping[str, Mapping[str, Any]], out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in tables.items():
        path = out / name
        path.write_text(dump_table(content), encoding="utf-8")
        written.append(path)
    return written
