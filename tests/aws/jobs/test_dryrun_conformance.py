"""Dry runs that must stop a job the service would refuse, before anything is created or paid for."""

from __future__ import annotations

import json

from novaflow.aws import get_client
from novaflow.errors import RecipeError
from novaflow.jobs.dryrun import dry_run
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import submit_training_job
from novaflow.settings import load_settings
from tests.aws.jobs.conftest import put_jsonl


def test_bedrock_refuses_validation_data_for_nova_2_with_the_reason(aws) -> None:
    put_jsonl("data/train.jsonl", 250)
    put_jsonl("data/validation.jsonl", 30)
    spec = JobSpec(
        platform="BEDROCK",
        model="nova-lite-2",
        method="sft_lora",
        train_uri="s3://novaflow-local/data/train.jsonl",
        validation_uri="s3://novaflow-local/data/validation.jsonl",
    )
    report = dry_run(spec, simulate_iam=False, settings=load_settings())
    refusal = [p for p in report.problems if p.field == "validation_uri"]
    assert [(p.message, p.fix) for p in refusal] == [
        (
            "Bedrock does not use validation data when fine-tuning Nova 2 (the Nova 2 SFT data guide: validation "
            "sets are not supported during SFT training)",
            "drop validation_uri",
        )
    ]
    assert report.request is None
    try:
        submit_training_job(spec, settings=load_settings())
    except RecipeError as exc:
        assert "drop validation_uri" in str(exc)
    else:
        raise AssertionError("submit created a Bedrock job the service refuses")
    assert (
        get_client("bedrock", settings=load_settings()).list_model_customization_jobs()[
            "modelCustomizationJobSummaries"
        ]
        == []
    )
    nova1 = spec.model_copy(update={"model": "nova-lite"})
    put_jsonl("data/train.jsonl", 100)
    assert [
        p for p in dry_run(nova1, simulate_iam=False, settings=load_settings()).problems if p.field == "validation_uri"
    ] == []


def test_bedrock_refuses_a_sagemaker_checkpoint_as_base_model(aws) -> None:
    put_jsonl("data/train.jsonl", 250)
    spec = JobSpec(
        platform="BEDROCK",
        model="nova-lite-2",
        method="sft_lora",
        train_uri="s3://novaflow-local/data/train.jsonl",
        model_name_or_path="s3://novaflow-local/jobs/sft/checkpoints/",
    )
    problems = [
        p
        for p in dry_run(spec, simulate_iam=False, settings=load_settings()).problems
        if p.field == "model_name_or_path"
    ]
    assert len(problems) == 1
    assert problems[0].message.startswith("Bedrock customization starts from the base model or a Bedrock custom")
    assert problems[0].fix == "import the checkpoint into Bedrock first or train on SMTJ"


def _put_rows(key: str, rows: int, *, reasoning: bool) -> str:
    import json

    answer = (
        [{"reasoningContent": {"reasoningText": {"text": "think"}}}, {"text": "HQ"}] if reasoning else [{"text": "HQ"}]
    )
    body = "".join(
        json.dumps(
            {
                "schemaVersion": "bedrock-conversation-2024",
                "messages": [
                    {"role": "user", "content": [{"text": f"q{i}"}]},
                    {"role": "assistant", "content": answer},
                ],
            }
        )
        + "\n"
        for i in range(rows)
    )
    get_client("s3", settings=load_settings()).put_object(Bucket="novaflow-local", Key=key, Body=body.encode())
    return f"s3://novaflow-local/{key}"


def test_reasoning_enabled_follows_the_training_data_on_nova_2(aws) -> None:
    import yaml

    plain = _put_rows("data/plain.jsonl", 40, reasoning=False)
    thinking = _put_rows("data/thinking.jsonl", 40, reasoning=True)
    for uri, expected in ((plain, False), (thinking, True)):
        spec = JobSpec(model="nova-lite-2", method="sft_lora", train_uri=uri, overrides={"max_steps": 4})
        report = dry_run(spec, simulate_iam=False, settings=load_settings())
        assert [p for p in report.problems if p.field == "overrides"] == []
        assert yaml.safe_load(report.recipe_yaml or "")["training_config"]["reasoning_enabled"] is expected
        record = submit_training_job(spec, settings=load_settings())
        key = f"novaflow/recipes/{record.name}/recipe.yaml"
        uploaded = yaml.safe_load(
            get_client("s3", settings=load_settings()).get_object(Bucket="novaflow-local", Key=key)["Body"].read()
        )
        assert uploaded["training_config"]["reasoning_enabled"] is expected
    forced = JobSpec(
        model="nova-lite-2", method="sft_lora", train_uri=plain, overrides={"max_steps": 4, "reasoning_enabled": True}
    )
    problems = [
        (p.message, p.fix)
        for p in dry_run(forced, simulate_iam=False, settings=load_settings()).problems
        if p.field == "overrides"
    ]
    assert problems == [
        (
            f"reasoning_enabled is true but no row of {plain} carries reasoningContent",
            "set reasoning_enabled=false (reasoning mode is for data with reasoning traces)",
        )
    ]
    nova1 = JobSpec(model="nova-lite", method="sft_lora", train_uri=plain)
    assert "reasoning_enabled" not in (dry_run(nova1, simulate_iam=False, settings=load_settings()).recipe_yaml or "")


def _reward_lambda() -> str:
    import io
    import zipfile

    from novaflow.local.aws.server import LOCAL_ROLE_ARN

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return []\n")
    made = get_client("lambda", settings=load_settings()).create_function(
        FunctionName="reward",
        Runtime="python3.12",
        Role=LOCAL_ROLE_ARN,
        Handler="handler.handler",
        Code={"ZipFile": buf.getvalue()},
    )
    return str(made["FunctionArn"])


CPT_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/nova-cpt:latest"
"""AWS publishes no training-job image for CPT: the job runs in the one AWS gave the account."""


def _default_jobs() -> list[tuple[str, str, str, str | None, str | None]]:
    """(platform, model, method, task, instance type) for every job novaflow builds, on its default instance and
    on the first instance type of every published recipe that serves it."""
    from novaflow.catalog import SUBMITTABLE, SUPPORT, Method, Platform, get_model
    from novaflow.recipes.service import eval_tasks, recipes_for
    from novaflow.recipes.tables import load_instance_table

    jobs: list[tuple[str, str, str, str | None, str | None]] = []
    for method, support in SUPPORT.items():
        if not support.built:
            continue
        for platform in sorted(support.platforms & SUBMITTABLE):
            for model in sorted(support.models):
                nova = get_model(model)
                tasks = list(eval_tasks(nova)) if method is Method.EVALUATION else [None]
                if platform is Platform.BEDROCK:
                    jobs.append((platform.value, model, method.value, None, None))
                    continue
                if platform is Platform.SERVERLESS:  # no instances to choose
                    jobs.extend((platform.value, model, method.value, task, None) for task in tasks)
                    continue
                if platform is Platform.SMHP:  # the HyperPod recipes' instance types (no instance table entry)
                    for task in tasks:
                        types = {r.instance_types[0] for r in recipes_for(nova, method, platform="SMHP", task=task)}
                        jobs.extend((platform.value, model, method.value, task, t) for t in sorted(types))
                    continue
                default = load_instance_table().default("SMTJ", model, method.value)[0]
                for task in tasks:
                    types = {default} | {r.instance_types[0] for r in recipes_for(nova, method, task=task)}
                    jobs.extend((platform.value, model, method.value, task, t) for t in sorted(types))
    return jobs


def _put_tasks(key: str, rows: int) -> str:
    body = "".join(
        json.dumps({"id": f"t{i}", "metadata": {"prompt": f"q{i}"}, "answer": "HQ"}) + "\n" for i in range(rows)
    )
    get_client("s3", settings=load_settings()).put_object(Bucket="novaflow-local", Key=key, Body=body.encode())
    return f"s3://novaflow-local/{key}"


def test_every_packaged_default_passes_its_own_dry_run(aws, calls) -> None:
    from novaflow.recipes.service import default_count, recipe_for

    lambda_arn = _reward_lambda()
    data = {
        "train": put_jsonl("data/train.jsonl", 250),
        "gen_qa": put_jsonl("data/eval/gen_qa.jsonl", 50),
        "rows": put_jsonl("data/rows.jsonl", 120),
        "judge": put_jsonl("data/judge/llm_judge.jsonl", 50),
        "tasks": _put_tasks("data/mtrl/train.jsonl", 40),
    }
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    bedrock_role = get_client("iam", settings=load_settings()).create_role(
        RoleName="bedrock-exec", AssumeRolePolicyDocument=json.dumps(trust)
    )
    checked = 0
    failures = []
    clusters: dict[str, str] = {}  # a HyperPod job needs a cluster with a restricted group of its instance type
    for platform, model, method, task, instance_type in _default_jobs():
        if platform == "SMHP" and instance_type not in clusters:
            clusters[str(instance_type)] = name = f"conf-{len(clusters)}"
            aws.add_hyperpod(f"{name}:{instance_type}=32")  # Nova Pro CPT asks for 24
        from novaflow.catalog import get_model

        count = None
        if instance_type is not None:
            recipe = recipe_for(
                get_model(model),
                method,
                instance_type=instance_type,
                task=task,
                platform="SMHP" if platform == "SMHP" else "SMTJ",
            )
            count = default_count(recipe)
        needs_lambda = method == "rft_lora" or task == "rft_eval"
        judge = {"llm_judge": data["judge"], "rubric_llm_judge": data["judge"]}
        train = {"gen_qa": data["gen_qa"], None: data["train"], **judge}.get(task, data["rows"])
        if method == "rft_multiturn":  # multi-turn RFT reads tasks and names its agent (the Lambda will do)
            train = data["tasks"]
        if task and task not in ("gen_qa", "llm_judge", "rubric_llm_judge", "rft_eval"):
            train = None  # built-in benchmark: no data channel
        spec = JobSpec(
            platform=platform,
            model=model,
            method=method,
            eval_task=task,
            train_uri=train,
            instance_type=instance_type,
            instance_count=count,
            reward_lambda_arn=lambda_arn if needs_lambda else None,
            agent_arn=lambda_arn if method == "rft_multiturn" else None,
            role_arn=bedrock_role["Role"]["Arn"] if platform == "BEDROCK" else None,
            accept_eula=platform == "SERVERLESS",
            image_uri=CPT_IMAGE if method == "cpt" else None,
            cluster=clusters.get(str(instance_type)) if platform == "SMHP" else None,
        )
        report = dry_run(spec, simulate_iam=False, settings=load_settings())
        checked += 1
        if report.problems or report.request is None:
            failures.append(f"{platform} {model} {method} {task} {instance_type}: {report.describe()}")
    assert failures == []
    assert checked >= 60
    assert "CreateTrainingJob" not in calls and "CreateModelCustomizationJob" not in calls and "CreateJob" not in calls


def test_a_value_outside_the_published_range_is_a_problem_and_nothing_is_submitted(aws, calls) -> None:
    from novaflow.catalog import get_model
    from novaflow.recipes.service import recipe_for

    train = put_jsonl("data/train.jsonl", 250)
    lambda_arn = _reward_lambda()
    calls.clear()
    for model, method in (("nova-micro", "sft_lora"), ("nova-pro", "sft_full"), ("nova-lite-2", "sft_lora")):
        recipe = recipe_for(get_model(model), method)
        hub = recipe.parameter("learning_rate")
        over = {"learning_rate": hub.max * 2, "lora_alpha" if "lora" in method else "max_epochs": 1000}
        report = dry_run(
            JobSpec(model=model, method=method, train_uri=train, overrides=over),
            simulate_iam=False,
            settings=load_settings(),
        )
        messages = [p.message for p in report.problems if p.field == "overrides"]
        assert messages[0].startswith(f"lr={float(hub.max * 2)!r} is above the maximum {hub.max:g}"), messages
        assert len(messages) == 2 and report.request is None
    rft = JobSpec(
        model="nova-lite-2",
        method="rft_lora",
        train_uri=train,
        reward_lambda_arn=lambda_arn,
        overrides={"global_batch_size": 256, "lora_alpha": 128, "number_generation": 32},
    )
    assert [p.message for p in dry_run(rft, simulate_iam=False, settings=load_settings()).problems] == [
        "global_batch_size=256 is above the maximum 128; use a value in [16, 128]",
        "alpha=128 is not allowed; use one of [16, 32, 64]",
        "number_generation=32 is above the maximum 16; use a value in [2, 16]",
    ]
    assert "CreateTrainingJob" not in calls and "PutObject" not in calls and calls
