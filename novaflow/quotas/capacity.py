"""Capacities a job draws on and how much of each it holds while it runs.

A capacity is anything the account has a fixed amount of: training instances of one type (a Service Quotas
quota, counted in instances), concurrent serverless customization jobs (counted in jobs), and - through the same
interface - the free nodes of a HyperPod cluster's restricted instance group. Each becomes one Prefect global
concurrency limit named :func:`limit_name`, so every run, deployment and worker sharing the Prefect server takes
its slots from the same pool and never asks AWS for more than the account has. A new kind of capacity is a new
:class:`Capacity` key and a rule in :func:`demand_of`, nothing else.

Example:
    >>> book = CapacityBook([Capacity("ml.p5.48xlarge", 8, "instances", "settings NOVAFLOW_QUOTAS")])
    >>> book.demand_for_instances("ml.p5.48xlarge", 4)
    Demand(key='ml.p5.48xlarge', slots=4, unit='instances')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from novaflow.errors import ConfigError

LIMIT_PREFIX = "novaflow-quota-"
SERVERLESS_KEY = "serverless"
"""Serverless customization jobs: the service sizes the compute, so the capacity is a count of jobs."""
INSTANCE_TYPE_RE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
KEY_RE = re.compile(r"^(ml\.[a-z0-9]+\.[a-z0-9]+|serverless|hyperpod:[A-Za-z0-9-]+:[A-Za-z0-9._-]+)$")


def limit_name(key: str) -> str:
    """The Prefect global concurrency limit of a capacity: ``novaflow-quota-ml.p5.48xlarge``."""
    return LIMIT_PREFIX + key


@dataclass(frozen=True)
class Capacity:
    """How much of one thing the account (or cluster) has, and where that number came from (shown in logs)."""

    key: str
    limit: int
    unit: str
    source: str

    @property
    def limit_name(self) -> str:
        return limit_name(self.key)

    def describe(self) -> str:
        return f"{self.key}: {self.limit} {self.unit} ({self.source})"


@dataclass(frozen=True)
class Demand:
    """The slots one job holds of one capacity while it runs."""

    key: str
    slots: int
    unit: str = "instances"

    @property
    def limit_name(self) -> str:
        return limit_name(self.key)


class CapacityBook:
    """The capacities known for a run, by key. A key with no capacity is not limited by novaflow (AWS still
    enforces its own quota, which the submit-time queue absorbs)."""

    def __init__(self, capacities: Iterable[Capacity] = ()) -> None:
        self.capacities: dict[str, Capacity] = {c.key: c for c in capacities}

    def __repr__(self) -> str:
        return f"CapacityBook({sorted(self.capacities.values(), key=lambda c: c.key)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CapacityBook) and self.capacities == other.capacities

    def get(self, key: str) -> Capacity | None:
        return self.capacities.get(key)

    def demand_for_instances(self, instance_type: str, count: int) -> Demand:
        return Demand(instance_type, count, "instances")

    def problem(self, demand: Demand, job: str) -> str | None:
        """One line when the job can never run under its capacity (it asks for more than there is)."""
        capacity = self.get(demand.key)
        if capacity is None or demand.slots <= capacity.limit:
            return None
        fix = {
            "nodes": "free or add nodes in the instance group, or ask for fewer",
            "jobs": "raise it (NOVAFLOW_QUOTAS or --quota)",
        }.get(demand.unit, "request an increase in Service Quotas, or use fewer or other instances")
        return (
            f"job {job} needs {demand.slots} {demand.unit} of {demand.key} but the quota is {capacity.limit} "
            f"({capacity.source}): {fix}"
        )

    def merged(self, other: CapacityBook) -> CapacityBook:
        """Both books; for a key in both the smaller limit wins (a setting may lower the account's quota, never
        raise it above what AWS enforces)."""
        out = dict(self.capacities)
        for key, cap in other.capacities.items():
            mine = out.get(key)
            if mine is None or cap.limit < mine.limit:
                out[key] = cap
        return CapacityBook(out.values())

    def describe(self) -> list[str]:
        return [c.describe() for c in sorted(self.capacities.values(), key=lambda c: c.key)]


def unit_of(key: str) -> str:
    if key == SERVERLESS_KEY:
        return "jobs"
    if key.startswith("hyperpod:"):
        return "nodes"
    return "instances"


def parse_quota_items(items: Iterable[str], *, where: str) -> dict[str, int]:
    """``TYPE=N`` items (``ml.p5.48xlarge=8``, ``serverless=2``) into a mapping; a bad item is one line naming
    ``where`` (the setting or option) and the item."""
    out: dict[str, int] = {}
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not KEY_RE.match(key):
            raise ConfigError(
                f"{where}: {item!r} is not TYPE=N; use an instance type such as ml.p5.48xlarge=8 (or serverless=2)"
            )
        try:
            number = int(value.strip())
        except ValueError:
            raise ConfigError(f"{where}: {item!r}: the quota must be a whole number of {unit_of(key)}") from None
        if number < 0:
            raise ConfigError(f"{where}: {item!r}: the quota cannot be negative")
        out[key] = number
    return out


def book_from_mapping(values: Mapping[str, int], source: str) -> CapacityBook:
    return CapacityBook(Capacity(k, int(v), unit_of(k), source) for k, v in values.items())


def hyperpod_key(cluster: str, instance_group: str) -> str:
    """The capacity of a HyperPod cluster's restricted instance group (slots: nodes)."""
    return f"hyperpod:{cluster}:{instance_group}"


class CapacitySource(Protocol):
    """Where capacities come from besides the account's quotas (a HyperPod cluster's restricted instance groups,
    say): :func:`novaflow.quotas.service_quotas.resolve_capacities` merges what each source reads."""

    def read(self) -> CapacityBook: ...


def demand_of(
    platform: str, instance_type: str | None, instance_count: int, *, instance_group: str | None = None
) -> Demand | None:
    """What a job of ``platform`` holds: SMTJ jobs (training and evaluation alike are training jobs) hold one slot
    per instance of their type, serverless jobs one job slot, HyperPod jobs one slot per node of their cluster's
    restricted instance group (``instance_group``: ``cluster:group``); Bedrock jobs are not counted by novaflow."""
    if platform == "SMHP" and instance_group:
        cluster, _, group = instance_group.partition(":")
        return Demand(hyperpod_key(cluster, group), max(1, instance_count), "nodes")
    if platform == "SMTJ" and instance_type:
        return Demand(instance_type, max(1, instance_count), "instances")
    if platform == "SERVERLESS":
        return Demand(SERVERLESS_KEY, 1, "jobs")
    return None
