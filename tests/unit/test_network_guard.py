"""The network guard fails a test that tries to reach a public AWS host, naming the host."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_request_to_public_aws_host_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("pytest_plugins = ['tests.plugins.network_guard']\n")
    pytester.makepyfile(
        """
        import boto3
        from botocore.config import Config

        def test_leaves_the_machine(monkeypatch):
            monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
            s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y",
                              config=Config(retries={"max_attempts": 1}))
            try:
                s3.list_buckets()
            except Exception:
                pass  # even a swallowed error must fail the test
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*non-loopback address: s3.amazonaws.com:443*"])


def test_loopback_is_allowed() -> None:
    from tests.plugins.network_guard import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("s3.amazonaws.com") and not is_loopback("10.0.0.1") and not is_loopback("8.8.8.8")
