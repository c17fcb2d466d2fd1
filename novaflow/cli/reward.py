"""`novaflow reward`: build, deploy and verify the RFT reward Lambda.

``verify --local`` starts the embedded AWS, deploys this checkout's zip into it and verifies through its
Lambda API, so the whole check runs offline; against a shell where ``novaflow local up`` exports are set, or
against AWS, it verifies the function already deployed.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from novaflow.reward.defaults import DEFAULT_FUNCTION_NAME, DEFAULT_LIMIT
from reward_lambda.labels import DEFAULT_LABELS

if TYPE_CHECKING:
    from novaflow.reward.verify import RewardVerification
    from reward_lambda.config import RewardConfig

app = typer.Typer(help="Build, deploy and verify the RFT reward Lambda.", no_args_is_help=True)


SOURCE_HELP = (
    "Your reward file (.py defining lambda_handler(event, context) or grade(response, reference_answer, sample)); "
    "a requirements.txt beside it is packaged too. Default: novaflow's label grader."
)


@app.command("build")
def build(
    out: Path = typer.Option(Path("reward.zip"), "--out", "-o", help="Where to write the zip."),
    source: str = typer.Option(None, "--source", help=SOURCE_HELP),
) -> None:
    """Write the deterministic deployment zip (same source, same bytes) and print its CodeSha256."""
    from novaflow.reward.package import HANDLER, RUNTIME, write_zip
    from novaflow.settings import load_settings

    if source:
        from novaflow.reward.package import code_sha256
        from novaflow.reward.source import build_reward_zip, load_reward_source

        data = build_reward_zip(load_reward_source(source, settings=load_settings()))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        path, sha = out, code_sha256(data)
    else:
        path, sha = write_zip(out)
    typer.echo(f"{path}\t{path.stat().st_size} bytes\tCodeSha256 {sha}\thandler {HANDLER}\truntime {RUNTIME}")


def _package(source: str | None) -> bytes | None:
    from novaflow.settings import load_settings

    if not source:
        return None
    from novaflow.reward.source import build_reward_zip, load_reward_source

    return build_reward_zip(load_reward_source(source, settings=load_settings()))


@app.command("deploy")
def deploy(
    name: str = typer.Option(DEFAULT_FUNCTION_NAME, "--name", help="Function name (must contain 'SageMaker')."),
    role_arn: str = typer.Option(
        None, "--role-arn", help="SageMaker execution role to grant invoke to (default NOVAFLOW_ROLE_ARN)."
    ),
    region: str = typer.Option(None, "--region", help="AWS region (default NOVAFLOW_REGION)."),
    labels: str = typer.Option(
        None, "--labels", help=f"Comma-separated label set (default {','.join(DEFAULT_LABELS)})."
    ),
    correct: float = typer.Option(1.0, help="Reward for the right label."),
    incorrect: float = typer.Option(-1.0, help="Reward for a wrong label (also the invalid-sample reward)."),
    verbose_penalty: float = typer.Option(0.0, help="Subtracted from answers longer than --verbose-chars."),
    verbose_chars: int = typer.Option(32, help="Answer length above which the verbose penalty applies."),
    timeout: int = typer.Option(300, help="Lambda timeout in seconds (1-900)."),
    source: str = typer.Option(None, "--source", help=SOURCE_HELP),
) -> None:
    """Create or update the function, publish a version, grant the SageMaker role; prints the result as JSON."""
    from novaflow.reward.deploy import deploy_reward_lambda
    from novaflow.settings import load_settings

    settings = load_settings(region=region, role_arn=role_arn)
    package = _package(source)
    config = None if package is not None else _config(labels, correct, incorrect, verbose_penalty, verbose_chars)
    reward = deploy_reward_lambda(
        function_name=name,
        config=config,
        settings=settings,
        timeout_seconds=timeout,
        zip_bytes=package,
        environment={} if package is not None else None,
    )
    typer.echo(json.dumps(dataclasses.asdict(reward), indent=2))


@app.command("verify")
def verify(
    rows: str = typer.Option(None, "--rows", help="RFT rows (JSONL path or s3:// URI), e.g. the prepared rft.jsonl."),
    predictions: str = typer.Option(
        None,
        "--predictions",
        help="A past evaluation's predictions: JSONL with "
        "prediction/gold (or inference_output.jsonl) or an evaluation output.",
    ),
    name: str = typer.Option(DEFAULT_FUNCTION_NAME, "--name", help="Deployed function to invoke."),
    use_lambda: bool = typer.Option(True, "--lambda/--no-lambda", help="Also grade through the Lambda API."),
    local: bool = typer.Option(False, "--local", help="Start the embedded AWS and deploy into it first."),
    limit: int = typer.Option(DEFAULT_LIMIT, help="Rows read from each input."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
    source: str = typer.Option(None, "--source", help=SOURCE_HELP),
    function_arn: str = typer.Option(None, "--function-arn", help="Verify an existing reward Lambda (used as is)."),
) -> None:
    """Grade sample rows / predictions locally and via Lambda; print the reward distribution. Exit 1 if not OK.

    With ``--source`` (or ``--function-arn``) a team's reward is probed on ``--rows``: each row's reference
    answer, another row's, an empty and a garbled answer; a grader that is constant, raises on every sample or
    answers in the wrong shape is refused with one line.
    """
    from novaflow.reward.deploy import deploy_reward_lambda
    from novaflow.reward.verify import verify_reward
    from novaflow.settings import load_settings

    if source or function_arn:
        _verify_own(rows, source, function_arn, name, use_lambda, local, limit, as_json)
        return
    with ExitStack() as stack:
        if local:
            from novaflow.local import LocalAws

            stack.enter_context(LocalAws())
        settings = load_settings()  # after the embedded AWS has put its bucket and role in the environment
        if local:
            deploy_reward_lambda(function_name=name, poll_seconds=0.05, settings=settings)
        result = verify_reward(
            rows=rows,
            predictions=predictions,
            function_name=name if use_lambda else None,
            settings=settings,
            limit=limit,
        )
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else format_verification(result))
    if not result.ok:
        raise typer.Exit(1)


def _verify_own(
    rows: str | None,
    source: str | None,
    function_arn: str | None,
    name: str,
    use_lambda: bool,
    local: bool,
    limit: int,
    as_json: bool,
) -> None:
    from novaflow.errors import RewardError
    from novaflow.reward.deploy import deploy_reward_lambda, existing_function_arn
    from novaflow.reward.probes import verify_reward_function
    from novaflow.settings import load_settings

    if not rows:
        raise RewardError("a reward function is verified on RFT rows: pass --rows FILE.jsonl (or s3://...)")
    package = _package(source)
    with ExitStack() as stack:
        if local:
            from novaflow.local import LocalAws

            stack.enter_context(LocalAws())
        settings = load_settings()  # after the embedded AWS has put its bucket and role in the environment
        target: str | None = None
        if function_arn:
            target = existing_function_arn(function_arn, settings=settings)
        elif use_lambda and package is not None:
            if local:  # into the embedded AWS just started; otherwise the function deployed as --name is checked
                deploy_reward_lambda(
                    function_name=name, zip_bytes=package, environment={}, poll_seconds=0.05, settings=settings
                )
            target = name
        result = verify_reward_function(
            rows,
            source=source or str(function_arn),
            zip_bytes=package,
            function_name=target,
            settings=settings,
            limit=limit,
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        columns = ["probe", "runner", "n", "mean", "std", "min", "median", "max", "distinct", "invalid"]
        table = [columns] + [[str(row[c]) for c in columns] for row in result.table()]
        widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]
        lines += [f"note: {n}" for n in result.notes] + [f"problem: {p}" for p in result.problems + result.mismatches]
        lines.append("reward verification: " + ("OK" if result.ok else f"FAILED: {result.reason()}"))
        typer.echo("\n".join(lines))
    if not result.ok:
        raise typer.Exit(1)


def format_verification(result: RewardVerification) -> str:
    """A plain-text table, verdict last (what a terminal user reads first when scrolling back)."""
    columns = ["source", "runner", "n", "mean", "share_max", "share_min", "accuracy", "label_present", "invalid"]
    table = [columns] + [[str(row[c]) for c in columns] for row in result.table()]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]
    for dist in result.distributions:
        for reason, count in dist.invalid_reasons.items():
            lines.append(f"invalid ({dist.source}, x{count}): {reason}")
    lines += [f"mismatch: {m}" for m in result.mismatches] + [f"problem: {p}" for p in result.problems]
    lines.append("reward verification: " + ("OK" if result.ok else "FAILED"))
    return "\n".join(lines)


def _config(
    labels: str | None, correct: float, incorrect: float, verbose_penalty: float, verbose_chars: int
) -> RewardConfig:
    from reward_lambda.config import RewardConfig

    env = RewardConfig(
        correct=correct, incorrect=incorrect, verbose_penalty=verbose_penalty, verbose_chars=verbose_chars
    ).to_env()
    if labels:
        env["REWARD_LABELS"] = labels
    return RewardConfig.from_env(env)  # one validation path with clear messages for every value
