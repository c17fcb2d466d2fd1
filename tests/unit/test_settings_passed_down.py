"""Settings (and the credentials they carry) are built once where a run or command starts and passed down.

A function that quietly fell back to ``load_settings()`` when nobody passed settings read the process's
environment instead of the run's: another run's region, the default credential chain instead of the run's
AwsCredentials block. So no parameter (or field) named ``settings`` defaults to None, and ``load_settings()`` is
called only at the entry points below. This reads the code (AST), so a comment or a string does not count.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("novaflow", "tasks", "flows")

ENTRY_POINTS = {
    # The flow start: run_context builds a run's settings from its aws_credentials block (hooks rebuild them there).
    "tasks/credentials.py",
    # Every CLI command is a user's process starting; it builds its settings and passes them on.
    "novaflow/cli",
    # The Processing job's container entry point (python -m novaflow.data.sharded merge).
    "novaflow/data/sharded.py",
    # The emulator's own clients of the embedded AWS it runs in: no run's account, region or credentials.
    "novaflow/local/emulator/aws_io.py",
    # Scenario helpers standing in for a user's own script against the embedded AWS the environment points at.
    "novaflow/local/emulator/scenario.py",
}


@cache
def _modules() -> list[tuple[str, ast.Module]]:
    return [
        (path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(path)))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    ]


def _is_none(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def optional_settings(name: str, tree: ast.Module) -> list[str]:
    """``file:line`` of every parameter or class field named ``settings`` whose default is None."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = node.args
            positional = args.posonlyargs + args.args
            defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
            pairs = [*zip(positional, defaults, strict=True), *zip(args.kwonlyargs, args.kw_defaults, strict=True)]
            found += [f"{name}:{arg.lineno}" for arg, default in pairs if arg.arg == "settings" and _is_none(default)]
        elif isinstance(node, ast.ClassDef):
            found += [
                f"{name}:{item.lineno}"
                for item in node.body
                if isinstance(item, ast.AnnAssign)
                and isinstance(item.target, ast.Name)
                and item.target.id == "settings"
                and _is_none(item.value)
            ]
    return found


def load_settings_calls(name: str, tree: ast.Module) -> list[str]:
    """``file:line`` of every call of ``load_settings`` (by name or as an attribute)."""
    return [
        f"{name}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "load_settings")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "load_settings")
        )
    ]


def _entry_point(name: str) -> bool:
    return any(name == entry or name.startswith(entry + "/") for entry in ENTRY_POINTS)


def test_no_settings_parameter_defaults_to_none() -> None:
    found = [where for name, tree in _modules() for where in optional_settings(name, tree)]
    assert not found, "settings must be a required parameter (passed down from the run or command): " + ", ".join(found)


def test_load_settings_is_called_only_where_a_run_or_command_starts() -> None:
    found = [where for name, tree in _modules() if not _entry_point(name) for where in load_settings_calls(name, tree)]
    assert not found, "load_settings() outside an entry point (take settings as a parameter): " + ", ".join(found)


def test_every_entry_point_still_calls_it() -> None:
    """An entry that no longer loads settings leaves the list, so the list stays the short truth."""
    calls = {name for name, tree in _modules() if load_settings_calls(name, tree)}
    stale = [entry for entry in ENTRY_POINTS if not any(n == entry or n.startswith(entry + "/") for n in calls)]
    assert not stale, stale


def test_the_checks_catch_what_they_are_for() -> None:
    tree = ast.parse(
        "def f(a, settings=None): pass\n"
        "def g(*, settings: 'NovaflowSettings | None' = None): pass\n"
        "class C:\n    settings: int | None = None\n"
        "def h(settings): return load_settings() or novaflow.settings.load_settings()\n"
    )
    assert optional_settings("m.py", tree) == ["m.py:1", "m.py:2", "m.py:4"]
    assert load_settings_calls("m.py", tree) == ["m.py:5", "m.py:5"]
