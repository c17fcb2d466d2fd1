from __future__ import annotations

import json
import re
from pathlib import Path

from novaflow.evaluation.classification import classify
from novaflow.evaluation.compare import compare_stages
from novaflow.reports.figures import confusion_heatmap, metric_bars
from novaflow.reports.html import build_report, report_figures, save_report
from novaflow.reports.summary import summary_markdown
from tests.unit.evaluation.stages import sft_rft_500

GOLDEN = Path(__file__).parents[2] / "golden" / "evaluation"


def _stages():  # type: ignore[no-untyped-def]
    base, sft, rft = sft_rft_500()
    return {"base": base, "sft": sft, "rft": rft}


def test_html_is_self_contained_with_every_figure(tmp_path: Path) -> None:
    stages = _stages()
    comparison = compare_stages(stages, n_boot=200)
    html = build_report(stages, comparison=comparison, curves={"sft loss": [(1, 2.5), (2, 1.25)]})
    assert "<script src=" not in html and "cdn.plot.ly" not in html.split("</script>", 1)[1]
    assert html.count("<script type='text/javascript'>") == 1
    # bars + 3 confusion matrices + length histogram + training curves
    assert sorted(set(re.findall(r'id="(fig-\d+)"', html))) == [f"fig-{i}" for i in range(6)]
    assert "Confusion matrix - rft (accuracy 0.788)" in html
    where = save_report(html, tmp_path / "r" / "report.html")
    assert where == {"local": str(tmp_path / "r" / "report.html")}
    assert (tmp_path / "r" / "report.html").read_text(encoding="utf-8") == html


def test_figures_carry_the_numbers() -> None:
    stages = _stages()
    bars = metric_bars(stages)
    rft_bar = next(t for t in bars.data if t.name == "rft")
    em_at = list(rft_bar.x).index("em")
    assert rft_bar.y[em_at] == 0.788
    assert rft_bar.error_y.array[em_at] == stages["rft"].metrics.get("em").stderr
    assert "bleu (/100)" in rft_bar.x
    report = classify(stages["sft"].golds, stages["sft"].predictions)
    heat = confusion_heatmap(report, "sft")
    assert [list(r) for r in heat.data[0].z] == report.confusion
    assert len(report_figures({"sft": stages["sft"]})) == 3


def test_markdown_summary_matches_golden() -> None:
    stages = _stages()
    text = summary_markdown(stages, compare_stages(stages, n_boot=300))
    assert "| sft | rft | em | +0.0160 |" in text
    assert text == (GOLDEN / "summary.md").read_text()


def test_metric_rows_are_json_ready() -> None:
    from novaflow.reports.summary import metric_rows

    rows = metric_rows(_stages()["rft"])
    assert json.loads(json.dumps(rows))[3] == {
        "metric": "em",
        "value": 0.788,
        "stderr": rows[3]["stderr"],
        "scale": "0-1",
    }
