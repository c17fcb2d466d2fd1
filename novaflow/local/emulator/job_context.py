"""What every emulated job kind works on: the job's context (its channels, output path, log and state) and the two
ways a worker leaves early.

The fulfilment dispatcher (:mod:`novaflow.local.emulator.fulfilment`) builds one :class:`JobContext` per created
training job; each ``emulate_*`` module receives it. Both import this module, and it imports neither, so the
dispatcher and the job kinds do not import each other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from novaflow.data.formats import estimate_tokens
from novaflow.local.emulator import aws_io, faults, job_outputs, jobstate
from novaflow.local.emulator.joblog import JobLog, rft_step_line
from novaflow.local.emulator.serverless_jobs import ServerlessPlan


class Abort(Exception):
    """The job was stopped or failed by injection; the worker leaves without writing outputs."""


class RecipeNotSupported(Exception):
    """The recipe asks for something the local stand-in cannot do (shown as the job's FailureReason)."""


@dataclass
class JobContext:
    """Everything the worker needs, copied out of moto's object in the request thread."""

    name: str
    url: str
    account: str
    region: str
    hyperparameters: dict[str, str]
    channels: dict[str, dict[str, Any]]
    output_path: str
    run: jobstate.JobRun
    log: JobLog | None = None
    compressed: bool = True
    """False when OutputDataConfig.CompressionType is NONE (serverless): outputs land as files, not a tar.gz."""
    image: str = ""
    serverless: ServerlessPlan | None = None
    rows_read: int = 0
    chars_read: int = 0
    samples_processed: int = 0
    """Set by the trainer: how many rows (samples, rollouts) it processed, for ``BillableTokenCount``."""

    def line(self, message: str, level: str = "INFO") -> None:
        """One line in the job's CloudWatch log (the worker opens the log before any job kind runs)."""
        if self.log is None:
            raise RuntimeError(f"job {self.name}: the job log is written before it was opened")
        self.log.line(message, level=level)

    def rft_step_line(self, step: int, epoch: int, metrics: dict[str, float]) -> str:
        """One RFT step's log line as the training job's container prints it (HyperPod's prints another)."""
        return rft_step_line(step, epoch, metrics)

    def billable_tokens(self) -> int:
        """The tokens the job processed: the data's tokens per row times the rows processed."""
        per_row = estimate_tokens(self.chars_read) / max(1, self.rows_read)
        return round(per_row * (self.samples_processed or self.rows_read))

    def checkpoint(self) -> None:
        """Step boundary: honour stop, injected failure and stall."""
        while faults.is_stalled(self.name) and not self.run.should_stop():
            self.run.released.wait(0.05)
            self.run.released.clear()
        reason = faults.pending_failure(self.name)
        if reason is not None and not self.run.should_stop():
            if self.log is not None:
                self.log.line(f"Training job failed: {reason}", level="ERROR")
            self.run.fail(reason)
        if self.run.should_stop():
            raise Abort

    def write_outputs(self, files: Mapping[str, bytes], directories: tuple[str, ...] = ()) -> str:
        """The job's output files, as ``output.tar.gz`` or (uncompressed) under ``<job>/output/output/``."""
        if self.compressed:
            uri = job_outputs.output_uri(self.output_path, self.name)
            aws_io.write_bytes(self.url, uri, job_outputs.tar_gz(files, directories))
            return uri
        root = job_outputs.uncompressed_root(self.output_path, self.name)
        for path, body in files.items():
            aws_io.write_bytes(self.url, f"{root}/{path}", body)
        return root

    def write_training_output(self, checkpoint_uri: str, metrics_csv: str) -> str:
        """``manifest.json`` pointing at the checkpoint plus the step-wise metrics, in the job's output layout."""
        return self.write_outputs(job_outputs.training_files(checkpoint_uri, metrics_csv))

    def channel_uri(self, name: str) -> str | None:
        source = (self.channels.get(name) or {}).get("DataSource", {}).get("S3DataSource", {})
        return source.get("S3Uri")

    def read_recipe(self) -> dict[str, Any]:
        uri = self.channel_uri("recipe")
        if not uri:
            raise RecipeNotSupported("ClientError: no 'recipe' input channel; a Nova job needs the resolved recipe")
        keys = (
            [uri]
            if uri.endswith((".yaml", ".yml"))
            else [
                f"s3://{uri[5:].split('/')[0]}/{k}"
                for k in aws_io.list_keys(self.url, uri.rstrip("/") + "/")
                if k.endswith((".yaml", ".yml"))
            ]
        )
        if not keys:
            raise RecipeNotSupported(f"ClientError: no recipe YAML under {uri}")
        recipe = yaml.safe_load(aws_io.read_bytes(self.url, keys[0]))
        if not isinstance(recipe, dict) or "run" not in recipe:
            raise RecipeNotSupported(f"ClientError: {keys[0]} is not a Nova recipe (no 'run' block)")
        return recipe

    def read_jsonl(self, channel: str = "train", prefer: str | None = None) -> list[dict[str, Any]]:
        uri = self.channel_uri(channel)
        if not uri:
            raise RecipeNotSupported(f"ClientError: no '{channel}' input channel")
        bucket = uri[5:].split("/")[0]
        if uri.endswith(".jsonl"):
            keys = [uri]
        else:
            found = [k for k in aws_io.list_keys(self.url, uri) if k.endswith(".jsonl")]
            preferred = [k for k in found if prefer and k.endswith("/" + prefer)]
            keys = [f"s3://{bucket}/{k}" for k in (preferred or sorted(found))]
        if not keys:
            raise RecipeNotSupported(f"ClientError: no .jsonl data under {uri}")
        rows: list[dict[str, Any]] = []
        for key in keys:
            for number, line in enumerate(aws_io.read_bytes(self.url, key).decode("utf-8").splitlines(), 1):
                if line.strip():
                    self.rows_read += 1
                    self.chars_read += len(line)
                    try:
                        rows.append(json.loads(line))
                    except ValueError as exc:
                        raise RecipeNotSupported(f"ClientError: {key} line {number} is not JSON: {exc}") from exc
        return rows
