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

import typer

from novaflow.reward.deploy import DEFAULT_FUNCTION_NAME, deploy_reward_lambda
from novaflow.reward.package import HANDLER, RUNTIME, write_zip
from novaflow.reward.verify import DEFAULT_LIMIT, RewardVerification, verify_reward
from novaflow.settings import load_settings
from reward_lambda.config import RewardConfig

app = typer.Typer(help="Build, deploy and verify the RFT reward Lambda.", no_args_is_help=True)


@app.command("build")
def build(out: Path = typer.Option(Path("reward.zip"), "--out", "-o", help="Where to write the zip.")) -> None:
    """Write the deterministic deployment zip (same source, same bytes) and print its CodeSha256."""
    path, sha = write_zip(out)
    typer.echo(f"{path}\t{path.stat().st_size} bytes\tCodeSha256 {sha}\thandler {HANDLER}\truntime {RUNTIME}")


@app.command("deploy")
def deploy(
    name: str = typer.Option(DEFAULT_FUNCTION_NAME, "--name", help="Function name (must contain 'SageMaker')."),
    role_arn: str = typer.Option(
        None, "--role-arn", help="SageMaker execution role to grant invoke to (default NOVAFLOW_ROLE_ARN)."
    ),
    region: str = typer.Option(None, "--region", help="AWS region (default NOVAFLOW_REGION)."),
    labels: str = typer.Option(None, "--labels", help="Comma-separated label set (default HQ,LQ_EDIT,LQ_CLOSE)."),
    correct: float = typer.Option(1.0, help="Reward for the right label."),
    incorrect: float = typer.Option(-1.0, help="Reward for a wrong label (also the invalid-sample reward)."),
    verbose_penalty: float = typer.Option(0.0, help="Subtracted from answers longer than --verbose-chars."),
    verbose_chars: int = typer.Option(32, help="Answer length above which the verbose penalty applies."),
    timeout: int = typer.Option(300, help="Lambda timeout in seconds (1-900)."),
) -> None:
    """Create or update the function, publish a version, grant the SageMaker role; prints the result as JSON."""
    settings = load_settings(region=region, role_arn=role_arn)
    config = _config(labels, correct, incorrect, verbose_penalty, verbose_chars)
    reward = deploy_reward_lambda(function_name=name, config=config, settings=settings, timeout_seconds=timeout)
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
) -> None:
    """Grade sample rows / predictions locally and via Lambda; print the reward distribution. Exit 1 if not OK."""
    with ExitStack() as stack:
        if local:
            from novaflow.local import LocalAws

            stack.enter_context(LocalAws())
            deploy_reward_lambda(function_name=name, poll_seconds=0.05)
        result = verify_reward(
            rows=rows,
            predictions=predictions,
            function_name=name if use_lambda else None,
            settings=load_settings(),
            limit=limit,
        )
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else format_verification(result))
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
    env = RewardConfig(
        correct=correct, incorrect=incorrect, verbose_penalty=verbose_penalty, verbose_chars=verbose_chars
    ).to_env()
    if labels:
        env["REWARD_LABELS"] = labels
    return RewardConfig.from_env(env)  # one validation path with clear messages for every value
