"""The job-fulfilment emulator: what the Nova training and evaluation containers would do, on a CPU.

When a training job is created, a background thread reads the job's ``recipe`` channel (the resolved recipe
YAML) and its ``train`` channel from the embedded S3 through the public API, does what the recipe says (gen_qa
evaluation, SFT or RFT with the stand-in model of :mod:`novaflow.local.model`), writes the outputs and log lines
in the real formats, and only then lets the job read as Completed. Faults armed through
:mod:`novaflow.local.faults` are honoured at each step boundary, so stop, fail and stall look as on AWS.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from novaflow.local import faults, jobstate, moto_sagemaker, outputs, storage
from novaflow.local.joblog import JobLog
from novaflow.local.serverless_jobs import ServerlessPlan


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

    def billable_tokens(self) -> int:
        """The tokens the job processed: the data's tokens per row times the rows processed."""
        from novaflow.data.formats import estimate_tokens

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
            uri = outputs.output_uri(self.output_path, self.name)
            storage.write_bytes(self.url, uri, outputs.tar_gz(files, directories))
            return uri
        root = outputs.uncompressed_root(self.output_path, self.name)
        for path, body in files.items():
            storage.write_bytes(self.url, f"{root}/{path}", body)
        return root

    def write_training_output(self, checkpoint_uri: str, metrics_csv: str) -> str:
        """``manifest.json`` pointing at the checkpoint plus the step-wise metrics, in the job's output layout."""
        return self.write_outputs(outputs.training_files(checkpoint_uri, metrics_csv))

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
                for k in storage.list_keys(self.url, uri.rstrip("/") + "/")
                if k.endswith((".yaml", ".yml"))
            ]
        )
        if not keys:
            raise RecipeNotSupported(f"ClientError: no recipe YAML under {uri}")
        recipe = yaml.safe_load(storage.read_bytes(self.url, keys[0]))
        if not isinstance(recipe, dict) or "run" not in recipe:
            raise RecipeNotSupported(f"ClientError: {keys[0]} is not a Nova recipe (no 'run' block)")
        return recipe

    def read_jsonl(self, channel: str = "train", prefer: str | None = None) -> list[dict[str, Any]]:
        import json

        uri = self.channel_uri(channel)
        if not uri:
            raise RecipeNotSupported(f"ClientError: no '{channel}' input channel")
        bucket = uri[5:].split("/")[0]
        if uri.endswith(".jsonl"):
            keys = [uri]
        else:
            found = [k for k in storage.list_keys(self.url, uri) if k.endswith(".jsonl")]
            preferred = [k for k in found if prefer and k.endswith("/" + prefer)]
            keys = [f"s3://{bucket}/{k}" for k in (preferred or sorted(found))]
        if not keys:
            raise RecipeNotSupported(f"ClientError: no .jsonl data under {uri}")
        rows: list[dict[str, Any]] = []
        for key in keys:
            for number, line in enumerate(storage.read_bytes(self.url, key).decode("utf-8").splitlines(), 1):
                if line.strip():
                    self.rows_read += 1
                    self.chars_read += len(line)
                    try:
                        rows.append(json.loads(line))
                    except ValueError as exc:
                        raise RecipeNotSupported(f"ClientError: {key} line {number} is not JSON: {exc}") from exc
        return rows


def kind_of(recipe: dict[str, Any], hyperparameters: dict[str, str], image: str = "") -> str:
    """``eval``, ``rft``, ``dpo``, ``cpt`` or ``sft`` from the recipe's blocks and the image (as the Nova containers
    decide: each technique has its own image, and CPT recipes carry no block of their own on Nova 1)."""
    if "evaluation" in recipe:
        return "eval"
    config = recipe.get("training_config") or {}
    if "rollout" in config or recipe["run"].get("reward_lambda_arn") or hyperparameters.get("reward_lambda_arn"):
        return "rft"
    model = config.get("model")
    if "dpo_cfg" in (model or {}):
        return "dpo"
    if config.get("task_type") == "cpt" or "CPT" in image.rsplit(":", 1)[-1].upper():
        return "cpt"
    if isinstance(model, dict) and "peft" not in model:  # a Nova 1 recipe with no peft block is the CPT recipe
        return "cpt"
    return "sft"


def _work(ctx: JobContext) -> None:
    run = ctx.run
    try:
        ctx.log = JobLog(ctx.url, ctx.name, ctx.region)
        ctx.log.line(f"Starting the training job {ctx.name} (novaflow local Nova emulator)")
        ctx.checkpoint()
        run.enter("Downloading")
        if ctx.serverless is not None:
            from novaflow.local.serverless_jobs import recipe_of

            recipe = recipe_of(ctx.serverless, ctx.hyperparameters, ctx.name)
        else:
            recipe = ctx.read_recipe()
        kind = kind_of(recipe, ctx.hyperparameters, ctx.image)
        run.min_seconds = jobstate.Timing.for_kind(kind)
        ctx.log.line(
            f"Recipe run.name={recipe['run'].get('name')} kind={kind} "
            f"model_name_or_path={recipe['run'].get('model_name_or_path')}"
        )
        ctx.checkpoint()
        run.enter("Training")
        ctx.checkpoint()
        if kind == "eval":
            from novaflow.local.emulate_eval import run_evaluation

            run_evaluation(ctx, recipe)
        elif kind == "rft":
            from novaflow.local.emulate_rft import run_rft

            run_rft(ctx, recipe)
        elif kind == "dpo":
            from novaflow.local.emulate_dpo import run_dpo

            run_dpo(ctx, recipe)
        elif kind == "cpt":
            from novaflow.local.emulate_cpt import run_cpt

            run_cpt(ctx, recipe)
        else:
            from novaflow.local.emulate_sft import run_sft

            run_sft(ctx, recipe)
        if ctx.serverless is not None and ctx.serverless.job_type == "FineTuning":
            from novaflow.local.emulate_sft import checkpoint_uri
            from novaflow.local.registration import register_output

            arn = register_output(ctx, ctx.serverless, checkpoint_uri(ctx.account, ctx.name))
            run.output_model_package_arn = arn
            ctx.log.line(f"Registered the trained model as {arn}")
        if ctx.serverless is not None:
            run.billable_tokens = ctx.billable_tokens()
        ctx.log.line("Training job completed")
        run.finish()
    except Abort:
        if ctx.log is not None and run.stop_requested:
            ctx.log.line("Received a stop request; the training job is stopping")
    except RecipeNotSupported as exc:
        run.fail(str(exc))
        if ctx.log is not None:
            ctx.log.line(str(exc), level="ERROR")
    except Exception as exc:  # an emulator bug must surface as a failed job, never a silent hang
        run.fail(f"AlgorithmError: {type(exc).__name__}: {exc}")
        if ctx.log is not None:
            for line in traceback.format_exc().splitlines():
                ctx.log.line(line, level="ERROR")
    finally:
        if ctx.log is not None:
            try:
                ctx.log.flush()
            except Exception:  # noqa: S110 - the server may be shutting down; status must still settle
                pass
        run.exited()


def on_training_job_created(job: Any, url: str, account: str, region: str) -> None:
    serverless = None
    if getattr(job, "serverless_job_config", None):
        from moto.sagemaker.models import sagemaker_backends

        from novaflow.local.serverless_jobs import plan

        serverless = plan(sagemaker_backends[account][region], job)
    ctx = JobContext(
        name=job.training_job_name,
        url=url,
        account=account,
        region=region,
        hyperparameters=dict(job.hyper_parameters or {}),
        channels={c["ChannelName"]: c for c in (job.input_data_config or [])},
        output_path=job.output_data_config["S3OutputPath"],
        run=job.run,
        compressed=job.output_data_config.get("CompressionType", "GZIP") != "NONE",
        image=str((getattr(job, "algorithm_specification", None) or {}).get("TrainingImage", "")),
        serverless=serverless,
    )
    threading.Thread(target=_work, args=(ctx,), name=f"nova-emulator-{ctx.name}", daemon=True).start()


def install() -> None:
    if on_training_job_created not in moto_sagemaker.ON_TRAINING_JOB_CREATED:
        moto_sagemaker.ON_TRAINING_JOB_CREATED.append(on_training_job_created)
