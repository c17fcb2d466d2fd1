"""The layer rules of CONTRIBUTING.md, checked on every import statement of every shipped module (read with ast, so
imports inside functions and under TYPE_CHECKING count too)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGES = ("novaflow", "tasks", "flows", "reward_lambda")

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "domain": ("prefect", "prefect_aws", "tasks", "flows", "novaflow.cli", "novaflow.local", "moto"),
    "local": ("prefect", "prefect_aws", "tasks", "flows", "novaflow.cli"),
    "local.aws": ("prefect", "prefect_aws", "tasks", "flows", "novaflow.cli"),
    "local.emulator": ("prefect", "prefect_aws", "tasks", "flows", "novaflow.cli", "novaflow.local.aws"),
    "local.models": (
        "prefect",
        "prefect_aws",
        "tasks",
        "flows",
        "novaflow.cli",
        "novaflow.local.aws",
        "novaflow.local.emulator",
        "moto",
    ),
    "tasks": ("flows", "novaflow.cli", "novaflow.local", "moto"),
    "flows": ("novaflow.cli", "novaflow.local", "moto"),
    "cli": (),
}
"""Layer -> what its modules must not import. reward_lambda is held to an allow-list instead (standard library).
The rooms of novaflow/local/ stack: the embedded AWS hosts the emulator, the emulator runs the stand-in models, and
nothing imports upwards (see each room's ``__init__``)."""


def layer_of(module: str) -> str:
    top = module.split(".")[0]
    if top == "novaflow":
        for part in ("local.aws", "local.emulator", "local.models", "cli", "local"):
            if module == f"novaflow.{part}" or module.startswith(f"novaflow.{part}."):
                return part
        return "domain"
    return top


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, module: str) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything ``source`` imports: ``from a import b`` is ``a.b`` (b may be a module),
    relative imports resolved against ``module``."""
    package = module.split(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = [node.module] if node.module else []
            if node.level:
                base = package[: len(package) - node.level + (1 if _is_package(module) else 0)] + base
            for alias in node.names:
                yield node.lineno, ".".join(base if alias.name == "*" else [*base, alias.name])


def _is_package(module: str) -> bool:
    return (ROOT / Path(*module.split(".")) / "__init__.py").exists()


def violations(source: str, module: str) -> list[str]:
    layer = layer_of(module)
    found = []
    for line, name in imported(source, module):
        if layer == "reward_lambda":
            top = name.split(".")[0]
            if top != "reward_lambda" and top not in sys.stdlib_module_names:
                found.append(f"{module}:{line} imports {name}: reward_lambda may use the standard library only")
            continue
        for banned in FORBIDDEN[layer]:
            if name == banned or name.startswith(banned + "."):
                found.append(f"{module}:{line} imports {name}: the {layer} layer must not import {banned}")
    return found


def shipped_modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield _module_name(path), path


def test_every_module_keeps_the_layer_rules() -> None:
    modules = list(shipped_modules())
    assert len(modules) > 100 and {layer_of(m) for m, _ in modules} == {*FORBIDDEN, "reward_lambda"}
    problems = [v for module, path in modules for v in violations(path.read_text(encoding="utf-8"), module)]
    assert problems == []


@pytest.mark.parametrize(
    ("module", "source", "problem"),
    [
        (
            "novaflow.jobs.poll",
            "def f():\n    from prefect import task\n",
            "novaflow.jobs.poll:2 imports prefect.task: the domain layer must not import prefect",
        ),
        (
            "flows.stages",
            "from novaflow.local.aws.server import LocalAws\n",
            "flows.stages:1 imports novaflow.local.aws.server.LocalAws: the flows layer must not import novaflow.local",
        ),
        (
            "tasks.jobs",
            "import flows.params\n",
            "tasks.jobs:1 imports flows.params: the tasks layer must not import flows",
        ),
        (
            "reward_lambda.grader",
            "import json\nfrom novaflow.catalog import MODELS\n",
            "reward_lambda.grader:2 imports novaflow.catalog.MODELS: reward_lambda may use the standard library only",
        ),
        (
            "novaflow.local.aws.server",
            "from ... import cli\n",
            "novaflow.local.aws.server:1 imports novaflow.cli: the local.aws layer must not import novaflow.cli",
        ),
        (
            "novaflow.local.emulator.fulfilment",
            "from ..aws import moto_sagemaker\n",
            "novaflow.local.emulator.fulfilment:1 imports novaflow.local.aws.moto_sagemaker: the local.emulator layer "
            "must not import novaflow.local.aws",
        ),
        (
            "novaflow.local.models.judge",
            "from novaflow.local.emulator import aws_io\n",
            "novaflow.local.models.judge:1 imports novaflow.local.emulator.aws_io: the local.models layer must not "
            "import novaflow.local.emulator",
        ),
    ],
)
def test_a_violation_is_named_with_its_line(module: str, source: str, problem: str) -> None:
    assert violations(source, module) == [problem]


def test_relative_imports_are_resolved_and_allowed_ones_pass() -> None:
    assert list(imported("from ... import cli\nfrom .server import LocalAws\n", "novaflow.local.aws.routes")) == [
        (1, "novaflow.cli"),
        (2, "novaflow.local.aws.server.LocalAws"),
    ]
    assert list(imported("from . import jobstate\n", "novaflow.local.emulator")) == [
        (1, "novaflow.local.emulator.jobstate")
    ]
    assert violations("from novaflow.local import LocalAws\nimport prefect\n", "novaflow.cli.run") == []
    assert violations("from novaflow.catalog import Method\nimport boto3\n", "novaflow.jobs.spec") == []
