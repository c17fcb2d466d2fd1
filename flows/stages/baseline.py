"""The baseline stage: the base model (or a given model) evaluated on the held-out rows before any training.

It needs only the data, so it runs beside the first training stage; every later evaluation is compared with it.
"""

from __future__ import annotations

from flows.params import EvaluationParams
from flows.stages.evaluation import evaluation_stage
from novaflow.runs.graph import Stage

BASELINE = "baseline"


def baseline_stage(
    job: EvaluationParams,
    *,
    model_path: str | None = None,
    eval_uri: str | None = None,
    reward: str | None = None,
) -> Stage:
    """The ``baseline`` stage (``model_path``: evaluate that checkpoint or version instead of the base model)."""
    return evaluation_stage(BASELINE, job, model_path=model_path, eval_uri=eval_uri, reward=reward)
