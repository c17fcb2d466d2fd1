"""A SageMaker MLflow ARN goes into the recipes' run.mlflow_* fields, and never changes which job is which."""

from __future__ import annotations

import yaml

from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission
from novaflow.settings import NovaflowSettings

ARN = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/team"
SETTINGS = NovaflowSettings(bucket="novaflow-test", role_arn="arn:aws:iam::123456789012:role/r")


def _spec(method: str, **fields: object) -> JobSpec:
    extra = (
        {"reward_lambda_arn": "arn:aws:lambda:us-east-1:123456789012:function:SageMaker-r"} if "rft" in method else {}
    )
    return JobSpec(model="nova-lite-2", method=method, train_uri="s3://b/d/train.jsonl", **extra, **fields)  # type: ignore[arg-type]


def test_sft_and_eval_recipes_carry_the_tracking_server_with_the_job_name_as_default_names() -> None:
    for method in ("sft_lora", "evaluation"):
        sub = prepare_submission(_spec(method, mlflow_tracking_uri=ARN, mlflow_experiment_name="novaflow"), SETTINGS)
        run = yaml.safe_load(sub.recipe_yaml())["run"]
        assert (run["mlflow_tracking_uri"], run["mlflow_experiment_name"], run["mlflow_run_name"]) == (
            ARN,
            "novaflow",
            sub.job_name,
        )


def test_without_tracking_the_fields_stay_empty_as_in_the_hub_recipe() -> None:
    run = yaml.safe_load(prepare_submission(_spec("sft_lora"), SETTINGS).recipe_yaml())["run"]
    assert (run["mlflow_tracking_uri"], run["mlflow_experiment_name"], run["mlflow_run_name"]) == ("", "", "")


def test_the_smtj_rft_recipe_has_no_mlflow_fields_and_gets_none() -> None:
    run = yaml.safe_load(prepare_submission(_spec("rft_lora", mlflow_tracking_uri=ARN), SETTINGS).recipe_yaml())["run"]
    assert not any(key.startswith("mlflow") for key in run)


def test_tracking_does_not_change_the_job_name() -> None:
    """A re-run with tracking switched on must attach to the job it already paid for, not start a twin."""
    plain = _spec("sft_lora").resolve(SETTINGS)
    tracked = _spec("sft_lora", mlflow_tracking_uri=ARN, mlflow_run_name="x").resolve(SETTINGS)
    assert plain.job_name() == tracked.job_name()
