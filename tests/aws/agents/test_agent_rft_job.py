"""A multi-turn RFT job of a team's agent file, end to end against the embedded AWS and its emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novaflow.agents.source import build_agent_zip, deploy_agent, load_agent_source
from novaflow.aws import get_client
from novaflow.errors import JobError
from novaflow.jobs.agent_rft import LOG_GROUP
from novaflow.jobs.backends import get_backend
from novaflow.jobs.logs import LogTailer, metrics_frame
from novaflow.jobs.poll import wait_for_job
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import submit_training_job
from novaflow.settings import load_settings

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "agents"


def _upload(name: str) -> str:
    key = f"data/mtrl/{name}"
    get_client("s3", settings=load_settings()).put_object(
        Bucket="novaflow-local", Key=key, Body=(EXAMPLES / name).read_bytes()
    )
    return f"s3://novaflow-local/{key}"


@pytest.mark.slow
def test_the_colour_game_job_learns_and_registers_its_model() -> None:
    source = load_agent_source(EXAMPLES / "guess_the_colour.py")
    agent = deploy_agent(source, zip_bytes=build_agent_zip(source), settings=load_settings())
    spec = JobSpec(
        platform="SERVERLESS",
        model="nova-lite-2",
        method="rft_multiturn",
        train_uri=_upload("colours.jsonl"),
        agent_arn=agent.arn,
        accept_eula=True,
        overrides={"max_steps": 8, "global_batch_size": 8, "group_size": 3, "temperature": 1.0},
    )
    record = submit_training_job(spec, settings=load_settings())
    seen: list[str] = []
    done = wait_for_job(
        record.name,
        platform="SERVERLESS",
        record=record,
        poll_seconds=0.2,
        max_poll_seconds=0.5,
        on_status=lambda s: seen.append(str(s.secondary_status)),
        settings=load_settings(),
    )
    assert done.status.value == "Completed"
    assert seen[-1] == "Completed" and "Training" in seen
    # the reward curve, read back from the job's own log lines
    lines = [line.message for line in LogTailer(record.name, log_group=LOG_GROUP, settings=load_settings()).poll()]
    curve = metrics_frame(lines)["reward_mean"].tolist()
    assert len(curve) == 8
    assert sum(curve[-3:]) / 3 > sum(curve[:3]) / 3 + 0.1, curve
    # the model package the job registered, named in DescribeJob's ServiceOutput
    state = get_backend("SERVERLESS", method="rft_multiturn", settings=load_settings()).describe(record.name)
    assert state is not None and done.output_model_package_arn == state.output_model_package_arn
    package = get_client("sagemaker", settings=load_settings()).describe_model_package(
        ModelPackageName=done.output_model_package_arn
    )
    assert package["ModelPackageGroupName"] == "novaflow-jobs-nova-lite-2"
    # the recipe's save_every (5) of 8 steps: one intermediate checkpoint, in the checkpoint group
    listed = get_client("sagemaker", settings=load_settings()).list_model_packages(
        ModelPackageGroupName="nova-textgeneration-lite-v2-mtrl-checkpoint-mpg"
    )
    assert [p["ModelPackageDescription"] for p in listed["ModelPackageSummaryList"]] == [
        f"Trained by serverless MTRL job {record.name}-step5"
    ]
    document = json.loads(state.raw["JobConfigDocument"])
    assert document["ServiceOutput"]["ProgressInfo"] == {"MaxSteps": 8, "CurrentStep": 8}
    # a re-run attaches instead of paying twice
    assert submit_training_job(spec, settings=load_settings()).attached


def _deployed(name: str) -> str:
    source = load_agent_source(EXAMPLES / name)
    return deploy_agent(source, zip_bytes=build_agent_zip(source), settings=load_settings()).arn


@pytest.mark.slow
def test_a_lambda_that_never_reports_fails_the_job_with_the_reason() -> None:
    """Given as an ARN, the agent is not exercised first: the service finds out, and says so."""
    spec = JobSpec(
        platform="SERVERLESS",
        model="nova-lite-2",
        method="rft_multiturn",
        train_uri=_upload("colours.jsonl"),
        agent_arn=_deployed("never_reports.py"),
        accept_eula=True,
        overrides={"max_steps": 3, "global_batch_size": 8, "group_size": 2},
    )
    record = submit_training_job(spec, settings=load_settings())
    with pytest.raises(JobError) as caught:
        wait_for_job(
            record.name,
            platform="SERVERLESS",
            record=record,
            poll_seconds=0.2,
            max_poll_seconds=0.5,
            settings=load_settings(),
        )
    reason = caught.value.failure_reason or ""
    assert reason.startswith("AlgorithmError: step 1: none of its 16 rollouts reported a reward; the agent must call")
    assert "/aws/lambda/SageMaker-novaflow-agent-never_reports" in reason
    assert any("dropped: no reward reported (status open)" in line for line in caught.value.log_tail or [])


@pytest.mark.slow
def test_stop_wait_and_status_from_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from novaflow.cli import main

    spec = JobSpec(
        platform="SERVERLESS",
        model="nova-lite-2",
        method="rft_multiturn",
        train_uri=_upload("tools.jsonl"),
        agent_arn=_deployed("pick_the_tool.py"),
        accept_eula=True,
        overrides={"max_steps": 200, "global_batch_size": 8, "group_size": 2},
    )
    record = submit_training_job(spec, settings=load_settings())
    where = ["--platform", "SERVERLESS", "--method", "rft_multiturn"]

    def cli(*args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    assert cli("jobs", "stop", record.name, *where) == (0, f"stop requested for {record.name}\n", "")
    code, _, err = cli("jobs", "wait", record.name, *where, "--poll", "0.2", "--quiet")
    assert code == 2 and err.startswith(f"error: Job {record.name} was stopped (by a user or its stopping condition)")
    assert cli("jobs", "status", record.name, *where) == (0, f"{record.name}: Stopped (Stopped)\n", "")
    state = get_backend("SERVERLESS", method="rft_multiturn", settings=load_settings()).describe(record.name)
    assert state is not None and state.raw_status == "Stopped"
