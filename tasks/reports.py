"""Prefect task for the run's report: render it, write it with its exact JSON locally and to S3, link it.

The link artifact opens in a browser: a presigned link to the S3 copy when the report went there (what a teammate
can open), the local file otherwise; its description says every place the report is. How long the rendering takes
is logged, since a report is built at the end of every run.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact

from novaflow.reports.html import render_report, save_report
from novaflow.reports.run import RunReport
from novaflow.settings import NovaflowSettings
from tasks.common import AWS_RETRIES, artifact_key


@task(name="publish-run-report", **AWS_RETRIES)
def publish_report_task(
    report: RunReport,
    out_path: str,
    *,
    settings: NovaflowSettings,
    s3_uri: str | None = None,
    key_suffix: str = "",
) -> dict[str, str]:
    """Write ``report.html`` and ``report.json`` (and upload both); publish ``eval-report`` linking to the page."""
    started = time.perf_counter()
    html = render_report(report)
    where = save_report(html, Path(out_path), settings=settings, s3_uri=s3_uri, data=report.to_json())
    local = Path(where["local"]).resolve()
    link = where.get("url") or local.as_uri()
    places = [f"local file `{local}`"] + (
        [f"S3 `{where['s3']}` (the link is presigned for 7 days)"] if "s3" in where else []
    )
    create_link_artifact(
        link=link,
        link_text=f"run report {report.run_name}",
        key=artifact_key("eval", "report", key_suffix),
        description=f"The HTML report of run {report.run_name}: " + "; ".join(places),
    )
    get_run_logger().info(
        "run report (%.0f KB, built in %.2f s): %s",
        len(html.encode("utf-8")) / 1024,
        time.perf_counter() - started,
        ", ".join(v for k, v in where.items() if k != "url"),
    )
    return where
