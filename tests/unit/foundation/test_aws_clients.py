"""The client factory: one cached client per configuration, local endpoint, retry policy, error helpers."""

from __future__ import annotations

import gc
import weakref

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError

from novaflow.aws import credential_source, get_client, is_not_found, is_retryable, split_s3_uri
from novaflow.settings import load_settings


def _client_error(code: str, message: str = "m", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


def test_client_uses_adaptive_retries_and_timeouts() -> None:
    client = get_client("sagemaker", load_settings(max_attempts=5, connect_timeout=3, read_timeout=7))
    config = client.meta.config
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 6}  # 5 retries + the first try
    assert (config.connect_timeout, config.read_timeout) == (3, 7)


def test_endpoint_setting_overrides_environment() -> None:
    client = get_client("s3", load_settings(endpoint_url="http://127.0.0.1:9"))
    assert client.meta.endpoint_url == "http://127.0.0.1:9"


def _signer(client: object) -> tuple[str, str]:
    return client._request_signer._credentials.access_key, client.meta.region_name  # type: ignore[attr-defined]


def test_clients_sign_with_the_session_their_settings_carry() -> None:
    base = load_settings(region="us-west-2")
    one = base.with_session(boto3.Session(aws_access_key_id="KEYONE", aws_secret_access_key="s", region_name="x"))
    two = load_settings(region="eu-west-2").with_session(
        boto3.Session(aws_access_key_id="KEYTWO", aws_secret_access_key="s")
    )
    assert _signer(get_client("s3", one)) == ("KEYONE", "us-west-2")  # the settings' region, not the session's
    assert _signer(get_client("s3", two)) == ("KEYTWO", "eu-west-2")
    # Settings without a session (the copy's original, a later run without a block) keep the default chain.
    assert base.session is None and _signer(get_client("s3", base)) == ("testing", "us-west-2")
    # One client per session and configuration, reused; another session is another client.
    assert get_client("s3", one) is get_client("s3", one.model_copy())
    assert get_client("s3", one) is not get_client("s3", two.model_copy(update={"region": "us-west-2"}))
    assert credential_source(one) == "explicit" and credential_source(base) == "env"


def test_a_runs_clients_go_with_its_session() -> None:
    session = boto3.Session(aws_access_key_id="KEYGONE", aws_secret_access_key="s")
    client = weakref.ref(get_client("sts", load_settings().with_session(session)))
    del session
    gc.collect()
    assert client() is None


def test_retry_and_not_found_predicates() -> None:
    assert is_retryable(_client_error("ThrottlingException"))
    assert is_retryable(_client_error("Whatever", status=503))
    assert is_retryable(EndpointConnectionError(endpoint_url="http://x"))
    assert not is_retryable(_client_error("ValidationException"))
    assert is_not_found(_client_error("ValidationException", "Requested resource not found"))
    assert is_not_found(_client_error("ResourceNotFoundException"))
    assert not is_not_found(_client_error("ValidationException", "bad instance type"))


def test_split_s3_uri() -> None:
    assert split_s3_uri("s3://b/k/x.json") == ("b", "k/x.json")
    assert split_s3_uri("s3://b") == ("b", "")
