"""Settings and credentials from a prefect-aws ``AwsCredentials`` block.

Teams keep AWS credentials in a Prefect block so that workers need no key files; the domain never imports
Prefect, so this module turns the block into what the domain understands: a boto3 session for
:func:`novaflow.aws.use_session` and the region / endpoint as settings overrides.

Example:
    >>> settings = apply_credentials_block("novaflow-aws", bucket="my-bucket")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from prefect_aws import AwsCredentials

from novaflow.aws import use_session
from novaflow.settings import NovaflowSettings, load_settings


def settings_from_credentials(credentials: AwsCredentials, **overrides: Any) -> NovaflowSettings:
    """Region and endpoint URL of the block as settings (explicit overrides win)."""
    values: dict[str, Any] = {}
    if credentials.region_name:
        values["region"] = credentials.region_name
    params = credentials.aws_client_parameters
    if params is not None and params.endpoint_url:
        values["endpoint_url"] = str(params.endpoint_url)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return load_settings(**values)


def apply_credentials_block(block: str | AwsCredentials, **overrides: Any) -> NovaflowSettings:
    """Load the block (by name or instance), route every novaflow client through it, return the settings."""
    credentials = AwsCredentials.load(block) if isinstance(block, str) else block
    assert isinstance(credentials, AwsCredentials)  # sync caller: load() returned the block, not a coroutine
    use_session(credentials.get_boto3_session())
    return settings_from_credentials(credentials, **overrides)
