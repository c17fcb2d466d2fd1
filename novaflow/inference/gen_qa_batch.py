"""Batch inference as a gen_qa evaluation job (the Forge SDK's way): the rows go in as ``gen_qa.jsonl``, the answers
come back in the archive's ``inference_output.jsonl``, read by :mod:`novaflow.evaluation.parser` (a safe literal
decode of the ``inference`` field, never a regex over a repr).

Each row's id travels in the gen_qa ``metadata`` string, which the evaluation echoes on its output line, so answers
are joined to rows by id, not by position (docs/batch-inference.md#as-a-gen_qa-evaluation-job).

Example:
    >>> write_gen_qa(batch, Path("work/gen_qa.jsonl"))                               # doctest: +SKIP
    >>> answers, warnings = answers_from_samples(*read_inference_output(archive), batch)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from novaflow.catalog import Method, Platform
from novaflow.data.formats import estimate_tokens
from novaflow.errors import EvaluationError
from novaflow.evaluation.parser import find_files, parse_inference_output
from novaflow.evaluation.results import SampleRecord
from novaflow.evaluation.sources import open_tree
from novaflow.inference.results import Answer
from novaflow.inference.rows import BatchRows
from novaflow.jobs.spec import JobSpec
from novaflow.settings import NovaflowSettings

NO_REFERENCE = "(no reference)"
"""The ``response`` of a row without a reference: gen_qa requires a non-empty one; the answer does not depend on it."""
ENVELOPE_KEY = "novaflow_batch_id"


def gen_qa_line(row_id: str, query: str, system: str | None, reference: str | None, metadata: Any) -> dict[str, Any]:
    """One gen_qa record whose ``metadata`` string carries the row id (and the row's own metadata)."""
    envelope: dict[str, Any] = {ENVELOPE_KEY: row_id}
    if metadata is not None:
        envelope["metadata"] = metadata
    record: dict[str, Any] = {"query": query, "response": reference or NO_REFERENCE}
    if system:
        record["system"] = system
    record["metadata"] = json.dumps(envelope, ensure_ascii=False)
    return record


def write_gen_qa(batch: BatchRows, path: Path) -> Path:
    """``gen_qa.jsonl`` of the rows to answer, in input order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for row in batch.rows:
            line = gen_qa_line(row.id, row.query, row.system, row.reference, row.metadata)
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path


def batch_job_spec(
    model: str,
    data_uri: str,
    *,
    model_path: str | None = None,
    output_uri: str | None = None,
    instance_type: str | None = None,
    instance_count: int | None = None,
    overrides: dict[str, Any] | None = None,
    platform: Platform = Platform.SMTJ,
) -> JobSpec:
    """The gen_qa evaluation job that answers the rows at ``data_uri`` (a prefix holding ``gen_qa.jsonl``).

    ``platform`` is where the job runs: SageMaker training jobs today; HyperPod through the same job spec and
    backend interface (:func:`novaflow.jobs.backends.get_backend`) once its backend is in.
    """
    return JobSpec(
        platform=platform,
        model=model,
        method=Method.EVALUATION,
        eval_task="gen_qa",
        train_uri=data_uri,
        output_uri=output_uri,
        model_name_or_path=model_path,
        instance_type=instance_type,
        instance_count=instance_count,
        overrides=overrides or {},
        name_prefix=f"{model}-batch",
    )


def row_id_of(metadata: str | None) -> str | None:
    """The row id a gen_qa output line carries in its echoed ``metadata`` string (None when it is not ours)."""
    if not metadata:
        return None
    try:
        envelope = json.loads(metadata)
    except ValueError:
        return None
    value = envelope.get(ENVELOPE_KEY) if isinstance(envelope, dict) else None
    return str(value) if value is not None else None


def read_inference_output(location: str, settings: NovaflowSettings) -> tuple[str, list[SampleRecord]]:
    """(file, samples) of the ``inference_output.jsonl`` in an evaluation output (archive or prefix), streamed.

    Only that file is read: the metrics and details of a batch job are not needed to know its answers.
    """
    with open_tree(location, settings) as tree:
        found = find_files(tree.names)["inference_output"]
        if not found:
            raise EvaluationError(f"{tree.location}: no inference_output.jsonl; is this a gen_qa evaluation output?")
        where = tree.label(found[0])
        return where, parse_inference_output(tree.lines(found[0]), where=where, prompts=False)


def answers_from_samples(
    where: str, samples: list[SampleRecord], batch: BatchRows
) -> tuple[dict[str, Answer], list[str]]:
    """Answers by row id from the parsed output lines, and warnings (lines without a known id).

    The evaluation reports no token counts; they are estimated from the text (about four characters a token).
    """
    rows = {row.id: row for row in batch.rows}
    answers: dict[str, Answer] = {}
    warnings: list[str] = []
    for sample in samples:
        row_id = row_id_of(sample.metadata)
        row = rows.get(row_id) if row_id is not None else None
        if row is None:
            warnings.append(f"{where}: output line {sample.index + 1} carries no known row id; ignored")
            continue
        if row_id in answers:
            warnings.append(f"{where}: row id {row_id!r} answered twice; the first answer is kept")
            continue
        prompt_chars = len(row.query) + len(row.system or "")
        answers[row.id] = Answer(
            response=sample.prediction,
            input_tokens=estimate_tokens(prompt_chars),
            output_tokens=estimate_tokens(len(sample.prediction)),
        )
    return answers, warnings
