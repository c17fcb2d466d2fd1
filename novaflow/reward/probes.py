"""Verify any reward function before RFT spends money: probe rollouts, the reward distribution, degenerate graders.

A team's grader is unknown code, so verification asks it questions whose answers must differ. From the RFT rows it
builds four probe rollouts per row - the row's own reference answer, another row's reference answer, an empty
answer and the reference reversed (garbled) - grades them with the packaged code on this machine and through the
deployed Lambda, and reports each probe's reward distribution. RFT is refused, with one line saying why, when the
grader

* raises for a whole batch (a handler bug: the RFT service would fail on its first step),
* answers in a shape the service cannot read (not a list of ``{id, aggregate_reward_score, metrics_list?}``),
* gives every probe sample the same reward (RFT would learn nothing from it),
* marks too many reference answers invalid (it reads the wrong field), or
* grades differently here and in the Lambda (another version is deployed, or it is not deterministic).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novaflow.aws import get_client
from novaflow.errors import RewardError
from novaflow.reward.local_run import LocalPackage
from novaflow.reward.schema import metrics_of, output_problems
from novaflow.reward.verify import invoke_once, load_jsonl
from novaflow.settings import NovaflowSettings

PROBES = ("reference", "other-row", "empty", "garbled")
INVALID_METRIC = "invalid_sample"
DEFAULT_MAX_INVALID_SHARE = 0.05
DEFAULT_BATCH_SIZE = 50

Runner = Callable[[list[dict[str, Any]]], list[Any]]
"""Grades one batch: returns the handler's answer, or raises :class:`RewardError` with the handler's error."""


@dataclass(frozen=True)
class ScoreDistribution:
    """How one probe set was rewarded by one runner (``local`` or ``lambda``)."""

    probe: str
    runner: str
    n: int
    mean: float
    std: float
    minimum: float
    median: float
    maximum: float
    distinct: int
    invalid: int
    metrics: dict[str, float] = field(default_factory=dict)
    """Mean of every ``metrics_list`` entry over the probe set (the team's own metric names)."""

    def row(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "runner": self.runner,
            "n": self.n,
            "mean": round(self.mean, 4),
            "std": round(self.std, 4),
            "min": round(self.minimum, 4),
            "median": round(self.median, 4),
            "max": round(self.maximum, 4),
            "distinct": self.distinct,
            "invalid": self.invalid,
        }


@dataclass
class GraderVerification:
    """The distributions, and what stops RFT; ``ok`` is the go / no-go."""

    source: str
    distributions: list[ScoreDistribution]
    problems: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.mismatches

    @property
    def metric_names(self) -> list[str]:
        """The metric names the grader reports (``metrics_list``), in first-seen order."""
        names: dict[str, None] = {}
        for dist in self.distributions:
            names.update(dict.fromkeys(dist.metrics))
        return list(names)

    def table(self) -> list[dict[str, Any]]:
        return [d.row() for d in self.distributions]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source,
            "distributions": [d.row() | {"metrics": d.metrics} for d in self.distributions],
            "problems": self.problems,
            "mismatches": self.mismatches,
            "notes": self.notes,
        }

    def reason(self) -> str:
        """The first thing that stops RFT, as one line."""
        return (self.problems + self.mismatches + ["no problem"])[0]


def probe_samples(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Probe set -> samples: each RFT row with a probe rollout appended as the assistant's last message."""
    references = [reference_text(row) for row in rows]
    sets: dict[str, list[dict[str, Any]]] = {name: [] for name in PROBES}
    for i, row in enumerate(rows):
        messages = [m for m in row.get("messages") or [] if isinstance(m, dict)]
        if messages and messages[-1].get("role") == "assistant":
            messages = messages[:-1]
        other = next(
            (
                references[(i + k) % len(rows)]
                for k in range(1, len(rows))
                if references[(i + k) % len(rows)] != references[i]
            ),
            "",
        )
        rollouts = {"reference": references[i], "other-row": other, "empty": "", "garbled": references[i][::-1]}
        base = {k: v for k, v in row.items() if k not in ("messages", "id")}
        rid = row.get("id", f"row-{i + 1}")
        for probe, text in rollouts.items():
            sample = {"id": f"{rid}:{probe}", **base, "messages": [*messages, {"role": "assistant", "content": text}]}
            sets[probe].append(sample)
    return sets


def reference_text(row: dict[str, Any]) -> str:
    """The row's reference answer as the text a perfect model would write (objects as compact JSON)."""
    reference = row.get("reference_answer")
    if reference is None and isinstance(row.get("metadata"), dict):
        reference = row["metadata"].get("reference_answer")
    if reference is None:
        return ""
    return reference if isinstance(reference, str) else json.dumps(reference, separators=(",", ":"))


def verify_grader(
    rows: Sequence[dict[str, Any]],
    runners: dict[str, Runner],
    *,
    source: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_invalid_share: float = DEFAULT_MAX_INVALID_SHARE,
) -> GraderVerification:
    """Grade the probe sets with every runner and check the answers (see the module docstring)."""
    if not rows:
        raise RewardError(f"{source}: no RFT rows to verify the reward function on")
    sets = probe_samples(rows)
    result = GraderVerification(source=source, distributions=[])
    graded: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for runner_name, run in runners.items():
        graded[runner_name] = {}
        for probe, samples in sets.items():
            outputs = _grade_all(run, samples, batch_size, runner_name, source)
            graded[runner_name][probe] = outputs
            result.distributions.append(distribution(probe, runner_name, outputs))
    first = next(iter(graded.values()))
    scores = [float(o["aggregate_reward_score"]) for outputs in first.values() for o in outputs]
    if len(set(scores)) == 1:
        result.problems.append(
            f"{source}: returns the same reward {scores[0]:g} for all {len(scores)} probe samples (reference answers, "
            "other rows' answers, empty and garbled answers): RFT would learn nothing from it"
        )
    reference = next(d for d in result.distributions if d.probe == "reference")
    if reference.n and reference.invalid / reference.n > max_invalid_share:
        result.problems.append(
            f"{source}: {reference.invalid} of {reference.n} reference answers graded as invalid samples "
            f"(over {max_invalid_share:.0%}): does it read the reference answer and the rollout where the RFT "
            "service puts them (messages[-1].content, reference_answer or metadata.reference_answer)?"
        )
    other = next(d for d in result.distributions if d.probe == "other-row")
    if other.n and reference.mean <= other.mean:
        result.notes.append(
            f"{source}: reference answers get a mean reward of {reference.mean:.4g}, other rows' answers "
            f"{other.mean:.4g}: the grader does not prefer the right answer (fine for a format-only grader)"
        )
    if len(graded) > 1:
        result.mismatches += _mismatches(graded, source)
    return result


def distribution(probe: str, runner: str, outputs: Sequence[dict[str, Any]]) -> ScoreDistribution:
    scores = [float(o["aggregate_reward_score"]) for o in outputs]
    metrics = [metrics_of(o) for o in outputs]
    names = dict.fromkeys(name for m in metrics for name in m)
    means = {name: sum(m.get(name, 0.0) for m in metrics) / len(metrics) for name in names}
    return ScoreDistribution(
        probe=probe,
        runner=runner,
        n=len(scores),
        mean=statistics.fmean(scores) if scores else math.nan,
        std=statistics.stdev(scores) if len(scores) > 1 else 0.0,
        minimum=min(scores, default=math.nan),
        median=statistics.median(scores) if scores else math.nan,
        maximum=max(scores, default=math.nan),
        distinct=len(set(scores)),
        invalid=sum(1 for m in metrics if m.get(INVALID_METRIC) == 1),
        metrics=means,
    )


def _grade_all(
    run: Runner, samples: list[dict[str, Any]], batch_size: int, runner: str, source: str
) -> list[dict[str, Any]]:
    outputs: list[dict[str, Any]] = []
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size]
        answer = run(batch)
        problems = output_problems(answer, [s["id"] for s in batch])
        if problems:
            raise RewardError(
                f"{source}: returned a malformed response ({runner}, samples {start + 1}-{start + len(batch)}): "
                f"{problems[0]}; the RFT service expects [{{id, aggregate_reward_score, metrics_list?}}] per sample"
            )
        outputs.extend(answer)
    return outputs


def _mismatches(graded: dict[str, dict[str, list[dict[str, Any]]]], source: str) -> list[str]:
    (name_a, a), (name_b, b) = list(graded.items())[:2]
    differing = [
        (x, y)
        for probe in a
        for x, y in zip(a[probe], b[probe], strict=True)
        if float(x["aggregate_reward_score"]) != float(y["aggregate_reward_score"])
    ]
    if not differing:
        return []
    x, y = differing[0]
    total = sum(len(v) for v in a.values())
    return [
        f"{source}: {name_a} and {name_b} grades differ on {len(differing)} of {total} samples (first: "
        f"{x['id']!r}: {name_a} {x['aggregate_reward_score']}, {name_b} {y['aggregate_reward_score']}): another "
        "version is deployed, or the grader is not deterministic"
    ]


class LocalRunner:
    """Grades batches with the packaged code on this machine (:class:`~novaflow.reward.local_run.LocalPackage`)."""

    def __init__(self, package: LocalPackage, source: str) -> None:
        self.package, self.source = package, source
        self.logs: list[str] = []

    def __call__(self, batch: list[dict[str, Any]]) -> Any:
        outcome = self.package.invoke(batch)
        self.logs.append(outcome.log)
        if not outcome.ok:
            raise RewardError(
                f"{self.source}: the handler raised {outcome.error_type}: {outcome.error_message} "
                f"(local run, batch of {len(batch)} samples): the RFT service would fail on its first step"
            )
        return outcome.result


class LambdaRunner:
    """Grades batches through the deployed function (synchronous Invoke, as the RFT service calls it)."""

    def __init__(self, function_name: str, settings: NovaflowSettings) -> None:
        self.function_name = function_name
        self.client = get_client("lambda", settings)

    def __call__(self, batch: list[dict[str, Any]]) -> Any:
        return invoke_once(self.client, self.function_name, batch, f"a batch of {len(batch)} probe samples")


def verify_reward_function(
    rows: str | Path,
    *,
    source: str,
    zip_bytes: bytes | None = None,
    function_name: str | None = None,
    settings: NovaflowSettings,
    limit: int = 200,
) -> GraderVerification:
    """Verify a team's reward: the packaged code locally (``zip_bytes``) and/or the deployed ``function_name``."""
    if zip_bytes is None and function_name is None:
        raise RewardError(f"{source}: nothing to verify: give the packaged code or a deployed function")
    loaded = load_jsonl(rows, limit=limit, settings=settings)
    with ExitStack() as stack:
        runners: dict[str, Runner] = {}
        local: LocalRunner | None = None
        if zip_bytes is not None:
            local = LocalRunner(stack.enter_context(LocalPackage(zip_bytes)), source)
            runners["local"] = local
        if function_name is not None:
            runners["lambda"] = LambdaRunner(function_name, settings)
        result = verify_grader(loaded, runners, source=source)
    if local is not None and all(d.invalid == d.n for d in result.distributions if d.runner == "local"):
        reason = next(
            (line.split("reason=", 1)[1] for log in local.logs for line in log.splitlines() if "reason=" in line), ""
        )
        result.problems.insert(
            0,
            f"{source}: every one of the {sum(d.n for d in result.distributions if d.runner == 'local')} probe "
            f"samples was invalid (first reason: {reason or 'see the log'})",
        )
    return result
