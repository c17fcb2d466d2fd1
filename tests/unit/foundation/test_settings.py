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
