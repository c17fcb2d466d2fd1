"""A run as a graph of stages: what each step needs, what it gives, and which steps may run at once.

A customization run is a handful of long jobs with few true dependencies: the baseline evaluation needs only the
data, RFT needs only the SFT checkpoint (not the evaluation of it), the gate needs the evaluations it compares.
Written as a sequence, every job waits for the one before it; written as a graph, a stage starts as soon as its
inputs exist and the run's wall time is its critical path. This module is the pure part (no Prefect, no AWS):
the stage objects, the checks that a graph is whole, and the ready set a runner asks for. ``flows/graph.py``
runs a graph with Prefect; the sweep merges the graphs of several variants into one (equal stages once).

Example:
    >>> g = Graph([Stage("data", (), lambda ctx, i: 1), Stage("sft", ("data",), lambda ctx, i: 2)])
    >>> g.ready(done=set(), running=set())
    ['data']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from novaflow.errors import ConfigError, NovaflowError

StageFn = Callable[[Any, Mapping[str, Any]], Any]
"""What a stage runs: ``fn(context, inputs)`` where ``inputs`` maps each name in ``needs`` to its value."""


@dataclass(frozen=True)
class Stage:
    """One step of a run. ``key`` names it everywhere (run log, job record, MLflow, report, timeline)."""

    key: str
    needs: tuple[str, ...]
    """Names of the outputs this stage reads (each given by exactly one other stage of the graph)."""
    run: StageFn = field(compare=False)
    gives: str = ""
    """Name of the one output this stage produces (its return value); empty = the stage's key."""
    identity: str = ""
    """What makes two stages of two graphs the same work (a spec hash, a data plan hash); empty = the key alone.
    The sweep merges stages of equal key, identity and inputs into one node."""

    def __post_init__(self) -> None:
        if not self.gives:
            object.__setattr__(self, "gives", self.key)


@dataclass(frozen=True)
class StageTiming:
    """When a stage ran, as offsets in seconds from the start of the run (the timeline and the summary)."""

    key: str
    start: float
    end: float
    status: str = "completed"
    """``completed``, ``failed`` or ``stopped`` (stopped because another branch failed)."""

    @property
    def seconds(self) -> float:
        return self.end - self.start


def after(stage: Stage, *keys: str) -> Stage:
    """``stage`` also waiting for ``keys`` (whose outputs it does not read): a check that must pass before the
    stage may spend money."""
    return replace(stage, needs=(*stage.needs, *(k for k in keys if k not in stage.needs)))


class Graph:
    """Stages with their dependencies; refused when an input has no producer, two stages give one output, or the
    dependencies form a cycle (so a runner can never wait forever)."""

    def __init__(self, stages: Iterable[Stage]) -> None:
        self.stages: dict[str, Stage] = {}
        self.producer: dict[str, str] = {}
        for stage in stages:
            self.add(stage)
        self.check()

    def add(self, stage: Stage) -> None:
        if stage.key in self.stages:
            raise ConfigError(f"run graph: two stages are named {stage.key!r}; each stage needs its own key")
        if stage.gives in self.producer:
            raise ConfigError(
                f"run graph: stages {self.producer[stage.gives]!r} and {stage.key!r} both give {stage.gives!r}"
            )
        self.stages[stage.key] = stage
        self.producer[stage.gives] = stage.key

    def check(self) -> None:
        for stage in self.stages.values():
            for need in stage.needs:
                if need not in self.producer:
                    raise ConfigError(f"run graph: stage {stage.key!r} needs {need!r}, which no stage gives")
        self.order()

    def upstream(self, key: str) -> list[str]:
        """The stages ``key`` reads from directly."""
        return [self.producer[need] for need in self.stages[key].needs]

    def order(self) -> list[str]:
        """A topological order (stages in insertion order among the ready ones)."""
        done: set[str] = set()
        out: list[str] = []
        while len(out) < len(self.stages):
            ready = self.ready(done, set())
            if not ready:
                left = sorted(set(self.stages) - done)
                raise ConfigError(f"run graph: stages {', '.join(left)} wait on each other (a cycle)")
            out += ready
            done |= set(ready)
        return out

    def ready(self, done: set[str], running: set[str]) -> list[str]:
        """Stages not done nor running whose every input has been given."""
        return [
            key
            for key, stage in self.stages.items()
            if key not in done and key not in running and all(self.producer[n] in done for n in stage.needs)
        ]

    def critical_path(self, seconds: Mapping[str, float]) -> tuple[list[str], float]:
        """The longest chain of stages by ``seconds`` (what bounds the run's wall time however much overlaps)."""
        best: dict[str, tuple[float, list[str]]] = {}
        for key in self.order():
            before = max((best[up] for up in self.upstream(key)), default=(0.0, []), key=lambda b: b[0])
            best[key] = (before[0] + seconds.get(key, 0.0), [*before[1], key])
        if not best:
            return [], 0.0
        total, path = max(best.values(), key=lambda b: b[0])
        return path, total


_DETAIL = ("note:", "estimate", "last log lines")


def one_line(error: BaseException) -> str:
    """An error as one line: its first line, plus the problems it lists when that line ends in a colon (a dry run's
    problems), without the notes, estimates and log tails that follow them."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if not lines[0].endswith(":"):
        return lines[0]
    listed = [line for line in lines[1:] if not line.lower().startswith(_DETAIL)]
    return " ".join([lines[0], "; ".join(listed)]).strip()


class StageFailed(NovaflowError):
    """A stage of the run raised; ``str()`` is the one line a person reads: the stage and the reason."""

    def __init__(self, key: str, cause: BaseException) -> None:
        super().__init__(f"stage {key} failed: {one_line(cause)}")
        self.key = key
        self.cause = cause
        self.timings: list[StageTiming] = []
        """Every stage that ran, with its status (filled when the run has wound down)."""


class StageParked(BaseException):
    """Raised by a stage that waits on something outside the process (its job runs for hours) and needs no thread
    meanwhile: the runner stops counting it as running, goes on with the others, and when nothing else runs ends
    with :class:`GraphParked` - the flow then suspends, and a replay picks the stage up where it was.

    A ``BaseException`` so that no ``except Exception`` on its way up takes it for the stage's failure."""

    def __init__(self, key: str, waits_on: Any) -> None:
        super().__init__(f"stage {key} waits on {waits_on}")
        self.key = key
        self.waits_on = waits_on


class GraphParked(BaseException):
    """Every stage still to run waits outside the process: ``parked`` (by stage key) says on what."""

    def __init__(self, parked: Mapping[str, StageParked], result: GraphRun) -> None:
        super().__init__(f"stages {', '.join(sorted(parked))} wait outside this process")
        self.parked = dict(parked)
        self.result = result


@dataclass
class Clock:
    """Offsets from the run's start (monotonic), so the timeline is immune to wall-clock changes."""

    started: float = field(default_factory=time.monotonic)

    def now(self) -> float:
        return time.monotonic() - self.started


Execute = Callable[[Stage, Mapping[str, Any]], Any]
"""How a runner calls one stage with its inputs (the flow layer wraps it in a Prefect task)."""


@dataclass
class GraphRun:
    """What running a graph left: every output given, and when each stage ran."""

    outputs: dict[str, Any] = field(default_factory=dict)
    timings: list[StageTiming] = field(default_factory=list)

    def timing(self, key: str) -> StageTiming:
        return next(t for t in self.timings if t.key == key)


def run_graph(
    graph: Graph,
    execute: Execute,
    *,
    on_failure: Callable[[str, BaseException], None] | None = None,
    spawn: Callable[[Callable[[], Any]], Any] | None = None,
    clock: Clock | None = None,
    given: Mapping[str, Any] | None = None,
    record: Callable[[StageTiming], None] | None = None,
) -> GraphRun:
    """Run every stage as soon as its inputs exist, several at once; the first failure stops the rest.

    On a failure no new stage starts, ``on_failure(key, exc)`` is called once (the flow stops the run's jobs
    there, so the stages still waiting on a job end quickly), the running stages are waited for (they end as
    ``stopped`` when they fail after it), and :class:`StageFailed` names the stage that failed first.

    ``spawn`` runs a zero-argument callable in a new thread and returns a ``concurrent.futures.Future`` (default:
    a thread pool as wide as the graph); the Prefect layer passes one that carries the flow run's context.
    ``given`` are outputs that exist before the run (a sweep's shared stages); ``record`` sees each timing as it
    is taken (the run log).

    A stage that raises :class:`StageParked` is neither done nor failed: the others go on, and when none runs any
    more the run ends with :class:`GraphParked` naming the parked stages (a failure wins over parking).
    """
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    clock = clock or Clock()
    result = GraphRun(outputs=dict(given or {}))
    done = {graph.producer[name] for name in result.outputs if name in graph.producer}
    running: dict[Future[Any], tuple[str, float]] = {}
    parked: dict[str, StageParked] = {}
    failed: StageFailed | None = None
    pool = ThreadPoolExecutor(max_workers=max(1, len(graph.stages)), thread_name_prefix="stage") if not spawn else None

    def start(key: str) -> None:
        stage = graph.stages[key]
        inputs = {need: result.outputs[need] for need in stage.needs}
        call = lambda: execute(stage, inputs)  # noqa: E731 - a closure per stage
        future = spawn(call) if spawn is not None else pool.submit(call)  # type: ignore[union-attr]
        running[future] = (key, clock.now())

    def note(timing: StageTiming) -> None:
        result.timings.append(timing)
        if record is not None:
            record(timing)

    try:
        for key in graph.ready(done, set()):
            start(key)
        while running:
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                key, began = running.pop(future)
                error = future.exception()
                if isinstance(error, StageParked):
                    parked[key] = error
                    continue
                if error is None:
                    result.outputs[graph.stages[key].gives] = future.result()
                    done.add(key)
                    note(StageTiming(key, began, clock.now()))
                    continue
                if failed is not None:
                    note(StageTiming(key, began, clock.now(), "stopped"))
                    continue
                note(StageTiming(key, began, clock.now(), "failed"))
                failed = StageFailed(key, error)
                failed.__cause__ = error
                if on_failure is not None:
                    on_failure(key, error)
            if failed is None:
                for key in graph.ready(done, {k for k, _ in running.values()} | set(parked)):
                    start(key)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    if failed is not None:
        failed.timings = result.timings
        raise failed
    if parked:
        raise GraphParked(parked, result)
    return result
