"""What the CLI says when a command fails: one line that names the problem and what to do about it.

A novaflow error already reads that way. The rest are conditions a user can fix that arrive as library exceptions
— no AWS credentials, an endpoint that does not answer, a temporary Prefect server too slow to start, a parameters
file that does not validate — and each gets its hint here. Anything else is a bug: its line says so and how to see
the traceback. Classes are matched by name and module so that explaining a failure never imports a library.
"""

from __future__ import annotations

import os

from novaflow.errors import NovaflowError

PREFECT_TIMEOUT_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
DEBUG_HINT = "run `novaflow --debug ...` for the traceback"


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def explain(exc: BaseException) -> str:
    """One line for ``exc`` (without the ``error:`` prefix)."""
    if isinstance(exc, NovaflowError):
        return str(exc)
    names = _names(exc)
    text = str(exc)
    if names & {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}:
        return (
            f"no usable AWS credentials ({text}): configure a profile (`aws configure`, AWS_PROFILE), sign in "
            "(`aws sso login`) or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; `--local` needs none"
        )
    if "NoRegionError" in names:
        return f"{text}: export NOVAFLOW_REGION (or AWS_REGION)"
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"}:
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        where = f"AWS_ENDPOINT_URL={endpoint}" if endpoint else "the AWS endpoint"
        fix = (
            "is `novaflow local up` still running? (unset AWS_ENDPOINT_URL to use AWS)"
            if endpoint
            else "check the network, a proxy or VPC endpoint, and NOVAFLOW_REGION"
        )
        return f"cannot reach {where} ({text}): {fix}"
    if "ClientError" in names and _code(exc) in _CREDENTIAL_CODES:
        return (
            f"AWS rejected the credentials ({_code(exc)}: {text}): refresh them (`aws sso login`) or pick another "
            "profile"
        )
    if "Timed out while attempting to connect to ephemeral Prefect API server" in text or (
        "RuntimeError" in names and "ephemeral" in text.lower() and "prefect" in text.lower()
    ):
        return (
            f"the temporary Prefect server did not start in time ({text.split('.', 1)[0]}): raise "
            f"{PREFECT_TIMEOUT_SETTING} (e.g. 180) on a busy machine, or start one yourself with "
            "`prefect server start` and export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    if "ValidationError" in names and hasattr(exc, "errors"):
        return f"invalid parameters: {validation_line(exc)}"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or text}"
    return f"unexpected {type(exc).__name__}: {text or 'no message'} ({DEBUG_HINT})"


_CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AuthFailure",
    }
)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code", ""))


def validation_line(exc: BaseException) -> str:
    """A pydantic ValidationError as one line: the first problem with its dotted location, and how many more."""
    errors = exc.errors()  # type: ignore[attr-defined]
    if not errors:
        return str(exc).splitlines()[0]
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"
