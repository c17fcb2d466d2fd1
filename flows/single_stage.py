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

from flows.graph import run_stages
from flows.hooks import JOB_HOOKS
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
from flows.stages.baseline import BASELINE, baseline_stage
from flows.stages.checks import registry_group, require_registry, require_supported
from flows.stages.context import StageContext
from flows.stages.evaluation import evaluation_key, evaluation_stage
from flows.stages.reward import REWARD_CHECK, reward_check_stage
from flows.stages.reward_lambda import REWARD_LAMBDA, reward_lambda_stage
from flows.stages.run_log import RunLog
from flows.stages.training import TrainedModel, training_stage
from flows.summary import run_summary_markdown
from novaflow.catalog import Method
from novaflow.evaluation.results import EvalResult
from novaflow.runs.graph import Graph, Stage, after
from reward_lambda.config import RewardConfig
from reward_lambda.labels import DEFAULT_LABELS
from tasks.common import artifact_key
from tasks.credentials import CredentialsParameter, run_context, use_run_credentials
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


def _metrics(result: EvalResult) -> dict[str, float]:
    return {row.name: row.value for row in result.metrics.rows}


def _run(
    params: _StageParams,
    aws_credentials: CredentialsParameter,
    stages: list[Stage],
    jobs: list[JobParams],
    methods: list[tuple[Method, str]] | None = None,
) -> dict[str, Any]:
    """Run a few-stage graph of the same stages end-to-end uses; publish the run summary; give every output."""
    run = run_context(aws_credentials, params.run_name)
    model = resolve_model(params.model, run.settings)
    require_supported(model, methods or [])
    group = registry_group(params.registry, model, params.run_name)
    require_registry(group, jobs)
    log = RunLog(params.run_name)
    ctx = StageContext(run, model, log, params.wait, group)
    outputs = run_stages(Graph(stages), ctx).outputs
    create_markdown_artifact(
        run_summary_markdown(log, endpoint=run.settings.resolved_endpoint_url()),
        key=artifact_key("run-summary", log.run_name),
        description=f"novaflow run {log.run_name}: stages, jobs, where things are",
    )
    return outputs


def _train_then_evaluate(
    stage: str,
    method: Method,
    job: JobParams,
    params: SftParams | RftParams | DpoParams | CptParams,
    aws_credentials: CredentialsParameter,
    *,
    start_from: str | None = None,
    before: list[Stage] | None = None,
) -> dict[str, Any]:
    """``before`` (the reward stages of RFT), the training stage, then its evaluation when ``eval_uri`` is given."""
    reward = REWARD_LAMBDA if before else None
    training = training_stage(stage, method, job, train_uri=params.train_uri, start_from=start_from, reward=reward)
    stages = [*(before or []), after(training, REWARD_CHECK) if before else training]
    key = evaluation_key(stage)
    if params.eval_uri:
        stages.append(evaluation_stage(key, params.evaluation, of=stage, eval_uri=params.eval_uri))
    jobs = [job, params.evaluation] if params.eval_uri else [job]
    outputs = _run(params, aws_credentials, stages, jobs, [(method, job.platform)])
    trained: TrainedModel = outputs[stage]
    out: dict[str, Any] = {
        "checkpoint": trained.checkpoint,
        "model_package": trained.version.arn if trained.version else None,
    }
    if params.eval_uri:
        out["metrics"] = _metrics(outputs[key])
    return out


@flow(name="baseline-eval", task_runner=thread_pool(max_workers=4), **JOB_HOOKS)
def baseline_eval(params: BaselineEvalParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Evaluate a model (the base model by default) on the held-out gen_qa rows; publish its metric table.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    stage = baseline_stage(params.evaluation, model_path=params.model_path, eval_uri=params.eval_uri)
    outputs = _run(params, aws_credentials, [stage], [params.evaluation])
    return _metrics(outputs[BASELINE])


@flow(name="sft", task_runner=thread_pool(max_workers=4), **JOB_HOOKS)
def sft(params: SftParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Supervised fine-tuning (LoRA), then an evaluation of the checkpoint when eval data is given.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    return _train_then_evaluate("sft", Method.SFT_LORA, params.sft, params, aws_credentials)


@flow(name="rft", task_runner=thread_pool(max_workers=4), **JOB_HOOKS)
def rft(params: RftParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Reward Lambda (deploy + verify), RFT LoRA from the given checkpoint, then an optional evaluation.

    The rows are the team's own (``train_uri``): without ``reward.labels`` novaflow's label grader grades them on
    their own reference answers, never on the committed sample's labels.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    reward = [
        reward_check_stage(params.reward, is_sample=False, rows_uri=params.train_uri),
        reward_lambda_stage(params.reward, rows_uri=params.train_uri),
    ]
    return _train_then_evaluate(
        "rft", Method.RFT_LORA, params.rft, params, aws_credentials, start_from=params.checkpoint_uri, before=reward
    )


@flow(name="dpo", task_runner=thread_pool(max_workers=4), **JOB_HOOKS)
def dpo(params: DpoParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Direct preference optimisation (LoRA) on preference pairs, then an evaluation when eval data is given.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    return _train_then_evaluate(
        "dpo", Method.DPO_LORA, params.dpo, params, aws_credentials, start_from=params.checkpoint_uri
    )


@flow(name="cpt", task_runner=thread_pool(max_workers=4), **JOB_HOOKS)
def cpt(params: CptParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Continued pre-training on raw text, then an evaluation when eval data is given.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    return _train_then_evaluate("cpt", Method.CPT, params.cpt, params, aws_credentials)


@flow(name="verify-reward")
def verify_reward(
    params: VerifyRewardParams = VerifyRewardParams(), aws_credentials: CredentialsParameter = None
) -> dict[str, Any]:
    """Grade sample rows / past predictions locally and through the deployed Lambda; publish the distribution.

    With ``reward.source`` or ``reward.function_arn`` a team's reward is probed on ``rows_uri`` instead.

    Args:
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    settings = use_run_credentials(aws_credentials)
    reward = params.reward
    if reward.source or reward.function_arn:
        if not params.rows_uri:
            raise ValueError("verify-reward: a team's reward is verified on RFT rows: give rows_uri")
        package = package_reward_task(reward.source, settings=settings) if reward.source else None
        name = reward.function_arn or None
        if package is not None and params.deploy:
            name = deploy_reward_lambda_task(reward.function_name, package=package, settings=settings).function_name
        checked = verify_reward_function_task(
            rows=params.rows_uri,
            source=package.name if package is not None else str(reward.function_arn),
            package=package,
            function_name=name,
            limit=reward.verify_rows,
            settings=settings,
        )
        return {"ok": checked.ok, "table": checked.table()}
    config = RewardConfig(labels=tuple(reward.labels or DEFAULT_LABELS))
    if params.deploy:
        deploy_reward_lambda_task(reward.function_name, config, settings=settings)
    verification = verify_reward_task(
        rows=params.rows_uri,
        predictions=params.predictions_uri,
        function_name=reward.function_name,
        limit=reward.verify_rows,
        settings=settings,
    )
    return {"ok": verification.ok, "table": verification.table()}
