"""Credentials from a prefect-aws ``AwsCredentials`` block, applied to every client a flow run creates.

Teams keep AWS credentials in a Prefect block so that workers need no key files, and pick the block in the
deployment's run form (the ``aws_credentials`` parameter of every flow: the block itself, or its document name).
The domain never imports Prefect, so this module turns the block into what the domain understands: a boto3
session for :func:`novaflow.aws.use_session` and the block's region / endpoint as settings every later
``load_settings()`` starts from. A run logs the identity it works as (from STS, never a key), so the person
reading the run knows which account and role paid for what.

Example:
    >>> settings = apply_credentials_block("novaflow-aws", bucket="my-bucket")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError
from prefect import get_run_logger
from prefect.blocks.core import Block
from prefect_aws import AwsCredentials

from novaflow.aws import credential_source, current_session, error_code, error_message, get_client, use_session
from novaflow.errors import ConfigError
from novaflow.settings import NovaflowSettings, applied_overrides, apply_overrides, load_settings

CredentialsParameter = AwsCredentials | str | None
"""The type of the ``aws_credentials`` flow parameter (the UI offers a block picker for it)."""

# What the process used before a run applied its block, so that a later run without a block goes back to it
# (a process may run several flows: tests, `serve`, a Python session) instead of inheriting the last block.
_BEFORE_RUNS: list[tuple[Any, dict[str, Any]]] = []


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
    """Region and endpoint URL of the block as settings (explicit overrides win)."""
    return load_settings(**{**_block_settings(credentials), **{k: v for k, v in overrides.items() if v is not None}})


def _block_settings(credentials: AwsCredentials) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if credentials.region_name:
        values["region"] = credentials.region_name
    params = credentials.aws_client_parameters
    if params is not None and params.endpoint_url:
        values["endpoint_url"] = str(params.endpoint_url)
    return values


def apply_credentials_block(block: AwsCredentials | str, **overrides: Any) -> NovaflowSettings:
    """Load the block (by name or instance), route every novaflow client through it, return the settings.

    The block's region and endpoint become what every later ``load_settings()`` starts from, so domain code
    that loads its own settings (image URIs, ARNs, clients) works in the block's region.
    """
    credentials = load_credentials(block)
    use_session(credentials.get_boto3_session())
    apply_overrides(**_block_settings(credentials))
    return settings_from_credentials(credentials, **overrides)


def use_run_credentials(aws_credentials: CredentialsParameter) -> NovaflowSettings:
    """Called once at the start of every flow: apply the run's block (or the process's own credentials when
    there is none) and log the identity and region the run works as. Bad credentials stop the run here, in one
    line, before anything is uploaded or submitted."""
    if aws_credentials is None:
        if _BEFORE_RUNS:
            session, overrides = _BEFORE_RUNS.pop()
            use_session(session)
            apply_overrides(**overrides)
        source = "the worker's credential chain"
        settings = load_settings()
    else:
        if not _BEFORE_RUNS:
            _BEFORE_RUNS.append((current_session(), applied_overrides()))
        credentials = load_credentials(aws_credentials)
        settings = apply_credentials_block(credentials)
        name = aws_credentials if isinstance(aws_credentials, str) else credentials._block_document_name
        source = f"AwsCredentials block {name!r}" if name else "an AwsCredentials block given in code"
    get_run_logger().info(describe_identity(settings, source))
    return settings


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
    method = credential_source()
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
