"""The layer rules of CONTRIBUTING.md, checked on every import statement of every shipped module (read with ast, so
imports inside functions and under TYPE_CHECKING count too)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from functools import cache
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
    for node in ast.walk(ast.parse(source)):
        for name in _names(node, module):
            yield node.lineno, name


def _names(node: ast.AST, module: str) -> list[str]:
    """The dotted names one import statement imports (none for any other node)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = [node.module] if node.module else []
    if node.level:
        package = module.split(".")
        base = package[: len(package) - node.level + (1 if _is_package(module) else 0)] + base
    return [".".join(base if alias.name == "*" else [*base, alias.name]) for alias in node.names]


@cache
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


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:`` (those imports never run, so they cannot close a circle)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                found.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return found


def runtime_imports(source: str, module: str, known: set[str]) -> set[str]:
    """The first-party modules ``module`` imports when it runs: imports inside functions count, TYPE_CHECKING ones
    do not; ``from a import b`` is the module ``a.b`` when there is one, else ``a``; importing ``a.b.c`` also runs
    the packages ``a`` and ``a.b`` (their ``__init__``), so those are edges too."""
    tree = ast.parse(source)
    skipped = _type_checking_nodes(tree)
    out: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in skipped:
            continue
        for name in _names(node, module):
            target = name if name in known else name.rsplit(".", 1)[0]
            if target not in known or target == module:
                continue
            parts = target.split(".")
            out.update(
                parent
                for parent in (".".join(parts[:i]) for i in range(1, len(parts) + 1))
                if parent in known and parent != module and not module.startswith(parent + ".")
            )
    return out


def import_graph() -> dict[str, set[str]]:
    modules = dict(shipped_modules())
    known = set(modules)
    return {m: runtime_imports(p.read_text(encoding="utf-8"), m, known) for m, p in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every set of modules that import each other (strongly connected components of more than one module), each
    as one path around it, so the message names the import to cut."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:  # iterative Tarjan: the graph is deep enough to matter for recursion
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            nxt = next((e for e in edges if e in graph), None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(_cycle_path(graph, set(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _cycle_path(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest way from the component's first module back to itself, inside the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    return sorted(component)


def test_no_import_circles() -> None:
    found = circles(import_graph())
    assert not found, "import circles (move the shared piece down into a module both can import):\n" + "\n".join(
        " -> ".join(path) for path in found
    )


def test_a_circle_is_found_and_named_and_type_checking_imports_do_not_count() -> None:
    known = {"pkg", "pkg.a", "pkg.b", "pkg.c"}
    sources = {
        "pkg": "",
        "pkg.a": "def f():\n    from pkg.b import thing\n",
        "pkg.b": "from pkg import c\n",
        "pkg.c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import X\nimport pkg.a\n",
    }
    graph = {m: runtime_imports(s, m, known) for m, s in sources.items()}
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.a"}}
    assert circles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    sources["pkg.c"] = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import X\n"
    assert circles({m: runtime_imports(s, m, known) for m, s in sources.items()}) == []
    # importing a submodule runs its package's __init__ first (a module's own packages are already running)
    assert runtime_imports("from pkg.c import x\n", "other", known) == {"pkg", "pkg.c"}
    assert runtime_imports("from pkg.c import x\n", "pkg.b", known) == {"pkg.c"}


REASONED_PACKAGES = ("novaflow", "tasks", "reward_lambda")
"""Where an import inside a function needs a stated reason (the CLI defers imports for start-up time throughout;
flows/ is being rewritten and has two left in flows/stages.py)."""


def unexplained_function_imports(source: str, module: str) -> list[str]:
    """First-party imports inside functions with no comment on their own lines nor right above the group of
    imports they belong to (the reason: start-up time, an optional extra, the moto pin check, ...)."""
    lines = source.splitlines()
    tree = ast.parse(source)
    starts = {
        line: node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for line in range(node.lineno, (node.end_lineno or node.lineno) + 1)
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if not isinstance(inner, ast.Import | ast.ImportFrom):
                continue
            names = _names(inner, module)
            if not any(name.split(".")[0] in PACKAGES for name in names):
                continue
            explained = any("#" in line for line in lines[inner.lineno - 1 : inner.end_lineno])
            above = inner.lineno - 1  # 1-based number of the line above
            while not explained and above >= 1:
                text = lines[above - 1].strip()
                if above in starts:  # another import of the same group: its comment counts
                    explained = "#" in text
                    above = starts[above] - 1
                elif not text:
                    above -= 1
                else:
                    explained = text.startswith("#")
                    break
            if not explained:
                found.append(f"{module}:{inner.lineno} imports {', '.join(names)} in {node.name}() with no reason")
    return found


def test_imports_inside_functions_say_why() -> None:
    problems = [
        problem
        for module, path in shipped_modules()
        if module.split(".")[0] in REASONED_PACKAGES and layer_of(module) != "cli"
        for problem in unexplained_function_imports(path.read_text(encoding="utf-8"), module)
    ]
    assert problems == [], "hoist these imports, or say why they wait (start-up time, an optional extra):\n" + (
        "\n".join(problems)
    )


def test_an_unexplained_import_inside_a_function_is_named() -> None:
    source = (
        "def f():\n    from novaflow.catalog import MODELS\n\n"
        "def g():\n    # start-up time: boto3\n    from novaflow.aws import get_client\n"
        "def h():\n    import json\n"
    )
    assert unexplained_function_imports(source, "novaflow.x") == [
        "novaflow.x:2 imports novaflow.catalog.MODELS in f() with no reason"
    ]
