"""One self-contained HTML report: plotly.js embedded once, so the file opens offline and can be mailed or put
on S3 without a CDN.

The page reads top-down the way a person asks: what happened (headline: stages, the gate's metric with its change
and confidence interval, the verdict, what was deployed), the numbers (real tables, sortable), how training went
(curves per training stage), what the data looked like, and what the model got wrong.
"""

from __future__ import annotations

import html as html_lib
import os
import threading
from collections.abc import Mapping
from pathlib import Path

import plotly.graph_objects as go
from botocore.exceptions import ClientError

from novaflow.aws import get_client, split_s3_uri, wrap_client_error
from novaflow.evaluation.classification import classify, is_label_task
from novaflow.evaluation.compare import StageComparison
from novaflow.evaluation.results import EvalResult
from novaflow.jobs.series import TrainingSeries
from novaflow.reports import html_tables
from novaflow.reports.figures import (
    confusion_heatmap,
    curves_overlay,
    length_histogram,
    metric_bars,
    reward_shares,
    split_sizes,
    stage_timeline,
    training_figure,
)
from novaflow.reports.format import fixed, p_text
from novaflow.reports.run import RunReport
from novaflow.settings import NovaflowSettings
from novaflow.storage import browser_url

REPORT_JSON = "report.json"

_STYLE = """
:root{--ink:#1d2330;--muted:#5b6475;--line:#dde2ea;--good:#137333;--bad:#b3261e;--card:#f6f8fb}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);max-width:1180px;margin:0 auto;
padding:24px 28px 64px;line-height:1.45}
h1{font-size:1.7rem;margin:0 0 4px}h2{font-size:1.25rem;margin:36px 0 10px;padding-top:8px;
border-top:1px solid var(--line)}h3{font-size:1.05rem;margin:20px 0 6px}
.sub{color:var(--muted);margin:0 0 18px}nav a{margin-right:14px;color:#1a56b0;text-decoration:none}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:12px;margin:16px 0}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.card .k{font-size:.8rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.card .v{font-size:1.15rem;font-weight:600;margin-top:2px}.card .d{font-size:.88rem;color:var(--muted);margin-top:4px}
.good{color:var(--good)}.bad{color:var(--bad)}.warn{color:var(--bad)}
table{border-collapse:collapse;margin:8px 0 4px;font-size:.9rem;width:100%}
caption{text-align:left;font-weight:600;padding:4px 0 6px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--card);cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.note{color:var(--muted);font-size:.85rem;margin:2px 0 14px}.fig{margin:6px 0 18px}
.examples td{max-width:420px;word-break:break-word}footer{margin-top:40px;color:var(--muted);font-size:.85rem}
"""

# Click a header to sort by it; numeric cells sort by their exact value (data-sort), others as text.
_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function(table){
  table.querySelectorAll("th").forEach(function(th, col){
    th.addEventListener("click", function(){
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      table.querySelectorAll("th").forEach(function(h){ h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      rows.sort(function(a, b){
        var x = a.cells[col], y = b.cells[col];
        var nx = parseFloat(x.getAttribute("data-sort")), ny = parseFloat(y.getAttribute("data-sort"));
        if (!isNaN(nx) && !isNaN(ny)) { return (nx - ny) * dir; }
        return x.textContent.localeCompare(y.textContent) * dir;
      });
      rows.forEach(function(r){ body.appendChild(r); });
    });
  });
});
"""


class _Page:
    """Collects sections and numbers the figures and tables (their ids are what tests and links use)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.figures = 0
        self.tables = 0

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def table(self, table: html_tables.Table, css: str = "") -> None:
        markup = table.to_html(f"table-{self.tables}")
        self.tables += 1
        self.parts.append(markup.replace("class='sortable'", f"class='sortable {css}'") if css else markup)

    def figure(self, fig: go.Figure) -> None:
        fig.update_layout(template="plotly_white", margin={"l": 60, "r": 30, "t": 60, "b": 50})
        self.parts.append(
            "<div class='fig'>"
            + fig.to_html(
                full_html=False,
                include_plotlyjs=False,
                div_id=f"fig-{self.figures}",
                config={"displaylogo": False, "responsive": True},
            )
            + "</div>"
        )
        self.figures += 1


def _e(text: object) -> str:
    return html_lib.escape(str(text))


def _card(key: str, value: str, detail: str = "", css: str = "") -> str:
    cls = f" {css}" if css else ""
    return (
        f"<div class='card'><div class='k'>{_e(key)}</div><div class='v{cls}'>{_e(value)}</div>"
        + (f"<div class='d'>{_e(detail)}</div>" if detail else "")
        + "</div>"
    )


def _headline(report: RunReport) -> str:
    cards = []
    evaluated = " → ".join(report.stages) or "none"
    trained = ", ".join(report.curves) or "none"
    cards.append(_card("stages evaluated", evaluated, f"trained: {trained}"))
    gate = report.gate
    if gate is not None:
        base, cand = report.gate_stages or ("baseline", "candidate")
        cards.append(
            _card(
                f"gate metric: {gate.metric}",
                f"{fixed(gate.delta, signed=True)}  ({cand} vs {base})",
                f"{fixed(gate.baseline)} → {fixed(gate.candidate)}; 95% CI [{fixed(gate.ci_low, signed=True)}, "
                f"{fixed(gate.ci_high, signed=True)}], p = {p_text(gate.p_value)}, n = {gate.n:,}",
            )
        )
        cards.append(
            _card(
                "gate verdict",
                "approved" if gate.approved else "rejected",
                gate.reason.split(";", 1)[0],
                "good" if gate.approved else "bad",
            )
        )
    elif report.comparison is not None and report.comparison.deltas:
        base, cand, d = report.comparison.deltas[0]
        cards.append(
            _card(
                f"{d.metric}: {cand} vs {base}",
                fixed(d.delta, signed=True),
                f"95% CI [{fixed(d.ci_low, signed=True)}, {fixed(d.ci_high, signed=True)}], p = {p_text(d.p_value)}",
            )
        )
    if report.deployment:
        cards.append(_card("deployed", report.deployment, "", "good"))
    else:
        cards.append(_card("deployed", "nothing", report.not_deployed or ""))
    if report.model_package_version:
        cards.append(_card("model package", report.model_package_version))
    if report.timeline:
        wall = max(t.end for t in report.timeline)
        cards.append(_card("run time", f"{wall:.1f} s", f"{len(report.timeline)} stages, some side by side"))
    elif report.timings:
        cards.append(_card("time in stages", f"{sum(report.timings.values()):.1f} s", f"{len(report.timings)} stages"))
    links = ""
    if report.jobs:
        links = (
            "<p class='sub'>Jobs: "
            + ", ".join(
                f"<a href='{_e(j.console_url)}' rel='noopener'>{_e(j.stage)}</a> ({_e(j.status)})" for j in report.jobs
            )
            + "</p>"
        )
    return "<div class='cards'>" + "".join(cards) + "</div>" + links


def render_report(report: RunReport) -> str:
    """The report as one HTML string (plotly.js inline, no network needed to open it)."""
    from plotly.offline import get_plotlyjs

    page = _Page()
    sub = f"generated {report.generated_at:%Y-%m-%d %H:%M UTC}"
    if report.flow_run_url:
        sub += f" · <a href='{_e(report.flow_run_url)}'>Prefect flow run</a>"
    sub += f" · exact numbers in <a href='{REPORT_JSON}'>{REPORT_JSON}</a>"
    page.add(f"<header><h1>{_e(report.heading)}</h1><p class='sub'>{sub}</p>")
    sections = [
        ("metrics", "Metrics", bool(report.stages)),
        ("training", "Training", bool(report.curves)),
        ("data", "Data", report.split is not None or bool(report.data) or report.reward is not None),
        ("examples", "Wrong answers", any(r.samples for r in report.stages.values())),
        ("jobs", "Jobs", bool(report.jobs or report.timings)),
    ]
    page.add("<nav>" + "".join(f"<a href='#{key}'>{title}</a>" for key, title, shown in sections if shown) + "</nav>")
    page.add(_headline(report) + "</header>")
    if report.leaderboard:
        page.add("<h2 id='leaderboard'>Leaderboard</h2>")
        page.table(html_tables.records_table("Variants side by side", report.leaderboard))
        if report.winner_line:
            page.add(f"<p class='note'><strong>{_e(report.winner_line)}</strong></p>")
        loss = curves_overlay(report.curves)
        if loss is not None:
            page.figure(loss)
    if report.stages:
        _metrics_section(page, report)
    if report.curves:
        page.add("<h2 id='training'>Training</h2>")
        for series in report.curves.values():
            fig = training_figure(series)
            if fig is None:
                page.add(
                    f"<p class='note'>{_e(series.stage)}: no training metrics found for {_e(series.job_name)}.</p>"
                )
                continue
            page.figure(fig)
            page.add(f"<p class='note'>{series.steps[-1]:,} steps from {_e(', '.join(series.sources))}.</p>")
    if sections[2][2]:
        _data_section(page, report)
    if sections[3][2]:
        _examples_section(page, report)
    if report.jobs or report.timings:
        page.add("<h2 id='jobs'>Jobs and times</h2>")
        if report.jobs:
            page.table(html_tables.jobs_table(report.jobs))
        if report.timeline:
            page.figure(stage_timeline(report.timeline))
        if report.timings:
            page.table(html_tables.timings_table(report.timings))
    for note in report.notes:
        page.add(f"<p class='note'>{_e(note)}</p>")
    page.add(
        "<footer>novaflow report · every number here is rounded to 4 decimals for reading; "
        f"{REPORT_JSON} beside this file keeps them exact.</footer>"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(report.heading)}</title><style>{_STYLE}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
        + "\n".join(page.parts)
        + f"<script type='text/javascript'>{_SORT_JS}</script></body></html>"
    )


def _metrics_section(page: _Page, report: RunReport) -> None:
    page.add("<h2 id='metrics'>Metrics</h2>")
    page.table(html_tables.metrics_table(report.stages))
    for name, result in report.stages.items():
        page.add(f"<p class='note'>{_e(name)}: {_e(result.source)} ({len(result.samples):,} samples)</p>")
        for d in result.disagreements:
            page.add(f"<p class='warn'>{_e(name)}: the archive and the recomputation disagree: {_e(d)}</p>")
    page.figure(metric_bars(report.stages))
    if report.comparison is not None and report.comparison.deltas:
        page.add("<h3>Paired comparison</h3>")
        page.table(html_tables.comparison_table(report.comparison, report.gate.alpha if report.gate else 0.05))
    labelled = report.classification()
    if labelled:
        page.add("<h3>Per class</h3>")
        page.table(html_tables.per_class_table(labelled))
        for name, rep in labelled.items():
            page.figure(confusion_heatmap(rep, name))
    lengths = {n: [len(p.split()) for p in r.predictions] for n, r in report.stages.items() if r.samples}
    if lengths:
        page.figure(length_histogram(lengths))


def _data_section(page: _Page, report: RunReport) -> None:
    page.add("<h2 id='data'>Data</h2>")
    if report.split is not None:
        page.table(html_tables.split_table(report.split))
        page.figure(split_sizes(report.split))
    if report.data:
        page.table(html_tables.rejections_table(report.data))
        page.table(html_tables.lengths_table(report.data))
    if report.reward is not None:
        page.table(html_tables.reward_table(report.reward))
        if report.reward.distributions:
            page.figure(reward_shares(report.reward))


def _examples_section(page: _Page, report: RunReport) -> None:
    page.add("<h2 id='examples'>Wrong answers</h2>")
    for name, result in report.stages.items():
        if not result.samples:
            continue
        labels = report.labels if is_label_task(result.golds, report.labels) else None
        wrong = html_tables.wrong_answers(result, labels)
        if wrong:
            page.table(html_tables.examples_table(name, wrong, len(result.samples)), "examples")
        else:
            page.add(f"<p class='note'>{_e(name)}: no wrong answers.</p>")


def build_report(
    stages: Mapping[str, EvalResult],
    *,
    comparison: StageComparison | None = None,
    curves: Mapping[str, TrainingSeries] | None = None,
    title: str = "novaflow evaluation report",
) -> str:
    """A report of evaluations alone (``novaflow eval report``): metrics, comparison, classes, wrong answers."""
    return render_report(
        RunReport(run_name="", stages=dict(stages), comparison=comparison, curves=dict(curves or {}), title=title)
    )


def report_figures(stages: Mapping[str, EvalResult]) -> list[go.Figure]:
    """The evaluation figures of a report, for a notebook: bars, a confusion matrix per labelled stage, lengths."""
    figures = [metric_bars(stages)]
    labelled = {n: r for n, r in stages.items() if r.samples and is_label_task(r.golds)}
    figures += [confusion_heatmap(classify(r.golds, r.predictions), n) for n, r in labelled.items()]
    lengths = {n: [len(p.split()) for p in r.predictions] for n, r in stages.items() if r.samples}
    if lengths:
        figures.append(length_histogram(lengths))
    return figures


def save_report(
    html: str,
    path: str | Path,
    *,
    settings: NovaflowSettings,
    s3_uri: str | None = None,
    data: bytes | None = None,
) -> dict[str, str]:
    """Write the report (and its exact JSON beside it) locally and, if asked, to S3; returns where the HTML went
    (``local``; with S3 also ``s3`` and ``url``, a presigned link a browser opens).

    ``data`` is :meth:`RunReport.to_json`, written as ``report.json`` next to ``report.html`` in both places.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # written beside and renamed into place: a reader (or a second run publishing the same report) never sees
    # half a file
    _write_whole(out, html.encode("utf-8"))
    if data is not None:
        _write_whole(out.parent / REPORT_JSON, data)
    where = {"local": str(out)}
    if s3_uri:
        bucket, key = split_s3_uri(s3_uri)
        s3 = get_client("s3", settings)
        uploads = [(key, html.encode("utf-8"), "text/html; charset=utf-8")]
        if data is not None:
            uploads.append(
                (key.rsplit("/", 1)[0] + "/" + REPORT_JSON if "/" in key else REPORT_JSON, data, "application/json")
            )
        for k, body, content_type in uploads:
            try:
                s3.put_object(Bucket=bucket, Key=k, Body=body, ContentType=content_type)
            except ClientError as exc:
                raise wrap_client_error(exc, f"uploading the report to s3://{bucket}/{k}") from exc
        where["s3"] = s3_uri
        where["url"] = browser_url(s3_uri, settings)
    return where


def _write_whole(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    partial.write_bytes(data)
    partial.replace(path)
