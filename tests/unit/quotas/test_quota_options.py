"""``--quota`` on the run commands: a bad item is one usage line naming it; a good one reaches wait.quotas."""

from __future__ import annotations

import pytest
import typer

from novaflow.cli.options import quota_option


def test_run_commands_refuse_a_bad_quota_in_one_line() -> None:
    from typer.testing import CliRunner

    from novaflow.cli import app

    for args in (
        ["run", "end-to-end", "--quota", "p5=8"],
        ["run", "flow", "sft", "--params", "x.json", "--quota", "p5"],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "'p5" in result.output and "is not TYPE=N" in result.output
        assert "Traceback" not in result.output


def test_quota_option_values() -> None:
    assert quota_option(["ml.p5.48xlarge=8", "serverless=1"]) == {"ml.p5.48xlarge": 8, "serverless": 1}
    with pytest.raises(typer.BadParameter, match=r"^'ml.p5.48xlarge=-2': the quota cannot be negative$"):
        quota_option(["ml.p5.48xlarge=-2"])
