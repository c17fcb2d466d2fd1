from __future__ import annotations

import pytest
import yaml

from novaflow.catalog import get_model
from novaflow.errors import ConfigError, RecipeError
from novaflow.recipes.build import build_recipe
from novaflow.recipes.overrides import load_override_specs
from novaflow.recipes.service import image_uri, recipe_for
from novaflow.recipes.tables import load_instance_table, load_price_table

ARN = "arn:aws:lambda:us-east-1:123456789012:function:r"


def test_bedrock_id_and_unknown_model() -> None:
    assert get_model("nova-micro").bedrock_id == "us.amazon.nova-micro-v1:0"
    with pytest.raises(ConfigError, match=r"Unknown Nova model 'nova-max'.*nova-micro"):
        get_model("nova-max")


def test_image_uris_follow_the_published_regional_table() -> None:
    lite = get_model("nova-lite")
    sft = recipe_for(lite, "sft_lora")
    assert image_uri(sft, lite, "us-west-2") == (
        "176779409107.dkr.ecr.us-west-2.amazonaws.com/nova-fine-tune-repo:SM-TJ-SFT-latest"
    )
    judge = recipe_for(lite, "evaluation", task="llm_judge")
    assert image_uri(judge, lite, "us-east-1") == (
        "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-evaluation-repo:SM-TJ-Eval-V2-latest"
    )
    with pytest.raises(RecipeError, match=r"no SMTJ image for nova_lite_1_0_p5_p4d_gpu_lora_sft in eu-west-2"):
        image_uri(sft, lite, "eu-west-2")


def test_flat_overrides_land_at_method_specific_paths() -> None:
    sft = build_recipe("nova-lite-2", "sft_lora", run_name="a", overrides={"lr": "2e-5", "warmup_steps": 3})
    rft = build_recipe(
        "nova-lite-2",
        "rft_lora",
        run_name="a",
        reward_lambda_arn=ARN,
        overrides={"lr": 3e-5, "number_generation": 4, "kl_loss_coef": 0.01, "reasoning_effort": "low"},
    )
    assert sft.problems == [] and rft.problems == []
    assert sft.recipe["training_config"]["optim_config"]["lr"] == 2e-5
    assert sft.recipe["training_config"]["lr_scheduler"]["warmup_steps"] == 3
    tc = rft.recipe["training_config"]
    assert tc["trainer"]["optim_config"]["lr"] == 3e-5
    assert tc["rollout"]["advantage_strategy"]["number_generation"] == 4
    assert tc["trainer"]["kl_loss_coef"] == 0.01 and tc["reasoning_effort"] == "low"
    assert tc["rollout"]["rewards"]["api_endpoint"]["lambda_arn"] == ARN
    assert rft.recipe["run"]["reward_lambda_arn"] == ARN


def test_every_problem_is_listed_at_once() -> None:
    r = build_recipe(
        "nova-lite-2",
        "sft_lora",
        run_name="a",
        overrides={"lr": 2.0, "global_batch_size": 48, "alpha": "x", "bogus": 1, "max_steps": 5, "save_steps": 9},
    )
    assert r.problems == [
        "lr=2.0 is above the maximum 1; use a value in [0, 1]",
        "global_batch_size=48 is not allowed; use one of [32, 64, 128, 256, 512, 1024]",
        "alpha must be of type int, got str 'x'",
        "unknown override 'bogus'; allowed keys: adam_beta1, adam_beta2, alpha, fine_tuned_model, global_batch_size, "
        "limit_val_batches, lora_plus_lr_ratio, lr, max_length, max_steps, min_lr, mlflow_experiment_name, "
        "mlflow_run_name, mlflow_tracking_uri, reasoning_enabled, save_steps, save_top_k, val_check_interval, "
        "warmup_steps, weight_decay",
        "save_steps=9 exceeds max_steps=5; set save_steps <= max_steps",
    ]
    with pytest.raises(RecipeError, match=r"has 5 problem\(s\)"):
        r.raise_for_problems()


def test_missing_reward_lambda_is_a_problem() -> None:
    r = build_recipe("nova-lite-2", "rft_lora", run_name="a")
    assert r.problems == [
        "recipe placeholder {{reward_lambda_arn}} is not filled: pass the reward Lambda ARN "
        "(deploy it with `novaflow reward deploy`)"
    ]


def test_interpolation_resolved_in_uploaded_yaml() -> None:
    r = build_recipe("nova-lite-2", "sft_lora", run_name="a", overrides={"max_steps": 7})
    assert r.recipe["training_config"]["save_steps"] == "${oc.select:training_config.max_steps}"
    assert yaml.safe_load(r.to_yaml())["training_config"]["save_steps"] == 7


def test_full_path_override_and_user_recipe_file(tmp_path) -> None:
    r = build_recipe("nova-lite", "sft_lora", run_name="a", overrides={"training_config.model.optim.lr": 5e-6})
    assert r.recipe["training_config"]["model"]["optim"]["lr"] == 5e-6
    custom = tmp_path / "r.yaml"
    custom.write_text(
        "run: {name: '{{name}}', model_type: '{{model_type}}', model_name_or_path: x, replicas: 2}\n"
        "training_config: {max_length: 4096, global_batch_size: 16, trainer: {max_epochs: 1}}\n"
    )
    r2 = build_recipe("nova-lite", "sft_lora", run_name="b", recipe_file=custom, overrides={"max_epochs": 3})
    assert r2.recipe["run"] == {
        "name": "b",
        "model_type": "amazon.nova-lite-v1:0:300k",
        "model_name_or_path": "x",
        "replicas": 2,
    }
    assert r2.recipe["training_config"]["trainer"]["max_epochs"] == 3


def test_nova1_full_rank_has_no_lora_and_eval_tokens_by_version() -> None:
    full = build_recipe("nova-pro", "sft_full", run_name="a").recipe
    assert full["training_config"]["model"]["peft"] == {"peft_scheme": None}
    assert build_recipe("nova-pro", "evaluation", run_name="a").recipe["inference"]["max_new_tokens"] == 8196
    assert build_recipe("nova-lite-2", "evaluation", run_name="a").recipe["inference"]["max_new_tokens"] == 32768
    bench = build_recipe("nova-lite", "evaluation", run_name="a", eval_task="bbh").recipe["evaluation"]
    assert bench == {"task": "bbh", "strategy": "fs_cot", "metric": "accuracy", "subtask": ""}


def test_bedrock_sft_hyperparameters_are_strings() -> None:
    r = build_recipe(
        "nova-lite",
        "sft_lora",
        run_name="a",
        platform="BEDROCK",
        overrides={"lr": 2e-5, "max_epochs": 3, "global_batch_size": 8},
    )
    assert r.recipe["hyperParameters"] == {
        "epochCount": "3",
        "batchSize": "8",
        "learningRate": "2e-05",
        "learningRateWarmupSteps": "10",
    }


def test_tables_and_user_copies(tmp_path) -> None:
    table = load_instance_table()
    assert table.check("SMTJ", "nova-pro", "sft_lora", "ml.p5.48xlarge", 12) is None
    assert table.check("SMTJ", "nova-pro", "sft_lora", "ml.g5.12xlarge", 1) == (
        "instance type ml.g5.12xlarge is not allowed for sft_lora of nova-pro on SMTJ; use one of "
        "ml.p4d.24xlarge, ml.p5.48xlarge, ml.p5en.48xlarge"
    )
    own = tmp_path / "prices.yaml"
    own.write_text("as_of: '2030-01-01'\ncurrency: EUR\nper_instance_hour: {ml.p5.48xlarge: 10}\n")
    est = load_price_table(own).estimate("ml.p5.48xlarge", 4, 2.5, basis="expected 2.5 h")
    assert est.total == 100.0
    assert est.describe() == (
        "ESTIMATE (expected 2.5 h): 4 x ml.p5.48xlarge x 2.5 h x 10.00 EUR/h = 100.00 EUR "
        "(price table as of 2030-01-01; edit it for your region and discounts)"
    )


def test_every_bedrock_override_spec_path_exists_in_its_template() -> None:
    from novaflow.recipes.build import load_template
    from novaflow.recipes.overrides import get_path

    for name in ("bedrock_sft_lora", "bedrock_rft_lora"):
        template = load_template(name)
        for spec in load_override_specs(name).values():
            get_path(template, spec.path)  # raises KeyError when a spec points nowhere
