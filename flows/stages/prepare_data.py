"""The data stage: split the source into one part per format the run's methods read, transform each part to its
Nova format (rejected rows kept with their reasons), upload. Every other stage of a run reads what this one gives."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.params import DataParams
from flows.stages.context import StageContext
from flows.stages.run_log import RunLog
from novaflow.catalog import DataFormat, Method
from novaflow.data.preferences import derive_pairs
from novaflow.data.samples import CASE_STUDY_COLUMNS, SAMPLE_CSV, SYSTEM_PROMPT
from novaflow.data.source import CANONICAL, ColumnMap, DatasetSource
from novaflow.data.splits import AUTO
from novaflow.errors import ConfigError
from novaflow.runs.graph import Stage
from novaflow.settings import NovaflowSettings
from tasks.data import prepare_dataset_task, split_dataset_task, upload_dataset_task
from tasks.runs import current_flow_run_id

DATA = "data"
"""The data stage's key (and its output's name)."""


@contextmanager
def flow_run_scratch(home: Path) -> Iterator[Path]:
    """``home/scratch/<flow run id>``: this run's local files (splits, prepared data) while it runs.

    Per flow run, not per run name, so two runs at once never write or rename each other's files. When the run
    succeeds its files move up to ``home`` (``home/splits``, ``home/prepared``), replacing the previous run's, where
    a person looks for them; a failed run's stay in its scratch directory for inspection. Callers hold the run
    name (:func:`tasks.runs.run_name_held`) around this, so no other run of the name moves files meanwhile.
    """
    scratch = home / "scratch" / current_flow_run_id()
    scratch.mkdir(parents=True, exist_ok=True)
    yield scratch
    for entry in sorted(scratch.iterdir()):
        target = home / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        entry.replace(target)
    scratch.rmdir()


@dataclass(frozen=True)
class DataPlan:
    """The data settings with the case study's defaults applied only where they belong: to the sample."""

    path: str
    system: str | None
    columns: dict[str, Any]
    stratify: str
    is_sample: bool


def data_plan(data: DataParams) -> DataPlan:
    """The file to read, its system prompt, column mapping and stratification (``auto`` unless asked)."""
    if data.source == "sample":
        columns = dict(data.columns) or dict(CASE_STUDY_COLUMNS)
        return DataPlan(str(SAMPLE_CSV), data.system_prompt or SYSTEM_PROMPT, columns, data.stratify or "Y", True)
    return DataPlan(data.source, data.system_prompt, dict(data.columns), data.stratify or AUTO, False)


@dataclass
class PreparedData:
    """Data format -> S3 URI of its Nova-format file, the local prepared files (for checks that need the rows),
    and the evaluation rows in the RFT format when ``rft_eval`` asked for them."""

    uris: dict[DataFormat, str]
    files: dict[DataFormat, Path] = field(default_factory=dict)
    eval_rft_uri: str | None = None


def prepare_data(
    data: DataParams,
    model: str,
    work_dir: Path,
    s3_prefix: str,
    *,
    methods: Sequence[Method] = (Method.SFT_LORA, Method.EVALUATION, Method.RFT_LORA),
    eval_rft: bool = False,
    log: RunLog,
    settings: NovaflowSettings,
) -> PreparedData:
    """Split the source into one part per data format the methods read, transform each part to its format,
    upload. ``eval_rft`` also writes the evaluation rows in the RFT format (what ``rft_eval`` reads)."""
    plan = data_plan(data)
    formats = {m.data_format for m in methods} | ({DataFormat.RFT} if eval_rft else set())
    rows = {
        DataFormat.SFT: data.sft_rows,
        DataFormat.EVAL: data.eval_rows,
        DataFormat.RFT: data.rft_rows,
        DataFormat.DPO: 0 if data.preferences else data.dpo_rows,
        DataFormat.MTRL: data.rft_rows,
    }
    sizes = {fmt.value: n for fmt, n in rows.items() if fmt in formats and n > 0}
    augment = {"rft": ["sft"]} if data.augment_rft_with_sft and "rft" in sizes and "sft" in sizes else None
    # Rows without a question or an answer cannot be in any split; leaving them out before splitting keeps the
    # eval set at its full size (the split report counts them).
    require = tuple(
        str(plan.columns[k])
        for k in ("query", "response")
        if isinstance(plan.columns.get(k), str) and not set("{}+") & set(plan.columns[k])
    )
    response = plan.columns.get("response")
    split = split_dataset_task(
        DatasetSource(path=plan.path),
        sizes,
        str(work_dir / "splits"),
        stratify=plan.stratify,
        seed=data.seed,
        holdout=("eval",),
        augment=augment,
        require=require,
        auto_column=response if isinstance(response, str) and response in require else CANONICAL["response"],
        settings=settings,
    )
    log.notes.append(f"splits: {split.report.stratify_reason}")
    log.split = split.report
    columns = ColumnMap(**plan.columns)
    out = PreparedData(uris={})
    hashes: dict[str, str | None] = {}
    parts = [(name, DataFormat(name), name) for name in sizes]
    if eval_rft and "eval" in sizes:
        parts.append(("eval", DataFormat.RFT, "eval-rft"))
    for split_name, fmt, folder in parts:
        source = DatasetSource(
            path=str(split.files[split_name]),
            columns=columns,
            system_prompt=None if columns.system else plan.system,
        )
        if fmt is DataFormat.DPO:
            source = preference_source(source, work_dir, data.seed)
        prepared = prepare_dataset_task(
            source,
            fmt,
            model,
            str(work_dir / "prepared" / folder),
            strict=data.strict,
            split=split_name,
            curation=data.filters,
            settings=settings,
        )
        uri = upload_dataset_task(prepared, f"{s3_prefix}/data/{folder}", settings=settings)[prepared.data_file.name]
        log.locations[f"data-{folder}"] = uri
        log.data[folder] = prepared.report
        hashes[f"{folder}.sha256"] = prepared.manifest.get("files", {}).get(prepared.data_file.name, {}).get("sha256")
        if folder == "eval-rft":
            out.eval_rft_uri = uri
        else:
            out.uris[fmt] = uri
            out.files[fmt] = prepared.data_file
    if data.preferences and DataFormat.DPO in formats:
        pairs = DatasetSource(
            path=data.preferences, columns=columns, system_prompt=None if columns.system else plan.system
        )
        prepared = prepare_dataset_task(
            pairs, DataFormat.DPO, model, str(work_dir / "prepared" / "dpo"), strict=data.strict, settings=settings
        )
        out.uris[DataFormat.DPO] = upload_dataset_task(prepared, f"{s3_prefix}/data/dpo", settings=settings)[
            prepared.data_file.name
        ]
        out.files[DataFormat.DPO] = prepared.data_file
        log.locations["data-dpo"] = out.uris[DataFormat.DPO]
    log.track(
        "data",
        params={"source": plan.path, "seed": data.seed, "stratify": plan.stratify, **hashes}
        | {f"{k}.rows": v for k, v in split.report.sizes.items()}
        | {f"{fmt.value}.uri": uri for fmt, uri in out.uris.items()},
        metrics={f"{k}.rejected": float(r.rows_rejected) for k, r in log.data.items()},
    )
    return out


def preference_source(split: DatasetSource, work_dir: Path, seed: int) -> DatasetSource:
    """Contrastive pairs from the DPO rows: each row's answer preferred over another row's different answer."""
    response = split.columns.response or "response"
    if not isinstance(response, str) or response not in _header(split):
        raise ConfigError(
            f"Deriving DPO pairs needs a plain response column (data.columns.response), not {response!r}; or give "
            "data.preferences, a file of pairs."
        )
    out = derive_pairs(split, response, work_dir / "splits" / "dpo_pairs.csv", seed=seed)
    columns = split.columns.model_copy(update={"chosen": "chosen", "rejected": "rejected"})
    return split.model_copy(update={"path": str(out), "format": "csv", "columns": columns})


def _header(source: DatasetSource) -> list[str]:
    from novaflow.data.loaders import iter_chunks

    for chunk in iter_chunks(source):
        return chunk.columns
    return []


def data_stage(data: DataParams, methods: Sequence[Method], *, eval_rft: bool = False) -> Stage:
    """The ``data`` stage: gives :class:`PreparedData` (the S3 URI of every format the ``methods`` read)."""

    def run(ctx: StageContext, inputs: Mapping[str, Any]) -> PreparedData:
        out = prepare_data(
            data,
            ctx.model,
            ctx.scratch,
            ctx.prefix,
            methods=methods,
            eval_rft=eval_rft,
            log=ctx.log,
            settings=ctx.settings,
        )
        ctx.log.details[DATA] = ", ".join(f"{fmt.value}: {uri}" for fmt, uri in out.uris.items())
        return out

    return Stage(DATA, (), run)
