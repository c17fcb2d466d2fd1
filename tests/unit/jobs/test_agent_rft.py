"""The AgentRFT CreateJob request, built offline from fixed references, and what DescribeJob is read into."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import botocore.session
import pytest
from botocore.stub import Stubber

from novaflow.errors import RecipeError
from novaflow.jobs.agent_rft import AgentRefs, AgentRFTBackend, agent_config, build_agent_rft_request
from novaflow.jobs.request import validate_request
from novaflow.jobs.serverless import ServerlessRefs
from novaflow.jobs.spec import JobSpec
from novaflow.settings import load_settings

BASE = "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/nova-textgeneration-lite-v2/1.0.0"
GROUP = "arn:aws:sagemaker:us-east-1:111122223333:model-package-group/novaflow-golden-nova"
CHECKPOINTS = (
    "arn:aws:sagemaker:us-east-1:111122223333:model-package-group/nova-textgeneration-lite-v2-mtrl-checkpoint-mpg"
)
LAMBDA = "arn:aws:lambda:us-east-1:111122223333:function:SageMaker-novaflow-agent-game:3"
RUNTIME = "arn:aws:bedrock-agentcore:us-east-1:111122223333:runtime/game_agent-AbCdEfGhIj"


def _spec(**changes: object) -> JobSpec:
    values: dict[str, object] = {
        "platform": "SERVERLESS",
        "model": "nova-lite-2",
        "method": "rft_multiturn",
        "train_uri": "s3://golden-bucket/nf/data/mtrl/train.jsonl",
        "output_uri": "s3://golden-bucket/nf/jobs",
        "role_arn": "arn:aws:iam::111122223333:role/nova",
        "region": "us-east-1",
        "agent_arn": LAMBDA,
        "accept_eula": True,
        "overrides": {"max_steps": 20, "learning_rate": 1e-5, "group_size": 8},
    }
    values.update(changes)
    return JobSpec(**values)  # type: ignore[arg-type]


def _request(spec: JobSpec) -> dict[str, object]:
    refs = ServerlessRefs(BASE, True, GROUP)
    return build_agent_rft_request(spec, refs, AgentRefs(CHECKPOINTS), job_name="nova-lite-2-rft-multiturn-0123")


def test_the_request_names_the_agent_data_groups_base_model_and_only_changed_hyperparameters() -> None:
    request = _request(_spec())
    document = json.loads(str(request.pop("JobConfigDocument")))
    assert request == {
        "JobName": "nova-lite-2-rft-multiturn-0123",
        "JobCategory": "AgentRFT",
        "RoleArn": "arn:aws:iam::111122223333:role/nova",
        "JobConfigSchemaVersion": "1.0.0",
        "Tags": [
            {"Key": "sagemaker-sdk:jumpstart-model-id", "Value": "nova-textgeneration-lite-v2"},
            {"Key": "sagemaker-sdk:jumpstart-hub-name", "Value": "SageMakerPublicHub"},
            *request["Tags"][2:],  # type: ignore[index]
        ],
    }
    assert document == {
        "AgentConfig": {"CustomAgentLambdaConfig": {"LambdaArn": LAMBDA}},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://golden-bucket/nf/data/mtrl/train.jsonl"}
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://golden-bucket/nf/jobs"},
        "ModelPackageConfig": {
            "OutputModelPackageGroupArn": GROUP,
            "IntermediateCheckpointModelPackageGroupArn": CHECKPOINTS,
        },
        # learning_rate 1e-5 is the recipe's default: not sent
        "TrainingConfig": {
            "BaseModelArn": BASE,
            "AcceptEula": True,
            "HyperParameters": {"group_size": "8", "max_steps": "20"},
        },
    }
    session = botocore.session.get_session()
    client = session.create_client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    validate_request(client, "CreateJob", {**request, "JobConfigDocument": json.dumps(document)})


def test_an_agentcore_runtime_is_named_with_the_default_qualifier() -> None:
    assert agent_config(RUNTIME) == {"BedrockAgentCoreConfig": {"AgentRuntimeArn": RUNTIME, "Qualifier": "DEFAULT"}}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"agent_arn": "my_agent.py"}, "agent 'my_agent.py' is neither a Lambda function ARN nor a Bedrock AgentCore"),
        ({"overrides": {"group_size": 1}}, "group_size"),
        ({"overrides": {"kl_coef": 0.1}}, "unknown serverless hyperparameter 'kl_coef'"),
        ({"agent_arn": None}, "A multi-turn RFT job needs its agent"),
    ],
)
def test_what_cannot_be_sent_is_refused_in_one_line(changes: dict[str, object], message: str) -> None:
    with pytest.raises(RecipeError) as caught:
        _request(_spec(**changes))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_describe_reads_the_output_package_and_tokens_from_service_output() -> None:
    session = botocore.session.get_session()
    client = session.create_client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    document = {
        "OutputDataConfig": {"S3OutputPath": "s3://b/jobs"},
        "ServiceOutput": {
            "OutputModelPackageArn": "arn:aws:sagemaker:us-east-1:111122223333:model-package/g/4",
            "BillableTokenUsage": {"TrainTokenCount": 300, "PrefillTokenCount": 200, "SampleTokenCount": 100},
        },
    }
    when = datetime(2026, 12, 7, tzinfo=UTC)
    with Stubber(client) as stub:
        stub.add_response(
            "describe_job",
            {
                "JobName": "j",
                "JobArn": "arn:aws:sagemaker:us-east-1:111122223333:job/AgentRFT/j",
                "RoleArn": "arn:aws:iam::111122223333:role/nova",
                "JobCategory": "AgentRFT",
                "JobConfigSchemaVersion": "1.0.0",
                "JobConfigDocument": json.dumps(document),
                "CreationTime": when,
                "LastModifiedTime": when,
                "JobStatus": "Completed",
                "SecondaryStatus": "Completed",
                "SecondaryStatusTransitions": [],
            },
            {"JobName": "j", "JobCategory": "AgentRFT"},
        )
        state = AgentRFTBackend(client=client, settings=load_settings()).describe("j")
    assert state is not None
    assert (state.status.value, state.output_uri, state.billable_tokens) == ("Completed", "s3://b/jobs", 600)
    assert state.output_model_package_arn == "arn:aws:sagemaker:us-east-1:111122223333:model-package/g/4"
