from __future__ import annotations

import json

import botocore.session
import yaml
from botocore.stub import Stubber
from typer.testing import CliRunner

from novaflow.cli import app
from novaflow.jobs.records import JobRecord
from novaflow.recipes.hub import sync_instance_table
from novaflow.recipes.tables import load_instance_table
from novaflow.settings import load_settings
from tests.aws.jobs.conftest import put_jsonl

runner = CliRunner()


def test_jobs_cli_submit_attach_status_stop_and_dry_run(aws, tmp_path) -> None:
    put_jsonl("data/train.jsonl", 40)
    args = [
        "jobs",
        "submit",
        "--model",
        "nova-lite-2",
        "--method",
        "sft_lora",
        "--train",
        "s3://novaflow-local/data/train.jsonl",
        "-o",
        "max_steps=4",
        "--record",
        str(tmp_path / "r.json"),
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    rec = JobRecord.load(tmp_path / "r.json")
    assert first.output.startswith(f"created {rec.name} (InProgress)")
    second = runner.invoke(app, args)
    assert second.output.startswith(f"attached to {rec.name}")
    aws.control.stall_job(rec.name)
    status = runner.invoke(app, ["jobs", "status", rec.name])
    assert status.exit_code == 0 and status.output.startswith(f"{rec.name}: InProgress")
    assert runner.invoke(app, ["jobs", "stop", rec.name]).output == f"stop requested for {rec.name}\n"
    bad = runner.invoke(
        app,
        [
            "jobs",
            "submit",
            "--model",
            "nova-lite-2",
            "--method",
            "sft_lora",
            "--train",
            "s3://novaflow-local/data/nope.jsonl",
            "-o",
            "lr=9",
            "--dry-run",
        ],
    )
    assert bad.exit_code == 1
    assert "2 problem(s)" in bad.output and "lr=9.0 is above the maximum 1; use a value in [0, 1]" in bad.output


def test_recipes_show_keys_and_yaml() -> None:
    shown = runner.invoke(
        app,
        [
            "recipes",
            "show",
            "--model",
            "nova-lite-2",
            "--method",
            "rft_lora",
            "--reward-lambda-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:r",
            "-o",
            "kl_loss_coef=0.01",
        ],
    )
    assert shown.exit_code == 0
    assert yaml.safe_load(shown.output)["training_config"]["trainer"]["kl_loss_coef"] == 0.01
    keys = runner.invoke(app, ["recipes", "show", "--model", "nova-lite-2", "--method", "sft_lora", "--keys"])
    lines = keys.output.splitlines()
    assert lines[0] == (
        "recipe nova_lite_2_0_p5_gpu_lora_sft (aws/sagemaker-hyperpod-recipes@263199555b2e), template sft_lora_nova2"
    )
    assert (
        "lr                         float   1e-05        [0, 1]                         "
        "hub nova_lora_sft_2_0.learning_rate  (names: learning_rate, training_config.optim_config.lr)"
    ) in lines
    assert (
        "max_length                 int     32768        [8192, 16384, 32768, 65536]    "
        "recipe nova_lite_2_0_p5_gpu_lora_sft  (names: max_context_length, training_config.max_length)"
    ) in lines
    assert (
        "save_steps                 int     100          [1, 100000]                    "
        "hub nova_lora_sft_2_0.save_steps  (names: training_config.save_steps)"
    ) in lines
    micro = runner.invoke(
        app, ["recipes", "show", "--model", "nova-micro", "--method", "sft_lora", "--instance-type", "ml.g5.12xlarge"]
    )
    assert yaml.safe_load(micro.output)["training_config"]["max_length"] == 8192
    assert runner.invoke(app, ["recipes", "show", "--model", "nova-micro", "-o", "max_length=9216"]).exit_code == 1
    bad = runner.invoke(app, ["recipes", "show", "-o", "alpha=33"])
    assert bad.exit_code == 1


def test_hub_sync_updates_the_table_from_recipe_collection() -> None:
    sm = botocore.session.get_session().create_client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    doc = {
        "RecipeCollection": [
            {
                "Name": "nova_lite_v2_smtj_p5_p5en_gpu_lora_rft",
                "CustomizationTechnique": "RLVR",
                "Type": "FineTuning",
                "Peft": "LORA",
                "InstanceCount": 4,
                "SupportedInstanceTypes": ["ml.p5en.48xlarge"],
                "SmtjRecipeTemplateS3Uri": "s3://jumpstart-cache-prod-us-east-1/recipes/x.yaml",
            },
            {
                "Name": "x_text_with_datamix",
                "CustomizationTechnique": "SFT",
                "IsSubscriptionModel": True,
                "SupportedInstanceTypes": ["ml.p5.48xlarge"],
                "SmtjRecipeTemplateS3Uri": "s3://x",
            },
        ]
    }
    base = {
        "HubContentName": "n",
        "HubContentArn": "arn:aws:sagemaker:us-east-1:aws:hub-content/x",
        "HubContentVersion": "1.0.0",
        "HubContentType": "Model",
        "DocumentSchemaVersion": "2.0.0",
        "HubName": "SageMakerPublicHub",
        "HubArn": "arn:aws:sagemaker:us-east-1:aws:hub/x",
        "HubContentStatus": "Available",
        "CreationTime": 0,
    }
    with Stubber(sm) as stub:
        for name in (
            "nova-textgeneration-micro",
            "nova-textgeneration-lite",
            "nova-textgeneration-pro",
            "nova-textgeneration-lite-v2",
        ):
            document = doc if name.endswith("v2") else {"RecipeCollection": []}
            stub.add_response(
                "describe_hub_content",
                {**base, "HubContentDocument": json.dumps(document)},
                {"HubName": "SageMakerPublicHub", "HubContentType": "Model", "HubContentName": name},
            )
        table, changes = sync_instance_table(load_instance_table(), client=sm, settings=load_settings())
    assert table.allowed("SMTJ", "nova-lite-2", "rft_lora") == {"ml.p5en.48xlarge": [2, 4, 8, 16]}
    assert table.default("SMTJ", "nova-lite-2", "rft_lora") == ("ml.p5en.48xlarge", 4)
    assert changes == [
        "hub recipe nova_lite_v2_smtj_p5_p5en_gpu_lora_rft: instance types ['ml.p5en.48xlarge'], packaged tables "
        "(aws/sagemaker-hyperpod-recipes@263199555b2e) ['ml.p5.48xlarge', 'ml.p5en.48xlarge']",
        "nova-lite-2 rft_lora: ['ml.p5.48xlarge', 'ml.p5en.48xlarge'] -> ['ml.p5en.48xlarge'] "
        "(default ml.p5en.48xlarge x 4, from nova_lite_v2_smtj_p5_p5en_gpu_lora_rft)",
    ]
    assert load_instance_table().allowed("SMTJ", "nova-lite-2", "rft_lora")["ml.p5.48xlarge"] == [2, 4, 8, 16]


def test_jobs_cli_wait_and_logs(aws, tmp_path) -> None:
    put_jsonl("data/train.jsonl", 40)
    record = tmp_path / "r.json"
    submitted = runner.invoke(
        app,
        [
            "jobs",
            "submit",
            "--model",
            "nova-lite-2",
            "--method",
            "sft_lora",
            "--train",
            "s3://novaflow-local/data/train.jsonl",
            "-o",
            "max_steps=4",
            "--record",
            str(record),
        ],
    )
    assert submitted.exit_code == 0, submitted.output
    waited = runner.invoke(
        app, ["jobs", "wait", "--record", str(record), "--poll", "0.05", "--max-wait", "60", "--quiet"]
    )
    rec = JobRecord.load(record)
    assert waited.exit_code == 0, waited.output
    assert waited.output == f"{rec.name}: Completed\n" and rec.status.value == "Completed"
    raw = runner.invoke(app, ["jobs", "logs", rec.name])
    assert raw.exit_code == 0 and rec.name in raw.output
    metrics = runner.invoke(app, ["jobs", "logs", rec.name, "--metrics"])
    assert metrics.output.splitlines()[0].split()[:2] == ["step", "loss"]
