"""One self-contained HTML report: plotly.js embedded once, so the file opens offline and can be mailed or put
on S3 without a CDN."""

from __future__ import annotations

import html as html_lib
from collections.abc import Mapping, Sequence
from pathlib import Path

import plotly.graph_objects as go
from botocore.exceptions import ClientError
from plotly.offline import get_plotlyjs

from novaflow.aws import get_client, split_s3_uri, wrap_client_error
from novaflow.evaluation.classification import classify, is_label_task
from novaflow.evaluation.compare import StageComparison
from novaflow.evaluation.results import EvalResult
from novaflow.reports.figures import confusion_heatmap, length_histogram, metric_bars, training_curves
from novaflow.reports.summary import comparison_markdown, metric_table_markdown


def report_figures(
    stages: Mapping[str, EvalResult], curves: Mapping[str, Sequence[tuple[float, float]]] | None = None
) -> list[go.Figure]:
    figures = [metric_bars(stages)]
    labelled = {n: r for n, r in stages.items() if r.samples and is_label_task(r.golds)}
    reports = {n: classify(r.golds, r.predictions) for n, r in labelled.items()}
    figures += [confusion_heatmap(rep, n) for n, rep in reports.items()]
    lengths = {n: [len(p.split()) for p in r.predictions] for n, r in stages.items() if r.samples}
    if lengths:
        figures.append(length_histogram(lengths))
    if curves:
        figures.append(training_curves(curves))
    return figures


def build_report(
    stages: Mapping[str, EvalResult],
    *,
    comparison: StageComparison | None = None,
    curves: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    title: str = "novaflow evaluation report",
) -> str:
    """The report as one HTML string (plotly.js inline, one ``<script>``; no network needed to open it)."""
    body = [f"<h1>{html_lib.escape(title)}</h1>"]
    for name, result in stages.items():
        body.append(
            f"<h2>{html_lib.escape(name)}</h2><p>{html_lib.escape(result.source)} - {len(result.samples)} samples</p>"
        )
        body.append(f"<pre>{html_lib.escape(metric_table_markdown(result))}</pre>")
        body += [f"<p class='warn'>{html_lib.escape(str(d))}</p>" for d in result.disagreements]
    if comparison is not None:
        body.append(f"<h2>Comparison</h2><pre>{html_lib.escape(comparison_markdown(comparison))}</pre>")
    for i, fig in enumerate(report_figures(stages, curves)):
        body.append(fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{i}"))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html_lib.escape(title)}</title><script type='text/javascript'>{get_plotlyjs()}</script>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}.warn{color:#b00}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )


def save_report(html: str, path: str | Path, *, s3_uri: str | None = None) -> dict[str, str]:
    """Write the report locally and, if asked, to S3; returns where it went (``{"local": ..., "s3": ...}``)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    where = {"local": str(out)}
    if s3_uri:
        bucket, key = split_s3_uri(s3_uri)
        try:
            get_client("s3").put_object(
                Bucket=bucket, Key=key, Body=html.encode("utf-8"), ContentType="text/html; charset=utf-8"
            )
        except ClientError as exc:
            raise wrap_client_error(exc, f"uploading the report to {s3_uri}") from exc
        where["s3"] = s3_uri
    return where
