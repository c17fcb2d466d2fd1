"""Unit tests run without the embedded AWS: a test that needs it belongs in ``tests/aws``."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_embedded_aws(request: pytest.FixtureRequest) -> None:
    if "local_aws_session" in request.fixturenames:
        pytest.fail(f"{request.node.nodeid} uses the embedded AWS: move it to tests/aws (unit tests never start it)")
