"""The ECS and Kubernetes deployments of ``prefect.yaml`` against the base job templates the workers ship.

Offline: the variables are rendered the way ``prefect deploy`` renders them (``{{ $NAME }}`` from the deployer's
environment), validated the way the server validates a flow run's job variables, then turned into the job
configuration by the worker's own class and prepared for a flow run, so what is checked is the ECS task
definition / Kubernetes Job manifest the worker would submit. The templates' schemas accept unknown keys, so a
misspelt job variable would be silently ignored by Prefect; here it fails.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.schemas.objects import FlowRun
from prefect.utilities.schema_tools import ValidationError, validate
from prefect.utilities.templating import apply_values
from prefect_aws.workers.ecs_worker import ECSJobConfiguration, ECSWorker
from prefect_kubernetes.worker import KubernetesWorker, KubernetesWorkerJobConfiguration

pytestmark = pytest.mark.slow  # renders job variables through Prefect's ECS and Kubernetes workers (4 s of imports)

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
DEPLOY_ENV = {
    "NOVAFLOW_IMAGE": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/novaflow:0.1.0",
    "NOVAFLOW_BUCKET": "team-novaflow-data",
    "NOVAFLOW_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/novaflow-sagemaker-execution",
    "NOVAFLOW_REGION": "us-east-1",
    "NOVAFLOW_TASK_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/novaflow-flow-runs",
    "NOVAFLOW_ECS_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/novaflow-ecs-execution",
}
NOVAFLOW_ENV = {
    "NOVAFLOW_BUCKET": "team-novaflow-data",
    "NOVAFLOW_ROLE_ARN": DEPLOY_ENV["NOVAFLOW_ROLE_ARN"],
    "NOVAFLOW_REGION": "us-east-1",
    "PREFECT_DEFAULT_RESULT_STORAGE_BLOCK": "s3-bucket/novaflow-results",
}
NO_API = object()  # from_template_and_values would use it only to resolve block or variable references


def _deployment(name: str) -> dict[str, Any]:
    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    [found] = [d for d in deployments if d["name"] == name and d["entrypoint"] == "flows/end_to_end.py:end_to_end"]
    return found


def _rendered(name: str, template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for key, value in DEPLOY_ENV.items():
        monkeypatch.setenv(key, value)
    job_variables = apply_values(_deployment(name)["work_pool"]["job_variables"], {}, remove_notset=False)
    assert "{{" not in json.dumps(job_variables), "a placeholder the README does not list"
    _check(job_variables, template)
    return job_variables


def _check(job_variables: dict[str, Any], template: dict[str, Any]) -> None:
    unknown = set(job_variables) - set(template["variables"]["properties"])
    if unknown:
        raise ValidationError(f"not variables of the shipped template: {sorted(unknown)}")
    validate(job_variables, template["variables"], raise_on_error=True, allow_none_with_default=True)


def _prepared(config_class: Any, template: dict[str, Any], job_variables: dict[str, Any]) -> Any:
    config = asyncio.run(config_class.from_template_and_values(template, job_variables, client=NO_API))
    config.prepare_for_flow_run(FlowRun(flow_id=uuid.uuid4(), name="case-study-run"))
    return config


def test_the_ecs_deployment_renders_a_task_with_the_image_role_sizes_and_settings(monkeypatch) -> None:
    template = ECSWorker.get_default_base_job_template()
    config = _prepared(ECSJobConfiguration, template, _rendered("ecs", template, monkeypatch))

    assert _deployment("ecs")["work_pool"]["name"] == "novaflow-ecs"
    assert config.task_definition["containerDefinitions"] == [{"image": DEPLOY_ENV["NOVAFLOW_IMAGE"]}]
    assert (config.task_definition["cpu"], config.task_definition["memory"]) == (1024, 4096)
    assert config.task_definition["executionRoleArn"] == DEPLOY_ENV["NOVAFLOW_ECS_EXECUTION_ROLE_ARN"]
    overrides = config.task_run_request["overrides"]
    assert overrides["taskRoleArn"] == DEPLOY_ENV["NOVAFLOW_TASK_ROLE_ARN"]
    assert config.task_run_request["launchType"] == "FARGATE"
    assert config.configure_cloudwatch_logs is True
    assert config.command == "prefect flow-run execute"
    assert {k: v for k, v in config.env.items() if k in NOVAFLOW_ENV} == NOVAFLOW_ENV
    # No credentials travel in the task: the worker and the flow run use their roles.
    assert not config.aws_credentials.aws_access_key_id and not config.aws_credentials.aws_secret_access_key


def test_the_kubernetes_deployment_renders_a_job_with_the_image_account_and_resources(monkeypatch) -> None:
    template = KubernetesWorker.get_default_base_job_template()
    config = _prepared(KubernetesWorkerJobConfiguration, template, _rendered("kubernetes", template, monkeypatch))

    assert _deployment("kubernetes")["work_pool"]["name"] == "novaflow-k8s"
    pod = config.job_manifest["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == DEPLOY_ENV["NOVAFLOW_IMAGE"]
    assert container["args"] == ["prefect", "flow-run", "execute"]
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "4Gi"},
        "limits": {"cpu": "1", "memory": "4Gi"},
    }
    assert pod["serviceAccountName"] == "novaflow-flow-runs"
    assert config.job_manifest["metadata"]["namespace"] == "novaflow"
    env = {item["name"]: item["value"] for item in container["env"]}
    assert {k: v for k, v in env.items() if k in NOVAFLOW_ENV} == NOVAFLOW_ENV


@pytest.mark.parametrize("name", ["ecs", "kubernetes"])
def test_production_deployments_run_from_the_image_working_directory(name) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    [workdir] = re.findall(r"^WORKDIR\s+(\S+)\s*$", dockerfile, flags=re.M)
    deployment = _deployment(name)
    assert deployment["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": workdir}}]


def test_every_deploy_time_variable_is_documented() -> None:
    text = json.dumps(yaml.safe_load((ROOT / "prefect.yaml").read_text()))  # the values, not the comments
    placeholders = set(re.findall(r"\{\{\s*\$(\w+)\s*\}\}", text))
    assert placeholders == set(DEPLOY_ENV)
    readme = (ROOT / "README.md").read_text()
    production = readme[readme.index("## Running in production") :]
    assert [name for name in sorted(placeholders) if f"`{name}`" not in production] == []


def test_a_misspelt_or_mistyped_job_variable_is_caught(monkeypatch) -> None:
    template = ECSWorker.get_default_base_job_template()
    good = _rendered("ecs", template, monkeypatch)
    with pytest.raises(ValidationError, match=r"not variables of the shipped template: \['memroy'\]"):
        _check({**good, "memroy": 4096}, template)
    with pytest.raises(ValidationError, match="Validation failed for field 'cpu'"):
        _check({**good, "cpu": "1 vCPU"}, template)
