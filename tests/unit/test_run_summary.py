"""The run-summary artifact fits the page: long values leave the tables, cost estimates say who bills them."""

from __future__ import annotations

from flows.stages import RunLog, StageRecord
from flows.summary import CELL_CHARS, run_summary_markdown
from novaflow.aws import bills_like_aws


def _log() -> RunLog:
    log = RunLog("r1")
    uris = ", ".join(f"{f}: s3://novaflow-local/novaflow/runs/r1/data/{f}/data/{f}.jsonl" for f in ("sft", "eval"))
    log.stages += [StageRecord("data", 3.25, uris), StageRecord("reward-check", 0.5, "builtin")]
    log.costs["sft"] = "ESTIMATE: 4 x ml.p5.48xlarge x 24 h x 55.04 USD/h = 5,283.84 USD"
    log.locations["report-url"] = "http://127.0.0.1:5000/novaflow-local/report.html?X-Amz-Signature=abc"
    log.locations["report-s3"] = "s3://novaflow-local/report.html"
    return log


def test_long_stage_details_move_below_the_table() -> None:
    text = run_summary_markdown(_log())
    assert "| data | 3.2 | below, under Stage details |" in text
    assert "| reward-check | 0.5 | builtin |" in text
    assert "### Stage details\n\n- data: sft: s3://novaflow-local/novaflow/runs/r1/data/sft/data/sft.jsonl, " in text
    cells = [c.strip() for row in text.splitlines() if row.startswith("|") for c in row.strip("|").split("|")]
    assert cells and max(len(c) for c in cells) <= CELL_CHARS


def test_web_addresses_are_links_and_other_locations_are_code() -> None:
    text = run_summary_markdown(_log())
    assert "- report-url: [open](http://127.0.0.1:5000/novaflow-local/report.html?X-Amz-Signature=abc)" in text
    assert "- report-s3: `s3://novaflow-local/report.html`" in text


def test_cost_estimates_say_nothing_was_billed_when_the_endpoint_is_not_aws() -> None:
    offline = run_summary_markdown(_log(), endpoint="http://127.0.0.1:4566")
    assert "Nothing was billed: this run's AWS clients talked to http://127.0.0.1:4566 - not AWS." in offline
    assert "- sft: ESTIMATE: 4 x ml.p5.48xlarge" in offline
    assert "Nothing was billed" not in run_summary_markdown(_log(), endpoint=None)
    assert "Nothing was billed" not in run_summary_markdown(
        _log(), endpoint="https://vpce-0a1b-x.api.sagemaker.us-east-1.vpce.amazonaws.com"
    )


def test_which_endpoints_bill_like_aws() -> None:
    assert bills_like_aws(None) and bills_like_aws("https://sagemaker.us-east-1.amazonaws.com")
    assert bills_like_aws("https://s3.cn-north-1.amazonaws.com.cn")
    assert not bills_like_aws("http://127.0.0.1:4566") and not bills_like_aws("http://localhost:5000")
    assert not bills_like_aws("https://amazonaws.com.evil.example")
