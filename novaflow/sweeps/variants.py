"""A sweep's variants: ``--vary PATH=V1,V2,...`` grids or a ``--variants`` file of named patches, applied to the
end-to-end parameters.

A variant is a name and a patch, ``{dot path: value}``, over the end-to-end parameter dict
(``sft.overrides.lr``, ``rft.overrides.lora_alpha``, ``data.sft_rows``, ``stages``, ``sft.platform``). Names are
derived from the patch when not given, readably and deterministically (``lr-1e-05-lora-alpha-64``), so the same
sweep names its variants - and through them its runs and reports - the same way every time. Values are typed the
way a YAML file would type them (``64`` an int, ``[sft, rft]`` a list, ``true`` a bool), with ``1e-5`` read as the
number it plainly is. A path that names no parameter is refused before anything runs, in one line naming the
variant and the path.

Example:
    >>> [v.name for v in grid(parse_vary(["sft.overrides.lr=1e-5,2e-5", "data.sft_rows=1000"]))]
    ['lr-1e-05-sft-rows-1000', 'lr-2e-05-sft-rows-1000']
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from novaflow.errors import ConfigError

FREE_MAPPINGS = frozenset({"overrides", "columns", "quotas"})
"""Parameters whose keys are free (recipe overrides, a column map, quotas): a patch may add keys under them."""
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_NUMBER_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class Variation:
    """One ``--vary``: a parameter path and the values it takes."""

    path: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Variant:
    """A named patch of the end-to-end parameters."""

    name: str
    patch: dict[str, Any]

    def label(self) -> str:
        """The patch as a person reads it: ``sft.overrides.lr=1e-05, data.sft_rows=1000``."""
        return ", ".join(f"{path}={format_value(value)}" for path, value in self.patch.items()) or "(base)"


def typed(text: str) -> Any:
    """A value as YAML types it, except that a number in exponent form (``1e-5``) is a number too."""
    text = text.strip()
    if _NUMBER_RE.match(text):
        return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)
    try:
        return yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        return text


def split_values(text: str) -> list[str]:
    """Comma-separated values, commas inside brackets or quotes kept (``[sft],[sft,rft]`` is two values)."""
    out: list[str] = []
    depth = 0
    quote: str | None = None
    current = ""
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            out.append(current)
            current = ""
            continue
        current += char
    out.append(current)
    return [item.strip() for item in out]


def parse_vary(items: Iterable[str]) -> list[Variation]:
    """``PATH=V1,V2,...`` items (``--vary``, repeatable) into variations; a malformed one is one line naming it."""
    variations: list[Variation] = []
    for item in items:
        path, sep, rest = item.partition("=")
        path = path.strip()
        if not sep or not path or not rest.strip():
            raise ConfigError(f"--vary {item!r}: expected PATH=V1,V2,... such as sft.overrides.lr=1e-5,2e-5")
        if any(not part for part in path.split(".")):
            raise ConfigError(f"--vary {item!r}: {path!r} is not a dot path such as sft.overrides.lr")
        values = [typed(v) for v in split_values(rest)]
        if any(v in ("", None) for v in values):
            raise ConfigError(f"--vary {item!r}: an empty value; list the values separated by commas")
        if path in {v.path for v in variations}:
            raise ConfigError(f"--vary {path}: given twice; put all its values in one --vary")
        variations.append(Variation(path, tuple(values)))
    return variations


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def slug(text: str) -> str:
    """Lowercase letters, digits and dashes (job, run and artifact names accept nothing else); ``.`` -> ``p``."""
    text = re.sub(r"(?<=\d)\.(?=\d)", "p", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def _short_names(paths: Sequence[str]) -> dict[str, str]:
    """The last segment of each path; where two paths end alike (``sft.overrides.lr`` / ``rft.overrides.lr``), the
    first and last (``sft.lr``), else the whole path."""
    names: dict[str, str] = {}
    for path in paths:
        parts = path.split(".")
        candidates = [parts[-1], f"{parts[0]}.{parts[-1]}", path]
        for short in candidates:
            others = [p.split(".") for p in paths if p != path]
            taken = {o[-1] for o in others} if short == parts[-1] else {f"{o[0]}.{o[-1]}" for o in others}
            if short == path or short not in taken:
                break
        names[path] = short
    return names


def derived_name(patch: Mapping[str, Any], paths: Sequence[str] | None = None) -> str:
    """A readable, deterministic name for a patch (``lr-1e-05-lora-alpha-64``); long ones end in a hash."""
    shorts = _short_names(list(paths or patch))
    parts = [f"{shorts.get(path, path)}-{format_value(value)}" for path, value in patch.items()]
    name = slug("-".join(parts)) or "base"
    if len(name) > 48:
        import hashlib

        digest = hashlib.sha256(json.dumps(patch, sort_keys=True, default=str).encode()).hexdigest()[:8]
        name = name[:39].rstrip("-") + "-" + digest
    return name


def grid(variations: Sequence[Variation]) -> list[Variant]:
    """Every combination of the variations' values, in the order given (the first varies slowest)."""
    if not variations:
        return []
    paths = [v.path for v in variations]
    out = []
    for values in itertools.product(*(v.values for v in variations)):
        patch = dict(zip(paths, values, strict=True))
        out.append(Variant(derived_name(patch, paths), patch))
    return _unique(out, where="--vary")


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"sft": {"overrides": {"lr": 1}}}`` -> ``{"sft.overrides.lr": 1}``; free mappings stay whole only when
    given as a dot path to the mapping itself."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, Mapping) and item:
            out.update(_flatten(item, path))
        else:
            out[path] = item
    return out


def load_variants(path: str | Path) -> list[Variant]:
    """A YAML or JSON list of ``{name: ..., patch: {...}}`` (``name`` optional; ``patch`` in dot paths or nested)."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--variants {where}: cannot read it ({exc.strerror})") from None
    try:
        raw = json.loads(text) if where.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"--variants {where}: not valid {'JSON' if where.endswith('.json') else 'YAML'} ({first})"
        ) from None
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"--variants {where}: expected a list of variants, each {{name: ..., patch: {{...}}}}")
    variants = []
    for number, item in enumerate(raw, 1):
        if not isinstance(item, Mapping) or not isinstance(item.get("patch"), Mapping):
            raise ConfigError(f"--variants {where}: item {number}: expected {{name: ..., patch: {{PATH: VALUE}}}}")
        unknown = set(item) - {"name", "patch"}
        if unknown:
            raise ConfigError(f"--variants {where}: item {number}: unknown field {sorted(unknown)[0]!r} (name, patch)")
        patch = _flatten(item["patch"])
        name = item.get("name")
        if name is None:
            name = derived_name(patch)
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ConfigError(
                f"--variants {where}: item {number}: name {name!r} must be lowercase letters, digits and dashes "
                "(it names the variant's runs, jobs and reports)"
            )
        variants.append(Variant(name, patch))
    return _unique(variants, where=f"--variants {where}")


def _unique(variants: list[Variant], *, where: str) -> list[Variant]:
    seen: dict[str, Variant] = {}
    for variant in variants:
        if variant.name in seen:
            raise ConfigError(
                f"{where}: two variants are named {variant.name!r} ({seen[variant.name].label()} and "
                f"{variant.label()}); name them apart"
            )
        seen[variant.name] = variant
    return variants


def apply_patch(
    params: Mapping[str, Any], variant: Variant, *, free: Collection[str] = FREE_MAPPINGS
) -> dict[str, Any]:
    """A copy of ``params`` with the variant's patch set; an unknown path is one line naming variant and path.

    ``params`` must hold every parameter (the base parameters over the defaults), so a path that is not there names
    no parameter - except under a free mapping (``free``: recipe overrides, column maps, quotas).
    """
    out = copy.deepcopy(dict(params))
    for path, value in variant.patch.items():
        node: Any = out
        parts = path.split(".")
        for depth, key in enumerate(parts):
            last = depth == len(parts) - 1
            parent = ".".join(parts[:depth]) or "the parameters"
            if not isinstance(node, dict):
                raise ConfigError(f"variant {variant.name}: {path}: {parent} is a value, not a group of parameters")
            if key not in node and not (depth > 0 and parts[depth - 1] in free):
                known = ", ".join(sorted(node)) or "none"
                raise ConfigError(f"variant {variant.name}: {path}: no parameter {key!r} in {parent} (known: {known})")
            if last:
                node[key] = copy.deepcopy(value)
            else:
                node = node.setdefault(key, {})
    return out
