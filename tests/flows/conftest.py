"""One Prefect test server for every flow test in the session (about 10 s to start on 2 cores).

The heartbeat thread is disabled because the sync engine joins it at the end of every flow run (about 1 s each),
and the task-run recorder because its SQLite writes collide with API writes (2 s retry stalls). See
docs/prefect.md#tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _embedded_aws(local_aws_session: object) -> object:
    """Flows talk to the embedded AWS: every flow test runs with it started."""
    return local_aws_session


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    os.environ["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED"] = "false"
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        with prefect_test_harness(server_startup_timeout=90):
            yield
