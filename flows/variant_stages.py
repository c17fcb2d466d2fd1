"""A variant's stages in its own flow run, meeting the other variants at the stages they share.

:func:`run_variant` runs one variant's graph: each stage with its node's context (:mod:`flows.sweep_graph`), and
the stages several variants share through a *meeting point* keyed by the stage's signature, so shared work is done
once and never twice at the same time - in one process :class:`novaflow.sweeps.runs.SingleFlight`, across
processes :func:`leased_meeting` (an S3 lease per shared stage). It returns a :class:`VariantResult`, which a
deployment run persists for the sweep to read: so it lives here, in a module imported by its name, and not in the
flow's entrypoint module (Prefect loads that one by its path, and a class pickled from it could not be loaded back
by the sweep).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flows.graph import run_stages
from flows.params import resolve_model
from flows.stages.compare import COMPARE
from flows.stages.context import StageContext
from flows.stages.prepare_data import DATA
from flows.stages.run_log import RunLog
from flows.stages.training import TrainedModel
from flows.sweep_graph import NodeContexts, SweepSetup
from novaflow.errors import NovaflowError
from novaflow.evaluation.compare import StageComparison
from novaflow.jobs.records import JobRecord
from novaflow.jobs.series import TrainingSeries
from novaflow.runs.context import RunContext
from novaflow.runs.graph import Clock, Graph, StageTiming
from novaflow.runs.lease import RunNameLease
from novaflow.settings import NovaflowSettings
from tasks.runs import current_flow_run_id

Meet = Callable[[str, Callable[[], Any]], Any]
"""A meeting point of the variants: ``meet(signature, call)`` runs ``call`` for the shared stage ``signature``
unless another variant runs it (or ran it), and returns the stage's output."""

SHARED_STAGE_POLL_SECONDS = 2.0


class SweepStopped(NovaflowError):
    """A variant's stage not started because the sweep is stopping (another variant failed)."""


@dataclass
class VariantResult:
    """What a variant's run hands the sweep: what its leaderboard row and the report read, by the variant's own
    stage keys (the sweep names them by node with its merged graph: a variant's run of an earlier sweep, given back
    by its idempotency key, may have been planned beside other variants)."""

    name: str
    flow_run_id: str
    comparison: StageComparison | None = None
    """The variant's stage comparison (its last stage against the baseline), None when it has one stage."""
    candidate: TrainedModel | None = None
    """The variant's last training stage's model (checkpoint, model package version)."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """Stage key -> output, for the evaluations and the data (the winner's smoke test reads the evaluation rows)."""
    timings: list[StageTiming] = field(default_factory=list)
    """The stages this run ran itself (not those it met another variant at), as offsets on the sweep's clock."""
    jobs: dict[str, dict[str, JobRecord]] = field(default_factory=dict)
    """Stage key -> {job key -> job record}: every job the variant used (shared ones included)."""
    curves: dict[str, TrainingSeries] = field(default_factory=dict)
    """Stage key -> training curve."""


def run_variant(
    name: str,
    setup: SweepSetup,
    nodes: NodeContexts,
    meet: Meet,
    ctx: StageContext,
    stopped: Callable[[], str | None] = lambda: None,
) -> VariantResult:
    """Run ``name``'s stages (each with its node's context; the shared ones through ``meet``) as a graph. Stages
    keep their keys (``sft``, ``rft``) in the variant's own log. ``stopped()`` gives a reason when the sweep stops
    (another variant failed): no stage starts after it."""
    merged = setup.merged
    plan = setup.plans[name]
    ran: set[str] = set()
    stages = []
    for key, stage in plan.graph.stages.items():
        node = merged.node_of[(name, key)]
        node_ctx = nodes.for_node(node)
        shared = len(merged.shared_by[node]) > 1

        def run(_: Any, inputs: Any, stage: Any = stage, key: str = key, node_ctx: StageContext = node_ctx) -> Any:
            reason = stopped()
            if reason:
                raise SweepStopped(f"not started: {reason}")
            ran.add(key)
            return stage.run(node_ctx, inputs)

        if shared:
            signature = merged.signature_of[node]

            def meeting(_: Any, inputs: Any, signature: str = signature, run: Any = run) -> Any:
                return meet(signature, lambda: run(None, inputs))

            stages.append(replace(stage, run=meeting))
        else:
            stages.append(replace(stage, run=run))
    outputs = run_stages(Graph(stages), ctx).outputs
    kept = [key for key in (*plan.evaluations, DATA) if key in outputs]
    return VariantResult(
        name=name,
        flow_run_id=current_flow_run_id(),
        comparison=outputs.get(COMPARE),
        candidate=outputs.get(plan.candidate) if plan.candidate else None,
        outputs={key: outputs[key] for key in kept},
        timings=[t for t in ctx.log.timeline() if t.key in ran],
        jobs=nodes.jobs(name),
        curves=nodes.curves(name),
    )


def variant_timeline(setup: SweepSetup, results: Mapping[str, VariantResult]) -> list[StageTiming]:
    """The sweep's timeline by node: each stage when the variant that ran it did (the first, when several ran a
    shared stage in turn: the later ones only attached to its job)."""
    first: dict[str, StageTiming] = {}
    for name, result in results.items():
        for t in result.timings:
            node = setup.merged.node_of[(name, t.key)]
            if node not in first or t.start < first[node].start:
                first[node] = StageTiming(node, t.start, t.end, t.status)
    return sorted(first.values(), key=lambda t: (t.start, t.key))


def variant_jobs(setup: SweepSetup, result: VariantResult) -> dict[str, JobRecord]:
    """Every job a variant used by node (``sft``, ``lr-1e-05/rft``, ``<node>-<part>``)."""
    out: dict[str, JobRecord] = {}
    for key, jobs in result.jobs.items():
        node = setup.merged.node_of[(result.name, key)]
        out.update({node + job[len(key) :]: record for job, record in jobs.items()})
    return out


def leased_meeting(sweep: str, settings: NovaflowSettings, holder_id: str, wait_seconds: float) -> Meet:
    """Variants in separate processes meet through an S3 lease per shared stage (``runs/<sweep>/shared/<sig>``):
    one runs the stage; the others wait for the lease, then run it as a re-run does (attaching to its job)."""
    holder = f"sweep variant run {holder_id}, pid {os.getpid()} on {socket.gethostname()}"

    def meet(signature: str, call: Callable[[], Any]) -> Any:
        lease = RunNameLease(f"{sweep}/shared/{signature[:12]}", holder=holder, holder_id=holder_id, settings=settings)
        lease.acquire(wait_seconds, poll_seconds=SHARED_STAGE_POLL_SECONDS)
        try:
            return call()
        finally:
            lease.release()

    return meet


def variant_context(setup: SweepSetup, name: str, run: RunContext, work: Path, clock: Clock) -> StageContext:
    """The context the variant's graph runs with: its log (its own timeline, on the sweep's clock)."""
    params = setup.params[name]
    model = resolve_model(params.model, run.settings)
    return StageContext(run, model, RunLog(f"{setup.name}/{name}", clock=clock), params.wait, None, work)
