"""What every stage of a flow run is handed: the run's context, its model and registry group, its log and waits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flows.params import WaitParams
from flows.stages.run_log import RunLog
from novaflow.runs.context import RunContext
from novaflow.settings import NovaflowSettings
from tasks.runs import current_flow_run_id


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
    owner: str | None = None
    """The flow run whose job ledger lists this run's jobs (None: the flow run the stage runs in). A sweep's variant
    subflows ledger their jobs under the sweep's run: its process is the one whose cancellation and crash hooks
    run, and the orphan sweeper judges the sweep's run, not subflow runs left behind as Running by a crash."""

    @property
    def settings(self) -> NovaflowSettings:
        return self.run.settings

    @property
    def prefix(self) -> str:
        return self.run.prefix

    def owner_id(self) -> str:
        """The id of the flow run that owns this run's jobs (see :attr:`owner`)."""
        return self.owner or current_flow_run_id()

    @property
    def scratch(self) -> Path:
        if self.work is None:
            raise ValueError(f"run {self.run.run_name}: this flow has no local scratch directory")
        return self.work
