"""Tests against the embedded AWS: every test here runs with it started (and its endpoint in the environment)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _embedded_aws(local_aws_session: object) -> object:
    return local_aws_session


@pytest.fixture
def no_sdk_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sagemaker SDK reports usage to an AWS endpoint; the fidelity tests never leave the machine."""
    from sagemaker.core.telemetry import telemetry_logging

    for name in ("_send_telemetry_request", "_send_telemetry_request_sync"):
        if hasattr(telemetry_logging, name):
            monkeypatch.setattr(telemetry_logging, name, lambda *args, **kwargs: None)
