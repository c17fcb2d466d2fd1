"""`novaflow run`: run the flows from a terminal, against AWS or (``--local``) the embedded AWS.

``--local`` starts the embedded AWS in this process and points every client at it; the flow itself is the
same code that runs against AWS. Without a ``PREFECT_API_URL`` Prefect starts a temporary local server, so the
run, its logs and artifacts are real Prefect objects either way.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from novaflow.cli.failures import validation_line
from novaflow.cli.options import QUOTA_HELP, quota_option
from novaflow.errors import ConfigError
from novaflow.sweeps.runs import VARIANT_RUNS, VARIANT_RUNS_HELP

if TYPE_CHECKING:
    from pydantic import BaseModel

app = typer.Typer(
    help="Run the novaflow flows (end-to-end, baseline, SFT, RFT) locally or against AWS.", no_args_is_help=True
)

LOCAL_POLL_SECONDS = 0.5
LOCAL_SERVER_STARTUP_SECONDS = 120
"""How long an offline run waits for its temporary Prefect server (Prefect's default, 20 s, is too short on a busy
laptop); ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` set by the user wins."""


HYPERPOD_OPTION = typer.Option(
    [],
    "--hyperpod",
    help="With --local: create the HyperPod cluster CLUSTER:TYPE=N in the embedded AWS (as `novaflow local up "
    "--hyperpod`); the first is NOVAFLOW_HYPERPOD_CLUSTER, so stages with platform HYPERPOD run there.",
)


def prefect_updates(local: bool) -> dict[Any, Any]:
    """Prefect settings for a terminal run: no heartbeat thread; a temporary server without telemetry; offline, a
    patient server start.

    They reach the temporary server too: Prefect passes the current settings to the process it starts. Its
    telemetry service writes a session row to the server's SQLite database at start-up, and under load that write
    collides with the run's own writes and prints ``sqlite3.OperationalError: database is locked`` with a
    traceback (then, offline, a "Failed to send telemetry" error): so every run that starts a temporary server
    (no ``PREFECT_API_URL``) turns it off. A server the user runs keeps its own setting.
    """
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    )

    # The sync engine joins the heartbeat thread after every flow run (~1 s); a terminal run needs none.
    updates: dict[Any, Any] = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    if local or not _prefect_server():
        updates[PREFECT_SERVER_ANALYTICS_ENABLED] = False
    if local:
        if PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.name not in os.environ:
            updates[PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS] = LOCAL_SERVER_STARTUP_SECONDS
    return updates


@contextmanager
def _environment(local: bool, quotas: dict[str, int] | None = None, hyperpod: tuple[str, ...] = ()) -> Iterator[None]:
    """The embedded AWS when ``--local`` (with ``quotas`` as its account's training quotas and the ``hyperpod``
    clusters); a quiet, heartbeat-free Prefect engine for a terminal run."""
    from prefect.settings import temporary_settings

    with ExitStack() as stack:
        if local:
            from novaflow.local import LocalAws

            instance_quotas = {k: v for k, v in (quotas or {}).items() if k.startswith("ml.")}
            aws = stack.enter_context(LocalAws(quotas=instance_quotas, hyperpod=hyperpod))
            typer.secho(
                f"embedded AWS on {aws.url} (bucket {aws.env['NOVAFLOW_BUCKET']})",
                err=True,
                fg=typer.colors.CYAN,
            )
        stack.enter_context(temporary_settings(updates=prefect_updates(local)))
        yield


def _prefect_server() -> str | None:
    """The Prefect server this terminal points at (environment or profile), if any."""
    from prefect.settings import PREFECT_API_URL

    return os.environ.get(PREFECT_API_URL.name) or PREFECT_API_URL.value()


def _load_params(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--params {path}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigError(f"--params {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--params {path}: expected a JSON object of flow parameters, got {type(data).__name__}")
    return data


def _validated(model: Any, raw: dict[str, Any], path: Path | None) -> Any:
    """The parameters model, or one line naming the file, the field and the problem."""
    from pydantic import ValidationError

    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        where = f"--params {path}" if path else "the flow parameters"
        raise ConfigError(f"{where}: {validation_line(exc)}; see `novaflow run --help` for the shape") from None


def _sizes(text: str) -> dict[str, int]:
    try:
        sft, ev, rft = (int(x) for x in text.split(","))
    except ValueError:
        raise typer.BadParameter(
            "expected three counts SFT,EVAL,RFT such as 3500,500,700", param_hint="--sizes"
        ) from None
    return {"sft_rows": sft, "eval_rows": ev, "rft_rows": rft}


_LOCAL = typer.Option(False, "--local", help="Run on the embedded AWS and the Nova emulator (no account, no GPU).")
_DATA = typer.Option(
    "sample",
    "--data",
    help=(
        "CSV / JSONL / JSON / Parquet path or s3:// URI; 'sample' uses the committed synthetic Stack Overflow sample."
    ),
)
_SIZES = typer.Option(None, "--sizes", help="SFT,EVAL,RFT row counts (default 3500,500,700).")
_MODEL = typer.Option(
    None,
    "--model",
    help=(
        "Nova model in any spelling the catalog knows (nova-lite-2, amazon.nova-2-lite-v1, ...); "
        "empty = settings.model (NOVAFLOW_MODEL, nova-lite-2 unless set)."
    ),
)
_MAP = typer.Option([], "--map", help="KEY=COLUMN mapping, repeatable (query=Body ...).")
_SYSTEM = typer.Option(
    None,
    "--system",
    help=(
        "One system prompt for every row; the sample's label-only prompt when the source is 'sample' and this is empty."
    ),
)
_SKIP = typer.Option([], "--skip", help="Stages to skip. Repeatable: baseline, sft, dpo, rft, deploy.")
_CLEANUP = typer.Option(
    None,
    "--cleanup/--keep",
    help=(
        "Tear down the deployment (and the roles novaflow created) at the end. Default here: yes "
        "with --local, no on AWS."
    ),
)
_PARAMS = typer.Option(
    None, "--params", help="JSON file of EndToEndParams (UI form shape); the flags above override it."
)
_WORK_DIR = typer.Option("novaflow-runs", "--work-dir", help="Local scratch directory for prepared files and reports.")
_REWARD = typer.Option(
    None,
    "--reward",
    help=(
        "Your reward file (.py, local path or s3:// URI) defining lambda_handler(event, context) or"
        " grade(response, reference_answer, sample); a requirements.txt beside it is packaged too. "
        "Empty: novaflow's label grader."
    ),
)
_REWARD_ARN = typer.Option(
    None, "--reward-arn", help="An existing reward Lambda to use as is (verified, never redeployed)."
)
_STRATIFY = typer.Option(
    None,
    "--stratify",
    help=(
        "Column to stratify the splits by, or 'none'. Empty: automatic - the sample's label column "
        "Y, or the response column when it has at most 20 distinct values (the split artifact says "
        "which)."
    ),
)
_EVAL_TASK = typer.Option(
    None,
    "--eval-task",
    help=(
        "Evaluation added to gen_qa on the held-out rows: gen_qa (nothing more), judge (the judge "
        "of the model's Nova version: llm_judge or rubric_llm_judge), rft_eval (your reward Lambda "
        "grades each answer), or a benchmark: mmlu, mmlu_pro, bbh, gpqa, math, strong_reject, "
        "ifeval, mmmu. Empty: gen_qa; for the baseline, the same task as the evaluations after SFT "
        "and RFT."
    ),
)
_GATE_METRIC = typer.Option(
    None,
    "--gate-metric",
    help=(
        "Metric the candidate must improve: a gen_qa metric (em, qem, f1, rouge1, accuracy, ...) or"
        " one of the evaluation task's, named task:metric (judge:winrate, "
        "rft_eval:aggregate_reward_score, mmlu:accuracy)."
    ),
)
_MLFLOW = typer.Option(
    None,
    "--mlflow",
    help=(
        "MLflow tracking URI (sqlite:///runs.db, https://..., or a SageMaker MLflow ARN, which also"
        " goes into the recipes so the training containers log there); empty = MLFLOW_TRACKING_URI,"
        " if set."
    ),
)
_PLATFORM = typer.Option(
    None,
    "--platform",
    help="Run every job on SMTJ (default) or SERVERLESS (no instances; models registered as versions).",
)
_ACCEPT_EULA = typer.Option(
    False,
    "--accept-eula",
    help="SERVERLESS: accept the base model's end-user license agreement. Applies to every stage.",
)
_STAGES = typer.Option(
    None,
    "--stages",
    help=(
        "Training stages in the order they run, each from the model of the one before: [sft, rft] "
        "(Nova 2, the case study), [sft, dpo] (Nova 1), [dpo], ... Comma separated: sft,rft."
    ),
)
_QUOTA = typer.Option([], "--quota", help=QUOTA_HELP)
_NOTIFY_SNS = typer.Option(
    None,
    "--notify-sns",
    help=(
        "SNS topic that gets a message for each state change of the run's jobs (an EventBridge rule per run,"
        " removed when it ends; the topic must allow events.amazonaws.com to publish). Empty = none."
    ),
)


@dataclass(frozen=True)
class RunOptions:
    """The options ``run end-to-end`` and ``run sweep`` share: the one list of them (:func:`with_run_options` puts
    each field, with its option, into both commands' signatures, so neither repeats it)."""

    local: bool = field(metadata={"option": _LOCAL})
    data: str = field(metadata={"option": _DATA})
    sizes: str | None = field(metadata={"option": _SIZES})
    model: str | None = field(metadata={"option": _MODEL})
    column: list[str] = field(metadata={"option": _MAP})
    system: str | None = field(metadata={"option": _SYSTEM})
    skip: list[str] = field(metadata={"option": _SKIP})
    cleanup: bool | None = field(metadata={"option": _CLEANUP})
    params_file: Path | None = field(metadata={"option": _PARAMS})
    work_dir: str = field(metadata={"option": _WORK_DIR})
    reward: str | None = field(metadata={"option": _REWARD})
    reward_arn: str | None = field(metadata={"option": _REWARD_ARN})
    stratify: str | None = field(metadata={"option": _STRATIFY})
    eval_task: str | None = field(metadata={"option": _EVAL_TASK})
    gate_metric: str | None = field(metadata={"option": _GATE_METRIC})
    mlflow_uri: str | None = field(metadata={"option": _MLFLOW})
    platform: str | None = field(metadata={"option": _PLATFORM})
    accept_eula: bool = field(metadata={"option": _ACCEPT_EULA})
    stages: str | None = field(metadata={"option": _STAGES})
    hyperpod: list[str] = field(metadata={"option": HYPERPOD_OPTION})
    quota: list[str] = field(metadata={"option": _QUOTA})
    notify_sns: str | None = field(metadata={"option": _NOTIFY_SNS})


Command = Callable[..., None]


def with_run_options(command: Command) -> Command:
    """``command(options: RunOptions, **own)`` as typer sees it: its own options first, then every field of
    :class:`RunOptions` as an option of its own; the call gathers them back into one ``RunOptions``."""
    own = typing.get_type_hints(command)
    shared = typing.get_type_hints(RunOptions)
    names = [f.name for f in fields(RunOptions)]
    parameters = [
        p.replace(annotation=own[p.name]) for p in inspect.signature(command).parameters.values() if p.name != "options"
    ]
    parameters += [
        inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, default=f.metadata["option"], annotation=shared[f.name]
        )
        for f in fields(RunOptions)
    ]

    @functools.wraps(command)
    def run(**values: Any) -> None:
        options = RunOptions(**{name: values.pop(name) for name in names})
        command(options=options, **values)

    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    return run


@app.command("end-to-end")
@with_run_options
def end_to_end_cmd(
    options: RunOptions,
    run_name: str = typer.Option(
        "case-study", "--run-name", help="Names the run's S3 prefix, artifacts and deployment."
    ),
) -> None:
    """Replay the case study: data -> [baseline | SFT] -> [eval | reward Lambda -> RFT] -> eval -> compare ->
    gated deploy -> smoke test -> cleanup (stages side by side where they can). Prints each stage's time, the
    comparison table and the report path."""
    params, quotas = _end_to_end_params(options, run_name)
    started = time.perf_counter()
    with _environment(options.local, quotas, tuple(options.hyperpod)):
        from flows.end_to_end import end_to_end

        result = end_to_end(params)
    _print_result(result, time.perf_counter() - started)


def _end_to_end_params(options: RunOptions, run_name: str) -> tuple[Any, dict[str, int]]:
    """The end-to-end parameters the options say (over ``--params``), checked as far as possible before anything
    starts; and the ``--quota`` items."""
    if options.hyperpod and not options.local:
        raise typer.BadParameter("--hyperpod creates a cluster in the embedded AWS: use it with --local")
    quotas = quota_option(options.quota)  # a usage error before the flows (and Prefect) are imported
    from flows.end_to_end import plan_checks
    from flows.params import EndToEndParams

    raw = _load_params(options.params_file)
    raw.setdefault("data", {})
    raw["data"]["source"] = (
        options.data if options.data != "sample" or "source" not in raw["data"] else raw["data"]["source"]
    )
    if options.sizes:
        raw["data"].update(_sizes(options.sizes))
    if options.column:
        from novaflow.data.source import ColumnMap

        raw["data"]["columns"] = ColumnMap.parse(options.column).model_dump(exclude_defaults=True)
    if options.system:
        raw["data"]["system_prompt"] = options.system
    if options.model:
        raw["model"] = options.model
    if options.stratify:
        raw["data"]["stratify"] = options.stratify
    if options.reward and options.reward_arn:
        raise typer.BadParameter("give --reward FILE.py or --reward-arn ARN, not both", param_hint="--reward")
    if options.reward or options.reward_arn:
        raw.setdefault("reward", {}).update({"source": options.reward, "function_arn": options.reward_arn})
    if options.eval_task:
        raw.setdefault("evaluation", {})["task"] = options.eval_task
    if options.gate_metric:
        raw.setdefault("deploy", {}).setdefault("gate", {})["metric"] = options.gate_metric
    raw["run_name"] = run_name
    raw["work_dir"] = options.work_dir
    if options.skip:
        raw["skip"] = options.skip
    if options.mlflow_uri:
        raw.setdefault("tracking", {})["mlflow_uri"] = options.mlflow_uri
    if options.notify_sns:
        raw.setdefault("notifications", {})["sns_topic_arn"] = options.notify_sns
    if options.stages:
        raw["stages"] = [s.strip() for s in options.stages.split(",") if s.strip()]
    if options.platform and options.platform.upper() not in ("SMTJ", "SERVERLESS"):
        raise typer.BadParameter(f"{options.platform!r}: use SMTJ or SERVERLESS", param_hint="--platform")
    if options.platform or options.accept_eula:
        for job in ("baseline", "sft", "dpo", "rft", "evaluation"):
            raw.setdefault(job, {}).update(
                {
                    k: v
                    for k, v in (
                        ("platform", options.platform and options.platform.upper()),
                        ("accept_eula", options.accept_eula),
                    )
                    if v
                }
            )
    raw["cleanup"] = options.local if options.cleanup is None else options.cleanup
    if quotas:
        raw.setdefault("wait", {}).setdefault("quotas", {}).update(quotas)
    if options.local:
        raw.setdefault("wait", {}).update({"poll_seconds": LOCAL_POLL_SECONDS, "max_poll_seconds": 2.0})
    params = _validated(EndToEndParams, raw, options.params_file)
    from novaflow.settings import load_settings

    settings = load_settings()
    try:
        plan_checks(params, settings)  # a wrong task or gate metric is one line now, not a failed flow run later
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if params.reward.source and not params.reward.source.startswith("s3://"):
        from novaflow.reward.source import load_reward_source

        load_reward_source(params.reward.source, settings)  # a broken reward file is one line now, before any job
    if not options.local:
        settings.require("bucket", "role_arn")  # one clear line now, not a failed flow run later
    return params, quotas


def _print_result(result: dict[str, Any], seconds: float) -> None:
    typer.echo("")
    typer.secho(f"novaflow end-to-end run '{result['run_name']}' finished in {seconds:.1f} s", bold=True)
    typer.echo("stage times: " + ", ".join(f"{k} {v:.1f}s" for k, v in result["stages"].items()))
    rows = result.get("comparison") or []
    if rows:
        stages = [k for k in rows[0] if k != "metric" and not k.endswith("_stderr") and not k.startswith("delta_")]
        deltas = [k for k in rows[0] if k.startswith("delta_")]
        header = ["metric", *stages, *(d.removeprefix("delta_").replace("_vs_", " vs ") for d in deltas)]
        lines = [[row["metric"]] + [_cell(row, k) for k in stages] + [f"{row[d]:+.4f}" for d in deltas] for row in rows]
        widths = [max(16, len(h) + 2, *(len(line[i]) + 2 for line in lines)) for i, h in enumerate(header)]
        typer.echo("".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        for cells in lines:
            typer.echo("".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    if result.get("gate"):
        typer.echo(f"gate: {result['gate']}")
    if result.get("deployment"):
        typer.echo(f"deployed: {result['deployment']}")
    for where, location in (result.get("report") or {}).items():
        if where != "url":  # the presigned link is for the run's artifact; a terminal has the path and the S3 address
            typer.echo(f"report ({where}): {location}")
    if result.get("mlflow_run"):
        typer.echo(f"mlflow run: {result['mlflow_run']}")


def _cell(row: dict[str, Any], stage: str) -> str:
    stderr = row.get(f"{stage}_stderr")
    return f"{row[stage]:.4f}" + (f" ±{stderr:.4f}" if isinstance(stderr, float) else "")


@app.command("sweep")
@with_run_options
def sweep_cmd(
    options: RunOptions,
    vary: list[str] = typer.Option(
        [], "--vary", help="PATH=V1,V2,... of the end-to-end parameters (sft.overrides.lr=1e-5,2e-5); several: a grid."
    ),
    variants_file: Path | None = typer.Option(
        None, "--variants", help="YAML or JSON list of named patches: [{name: ..., patch: {PATH: VALUE}}]."
    ),
    variant_runs: str = typer.Option(VARIANT_RUNS[0], "--variant-runs", help=VARIANT_RUNS_HELP),
    run_name: str = typer.Option("sweep", "--run-name", help="Names the sweep: its S3 prefix, artifacts, deployment."),
) -> None:
    """Run variants of the end-to-end run, each as a flow run of its own (equal stages once), print the leaderboard
    and the winner; only the winner is deployed."""
    if variant_runs not in VARIANT_RUNS:
        raise typer.BadParameter(f"{variant_runs!r}: use {' or '.join(VARIANT_RUNS)}", param_hint="--variant-runs")
    if variant_runs == "deployment" and (options.local or not _prefect_server()):
        raise typer.BadParameter(
            "deployment runs the variants on the workers of a work pool: point PREFECT_API_URL at the server they "
            "poll, and run without --local (`novaflow local up` gives the workers an embedded AWS)",
            param_hint="--variant-runs",
        )
    base, quotas = _end_to_end_params(options, run_name)
    from novaflow.sweeps.variants import grid, load_variants, parse_vary

    variants = [*(grid(parse_vary(vary)) if vary else []), *(load_variants(variants_file) if variants_file else [])]
    if not variants:
        raise typer.BadParameter("give --vary PATH=V1,V2,... or --variants FILE", param_hint="--vary")
    started = time.perf_counter()
    with _environment(options.local, quotas, tuple(options.hyperpod)):
        from flows.sweep import SweepVariant, sweep

        result = sweep(base, [SweepVariant(name=v.name, patch=v.patch) for v in variants], variant_runs=variant_runs)
    typer.echo("")
    typer.secho(
        f"novaflow sweep '{result['sweep']}' of {len(variants)} variants finished in "
        f"{time.perf_counter() - started:.1f} s",
        bold=True,
    )
    shared = [node for node, names in result["nodes"].items() if len(names) > 1]
    typer.echo(f"stages run once for every variant: {', '.join(shared) or 'none'}")
    for name, run_id in result.get("variant_runs", {}).items():
        typer.echo(f"variant {name}: flow run {run_id}")
    for line in result["plan"]:
        typer.echo(line)
    for line in result["lines"]:
        typer.echo(line)
    if result.get("deployment"):
        typer.echo(f"deployed: {result['deployment']}")
    for where, location in (result.get("report") or {}).items():
        if where != "url":  # the presigned link is for the run's artifact; a terminal has the path and the S3 address
            typer.echo(f"report ({where}): {location}")
    if result.get("mlflow_run"):
        typer.echo(f"mlflow run: {result['mlflow_run']}")


@app.command("flow")
def flow_cmd(
    name: str = typer.Argument(
        ..., help="baseline-eval, sft, dpo, cpt, rft, deploy, cleanup, verify-reward or batch-inference."
    ),
    params_file: Path = typer.Option(..., "--params", help="JSON file with the flow's parameters."),
    local: bool = typer.Option(False, "--local", help="Run on the embedded AWS and the Nova emulator."),
    hyperpod: list[str] = HYPERPOD_OPTION,
    quota: list[str] = typer.Option([], "--quota", help=QUOTA_HELP),
) -> None:
    """Run one single-stage flow with parameters from a JSON file (the same shape as the Prefect UI form)."""
    quotas = quota_option(quota)  # a usage error before the flows (and Prefect) are imported
    from flows import batch_inference, deploy_stage, single_stage

    flows: dict[str, tuple[Callable[[Any], dict[str, Any]], type[BaseModel]]] = {
        "baseline-eval": (single_stage.baseline_eval, single_stage.BaselineEvalParams),
        "sft": (single_stage.sft, single_stage.SftParams),
        "rft": (single_stage.rft, single_stage.RftParams),
        "dpo": (single_stage.dpo, single_stage.DpoParams),
        "cpt": (single_stage.cpt, single_stage.CptParams),
        "verify-reward": (single_stage.verify_reward, single_stage.VerifyRewardParams),
        "deploy": (deploy_stage.deploy, deploy_stage.DeployFlowParams),
        "cleanup": (deploy_stage.cleanup, deploy_stage.CleanupParams),
        "batch-inference": (batch_inference.batch_inference, batch_inference.BatchInferenceParams),
    }
    if name not in flows:
        raise typer.BadParameter(f"unknown flow {name!r}; choose from {', '.join(flows)}")
    fn, params_model = flows[name]
    raw = _load_params(params_file)
    if quotas and "wait" in params_model.model_fields:
        raw.setdefault("wait", {}).setdefault("quotas", {}).update(quotas)
    params = _validated(params_model, raw, params_file)
    if hyperpod and not local:
        raise typer.BadParameter("--hyperpod creates a cluster in the embedded AWS: use it with --local")
    with _environment(local, quotas, tuple(hyperpod)):
        result = fn(params)
    typer.echo(json.dumps(result, indent=2, default=str))
