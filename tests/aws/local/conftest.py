"""Fixtures for the emulator's tests: fast jobs, transitions unset afterwards, synthetic data in S3."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from novaflow.local.emulator import jobstate


@pytest.fixture
def twin(aws: object) -> Iterator[object]:
    """The embedded AWS with short emulated jobs; transitions and timing restored after the test."""
    saved = jobstate.Timing.seconds
    aws.control.set_job_duration(0.2)  # type: ignore[attr-defined]
    try:
        yield aws
    finally:
        aws.control.unset_transitions()  # type: ignore[attr-defined]
        jobstate.Timing.seconds = saved
