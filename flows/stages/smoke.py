"""The ``smoke`` stage: a few held-out rows sent to the new deployment, each answer parsed (and, with a label set,
compared with the expected label) - the first thing a client would do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flows.stages.context import StageContext
from flows.stages.deploy import DEPLOY, Deployment
from novaflow.catalog import DataFormat
from novaflow.runs.graph import Stage
from tasks.deploy import smoke_test_task

SMOKE = "smoke"


def smoke_stage(
    rows: int, labels: Sequence[str] | None, *, data: str | None = "data", eval_uri: str | None = None
) -> Stage:
    """Needs the deployment and the gen_qa rows (the data stage's, or ``eval_uri``); gives the summary line
    (None when nothing was deployed)."""

    def run(ctx: StageContext, inputs: Mapping[str, Any]) -> str | None:
        deployed: Deployment | None = inputs[DEPLOY]
        if deployed is None:
            return None
        uri = eval_uri or inputs[str(data)].uris[DataFormat.EVAL]
        report = smoke_test_task(
            deployed.target,
            deployed.invoke_id,
            uri,
            rows=rows,
            labels=list(labels or []) or None,
            settings=ctx.settings,
        )
        summary = report.summary()
        ctx.log.notes.append(summary)
        ctx.log.details[SMOKE] = summary
        return summary

    needs = (DEPLOY,) if eval_uri else (DEPLOY, str(data))
    return Stage(SMOKE, needs, run)
