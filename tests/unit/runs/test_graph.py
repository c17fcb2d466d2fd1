"""The stage graph: whole-graph checks, stages starting as soon as their inputs exist, the first failure
stopping the rest in one line."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from novaflow.errors import ConfigError
from novaflow.runs.graph import Graph, GraphParked, Stage, StageFailed, StageParked, run_graph


def _stage(key: str, needs: tuple[str, ...] = (), seconds: float = 0.0, fail: str | None = None) -> Stage:
    def run(ctx: Any, inputs: Mapping[str, Any]) -> str:
        time.sleep(seconds)
        if fail:
            raise RuntimeError(fail)
        return key + "(" + ",".join(str(inputs[n]) for n in needs) + ")"

    return Stage(key, needs, run)


def test_a_graph_is_refused_when_an_input_has_no_producer_or_stages_wait_on_each_other() -> None:
    with pytest.raises(ConfigError, match="stage 'rft' needs 'sft', which no stage gives"):
        Graph([_stage("data"), _stage("rft", ("sft",))])
    with pytest.raises(ConfigError, match="stages a, b wait on each other"):
        Graph([_stage("a", ("b",)), _stage("b", ("a",))])
    with pytest.raises(ConfigError, match="two stages are named 'data'"):
        Graph([_stage("data"), _stage("data")])


def test_stages_start_as_soon_as_their_inputs_exist() -> None:
    graph = Graph(
        [
            _stage("data"),
            _stage("baseline", ("data",), 0.3),
            _stage("sft", ("data",), 0.2),
            _stage("post-sft", ("data", "sft"), 0.3),
            _stage("rft", ("data", "sft"), 0.2),
            _stage("post-rft", ("data", "rft"), 0.2),
            _stage("compare", ("baseline", "post-sft", "post-rft")),
        ]
    )
    run = run_graph(graph, lambda stage, inputs: stage.run(None, inputs))
    t = {timing.key: timing for timing in run.timings}
    assert t["baseline"].start < t["sft"].end and t["sft"].start < t["baseline"].end  # side by side
    assert t["rft"].start >= t["sft"].end and t["rft"].start < t["post-sft"].end  # RFT does not wait for post-sft
    assert t["compare"].start >= max(t["baseline"].end, t["post-sft"].end, t["post-rft"].end)
    sft = "sft(data())"
    expected = f"compare(baseline(data()),post-sft(data(),{sft}),post-rft(data(),rft(data(),{sft})))"
    assert run.outputs["compare"] == expected
    path, seconds = graph.critical_path({k: v.seconds for k, v in t.items()})
    assert path == ["data", "sft", "rft", "post-rft", "compare"]
    assert run.timings[-1].end == pytest.approx(seconds, abs=0.15)


def test_the_first_failure_stops_the_other_branches_and_names_its_stage() -> None:
    stop = threading.Event()
    stopped: list[str] = []

    def sft(ctx: Any, inputs: Mapping[str, Any]) -> str:
        if not stop.wait(5):  # a job the failure handler stops
            return "trained"
        raise RuntimeError("Job sft-1 stopped")

    graph = Graph(
        [
            _stage("data"),
            _stage("baseline", ("data",), 0.1, fail="evaluation job eval-1 failed: AlgorithmError\nlast lines..."),
            Stage("sft", ("data",), sft),
            _stage("rft", ("sft",)),
        ]
    )

    def on_failure(key: str, exc: BaseException) -> None:
        stopped.append(key)
        stop.set()

    with pytest.raises(StageFailed) as err:
        run_graph(graph, lambda stage, inputs: stage.run(None, inputs), on_failure=on_failure)
    assert str(err.value) == "stage baseline failed: evaluation job eval-1 failed: AlgorithmError"
    assert stopped == ["baseline"]
    statuses = {t.key: t.status for t in err.value.timings}
    assert statuses == {"data": "completed", "baseline": "failed", "sft": "stopped"}  # rft never started


def test_a_failure_is_one_line_with_the_problems_a_dry_run_lists() -> None:
    from novaflow.runs.graph import one_line

    dry_run = RuntimeError(
        "Dry run for job j-1: 2 problem(s):\n  PROBLEM: no image for CPT\n  PROBLEM: role missing\n"
        "  note: runs in us-east-1\n  ESTIMATE (upper bound): 1 x ml.p5.48xlarge"
    )
    assert one_line(dry_run) == "Dry run for job j-1: 2 problem(s): PROBLEM: no image for CPT; PROBLEM: role missing"
    job = RuntimeError("Job j-2 failed: AlgorithmError: OOM.\n  last log lines:\n    [ERROR] OOM")
    assert str(StageFailed("sft", job)) == "stage sft failed: Job j-2 failed: AlgorithmError: OOM."
    assert one_line(ValueError("")) == "ValueError"


def test_stages_park_on_their_jobs_the_others_go_on_and_a_replay_picks_up_where_each_was() -> None:
    """Suspend mode: baseline and SFT both submit and park; the graph ends parked on both; the replay after SFT's
    job ended runs the evaluation after SFT and RFT, both parking again; nothing before them runs twice."""
    ended: set[str] = set()
    calls: list[str] = []

    def job_stage(key: str, needs: tuple[str, ...] = ()) -> Stage:
        def run(ctx: Any, inputs: Mapping[str, Any]) -> str:
            calls.append(key)
            if key not in ended:
                raise StageParked(key, f"{key}-job")
            return key

        return Stage(key, needs, run)

    graph = Graph(
        [
            _stage("data"),
            job_stage("baseline", ("data",)),
            job_stage("sft", ("data",)),
            job_stage("post-sft", ("sft",)),
            job_stage("rft", ("sft",)),
            _stage("compare", ("baseline", "post-sft")),
        ]
    )
    with pytest.raises(GraphParked) as first:
        run_graph(graph, lambda stage, inputs: stage.run(None, inputs))
    assert {k: p.waits_on for k, p in first.value.parked.items()} == {"baseline": "baseline-job", "sft": "sft-job"}
    assert sorted(calls) == ["baseline", "sft"] and first.value.result.outputs == {"data": "data()"}

    ended.add("sft")
    calls.clear()
    with pytest.raises(GraphParked) as second:
        run_graph(graph, lambda stage, inputs: stage.run(None, inputs), given=first.value.result.outputs)
    assert sorted(second.value.parked) == ["baseline", "post-sft", "rft"]
    assert sorted(calls) == ["baseline", "post-sft", "rft", "sft"]  # data came from the given outputs

    ended.update({"baseline", "post-sft", "rft"})
    done = run_graph(graph, lambda stage, inputs: stage.run(None, inputs), given=second.value.result.outputs)
    assert done.outputs["compare"] == "compare(baseline,post-sft)" and done.outputs["rft"] == "rft"


def test_a_failure_wins_over_parked_stages() -> None:
    def parks(ctx: Any, inputs: Mapping[str, Any]) -> str:
        raise StageParked("sft", "sft-job")

    stopped: list[str] = []
    graph = Graph([Stage("sft", (), parks), _stage("baseline", (), 0.1, fail="no data")])
    with pytest.raises(StageFailed, match="stage baseline failed: no data"):
        run_graph(graph, lambda stage, inputs: stage.run(None, inputs), on_failure=lambda k, e: stopped.append(k))
    assert stopped == ["baseline"]
