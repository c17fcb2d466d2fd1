"""The ``compare`` stage: the paired comparison of every evaluation of the run (baseline first), on the same rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flows.stages.context import StageContext
from novaflow.evaluation.compare import StageComparison
from novaflow.runs.graph import Stage
from tasks.evaluation import compare_stages_task

COMPARE = "compare"


def compare_stage(evaluations: Sequence[str]) -> Stage:
    """Waits for every evaluation it compares; the columns are the evaluation stages' keys, in this order."""

    def run(ctx: StageContext, inputs: Mapping[str, Any]) -> StageComparison:
        return compare_stages_task({key: inputs[key] for key in evaluations})

    return Stage(COMPARE, tuple(evaluations), run)
