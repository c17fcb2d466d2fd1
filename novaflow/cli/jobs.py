"""`novaflow jobs`: Submit, watch, tail and stop SageMaker (on instances, serverless or HyperPod) and Bedrock jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from novaflow.catalog import Method, Platform
from novaflow.cli.options import METHODS_HELP, model_option

app = typer.Typer(
    help="Submit, watch, tail and stop SageMaker / Bedrock training and evaluation jobs.", no_args_is_help=True
)
PLATFORM = typer.Option(
    "SMTJ", help="SMTJ (instances), SERVERLESS (no instances), BEDROCK or HYPERPOD (SMHP: --cluster, --namespace)."
)
CLUSTER = typer.Option(None, help="HYPERPOD: the HyperPod cluster (default NOVAFLOW_HYPERPOD_CLUSTER).")
NAMESPACE = typer.Option(None, help="HYPERPOD: the Kubernetes namespace (default NOVAFLOW_HYPERPOD_NAMESPACE).")
METHOD = typer.Option(None, help="rft_multiturn for a multi-turn RFT job (a CreateJob job, not a training job).")


def _backend(platform: str, cluster: str | None, namespace: str | None, method: str | None = None) -> Any:
    from novaflow.jobs.backends import get_backend
    from novaflow.settings import load_settings

    return get_backend(Platform.parse(platform), load_settings(), method=method, cluster=cluster, namespace=namespace)


@app.command("submit")
def submit(
    model: str = model_option(),
    method: str = typer.Option(..., help=METHODS_HELP),
    train: str = typer.Option(None, help="s3:// URI of the training data (or gen_qa.jsonl for evaluation)."),
    validation: str = typer.Option(None, help="s3:// URI of validation data."),
    output: str = typer.Option(None, help="s3:// output path (default <bucket>/<prefix>/jobs)."),
    platform: str = PLATFORM,
    cluster: str = CLUSTER,
    namespace: str = NAMESPACE,
    eval_task: str = typer.Option(None, help="Evaluation task (default gen_qa)."),
    override: list[str] = typer.Option([], "--override", "-o", help="Recipe override KEY=VALUE, repeatable."),
    recipe_file: Path | None = typer.Option(None, help="Your own recipe YAML instead of the packaged template."),
    checkpoint: str = typer.Option(
        None, help="Start from this s3:// checkpoint (SMTJ) or model package version ARN (SERVERLESS)."
    ),
    model_package_group: str = typer.Option(
        None, help="SERVERLESS: registry group the trained model is registered in (default novaflow-jobs-<model>)."
    ),
    accept_eula: bool = typer.Option(False, "--accept-eula", help="SERVERLESS: accept the model's EULA."),
    reward_lambda_arn: str = typer.Option(None, help="Reward Lambda ARN (rft_lora, rft_eval)."),
    agent: str = typer.Option(
        None,
        help="rft_multiturn: your agent - a .py file (exercised on a few of the --train tasks, then deployed as a "
        "Lambda), a Lambda function ARN or a Bedrock AgentCore runtime ARN.",
    ),
    instance_type: str = typer.Option(None, help="Default from the instance table."),
    instance_count: int = typer.Option(None, help="Default from the instance table."),
    max_runtime: int = typer.Option(86400, help="StoppingCondition.MaxRuntimeInSeconds."),
    dry: bool = typer.Option(False, "--dry-run", help="Validate and estimate cost; change nothing on AWS."),
    hours: float = typer.Option(None, help="Expected hours for the cost estimate (default: max runtime)."),
    serverless_prices_file: Path | None = typer.Option(
        None, help="SERVERLESS: your copy of the per-token price table for the dry run's estimate."
    ),
    retry_failed: bool = typer.Option(False, help="Start a new attempt when the same spec failed or was stopped."),
    force_new: bool = typer.Option(False, help="Create a new job even if one exists for this spec."),
    record: Path | None = typer.Option(None, help="Save the job record (JSON) here."),
) -> None:
    """Submit a job once per spec (re-running attaches to the existing job)."""
    from novaflow.cli.recipes import parse_overrides
    from novaflow.jobs.dryrun import dry_run
    from novaflow.jobs.spec import JobSpec
    from novaflow.jobs.submit import submit_training_job
    from novaflow.settings import load_settings

    agent_arn = _agent_arn(agent, train, dry) if agent else None
    spec = JobSpec(
        platform=Platform.parse(platform),
        model=model,
        method=Method.parse(method),
        eval_task=eval_task,
        overrides=parse_overrides(override),
        recipe_file=str(recipe_file) if recipe_file else None,
        train_uri=train,
        validation_uri=validation,
        output_uri=output,
        model_name_or_path=checkpoint,
        model_package_group=model_package_group,
        accept_eula=accept_eula,
        reward_lambda_arn=reward_lambda_arn,
        agent_arn=agent_arn,
        instance_type=instance_type,
        instance_count=instance_count,
        max_runtime_seconds=max_runtime,
        cluster=cluster,
        namespace=namespace,
    )
    settings = load_settings()
    if dry:
        prices = str(serverless_prices_file) if serverless_prices_file else None
        report = dry_run(spec, expected_hours=hours, serverless_prices_file=prices, settings=settings)
        typer.echo(report.describe())
        raise typer.Exit(0 if report.ok else 1)
    rec = submit_training_job(spec, retry_failed=retry_failed, force_new=force_new, settings=settings)
    typer.echo(f"{'attached to' if rec.attached else 'created'} {rec.name} ({rec.status.value})")
    if rec.output_model_package_arn:
        typer.echo(f"registered as {rec.output_model_package_arn}")
    if record:
        rec.save(record)
        typer.echo(f"record saved to {record}")


def _agent_arn(agent: str, train: str | None, dry: bool) -> str:
    """The agent's ARN: a file is exercised on the first tasks, then deployed (a dry run deploys nothing)."""
    from novaflow.agents.check import exercise_agent
    from novaflow.agents.resolve import read_tasks, resolve_agent
    from novaflow.agents.source import build_agent_zip, load_agent_source
    from novaflow.errors import AgentError
    from novaflow.settings import load_settings

    settings = load_settings()
    if agent.startswith("arn:") or not dry:
        if not train and not agent.startswith("arn:"):
            raise AgentError(f"agent {agent}: pass --train (the tasks) so the agent can be exercised before any job")
        resolved = resolve_agent(agent, read_tasks(train, settings) if train else [], settings)
        typer.echo(resolved.note)
        return resolved.arn
    source = load_agent_source(agent)
    if not train:
        raise AgentError(f"agent {agent}: pass --train (the tasks) so the agent can be exercised before any job")
    check = exercise_agent(build_agent_zip(source), read_tasks(train, settings), where=agent)
    typer.echo(check.summary() + "; not deployed (dry run)")
    account = "000000000000"
    try:
        from novaflow.aws import get_client

        account = str(get_client("sts", settings).get_caller_identity()["Account"])
    except Exception:  # noqa: S110 - the planned ARN is shown, never used, in a dry run
        pass
    return f"arn:aws:lambda:{settings.region}:{account}:function:{source.function_name}"


@app.command("status")
def status(
    name: str = typer.Argument(..., help="Job name."),
    platform: str = PLATFORM,
    cluster: str = CLUSTER,
    namespace: str = NAMESPACE,
    method: str | None = METHOD,
) -> None:
    """Print the job's status (and failure reason)."""
    state = _backend(platform, cluster, namespace, method).describe(name)
    if state is None:
        typer.secho(f"no job named {name} on {platform}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    extra = f" ({state.secondary_status})" if state.secondary_status else ""
    typer.echo(f"{name}: {state.raw_status}{extra}" + (f" - {state.failure_reason}" if state.failure_reason else ""))


@app.command("logs")
def logs(
    name: str = typer.Argument(..., help="Job name."),
    metrics: bool = typer.Option(False, help="Print the parsed metric series instead of raw lines."),
    platform: str = PLATFORM,
    cluster: str = CLUSTER,
    namespace: str = NAMESPACE,
    method: str | None = METHOD,
) -> None:
    """Print the job's CloudWatch log lines (SageMaker jobs; HyperPod: the job's lines in the cluster's group)."""
    from novaflow.jobs.agent_rft import LOG_GROUP as AGENT_LOG_GROUP
    from novaflow.jobs.logs import LogTailer, metrics_frame
    from novaflow.settings import load_settings

    settings = load_settings()
    if Platform.parse(platform) is Platform.SMHP:
        lines = _backend(platform, cluster, namespace).log_tailer(name).poll()
    elif method and Method.parse(method) is Method.RFT_MULTITURN:
        lines = LogTailer(name, settings, log_group=AGENT_LOG_GROUP).poll()
    else:
        lines = LogTailer(name, settings).poll()
    if metrics:
        typer.echo(metrics_frame(line.message for line in lines).to_string(index=False))
        return
    for line in lines:
        typer.echo(line.message)


@app.command("stop")
def stop(
    name: str = typer.Argument(..., help="Job name."),
    platform: str = PLATFORM,
    cluster: str = CLUSTER,
    namespace: str = NAMESPACE,
    method: str | None = METHOD,
) -> None:
    """Ask AWS to stop the job (it ends as Stopped, not Failed; a HyperPod job is deleted)."""
    _backend(platform, cluster, namespace, method).stop(name)
    typer.echo(f"{'deleted' if Platform.parse(platform) is Platform.SMHP else 'stop requested for'} {name}")


@app.command("wait")
def wait(
    name: str = typer.Argument(None, help="Job name (or use --record)."),
    record: Path | None = typer.Option(None, help="A job record saved by `jobs submit --record`."),
    platform: str = PLATFORM,
    cluster: str = CLUSTER,
    namespace: str = NAMESPACE,
    max_wait: float = typer.Option(86400, help="Give up after this many seconds."),
    poll: float = typer.Option(30, help="First poll interval in seconds (backs off to 300)."),
    stop_on_deadline: bool = typer.Option(False, help="Stop the job when the deadline passes."),
    quiet: bool = typer.Option(False, help="Do not stream log lines."),
    method: str | None = METHOD,
) -> None:
    """Wait for a job to end, streaming its log; exit 0 only when it Completed."""
    from novaflow.jobs.poll import wait_for_job
    from novaflow.jobs.records import JobRecord
    from novaflow.settings import load_settings

    rec = JobRecord.load(record) if record else None
    if rec is None and name and method:  # the method picks the backend (a CreateJob job is not a training job)
        rec = JobRecord(
            platform=Platform.parse(platform), name=name, spec_hash="", method=Method.parse(method).value, model=""
        )
    job = rec.name if rec else name
    if not job:
        raise typer.BadParameter("give a job name or --record")
    plat = rec.platform if rec else Platform.parse(platform)
    backend = _backend(
        plat.value,
        (rec.cluster if rec else None) or cluster,
        (rec.namespace if rec else None) or namespace,
        (rec.method if rec and rec.method else None) or method,
    )
    done = wait_for_job(
        job,
        platform=plat,
        backend=backend,
        poll_seconds=poll,
        max_wait_seconds=max_wait,
        stop_on_deadline=stop_on_deadline,
        settings=load_settings(),
        record=rec,
        on_log_line=None if quiet else (lambda line: typer.echo(line.message)),
    )
    typer.echo(f"{done.name}: {done.status.value}")
    if done.output_model_package_arn:
        typer.echo(f"registered as {done.output_model_package_arn}")
    if record:
        done.save(record)
