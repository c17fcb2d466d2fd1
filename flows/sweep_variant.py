"""`sweep-variant`: one variant of a sweep as a flow run of its own - its stages, logs and artifacts in one place.

The sweep (:mod:`flows.sweep`) runs each variant this way: as a subflow in its own process (the default), or as a
run of the ``sweep-variant`` deployment on a work pool (``variant_runs: deployment``). A variant's run runs the
stages of its end-to-end graph; the stages it shares with other variants (:mod:`flows.sweep_graph`) go through a
*meeting point* keyed by the stage's signature, so shared work is done once and never twice at the same time:

- subflows meet in the sweep's process (:class:`novaflow.sweeps.runs.SingleFlight`): the first variant to reach a
  shared stage runs it, the others wait and take its output - one data upload, one baseline, one SFT job;
- deployment runs meet through an S3 lease per signature (:mod:`novaflow.runs.lease`, shared by every worker of
  the account): one runs the stage, the others wait for the lease, then run it again as a re-run does - its job
  is found by its spec-hash name and attached to (no second job), its data written to the same place.

The run returns a :class:`VariantResult` (persisted, so the sweep reads a deployment run's result from the result
storage) from which the sweep builds the leaderboard.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow

from flows.hooks import JOB_HOOKS
from flows.params import EndToEndParams
from flows.runners import thread_pool
from flows.stages.prepare_data import flow_run_scratch
from flows.sweep_graph import NodeContexts, SweepVariant, sweep_setup
from flows.variant_stages import VariantResult, leased_meeting, run_variant, variant_context
from novaflow.errors import ConfigError
from novaflow.runs.graph import Clock
from novaflow.sweeps.runs import VARIANT_FLOW
from tasks.credentials import CredentialsParameter, run_context
from tasks.runs import current_flow_run_id


@flow(name=VARIANT_FLOW, task_runner=thread_pool(max_workers=4), persist_result=True, **JOB_HOOKS)
def sweep_variant(
    base: EndToEndParams = EndToEndParams(),
    variants: list[SweepVariant] | None = None,
    variant: str = "",
    started_at: float | None = None,
    aws_credentials: CredentialsParameter = None,
) -> VariantResult:
    """One variant of a sweep on a work pool (the sweep starts it with ``variant_runs: deployment``).

    Args:
        base: The sweep's base parameters (``run_name`` names the sweep).
        variants: All the sweep's variants, so this run finds the stages it shares with the others.
        variant: The name of the variant this run runs.
        started_at: When the sweep started (epoch seconds), so this run's timeline is on the sweep's clock.
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    run = run_context(aws_credentials, base.run_name)
    run.settings.require("bucket", "role_arn")
    setup = sweep_setup(base, variants)
    if variant not in setup.plans:
        raise ConfigError(f"sweep {base.run_name}: no variant {variant!r}; the sweep has {', '.join(setup.plans)}")
    clock = Clock(started=time.monotonic() - (time.time() - started_at)) if started_at else Clock()
    home = Path(base.work_dir) / base.run_name / "variants" / variant
    with flow_run_scratch(home) as work:
        nodes = NodeContexts(setup, run, work)
        meet = leased_meeting(base.run_name, run.settings, current_flow_run_id(), base.wait.max_wait_hours * 3600)
        ctx = variant_context(setup, variant, run, work, clock)
        return run_variant(variant, setup, nodes, meet, ctx)
