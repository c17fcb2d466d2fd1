"""Single-stage flows: `baseline-eval`, `sft`, `dpo`, `cpt`, `rft` and `verify-reward`, each usable on its own
schedule.

They take prepared data as S3 URIs (``novaflow data prepare`` + upload, or an earlier end-to-end run) and share
the stage code of the end-to-end flow, so a job submitted here is the same job end-to-end would submit.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import Field

from flows.hooks import STOP_ON_EXIT
from flows.params import (
    MODEL_HELP,
    EvaluationParams,
    FormParams,
    JobParams,
    ModelName,
    RegistryParams,
    RewardParams,
    WaitParams,
    resolve_model,
)
from flows.runners import thread_pool
from flows.stages import (
    EvalContext,
    RunLog,
    check_reward,
    evaluate_model,
    registry_group,
    require_registry,
    require_supported,
    reward_lambda,
    spec_for,
    train,
)
from flows.summary import run_summary_markdown
from novaflow.catalog import Method
from novaflow.evaluation.results import EvalResult
from novaflow.jobs.spec import JobSpec
from novaflow.settings import load_settings
from reward_lambda.config import RewardConfig
from reward_lambda.labels import DEFAULT_LABELS
from tasks.common import artifact_key
from tasks.credentials import CredentialsParameter, use_run_credentials
from tasks.reward import (
    deploy_reward_lambda_task,
    package_reward_task,
    verify_reward_function_task,
    verify_reward_task,
)


class _StageParams(FormParams):
    run_name: str = Field("scheduled", description="Names the run in artifacts.")
    model: ModelName = Field(None, description=MODEL_HELP)
    wait: WaitParams = Field(default_factory=WaitParams)
    registry: RegistryParams = Field(default_factory=RegistryParams)


START_HELP = (
    "Start from this model: an s3:// checkpoint (SMTJ) or a model package version ARN (SERVERLESS); "
    "empty = the base model."
)


class BaselineEvalParams(_StageParams):
    eval_uri: str = Field(..., description="s3:// URI of gen_qa.jsonl (the held-out evaluation rows).")
    model_path: str | None = Field(
        None,
        description="s3:// checkpoint (SMTJ) or model package version ARN (SERVERLESS) to evaluate; empty = the "
        "base model.",
    )
    evaluation: EvaluationParams = Field(default_factory=EvaluationParams)


class SftParams(_StageParams):
    train_uri: str = Field(..., description="s3:// URI of the SFT Converse train.jsonl.")
    eval_uri: str | None = Field(None, description="gen_qa.jsonl to evaluate the checkpoint on (optional).")
    sft: JobParams = Field(default_factory=JobParams)
    evaluation: EvaluationParams = Field(default_factory=EvaluationParams)


class RftParams(_StageParams):
    train_uri: str = Field(..., description="s3:// URI of the RFT rft.jsonl.")
    checkpoint_uri: str | None = Field(None, description=START_HELP)
    eval_uri: str | None = Field(None, description="gen_qa.jsonl to evaluate the result on (optional).")
    reward: RewardParams = Field(default_factory=RewardParams)
    rft: JobParams = Field(default_factory=JobParams)
    evaluation: EvaluationParams = Field(default_factory=EvaluationParams)


class DpoParams(_StageParams):
    train_uri: str = Field(
        ..., description="s3:// URI of the DPO preference pairs (novaflow data prepare --method dpo)."
    )
    checkpoint_uri: str | None = Field(None, description=START_HELP)
    eval_uri: str | None = Field(None, description="gen_qa.jsonl to evaluate the result on (optional).")
    dpo: JobParams = Field(default_factory=JobParams)
    evaluation: EvaluationParams = Field(default_factory=EvaluationParams)


class CptParams(_StageParams):
    train_uri: str = Field(..., description="s3:// URI of the raw-text cpt.jsonl (novaflow data prepare --method cpt).")
    eval_uri: str | None = Field(None, description="gen_qa.jsonl to evaluate the result on (optional).")
    cpt: JobParams = Field(default_factory=JobParams)
    evaluation: EvaluationParams = Field(default_factory=EvaluationParams)


class VerifyRewardParams(FormParams):
    rows_uri: str | None = Field(None, description="RFT rows (JSONL, local path or s3://) to grade.")
    predictions_uri: str | None = Field(None, description="A past evaluation's inference_output.jsonl.")
    reward: RewardParams = Field(default_factory=RewardParams)
    deploy: bool = Field(True, description="Create or update the function before verifying it.")


def _summary(log: RunLog) -> None:
    create_markdown_artifact(
        run_summary_markdown(log),
        key=artifact_key("run-summary", log.run_name),
        description=f"novaflow run {log.run_name}: stages, jobs, where things are",
    )


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
            _context(params.run_name),
        )
    _summary(log)
    return _metrics(result)


def _context(run_name: str) -> EvalContext:
    """Where a judge dataset of a single-stage run goes (rft_eval needs the end-to-end flow's data)."""
    return EvalContext(run_prefix=load_settings().s3_uri("runs", run_name))


def _train_then_evaluate(
    stage: str, spec: JobSpec, job: JobParams, params: SftParams | RftParams | DpoParams | CptParams, log: RunLog
) -> dict[str, Any]:
    group = registry_group(params.registry, spec.model, params.run_name)
    require_registry(group, [job, params.evaluation] if params.eval_uri else [job])
    with log.stage(stage):
        trained = train(stage, spec, job, params.wait, log, group=group)
    out: dict[str, Any] = {
        "checkpoint": trained.checkpoint,
        "model_package": trained.version.arn if trained.version else None,
    }
    if params.eval_uri:
        with log.stage(f"post-{stage}-eval"):
            out["metrics"] = _metrics(
                evaluate_model(
                    f"post-{stage}",
                    spec.model,
                    params.eval_uri,
                    trained,
                    params.evaluation,
                    params.wait,
                    log,
                    _context(params.run_name),
                )
            )
    _summary(log)
    return out


def _spec(model: str, method: Method, job: JobParams, params: _StageParams, **fields: Any) -> JobSpec:
    """The stage's spec, refused when the model cannot run it there; a SERVERLESS one registers in the run's group."""
    require_supported(model, [(method, job.platform)])
    return spec_for(model, method, job, group=registry_group(params.registry, model, params.run_name), **fields)


@flow(name="sft", task_runner=thread_pool(max_workers=4), **STOP_ON_EXIT)
def sft(params: SftParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Supervised fine-tuning (LoRA), then an evaluation of the checkpoint when eval data is given.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    use_run_credentials(aws_credentials)
    spec = _spec(resolve_model(params.model), Method.SFT_LORA, params.sft, params, train_uri=params.train_uri)
    return _train_then_evaluate("sft", spec, params.sft, params, RunLog(params.run_name))


@flow(name="rft", task_runner=thread_pool(max_workers=4), **STOP_ON_EXIT)
def rft(params: RftParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Reward Lambda (deploy + verify), RFT LoRA from the given checkpoint, then an optional evaluation.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    use_run_credentials(aws_credentials)
    model = resolve_model(params.model)
    require_supported(model, [(Method.RFT_LORA, params.rft.platform)])
    log = RunLog(params.run_name)
    with log.stage("reward-lambda"):
        own = bool(params.reward.source or params.reward.function_arn)
        reward_arn = reward_lambda(
            params.reward, params.train_uri, check_reward(params.reward, params.train_uri, is_sample=not own)
        )
    spec = _spec(
        model,
        Method.RFT_LORA,
        params.rft,
        params,
        train_uri=params.train_uri,
        model_name_or_path=params.checkpoint_uri,
        reward_lambda_arn=reward_arn,
    )
    return _train_then_evaluate("rft", spec, params.rft, params, log)


@flow(name="dpo", task_runner=thread_pool(max_workers=4), **STOP_ON_EXIT)
def dpo(params: DpoParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Direct preference optimisation (LoRA) on preference pairs, then an evaluation when eval data is given.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    use_run_credentials(aws_credentials)
    model = resolve_model(params.model)
    spec = _spec(
        model, Method.DPO_LORA, params.dpo, params, train_uri=params.train_uri, model_name_or_path=params.checkpoint_uri
    )
    return _train_then_evaluate("dpo", spec, params.dpo, params, RunLog(params.run_name))


@flow(name="cpt", task_runner=thread_pool(max_workers=4), **STOP_ON_EXIT)
def cpt(params: CptParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Continued pre-training on raw text, then an evaluation when eval data is given.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    use_run_credentials(aws_credentials)
    spec = _spec(resolve_model(params.model), Method.CPT, params.cpt, params, train_uri=params.train_uri)
    return _train_then_evaluate("cpt", spec, params.cpt, params, RunLog(params.run_name))


@flow(name="verify-reward")
def verify_reward(
    params: VerifyRewardParams = VerifyRewardParams(), aws_credentials: CredentialsParameter = None
) -> dict[str, Any]:
    """Grade sample rows / past predictions locally and through the deployed Lambda; publish the distribution.

    With ``reward.source`` or ``reward.function_arn`` a team's reward is probed on ``rows_uri`` instead.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    use_run_credentials(aws_credentials)
    reward = params.reward
    if reward.source or reward.function_arn:
        if not params.rows_uri:
            raise ValueError("verify-reward: a team's reward is verified on RFT rows: give rows_uri")
        package = package_reward_task(reward.source) if reward.source else None
        name = reward.function_arn or None
        if package is not None and params.deploy:
            name = deploy_reward_lambda_task(reward.function_name, package=package).function_name
        checked = verify_reward_function_task(
            rows=params.rows_uri,
            source=package.name if package is not None else str(reward.function_arn),
            package=package,
            function_name=name,
            limit=reward.verify_rows,
        )
        return {"ok": checked.ok, "table": checked.table()}
    config = RewardConfig(labels=tuple(reward.labels or DEFAULT_LABELS))
    if params.deploy:
        deploy_reward_lambda_task(reward.function_name, config)
    verification = verify_reward_task(
        rows=params.rows_uri,
        predictions=params.predictions_uri,
        function_name=reward.function_name,
        limit=reward.verify_rows,
    )
    return {"ok": verification.ok, "table": verification.table()}
