from __future__ import annotations

from novaflow.deploy.tags import novaflow_tags
from novaflow.deploy.teardown import Resource, plan_teardown

OURS = novaflow_tags("nova-sft")
OTHER = novaflow_tags("nova-rft")


def res(kind: str, name: str, tags: dict[str, str], used_by: tuple[str, ...] = ()) -> Resource:
    return Resource(kind, name, f"arn:{kind}:{name}", tags, used_by)


def test_only_tagged_resources_of_the_deployment_are_deleted_in_dependency_order() -> None:
    inventory = [
        res("iam-role", "novaflow-sm-nova-sft", OURS),
        res("sagemaker-model", "nova-sft-abc", OURS),
        res("sagemaker-endpoint", "nova-sft", OURS),
        res("sagemaker-endpoint-config", "nova-sft-abc-config", OURS),
        res("bedrock-custom-model", "nova-sft-1234", OURS),
        res("bedrock-deployment", "nova-sft", OURS),
        res("sagemaker-endpoint", "nova-sft-handmade", {}),
        res("sagemaker-model", "nova-sft-foreign", {"novaflow:deployment": "nova-sft"}),
        res("sagemaker-endpoint", "nova-rft", OTHER),
    ]
    plan = plan_teardown(inventory, "nova-sft")
    assert [(r.kind, r.name) for r in plan.delete] == [
        ("bedrock-deployment", "nova-sft"),
        ("sagemaker-endpoint", "nova-sft"),
        ("sagemaker-endpoint-config", "nova-sft-abc-config"),
        ("sagemaker-model", "nova-sft-abc"),
        ("bedrock-custom-model", "nova-sft-1234"),
        ("iam-role", "novaflow-sm-nova-sft"),
    ]
    assert {(r.name, why) for r, why in plan.kept} == {
        ("nova-sft-handmade", "not tagged novaflow:managed=true"),
        ("nova-sft-foreign", "not tagged novaflow:managed=true"),
        ("nova-rft", "belongs to deployment nova-rft"),
    }


def test_all_deployments_when_none_is_named() -> None:
    inventory = [
        res("sagemaker-endpoint", "a", OURS),
        res("sagemaker-endpoint", "b", OTHER),
        res("sagemaker-endpoint", "c", {"novaflow:managed": "false"}),
    ]
    assert [r.name for r in plan_teardown(inventory, None).delete] == ["a", "b"]


def test_custom_model_still_used_by_another_deployment_is_kept() -> None:
    other_deployment = res("bedrock-deployment", "nova-rft", OTHER)
    model = res(
        "bedrock-custom-model", "shared", OURS, used_by=("arn:bedrock-deployment:nova-sft", other_deployment.arn)
    )
    plan = plan_teardown([res("bedrock-deployment", "nova-sft", OURS), model, other_deployment], "nova-sft")
    assert [r.name for r in plan.delete] == ["nova-sft"]
    assert (model, f"still used by {other_deployment.arn}") in plan.kept
    # Tearing down both releases the model.
    assert [
        r.name
        for r in plan_teardown([res("bedrock-deployment", "nova-sft", OURS), model, other_deployment], None).delete
    ] == ["nova-rft", "nova-sft", "shared"]


def test_empty_inventory_is_an_empty_plan() -> None:
    plan = plan_teardown([], "nova-sft")
    assert plan.delete == [] and plan.kept == []


def test_shared_custom_model_goes_with_the_last_deployment_that_used_it() -> None:
    od = res("bedrock-deployment", "nova-sft", OURS)
    pt = res("bedrock-provisioned-throughput", "nova-rft", OTHER)
    model = res("bedrock-custom-model", "made-for-sft", OURS, used_by=(od.arn, pt.arn))
    first = plan_teardown([od, pt, model], "nova-sft")
    assert [r.name for r in first.delete] == ["nova-sft"]
    # nova-sft is gone; the model (tagged nova-sft) is now used only by nova-rft, whose teardown removes it.
    model_after = res("bedrock-custom-model", "made-for-sft", OURS, used_by=(pt.arn,))
    second = plan_teardown([pt, model_after], "nova-rft")
    assert [r.name for r in second.delete] == ["nova-rft", "made-for-sft"]
    unrelated = plan_teardown([res("bedrock-custom-model", "made-for-sft", OURS)], "nova-rft")
    assert unrelated.delete == [] and unrelated.kept[0][1] == "belongs to deployment nova-sft"
