"""The one place that creates boto3 clients.

Every module asks :func:`get_client` for a client, so retries, timeouts and the endpoint (AWS or the embedded
AWS) are decided once. Local mode differs from AWS only in ``endpoint_url``. The credentials travel with the
settings a run was started with (``settings.session``, from its credentials block, else boto3's default chain for
the region): there is no process-wide session, so two runs in one process each sign as themselves. Clients are
cached per (service, region, endpoint, retry config) under their session, and created under a lock, because
creating clients from a boto3 session is not thread-safe while using a created low-level client is. A run's
clients are forgotten with its session.

Example:
    >>> s3 = get_client("s3", load_settings())
    >>> s3.list_buckets()["Buckets"]  # doctest: +SKIP
"""

from __future__ import annotations

import threading
import weakref
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from novaflow.errors import AwsError
from novaflow.settings import NovaflowSettings

_LOCK = threading.Lock()
# Clients per session, held weakly by the session: a run's clients go when its settings (and session) do.
_CLIENTS: weakref.WeakKeyDictionary[boto3.Session, dict[tuple[Any, ...], BaseClient]] = weakref.WeakKeyDictionary()
_SESSIONS: dict[str, boto3.Session] = {}

# Not ResourceLimitExceeded: a quota is not freed in the seconds a retry waits. A training job refused for quota
# waits its turn in novaflow.quotas.queue (minutes to hours); anything else over quota fails in one line.
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalFailure",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
        "RequestTimeout",
    }
)


def bills_like_aws(endpoint: str | None) -> bool:
    """Whether requests to ``endpoint`` reach AWS, which bills them: the default endpoints (``None``) and any host
    under amazonaws.com (VPC interface and FIPS endpoints included). Anything else (the embedded AWS, another
    emulator) bills nothing, and a cost estimate must say so rather than read like an invoice."""
    if not endpoint:
        return True
    host = (urlparse(endpoint).hostname or "").lower()
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws"))


def client_config(settings: NovaflowSettings, service: str = "") -> Config:
    """botocore config: adaptive retries (client-side rate limiting on throttles) and bounded timeouts.

    S3 signs with SigV4 everywhere, presigned links included: botocore would otherwise presign with the legacy
    scheme, which AWS has deprecated and newer regions refuse.
    """
    return Config(
        region_name=settings.region,
        retries={"mode": "adaptive", "max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=32,
        signature_version="s3v4" if service == "s3" else None,
    )


def get_client(service: str, settings: NovaflowSettings) -> BaseClient:
    """A cached, thread-shareable client for ``service`` in the settings' region, endpoint and session.

    The session is the one the settings carry (a prefect-aws ``AwsCredentials`` block's, see
    ``tasks.credentials.run_context``), else boto3's default credential chain for the region.
    """
    endpoint = settings.resolved_endpoint_url()
    key = (service, settings.region, endpoint, settings.max_attempts, settings.connect_timeout, settings.read_timeout)
    session = signing_session(settings)
    clients = _CLIENTS.get(session)
    client = clients.get(key) if clients is not None else None
    if client is not None:
        return client
    with _LOCK:
        clients = _CLIENTS.setdefault(session, {})
        client = clients.get(key)
        if client is None:
            client = session.client(service, endpoint_url=endpoint, config=client_config(settings, service))
            clients[key] = client
    return client


def signing_session(settings: NovaflowSettings) -> boto3.Session:
    """The session the settings' clients sign with: theirs, else the default chain's for their region."""
    if settings.session is not None:
        session: boto3.Session = settings.session
        return session
    found = _SESSIONS.get(settings.region)
    if found is not None:
        return found
    with _LOCK:
        return _SESSIONS.setdefault(settings.region, boto3.Session(region_name=settings.region))


def credential_source(settings: NovaflowSettings) -> str | None:
    """How botocore found the credentials the settings' clients sign with (``explicit``, ``env``,
    ``container-role``, ``iam-role``, ``sso``, ``assume-role`` ...), never the credentials themselves; None when
    there are none."""
    credentials = signing_session(settings).get_credentials()
    return credentials.method if credentials is not None else None


def clear_client_cache() -> None:
    """Forget cached clients (after the endpoint or credentials change, e.g. between local servers)."""
    with _LOCK:
        _CLIENTS.clear()
        _SESSIONS.clear()


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` or a wrapped :class:`AwsError`, else None."""
    if isinstance(exc, AwsError):
        return exc.code
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


def error_message(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Message", str(exc))
    return str(exc)


def is_retryable(exc: BaseException) -> bool:
    """True for throttling and transient AWS failures; False for anything a retry cannot fix."""
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
        return True
    code = error_code(exc)
    if code in RETRYABLE_CODES:
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or status == 429
    return False


def is_not_found(exc: BaseException) -> bool:
    """True when AWS says the named resource does not exist (the codes differ per service)."""
    code = error_code(exc) or ""
    if code in {
        "ResourceNotFoundException",
        "ResourceNotFound",
        "NoSuchEntity",
        "NoSuchKey",
        "NoSuchBucket",
        "404",
        "NotFound",
    }:
        return True
    if code == "ValidationException":
        text = error_message(exc).lower()
        return any(s in text for s in ("not found", "does not exist", "could not find", "cannot find"))
    return False


def wrap_client_error(exc: ClientError, what: str) -> AwsError:
    """One wrapping, at the boundary: keep the code, say what novaflow was doing."""
    code = error_code(exc)
    operation = getattr(exc, "operation_name", None)
    return AwsError(f"{what} failed: {code}: {error_message(exc)}", code=code, operation=operation)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; the key may be empty."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in S3 URI: {uri!r}")
    return bucket, key
