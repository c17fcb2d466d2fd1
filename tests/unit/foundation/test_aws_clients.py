"""The client factory: one cached client per configuration, local endpoint, retry policy, error helpers."""

from __future__ import annotations

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError

from novaflow.aws import get_client, is_not_found, is_retryable, split_s3_uri, use_session
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


def test_use_session_routes_new_clients_through_it() -> None:
    session = boto3.Session(aws_access_key_id="blockkey", aws_secret_access_key="s", region_name="us-east-1")
    try:
        use_session(session)
        creds = get_client("s3").meta.events  # created from the block's session
        assert creds is not None
        assert get_client("s3")._request_signer._credentials.access_key == "blockkey"
    finally:
        use_session(None)
    assert get_client("s3")._request_signer._credentials.access_key == "testing"


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
