"""Tests against the embedded AWS: every test here runs with it started (and its endpoint in the environment)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _embedded_aws(local_aws_session: object) -> object:
    return local_aws_session
