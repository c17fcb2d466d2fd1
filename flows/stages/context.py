"""What every stage of a flow run is handed: the run's context, its model and registry group, its log and waits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flows.params import WaitParams
from flows.stages.run_log import RunLog
from novaflow.runs.context import RunContext
from novaflow.settings import NovaflowSettings


@dataclass
class StageContext:
    """Built once per flow run, passed to every stage (the stages read nothing process-wide)."""

    run: RunContext
    model: str
    log: RunLog
    wait: WaitParams
    group: str | None = None
    """The model package group training stages register in (None: registry off)."""
    work: Path | None = None
    """This flow run's local scratch directory (prepared files), when the flow has one."""

    @property
    def settings(self) -> NovaflowSettings:
        return self.run.settings

    @property
    def prefix(self) -> str:
        return self.run.prefix

    @property
    def scratch(self) -> Path:
        if self.work is None:
            raise ValueError(f"run {self.run.run_name}: this flow has no local scratch directory")
        return self.work
