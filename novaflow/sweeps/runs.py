"""How a sweep's variants run: each one its own flow run, the work they share done once.

A variant is one flow run, so the Prefect UI shows it by its name with its own stages, logs and artifacts. By
default (``subflow``) the variants are subflows of the sweep in its process; on a work pool (``deployment``) each
one is a run of the ``sweep-variant`` deployment, so the variants spread over the pool's workers. Either way the
stages several variants share (the data, the baseline, one SFT job under a grid over RFT settings) are still one
piece of work:

- in one process, the variants meet at a shared stage through :class:`SingleFlight`: the first to reach it runs
  it, the others wait for its output (no second run, not even a describe);
- across processes, through a lease on S3 keyed by the stage's signature (:mod:`novaflow.runs.lease`): one
  variant runs the stage while the others wait, then each runs it again as a re-run would - its job attaches by
  its spec-hash name and is not submitted twice, its data lands in the same place.

A deployment run of a variant is started with an idempotency key (:func:`idempotency_key`) from the sweep's name,
the variant's name and the hash of its parameters: a retried or re-run sweep asks Prefect for the same key and
gets the variant's existing run back, never a second one.

Example:
    >>> idempotency_key("sweep", "lr-1e-05", {"run_name": "sweep"})
    'novaflow-sweep/sweep/lr-1e-05/392e56753b092bea'
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from novaflow.errors import NovaflowError

VariantRuns = Literal["subflow", "deployment"]
VARIANT_RUNS: tuple[VariantRuns, ...] = ("subflow", "deployment")
"""How a sweep runs its variants; the first is the default (the flow parameter's and the CLI's)."""
VARIANT_RUNS_HELP = (
    "subflow: each variant a subflow of the sweep's run, in its process. deployment: each variant a run of the "
    "sweep-variant deployment on its work pool (spread over the pool's workers), started with an idempotency key, "
    "so a retried or re-run sweep never starts a second run of a variant."
)
VARIANT_DEPLOYMENT = "sweep-variant/default"
"""The packaged deployment (prefect.yaml) a sweep in ``deployment`` mode starts once per variant."""
VARIANT_FLOW = "sweep-variant"
"""The flow name of a variant's run (a subflow or a deployment run)."""

T = TypeVar("T")


def params_hash(parameters: Mapping[str, Any]) -> str:
    """A short hash of a variant's parameters (canonical JSON: key order does not count)."""
    text = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def idempotency_key(sweep: str, variant: str, parameters: Mapping[str, Any]) -> str:
    """The key a variant's deployment run is created with: equal for the same sweep, variant and parameters, so
    Prefect returns the variant's existing run instead of starting a second one; different as soon as one of the
    variant's parameters differs (that is other work, with other jobs)."""
    return f"novaflow-sweep/{sweep}/{variant}/{params_hash(parameters)}"


@dataclass(frozen=True)
class VariantLaunch:
    """One variant's deployment run as the sweep will ask for it."""

    variant: str
    flow_run_name: str
    idempotency_key: str
    parameters: dict[str, Any]
    """The ``sweep-variant`` flow's parameters (JSON): the sweep's base and variants, and which one this is."""


def plan_launches(
    sweep: str,
    base: Mapping[str, Any],
    variants: list[Mapping[str, Any]],
    variant_params: Mapping[str, Mapping[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> list[VariantLaunch]:
    """One launch per variant, in the variants' order. ``base`` and ``variants`` are the sweep's own parameters
    (JSON), passed down whole so the variant's run finds the same shared stages the sweep planned;
    ``variant_params`` are each variant's resolved end-to-end parameters, whose hash goes into the key; ``extra``
    parameters (credentials, the sweep's clock) are passed but not hashed: they do not change the work."""
    launches = []
    for variant in variants:
        name = str(variant["name"])
        launches.append(
            VariantLaunch(
                variant=name,
                flow_run_name=f"{sweep}-{name}",
                idempotency_key=idempotency_key(sweep, name, variant_params[name]),
                parameters={"base": dict(base), "variants": list(variants), "variant": name, **(extra or {})},
            )
        )
    return launches


class SingleFlight:
    """At most one run of each key at a time in this process, its output handed to everyone who asks for it.

    The first caller of ``run(key, call)`` runs ``call``; a caller of the same key meanwhile or later waits for
    that run and gets its output (or its exception).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[str, Future[Any]] = {}

    def run(self, key: str, call: Callable[[], T]) -> T:
        with self._lock:
            future = self._futures.get(key)
            mine = future is None
            if future is None:
                future = self._futures[key] = Future()
        if not mine:
            result: T = future.result()
            return result
        try:
            value = call()
        except BaseException as exc:
            future.set_exception(exc)
            raise
        future.set_result(value)
        return value


class VariantFailed(NovaflowError):
    """A variant's run failed; ``str()`` is the line a person reads: the variant and why."""

    def __init__(self, variant: str, reason: str) -> None:
        super().__init__(f"variant {variant}: {reason}")
        self.variant = variant
