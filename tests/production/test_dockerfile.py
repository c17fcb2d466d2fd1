"""The Dockerfile, checked statically (no Docker engine on the test machines): Prefect's image of the pinned
Prefect and Python, novaflow installed with pip, every package it ships copied, a non-root user, no secrets."""

from __future__ import annotations

import re
import shlex
import sys
import tomllib
from pathlib import Path

import prefect
import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAMES = re.compile(r"SECRET|PASSWORD|TOKEN|API_KEY|ACCESS_KEY|CREDENTIAL", re.I)
SECRET_VALUES = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b|aws_secret_access_key|pnu_[A-Za-z0-9]{20,}")


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(fileobj=(ROOT / "Dockerfile").open("rb"))
    return parser


def _instructions(dockerfile: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in dockerfile.structure if i["instruction"] == name]


def test_base_image_is_prefects_image_of_the_pinned_prefect_and_python(dockerfile) -> None:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert dockerfile.baseimage == f"prefecthq/prefect:{prefect.__version__}-python{python}"
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f">={python}" == pins["requires-python"]
    assert any(dep.startswith(f"prefect>={prefect.__version__},") for dep in pins["dependencies"])


def test_novaflow_is_installed_from_every_package_it_ships(dockerfile) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied: set[str] = set()
    for value in _instructions(dockerfile, "COPY"):
        *sources, _dest = shlex.split(value)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            copied.add(source.rstrip("/"))
    assert packages | {"pyproject.toml", "README.md"} <= copied
    runs = " ".join(_instructions(dockerfile, "RUN"))
    assert "pip install --no-cache-dir ." in runs


def test_the_image_runs_as_an_unprivileged_user_it_creates(dockerfile) -> None:
    users = _instructions(dockerfile, "USER")
    assert users, "no USER: the image would run as root"
    last = users[-1].split(":")[0]
    assert last not in {"root", "0"}
    runs = " ".join(_instructions(dockerfile, "RUN"))
    created = re.search(r"useradd\b[^&]*--uid (\d+)[^&]*\s(\w+)\s*(&&|$)", runs)
    assert created is not None and last in {created[1], created[2]}
    # It can write the flows' scratch directory (work_dir 'novaflow-runs' under the working directory).
    [workdir] = _instructions(dockerfile, "WORKDIR")
    assert f"install -d -o {created[2]} -g {created[2]} {workdir}/novaflow-runs" in runs


def test_no_secret_goes_into_the_image(dockerfile) -> None:
    for instruction in ("ENV", "ARG", "LABEL"):
        for value in _instructions(dockerfile, instruction):
            names = [part.split("=", 1)[0] for part in shlex.split(value)]
            assert not [n for n in names if SECRET_NAMES.search(n)], f"{instruction} {value}"
    assert not SECRET_VALUES.search(dockerfile.content)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", "**/.env", ".git"} <= set(ignored)


def test_the_filters_kernels_are_compiled_at_build_into_a_cache_the_user_owns(dockerfile) -> None:
    """numba's cache=True writes next to the module, which the image's user cannot: the build compiles the kernels
    into NUMBA_CACHE_DIR, for a generic CPU (valid on any host), and hands the directory to that user."""
    env = dict(part.split("=", 1) for value in _instructions(dockerfile, "ENV") for part in shlex.split(value))
    cache = env["NUMBA_CACHE_DIR"]
    assert env["NUMBA_CPU_NAME"] == "generic"
    runs = " ".join(_instructions(dockerfile, "RUN"))
    steps = [step.strip() for step in runs.split("&&")]
    warm = steps.index("python -m novaflow.data.kernels")
    assert steps.index("pip install --no-cache-dir .") < warm
    assert steps[warm + 1] == "python -m novaflow.data.lsh"  # the near-duplicate decision's loops
    user = re.search(r"useradd\b[^&]*\s(\w+)\s*(&&|$)", runs)
    assert user is not None
    assert steps[warm + 2] == f"chown -R {user[1]}:{user[1]} {cache}"
    env_line = next(i["startline"] for i in dockerfile.structure if "NUMBA_CACHE_DIR" in i["value"])
    run_line = next(i["startline"] for i in dockerfile.structure if "novaflow.data.kernels" in i["value"])
    assert env_line < run_line, "the cache directory must be set before the kernels compile"
