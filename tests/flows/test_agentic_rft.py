"""The mtrl stage of the end-to-end flow: a team's agent file checked, deployed, trained against, evaluated."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from flows.end_to_end import end_to_end
from flows.params import AgentParams, EvaluationParams, JobParams
from novaflow.registry.packages import default_group, list_versions
from novaflow.settings import load_settings
from tests.flows.helpers import small_params

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"
SERVERLESS = {"platform": "SERVERLESS", "accept_eula": True}


@pytest.mark.slow
def test_the_mtrl_stage_trains_an_agent_file_and_its_model_is_evaluated_in_the_report(aws, tmp_path) -> None:
    params = small_params(
        "mtrl-e2e",
        tmp_path,
        stages=["mtrl"],
        agent=AgentParams(source=str(EXAMPLES / "guess_the_colour.py")),
        mtrl=JobParams(
            **SERVERLESS, overrides={"max_steps": 6, "global_batch_size": 8, "group_size": 2, "temperature": 1.0}
        ),
        baseline=EvaluationParams(**SERVERLESS),
        evaluation=EvaluationParams(**SERVERLESS),
    )
    params = params.model_copy(update={"data": params.data.model_copy(update={"rft_rows": 24})})
    state = end_to_end(params, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert set(result["metrics"]) == {"baseline", "post-mtrl"}
    assert "agent-check" in result["stages"] and "mtrl" in result["stages"]
    # the model the job registered is the one evaluated, and it is compared with the baseline in the report
    (version,) = list_versions(default_group("nova-lite-2", "mtrl-e2e"), settings=load_settings())
    assert version.lineage["stage"] == "mtrl" and version.lineage["job"] == result["jobs"]["mtrl"]
    em = {row["metric"]: row for row in result["comparison"]}["em"]
    assert em["post-mtrl"] == result["metrics"]["post-mtrl"]["em"] == pytest.approx(version.metrics["em"], abs=1e-6)
    assert em["delta_post-mtrl_vs_baseline"] > 0.2
    report = Path(result["report"]["local"]).read_text()
    assert "post-mtrl" in report and "baseline" in report
    assert "<p class='note'>6 steps from " in report and "no training metrics found" not in report  # its reward curve
    # the report's link to the job opens the embedded AWS's page of that CreateJob job
    settings = load_settings()
    link = f"{settings.console_url}/sagemaker/jobs/{result['jobs']['mtrl']}?region=us-east-1"
    with urllib.request.urlopen(link, timeout=10) as page:
        text = page.read().decode()
    assert "AgentRFT" in text and "Completed" in text
