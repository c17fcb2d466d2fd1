"""Flow parameters as pydantic models, so the Prefect UI renders them as forms with defaults and descriptions.

Large inputs travel as paths or S3 URIs, never as parameter values (the server caps parameters at 512 KiB).
The defaults replay the case study: Stack Overflow question quality, Nova 2 Lite, 3,500 SFT / 500 eval / 700
RFT rows with the RFT set augmented by the SFT rows.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from novaflow.catalog import model_field
from novaflow.data.filters import CurationConfig
from novaflow.deploy.names import DEFAULT_CONTEXT_LENGTH, DEFAULT_MAX_CONCURRENCY
from novaflow.reward.defaults import DEFAULT_FUNCTION_NAME
from novaflow.runs.notifications import DEFAULT_EVENTS as DEFAULT_NOTIFIED_STATUSES
from novaflow.settings import NovaflowSettings
from reward_lambda.labels import DEFAULT_LABELS

Stage = Literal["baseline", "sft", "dpo", "rft", "mtrl", "deploy"]
TrainingStage = Literal["sft", "dpo", "rft", "mtrl"]
CASE_STUDY_STAGES: tuple[TrainingStage, ...] = ("sft", "rft")
PlatformName = Literal["SMTJ", "SERVERLESS", "BEDROCK", "HYPERPOD"]
PLATFORM_HELP = (
    "Where this stage's job runs: SMTJ (a SageMaker training job on instances; the case study), SERVERLESS "
    "(SageMaker serverless customization: no instances, the model registered as a model package version), "
    "BEDROCK (SFT/RFT LoRA only) or HYPERPOD (SMHP: your SageMaker HyperPod cluster, see cluster)."
)


ModelName = Annotated[str | None, AfterValidator(lambda value: None if value is None else model_field(value))]
"""Any catalog spelling becomes its key; an unknown one is a parameter error naming the known models."""
MODEL_HELP = (
    "Nova model in any spelling the catalog knows (nova-lite-2, amazon.nova-2-lite-v1, ...); "
    "empty = settings.model (NOVAFLOW_MODEL, nova-lite-2 unless set)."
)


def resolve_model(model: str | None, settings: NovaflowSettings) -> str:
    """The model a run uses: the parameter, else the configured default."""
    return model or settings.model


def _plain_optionals(schema: dict[str, Any]) -> None:
    """An optional field (``X | None = None``) is shown as a plain X field: the UI renders ``anyOf [X, null]`` as a
    "X / None" toggle saying "Property is type None", while an empty field already means None (the form leaves it
    out and the model's default applies). Deployments do not enforce the schema (prefect.yaml), and the flow's own
    pydantic model still accepts None."""
    for prop in schema.get("properties", {}).values():
        branches = prop.get("anyOf")
        if not branches or prop.get("default", ...) is not None:
            continue
        kept = [b for b in branches if b.get("type") != "null"]
        if len(kept) == 1 and len(branches) == 2:
            prop.pop("anyOf")
            prop.pop("default")
            prop.update({k: v for k, v in kept[0].items() if k not in prop})


class FormParams(BaseModel):
    """Base of every flow's parameter model: unknown fields are refused, optional fields render as plain fields."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_plain_optionals)


_Params = FormParams


class DataParams(_Params):
    source: str = Field(
        "sample",
        description="CSV / JSONL / JSON / Parquet path or s3:// URI; 'sample' uses the "
        "committed synthetic Stack Overflow sample.",
    )
    columns: dict[str, Any] = Field(
        default_factory=dict,
        description="Column mapping: query, response, system, reference_answer, id, "
        "reasoning, metadata (a list of columns). Empty: the case study's (Body, Y, Id) for the sample, "
        "otherwise columns already named query/question, response/answer, ...",
    )
    system_prompt: str | None = Field(
        None,
        description="One system prompt for every row; the sample's label-only "
        "prompt when the source is 'sample' and this is empty.",
    )
    sft_rows: int = Field(3500, ge=1, description="Rows for supervised fine-tuning.")
    eval_rows: int = Field(500, ge=1, description="Held-out rows every stage is evaluated on.")
    rft_rows: int = Field(700, ge=0, description="Rows reserved for RFT (plus the SFT rows when augmented).")
    augment_rft_with_sft: bool = Field(True, description="Train RFT on its rows plus all SFT rows (case study).")
    dpo_rows: int = Field(700, ge=0, description="Rows reserved for DPO when the run has a dpo stage.")
    preferences: str | None = Field(
        None,
        description="File of preference pairs for the dpo stage (Nova DPO records, or a table with query, chosen "
        "and rejected columns); empty = pairs derived from the DPO rows: each row's answer preferred over another "
        "row's different answer.",
    )
    stratify: str | None = Field(
        None,
        description="Column to stratify the splits by, or 'none'. Empty: automatic - the sample's label column Y, "
        "or the response column when it has at most 20 distinct values (the split artifact says which).",
    )
    seed: int = Field(0, description="Split seed: the same seed gives the same split.")
    strict: bool = Field(False, description="Fail on any rejected row instead of continuing with the valid ones.")
    filters: CurationConfig = Field(
        default_factory=CurationConfig,
        description="Curation filters every prepared split passes (dedup, near-dedup, language, quality) and their "
        "thresholds; removed rows are rejected with the filter and score. Empty: none.",
    )


class JobParams(_Params):
    platform: PlatformName = Field("SMTJ", description=PLATFORM_HELP)
    accept_eula: bool = Field(False, description="SERVERLESS: accept the base model's end-user license agreement.")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="Flat recipe overrides, e.g. {'lr': 1e-5, 'max_steps': 100}; SERVERLESS takes the hub's "
        "hyperparameter names too (learning_rate, lora_alpha, ...).",
    )
    image_uri: str | None = Field(None, description="SMTJ: training image to use instead of the published one.")
    cluster: str | None = Field(
        None, description="HYPERPOD: the HyperPod cluster the job runs on (default NOVAFLOW_HYPERPOD_CLUSTER)."
    )
    namespace: str | None = Field(
        None, description="HYPERPOD: the Kubernetes namespace (default NOVAFLOW_HYPERPOD_NAMESPACE, kubeflow)."
    )
    instance_type: str | None = Field(None, description="Default from the instance table for model and method.")
    instance_count: int | None = Field(None, ge=1, description="Default from the instance table.")
    existing_job: str | None = Field(
        None,
        description="Attach to this already submitted job instead of "
        "submitting (its outputs are used as this stage's result).",
    )
    retry_failed: bool = Field(False, description="Start a new attempt when the same spec already failed.")


class WaitParams(_Params):
    poll_seconds: float = Field(30.0, gt=0, description="First poll interval; backs off with jitter.")
    max_poll_seconds: float = Field(300.0, gt=0, description="Longest poll interval.")
    max_wait_hours: float = Field(24.0, gt=0, description="Give up waiting on a job after this long.")
    stop_on_deadline: bool = Field(True, description="Stop the job when the wait deadline passes (money).")
    quotas: dict[str, int] = Field(
        default_factory=dict,
        description="Instances per instance type (ml.p5.48xlarge: 8) or concurrent serverless jobs (serverless: 2) "
        "novaflow may use at once, when Service Quotas cannot be read or to use less than the account's quota. "
        "Each becomes the Prefect limit novaflow-quota-{type}; a limit set by hand in Prefect wins.",
    )
    mode: Literal["block", "suspend"] = Field(
        "block",
        description="block: the flow run polls its job to the end. suspend (deployed runs): after submitting, the "
        "run suspends itself, releasing its worker, and `novaflow watch` resumes it when the job ends.",
    )

    @field_validator("quotas")
    @classmethod
    def _check_quotas(cls, value: dict[str, int]) -> dict[str, int]:
        from novaflow.errors import ConfigError
        from novaflow.quotas.capacity import parse_quota_items

        try:
            return parse_quota_items((f"{k}={v}" for k, v in value.items()), where="wait.quotas")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


class AgentParams(_Params):
    source: str | None = Field(
        None,
        description="The mtrl stage's agent: your agent file (.py defining lambda_handler(event, context); a "
        "requirements.txt beside it is packaged too), a Lambda function ARN or a Bedrock AgentCore runtime ARN.",
    )


class RewardParams(_Params):
    source: str | None = Field(
        None,
        description="Your reward file (.py, local path or s3:// URI) defining lambda_handler(event, context) or "
        "grade(response, reference_answer, sample); a requirements.txt beside it is packaged too. "
        "Empty: novaflow's label grader.",
    )
    function_arn: str | None = Field(
        None, description="An existing reward Lambda to use as is (verified, never redeployed)."
    )
    function_name: str = Field(
        DEFAULT_FUNCTION_NAME,
        description="Name of the Lambda novaflow deploys (must contain 'SageMaker' for HyperPod).",
    )
    labels: list[str] | None = Field(
        None,
        description=f"Label set of novaflow's label grader. Empty: {', '.join(DEFAULT_LABELS)} for the sample, "
        "otherwise the RFT rows' distinct reference answers when there are at most 20.",
    )
    verify_rows: int = Field(200, ge=1, description="Rows graded locally and through Lambda before RFT.")

    @model_validator(mode="after")
    def _one_source(self) -> RewardParams:
        if self.source and self.function_arn:
            raise ValueError("reward: give either source (a file to deploy) or function_arn (a Lambda), not both")
        return self


class EvaluationParams(JobParams):
    task: str | None = Field(
        None,
        description="Evaluation added to gen_qa on the held-out rows: gen_qa (nothing more), judge (the judge of the "
        "model's Nova version: llm_judge or rubric_llm_judge), rft_eval (your reward Lambda grades each answer), "
        "or a benchmark: mmlu, mmlu_pro, bbh, gpqa, math, strong_reject, ifeval, mmmu. Empty: gen_qa; for the "
        "baseline, the same task as the evaluations after SFT and RFT.",
    )
    subtask: str | None = Field(None, description="Benchmark subtask (e.g. an mmlu subject); empty = all.")


class GateParams(_Params):
    metric: str = Field(
        "em",
        description="Metric the candidate must improve: a gen_qa metric (em, qem, f1, rouge1, accuracy, ...) or "
        "one of the evaluation task's, named task:metric (judge:winrate, rft_eval:aggregate_reward_score, "
        "mmlu:accuracy).",
    )
    higher_is_better: bool | None = Field(
        None, description="Direction of the metric; empty = the metric's own (e.g. judge:a_scores is lower-better)."
    )
    min_delta: float = Field(0.0, description="Smallest improvement over the baseline that counts.")
    require_significance: bool = Field(True, description="Also require a paired-test p-value below alpha.")
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level.")
    human_approval: bool = Field(False, description="Pause for a person to approve before deploying.")
    approval_timeout_seconds: int = Field(3600, ge=1, description="How long to wait for that person.")


class DeployParams(_Params):
    enabled: bool = Field(True, description="Deploy the winning checkpoint when the gate approves.")
    target: Literal["sagemaker", "sagemaker_ic", "bedrock_od", "bedrock_pt"] = Field(
        "sagemaker",
        description="Where to deploy: a SageMaker endpoint, an inference component of one (sagemaker_ic: several "
        "models can share the endpoint), Bedrock on demand or provisioned throughput.",
    )
    endpoint_name: str | None = Field(None, description="Default: derived from the run name.")
    instance_type: str = Field("ml.p5.48xlarge", description="SageMaker inference instance.")
    instance_count: int = Field(1, ge=1)
    context_length: int = Field(
        DEFAULT_CONTEXT_LENGTH, ge=1, description="CONTEXT_LENGTH; must fit a tier of the instance."
    )
    max_concurrency: int = Field(
        DEFAULT_MAX_CONCURRENCY, ge=1, description="MAX_CONCURRENCY; must fit a tier of the instance."
    )
    smoke_rows: int = Field(3, ge=0, description="Eval rows sent to the deployment as a smoke test.")
    model_package: str | None = Field(
        None,
        description="deploy flow: the model package version to deploy (it must be Approved) instead of a checkpoint "
        "URI; the end-to-end flow deploys the version it trained.",
    )
    gate: GateParams = Field(default_factory=GateParams)


class TrackingParams(_Params):
    mlflow_uri: str | None = Field(
        None,
        description="MLflow tracking URI (sqlite:///runs.db, https://..., or a SageMaker MLflow ARN, which also "
        "goes into the recipes so the training containers log there); empty = MLFLOW_TRACKING_URI, if set.",
    )
    experiment: str | None = Field(None, description="MLflow experiment; empty = MLFLOW_EXPERIMENT_NAME or 'novaflow'.")


class NotificationParams(_Params):
    sns_topic_arn: str | None = Field(
        None,
        description="SNS topic that gets a message for each state change of the run's jobs (an EventBridge rule "
        "per run, removed when it ends; the topic must allow events.amazonaws.com to publish). Empty = none.",
    )
    events: list[str] = Field(
        list(DEFAULT_NOTIFIED_STATUSES),
        description="Job statuses to notify: InProgress, Completed, Failed, Stopping, Stopped.",
    )


class RegistryParams(_Params):
    enabled: bool = Field(
        True,
        description="Register every training stage's model as a model package version (lineage, metrics, and the "
        "approval status the deploy gate sets); deploy from the approved version.",
    )
    group: str | None = Field(None, description="Model package group; empty = novaflow-{run_name}-{model}.")


class EndToEndParams(_Params):
    # The form shows fields in this order: what a user changes most first (the data, the model, the stages, the
    # run name), then what each stage does, then the advanced groups (registry, waiting, clean-up, tracking).
    data: DataParams = Field(default_factory=DataParams)
    model: ModelName = Field(None, description=MODEL_HELP)
    stages: list[TrainingStage] = Field(
        list(CASE_STUDY_STAGES),
        description="Training stages in the order they run, each from the model of the one before: [sft, rft] "
        "(Nova 2, the case study), [sft, dpo] (Nova 1), [dpo], ...",
    )
    run_name: str = Field("case-study", description="Names the run's S3 prefix, artifacts and deployment.")
    skip: list[Stage] = Field(default_factory=list, description="Stages to skip.")
    reward: RewardParams = Field(default_factory=RewardParams)
    evaluation: EvaluationParams = Field(
        default_factory=EvaluationParams, description="Evaluation jobs after every training stage."
    )
    deploy: DeployParams = Field(default_factory=DeployParams)
    sft: JobParams = Field(default_factory=JobParams, description="SFT LoRA job.")
    rft: JobParams = Field(
        default_factory=JobParams, description="RFT LoRA job (starts from the model of the stage before it)."
    )
    dpo: JobParams = Field(
        default_factory=JobParams, description="DPO LoRA job (Nova 1; starts from the model of the stage before it)."
    )
    mtrl: JobParams = Field(
        default_factory=lambda: JobParams.model_validate({"platform": "SERVERLESS"}),
        description="Multi-turn (agentic) RFT job (SERVERLESS): the agent plays the RFT rows as tasks.",
    )
    agent: AgentParams = Field(default_factory=AgentParams, description="The agent of the mtrl stage.")
    baseline: EvaluationParams = Field(default_factory=EvaluationParams, description="Baseline evaluation job.")
    registry: RegistryParams = Field(default_factory=RegistryParams)
    wait: WaitParams = Field(default_factory=WaitParams)
    cleanup: bool = Field(False, description="Tear down the deployment (and the roles novaflow created) at the end.")
    work_dir: str = Field("novaflow-runs", description="Local scratch directory for prepared files and reports.")
    notifications: NotificationParams = Field(
        default_factory=NotificationParams, description="AWS-native notifications (EventBridge -> SNS)."
    )
    tracking: TrackingParams = Field(default_factory=TrackingParams, description="MLflow tracking (optional).")

    @field_validator("stages")
    @classmethod
    def _once_each(cls, value: list[TrainingStage]) -> list[TrainingStage]:
        if len(set(value)) != len(value):
            raise ValueError(f"each training stage runs at most once, got {value}")
        return value

    def training_stages(self) -> list[str]:
        """The stages this run trains, in order (``stages`` minus ``skip``)."""
        return [stage for stage in self.stages if stage not in self.skip]
