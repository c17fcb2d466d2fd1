"""The packaged YAML files of :mod:`novaflow.recipes` (instance and price tables, choices, overrides), or a user's
edited copy: parsed once per process and handed out as copies.

The recipe builders, the derived tables and the limits all read these files, so the reader sits below all of them.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from novaflow.errors import ConfigError


def read_yaml(name: str, path: str | Path | None = None) -> Any:
    """A packaged YAML file of :mod:`novaflow.recipes`, or the user's copy when ``path`` is given.

    Packaged files are parsed once per process (every job build reads them) and handed out as copies.
    """
    if not path:
        return copy.deepcopy(_packaged_yaml(name))
    return _parse_yaml(name, path)


@cache
def _packaged_yaml(name: str) -> Any:
    return _parse_yaml(name, None)


def _parse_yaml(name: str, path: str | Path | None) -> Any:
    try:
        text = (
            Path(path).read_text(encoding="utf-8")
            if path
            else (resources.files("novaflow.recipes").joinpath(name).read_text(encoding="utf-8"))
        )
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except FileNotFoundError:
        raise ConfigError(f"Table file {path or name} does not exist: pass an existing YAML file.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Table file {path or name} is not valid YAML: {exc}") from None
