"""The one vocabulary: every alias the catalog accepts works everywhere a model is named, and the support table
answers data preparation, jobs and flows alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from pydantic import ValidationError

from flows.deploy_stage import DeployFlowParams
from flows.params import EndToEndParams, resolve_model
from flows.single_stage import BaselineEvalParams
from novaflow.catalog import (
    ALIASES,
    DEFAULT_MODEL,
    MODELS,
    SUPPORT,
    DataFormat,
    Method,
    Platform,
    data_format_problem,
    get_model,
    method_problem,
)
from novaflow.cli.options import model_option
from novaflow.data.prepare import prepare_dataset
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.deploy.targets import build_endpoint_spec
from novaflow.errors import ConfigError, DataError, RecipeError
from novaflow.jobs.spec import JobSpec
from novaflow.recipes.support import check_supported, region_problem
from novaflow.settings import load_settings

ALIAS_CASES = sorted((alias, model.key) for alias, model in ALIASES.items())


def test_the_alias_table_holds_every_documented_name_of_each_model() -> None:
    lite2 = {alias for alias, model in ALIASES.items() if model.key == "nova-lite-2"}
    assert lite2 == {
        "nova-lite-2",
        "nova_lite_2",
        "nova-lite-2/prod",
        "amazon.nova-2-lite-v1",
        "amazon.nova-2-lite-v1:0",
        "amazon.nova-2-lite-v1:0:256k",
        "us.amazon.nova-2-lite-v1:0",
        "nova-textgeneration-lite-v2",
    }
    assert {m.key for m in ALIASES.values()} == set(MODELS)
    assert len(ALIASES) == 4 * 8  # no spelling is shared by two models


@pytest.fixture(scope="module")
def eval_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("alias") / "q.csv"
    path.write_text("Body,Y\nIs this a good question?,HQ\nAnother one,LQ_EDIT\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("alias", "key"), ALIAS_CASES)
def test_every_alias_works_for_data_jobs_deploy_and_flows(
    alias: str, key: str, eval_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spelled = alias.upper()  # letter case never matters
    # data preparation: the manifest and the report record the canonical key
    src = DatasetSource(path=str(eval_csv), columns=ColumnMap(query="Body", response="Y"))
    prepared = prepare_dataset(src, "eval", spelled, tmp_path / "data", settings=load_settings())
    manifest = json.loads(prepared.manifest_file.read_text(encoding="utf-8"))
    assert (prepared.model, manifest["model"], prepared.report.model) == (key, key, key)
    # job specs: same spec, same name, same hash as with the key
    job = JobSpec(model=spelled, method="evaluation", train_uri="s3://b/gen_qa.jsonl", output_uri="s3://b/o")
    assert job.model == key
    assert job.job_name() == job.model_copy(update={"model": key}).job_name()
    # deploy specs
    endpoint = build_endpoint_spec("e", "s3://b/ckpt/", model=spelled, context_length=8000, max_concurrency=1)
    assert endpoint.model == key
    # flow parameters and the setting they default to
    assert EndToEndParams(model=spelled).model == key
    assert BaselineEvalParams(model=spelled, eval_uri="s3://b/gen_qa.jsonl").model == key
    assert DeployFlowParams(model=spelled, checkpoint_uri="s3://b/ckpt/").model == key
    monkeypatch.setenv("NOVAFLOW_MODEL", spelled)
    assert load_settings().model == key
    assert resolve_model(None, settings=load_settings()) == key
    # the CLI's --model option
    assert model_option().callback(spelled) == key


def test_unknown_models_are_named_the_same_way_everywhere(eval_csv: Path, tmp_path: Path) -> None:
    message = "Unknown Nova model 'nova-max': use one of nova-micro, nova-lite, nova-pro, nova-lite-2"
    with pytest.raises(ConfigError, match=message):
        prepare_dataset(str(eval_csv), "eval", "nova-max", tmp_path, settings=load_settings())
    with pytest.raises(ConfigError, match=message):
        JobSpec(model="nova-max", method="sft_lora")
    with pytest.raises(ValidationError, match=message):
        EndToEndParams(model="nova-max")
    with pytest.raises(typer.BadParameter, match=message):
        model_option().callback("nova-max")
    with pytest.raises(ConfigError, match=r"Setting 'model' is malformed \(Unknown Nova model 'nova-max'"):
        load_settings(model="nova-max")


def test_defaults_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().model == DEFAULT_MODEL == "nova-lite-2"
    assert EndToEndParams().model is None  # resolved when the run starts, from the settings of that process
    monkeypatch.setenv("NOVAFLOW_MODEL", "nova-pro")
    assert resolve_model(None, settings=load_settings()) == "nova-pro"
    assert resolve_model("nova-micro", settings=load_settings()) == "nova-micro"
    assert model_option().callback(None) == "nova-pro"


def test_every_method_reads_one_data_format() -> None:
    readers = {fmt.value: sorted(m.value for m in Method if m.data_format is fmt) for fmt in DataFormat}
    assert readers == {
        "eval": ["evaluation"],
        "sft": ["sft_full", "sft_lora"],
        "rft": ["rft_lora"],
        "cpt": ["cpt"],
        "dpo": ["dpo_full", "dpo_lora"],
        "mtrl": ["rft_multiturn"],
    }
    assert set(SUPPORT) == set(Method)
    assert DataFormat.of("rft_lora") is DataFormat.RFT
    assert DataFormat.of("SFT") is DataFormat.SFT
    assert DataFormat.of(Method.CPT) is DataFormat.CPT
    with pytest.raises(ConfigError, match=r"Unknown data format 'sft_qlora': use one of eval, sft, rft, cpt, dpo"):
        DataFormat.of("sft_qlora")


def test_names_parse_in_any_letter_case_and_say_the_choices() -> None:
    assert Platform("smtj") is Platform.SMTJ
    assert Method("SFT_LORA") is Method.SFT_LORA
    assert Platform.parse(" Bedrock ") is Platform.BEDROCK
    assert Platform.parse("serverless") is Platform.SERVERLESS
    with pytest.raises(ConfigError, match=r"^Unknown platform 'glue': use one of SMTJ, BEDROCK, SMHP, SERVERLESS\.$"):
        Platform.parse("glue")
    with pytest.raises(ConfigError, match=r"^Unknown method 'ppo': use one of sft_lora, sft_full, rft_lora"):
        Method.parse("ppo")
    assert JobSpec(model="nova-lite", method="SFT_LORA", platform="bedrock").platform is Platform.BEDROCK


@pytest.mark.parametrize(
    ("model", "method", "platform", "problem"),
    [
        ("nova-lite-2", Method.SFT_LORA, Platform.BEDROCK, None),
        ("nova-micro", Method.SFT_FULL, Platform.SMTJ, None),
        ("nova-lite-2", Method.RFT_LORA, Platform.SMTJ, None),
        (
            "nova-pro",
            Method.RFT_LORA,
            Platform.SMTJ,
            "rft_lora is not supported for nova-pro on SMTJ: RFT is only supported on Nova 2.0 (nova-lite-2).",
        ),
        (
            "nova-lite",
            Method.SFT_FULL,
            Platform.BEDROCK,
            "sft_full is not supported on BEDROCK: it runs on SMTJ, SMHP, SERVERLESS.",
        ),
        (
            "nova-lite-2",
            Method.DPO_LORA,
            Platform.SMTJ,
            "dpo_lora is not supported for nova-lite-2 on SMTJ: DPO is only supported on Nova 1 models "
            "(nova-micro, nova-lite, nova-pro).",
        ),
        ("nova-lite", Method.DPO_LORA, Platform.SMTJ, None),
        ("nova-micro", Method.DPO_FULL, Platform.SERVERLESS, None),
        ("nova-lite-2", Method.CPT, Platform.SMTJ, None),
        (
            "nova-lite-2",
            Method.CPT,
            Platform.SERVERLESS,
            "cpt is not supported on SERVERLESS: it runs on SMTJ, SMHP.",
        ),
        ("nova-lite", Method.SFT_LORA, Platform.SMHP, None),
        ("nova-lite-2", Method.RFT_LORA, Platform.SMHP, None),  # the hub's RFT chart, services and all
    ],
)
def test_one_support_table_says_why(model: str, method: Method, platform: Platform, problem: str | None) -> None:
    assert method_problem(model, method, platform) == problem
    if problem is None:
        check_supported(model, method, platform, "us-east-1")
    else:
        with pytest.raises(RecipeError) as err:
            check_supported(model, method, platform)
        assert str(err.value) == problem


def test_regions_are_part_of_the_rules() -> None:
    with pytest.raises(RecipeError, match=r"^AWS publishes no sft_lora image for nova-lite in sa-east-1"):
        check_supported("nova-lite", Method.SFT_LORA, Platform.SMTJ, "sa-east-1")
    # eu-west-2 hosts Nova inference, but AWS publishes no training or evaluation image there
    with pytest.raises(RecipeError, match=r"in eu-west-2 \(nova_lite_2_0_p5_48xl_gpu_bring_your_own_dataset_eval\)"):
        check_supported("nova-lite-2", Method.EVALUATION, Platform.SMTJ, "eu-west-2", "gen_qa")
    assert region_problem(Platform.SMHP, "sa-east-1") == (
        "Region 'sa-east-1' has no Nova customization images: use one of ap-northeast-1, eu-west-2, us-east-1, "
        "us-west-2."
    )
    with pytest.raises(RecipeError, match=r"^Bedrock Nova customization runs only in us-east-1, not us-west-2"):
        check_supported("nova-lite", Method.SFT_LORA, Platform.BEDROCK, "us-west-2")
    check_supported("nova-lite", Method.SFT_LORA, Platform.SMTJ, "us-west-2")


def test_data_preparation_asks_the_same_table(eval_csv: Path, tmp_path: Path) -> None:
    assert data_format_problem("nova-pro", DataFormat.RFT) == (
        "rft data is of no use for nova-pro: RFT is only supported on Nova 2.0 (nova-lite-2)."
    )
    assert data_format_problem("nova-lite-2", DataFormat.DPO) == (
        "dpo data is of no use for nova-lite-2: "
        "DPO is only supported on Nova 1 models (nova-micro, nova-lite, nova-pro)."
    )
    for model in MODELS:
        for fmt in (DataFormat.EVAL, DataFormat.SFT, DataFormat.CPT):
            assert data_format_problem(model, fmt) is None
    with pytest.raises(DataError, match=r"RFT is only supported on Nova 2.0 \(nova-lite-2\)"):
        prepare_dataset(str(eval_csv), Method.RFT_LORA, "amazon.nova-pro-v1", tmp_path, settings=load_settings())
    assert get_model("nova-lite-2").multimodal and not get_model("nova-micro").multimodal
