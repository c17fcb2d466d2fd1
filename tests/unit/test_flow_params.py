"""The new parameters render in the Prefect form (the deployment's parameter schema) with their descriptions."""

from __future__ import annotations

import pytest
from prefect.utilities.callables import parameter_schema

from flows.end_to_end import end_to_end, plan_checks
from flows.params import EndToEndParams, RewardParams
from novaflow.errors import EvaluationError
from novaflow.settings import load_settings


def test_reward_evaluation_and_gate_settings_are_in_the_form() -> None:
    schema = parameter_schema(end_to_end.fn).model_dump()
    definitions = schema["definitions"]
    reward = definitions["RewardParams"]["properties"]
    assert {"source", "function_arn", "function_name", "labels", "verify_rows"} <= set(reward)
    assert "lambda_handler(event, context)" in reward["source"]["description"]
    evaluation = definitions["EvaluationParams"]["properties"]
    assert "rubric_llm_judge" in evaluation["task"]["description"] and "subtask" in evaluation
    gate = definitions["GateParams"]["properties"]
    assert "judge:winrate" in gate["metric"]["description"] and "higher_is_better" in gate
    assert "automatic" in definitions["DataParams"]["properties"]["stratify"]["description"]


def test_settings_that_cannot_work_are_refused_by_the_model_or_the_plan() -> None:
    with pytest.raises(ValueError, match=r"give either source .* or function_arn .*, not both"):
        RewardParams(source="r.py", function_arn="arn:aws:lambda:us-east-1:123456789012:function:f")
    with pytest.raises(EvaluationError, match="evaluation task 'llm_judge' is not available for Nova 2 models"):
        plan_checks(EndToEndParams(evaluation={"task": "llm_judge"}), settings=load_settings())
    plan_checks(
        EndToEndParams(model="nova-lite", skip=["rft"], evaluation={"task": "llm_judge"}), settings=load_settings()
    )
    plan_checks(
        EndToEndParams(deploy={"enabled": False, "gate": {"metric": "judge:winrate"}}), settings=load_settings()
    )  # no gate, no check


def test_platform_per_stage_registry_and_stage_order_are_in_the_form() -> None:
    definitions = parameter_schema(end_to_end.fn).model_dump()["definitions"]
    platform = definitions["JobParams"]["properties"]["platform"]
    assert platform["default"] == "SMTJ"  # the case study runs on training jobs unless the form says otherwise
    assert platform["enum"] == ["SMTJ", "SERVERLESS", "BEDROCK", "HYPERPOD"]
    assert "SERVERLESS" in platform["description"]
    assert definitions["EvaluationParams"]["properties"]["platform"]["default"] == "SMTJ"
    registry = definitions["RegistryParams"]["properties"]
    assert registry["enabled"]["default"] is True and "novaflow-{run_name}-{model}" in registry["group"]["description"]
    stages = definitions["EndToEndParams"]["properties"]["stages"]
    assert stages["items"]["enum"] == ["sft", "dpo", "rft", "mtrl"] and "[sft, dpo]" in stages["description"]
    assert stages["default"] == ["sft", "rft"]  # shown in the form, not "0 selected"
    with pytest.raises(ValueError, match=r"each training stage runs at most once"):
        EndToEndParams(stages=["sft", "sft"])
    assert EndToEndParams(stages=["sft", "dpo", "rft"], skip=["rft"]).training_stages() == ["sft", "dpo"]


def test_every_packaged_deployment_has_parameters_its_flow_accepts() -> None:
    import importlib
    import typing
    from pathlib import Path

    import yaml
    from pydantic import TypeAdapter

    root = Path(__file__).parents[2]
    deployments = yaml.safe_load((root / "prefect.yaml").read_text())["deployments"]
    checked = []
    for deployment in deployments:
        path, name = deployment["entrypoint"].split(":")
        flow_fn = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)
        assert deployment.get("work_pool"), f"{name}: `prefect deploy --all` refuses a deployment without a work pool"
        hints = typing.get_type_hints(flow_fn.fn)
        given = deployment.get("parameters", {})
        # every given parameter must exist; a model-typed one must validate (absent ones: their defaults)
        assert set(given) <= set(flow_fn.parameters.properties), name
        for parameter in ("params", "base") if not given else given:
            if parameter in hints:
                TypeAdapter(hints[parameter]).validate_python(given.get(parameter, {}))
        checked.append(name)
    assert {"dpo", "cpt", "end_to_end", "sweep"} <= set(checked)
