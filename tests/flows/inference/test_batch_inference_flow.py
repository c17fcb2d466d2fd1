"""The batch-inference flow on the embedded AWS: every row back in input order, the summary and failures as
artifacts, the job registered with the run (so a cancelled run stops it)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client as prefect_client

from flows.batch_inference import BatchInferenceParams, batch_inference
from flows.params import WaitParams
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.inference.batch import BatchSpec
from novaflow.runs.ledger import jobs_of_run
from novaflow.settings import load_settings


@pytest.mark.slow
def test_the_flow_answers_every_row_and_publishes_summary_and_failures(aws: object, tmp_path: Path) -> None:
    data = tmp_path / "qa.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["qid", "question"])
        writer.writerows([[f"q{i}", f"What is {i} + {i}?" if i != 7 else ""] for i in range(40)])
    spec = BatchSpec(
        data=DatasetSource(path=str(data), columns=ColumnMap(query="question", id="qid")),
        model="nova-lite-2",
        out_dir=str(tmp_path / "out"),
    )
    params = BatchInferenceParams(batch=spec, wait=WaitParams(poll_seconds=0.05, max_poll_seconds=0.1))
    state = batch_inference(params, return_state=True)
    out = state.result()
    assert (out["rows"], out["answered"], out["failures"]) == (40, 39, 1)
    rows = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(40)]
    assert rows[7]["error"] == "query: empty query in column 'question'"

    async def artifacts() -> dict[str, object]:
        async with prefect_client() as client:
            found = await client.read_artifacts()
        return {a.key: a for a in found if a.key and a.key.startswith("batch-")}

    import asyncio

    published = asyncio.run(artifacts())
    summary_key = f"batch-{out['job']}-summary"
    assert summary_key in published and f"batch-{out['job']}-failures" in published
    failures = json.loads(published[f"batch-{out['job']}-failures"].data)  # type: ignore[attr-defined]
    assert failures == [{"row": 8, "id": "q7", "field": "query", "reason": "empty query in column 'question'"}]
    owned = jobs_of_run(str(state.state_details.flow_run_id), settings=load_settings())
    assert [(j["job_name"], j["stage"]) for j in owned] == [(out["job"], "batch-inference")]
