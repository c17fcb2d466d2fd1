"""Fidelity: novaflow's CreateTrainingJob equals what sagemaker v3 (``sagemaker-train``, the reference SDK) sends.

Every SageMaker-training-job method novaflow builds (read from the catalog's support table, so a newly built
method such as DPO is covered the day it ships), on each model generation, and every evaluation family (gen_qa,
a benchmark, the judge of each Nova version, rft_eval). For each, v3's ``ModelTrainer.from_recipe`` gets the
recipe novaflow resolved and the same compute, network, output and data settings; both requests are captured on
the wire (botocore ``before-call``, JSON body) against the embedded AWS and compared after normalising what each
side generates: the job name and the S3 key of the uploaded recipe.

Serverless: the SFT, DPO and RLVR trainers' request with no compute given, and a custom-scorer evaluation's
pipeline step, equal novaflow's serverless requests.

Runs only where the ``sagemaker`` extra is installed (it pulls mlflow and pins; keep it out of the shared venv):
``.ci/run`` runs it in its own venv and fails when it is skipped.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from novaflow.aws import get_client
from novaflow.catalog import MODELS, SUPPORT, Method, Platform, get_model
from novaflow.jobs.backends import get_backend
from novaflow.jobs.reasoning import follow_data_reasoning
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission, submit_training_job
from novaflow.recipes.service import eval_task, eval_tasks, judge_task
from novaflow.settings import load_settings
from tests.aws.jobs.conftest import put_jsonl

sagemaker = pytest.importorskip("sagemaker")


@pytest.fixture(autouse=True)
def no_sdk_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reports usage to an AWS endpoint; the tests never leave the machine (the network guard checks)."""
    from sagemaker.core.telemetry import telemetry_logging

    for name in ("_send_telemetry_request", "_send_telemetry_request_sync"):
        if hasattr(telemetry_logging, name):
            monkeypatch.setattr(telemetry_logging, name, lambda *args, **kwargs: None)


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    out["TrainingJobName"] = "<name>"
    for channel in out["InputDataConfig"]:
        if channel["ChannelName"] == "recipe":
            source = channel["DataSource"]["S3DataSource"]
            assert source["S3Uri"].endswith("/recipe.yaml")
            source["S3Uri"] = "<recipe.yaml>"
    return out


LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:reward"
DATA = {
    "sft": "data/train.jsonl",
    "rft": "data/rft.jsonl",
    "dpo": "data/dpo.jsonl",
    "cpt": "data/cpt.jsonl",
    "eval": "data/gen_qa.jsonl",
    None: None,
}
CPT_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/nova-cpt:latest"
"""CPT on a training job runs in the image AWS gave the account (none is published): the same one on both sides."""


def fidelity_cases() -> list[tuple[str, str, str | None]]:
    """(model, method, evaluation task): every built SMTJ method on one model of each Nova version it runs on."""
    cases: list[tuple[str, str, str | None]] = []
    for method, support in SUPPORT.items():
        if not support.built or Platform.SMTJ not in support.platforms:
            continue
        for version in (1, 2):
            models = sorted(m for m in support.models if MODELS[m].version == version)
            if not models:
                continue
            if method is Method.EVALUATION:
                model = get_model(models[0])
                tasks = eval_tasks(model)
                picked = ["gen_qa", "mmlu", judge_task(model)] + (["rft_eval"] if "rft_eval" in tasks else [])
                cases.extend((model.key, method.value, task) for task in picked)
            else:
                cases.append((models[0], method.value, None))
    return cases


CASES = fidelity_cases()


def test_the_cases_cover_every_built_smtj_method() -> None:
    methods = {m for _, m, _ in CASES}
    assert {"sft_lora", "sft_full", "rft_lora", "dpo_lora", "dpo_full", "cpt", "evaluation"} <= methods
    assert methods == {m.value for m, s in SUPPORT.items() if s.built and Platform.SMTJ in s.platforms}
    assert {t for _, _, t in CASES} >= {"gen_qa", "mmlu", "llm_judge", "rubric_llm_judge", "rft_eval"}


@pytest.mark.parametrize(("model", "method", "task"), CASES, ids=[f"{m}-{meth}-{t or ''}" for m, meth, t in CASES])
def test_request_equals_sagemaker_v3(aws, monkeypatch, tmp_path, model, method, task) -> None:
    from sagemaker.core.helper import session_helper
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.shapes import S3DataSource, Tag
    from sagemaker.train.configs import (
        Compute,
        InputData,
        Networking,
        OutputDataConfig,
        StoppingCondition,
        TensorBoardOutputConfig,
    )
    from sagemaker.train.model_trainer import ModelTrainer

    # the SDK pins STS to the public regional endpoint, overriding AWS_ENDPOINT_URL: point it at the embedded AWS
    monkeypatch.setattr(session_helper, "sts_regional_endpoint", lambda region: aws.url)
    meth = Method(method)
    needs = eval_task(get_model(model), task).needs_data if meth is Method.EVALUATION else True
    kind = "eval" if meth is Method.EVALUATION else meth.data_format.value
    train = DATA[kind] if needs else None
    if train:
        put_jsonl(train, 40)
    needs_lambda = meth is Method.RFT_LORA or task == "rft_eval"
    spec = JobSpec(
        model=model,
        method=method,
        eval_task=task,
        train_uri=f"s3://novaflow-local/{train}" if train else None,
        reward_lambda_arn=LAMBDA if needs_lambda else None,
        kms_key_id="alias/nova",
        subnets=("subnet-1",),
        security_group_ids=("sg-1",),
        max_runtime_seconds=7200,
        image_uri=CPT_IMAGE if meth is Method.CPT else None,
    )
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []

    def capture(into: list[dict[str, Any]]):
        return lambda params, **_: into.append(json.loads(params["body"]))

    sm = get_client("sagemaker", settings=load_settings())
    hook = capture(ours)
    sm.meta.events.register("before-call.sagemaker.CreateTrainingJob", hook)
    try:
        record = submit_training_job(spec, settings=load_settings())
    finally:
        sm.meta.events.unregister("before-call.sagemaker.CreateTrainingJob", hook)
    sub = prepare_submission(
        follow_data_reasoning(spec.resolve(load_settings()), settings=load_settings()), settings=load_settings()
    )
    request = sub.request()
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(sub.recipe.to_yaml(), encoding="utf-8")

    session = boto3.Session(region_name="us-east-1")
    session.events.register("before-call.sagemaker.CreateTrainingJob", capture(theirs))
    channels = [c["DataSource"]["S3DataSource"] for c in request["InputDataConfig"] if c["ChannelName"] == "train"]
    trainer = ModelTrainer.from_recipe(
        training_recipe=str(recipe_file),
        compute=Compute(instance_type=sub.instance_type, instance_count=sub.instance_count),
        networking=Networking(subnets=["subnet-1"], security_group_ids=["sg-1"]),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=7200),
        output_data_config=OutputDataConfig(
            s3_output_path=spec.resolve(sub.settings).output_uri, kms_key_id="alias/nova"
        ),
        base_job_name="nova-fidelity",
        role=sub.spec.role_arn,
        training_image=request["AlgorithmSpecification"]["TrainingImage"],
        input_data_config=[
            InputData(
                channel_name="train",
                data_source=S3DataSource(
                    s3_uri=channel["S3Uri"],
                    s3_data_type=channel["S3DataType"],
                    s3_data_distribution_type="FullyReplicated",
                ),
            )
            for channel in channels
        ],
        tags=[Tag(key=t["Key"], value=t["Value"]) for t in request["Tags"]],
        sagemaker_session=Session(boto_session=session, default_bucket="novaflow-local"),
    ).with_tensorboard_output_config(TensorBoardOutputConfig(s3_output_path=spec.resolve(sub.settings).output_uri))
    trainer.train(wait=False, logs=False)

    assert len(ours) == 1 and len(theirs) == 1
    assert ours[0]["TrainingJobName"] == record.name
    assert normalise(ours[0]) == normalise(theirs[0])
    assert ours[0]["HyperParameters"]["sagemaker_recipe_local_path"] == "/opt/ml/input/data/recipe/recipe.yaml"


# -- serverless: the trainers with no compute given, and an evaluator's pipeline step ------------------------
GROUP = "novaflow-fidelity"
LAMBDA_NAME = "SageMaker-fidelity-reward"


def _captured(client: Any, operation: str, into: list[dict[str, Any]]) -> Any:
    def hook(params: dict[str, Any], **_: object) -> None:
        into.append(json.loads(params["body"]))

    client.meta.events.register(f"before-call.sagemaker.{operation}", hook)
    return hook


def _reward_lambda() -> str:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("lambda_function.py", "def lambda_handler(event, context):\n    return []\n")
    return str(
        get_client("lambda", settings=load_settings()).create_function(
            FunctionName=LAMBDA_NAME,
            Runtime="python3.12",
            Role="arn:aws:iam::123456789012:role/novaflow-local-sagemaker-execution",
            Handler="lambda_function.lambda_handler",
            Code={"ZipFile": buf.getvalue()},
        )["FunctionArn"]
    )


def _session(aws: Any, monkeypatch: pytest.MonkeyPatch, theirs: list[dict[str, Any]], operation: str) -> Any:
    from sagemaker.core.helper import session_helper
    from sagemaker.core.helper.session_helper import Session

    monkeypatch.setattr(session_helper, "sts_regional_endpoint", lambda region: aws.url)
    session = boto3.Session(region_name="us-east-1")
    session.events.register(
        f"before-call.sagemaker.{operation}", lambda params, **_: theirs.append(json.loads(params["body"]))
    )
    return Session(boto_session=session, default_bucket="novaflow-local")


@pytest.mark.parametrize(
    ("model", "method", "data", "hub_overrides"),
    [
        ("nova-lite-2", "sft_lora", "data/sft/train.jsonl", {"learning_rate": 2e-5, "max_steps": 20}),
        ("nova-micro", "dpo_lora", "data/dpo/train.jsonl", {"adam_beta": 0.05, "max_epochs": 1}),
        ("nova-lite-2", "rft_lora", "data/rft/rft.jsonl", {"learning_rate": 5e-5, "max_steps": 6}),
    ],
)
def test_serverless_request_equals_sagemaker_v3(aws, monkeypatch, model, method, data, hub_overrides) -> None:
    from sagemaker.core.shapes import StoppingCondition, VpcConfig
    from sagemaker.train import DPOTrainer, RLVRTrainer, SFTTrainer

    put_jsonl(data, 40)
    reward = _reward_lambda() if method == "rft_lora" else None
    spec = JobSpec(
        platform="SERVERLESS",
        model=model,
        method=method,
        train_uri=f"s3://novaflow-local/{data}",
        overrides=hub_overrides,
        reward_lambda_arn=reward,
        model_package_group=GROUP,
        accept_eula=True,
        kms_key_id="alias/nova",
        subnets=("subnet-1",),
        security_group_ids=("sg-1",),
        max_runtime_seconds=7200,
    )
    ours: list[dict[str, Any]] = []
    sm = get_client("sagemaker", settings=load_settings())
    hook = _captured(sm, "CreateTrainingJob", ours)
    try:
        record = submit_training_job(spec, settings=load_settings())
    finally:
        sm.meta.events.unregister("before-call.sagemaker.CreateTrainingJob", hook)
    assert len(ours) == 1 and ours[0]["TrainingJobName"] == record.name
    request = ours[0]

    theirs: list[dict[str, Any]] = []
    trainer_class = {"sft_lora": SFTTrainer, "dpo_lora": DPOTrainer, "rft_lora": RLVRTrainer}[method]
    extra: dict[str, Any] = {}
    if method == "rft_lora":  # the evaluator novaflow registered for the Lambda (v3 would register its own)
        extra = {
            "custom_reward_function": request["ServerlessJobConfig"]["EvaluatorArn"],
            "skip_reward_validation": True,
        }
    trainer = trainer_class(
        model=get_model(model).hub_name,
        training_type="LORA",
        model_package_group=GROUP,
        training_dataset=spec.train_uri,
        s3_output_path=spec.resolve(load_settings()).output_uri,
        kms_key_id="alias/nova",
        networking=VpcConfig(security_group_ids=["sg-1"], subnets=["subnet-1"]),
        accept_eula=True,
        stopping_condition=StoppingCondition(max_runtime_in_seconds=7200),
        disable_output_compression=True,
        sagemaker_session=_session(aws, monkeypatch, theirs, "CreateTrainingJob"),
        role=load_settings().role_arn,
        tags=[{"key": t["Key"], "value": t["Value"]} for t in request["Tags"][2:]],
        **extra,
    )
    for key, value in {**hub_overrides, "name": record.name}.items():
        setattr(trainer.hyperparameters, key, value)
    trainer.train(wait=False)

    assert len(theirs) == 1
    assert {k: v for k, v in request.items() if k != "TrainingJobName"} == {
        k: v for k, v in theirs[0].items() if k != "TrainingJobName"
    }
    assert "AlgorithmSpecification" not in request and "ResourceConfig" not in request


def test_serverless_evaluation_equals_the_sagemaker_v3_evaluator_step(aws, monkeypatch) -> None:
    """v3 runs an evaluation as a SageMaker pipeline whose training step carries the CreateTrainingJob arguments
    (without a name: the pipeline names the job); novaflow creates that job directly. The step is compared with
    novaflow's request minus the name and the tags (v3 tags the pipeline, which hands them to its jobs)."""
    from sagemaker.train.evaluate import CustomScorerEvaluator, base_evaluator

    put_jsonl("data/eval/gen_qa.jsonl", 40)
    spec = JobSpec(
        platform="SERVERLESS",
        model="nova-lite-2",
        method="evaluation",
        eval_task="gen_qa",
        train_uri="s3://novaflow-local/data/eval/gen_qa.jsonl",
        reward_lambda_arn=_reward_lambda(),
        accept_eula=True,
        kms_key_id="alias/nova",
    )
    ours: list[dict[str, Any]] = []
    sm = get_client("sagemaker", settings=load_settings())
    hook = _captured(sm, "CreateTrainingJob", ours)
    try:
        submit_training_job(spec, settings=load_settings())
    finally:
        sm.meta.events.unregister("before-call.sagemaker.CreateTrainingJob", hook)

    # the lineage artifact v3 records for the base model is not part of the job (and moto cannot create it)
    monkeypatch.setattr(
        base_evaluator.BaseEvaluator,
        "_get_or_create_artifact_arn",
        lambda self, source_uri, region: "arn:aws:sagemaker:us-east-1:123456789012:artifact/novaflow-fidelity",
    )
    pipelines: list[dict[str, Any]] = []
    evaluator = CustomScorerEvaluator(
        evaluator=ours[0]["ServerlessJobConfig"]["EvaluatorArn"],
        dataset=spec.train_uri,
        model=get_model("nova-lite-2").hub_name,
        s3_output_path=spec.resolve(load_settings()).output_uri,
        kms_key_id="alias/nova",
        mlflow_resource_arn="arn:aws:sagemaker:us-east-1:123456789012:mlflow-app/app-fidelity",
        sagemaker_session=_session(aws, monkeypatch, pipelines, "CreatePipeline"),
        role=load_settings().role_arn,
        region="us-east-1",
    )
    evaluator.evaluate()
    steps = json.loads(pipelines[0]["PipelineDefinition"])["Steps"]
    assert [s["Name"] for s in steps] == ["EvaluateBaseModel"]
    request = {k: v for k, v in ours[0].items() if k not in ("TrainingJobName", "Tags")}
    assert request == steps[0]["Arguments"]


MLFLOW_APP = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-app/app-fidelity"


@pytest.mark.parametrize("overrides", [{"learning_rate": 5e-5, "max_steps": 6, "group_size": 8}, {}])
def test_agentic_rft_create_job_equals_the_multi_turn_rl_trainer(aws, monkeypatch, overrides) -> None:
    """v3's ``MultiTurnRLTrainer`` and novaflow send the same ``CreateJob``: category, role, schema version, tags
    and, byte for byte, the job config document (agent, channel, output, groups, base model, EULA, MLflow, VPC and
    only the hyperparameters that differ from the MTRL recipe's defaults). The names differ by design: v3 stamps
    the time, novaflow hashes the spec."""
    from sagemaker.core.shapes import VpcConfig
    from sagemaker.train.multi_turn_rl_trainer import MultiTurnRLTrainer

    from novaflow.jobs.agent_rft import checkpoint_group_name

    get_client("s3", settings=load_settings()).put_object(
        Bucket="novaflow-local", Key="data/mtrl/train.jsonl", Body=b'{"id": "t1", "metadata": {"prompt": "hi"}}\n'
    )
    agent = _reward_lambda()
    spec = JobSpec(
        platform="SERVERLESS",
        model="nova-lite-2",
        method="rft_multiturn",
        train_uri="s3://novaflow-local/data/mtrl/train.jsonl",
        agent_arn=agent,
        overrides=overrides,
        model_package_group=GROUP,
        accept_eula=True,
        kms_key_id="alias/nova",
        subnets=("subnet-1",),
        security_group_ids=("sg-1",),
        mlflow_tracking_uri=MLFLOW_APP,
        mlflow_experiment_name="agents",
        mlflow_run_name="run-1",
    )
    ours: list[dict[str, Any]] = []
    sm = get_client("sagemaker", settings=load_settings())
    hook = _captured(sm, "CreateJob", ours)
    try:
        record = submit_training_job(spec, settings=load_settings())
    finally:
        sm.meta.events.unregister("before-call.sagemaker.CreateJob", hook)
    assert len(ours) == 1 and ours[0]["JobName"] == record.name

    theirs: list[dict[str, Any]] = []
    trainer = MultiTurnRLTrainer(
        model=get_model("nova-lite-2").hub_name,
        agent_env=agent,
        training_dataset=spec.train_uri,
        mlflow_app_arn=MLFLOW_APP,
        mlflow_experiment_name="agents",
        mlflow_run_name="run-1",
        s3_output_path=spec.resolve(load_settings()).output_uri,
        output_model_package_group=GROUP,
        intermediate_checkpoint_model_package_group=checkpoint_group_name(spec),
        networking=VpcConfig(security_group_ids=["sg-1"], subnets=["subnet-1"]),
        kms_key_arn="alias/nova",
        accept_eula=True,
        sagemaker_session=_session(aws, monkeypatch, theirs, "CreateJob"),
        role=load_settings().role_arn,
        tags=[{"key": t["Key"], "value": t["Value"]} for t in ours[0]["Tags"][2:]],
    )
    for key, value in overrides.items():
        setattr(trainer.hyperparameters, key, value)
    trainer.train(wait=False)

    assert len(theirs) == 1
    assert json.loads(ours[0]["JobConfigDocument"]) == json.loads(theirs[0]["JobConfigDocument"])
    assert {k: v for k, v in ours[0].items() if k != "JobName"} == {
        k: v for k, v in theirs[0].items() if k != "JobName"
    }
    document = json.loads(ours[0]["JobConfigDocument"])
    assert document["AgentConfig"] == {"CustomAgentLambdaConfig": {"LambdaArn": agent}}
    sent = {k: str(v) for k, v in sorted(overrides.items())}
    assert document["TrainingConfig"].get("HyperParameters") == (sent or None)
    backend = get_backend("SERVERLESS", method="rft_multiturn", settings=load_settings())
    state = backend.describe(record.name)
    if state is not None and not state.status.terminal:  # the request was the point, not the job
        backend.stop(record.name)


# -- inference components: v3's ModelBuilder deploying a Nova model with ResourceRequirements ----------------
def test_inference_component_requests_equal_sagemaker_v3(aws, monkeypatch) -> None:
    """v3's own ``_deploy_model_customization`` (the path ``ModelBuilder.deploy`` takes for a Nova model given
    ``ResourceRequirements``) runs against the embedded AWS next to novaflow's ``deploy_components``; the
    ``CreateEndpointConfig`` and ``CreateInferenceComponent`` bodies are equal once the names each side derives
    (endpoint config, model) and novaflow's ownership tags are set aside."""
    import types

    from botocore.client import BaseClient
    from sagemaker.core.helper import session_helper
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.inference_config import ResourceRequirements
    from sagemaker.serve.model_builder import ModelBuilder

    from novaflow.backoff import Backoff
    from novaflow.deploy.components import ComponentEndpointSpec, ComponentSpec, component_resources, deploy_components
    from novaflow.deploy.environment import EndpointEnvironment

    monkeypatch.setattr(session_helper, "sts_regional_endpoint", lambda region: aws.url)
    sent: dict[str, list[dict[str, Any]]] = {"CreateEndpointConfig": [], "CreateInferenceComponent": []}
    make_call = BaseClient._make_api_call

    def record(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation in sent:
            sent[operation].append(json.loads(json.dumps(params)))
        return make_call(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    checkpoint = "s3://customer-escrow-123456789012-smtj-fidelity/job/outputs/checkpoints"
    role = "arn:aws:iam::123456789012:role/novaflow-local-sagemaker-execution"
    endpoint = ComponentEndpointSpec(
        endpoint_name="nova-ab", instance_type="ml.g6.48xlarge", instance_count=2, role_arn=role
    )
    component = ComponentSpec(
        component_name="nova-ab-sft",
        checkpoint_uri=checkpoint,
        environment=EndpointEnvironment(context_length=8000, max_concurrency=8),
    )
    deploy_components(
        endpoint,
        [component],
        backoff=Backoff(initial=0.01, maximum=0.01, deadline=30),
        sleep=lambda s: None,
        settings=load_settings(),
    )
    ours = {k: v[-1] for k, v in sent.items()}

    resources = component_resources(endpoint, component)
    builder = ModelBuilder.__new__(ModelBuilder)  # the fields v3's deploy reads, as its build() leaves them
    builder.sagemaker_session = Session(
        boto_session=boto3.Session(region_name="us-east-1"), default_bucket="novaflow-local"
    )
    builder.instance_type = endpoint.instance_type
    builder.role_arn = role
    builder.model = checkpoint
    builder._enable_network_isolation = False
    builder._tags = None
    builder.built_model = types.SimpleNamespace(model_name=component.model_name, enable_network_isolation=True)
    builder._is_nova_model = lambda: True
    builder._fetch_model_package = lambda: None  # a raw checkpoint: no package, so no LoRA adapter path
    builder._deploy_model_customization(
        endpoint_name="nova-ab-v3",
        initial_instance_count=endpoint.instance_count,
        inference_component_name="nova-ab-sft-v3",
        inference_config=ResourceRequirements(
            requests={
                "num_accelerators": resources["NumberOfAcceleratorDevicesRequired"],
                "num_cpus": resources["NumberOfCpuCoresRequired"],
                "memory": resources["MinMemoryRequiredInMb"],
                "copies": component.copies,
            }
        ),
    )
    theirs = {k: v[-1] for k, v in sent.items()}

    def config(body: dict[str, Any], endpoint_name: str) -> dict[str, Any]:
        out = {k: v for k, v in body.items() if k not in ("Tags", "EndpointConfigName")}
        out["ProductionVariants"] = [
            {**v, "VariantName": v["VariantName"].replace(endpoint_name, "<ep>")} for v in out["ProductionVariants"]
        ]
        return out

    def component_body(body: dict[str, Any], endpoint_name: str) -> dict[str, Any]:
        out = {k: v for k, v in body.items() if k != "Tags"}
        return {
            **out,
            "InferenceComponentName": "<ic>",
            "EndpointName": out["EndpointName"].replace(endpoint_name, "<ep>"),
            "VariantName": out["VariantName"].replace(endpoint_name, "<ep>"),
        }

    assert config(ours["CreateEndpointConfig"], "nova-ab") == config(theirs["CreateEndpointConfig"], "nova-ab-v3")
    assert component_body(ours["CreateInferenceComponent"], "nova-ab") == component_body(
        theirs["CreateInferenceComponent"], "nova-ab-v3"
    )
    assert ours["CreateInferenceComponent"]["Specification"]["ModelName"] == component.model_name
