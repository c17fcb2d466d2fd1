"""One run's context: who it works as, where, and under which name - built once, passed to every stage.

A flow run picks its AWS credentials (a prefect-aws block or the worker's own chain) once, at its start. What it
picked travels as this object to the stages and the tasks they call, so two runs in one process (tests, ``serve``,
a sweep's variants) never see each other's account, region or endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from novaflow.settings import NovaflowSettings


@dataclass(frozen=True)
class RunContext:
    """The run's name and settings (region, bucket, endpoint, and the boto3 session they sign with)."""

    run_name: str
    settings: NovaflowSettings

    @property
    def prefix(self) -> str:
        """``s3://<bucket>/<prefix>/runs/<run_name>``: the run's data, judge sets and report."""
        return self.settings.s3_uri("runs", self.run_name)
