"""Small, self-contained Nova scenarios for the emulator's own tests and benchmark.

The jobs layer (``novaflow.jobs``) is the product's way to submit; this module submits the raw CreateTrainingJob
request (docs/training-jobs.md#the-createtrainingjob-request) directly, so the emulator can be tested and timed
without depending on another area, and turns the synthetic Stack Overflow data into the three dataset formats
(docs/data-formats.md).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml

from novaflow.aws import get_client, split_s3_uri
from novaflow.settings import load_settings

IMAGE = "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:SM-TJ-SFT-V2-latest"


def _client(service: str) -> Any:
    """A client of the embedded AWS the environment points at (these helpers stand in for a user's own calls)."""
    return get_client(service, load_settings())


def load_questions(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def converse_row(system: str, query: str, answer: str) -> dict[str, Any]:
    return {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": system}],
        "messages": [
            {"role": "user", "content": [{"text": query}]},
            {"role": "assistant", "content": [{"text": answer}]},
        ],
    }


def gen_qa_row(system: str, query: str, answer: str, row_id: str) -> dict[str, Any]:
    return {"query": query, "response": answer, "system": system, "metadata": json.dumps({"id": row_id})}


def rft_row(system: str, query: str, answer: str, row_id: str) -> dict[str, Any]:
    return {
        "id": row_id,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": query}],
        "reference_answer": answer,
    }


def dpo_row(system: str, query: str, preferred: str, rejected: str) -> dict[str, Any]:
    """A preference pair in the Nova DPO format: the last message holds the two candidates."""
    return {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": system}],
        "messages": [
            {"role": "user", "content": [{"text": query}]},
            {
                "role": "assistant",
                "candidates": [
                    {"content": [{"text": preferred}], "preferenceLabel": "preferred"},
                    {"content": [{"text": rejected}], "preferenceLabel": "non-preferred"},
                ],
            },
        ],
    }


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def put(uri: str, body: bytes) -> str:
    bucket, key = split_s3_uri(uri)
    _client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return uri


def run_block(
    name: str, model_name_or_path: str, *, model_type: str = "amazon.nova-2-lite-v1:0:256k", **extra: Any
) -> dict[str, Any]:
    """The ``run`` block every recipe of a scenario starts with (one replica, data from the channel)."""
    return {
        "name": name,
        "model_type": model_type,
        "model_name_or_path": model_name_or_path,
        "replicas": 1,
        "data_s3_path": "",
        **extra,
    }


def sft_recipe(name: str, max_steps: int = 100, batch: int = 32, lr: float = 1e-5) -> dict[str, Any]:
    return {
        "run": run_block(name, "nova-lite-2/prod"),
        "training_config": {
            "max_steps": max_steps,
            "global_batch_size": batch,
            "lr_scheduler": {"warmup_steps": 10, "min_lr": 1e-6},
            "optim_config": {"lr": lr, "adam_beta1": 0.9, "adam_beta2": 0.95},
        },
    }


def eval_recipe(name: str, model_name_or_path: str) -> dict[str, Any]:
    return {
        "run": run_block(name, model_name_or_path),
        "evaluation": {"task": "gen_qa", "strategy": "gen_qa", "metric": "all"},
        "inference": {"max_new_tokens": 8196, "top_k": -1, "top_p": 1.0, "temperature": 0},
    }


def rft_recipe(
    name: str,
    model_name_or_path: str,
    lambda_arn: str,
    max_steps: int = 8,
    generations: int = 4,
    temperature: float = 1.0,
    kl: float = 0.001,
    batch: int = 64,
) -> dict[str, Any]:
    return {
        "run": run_block(name, model_name_or_path, reward_lambda_arn=lambda_arn),
        "training_config": {
            "global_batch_size": batch,
            "max_length": 8192,
            "rollout": {
                "advantage_strategy": {"number_generation": generations},
                "generator": {"max_new_tokens": 64, "temperature": temperature},
                "rewards": {"api_endpoint": {"lambda_arn": lambda_arn}},
            },
            "trainer": {"kl_loss_coef": kl, "max_steps": max_steps, "optim_config": {"lr": 1e-4}},
        },
    }


def dpo_recipe(
    name: str, model_name_or_path: str, max_epochs: int = 2, batch: int = 64, beta: float = 0.1
) -> dict[str, Any]:
    return {
        "run": run_block(name, model_name_or_path, model_type="amazon.nova-micro-v1:0:128k"),
        "training_config": {
            "global_batch_size": batch,
            "trainer": {"max_epochs": max_epochs},
            "model": {"dpo_cfg": {"beta": beta}, "optim": {"lr": 1e-5, "sched": {"warmup_steps": 2, "min_lr": 1e-6}}},
        },
    }


def cpt_recipe(name: str, max_steps: int = 20, batch: int = 64) -> dict[str, Any]:
    return {
        "run": run_block(name, "nova-lite-2/prod"),
        "training_config": {
            "task_type": "cpt",
            "global_batch_size": batch,
            "trainer": {"max_steps": max_steps},
            "optim": {"lr": 1e-5, "sched": {"warmup_steps": 2, "min_lr": 1e-6}},
        },
    }


def submit(
    name: str,
    recipe: dict[str, Any],
    train_uri: str,
    output_uri: str,
    role_arn: str,
    data_type: str = "Converse",
    image: str = IMAGE,
) -> str:
    """The CreateTrainingJob request for ``recipe`` (recipe channel + train channel)."""
    recipe_uri = put(
        f"{output_uri.rstrip('/')}/recipes/{name}/recipe.yaml", yaml.safe_dump(recipe, sort_keys=False).encode()
    )
    model = recipe["run"]["model_name_or_path"]
    hyper = {
        "sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/recipe.yaml",
        ("base_model_location" if model.startswith("s3://") else "base_model"): model,
    }
    if recipe["run"].get("reward_lambda_arn"):
        hyper["reward_lambda_arn"] = recipe["run"]["reward_lambda_arn"]
    response = _client("sagemaker").create_training_job(
        TrainingJobName=name,
        RoleArn=role_arn,
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
        HyperParameters=hyper,
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3Uri": train_uri,
                        "S3DataType": data_type,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            },
            {
                "ChannelName": "recipe",
                "DataSource": {
                    "S3DataSource": {
                        "S3Uri": recipe_uri,
                        "S3DataType": "S3Prefix",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            },
        ],
        OutputDataConfig={"S3OutputPath": output_uri},
        ResourceConfig={"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1, "VolumeSizeInGB": 100},
        StoppingCondition={"MaxRuntimeInSeconds": 86400},
    )
    return str(response["TrainingJobArn"])


def wait(name: str, timeout: float = 60.0, poll: float = 0.1) -> dict[str, Any]:
    import time

    sm = _client("sagemaker")
    deadline = time.monotonic() + timeout
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in {"Completed", "Failed", "Stopped"} or time.monotonic() > deadline:
            return job
        time.sleep(poll)


def job_log(name: str) -> list[str]:
    """Every CloudWatch log message of training job ``name``'s first stream, in order."""
    logs = _client("logs")
    group = "/aws/sagemaker/TrainingJobs"
    stream = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{name}/")["logStreams"][0]
    events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True)
    return [e["message"] for e in events["events"]]


PUBLIC_MODEL_ARN = "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/{name}/1.0.0"


def submit_serverless(
    name: str,
    *,
    model: str,
    hyperparameters: dict[str, str],
    output_uri: str,
    role_arn: str,
    train_uri: str | None = None,
    data_type: str = "Converse",
    technique: str | None = "SFT",
    peft: bool = True,
    group_arn: str | None = None,
    source_package: str | None = None,
    evaluation_type: str | None = None,
    evaluator_arn: str | None = None,
    accept_eula: bool = True,
) -> str:
    """A CreateTrainingJob without instances (serverless customization), as sagemaker v3 sends it."""
    config: dict[str, Any] = {"BaseModelArn": PUBLIC_MODEL_ARN.format(name=model), "AcceptEula": accept_eula}
    if evaluation_type:
        config.update({"JobType": "Evaluation", "EvaluationType": evaluation_type})
    else:
        config.update({"JobType": "FineTuning", "CustomizationTechnique": technique})
        if peft:
            config["Peft"] = "LORA"
    if evaluator_arn:
        config["EvaluatorArn"] = evaluator_arn
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": role_arn,
        "OutputDataConfig": {"S3OutputPath": output_uri, "CompressionType": "NONE"},
        "ServerlessJobConfig": config,
        "HyperParameters": hyperparameters,
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
    }
    if train_uri:
        source: dict[str, Any] = {"S3Uri": train_uri, "S3DataType": data_type}
        request["InputDataConfig"] = [{"ChannelName": "train", "DataSource": {"S3DataSource": source}}]
    if group_arn:
        request["ModelPackageConfig"] = {"ModelPackageGroupArn": group_arn}
        if source_package:
            request["ModelPackageConfig"]["SourceModelPackageArn"] = source_package
    return str(_client("sagemaker").create_training_job(**request)["TrainingJobArn"])
