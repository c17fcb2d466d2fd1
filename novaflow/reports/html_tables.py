"""The report's tables as real HTML tables: numbers right-aligned at four decimals, sortable by their exact value.

Each builder takes plain results and works for any metric table (gen_qa's em/f1/rouge, a judge's win rate, a
benchmark's accuracy): rows and columns come from the data, never from a list of known metric names.
"""

from __future__ import annotations

import ast
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from novaflow.data.report import DataReport
from novaflow.data.splits import SplitReport
from novaflow.evaluation.classification import ClassificationReport
from novaflow.evaluation.compare import StageComparison
from novaflow.evaluation.results import EvalResult, SampleRecord
from novaflow.reports.format import fixed, p_text
from novaflow.reports.run import JobLink
from novaflow.reward.verify import RewardVerification
from reward_lambda.labels import extract_label

Cell = str | int | float | None


@dataclass(frozen=True)
class Value:
    """A cell whose text differs from the value it sorts by (``0.8620 ± 0.0154`` sorts by 0.862)."""

    text: str
    sort: float | None = None


@dataclass(frozen=True)
class Link:
    text: str
    href: str


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[Cell | Value | Link]] = field(default_factory=list)
    note: str = ""

    def numeric(self, column: int) -> bool:
        """A column whose filled cells are all numbers: right-aligned, header included."""
        cells = [row[column] for row in self.rows if row[column] is not None]
        return bool(cells) and all(
            isinstance(c, Value) or (isinstance(c, int | float) and not isinstance(c, bool)) for c in cells
        )

    def to_html(self, table_id: str) -> str:
        head = "".join(
            f"<th scope='col'{' class=num' if self.numeric(i) else ''}>{html.escape(c)}</th>"
            for i, c in enumerate(self.columns)
        )
        body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in self.rows)
        note = f"<p class='note'>{html.escape(self.note)}</p>" if self.note else ""
        return (
            f"<table class='sortable' id='{html.escape(table_id)}'><caption>{html.escape(self.caption)}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
        )


def _cell(value: Cell | Value | Link) -> str:
    if isinstance(value, Link):
        return f"<td><a href='{html.escape(value.href)}' rel='noopener'>{html.escape(value.text)}</a></td>"
    if isinstance(value, Value):
        sort = "" if value.sort is None else f" data-sort='{value.sort!r}'"
        return f"<td class='num'{sort}>{html.escape(value.text)}</td>"
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return f"<td>{html.escape('-' if value is None else str(value))}</td>"
    if isinstance(value, int):
        return f"<td class='num' data-sort='{value}'>{value:,}</td>"
    return f"<td class='num' data-sort='{value!r}'>{html.escape(fixed(value))}</td>"


def with_stderr(value: float, stderr: float | None) -> Value:
    return Value(fixed(value) + ("" if stderr is None else f" ± {fixed(stderr)}"), value)


def metrics_table(stages: Mapping[str, EvalResult]) -> Table:
    """One row per metric (in the order the results list them), one column per stage: value ± stderr."""
    names: list[str] = []
    for result in stages.values():
        names += [m for m in result.metrics.names() if m not in names]
    table = Table("Metrics per stage (value ± standard error)", ["metric", *stages])
    for name in names:
        row: list[Cell | Value | Link] = [name]
        for result in stages.values():
            metric = result.metrics.get(name) if name in result.metrics else None
            row.append(None if metric is None else with_stderr(metric.value, metric.stderr))
        table.rows.append(row)
    scales = {r.name: r.scale for result in stages.values() for r in result.metrics}
    if any(s == "0-100" for s in scales.values()):
        table.note = "Metrics on a 0-100 scale: " + ", ".join(n for n, s in scales.items() if s == "0-100") + "."
    return table


def comparison_table(comparison: StageComparison, alpha: float = 0.05) -> Table:
    """Every paired delta: from, to, metric, delta, confidence interval, p-value, test, verdict."""
    table = Table(
        f"Paired comparison on {comparison.n} rows (bootstrap 95% CI; McNemar for 0/1 metrics, sign-flip otherwise)",
        ["from", "to", "metric", "baseline", "candidate", "delta", "95% CI", "p-value", "test", "verdict"],
    )
    for base, cand, d in comparison.deltas:
        table.rows.append(
            [
                base,
                cand,
                d.metric,
                d.baseline,
                d.candidate,
                Value(fixed(d.delta, signed=True), d.delta),
                Value(f"[{fixed(d.ci_low, signed=True)}, {fixed(d.ci_high, signed=True)}]", d.ci_low),
                Value(p_text(d.p_value), d.p_value),
                d.test,
                _verdict(d.delta, d.p_value, alpha),
            ]
        )
    return table


def _verdict(delta: float, p_value: float, alpha: float) -> str:
    if p_value >= alpha:
        return "not significant"
    return "better" if delta > 0 else "worse"


def per_class_table(reports: Mapping[str, ClassificationReport]) -> Table:
    """Precision, recall and F1 of every label per stage (rows: label x stage)."""
    table = Table("Per-class precision, recall and F1", ["label", "stage", "precision", "recall", "f1", "support"])
    labels: list[str] = []
    for rep in reports.values():
        labels += [c.label for c in rep.per_class if c.label not in labels]
    for label in labels:
        for stage, rep in reports.items():
            for c in rep.per_class:
                if c.label == label:
                    table.rows.append([label, stage, c.precision, c.recall, c.f1, c.support])
    summary = "; ".join(
        f"{stage}: accuracy {fixed(rep.accuracy)}, macro-F1 {fixed(rep.macro_f1)}, "
        f"answers naming no label {rep.no_prediction_rate:.1%}"
        for stage, rep in reports.items()
    )
    table.note = summary
    return table


def split_table(split: SplitReport) -> Table:
    labels = sorted({label for counts in split.labels.values() for label in counts})
    table = Table(f"Splits of {split.source} (seed {split.seed})", ["split", "rows", *labels])
    for name, size in split.sizes.items():
        counts = split.labels.get(name, {})
        table.rows.append([name, size, *(counts.get(label, 0) for label in labels)])
    dropped = {
        "blank required field": split.blank_dropped,
        "duplicates": split.duplicates_dropped,
        "leakage": split.leakage_dropped,
    }
    table.note = f"{split.rows_in:,} rows in; dropped: " + ", ".join(f"{v:,} {k}" for k, v in dropped.items())
    if split.augmented:
        table.note += "; augmented: " + ", ".join(f"{k} += {', '.join(v)}" for k, v in split.augmented.items())
    return table


def rejections_table(data: Mapping[str, DataReport]) -> Table:
    table = Table(
        "Rows rejected while preparing, by reason", ["split", "format", "rows in", "rows out", "reason", "rows"]
    )
    for split, rep in data.items():
        reasons = rep.rejections_by_reason or {"(none)": 0}
        for reason, count in reasons.items():
            table.rows.append([split, rep.method, rep.rows_in, rep.rows_out, reason, count])
    return table


def lengths_table(data: Mapping[str, DataReport]) -> Table:
    table = Table(
        "Text lengths of the prepared rows",
        ["split", "measure", "min", "mean", "p50", "p95", "max", "over max_length"],
    )
    for split, rep in data.items():
        for measure in ("prompt_chars", "total_chars", "est_tokens"):
            stats = getattr(rep, measure)
            over = rep.over_max_length if measure == "est_tokens" else None
            spread = [Value(f"{v:,.1f}", v) for v in (stats.mean, stats.p50, stats.p95)]
            table.rows.append([split, measure, stats.min, *spread, stats.max, over])
    return table


def reward_table(verification: RewardVerification) -> Table:
    table = Table(
        f"Reward verification before RFT: {'OK' if verification.ok else 'FAILED'}",
        [
            "source",
            "runner",
            "n",
            "mean reward",
            "share at max",
            "share at min",
            "accuracy",
            "label present",
            "invalid",
        ],
    )
    for d in verification.distributions:
        table.rows.append(
            [d.source, d.runner, d.n, d.mean, d.share_max, d.share_min, d.accuracy, d.label_present, d.invalid]
        )
    problems = verification.mismatches + verification.problems
    if problems:
        table.note = "; ".join(problems[:5])
    return table


def wrong_answers(result: EvalResult, labels: Sequence[str] | None, limit: int = 5) -> list[SampleRecord]:
    """The first ``limit`` samples the stage got wrong: by label when the task has labels, else exact match."""
    wrong = []
    for sample in result.samples:
        if labels:
            right = extract_label(sample.prediction, tuple(labels)) == extract_label(sample.gold, tuple(labels))
        elif "em" in sample.metrics:
            right = sample.metrics["em"] >= 1.0
        else:
            right = sample.prediction.strip() == sample.gold.strip()
        if not right:
            wrong.append(sample)
        if len(wrong) >= limit:
            break
    return wrong


def examples_table(stage: str, samples: Sequence[SampleRecord], total: int, width: int = 300) -> Table:
    table = Table(f"{stage}: examples of wrong answers", ["row", "question", "expected", "answer"])
    for s in samples:
        table.rows.append([s.index, _clip(question(s), width), _clip(s.gold, width), _clip(s.prediction, width)])
    table.note = f"The first {len(samples)} wrong answers of {total:,} rows."
    return table


def jobs_table(jobs: Sequence[JobLink]) -> Table:
    table = Table("Jobs (links open the SageMaker console)", ["stage", "job", "status", "attached"])
    for job in jobs:
        table.rows.append([job.stage, Link(job.name, job.console_url), job.status, "yes" if job.attached else "no"])
    return table


def timings_table(timings: Mapping[str, float]) -> Table:
    table = Table("Stage times", ["stage", "seconds"])
    for stage, seconds in timings.items():
        table.rows.append([stage, Value(f"{seconds:.1f}", seconds)])
    table.rows.append(["total", Value(f"{sum(timings.values()):.1f}", sum(timings.values()))])
    return table


def question(sample: SampleRecord) -> str:
    """What the user asked: the last user message (the system prompt is the same on every row)."""
    messages = sample.messages
    if messages is None and sample.prompt.startswith("["):
        try:
            decoded = ast.literal_eval(sample.prompt)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            decoded = None
        messages = decoded if isinstance(decoded, list) else None
    users = [m for m in messages or [] if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return sample.prompt
    content = users[-1].get("content", "")
    if isinstance(content, list):
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content)


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"
