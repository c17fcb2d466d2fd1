"""Session-wide test setup: fake credentials and the network guard for every test; the embedded AWS on demand.

Every test runs with fake AWS credentials, so nothing can reach real AWS even by accident, and the network guard
plugin fails any test that still tries to leave the machine. The embedded AWS (one moto server for the session,
its endpoint in ``AWS_ENDPOINT_URL``) starts the first time a test asks for it: ``tests/aws`` and ``tests/flows``
opt in through their conftest, a unit test never does (``tests/unit/conftest.py`` refuses it).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.plugins.network_guard", "tests.plugins.fast_lane"]

_SESSION_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",  # MLflow 3 reports usage to its servers otherwise (the guard would fail)
}


def pytest_configure(config: pytest.Config) -> None:
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        os.environ.pop(key, None)
    for key in list(os.environ):
        if key.startswith(("NOVAFLOW_", "MLFLOW_")):
            os.environ.pop(key)
    os.environ.update(_SESSION_ENV)
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="novaflow-prefect-home-"))
    config.addinivalue_line("markers", "allow_network_attempt: the test deliberately triggers the network guard")


@pytest.fixture(scope="session")
def local_aws_session() -> Iterator[object]:
    """One embedded AWS for the session, started on first use; its endpoint and fake credentials are in
    ``os.environ`` from then on."""
    from novaflow.local import LocalAws
    from novaflow.local.emulator import jobstate

    server = LocalAws().start()
    # Emulated jobs last at least 0.2 s (as in the emulator's own tests), not the 1 s a person running `novaflow
    # local up` sees: a flow run waits for five of them, and no test measures their length.
    jobstate.Timing.seconds = 0.2
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws(local_aws_session: object) -> Iterator[object]:
    """The embedded AWS, wiped back to its seeded state after the test."""
    yield local_aws_session
    local_aws_session.reset()  # type: ignore[attr-defined]
