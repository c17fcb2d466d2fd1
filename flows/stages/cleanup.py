"""The ``cleanup`` stage: what novaflow created for the run's deployment is removed (tagged resources only), after
every other stage of the run has ended."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flows.params import DeployParams
from flows.stages.context import StageContext
from novaflow.deploy.names import deployment_name
from novaflow.runs.graph import Stage
from tasks.deploy import teardown_task

CLEANUP = "cleanup"


def cleanup_stage(deploy: DeployParams, after: Sequence[str]) -> Stage:
    """Tears down the run's deployment once the stages ``after`` (the graph's last ones) have ended."""

    def run(ctx: StageContext, inputs: Mapping[str, Any]) -> list[str]:
        report = teardown_task(
            deployment_name(ctx.run.run_name, deploy.endpoint_name), target=deploy.target, settings=ctx.settings
        )
        ctx.log.notes.append(f"teardown removed {len(report.removed)} resource(s)")
        return list(report.removed)

    return Stage(CLEANUP, tuple(after), run)
