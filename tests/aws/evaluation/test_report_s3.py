from __future__ import annotations

import urllib.request
from pathlib import Path

from novaflow.aws import get_client
from novaflow.reports.html import build_report, save_report
from novaflow.settings import load_settings
from tests.unit.evaluation.stages import sft_rft_500


def test_report_uploaded_to_s3(aws: object, tmp_path: Path) -> None:
    _, sft, _ = sft_rft_500()
    html = build_report({"sft": sft})
    uri = "s3://novaflow-local/reports/run-1/report.html"
    where = save_report(html, tmp_path / "report.html", s3_uri=uri, settings=load_settings())
    assert {k: where[k] for k in ("local", "s3")} == {"local": str(tmp_path / "report.html"), "s3": uri}
    # The link a person clicks is a presigned GET that a browser opens as the page itself.
    assert "X-Amz-Signature=" in where["url"] and "X-Amz-Expires=604800" in where["url"]
    with urllib.request.urlopen(where["url"]) as page:  # the embedded AWS, on this machine
        assert page.read().decode("utf-8") == html
    obj = get_client("s3", settings=load_settings()).get_object(
        Bucket="novaflow-local", Key="reports/run-1/report.html"
    )
    assert obj["ContentType"] == "text/html; charset=utf-8"
    assert obj["Body"].read().decode("utf-8") == html
