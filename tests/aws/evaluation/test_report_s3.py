from __future__ import annotations

from pathlib import Path

from novaflow.aws import get_client
from novaflow.reports.html import build_report, save_report
from tests.unit.evaluation.stages import sft_rft_500


def test_report_uploaded_to_s3(aws: object, tmp_path: Path) -> None:
    _, sft, _ = sft_rft_500()
    html = build_report({"sft": sft})
    uri = "s3://novaflow-local/reports/run-1/report.html"
    assert save_report(html, tmp_path / "report.html", s3_uri=uri) == {
        "local": str(tmp_path / "report.html"),
        "s3": uri,
    }
    obj = get_client("s3").get_object(Bucket="novaflow-local", Key="reports/run-1/report.html")
    assert obj["ContentType"] == "text/html; charset=utf-8"
    assert obj["Body"].read().decode("utf-8") == html
