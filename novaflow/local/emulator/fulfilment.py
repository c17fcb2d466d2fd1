"""The job-fulfilment emulator: what the Nova training and evaluation containers would do, on a CPU.

When a training job is created, a background thread reads the job's ``recipe`` channel (the resolved recipe
YAML) and its ``train`` channel from the embedded S3 through the public API, does what the recipe says (gen_qa
evaluation, SFT or RFT with the stand-in model of :mod:`novaflow.local.models.classifier`), writes the outputs and
log lines in the real formats, and only then lets the job read as Completed. Faults armed through
:mod:`novaflow.local.emulator.faults` are honoured at each step boundary, so stop, fail and stall look as on AWS.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from moto.sagemaker.models import sagemaker_backends

from novaflow.local.emulator import jobstate
from novaflow.local.emulator.emulate_cpt import run_cpt
from novaflow.local.emulator.emulate_dpo import run_dpo
from novaflow.local.emulator.emulate_eval import run_evaluation
from novaflow.local.emulator.emulate_rft import run_rft
from novaflow.local.emulator.emulate_sft import checkpoint_uri, run_sft
from novaflow.local.emulator.job_context import Abort, JobContext, RecipeNotSupported
from novaflow.local.emulator.joblog import JobLog
from novaflow.local.emulator.registration import register_output
from novaflow.local.emulator.serverless_jobs import plan, recipe_of

__all__ = ["Abort", "JobContext", "RecipeNotSupported", "kind_of", "on_training_job_created"]


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


RUNNERS: dict[str, Callable[[JobContext, dict[str, Any]], None]] = {
    "eval": run_evaluation,
    "rft": run_rft,
    "dpo": run_dpo,
    "cpt": run_cpt,
    "sft": run_sft,
}
"""What each job kind of :func:`kind_of` runs."""


def _work(ctx: JobContext) -> None:
    run = ctx.run
    try:
        ctx.log = ctx.log or JobLog(ctx.url, ctx.name, ctx.region)  # HyperPod jobs bring their own
        ctx.log.line(f"Starting the training job {ctx.name} (novaflow local Nova emulator)")
        ctx.checkpoint()
        run.enter("Downloading")
        if ctx.serverless is not None:
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
        RUNNERS[kind](ctx, recipe)
        if ctx.serverless is not None and ctx.serverless.job_type == "FineTuning":
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
