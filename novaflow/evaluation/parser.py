"""Parse any Nova evaluation output into an :class:`EvalResult` (docs/evaluation-outputs.md).

Files are found by glob, never by fixed path, because the layouts differ by platform and the docs contradict
themselves: ``**/results_*.json``, ``**/inference_output.jsonl``, ``**/details_*.parquet`` (or ``details/**.parquet``)
and ``**/events.out.tfevents*``, under ``eval_results`` or ``eval-result``, inside a tar.gz or an S3 prefix.
``inference_output.jsonl`` and the details parquet hold Python-literal strings, decoded with ``ast.literal_eval``
(never ``eval``). After parsing, the gen_qa metrics are recomputed from the per-sample records and any disagreement
with the archive's own numbers is reported.

Example:
    >>> result = parse_eval_output("s3://bucket/out/job/output/output.tar.gz")  # doctest: +SKIP
    >>> result.metrics.get("em").value  # doctest: +SKIP
"""

from __future__ import annotations

import ast
import io
import json
import re
from collections.abc import Iterable, Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pandas as pd

from novaflow.errors import EvaluationError
from novaflow.evaluation.consistency import check_against_samples, recomputed_table
from novaflow.evaluation.metrics import GEN_QA_TASK, SAMPLE_METRICS, aggregate
from novaflow.evaluation.results import EvalResult, MetricRow, MetricTable, SampleRecord
from novaflow.evaluation.sources import FileTree, open_tree
from novaflow.settings import NovaflowSettings

INPUT_FILES = frozenset({"gen_qa.jsonl", "llm_judge.jsonl"})
"""Input files an output folder may also hold; never read as per-sample records."""
_NUMBER_ITEM = re.compile(r"'([A-Za-z0-9_]+)':\s*(-?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|inf|nan))")


def _base(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def find_files(names: list[str]) -> dict[str, list[str]]:
    """Classify member names into results / inference_output / details / tensorboard files."""
    found: dict[str, list[str]] = {
        "results": [],
        "inference_output": [],
        "details": [],
        "tensorboard": [],
        "records": [],
    }
    for name in names:
        base = _base(name)
        if fnmatch(base, "results_*.json"):
            found["results"].append(name)
        elif base == "inference_output.jsonl":
            found["inference_output"].append(name)
        elif base.endswith(".jsonl") and base not in INPUT_FILES:
            found["records"].append(name)
        elif base.endswith(".parquet") and (base.startswith("details_") or "/details/" in f"/{name}"):
            found["details"].append(name)
        elif base.startswith(("events.out.tfevents", "event.out.tfevents")):
            found["tensorboard"].append(name)
    return found


def literal(text: Any, *, where: str) -> Any:
    """Decode a Python-literal string (Nova writes reprs, not JSON) safely; non-strings pass through."""
    if not isinstance(text, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise EvaluationError(f"{where}: not a Python literal ({type(exc).__name__}): {text[:80]!r}") from exc


def parse_results_json(data: bytes, *, where: str) -> tuple[str, MetricTable, list[str]]:
    """(task key, metric table, warnings) from a ``results_*.json``: ``all`` if non-empty, else the first task."""
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"{where}: not valid JSON ({exc})") from exc
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, dict) or not results:
        raise EvaluationError(f"{where}: no 'results' object; is this a Nova evaluation results file?")
    task, entry = "all", results.get("all")
    if not entry:
        candidates = [(k, v) for k, v in results.items() if k != "all" and isinstance(v, dict) and v]
        if not candidates:
            raise EvaluationError(f"{where}: 'results' has no non-empty task entry")
        task, entry = candidates[0]
    else:
        task = next((k for k, v in results.items() if k != "all" and v == entry), "all")
    warnings: list[str] = []
    rows: list[MetricRow] = []
    for key, value in entry.items():
        if key.endswith("_stderr"):
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            warnings.append(f"{where}: metric {key!r} is not a number ({type(value).__name__}); skipped")
            continue
        stderr = entry.get(f"{key}_stderr")
        rows.append(MetricRow(key, float(value), float(stderr) if isinstance(stderr, (int, float)) else None))
    return task, MetricTable(rows), warnings


def json_lines(data: bytes | Iterable[bytes], *, where: str) -> Iterator[tuple[int, Any]]:
    """(line number, value) of every non-blank JSONL line; a broken line names the file and the line.

    ``data`` is the file's bytes or, to keep memory bounded by one record, its lines as they are read.
    """
    lines = data.splitlines() if isinstance(data, bytes) else data
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except UnicodeDecodeError as exc:
            raise EvaluationError(f"{where} line {line_no}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
        except json.JSONDecodeError as exc:
            raise EvaluationError(
                f"{where} line {line_no}: not valid JSON ({exc.msg}); the file may be truncated"
            ) from exc


def parse_inference_output(data: bytes | Iterable[bytes], *, where: str, prompts: bool = True) -> list[SampleRecord]:
    """Samples from ``inference_output.jsonl`` (``inference`` is a repr of a list of strings; take the first).

    Without ``prompts`` the samples keep no prompt text (the metrics, comparisons and reports never read it).
    """
    samples: list[SampleRecord] = []
    for line_no, row in json_lines(data, where=where):
        at = f"{where} line {line_no}"
        if not isinstance(row, dict) or "inference" not in row or "gold" not in row:
            raise EvaluationError(f"{at}: expected an object with 'inference' and 'gold' fields")
        prediction = _first_prediction(row["inference"], where=f"{at} field 'inference'")
        prompt = row.get("prompt", "")
        if prompts and isinstance(prompt, str) and prompt.startswith("["):
            literal(prompt, where=f"{at} field 'prompt'")  # a malformed prompt fails here, naming the line
        samples.append(
            SampleRecord(
                index=len(samples),
                prompt=str(prompt) if prompts else "",
                prediction=prediction,
                gold=str(row["gold"]),
                metadata=row.get("metadata"),
            )
        )
    return samples


def _first_prediction(value: Any, *, where: str) -> str:
    if isinstance(value, str) and value.lstrip().startswith("["):
        value = literal(value, where=where)
    if isinstance(value, (list, tuple)):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def _metrics_dict(value: Any, *, where: str) -> dict[str, float]:
    """Per-sample metrics from the details ``metrics`` column; non-numeric entries (BLEU's corpus input) skipped."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, str):
        try:
            decoded = ast.literal_eval(value)
            items = decoded.items() if isinstance(decoded, dict) else []
        except (ValueError, SyntaxError):
            # BLEU's entry is an object repr, which makes the whole dict unreadable as a literal.
            return {k: float(v) for k, v in _NUMBER_ITEM.findall(value)}
    else:
        raise EvaluationError(f"{where}: expected a metrics dict, got {type(value).__name__}")
    return {k: float(v) for k, v in items if isinstance(v, (int, float)) and not isinstance(v, bool)}


def parse_details_parquet(data: bytes, *, where: str) -> list[SampleRecord]:
    """Samples from a ``details_*.parquet``: stringified predictions, gold, metrics, specifics, log-probs."""
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise EvaluationError(f"{where}: not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    samples: list[SampleRecord] = []
    for i, row in enumerate(frame.to_dict("records")):
        at = f"{where} row {i}"
        prediction = _first_prediction(row.get("predictions"), where=f"{at} column 'predictions'")
        gold = _first_prediction(row.get("gold"), where=f"{at} column 'gold'")
        specifics = literal(row.get("specifics"), where=f"{at} column 'specifics'") if row.get("specifics") else None
        metadata = specifics.get("metadata") if isinstance(specifics, dict) else None
        logprobs = row.get("pred_logprobs")
        if logprobs is not None:
            logprobs = literal(logprobs, where=f"{at} column 'pred_logprobs'")
        metrics = _metrics_dict(row["metrics"], where=f"{at} column 'metrics'") if "metrics" in row else {}
        prompt = row.get("full_prompt") or row.get("example") or ""
        samples.append(
            SampleRecord(
                index=i,
                prompt=str(prompt),
                prediction=prediction,
                gold=gold,
                metadata=metadata,
                metrics=metrics,
                logprobs=logprobs,
            )
        )
    return samples


def parse_reward_records(data: bytes | Iterable[bytes], *, where: str) -> list[dict[str, float]]:
    """Per-sample rewards of an ``rft_eval`` output: one reward-Lambda answer per line, passed through unchanged.

    Returns ``aggregate_reward_score`` and every ``metrics_list`` entry by name; an empty list when the file is
    not such a record file (other JSONL files may sit in an output folder).
    """
    records: list[dict[str, float]] = []
    for line_no, row in json_lines(data, where=where):
        if not isinstance(row, dict) or "aggregate_reward_score" not in row:
            return []
        values = {"aggregate_reward_score": _number(row["aggregate_reward_score"], f"{where} line {line_no}")}
        for metric in row.get("metrics_list") or []:
            if isinstance(metric, dict) and isinstance(metric.get("name"), str):
                values[metric["name"]] = _number(metric.get("value"), f"{where} line {line_no} {metric['name']}")
        records.append(values)
    return records


def _number(value: Any, where: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise EvaluationError(f"{where}: {value!r} is not a number")
    return float(value)


def _merge(primary: list[SampleRecord], details: list[SampleRecord], where: str, warnings: list[str]) -> None:
    if len(details) != len(primary):
        warnings.append(f"{where}: {len(details)} detail rows but {len(primary)} inference rows; details ignored")
        return
    for sample, detail in zip(primary, details, strict=True):
        sample.metrics.update(detail.metrics)
        sample.logprobs = detail.logprobs
        if sample.metadata is None:
            sample.metadata = detail.metadata


def parse_eval_output(
    location: str | Path, *, settings: NovaflowSettings, verify: bool = True, prompts: bool = True
) -> EvalResult:
    """Parse an evaluation output (tar.gz path, local folder, ``s3://`` archive or prefix) into an EvalResult.

    With ``verify``, gen_qa metrics are recomputed from the samples and disagreements are listed on the result.
    Files are streamed: memory is bounded by the samples kept (``prompts=False`` keeps no prompt texts) and one
    record, not by the size of the output; limits on member sizes are in :mod:`novaflow.evaluation.sources`.
    """
    with open_tree(location, settings) as tree:
        return parse_tree(tree, verify=verify, prompts=prompts)


def parse_tree(tree: FileTree, *, verify: bool = True, prompts: bool = True) -> EvalResult:
    found = find_files(tree.names)
    records: list[dict[str, float]] = []
    for name in found["records"]:
        records += parse_reward_records(tree.lines(name), where=tree.label(name))
    if not found["results"] and not found["inference_output"] and not records:
        raise EvaluationError(
            f"{tree.location}: no results_*.json or inference_output.jsonl among "
            f"{len(tree.names)} files (looked under eval_results/ and eval-result/ at any depth)"
        )
    warnings: list[str] = []
    task, table = GEN_QA_TASK, MetricTable()
    if found["results"]:
        results_name = max(found["results"], key=_base)  # the timestamp in the name sorts
        if len(found["results"]) > 1:
            warnings.append(f"{tree.location}: {len(found['results'])} results files; using the newest {results_name}")
        task, table, w = parse_results_json(tree.read(results_name), where=tree.label(results_name))
        warnings += w
    samples: list[SampleRecord] = []
    if found["inference_output"]:
        name = found["inference_output"][0]
        samples = parse_inference_output(tree.lines(name), where=tree.label(name), prompts=prompts)
    if found["details"]:
        name = sorted(found["details"], key=_base)[-1]
        details = parse_details_parquet(tree.read(name), where=tree.label(name))
        if samples:
            _merge(samples, details, tree.label(name), warnings)
        else:
            samples = details
    if records:
        if len(samples) == len(records):
            for sample, values in zip(samples, records, strict=True):
                sample.metrics.update(values)
        else:
            if samples:
                warnings.append(f"{tree.location}: {len(records)} reward records but {len(samples)} detail rows")
            samples = [
                SampleRecord(index=i, prompt="", prediction="", gold="", metrics=v) for i, v in enumerate(records)
            ]
        if not found["results"]:
            table = _mean_table(records)
            warnings.append(f"{tree.location}: no results_*.json; reward metrics averaged from {len(records)} records")
    result = EvalResult(
        source=tree.location,
        task=task,
        metrics=table,
        samples=samples,
        files={k: [tree.label(n) for n in v] for k, v in found.items() if v},
        warnings=warnings,
    )
    if not found["results"] and not records:
        # Batch-inference output: predictions only. The metrics are ours, and the table says so in a warning.
        result.metrics = recomputed_table(result)
        result.warnings.append(f"{tree.location}: no results_*.json; metrics recomputed from {len(samples)} samples")
        return result
    if verify and samples and any(name in table for name in SAMPLE_METRICS):
        result.disagreements = check_against_samples(result)
    return result


def _mean_table(records: list[dict[str, float]]) -> MetricTable:
    names = dict.fromkeys(name for r in records for name in r)
    return MetricTable([MetricRow(name, *aggregate([r.get(name, 0.0) for r in records])) for name in names])
