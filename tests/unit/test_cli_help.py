"""The CLI's help for a flow parameter is the parameter's own description (flows/params.py is the one source).

``novaflow run end-to-end`` may not import the flows at start-up (the CLI starts light), so its help texts are
written in novaflow/cli/run.py; this test holds them to the pydantic descriptions the Prefect UI shows. A new
option must be added to one of the two tables below.
"""

from __future__ import annotations

from typing import Any

import pytest
import typer
from pydantic import BaseModel

from flows.params import EndToEndParams
from novaflow.cli.run import app

SAME_AS_PARAMETER: dict[str, str] = {
    "--run-name": "run_name",
    "--model": "model",
    "--data": "data.source",
    "--system": "data.system_prompt",
    "--stratify": "data.stratify",
    "--reward": "reward.source",
    "--reward-arn": "reward.function_arn",
    "--eval-task": "evaluation.task",
    "--gate-metric": "deploy.gate.metric",
    "--mlflow": "tracking.mlflow_uri",
    "--stages": "stages",
    "--work-dir": "work_dir",
    "--cleanup": "cleanup",
    "--accept-eula": "sft.accept_eula",
    "--skip": "skip",
    "--notify-sns": "notifications.sns_topic_arn",
}
"""Option -> the EndToEndParams field it sets: its help starts with that field's description (what follows is
only how to write the value on a command line)."""

CLI_ONLY: frozenset[str] = frozenset({"--local", "--params", "--sizes", "--map", "--platform", "--hyperpod", "--quota"})
"""Options with no single parameter: the endpoint, the parameters file, the three row counts in one flag, the
KEY=COLUMN syntax, one platform for every stage, a HyperPod cluster created in the embedded AWS, and quotas as
TYPE=N items (for the embedded AWS's account and the run's wait.quotas at once)."""


def _options(name: str) -> dict[str, Any]:
    """First flag -> the click option of ``novaflow run <name>`` (typer may carry its own click, so duck-typed)."""
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    return {p.opts[0]: p for p in command.params if p.param_type_name == "option"}


def _field(model: type[BaseModel], path: str) -> Any:
    field: Any = None
    for part in path.split("."):
        field = model.model_fields[part]
        model = field.annotation if isinstance(field.annotation, type) else model
    return field


def _description(model: type[BaseModel], path: str) -> str:
    field = _field(model, path)
    assert field.description, f"{path} has no description"
    return str(field.description)


def test_every_option_is_either_a_parameter_or_cli_only() -> None:
    assert set(_options("end-to-end")) == set(SAME_AS_PARAMETER) | CLI_ONLY


@pytest.mark.parametrize(("option", "path"), sorted(SAME_AS_PARAMETER.items()))
def test_help_is_the_parameter_description(option: str, path: str) -> None:
    found = _options("end-to-end")[option]
    description = _description(EndToEndParams, path)
    assert (found.help or "").startswith(description), (
        f"novaflow run end-to-end {option}: help {found.help!r} does not start with the description of "
        f"EndToEndParams.{path} ({description!r}); copy it (flows/params.py is the one source)"
    )


@pytest.mark.parametrize(("option", "path"), sorted(SAME_AS_PARAMETER.items()))
def test_a_default_the_cli_writes_is_the_parameters_default(option: str, path: str) -> None:
    found = _options("end-to-end")[option]
    if found.default in (None, [], ()) or option == "--cleanup":  # None: the parameter's default applies
        return
    expected = _field(EndToEndParams, path).get_default(call_default_factory=True)
    assert found.default == expected, f"{option} defaults to {found.default!r}, EndToEndParams.{path} to {expected!r}"


def test_the_row_counts_in_the_sizes_help_are_the_parameters_defaults() -> None:
    data = EndToEndParams().data
    assert f"(default {data.sft_rows},{data.eval_rows},{data.rft_rows})" in (
        _options("end-to-end")["--sizes"].help or ""
    )


def test_the_sizes_in_the_workers_help_are_the_thresholds_the_workers_use() -> None:
    """``data prepare --workers`` states the input sizes from which workers start; the numbers live in workers.py."""
    from novaflow.cli.data import prepare
    from novaflow.data.workers import CURATION_PARALLEL_MIN_BYTES, PARALLEL_MIN_BYTES, PARALLEL_MIN_CORES

    info = typer.main.get_command_from_info(
        typer.models.CommandInfo(callback=prepare), pretty_exceptions_short=True, rich_markup_mode=None
    )
    help_text = next(p for p in info.params if "--workers" in getattr(p, "opts", [])).help or ""
    assert f"from {PARALLEL_MIN_BYTES >> 20} MB of input on {PARALLEL_MIN_CORES}+ cores" in help_text
    assert f"one per core from {CURATION_PARALLEL_MIN_BYTES >> 20} MB" in help_text
