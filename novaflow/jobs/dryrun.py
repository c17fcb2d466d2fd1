"""Dry run: every check a submission would fail on, plus a cost estimate, without changing anything on AWS.

The Forge SDK's dry run still writes files and calls AWS to mutate nothing but read a lot; ours reads only
(Describe/Get/List/Head/Simulate calls) and reports every problem at once with its fix, because each round trip
to a paid job to discover the next typo costs real money and an hour.

Example:
    >>> report = dry_run(spec)                       # doctest: +SKIP
    >>> print(report.describe())
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from novaflow.aws import error_code, get_client, is_not_found, split_s3_uri
from novaflow.catalog import DataFormat, Method, Platform
from novaflow.data.bounds import row_count_problem
from novaflow.data.formats import estimate_tokens
from novaflow.data.media import check_media
from novaflow.errors import NovaflowError
from novaflow.jobs.agent_rft import is_agent_rft, resolve_agent_refs
from novaflow.jobs.backends import get_backend
from novaflow.jobs.hyperpod.checks import check_hyperpod, smhp_checkpoint_problem
from novaflow.jobs.reasoning import follow_data_reasoning, follows_data, reasoning_problem
from novaflow.jobs.request import bedrock_refusals, validate_request
from novaflow.jobs.serverless import resolve_refs
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import Submission, prepare_submission
from novaflow.quotas.capacity import demand_of
from novaflow.quotas.service_quotas import resolve_capacities
from novaflow.recipes.overrides import get_path, resolved_value
from novaflow.recipes.serverless import TokenCostEstimate, availability_problem, billable_tokens, load_serverless_prices
from novaflow.recipes.service import CPT_IMAGE_PROBLEM, eval_task, instance_counts, needs_own_image, regions
from novaflow.recipes.support import check_supported
from novaflow.recipes.tables import CostEstimate, PriceTable, load_instance_table, load_price_table
from novaflow.reward.deploy import LAMBDA_ARN_RE
from novaflow.settings import NovaflowSettings

IMAGE_RE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/[\w./-]+:[\w.-]+$")
MAX_COUNT_BYTES = 512 * 1024 * 1024
MAX_MEDIA_PROBLEMS = 5
MEDIA_FIX = "replace or re-encode the object within the Nova limits, or drop the row"


@dataclass(frozen=True)
class Problem:
    field: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} -> fix: {self.fix}"


@dataclass
class DryRunReport:
    job_name: str | None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cost: CostEstimate | None = None
    token_cost: TokenCostEstimate | None = None
    request: dict[str, Any] | None = None
    recipe_yaml: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, field_name: str, message: str, fix: str) -> None:
        self.problems.append(Problem(field_name, message, fix))

    def describe(self) -> str:
        lines = [
            f"Dry run for job {self.job_name or '?'}: "
            + ("no problems found." if self.ok else f"{len(self.problems)} problem(s):")
        ]
        lines += [f"  {i}. {p}" for i, p in enumerate(self.problems, 1)]
        lines += [f"  note: {n}" for n in self.notes]
        if self.cost is not None:
            lines.append("  " + self.cost.describe())
        if self.token_cost is not None:
            lines.append("  " + self.token_cost.describe())
        return "\n".join(lines)


def dry_run(
    spec: JobSpec,
    settings: NovaflowSettings,
    *,
    prices: PriceTable | None = None,
    expected_hours: float | None = None,
    simulate_iam: bool = True,
    instances_file: str | None = None,
    serverless_prices_file: str | None = None,
) -> DryRunReport:
    """Validate ``spec`` against the recipe, tables and (read-only) AWS; never raises for a bad spec."""
    resolved = follow_data_reasoning(spec.resolve(settings), settings)
    report = DryRunReport(job_name=None)
    # A HyperPod job runs as its instance group's execution role, not as role_arn.
    needed = ("bucket",) if resolved.platform is Platform.SMHP else ("bucket", "role_arn")
    for name in needed:
        if getattr(settings, name) in (None, "") and not (name == "role_arn" and resolved.role_arn):
            report.add(name, "not set", f"export NOVAFLOW_{name.upper()}=...")
    try:
        region = resolved.region if resolved.platform is not Platform.SMTJ else None  # SMTJ: listed below
        check_supported(resolved.nova, resolved.method, resolved.platform, region)
    except NovaflowError as exc:
        report.add("model/method/platform", str(exc), "choose a supported combination (novaflow recipes show)")
        return report
    if resolved.platform is Platform.SERVERLESS:
        problem = availability_problem(resolved.nova, resolved.method, str(resolved.region))
        if problem:
            report.add("region", problem, "run it in a region the message lists, or on another platform")
            return report
    table = load_instance_table(instances_file)
    try:
        sub = prepare_submission(resolved, settings, instance_table=table, strict=False)
    except NovaflowError as exc:
        report.add("recipe", str(exc), "fix the recipe file or instance table named in the message")
        return report
    report.job_name = sub.job_name
    report.recipe_yaml = sub.recipe.to_yaml() if not sub.recipe.problems else None
    shown = "novaflow recipes show --platform serverless" if sub.serverless_spec else "novaflow recipes show"
    for override_problem in sub.recipe.problems:
        report.add("overrides", override_problem, f"change the override (see `{shown}`)")
    published = sub.recipe.published
    if resolved.platform is Platform.SMTJ and published is not None and not needs_own_image(published):
        where = regions(published, resolved.nova)
        report.notes.append(f"runs in {', '.join(where)} (images published for {published.name})")
        if resolved.region not in where and not resolved.image_uri:
            report.add(
                "region",
                f"AWS publishes no image for {published.name} in {resolved.region}",
                f"set NOVAFLOW_REGION to one of {', '.join(where)}",
            )
    if resolved.platform is Platform.SMTJ:
        assert sub.instance_type is not None
        problem = table.check("SMTJ", resolved.model, resolved.method.value, sub.instance_type, sub.instance_count)
        if problem:
            report.add("instance", problem.split(";")[0], problem.split("; ", 1)[-1])
        if resolved.method is Method.CPT and not resolved.image_uri:
            report.add("image_uri", CPT_IMAGE_PROBLEM.split(": ", 1)[0], CPT_IMAGE_PROBLEM.split(": ", 1)[1])
        if resolved.image_uri and not IMAGE_RE.match(resolved.image_uri):
            report.add(
                "image_uri",
                f"{resolved.image_uri!r} is not an ECR image URI",
                "use <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag> or leave it unset",
            )
    if resolved.platform is Platform.BEDROCK:
        for refusal in bedrock_refusals(resolved):
            field_name, _, reason = refusal.partition(": ")
            report.add(field_name, reason.rsplit("; ", 1)[0], reason.rsplit("; ", 1)[-1])
    if resolved.platform is Platform.SMHP:
        _check_hyperpod_recipe(resolved, sub, report)
        check_hyperpod(resolved, sub, settings, report.add, simulate=simulate_iam)
    smhp_problem = smhp_checkpoint_problem(resolved)
    if smhp_problem:
        report.add(
            "model_name_or_path", smhp_problem, "evaluate it with platform SMHP (--platform hyperpod --cluster NAME)"
        )
    if resolved.platform is Platform.SMTJ:
        _check_quota(sub, settings, report)
    _check_lambda_arn(resolved, sub, report)
    if resolved.platform is Platform.SERVERLESS and not any(p.field == "reward_lambda_arn" for p in report.problems):
        _check_serverless(resolved, sub, settings, report)
    _check_data(resolved, sub, settings, report)
    _check_output(resolved, settings, report)
    if resolved.platform is not Platform.SMHP:
        _check_role(resolved, settings, report, simulate_iam)
    if not any(p.field == "cluster" for p in report.problems):
        _check_existing(resolved, sub, settings, report)
    if not report.problems and settings.bucket:
        try:
            report.request = sub.request()
            backend = get_backend(
                resolved.platform,
                settings,
                method=resolved.method,
                cluster=resolved.cluster,
                namespace=resolved.namespace,
            )
            if backend.create_operation:
                validate_request(backend.client, backend.create_operation, report.request)
        except NovaflowError as exc:
            report.add("request", str(exc), "fix the spec field named in the message")
    if resolved.platform is Platform.SERVERLESS:
        report.token_cost = _estimate_tokens(resolved, sub, settings, serverless_prices_file, report)
    else:
        report.cost = _estimate(resolved, sub, prices or load_price_table(), expected_hours, report)
    return report


def _check_quota(sub: Submission, settings: NovaflowSettings, report: DryRunReport) -> None:
    """A job larger than the account's quota for its instance type can never start (new accounts often have 0 of
    the large GPU types): refused here, before anything is spent (docs/quotas.md#where-the-numbers-come-from)."""
    demand = demand_of("SMTJ", sub.instance_type, sub.instance_count)
    if demand is None:
        return
    book, notes = resolve_capacities(settings)
    unread = [note for note in notes if "could not be read" in note]
    capacity = book.get(demand.key)
    if capacity is None:
        report.notes.extend(f"quota of {demand.key} not checked: {note}" for note in unread)
        return
    report.notes.append(f"quota {capacity.describe()}")
    problem = book.problem(demand, sub.job_name)
    if problem:
        reason, _, fix = problem.partition(": request")
        report.add("instance_count", reason, "request" + fix if fix else "use fewer or other instances")


def _check_serverless(spec: JobSpec, sub: Submission, settings: NovaflowSettings, report: DryRunReport) -> None:
    """Read-only: the base model's hub content, the group, the evaluator; the EULA."""
    try:
        refs = resolve_refs(spec, settings, create=False)
    except NovaflowError as exc:
        report.add("serverless", str(exc), "fix the model, reward Lambda or group named in the message")
        return
    sub.serverless = refs
    report.notes.extend(refs.notes)
    if is_agent_rft(spec):
        try:
            sub.agent = resolve_agent_refs(spec, settings, create=False)
        except NovaflowError as exc:
            report.add("agent_arn", str(exc), "pass the agent as a .py file, a Lambda ARN or an AgentCore runtime ARN")
    if refs.gated and not spec.accept_eula:
        report.add(
            "accept_eula",
            f"{spec.model} is gated: serverless customization requires accepting its end-user license agreement",
            "read the EULA, then pass accept_eula=True (CLI --accept-eula)",
        )


def _estimate_tokens(
    spec: JobSpec, sub: Submission, settings: NovaflowSettings, prices_file: str | None, report: DryRunReport
) -> TokenCostEstimate | None:
    """Billable tokens of a serverless job (its data's tokens times the passes over them) times the price."""
    if not spec.train_uri:
        report.notes.append("no data to count tokens from: no serverless cost estimate")
        return None
    try:
        bucket, key = split_s3_uri(spec.train_uri)
        body = get_client("s3", settings).get_object(Bucket=bucket, Key=key)["Body"].read(MAX_COUNT_BYTES)
    except (ClientError, ValueError):
        return None
    lines = [line for line in body.splitlines() if line.strip()]
    data_tokens = estimate_tokens(sum(len(line) for line in lines))
    tokens, basis = billable_tokens(
        data_tokens, len(lines), sub.recipe.recipe.get("HyperParameters") or {}, spec.method
    )
    return load_serverless_prices(prices_file).estimate(spec.model, spec.method, tokens, basis=basis)


def _check_lambda_arn(spec: JobSpec, sub: Submission, report: DryRunReport) -> None:
    needs = spec.method is Method.RFT_LORA or (spec.method is Method.EVALUATION and spec.eval_task == "rft_eval")
    scored = spec.platform is Platform.SERVERLESS and spec.method is Method.EVALUATION
    if not needs and not scored:
        if spec.reward_lambda_arn:
            report.add(
                "reward_lambda_arn",
                "given but only rft_lora and rft_eval use a reward Lambda",
                "remove reward_lambda_arn",
            )
        return
    arn = spec.reward_lambda_arn
    if not arn:
        return  # reported by the recipe as an unfilled placeholder
    if not LAMBDA_ARN_RE.match(arn):
        report.add(
            "reward_lambda_arn",
            f"{arn!r} is not a Lambda function ARN",
            "use arn:aws:lambda:<region>:<account>:function:<name> (no alias or version suffix)",
        )
        return
    try:
        get_client("lambda", sub.settings).get_function(FunctionName=arn)
    except ClientError as exc:
        if is_not_found(exc):
            report.add(
                "reward_lambda_arn", f"function {arn} does not exist", "deploy it first with `novaflow reward deploy`"
            )
        else:
            report.notes.append(f"could not check Lambda {arn}: {error_code(exc)}")


def _rows_and_batch(spec: JobSpec, sub: Submission) -> tuple[int | None, str]:
    """Minimum rows the recipe needs (SMTJ: global_batch_size) and why."""
    if spec.platform is Platform.SMTJ and spec.method.data_format is DataFormat.SFT and spec.nova.version == 2:
        gbs = resolved_value(sub.recipe.recipe, get_path(sub.recipe.recipe, "training_config.global_batch_size"))
        return int(gbs), f"global_batch_size={gbs}"
    return None, ""


def _check_data(spec: JobSpec, sub: Submission, settings: NovaflowSettings, report: DryRunReport) -> None:
    needs_data = spec.method is not Method.EVALUATION or eval_task(spec.nova, spec.eval_task).needs_data
    if not spec.train_uri:
        if needs_data:
            report.add(
                "train_uri", "no data given", "pass the s3:// URI of the prepared data (novaflow data prepare + upload)"
            )
        return
    if spec.method is Method.EVALUATION and spec.eval_task == "gen_qa" and not spec.train_uri.endswith("gen_qa.jsonl"):
        report.add(
            "train_uri",
            f"{spec.train_uri} is not a file named gen_qa.jsonl",
            "AWS requires the gen_qa dataset to be one file named gen_qa.jsonl",
        )
    judged = spec.eval_task in ("llm_judge", "rubric_llm_judge")
    if spec.method is Method.EVALUATION and judged and not spec.train_uri.endswith("llm_judge.jsonl"):
        report.add(
            "train_uri",
            f"{spec.train_uri} is not a file named llm_judge.jsonl",
            "AWS requires the judge dataset to be one file named llm_judge.jsonl",
        )
    for channel, uri in spec.data_channels().items():
        lines = _read_lines(uri, settings, report, channel)
        if lines is None:
            continue
        if spec.method.data_format is DataFormat.SFT:
            _check_media(uri, lines, settings, report, channel)
        if channel == "train" and follows_data(spec):
            enabled = get_path(sub.recipe.recipe, "training_config.reasoning_enabled")
            if mismatch := reasoning_problem(enabled, lines, uri):
                report.add("overrides", *mismatch)
        rows = len(lines)
        if channel != "train":
            continue
        minimum, why = _rows_and_batch(spec, sub)
        if minimum is not None and rows < minimum:
            report.add(
                channel,
                f"{uri} has {rows} rows, fewer than {why}",
                f"provide at least {minimum} rows or lower global_batch_size",
            )
        if spec.platform is Platform.BEDROCK:
            problem = row_count_problem(rows, spec.platform, spec.nova, spec.method.data_format)
            if problem:
                report.add(channel, f"{uri}: {problem}", "prepare a training set within these bounds")


def _check_media(uri: str, lines: list[bytes], settings: NovaflowSettings, report: DryRunReport, channel: str) -> None:
    """Media objects the rows point at: size, signature, dimensions and duration (see novaflow.data.media)."""
    records = []
    for number, line in enumerate(lines, 1):
        if b'"s3://' in line:
            try:
                records.append((number, orjson.loads(line)))
            except orjson.JSONDecodeError:
                continue
    if not records:
        return
    media = check_media(records, get_client("s3", settings), uri.rsplit("/", 1)[-1])
    for rejection in media.rejected[:MAX_MEDIA_PROBLEMS]:
        report.add(f"{channel} row {rejection.row} {rejection.field}", rejection.reason, MEDIA_FIX)
    if len(media.rejected) > MAX_MEDIA_PROBLEMS:
        report.add(channel, f"{len(media.rejected) - MAX_MEDIA_PROBLEMS} more rows with media problems", MEDIA_FIX)
    report.notes.extend(media.notes[:MAX_MEDIA_PROBLEMS])


def _read_lines(uri: str, settings: NovaflowSettings, report: DryRunReport, channel: str) -> list[bytes] | None:
    """The non-blank lines of a data file, or None when it is a prefix, missing, unreadable or too large."""
    try:
        bucket, key = split_s3_uri(uri)
    except ValueError:
        report.add(channel, f"{uri!r} is not an s3:// URI", "upload the data and pass its s3:// URI")
        return None
    s3 = get_client("s3", settings)
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_not_found(exc) or error_code(exc) in {"403", "404"}:
            listing = s3.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1) if key else {}
            if listing.get("KeyCount"):
                report.notes.append(f"{channel} is a prefix ({uri}); rows not counted")
                return None
            report.add(channel, f"{uri} does not exist", "upload the data first (novaflow data upload)")
            return None
        report.notes.append(f"could not read {uri}: {error_code(exc)}")
        return None
    if head.get("ContentLength", 0) > MAX_COUNT_BYTES:
        report.notes.append(f"{uri} is larger than {MAX_COUNT_BYTES} bytes; rows not counted")
        return None
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return [line for line in body.splitlines() if line.strip()]


def _check_output(spec: JobSpec, settings: NovaflowSettings, report: DryRunReport) -> None:
    if not spec.output_uri:
        report.add("output_uri", "no output path", "pass output_uri or set NOVAFLOW_BUCKET")
        return
    try:
        bucket, _ = split_s3_uri(spec.output_uri)
        get_client("s3", settings).head_bucket(Bucket=bucket)
    except ValueError:
        report.add("output_uri", f"{spec.output_uri!r} is not an s3:// URI", "use s3://<bucket>/<prefix>")
    except ClientError as exc:
        report.add(
            "output_uri",
            f"bucket of {spec.output_uri} is not reachable ({error_code(exc)})",
            "create the bucket or fix the name",
        )


def _check_role(spec: JobSpec, settings: NovaflowSettings, report: DryRunReport, simulate: bool) -> None:
    if not spec.role_arn:
        return
    service = "bedrock.amazonaws.com" if spec.platform is Platform.BEDROCK else "sagemaker.amazonaws.com"
    role_name = spec.role_arn.rsplit("/", 1)[-1]
    iam = get_client("iam", settings)
    try:
        role = iam.get_role(RoleName=role_name)["Role"]
    except ClientError as exc:
        if is_not_found(exc):
            report.add("role_arn", f"role {spec.role_arn} does not exist", "create it or fix NOVAFLOW_ROLE_ARN")
        else:
            report.notes.append(f"could not read role {role_name}: {error_code(exc)}")
        return
    doc = role.get("AssumeRolePolicyDocument")
    if isinstance(doc, str):
        doc = json.loads(unquote(doc))
    if service not in json.dumps(doc or {}):
        report.add(
            "role_arn",
            f"role {role_name} does not trust {service}",
            f"add {service} as a Principal.Service to the role's trust policy",
        )
    if not simulate:
        return
    actions = ["s3:GetObject", "s3:PutObject", "s3:ListBucket"]
    if spec.reward_lambda_arn:
        actions.append("lambda:InvokeFunction")
    if spec.platform is Platform.SERVERLESS:
        # The service registers the trained model into the group as the execution role (AWS's managed policy
        # AmazonSageMakerModelCustomizationCoreAccess grants these).
        actions += ["sagemaker:DescribeModelPackageGroup", "sagemaker:CreateModelPackage"]
    try:
        result = iam.simulate_principal_policy(PolicySourceArn=spec.role_arn, ActionNames=actions)
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        report.notes.append(f"IAM simulation unavailable ({type(exc).__name__}); permissions not checked")
        return
    denied = [r["EvalActionName"] for r in result.get("EvaluationResults", []) if r.get("EvalDecision") != "allowed"]
    if denied:
        report.add(
            "role_arn",
            f"role {role_name} is not allowed {', '.join(denied)}",
            "attach a policy granting these actions on the data, output and Lambda resources"
            + (" and the model package group" if spec.platform is Platform.SERVERLESS else ""),
        )


def _check_hyperpod_recipe(spec: JobSpec, sub: Submission, report: DryRunReport) -> None:
    """The node count must be one the HyperPod recipe publishes (its ``replicas``)."""
    # HyperPod's modules load only for HyperPod jobs
    from novaflow.jobs.hyperpod.request import hyperpod_recipe_of

    try:
        recipe = hyperpod_recipe_of(spec)
    except NovaflowError as exc:
        report.add("instance_type", str(exc), "use an instance type the HyperPod recipe lists (novaflow recipes show)")
        return
    counts = instance_counts(recipe)
    report.notes.append(f"runs as {recipe.name} on HyperPod: {sub.instance_count} x {sub.instance_type}")
    if sub.instance_count not in counts:
        report.add(
            "instance_count",
            f"{sub.instance_count} nodes is not published for {recipe.name} (replicas {', '.join(map(str, counts))})",
            f"set instance_count to one of {', '.join(map(str, counts))}",
        )


def _check_existing(spec: JobSpec, sub: Submission, settings: NovaflowSettings, report: DryRunReport) -> None:
    try:
        state = get_backend(
            spec.platform, settings, method=spec.method, cluster=spec.cluster, namespace=spec.namespace
        ).describe(sub.job_name)
    except ClientError as exc:
        report.notes.append(f"could not check for an existing job: {error_code(exc)}")
        return
    if state is not None:
        report.notes.append(
            f"job {sub.job_name} already exists ({state.raw_status}); submit would attach to it"
            + (" (or needs --retry-failed)" if state.status.value in {"Failed", "Stopped"} else "")
        )


def _estimate(
    spec: JobSpec, sub: Submission, prices: PriceTable, hours: float | None, report: DryRunReport
) -> CostEstimate | None:
    if spec.platform is Platform.SMHP:
        report.notes.append("HyperPod nodes are the cluster's, paid whether a job runs or not; no per-job estimate")
        return None
    if spec.platform is not Platform.SMTJ or sub.instance_type is None:
        report.notes.append("Bedrock customization is billed per token; no instance-hour estimate")
        return None
    if hours is None:
        return prices.estimate(
            sub.instance_type,
            sub.instance_count,
            spec.max_runtime_seconds / 3600,
            basis="upper bound at MaxRuntimeInSeconds",
        )
    return prices.estimate(sub.instance_type, sub.instance_count, hours, basis=f"expected {hours:g} h")
