"""Verify the reward before spending on RFT: the same samples graded in-process and through the Lambda API.

Two kinds of input, because each proves something the other cannot:

* **RFT rows** (the prepared ``rft.jsonl``): each row is graded twice with a synthetic rollout - the reference
  label itself ("oracle", must be 100 % correct) and a different label ("wrong-label", must be 0 % correct). That
  proves the grader finds the reference in real rows and that the reward separates right from wrong.
* **A past evaluation's predictions** (prediction / gold pairs): the reward distribution the base model would
  see at the start of RFT - if it is all -1 or all +1 there is nothing to learn from.

Local and Lambda results must agree sample by sample (same code, same environment variables); a mismatch means
the deployed zip or configuration is not what this checkout would grade.

Example:
    >>> v = verify_reward(rows="data/rft.jsonl", function_name="SageMaker-novaflow-reward")  # doctest: +SKIP
    >>> v.ok, v.table()[0]["mean"]                                                          # doctest: +SKIP
"""

from __future__ import annotations

import ast
import base64
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from novaflow import storage
from novaflow.aws import get_client, wrap_client_error
from novaflow.errors import DataError, RewardError
from novaflow.evaluation.parser import parse_eval_output
from novaflow.reward.defaults import DEFAULT_LIMIT
from novaflow.reward.schema import metrics_of, output_problems
from novaflow.settings import NovaflowSettings
from reward_lambda.config import RewardConfig
from reward_lambda.grader import InvalidSample, reference_label
from reward_lambda.handler import grade_batch

DEFAULT_BATCH_SIZE = 50
DEFAULT_MAX_INVALID_SHARE = 0.05
MAX_LABELS = 20


@dataclass(frozen=True)
class RewardDistribution:
    """How one set of samples was rewarded by one runner (``local`` or ``lambda``)."""

    source: str
    runner: str
    n: int
    mean: float
    share_max: float
    share_min: float
    accuracy: float
    label_present: float
    invalid: int
    invalid_reasons: dict[str, int] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "runner": self.runner,
            "n": self.n,
            "mean": round(self.mean, 4),
            "share_max": round(self.share_max, 4),
            "share_min": round(self.share_min, 4),
            "accuracy": round(self.accuracy, 4),
            "label_present": round(self.label_present, 4),
            "invalid": self.invalid,
        }


@dataclass
class RewardVerification:
    """All distributions plus what went wrong; ``ok`` is the go / no-go for RFT."""

    distributions: list[RewardDistribution]
    mismatches: list[str]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.problems

    def table(self) -> list[dict[str, Any]]:
        """One row per (source, runner): the shape of a Prefect table artifact and of the CLI output."""
        return [d.row() for d in self.distributions]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "distributions": [d.row() | {"invalid_reasons": d.invalid_reasons} for d in self.distributions],
            "mismatches": self.mismatches,
            "problems": self.problems,
        }


def verify_reward(
    *,
    rows: str | Path | None = None,
    predictions: str | Path | Sequence[tuple[str, str]] | None = None,
    function_name: str | None = None,
    config: RewardConfig | None = None,
    settings: NovaflowSettings,
    limit: int = DEFAULT_LIMIT,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_invalid_share: float = DEFAULT_MAX_INVALID_SHARE,
) -> RewardVerification:
    """Grade sample RFT rows and/or evaluation predictions locally and, with ``function_name``, via Lambda.

    With a function, the local grader uses that function's ``REWARD_*`` environment, so both runners grade with
    the same configuration; without one, ``config`` (default: the defaults).
    """
    if rows is None and predictions is None:
        raise RewardError("nothing to verify: give RFT rows (--rows) and/or evaluation predictions (--predictions)")
    if function_name is not None:
        config = RewardConfig.from_env(deployed_environment(function_name, settings))
    config = config or RewardConfig()
    sets: list[tuple[str, list[dict[str, Any]], float | None]] = []
    if rows is not None:
        loaded = load_jsonl(rows, limit=limit, settings=settings)
        oracle, wrong = rollouts_from_rows(loaded, config)
        sets.append(("rft-rows:oracle", oracle, 1.0))
        if len(config.labels) > 1:  # with one label there is no wrong label to offer
            sets.append(("rft-rows:wrong-label", wrong, 0.0))
    if predictions is not None:
        pairs = (
            predictions
            if not isinstance(predictions, (str, Path))
            else load_prediction_pairs(predictions, limit=limit, settings=settings)
        )
        sets.append(("predictions", events_from_pairs(list(pairs)[:limit]), None))

    distributions: list[RewardDistribution] = []
    mismatches: list[str] = []
    problems: list[str] = []
    for source, events, expected_accuracy in sets:
        grades = grade_batch(events, config)
        local_out = [g.to_output() for g in grades]
        reasons = Counter(g.invalid_reason for g in grades if g.invalid_reason is not None)
        local = summarize(source, "local", local_out, config, dict(reasons.most_common()))
        distributions.append(local)
        problems += _expectation_problems(local, expected_accuracy, max_invalid_share)
        if function_name is not None:
            remote_out = invoke_batches(function_name, events, batch_size=batch_size, settings=settings)
            distributions.append(summarize(source, "lambda", remote_out, config))
            mismatches += compare_outputs(source, local_out, remote_out)
    return RewardVerification(distributions, mismatches, problems)


def labels_of_rows(
    location: str | Path, *, settings: NovaflowSettings, max_labels: int = MAX_LABELS
) -> tuple[str, ...]:
    """The label set of RFT rows whose reference answers are labels (few distinct strings), in first-seen order.

    A team's data with free-form answers has no label set: then novaflow's label grader cannot grade it, and the
    error says what to pass instead.
    """
    rows = load_jsonl(location, limit=1_000_000, settings=settings)
    labels = list(dict.fromkeys(r.get("reference_answer") for r in rows))
    if len(labels) > max_labels or not all(isinstance(x, str) and x.strip() for x in labels):
        raise RewardError(
            f"{location}: the RFT rows have {len(labels)} distinct reference answers, not a label set of at most "
            f"{max_labels}: novaflow's label grader cannot grade them; bring your own reward (--reward FILE.py or "
            "--reward-arn ARN) or skip RFT (--skip rft)"
        )
    return tuple(str(x) for x in labels)


def summarize(
    source: str,
    runner: str,
    outputs: Sequence[dict[str, Any]],
    config: RewardConfig,
    invalid_reasons: dict[str, int] | None = None,
) -> RewardDistribution:
    """Mean reward, share at the maximum / minimum reward, accuracy, invalid count."""
    n = len(outputs)
    scores = [float(o["aggregate_reward_score"]) for o in outputs]
    metrics = [metrics_of(o) for o in outputs]

    def share(values: Iterable[bool]) -> float:
        return sum(values) / n if n else 0.0

    return RewardDistribution(
        source=source,
        runner=runner,
        n=n,
        mean=sum(scores) / n if n else 0.0,
        share_max=share(s == config.maximum for s in scores),
        share_min=share(s == config.minimum for s in scores),
        accuracy=share(m.get("correct") == 1 for m in metrics),
        label_present=share(m.get("label_present") == 1 for m in metrics),
        invalid=sum(1 for m in metrics if m.get("invalid_sample") == 1),
        invalid_reasons=invalid_reasons or {},
    )


def rollouts_from_rows(
    rows: Sequence[dict[str, Any]], config: RewardConfig
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each RFT row with its reference label as the rollout, and with a different label as the rollout."""
    oracle: list[dict[str, Any]] = []
    wrong: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        messages = [m for m in row.get("messages") or [] if isinstance(m, dict)]
        if messages and messages[-1].get("role") == "assistant":
            messages = messages[:-1]
        try:
            gold = reference_label({**row, "messages": messages}, config)
        except InvalidSample:
            gold = ""  # graded as invalid, with the grader's own reason
        other = config.labels[(config.labels.index(gold) + 1) % len(config.labels)] if gold else ""
        base = {k: v for k, v in row.items() if k != "messages"}
        rid = row.get("id", f"row-{i + 1}")
        oracle.append({**base, "id": f"{rid}:oracle", "messages": [*messages, {"role": "assistant", "content": gold}]})
        wrong.append(
            {**base, "id": f"{rid}:wrong-label", "messages": [*messages, {"role": "assistant", "content": other}]}
        )
    return oracle, wrong


def events_from_pairs(pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """(prediction, gold) pairs as shape-B samples (reference under metadata, as RFT sends them)."""
    return [
        {
            "id": f"pred-{i + 1}",
            "messages": [{"role": "assistant", "content": pred}],
            "metadata": {"reference_answer": gold},
        }
        for i, (pred, gold) in enumerate(pairs)
    ]


def compare_outputs(source: str, local: Sequence[dict[str, Any]], remote: Sequence[dict[str, Any]]) -> list[str]:
    """Sample-by-sample differences between the in-process grader and the deployed function."""
    problems = [f"{source}: {p}" for p in output_problems(list(remote), [o["id"] for o in local])]
    for a, b in zip(local, remote, strict=False):
        if a != b:
            problems.append(
                f"{source}: sample {a['id']!r} local {a['aggregate_reward_score']} "
                f"{metrics_of(a)} != lambda {b.get('aggregate_reward_score')} {metrics_of(b)}"
            )
    return problems


def invoke_batches(
    function_name: str,
    events: Sequence[dict[str, Any]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    settings: NovaflowSettings,
) -> list[dict[str, Any]]:
    """Invoke the function synchronously batch by batch; a function error raises with its message and log."""
    lam = get_client("lambda", settings)
    outputs: list[dict[str, Any]] = []
    for start in range(0, len(events), batch_size):
        batch = list(events[start : start + batch_size])
        result = invoke_once(lam, function_name, batch, f"samples {start + 1}-{start + len(batch)}")
        problems = output_problems(result, [e.get("id") for e in batch])
        if problems:
            raise RewardError(f"reward function {function_name} broke the output contract: {'; '.join(problems[:5])}")
        outputs.extend(result)
    return outputs


def invoke_once(lam: Any, function_name: str, batch: Sequence[Any], where: str) -> Any:
    """One synchronous invocation; the function's own error (with its log tail) raises :class:`RewardError`."""
    try:
        response = lam.invoke(
            FunctionName=function_name,
            InvocationType="RequestResponse",
            LogType="Tail",
            Payload=json.dumps(list(batch)).encode("utf-8"),
        )
    except ClientError as exc:
        raise wrap_client_error(exc, f"invoke reward function {function_name}") from exc
    raw = response["Payload"].read()
    if response.get("FunctionError"):
        log = base64.b64decode(response.get("LogResult", "")).decode("utf-8", "replace")
        raise RewardError(
            f"reward function {function_name} failed on {where} ({response['FunctionError']}): "
            f"{raw.decode('utf-8', 'replace')[:500]}\nlog tail:\n{log}"
        )
    try:
        return json.loads(raw)
    except ValueError:
        raise RewardError(f"reward function {function_name} returned non-JSON: {raw[:200]!r}") from None


def deployed_environment(function_name: str, settings: NovaflowSettings) -> dict[str, str]:
    """The deployed function's environment variables (the grader's configuration)."""
    try:
        conf = get_client("lambda", settings).get_function_configuration(FunctionName=function_name)
    except ClientError as exc:
        raise wrap_client_error(exc, f"read configuration of reward function {function_name}") from exc
    return dict((conf.get("Environment") or {}).get("Variables") or {})


def load_jsonl(location: str | Path, *, limit: int = DEFAULT_LIMIT, settings: NovaflowSettings) -> list[dict[str, Any]]:
    """The first ``limit`` JSON objects of a JSONL file (blank lines skipped); bad lines name file and line."""
    rows: list[dict[str, Any]] = []
    for number, line in storage.numbered_lines(location, settings=settings):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{location}: line {number}: not valid JSON ({exc})") from None
        if not isinstance(row, dict):
            raise DataError(f"{location}: line {number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
        if len(rows) >= limit:
            break
    if not rows:
        raise DataError(f"{location}: no rows")
    return rows


def load_prediction_pairs(
    location: str | Path, *, limit: int = DEFAULT_LIMIT, settings: NovaflowSettings
) -> list[tuple[str, str]]:
    """(prediction, gold) pairs from a JSONL file or a Nova evaluation output.

    JSONL lines may be ``{"prediction", "gold"}`` or Nova's ``inference_output.jsonl`` (``inference`` is a
    Python-repr list of strings: docs/evaluation-outputs.md#where-the-files-are). Anything else (an
    ``output.tar.gz``, a directory, an S3 prefix) is read with the evaluation parser.
    """
    if str(location).endswith(".jsonl"):
        pairs: list[tuple[str, str]] = []
        for number, row in enumerate(load_jsonl(location, limit=limit, settings=settings), start=1):
            pred = row.get("prediction", row.get("inference"))
            gold = row.get("gold")
            if not isinstance(pred, str) or not isinstance(gold, str):
                raise DataError(
                    f"{location}: row {number}: needs string fields 'prediction' (or 'inference') and 'gold'"
                )
            pairs.append((_unwrap_inference(pred) if "prediction" not in row else pred, gold))
        return pairs
    result = parse_eval_output(location, settings=settings)
    pairs = []
    for record in list(result.samples)[:limit]:
        pred = _field(record, "prediction")
        gold = _field(record, "gold")
        pairs.append((str(pred if pred is not None else ""), str(gold if gold is not None else "")))
    if not pairs:
        raise DataError(f"{location}: the evaluation output has no per-sample predictions")
    return pairs


def _unwrap_inference(text: str) -> str:
    """``"['answer']"`` -> ``"answer"`` (Nova writes a Python repr of the list of generations)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value[0]
    return text


def _field(record: Any, name: str) -> Any:
    return record.get(name) if isinstance(record, dict) else getattr(record, name, None)


def _expectation_problems(
    dist: RewardDistribution, expected_accuracy: float | None, max_invalid_share: float
) -> list[str]:
    problems: list[str] = []
    if dist.n and dist.invalid / dist.n > max_invalid_share:
        top = ", ".join(f"{reason} (x{count})" for reason, count in list(dist.invalid_reasons.items())[:3])
        problems.append(
            f"{dist.source}: {dist.invalid} of {dist.n} samples invalid (over {max_invalid_share:.0%}): {top}"
        )
    if expected_accuracy is not None and dist.n and dist.accuracy != expected_accuracy:
        problems.append(
            f"{dist.source}: accuracy {dist.accuracy:.4f}, expected {expected_accuracy:.0%} - the "
            "grader does not separate the reference label from other labels on these rows"
        )
    return problems
