"""A training job's curves by step (SFT loss; RFT reward, its spread, KL, entropy, response length).

Two sources say the same thing with different detail. The CloudWatch log lines carry every metric the container
prints (the reward's min and max, the response length, the learning rate), rounded to a few digits; the
``step_wise_training_metrics.csv`` the job leaves in ``output.tar.gz`` carries fewer columns at full precision and
outlives the logs' retention. The series joins both on the step, the CSV's value winning where both have one, so
the report and MLflow draw the same curves on AWS and offline (the emulator writes both, in AWS's formats).

Example:
    >>> s = series_from_sources("sft", "job", logs=["global_step: 1 | reduced_train_loss: 2.5"], csv=None)
    >>> s.points("loss")
    [(1, 2.5)]
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from novaflow.catalog import Method, Platform
from novaflow.jobs.agent_rft import LOG_GROUP as AGENT_LOG_GROUP
from novaflow.jobs.logs import SERIES_COLUMNS, LogTailer, metrics_frame, read_job_logs
from novaflow.jobs.outputs import STEP_WISE_METRICS, training_metrics_csv
from novaflow.jobs.records import JobRecord
from novaflow.settings import NovaflowSettings

# step_wise_training_metrics.csv header -> the log parser's canonical name (SFT: step_number, epoch_number,
# training_loss; RFT: train_reward_mean, policy_entropy, kl).
CSV_NAMES = {
    "step_number": "step",
    "epoch_number": "epoch",
    "training_loss": "loss",
    "train_reward_mean": "reward_mean",
    "policy_entropy": "entropy",
    "kl": "kl",
}
LOG_SOURCE = "cloudwatch-logs"


@dataclass
class TrainingSeries:
    """Metric name -> value per step (``None`` where a step has no value); ``sources`` says where they came from."""

    stage: str
    job_name: str
    steps: list[int] = field(default_factory=list)
    values: dict[str, list[float | None]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.steps

    def has(self, name: str) -> bool:
        return any(v is not None for v in self.values.get(name, []))

    def points(self, name: str) -> list[tuple[int, float]]:
        """(step, value) of one metric, steps without a value left out."""
        return [(s, v) for s, v in zip(self.steps, self.values.get(name, []), strict=True) if v is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "job_name": self.job_name,
            "sources": self.sources,
            "steps": self.steps,
            "values": self.values,
        }


def parse_step_wise_csv(text: str) -> pd.DataFrame:
    """The CSV as a frame with the canonical column names (unknown columns keep their own)."""
    frame = pd.read_csv(io.StringIO(text))
    frame = frame.rename(columns={c: CSV_NAMES.get(c.strip(), c.strip()) for c in frame.columns})
    if "step" not in frame.columns:
        return pd.DataFrame()
    return frame.drop_duplicates("step", keep="last").sort_values("step")


def series_from_sources(stage: str, job_name: str, *, logs: Iterable[str], csv: str | None) -> TrainingSeries:
    """Join the log-parsed series and the CSV on the step; the CSV's exact value wins where both have one."""
    frames, sources = [], []
    if csv:
        from_csv = parse_step_wise_csv(csv)
        if not from_csv.empty:
            frames.append(from_csv.set_index("step"))
            sources.append(STEP_WISE_METRICS)
    from_logs = metrics_frame(logs)
    if not from_logs.empty:
        frames.append(from_logs.set_index("step"))
        sources.append(LOG_SOURCE)
    if not frames:
        return TrainingSeries(stage, job_name)
    joined = frames[0]
    for other in frames[1:]:
        joined = joined.combine_first(other)
    joined = joined.sort_index()
    order = [c for c in SERIES_COLUMNS if c in joined.columns and c != "step"]
    order += [c for c in joined.columns if c not in order]
    values = {
        str(c): [None if _missing(v) else float(v) for v in joined[c].tolist()]
        for c in order
        if pd.api.types.is_numeric_dtype(joined[c])
    }
    return TrainingSeries(stage, job_name, [int(s) for s in joined.index], values, sources)


def read_training_series(stage: str, record: JobRecord, settings: NovaflowSettings) -> TrainingSeries:
    """The curves of a finished job: its CloudWatch log lines plus its step-wise CSV (SMTJ and HyperPod jobs write
    both; a HyperPod job's lines are in its cluster's log group, a multi-turn RFT job's in its own)."""
    if record.method == Method.RFT_MULTITURN.value:  # a CreateJob job logs its steps in its own group
        lines = [line.message for line in LogTailer(record.name, settings, log_group=AGENT_LOG_GROUP).poll()]
        return series_from_sources(stage, record.name, logs=lines, csv=None)
    if record.platform is Platform.SMHP:
        # HyperPod's modules load only for HyperPod jobs
        from novaflow.jobs.hyperpod.backend import HyperPodBackend

        tailer = HyperPodBackend(settings, record.cluster, record.namespace).log_tailer(record.name)
        lines = [line.message for line in tailer.poll()]
    elif record.platform is Platform.SMTJ:
        lines = [line.message for line in read_job_logs(record.name, settings)]
    else:
        return TrainingSeries(stage, record.name)  # Bedrock customization writes no logs novaflow can read
    csv = training_metrics_csv(record.output_uri, record.name, settings) if record.output_uri else None
    return series_from_sources(stage, record.name, logs=lines, csv=csv)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
