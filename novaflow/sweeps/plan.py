"""What a sweep will spend before it spends it: its jobs, how many run at once under the quotas, a cost bound.

Variants share work: a job whose spec hash two variants share (the data, the baseline evaluation, one SFT job under
a grid that varies only RFT) is one job, counted once. Per instance type, the quota fits ``quota // instances``
jobs at once (the Prefect limits hold the rest back); the upper bound of the cost is every job at its longest
allowed runtime (``max_hours``, the job's stopping condition) times its instances times the price table's rate -
the most the sweep can cost, never an estimate of what it will. And what a finished variant did cost, from what
AWS reports: billable seconds x instances x rate, or billable tokens x the serverless rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from novaflow.catalog import Method
from novaflow.quotas.capacity import CapacityBook, demand_of
from novaflow.recipes.serverless import ServerlessPriceTable
from novaflow.recipes.tables import PriceTable


@dataclass(frozen=True)
class PlannedJob:
    """One job of the sweep, by its deterministic name (the spec hash), with the variants that need it."""

    name: str
    stage: str
    variants: tuple[str, ...]
    platform: str
    instance_type: str | None
    instance_count: int
    max_hours: float


@dataclass
class SweepPlan:
    jobs: list[PlannedJob]
    at_once: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    """Instance type (or ``serverless``) -> (jobs of it, how many run at once, the quota that says so)."""
    cost_upper: float | None = None
    currency: str = "USD"
    unpriced: list[str] = field(default_factory=list)

    @property
    def shared(self) -> list[PlannedJob]:
        return [job for job in self.jobs if len(job.variants) > 1]

    def lines(self) -> list[str]:
        """The plan as printed before anything runs."""
        variants = sorted({v for job in self.jobs for v in job.variants})
        out = [f"plan: {len(self.jobs)} jobs for {len(variants)} variants ({len(self.shared)} shared between variants)"]
        for key, (count, parallel, why) in sorted(self.at_once.items()):
            out.append(f"  {key}: {count} jobs, at most {parallel} at once ({why})")
        if self.cost_upper is None:
            out.append("  cost upper bound: unavailable (" + "; ".join(self.unpriced) + ")")
        else:
            note = f" (not counted: {'; '.join(self.unpriced)})" if self.unpriced else ""
            out.append(
                f"  cost upper bound: {self.cost_upper:,.2f} {self.currency} "
                f"(every job at its maximum runtime; price table){note}"
            )
        return out


def merge_jobs(jobs: Iterable[PlannedJob]) -> list[PlannedJob]:
    """One entry per job name; the variants that need it united (first-seen order kept)."""
    merged: dict[str, PlannedJob] = {}
    for job in jobs:
        seen = merged.get(job.name)
        if seen is None:
            merged[job.name] = job
        else:
            variants = seen.variants + tuple(v for v in job.variants if v not in seen.variants)
            merged[job.name] = PlannedJob(**{**seen.__dict__, "variants": variants})
    return list(merged.values())


def plan_sweep(jobs: Iterable[PlannedJob], book: CapacityBook, prices: PriceTable) -> SweepPlan:
    """The sweep's unique jobs, what runs at once per instance type under ``book``, and the cost upper bound."""
    unique = merge_jobs(jobs)
    plan = SweepPlan(unique, currency=prices.currency)
    by_key: dict[str, list[PlannedJob]] = defaultdict(list)
    for job in unique:
        demand = demand_of(job.platform, job.instance_type, job.instance_count)
        if demand is not None:
            by_key[demand.key].append(job)
    for key, group in by_key.items():
        widest = max(max(1, job.instance_count) if key != "serverless" else 1 for job in group)
        capacity = book.get(key)
        if capacity is None:
            plan.at_once[key] = (len(group), len(group), "no quota known: not limited by novaflow")
        else:
            fits = min(len(group), capacity.limit // widest)
            plan.at_once[key] = (len(group), fits, f"quota {capacity.limit} {capacity.unit}, {capacity.source}")
    total = 0.0
    for job in unique:
        if job.platform != "SMTJ" or not job.instance_type:
            plan.unpriced.append(f"{job.name}: {job.platform} jobs are billed per token")
            continue
        estimate = prices.estimate(job.instance_type, job.instance_count, job.max_hours, basis="maximum runtime")
        if estimate.total is None:
            plan.unpriced.append(f"{job.name}: no price for {job.instance_type}")
            plan.cost_upper = None
            continue
        total += estimate.total
    if not any("no price" in u for u in plan.unpriced):
        plan.cost_upper = round(total, 2)
    return plan


@dataclass(frozen=True)
class JobUsage:
    """What AWS reports a finished job used (``DescribeTrainingJob``)."""

    model: str
    method: Method
    instance_type: str | None = None
    instance_count: int = 1
    billable_seconds: float | None = None
    billable_tokens: int | None = None


def usage_cost(
    usages: Sequence[JobUsage], prices: PriceTable, serverless_prices: ServerlessPriceTable
) -> tuple[float | None, str]:
    """The cost of finished jobs and its basis: billable seconds x instances x the hourly rate (instance jobs),
    billable tokens x the rate per million (serverless). None when a job's price or usage is unknown."""
    total = 0.0
    bases: set[str] = set()
    for usage in usages:
        if usage.billable_tokens is not None:
            amount = serverless_prices.estimate(usage.model, usage.method, usage.billable_tokens, basis="billed").total
            bases.add("billable tokens")
        elif usage.instance_type and usage.billable_seconds is not None:
            rate = prices.prices.get(usage.instance_type)
            amount = None if rate is None else usage.billable_seconds / 3600 * usage.instance_count * rate
            bases.add("instance-hours")
        else:
            amount = None
        if amount is None:
            return None, "unknown: a job has no price or usage"
        total += amount
    return round(total, 2), " + ".join(sorted(bases))
