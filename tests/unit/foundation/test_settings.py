"""Settings: environment, .env, overrides, and one clear line for missing or malformed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from novaflow.errors import ConfigError
from novaflow.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The session exports the local AWS settings; these tests start from nothing."""
    import os

    for key in list(os.environ):
        if key.startswith("NOVAFLOW_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_reads_environment_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVAFLOW_BUCKET", "team-bucket")
    monkeypatch.setenv("NOVAFLOW_REGION", "us-west-2")
    monkeypatch.setenv("NOVAFLOW_SUBNETS", "subnet-a, subnet-b")
    settings = load_settings()
    assert (settings.bucket, settings.region) == ("team-bucket", "us-west-2")
    assert settings.subnets == ["subnet-a", "subnet-b"]


def test_reads_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NOVAFLOW_BUCKET=from-dotenv\nNOVAFLOW_PREFIX=/runs/\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.bucket == "from-dotenv"
    assert settings.s3_uri("data", "x.jsonl") == "s3://from-dotenv/runs/data/x.jsonl"


def test_overrides_win_and_none_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVAFLOW_BUCKET", "env-bucket")
    assert load_settings(bucket="cli-bucket").bucket == "cli-bucket"
    assert load_settings(bucket=None).bucket == "env-bucket"


def test_missing_setting_is_one_line_naming_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOVAFLOW_BUCKET", raising=False)
    with pytest.raises(ConfigError) as err:
        load_settings().require("region", "bucket")
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        "Setting 'bucket' is not set: export NOVAFLOW_BUCKET=... (or put it in .env, "
        "or pass --bucket where the command offers it)."
    )


@pytest.mark.parametrize(
    ("var", "value", "fragment"),
    [
        ("NOVAFLOW_ROLE_ARN", "my-role", "must look like arn:aws:iam::<12-digit account>:role/<name>"),
        ("NOVAFLOW_REGION", "mars", "must be an AWS region name"),
        ("NOVAFLOW_BUCKET", "B", "must be an S3 bucket name"),
        ("NOVAFLOW_MAX_ATTEMPTS", "zero", "valid integer"),
    ],
)
def test_malformed_setting_is_one_line(monkeypatch: pytest.MonkeyPatch, var: str, value: str, fragment: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    name = var.removeprefix("NOVAFLOW_").lower()
    assert message.startswith(f"Setting '{name}' is malformed (")
    assert fragment in message and f"fix {var} in the environment or .env." in message
    assert "\n" not in message


def test_the_session_travels_with_a_copy_and_is_never_written_anywhere() -> None:
    import json
    import pickle

    import boto3
    from prefect.serializers import JSONSerializer
    from prefect.utilities.hashing import hash_objects

    plain = load_settings(region="us-west-2", bucket="my-bucket")
    key_id = "key-id-that-must-not-leak"  # a label, not an access-key-shaped string a secret scanner flags
    session = boto3.Session(aws_access_key_id=key_id, aws_secret_access_key="hush")
    signed = plain.with_session(session)
    assert (signed.session, plain.session) == (session, None)  # a copy: the original keeps the default chain
    assert signed.model_copy(update={"bucket": "other-bucket"}).session is session
    # Dumps, Prefect's JSON (flow run parameters, task cache keys) and pickles hold no credentials.
    assert signed.model_dump() == plain.model_dump()
    dumped = JSONSerializer().dumps(signed)
    assert key_id.encode() not in dumped and json.loads(dumped) == json.loads(JSONSerializer().dumps(plain))
    assert hash_objects(signed, raise_on_failure=True) == hash_objects(plain, raise_on_failure=True)
    restored = pickle.loads(pickle.dumps(signed))
    assert key_id.encode() not in pickle.dumps(signed)
    assert restored.session is None and restored.model_dump() == plain.model_dump()
    assert signed.session is session  # pickling took nothing from the original


ENV_CASES = {
    "environment": ({"NOVAFLOW_BUCKET": "env-bucket", "NOVAFLOW_SUBNETS": "subnet-a, subnet-b"}, ""),
    "dotenv": ({}, "NOVAFLOW_BUCKET=file-bucket\nexport NOVAFLOW_REGION=us-west-2\n# NOVAFLOW_PREFIX=x\n"),
    "environment wins": ({"NOVAFLOW_BUCKET": "env-bucket"}, "NOVAFLOW_BUCKET=file-bucket\nNOVAFLOW_PREFIX=p\n"),
    "any letter case": ({"novaflow_Bucket": "lower-bucket"}, "Novaflow_Region=eu-west-2\n"),
    "empty and quoted": ({"NOVAFLOW_ROLE_ARN": ""}, "NOVAFLOW_PREFIX='a b'\nNOVAFLOW_KMS_KEY_ID=\"alias/k\"\n"),
    "unknown and unprefixed": (
        {"NOVAFLOW_NOPE": "1", "BUCKET": "x"},
        "BUCKET=y\nNOVAFLOW_OTHER=2\nNOVAFLOW_MODEL\nNOVAFLOW_PREFIX=kept\n",
    ),
    "lists and quotas": (
        {"NOVAFLOW_QUOTAS": "ml.p5.48xlarge=8,serverless=2"},
        "NOVAFLOW_SECURITY_GROUP_IDS=sg-1,sg-2\n",
    ),
}


@pytest.mark.parametrize("case", list(ENV_CASES))
def test_environment_is_read_as_pydantic_settings_reads_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, case: str
) -> None:
    """Settings read the environment and .env themselves (start-up time); pydantic-settings, configured as the
    settings class was before, is the oracle for what a variable or a .env line gives."""
    from pydantic_settings import BaseSettings, SettingsConfigDict

    from novaflow.settings import NovaflowSettings, environment_values

    variables, dotenv = ENV_CASES[case]
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    if dotenv:
        (tmp_path / ".env").write_text(dotenv)

    class Raw(BaseSettings):  # every field as the text the sources give (no decoding, no validation)
        model_config = SettingsConfigDict(
            env_prefix="NOVAFLOW_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
        )

    fields = {name: (str | None, None) for name in NovaflowSettings.model_fields}
    from pydantic import create_model

    oracle = create_model("Oracle", __base__=Raw, **fields)  # type: ignore[call-overload]
    expected = {k: v for k, v in oracle().model_dump().items() if v is not None}
    assert environment_values() == expected
    assert expected  # every case sets something
