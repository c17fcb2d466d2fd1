"""Credentials from a prefect-aws ``AwsCredentials`` block, carried by the settings a flow run passes down.

Teams keep AWS credentials in a Prefect block so that workers need no key files, and pick the block in the
deployment's run form (the ``aws_credentials`` parameter of every flow: the block itself, or its document name).
The domain never imports Prefect, so this module turns the block into what the domain understands: settings built
once from the block's region and endpoint that carry the block's boto3 session
(:meth:`novaflow.settings.NovaflowSettings.with_session`). The flow passes them (in its :class:`RunContext`) to
every stage and task; nothing is installed process-wide, so a run without a block, or another run in the same
process, never signs with this block's keys. A run logs the identity it works as (from STS, never a key), so the
person reading the run knows which account and role paid for what.

Example:
    >>> settings = settings_from_block("novaflow-aws", bucket="my-bucket")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError
from prefect import get_run_logger
from prefect.blocks.core import Block
from prefect_aws import AwsCredentials

from novaflow.aws import credential_source, error_code, error_message, get_client
from novaflow.errors import ConfigError
from novaflow.runs.context import RunContext
from novaflow.settings import NovaflowSettings, load_settings

CredentialsParameter = AwsCredentials | str | None
"""The type of the ``aws_credentials`` flow parameter (the UI offers a block picker for it)."""


def load_credentials(block: AwsCredentials | str) -> AwsCredentials:
    """The block itself, or the ``AwsCredentials`` document of that name on the Prefect server."""
    if isinstance(block, AwsCredentials):
        return block
    try:
        credentials = AwsCredentials.load(block)
    except ValueError as exc:
        if "Unable to find block document" not in str(exc):
            raise
        raise ConfigError(
            f"AwsCredentials block {block!r} does not exist on the Prefect server: create it (UI: Blocks > "
            "AWS Credentials) or fix the aws_credentials parameter."
        ) from None
    assert isinstance(credentials, AwsCredentials)  # sync caller: load() returned the block, not a coroutine
    return credentials


def settings_from_credentials(credentials: AwsCredentials, **overrides: Any) -> NovaflowSettings:
    """Settings in the block's region and endpoint (explicit overrides win), signing with the block's session."""
    given = {**_block_settings(credentials), **{k: v for k, v in overrides.items() if v is not None}}
    return load_settings(**given).with_session(credentials.get_boto3_session())


def _block_settings(credentials: AwsCredentials) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if credentials.region_name:
        values["region"] = credentials.region_name
    params = credentials.aws_client_parameters
    if params is not None and params.endpoint_url:
        values["endpoint_url"] = str(params.endpoint_url)
    return values


def settings_from_block(block: AwsCredentials | str | None, **overrides: Any) -> NovaflowSettings:
    """The settings a run (or a hook rebuilding one) works with: from the block, by name or instance, or from the
    environment and boto3's default chain when there is none."""
    if block is None:
        return load_settings(**overrides)
    return settings_from_credentials(load_credentials(block), **overrides)


def use_run_credentials(aws_credentials: CredentialsParameter, **overrides: Any) -> NovaflowSettings:
    """Called once at the start of every flow: the run's settings from its block (or the process's own
    environment and credentials when there is none); logs the identity and region the run works as. Bad
    credentials stop the run here, in one line, before anything is uploaded or submitted."""
    if aws_credentials is None:
        source = "the worker's credential chain"
        settings = load_settings(**overrides)
    else:
        credentials = load_credentials(aws_credentials)
        settings = settings_from_credentials(credentials, **overrides)
        name = aws_credentials if isinstance(aws_credentials, str) else credentials._block_document_name
        source = f"AwsCredentials block {name!r}" if name else "an AwsCredentials block given in code"
    get_run_logger().info(describe_identity(settings, source))
    return settings


def run_context(aws_credentials: CredentialsParameter, run_name: str, **overrides: Any) -> RunContext:
    """The run's context, built once at the start of a flow from its ``aws_credentials`` parameter (see
    :func:`use_run_credentials`) and handed to every stage; its settings carry the run's session."""
    return RunContext(run_name=run_name, settings=use_run_credentials(aws_credentials, **overrides))


def describe_identity(settings: NovaflowSettings, source: str) -> str:
    """``AWS identity <arn> (account <id>), region <r>; credentials from <source> (<method>)[ - endpoint <url>]``."""
    try:
        identity = get_client("sts", settings).get_caller_identity()
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise ConfigError(f"No usable AWS credentials from {source} ({exc}): {_fix(source)}") from None
    except ClientError as exc:
        raise ConfigError(
            f"AWS rejected the credentials from {source} ({error_code(exc)}: {error_message(exc)}): {_fix(source)}"
        ) from None
    endpoint = settings.resolved_endpoint_url()
    method = credential_source(settings)
    how = f" ({method})" if method else ""
    # The endpoint goes last, on its own: the Prefect UI turns a URL into a link up to the next space, so a
    # ";" right after it would become part of the link.
    where = f" - endpoint {endpoint}" if endpoint else ""
    return (
        f"AWS identity {identity['Arn']} (account {identity['Account']}), region {settings.region}; "
        f"credentials from {source}{how}{where}"
    )


def _fix(source: str) -> str:
    if source.startswith("AwsCredentials block"):
        return "fix the block's keys, profile or role, or pick another block."
    return "give the worker AWS credentials (task role, instance profile, environment) or pick an AwsCredentials block."


def credentials_from_parameters(parameters: dict[str, Any]) -> AwsCredentials | str | None:
    """The run's block from a flow run's stored parameters (a hook may run in another process).

    The server keeps what the form sent: a document name, a ``{"$ref": ...}`` to the block document, or, for a
    block given in code, its fields with the secret masked (unusable: None).
    """
    value = parameters.get("aws_credentials")
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and "$ref" in value:
        block = Block.load_from_ref(value["$ref"])
        return block if isinstance(block, AwsCredentials) else None
    return None
