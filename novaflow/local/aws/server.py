"""The embedded AWS: moto in server mode on loopback, seeded for novaflow.

Server mode (not in-process ``mock_aws``) because Prefect workers, process pools and CLI subprocesses must reach
the same fake AWS through ``AWS_ENDPOINT_URL``. The emulator of the Nova service side
(:mod:`novaflow.local.aws.patches`) is installed into this process before the first request, since moto builds its
per-service apps lazily.

Example:
    >>> with LocalAws() as aws:            # doctest: +SKIP
    ...     print(aws.url)                  # http://127.0.0.1:<free port>
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from novaflow.local.aws.console import CONSOLE_PATH
from novaflow.local.aws.control import EmulatorControl

LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"
LOCAL_BUCKET = "novaflow-local"
LOCAL_ROLE_NAME = "novaflow-local-sagemaker-execution"
LOCAL_ROLE_ARN = f"arn:aws:iam::{LOCAL_ACCOUNT}:role/{LOCAL_ROLE_NAME}"
FAKE_CREDENTIAL = "testing"

SAGEMAKER_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def fake_aws_environment(url: str, region: str = LOCAL_REGION) -> dict[str, str]:
    """The variables a shell, subprocess or Prefect worker needs to use the embedded AWS and nothing else."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIAL,
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIAL,
        "AWS_SESSION_TOKEN": FAKE_CREDENTIAL,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "NOVAFLOW_REGION": region,
        "NOVAFLOW_BUCKET": LOCAL_BUCKET,
        "NOVAFLOW_ROLE_ARN": LOCAL_ROLE_ARN,
        "SAGEMAKER_VALIDATE_ROLE": "false",
        "NOVAFLOW_CONSOLE_URL": url + CONSOLE_PATH,
    }


class LocalAws:
    """Start, seed and stop the embedded AWS.

    ``set_environ`` exports :func:`fake_aws_environment` into ``os.environ`` while running (and restores it),
    so every boto3 client in this process and its children talks to the local server.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        set_environ: bool = True,
        region: str = LOCAL_REGION,
        emulator: bool = True,
        hyperpod: tuple[str, ...] = (),
        quotas: dict[str, int] | None = None,
    ) -> None:
        self.host = host
        self.quotas = dict(quotas or {})
        """The account's training quotas (instances per type), set at start and after every reset."""
        self.port = port
        self.region = region
        self.set_environ = set_environ
        self.emulator = emulator
        self.hyperpod = tuple(hyperpod)
        """``CLUSTER:TYPE=N`` HyperPod clusters created at start (and again after a reset)."""
        self._server: Any = None
        self._saved_env: dict[str, str | None] = {}
        self.url = ""

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> LocalAws:
        # Deferred for start-up time (here, clear_client_cache's and seed's): moto and boto3 cost about a second
        # that importing novaflow.local (LOCAL_BUCKET in tests, the CLI without --local) must not pay.
        from moto.server import ThreadedMotoServer

        silence_request_log()
        # Read by moto when a backend is first created, so it must be in place before the first request.
        os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "false")
        if self.emulator:
            from novaflow.local.aws import patches  # start-up time: moto, see above

            patches.install()
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        if self.set_environ:
            self._export(self.env)
        self.configure({"lambda": {"use_docker": False}})
        self.seed()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        from novaflow.aws import clear_client_cache  # start-up time: boto3, see start()

        clear_client_cache()

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers ---------------------------------------------------------------------------------------
    @property
    def control(self) -> EmulatorControl:
        """An :class:`~novaflow.local.aws.control.EmulatorControl` for this server (fault injection, transitions)."""
        return EmulatorControl(self.url)

    @property
    def env(self) -> dict[str, str]:
        """The fake AWS environment; with HyperPod clusters, the first one is the default cluster."""
        values = fake_aws_environment(self.url, self.region)
        if self.hyperpod:
            # only a server started with HyperPod clusters needs it
            from novaflow.local.aws.hyperpod_setup import parse_hyperpod_option

            values["NOVAFLOW_HYPERPOD_CLUSTER"] = parse_hyperpod_option(self.hyperpod[0]).name
        return values

    def export_lines(self) -> list[str]:
        """``export`` lines for a shell or a Prefect worker in another terminal."""
        return [f"export {k}={v}" for k, v in self.env.items()]

    def _export(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        from novaflow.aws import clear_client_cache  # start-up time: boto3, see start()

        clear_client_cache()

    def api(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST (or GET without a body) to moto's control API, e.g. ``/moto-api/reset``."""
        data = None if body is None else json.dumps(body).encode()
        method = "GET" if body is None and path.endswith(".json") else "POST"
        req = urllib.request.Request(  # noqa: S310 - loopback http
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback http
            raw = resp.read()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw

    def configure(self, config: dict[str, Any]) -> None:
        self.api("/moto-api/config", config)

    def reset(self) -> None:
        """Wipe every backend, then re-apply configuration and seed data (between tests)."""
        self.api("/moto-api/reset", {})
        if self.emulator:
            from novaflow.local.aws import patches  # start-up time: moto, see start()

            patches.reset()
        self.configure({"lambda": {"use_docker": False}})
        self.seed()

    def seed(self) -> None:
        """The default bucket, a SageMaker execution role that trusts sagemaker.amazonaws.com, the quotas."""
        import boto3

        if self.quotas and self.emulator:
            self.control.set_quotas(self.quotas)
        session = boto3.Session(
            aws_access_key_id=FAKE_CREDENTIAL,
            aws_secret_access_key=FAKE_CREDENTIAL,
            aws_session_token=FAKE_CREDENTIAL,
            region_name=self.region,
        )
        s3 = session.client("s3", endpoint_url=self.url)
        iam = session.client("iam", endpoint_url=self.url)
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if LOCAL_BUCKET not in existing:
            s3.create_bucket(Bucket=LOCAL_BUCKET)
        try:
            iam.get_role(RoleName=LOCAL_ROLE_NAME)
        except iam.exceptions.NoSuchEntityException:
            iam.create_role(
                RoleName=LOCAL_ROLE_NAME,
                AssumeRolePolicyDocument=json.dumps(SAGEMAKER_TRUST_POLICY),
                Description="SageMaker execution role of the embedded AWS",
                Tags=[{"Key": "novaflow:local", "Value": "true"}],
            )
        for text in self.hyperpod:
            self.add_hyperpod(text)

    def add_hyperpod(self, text: str) -> dict[str, Any]:
        """Create a HyperPod cluster from ``CLUSTER:TYPE=N`` (``novaflow local up --hyperpod``); returns its
        ``DescribeCluster``."""
        import boto3

        # only a server started with HyperPod clusters needs it
        from novaflow.local.aws.hyperpod_setup import create_hyperpod_cluster, parse_hyperpod_option

        session = boto3.Session(
            aws_access_key_id=FAKE_CREDENTIAL,
            aws_secret_access_key=FAKE_CREDENTIAL,
            aws_session_token=FAKE_CREDENTIAL,
            region_name=self.region,
        )
        return create_hyperpod_cluster(session, self.url, parse_hyperpod_option(text), LOCAL_ROLE_ARN)


def silence_request_log() -> None:
    """moto's server logs one werkzeug line per request; ``verbose=False`` does not stop it."""
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)


@contextmanager
def local_aws(**kwargs: Any) -> Iterator[LocalAws]:
    """Context-manager form of :class:`LocalAws`."""
    server = LocalAws(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()
