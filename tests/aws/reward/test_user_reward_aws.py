"""A team's reward on the embedded AWS: deployed idempotently, verified locally and through Lambda, an existing
function checked and used as is, and the `novaflow reward` commands with --source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from novaflow.aws import get_client
from novaflow.cli import app
from novaflow.errors import RewardError
from novaflow.local import LOCAL_BUCKET
from novaflow.local.aws.server import LOCAL_ROLE_ARN
from novaflow.reward.deploy import deploy_reward_lambda, existing_function_arn
from novaflow.reward.package import code_sha256
from novaflow.reward.probes import verify_reward_function
from novaflow.reward.source import build_reward_zip, load_reward_source
from novaflow.settings import load_settings

NAME = "SageMaker-team-reward"
ROWS = [
    {"id": f"q{i}", "messages": [{"role": "user", "content": f"What is {i} + {i}?"}], "reference_answer": str(2 * i)}
    for i in range(1, 8)
]
EXACT = "def grade(response, reference_answer, sample):\n    return float(response.strip() == reference_answer)\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rows_file(tmp_path: Path) -> Path:
    return write(tmp_path / "rft.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS))


def test_a_team_reward_is_deployed_once_and_verified_locally_and_through_lambda(aws: object, tmp_path: Path) -> None:
    data = build_reward_zip(load_reward_source(write(tmp_path / "exact.py", EXACT), settings=load_settings()))
    first = deploy_reward_lambda(
        function_name=NAME, zip_bytes=data, environment={}, poll_seconds=0.01, settings=load_settings()
    )
    again = deploy_reward_lambda(
        function_name=NAME, zip_bytes=data, environment={}, poll_seconds=0.01, settings=load_settings()
    )
    assert first.code_sha256 == code_sha256(data) == again.code_sha256
    assert again.changed is False and again.version == first.version
    conf = get_client("lambda", settings=load_settings()).get_function_configuration(FunctionName=NAME)
    assert (
        conf["Handler"] == "lambda_function.lambda_handler" and conf.get("Environment", {}).get("Variables", {}) == {}
    )

    get_client("s3", settings=load_settings()).put_object(
        Bucket=LOCAL_BUCKET, Key="team/rft.jsonl", Body=rows_file(tmp_path).read_bytes()
    )
    result = verify_reward_function(
        f"s3://{LOCAL_BUCKET}/team/rft.jsonl",
        source="exact.py",
        zip_bytes=data,
        function_name=NAME,
        settings=load_settings(),
    )
    assert result.ok, result.reason()
    table = {(r["probe"], r["runner"]): (r["n"], r["mean"], r["distinct"]) for r in result.table()}
    assert table[("reference", "local")] == table[("reference", "lambda")] == (7, 1.0, 1)
    assert table[("other-row", "lambda")] == (7, 0.0, 1)
    assert table[("garbled", "lambda")] == (7, round(4 / 7, 4), 2)  # 2, 4, 6 and 8 read the same reversed


def test_a_deployed_version_that_differs_from_the_file_is_a_mismatch(aws: object, tmp_path: Path) -> None:
    lenient = "def grade(response, reference_answer, sample):\n    return float(bool(response))\n"
    deploy_reward_lambda(
        function_name=NAME,
        zip_bytes=build_reward_zip(load_reward_source(write(tmp_path / "old.py", lenient), settings=load_settings())),
        environment={},
        poll_seconds=0.01,
        settings=load_settings(),
    )
    data = build_reward_zip(load_reward_source(write(tmp_path / "exact.py", EXACT), settings=load_settings()))
    result = verify_reward_function(
        rows_file(tmp_path), source="exact.py", zip_bytes=data, function_name=NAME, settings=load_settings()
    )
    assert not result.ok
    assert result.reason() == (
        "exact.py: local and lambda grades differ on 10 of 28 samples (first: 'q1:other-row': local 0.0, lambda "
        "1.0): another version is deployed, or the grader is not deterministic"
    )


def test_an_existing_function_is_checked_and_used_as_is(aws: object, tmp_path: Path) -> None:
    data = build_reward_zip(load_reward_source(write(tmp_path / "exact.py", EXACT), settings=load_settings()))
    created = get_client("lambda", settings=load_settings()).create_function(
        FunctionName="SageMaker-theirs",
        Runtime="python3.12",
        Role=LOCAL_ROLE_ARN,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": data},
    )
    arn = created["FunctionArn"]
    assert existing_function_arn(arn, settings=load_settings()) == arn
    result = verify_reward_function(rows_file(tmp_path), source=arn, function_name=arn, settings=load_settings())
    assert result.ok and {r["runner"] for r in result.table()} == {"lambda"}
    with pytest.raises(RewardError, match=r"is not an unqualified Lambda function ARN"):
        existing_function_arn(f"{arn}:3", settings=load_settings())
    missing = arn.replace("SageMaker-theirs", "SageMaker-nobody")
    with pytest.raises(RewardError) as info:
        existing_function_arn(missing, settings=load_settings())
    assert str(info.value) == f"reward function {missing} does not exist (or is in another region)"
    code = get_client("lambda", settings=load_settings()).get_function(FunctionName=arn)["Configuration"]["CodeSha256"]
    assert code == code_sha256(data)  # verification invoked it; nothing redeployed it


def test_reward_cli_builds_and_verifies_a_source_and_refuses_broken_code(aws: object, tmp_path: Path) -> None:
    runner = CliRunner()
    source = write(tmp_path / "exact.py", EXACT)
    built = runner.invoke(app, ["reward", "build", "--source", str(source), "--out", str(tmp_path / "r.zip")])
    assert built.exit_code == 0, built.output
    sha = code_sha256((tmp_path / "r.zip").read_bytes())
    assert built.output.strip().endswith(
        f"CodeSha256 {sha}\thandler lambda_function.lambda_handler\truntime python3.12"
    )
    verified = runner.invoke(
        app, ["reward", "verify", "--source", str(source), "--rows", str(rows_file(tmp_path)), "--no-lambda"]
    )
    assert verified.exit_code == 0, verified.output
    assert verified.output.strip().splitlines()[-1] == "reward verification: OK"
    constant = write(tmp_path / "const.py", "def grade(response, reference_answer, sample):\n    return 1\n")
    refused = runner.invoke(
        app, ["reward", "verify", "--source", str(constant), "--rows", str(rows_file(tmp_path)), "--no-lambda"]
    )
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines()[-1] == (
        f"reward verification: FAILED: {constant}: returns the same reward 1 for all 28 probe samples (reference "
        "answers, other rows' answers, empty and garbled answers): RFT would learn nothing from it"
    )
    broken = write(tmp_path / "broken.py", "def grade(response, reference_answer, sample)\n    return 1\n")
    failed = runner.invoke(app, ["reward", "build", "--source", str(broken)])
    assert failed.exit_code == 1 and isinstance(failed.exception, RewardError)
    assert str(failed.exception) == f"{broken}: line 1: syntax error: expected ':'"
