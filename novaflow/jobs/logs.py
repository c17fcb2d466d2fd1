"""CloudWatch logs of training jobs: find the streams, tail them without repeats, parse metrics into a series.

Nova containers print metrics only as log lines (progress bars, Megatron records, verl ``key:value`` lines with
ANSI colours), so the log is the only live view of a job's progress. Regexes follow the Forge SDK's
``metric_util.py``; one line becomes one record only when it carries a global step.

Example:
    >>> parse_metric_line("... | global_step: 8 | reduced_train_loss: 0.0013 | lr: 5.625e-06")
    {'step': 8, 'loss': 0.0013, 'lr': 5.625e-06}
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from novaflow.aws import get_client, is_not_found, wrap_client_error
from novaflow.settings import NovaflowSettings

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NUM = r"(-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)"
STEP_RE = re.compile(r"global_step[=:]\s*([\d.]+)")
# canonical metric -> patterns, first match wins (SFT/CPT Megatron and progress bar; RFT verl on SMTJ; RFT SMHP).
METRIC_PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    "loss": (re.compile(r"reduced_train_loss[=:]\s*" + _NUM),),
    "lr": (re.compile(r"(?<![a-z_])lr[=:]\s*" + _NUM),),
    "reward_mean": (
        re.compile(r"critic/rewards/mean[=:]\s*" + _NUM),
        re.compile(r"train_rm_score:\s*" + _NUM),
        re.compile(r"rollout/reward/mean[=:]\s*" + _NUM),
    ),
    "reward_max": (re.compile(r"critic/rewards/max[=:]\s*" + _NUM),),
    "reward_min": (re.compile(r"critic/rewards/min[=:]\s*" + _NUM),),
    "score_mean": (re.compile(r"critic/score/mean[=:]\s*" + _NUM),),
    "kl": (re.compile(r"actor/reward_kl_penalty[=:]\s*" + _NUM), re.compile(r"(?<![\w/])kl:\s*" + _NUM)),
    "entropy": (re.compile(r"actor/entropy[=:]\s*" + _NUM), re.compile(r"(?<![\w/])ent:\s*" + _NUM)),
    "response_length": (re.compile(r"response_length/mean[=:]\s*" + _NUM), re.compile(r"completion_length:\s*" + _NUM)),
}
SERIES_COLUMNS = ["step", *METRIC_PATTERNS]


def strip_ansi(text: str) -> str:
    return ANSI_RE.sub("", text)


def parse_metric_line(line: str) -> dict[str, Any] | None:
    """One record ``{step, <metric>: value, ...}`` for a metric line, None for anything else.

    A line counts only with a global step and at least a loss or a reward, so timing lines that happen to mention
    a step are not mistaken for training progress.
    """
    clean = strip_ansi(line)
    step = STEP_RE.search(clean)
    if not step:
        return None
    record: dict[str, Any] = {"step": int(float(step.group(1)))}
    for name, patterns in METRIC_PATTERNS.items():
        for pattern in patterns:
            match = pattern.search(clean)
            if match:
                record[name] = float(match.group(1))
                break
    if "loss" not in record and "reward_mean" not in record:
        return None
    return record


def metrics_frame(lines: Iterable[str]) -> pd.DataFrame:
    """A time series indexed by step (the last record of a repeated step wins); columns in a fixed order."""
    records = [r for r in (parse_metric_line(line) for line in lines) if r is not None]
    frame = pd.DataFrame.from_records(records, columns=SERIES_COLUMNS)
    if frame.empty:
        return frame
    frame = frame.drop_duplicates("step", keep="last").sort_values("step").reset_index(drop=True)
    frame["step"] = frame["step"].astype(int)
    return frame.dropna(axis="columns", how="all")


@dataclass(frozen=True)
class LogLine:
    stream: str
    timestamp: int
    message: str


class LineSource(Protocol):
    """Anything that yields a job's new log lines on each call (one log stream per host, or HyperPod's group)."""

    job_name: str

    def poll(self) -> list[LogLine]: ...


@dataclass
class LogTailer:
    """Follow every stream of one job from where the last call stopped (``nextForwardToken`` per stream).

    Streams appear as hosts start (``<job>/algo-<n>-<epoch>``), so they are re-discovered on each poll.
    """

    job_name: str
    settings: NovaflowSettings
    client: BaseClient | None = None
    log_group: str = LOG_GROUP
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client = self.client or get_client("logs", self.settings)

    def streams(self) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"logGroupName": self.log_group, "logStreamNamePrefix": self.job_name + "/"}
        try:
            while True:
                page = self.client.describe_log_streams(**kwargs)  # type: ignore[union-attr]
                names.extend(s["logStreamName"] for s in page.get("logStreams", []))
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        except ClientError as exc:
            if is_not_found(exc):
                return []
            raise wrap_client_error(exc, f"Listing log streams of {self.job_name}") from exc
        return sorted(names)

    def poll(self) -> list[LogLine]:
        """New lines since the previous poll, each stream in order; never the same event twice."""
        out: list[LogLine] = []
        for stream in self.streams():
            out.extend(self._drain(stream))
        return out

    def _drain(self, stream: str) -> list[LogLine]:
        lines: list[LogLine] = []
        while True:
            kwargs: dict[str, Any] = {"logGroupName": self.log_group, "logStreamName": stream, "startFromHead": True}
            if stream in self.tokens:
                kwargs["nextToken"] = self.tokens[stream]
            try:
                page = self.client.get_log_events(**kwargs)  # type: ignore[union-attr]
            except ClientError as exc:
                if is_not_found(exc):
                    return lines
                raise wrap_client_error(exc, f"Reading log stream {stream}") from exc
            events = page.get("events", [])
            for event in events:
                for text in str(event.get("message", "")).splitlines() or [""]:
                    lines.append(LogLine(stream, int(event.get("timestamp", 0)), text))
            token = page.get("nextForwardToken")
            repeated = token is None or token == self.tokens.get(stream)
            if token is not None:
                self.tokens[stream] = token
            if repeated or not events:
                return lines


def read_job_logs(job_name: str, settings: NovaflowSettings) -> list[LogLine]:
    """Every log line a job has written so far."""
    return LogTailer(job_name, settings).poll()
