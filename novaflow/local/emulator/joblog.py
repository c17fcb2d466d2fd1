"""CloudWatch log lines of an emulated training job, in the formats the real Nova containers print
(docs/training-jobs.md#log-lines).

novaflow's log tailer and metric parser are tested against what the emulator writes here, so the lines follow the
real formats exactly: ``[YYYY-MM-DD HH:MM:SS,mmm] [INFO] ...`` with Megatron-style SFT step lines and verl-style
RFT step lines, in the group ``/aws/sagemaker/TrainingJobs`` and the stream ``<job>/algo-1-<epoch>``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from novaflow.local.emulator import aws_io

LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def stamp(epoch_seconds: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if epoch_seconds is None else epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S,") + f"{moment.microsecond // 1000:03d}"


def sft_step_line(
    epoch: int, step: int, total: int, lr: float, batch: int, loss: float, seconds: float, consumed: int
) -> str:
    return (
        f"Training epoch {epoch}, iteration {step}/{total} | lr: {lr:.4g} | global_batch_size: {batch} | "
        f"global_step: {step} | reduced_train_loss: {loss:.6g} | train_step_timing in s: {seconds:.4g} | "
        f"consumed_samples: {consumed}"
    )


def rft_step_line(step: int, epoch: int, metrics: dict[str, float]) -> str:
    keys = (
        "global_seqlen/mean",
        "actor/entropy",
        "actor/reward_kl_penalty",
        "actor/reward_kl_penalty_coeff",
        "actor/pg_loss",
        "actor/grad_norm",
        "actor/lr",
        "training/global_step",
        "training/epoch",
        "critic/score/mean",
        "critic/score/max",
        "critic/score/min",
        "critic/rewards/mean",
        "critic/rewards/max",
        "critic/rewards/min",
        "critic/advantages/mean",
        "response_length/mean",
        "response_length/clip_ratio",
        "perf/throughput",
    )
    values = {**metrics, "training/global_step": step, "training/epoch": epoch}
    parts = [f"step:{step}"] + [f"{k}:{_num(values[k])}" for k in keys if k in values]
    return "(TaskRunner pid=1) " + " - ".join(parts)


def _num(value: Any) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return str(int(value)) if isinstance(value, int) else f"{value:.1f}"
    return f"{value:.6g}"


class JobLog:
    """One log stream of one job; lines are buffered and flushed in batches (like the CloudWatch agent).

    Training jobs write ``<job>/algo-1-<epoch>`` in :data:`LOG_GROUP`; other job kinds name their own ``group``
    (AgentRFT jobs), ``stream`` and a ``prefix`` before each line (HyperPod pods), so one writer serves them all.
    """

    def __init__(
        self,
        url: str,
        job_name: str,
        region: str = "us-east-1",
        *,
        group: str = LOG_GROUP,
        stream: str | None = None,
        prefix: str = "",
    ) -> None:
        self.client = aws_io.client("logs", url, region)
        self.group = group
        self.stream = stream or f"{job_name}/algo-1-{int(time.time())}"
        self.prefix = prefix
        self._pending: list[dict[str, Any]] = []
        try:
            self.client.create_log_group(logGroupName=self.group)
        except self.client.exceptions.ResourceAlreadyExistsException:
            pass
        self.client.create_log_stream(logGroupName=self.group, logStreamName=self.stream)

    def line(self, message: str, level: str = "INFO") -> None:
        now = time.time()
        self._pending.append(
            {"timestamp": int(now * 1000), "message": f"{self.prefix}[{stamp(now)}] [{level}] {message}"}
        )
        if len(self._pending) >= 50:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.client.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=self._pending)
            self._pending = []
