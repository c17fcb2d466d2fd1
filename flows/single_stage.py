"""Single-stage flows: `baseline-eval`, `sft`, `rft` and `verify-reward`, each usable on its own schedule.

They take prepared data as S3 URIs (``novaflow data prepare`` + upload, or an earlier end-to-end run) and share
the stage code of the end-to-end flow, so a job submitted here is the same job end-to-end would submit.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from flows.hooks import STOP_ON_EXIT
from flows.params import MODEL_HELP, JobParams, ModelName, RewardParams, WaitParams, resolve_model
from flows.runners import thread_pool
from flows.stages import RunLog, evaluate_model, require_supported, reward_lambda, spec_for, train
from flows.summary import run_summary_markdown
from novaflow.catalog import Method
from novaflow.evaluation.results import EvalResult
from novaflow.jobs.spec import JobSpec
from reward_lambda.config import RewardConfig
from tasks.common import artifact_key
from tasks.credentials import CredentialsParameter, use_run_credentials
from tasks.reward import deploy_reward_lambda_task, verify_reward_task


class _StageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_name: str = Field("scheduled", description="Names the run in artifacts.")
    model: ModelName = Field(None, description=MODEL_HELP)
    wait: WaitParams = Field(default_factory=WaitParams)


class BaselineEvalParams(_StageParams):
    eval_uri: str = Field(..., description="s3:// URI of gen_qa.jsonl (the held-out evaluation rows).")
    model_path: str | None = Field(None, description="s3:// checkpoint to evaluate; empty = the base model.")
    evaluation: JobParams = Field(default_factory=JobParams)


class SftParams(_StageParams):
    train_uri: str = Field(..., description="s3:// URI of the SFT Converse train.jsonl.")
    eval_uri: str | None = Field(None, description="gen_qa.jsonl to evaluate the checkpoint on (optional).")
    sft: JobParams = Field(default_factory=JobParams)
    evaluation: JobParams = Field(default_factory=JobParams)


class RftParams(_StageParams):
    train_uri: str = Field(..., description="s3:// URI of the RFT rft.jsonl.")
    checkpoint_uri: str | None = Field(None, description="Start from this checkpoint (e.g. SFT); empty = base.")
    eval_uri: str | None = Field(None, description="gen_qa.jsonl to evaluate the result on (optional).")
    reward: RewardParams = Field(default_factory=RewardParams)
    rft: JobParams = Field(default_factory=JobParams)
    evaluation: JobParams = Field(default_factory=JobParams)


class VerifyRewardParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows_uri: str | None = Field(None, description="RFT rows (JSONL, local path or s3://) to grade.")
    predictions_uri: str | None = Field(None, description="A past evaluation's inference_output.jsonl.")
    reward: RewardParams = Field(default_factory=RewardParams)
    deploy: bool = Field(True, description="Create or update the function before verifying it.")


def _summary(log: RunLog) -> None:
    create_markdown_artifact(run_summary_markdown(log), key=artifact_key("run-summary", log.run_name))


def _metrics(result: EvalResult) -> dict[str, float]:
    return {row.name: row.value for row in result.metrics.rows}


@flow(name="baseline-eval", task_runner=thread_pool(max_workers=4), **STOP_ON_EXIT)
def baseline_eval(params: BaselineEvalParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Evaluate a model (the base model by default) on the held-out gen_qa rows; publish its metric table.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    use_run_credentials(aws_credentials)
    log = RunLog(params.run_name)
    with log.stage("evaluation"):
        result = evaluate_model(
            "baseline",
            resolve_model(params.model),
            params.eval_uri,
            params.model_path,
            params.evaluation,
            params.wait,
            log,
        )
    _summary(log)
    return _metrics(result)


def _train_then_evaluate(
    stage: str, spec: JobSpec, job: JobParams, params: SftParams | RftParams, log: RunLog
) -> dict[str, Any]:
    with log.stage(stage):
        checkpoint = train(stage, spec, job, params.wait, log)
    out: dict[str, Any] = {"checkpoint": checkpoint}
    if params.eval_uri:
        with log.stage(f"post-{stage}-eval"):
            out["metrics"] = _metrics(
                evaluate_model(
                    f"post-{stage}", spec.model, params.eval_uri, checkpoint, params.evaluation, params.wait, log
                )
            )
    _summary(log)
    return out


@flow(name="sft", task_runner=thread_pool(max_workers=4), **STOP_ON_EXIT)
def sft(params: SftParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Supervised fine-tuning (LoRA), then an evaluation of the checkpoint when eval data is given.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    use_run_credentials(aws_credentials)
    spec = spec_for(resolve_model(params.model), Method.SFT_LORA, params.sft, train_uri=params.train_uri)
    return _train_then_evaluate("sft", spec, params.sft, params, RunLog(params.run_name))


@flow(name="rft", task_runner=thread_pool(max_workers=4), **STOP_ON_EXIT)
def rft(params: RftParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Reward Lambda (deploy + verify), RFT LoRA from the given checkpoint, then an optional evaluation.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    use_run_credentials(aws_credentials)
    model = resolve_model(params.model)
    require_supported(model, [Method.RFT_LORA])
    log = RunLog(params.run_name)
    with log.stage("reward-lambda"):
        reward = reward_lambda(params.reward, params.train_uri)
    spec = spec_for(
        model,
        Method.RFT_LORA,
        params.rft,
        train_uri=params.train_uri,
        model_name_or_path=params.checkpoint_uri,
        reward_lambda_arn=reward.function_arn,
    )
    return _train_then_evaluate("rft", spec, params.rft, params, log)


@flow(name="verify-reward")
def verify_reward(
    params: VerifyRewardParams = VerifyRewardParams(), aws_credentials: CredentialsParameter = None
) -> dict[str, Any]:
    """Grade sample rows / past predictions locally and through the deployed Lambda; publish the distribution.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    use_run_credentials(aws_credentials)
    config = RewardConfig(labels=tuple(params.reward.labels))
    if params.deploy:
        deploy_reward_lambda_task(params.reward.function_name, config)
    verification = verify_reward_task(
        rows=params.rows_uri,
        predictions=params.predictions_uri,
        function_name=params.reward.function_name,
        limit=params.reward.verify_rows,
    )
    return {"ok": verification.ok, "table": verification.table()}
