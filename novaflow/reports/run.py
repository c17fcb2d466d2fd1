"""Everything one run's report shows, as plain data: the HTML page renders it, ``report.json`` keeps it exact.

The flows fill a :class:`RunReport` as the stages finish (evaluations, training curves, data reports, the reward
verification, the gate and the deployment); :func:`novaflow.reports.html.render_report` draws it for people and
:meth:`RunReport.to_json` keeps every number unrounded for programs (and MLflow, and S3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from novaflow.data.report import DataReport
from novaflow.data.splits import SplitReport
from novaflow.deploy.gate import GateDecision
from novaflow.evaluation.classification import ClassificationReport, classify, is_label_task
from novaflow.evaluation.compare import StageComparison
from novaflow.evaluation.results import EvalResult
from novaflow.jobs.series import TrainingSeries
from novaflow.reward.verify import RewardVerification
from reward_lambda.labels import DEFAULT_LABELS


@dataclass(frozen=True)
class JobLink:
    """A job the run used, with where a person looks at it: the SageMaker console, or ``console`` (the settings'
    ``console_url``) when the run's AWS serves its own job pages."""

    stage: str
    name: str
    status: str
    region: str
    attached: bool = False
    console: str | None = None

    @property
    def console_url(self) -> str:
        if self.console:
            return f"{self.console.rstrip('/')}/sagemaker/jobs/{self.name}?region={self.region}"
        return f"https://{self.region}.console.aws.amazon.com/sagemaker/home?region={self.region}#/jobs/{self.name}"


@dataclass
class RunReport:
    """One run. ``stages`` are the evaluations in order (baseline first); every other part is optional."""

    run_name: str
    stages: dict[str, EvalResult] = field(default_factory=dict)
    comparison: StageComparison | None = None
    gate: GateDecision | None = None
    gate_stages: tuple[str, str] | None = None
    """(baseline, candidate) the gate compared."""
    deployment: str | None = None
    not_deployed: str | None = None
    """Why nothing was deployed (gate rejected, deploy skipped or disabled), when nothing was."""
    jobs: list[JobLink] = field(default_factory=list)
    curves: dict[str, TrainingSeries] = field(default_factory=dict)
    split: SplitReport | None = None
    data: dict[str, DataReport] = field(default_factory=dict)
    reward: RewardVerification | None = None
    timings: dict[str, float] = field(default_factory=dict)
    labels: tuple[str, ...] = DEFAULT_LABELS
    model_package_version: str | None = None
    """The model package version a serverless run registered (shown in the headline when set)."""
    flow_run_url: str | None = None
    notes: list[str] = field(default_factory=list)
    title: str | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def heading(self) -> str:
        return self.title or f"novaflow run {self.run_name}"

    def classification(self) -> dict[str, ClassificationReport]:
        """Per-stage label analysis, only when every gold answer is one of the task's labels."""
        out = {}
        for name, result in self.stages.items():
            if result.samples and is_label_task(result.golds, self.labels):
                out[name] = classify(result.golds, result.predictions, self.labels)
        return out

    def to_json(self) -> bytes:
        """Every number exact (NaN as null), keyed so a program can find it without the HTML."""
        body: dict[str, Any] = {
            "run_name": self.run_name,
            "generated_at": self.generated_at.isoformat(),
            "flow_run_url": self.flow_run_url,
            "model_package_version": self.model_package_version,
            "stages": {
                name: {
                    "source": r.source,
                    "task": r.task,
                    "samples": len(r.samples),
                    "metrics": [{"metric": m.name, "value": m.value, "stderr": m.stderr} for m in r.metrics],
                    "warnings": r.warnings,
                    "disagreements": [str(d) for d in r.disagreements],
                }
                for name, r in self.stages.items()
            },
            "classification": {
                name: {**rep.summary(), "per_class": rep.per_class_records(), "confusion": rep.confusion}
                for name, rep in self.classification().items()
            },
            "comparison": None
            if self.comparison is None
            else {
                "n": self.comparison.n,
                "stages": self.comparison.stages,
                "values": {
                    metric: {stage: {"value": v, "stderr": se} for stage, (v, se) in by_stage.items()}
                    for metric, by_stage in self.comparison.values.items()
                },
                "deltas": self.comparison.delta_records(),
            },
            "gate": None if self.gate is None else asdict(self.gate),
            "gate_stages": self.gate_stages,
            "deployment": self.deployment,
            "not_deployed": self.not_deployed,
            "jobs": [asdict(j) | {"console_url": j.console_url} for j in self.jobs],
            "curves": {stage: s.to_dict() for stage, s in self.curves.items()},
            "split": None if self.split is None else self.split.model_dump(),
            "data": {name: rep.model_dump() for name, rep in self.data.items()},
            "reward_verification": None
            if self.reward is None
            else {
                "ok": self.reward.ok,
                "distributions": [asdict(d) for d in self.reward.distributions],
                "mismatches": self.reward.mismatches,
                "problems": self.reward.problems,
            },
            "timings": self.timings,
            "notes": self.notes,
        }
        return orjson.dumps(_finite(body), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)


def _finite(value: Any) -> Any:
    """NaN and infinities as null: JSON has no spelling for them and a reader must not guess."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
