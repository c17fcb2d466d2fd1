"""`novaflow jobs submit --method rft_multiturn --agent FILE.py`: the agent is checked before anything is created."""

from __future__ import annotations

from pathlib import Path

import pytest

from novaflow.aws import get_client
from novaflow.cli import main
from novaflow.settings import load_settings

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "agents"


def _submit(agent: Path, train: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    args = ["jobs", "submit", "--method", "rft_multiturn", "--platform", "SERVERLESS", "--accept-eula"]
    args += ["--train", train, "--agent", str(agent), *extra]
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow  # the agent runs in its own process
def test_an_agent_that_never_reports_is_refused_before_any_job_in_one_line(capsys) -> None:
    get_client("s3", settings=load_settings()).put_object(
        Bucket="novaflow-local", Key="tasks/colours.jsonl", Body=(EXAMPLES / "colours.jsonl").read_bytes()
    )
    code, out, err = _submit(EXAMPLES / "never_reports.py", "s3://novaflow-local/tasks/colours.jsonl", capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: agent {EXAMPLES / 'never_reports.py'}: rollout 1 of 3 (task colour-")
    assert "never reported a reward: POST /complete-rollout and then /update-reward once per trajectory" in lines[0]
    # nothing was deployed, nothing submitted
    assert get_client("lambda", settings=load_settings()).list_functions()["Functions"] == []
    assert get_client("sagemaker", settings=load_settings()).list_jobs(JobCategory="AgentRFT")["JobSummaries"] == []


@pytest.mark.slow
def test_a_dry_run_exercises_the_agent_and_shows_the_create_job_request(capsys) -> None:
    get_client("s3", settings=load_settings()).put_object(
        Bucket="novaflow-local", Key="tasks/tools.jsonl", Body=(EXAMPLES / "tools.jsonl").read_bytes()
    )
    code, out, err = _submit(
        EXAMPLES / "pick_the_tool.py", "s3://novaflow-local/tasks/tools.jsonl", capsys, "--dry-run"
    )
    assert code == 0, err
    assert out.startswith(f"agent {EXAMPLES / 'pick_the_tool.py'}: 3 local rollouts within the contract")
    assert "; not deployed (dry run)" in out
    assert "\nDry run for job nova-lite-2-rft-multiturn-" in out and ": no problems found." in out
    assert get_client("lambda", settings=load_settings()).list_functions()["Functions"] == []
