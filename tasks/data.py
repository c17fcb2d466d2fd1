"""Prefect tasks for data preparation: prepare, split and upload, each publishing its report as a table artifact.

Thin on purpose: the work is in :mod:`novaflow.data`. Preparing and splitting are local and deterministic, so they
are not retried; the upload talks to S3 and retries on transient errors only (``AWS_RETRIES``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from prefect import get_run_logger, task

from novaflow.catalog import DataFormat, Method
from novaflow.data.filters import CurationConfig
from novaflow.data.io import upload_prepared
from novaflow.data.prepare import PreparedDataset, prepare_dataset
from novaflow.data.source import DatasetSource
from novaflow.data.splits import SplitResult, split_dataset
from novaflow.settings import NovaflowSettings
from novaflow.storage import browser_url
from tasks.common import AWS_RETRIES, artifact_key, publish_table


@task(name="prepare-dataset")
def prepare_dataset_task(
    source: DatasetSource,
    data_format: DataFormat | Method | str,
    model: str,
    out_dir: str,
    *,
    strict: bool = False,
    split: str = "all",
    platform: str | None = None,
    max_length: int | None = 8192,
    curation: CurationConfig | None = None,
    settings: NovaflowSettings,
) -> PreparedDataset:
    """Prepare one split; publishes ``data-report-<split>-<format>`` (rows, rejections, labels, lengths, rows
    removed per curation filter with examples)."""
    prepared = prepare_dataset(
        source,
        data_format,
        model,
        out_dir,
        strict,
        platform=platform,
        max_length=max_length,
        split=split,
        curation=curation,
        settings=settings,
    )
    fmt = prepared.data_format.value
    rep = prepared.report
    logger = get_run_logger()
    logger.info(
        "%s %s: %d rows in, %d out, %d rejected -> %s",
        split,
        fmt,
        rep.rows_in,
        rep.rows_out,
        rep.rows_rejected,
        prepared.data_file.name,  # the name only: the file is in the run's scratch directory until uploaded
    )
    if rep.rows_rejected:
        # No path here: this file is in the flow run's scratch directory, which is gone after the run. The upload
        # says where the rejected rows are kept.
        logger.warning(
            "%s: %d rows rejected (%s); the valid rows go on",
            split,
            rep.rows_rejected,
            ", ".join(f"{v} {k}" for k, v in rep.rejections_by_reason.items()),
        )
    publish_table(
        rep.table_rows(),
        key=artifact_key("data-report", split, fmt),
        description=f"Data quality: {rep.source} as {fmt} for {prepared.model} ({split})",
    )
    return prepared


@task(name="split-dataset")
def split_dataset_task(
    source: DatasetSource,
    sizes: Mapping[str, float],
    out_dir: str,
    *,
    stratify: str | None = "Y",
    seed: int = 0,
    holdout: Sequence[str] = ("eval",),
    augment: Mapping[str, Sequence[str]] | None = None,
    dedup: bool = False,
    require: Sequence[str] = (),
    auto_column: str | Sequence[str] | None = None,
    settings: NovaflowSettings,
) -> SplitResult:
    """Seeded, stratified split with the leakage guard; publishes ``data-splits`` (sizes and labels per split)."""
    result = split_dataset(
        source,
        dict(sizes),
        Path(out_dir),
        stratify=stratify,
        seed=seed,
        holdout=holdout,
        augment=augment,
        dedup=dedup,
        require=require,
        auto_column=auto_column,
        settings=settings,
    )
    get_run_logger().info("split %s: %s; %s", result.report.source, result.report.sizes, result.report.stratify_reason)
    publish_table(
        result.report.table_rows(),
        key=artifact_key("data-splits"),
        description=f"Splits of {result.report.source} (seed {seed}); {result.report.stratify_reason}",
    )
    return result


@task(name="upload-dataset", **AWS_RETRIES)
def upload_dataset_task(prepared: PreparedDataset, s3_prefix_uri: str, *, settings: NovaflowSettings) -> dict[str, str]:
    """Encrypted, checksum-verified upload; returns file name -> s3 URI (the data file is under ``data/``)."""
    uris = upload_prepared(prepared, s3_prefix_uri, settings)
    logger = get_run_logger()
    logger.info("uploaded %s", ", ".join(uris.values()))
    rejected = uris.get(prepared.rejected_file.name)
    if rejected:
        logger.warning(
            "%d rejected rows of %s kept with their reasons at %s - open: %s",
            prepared.report.rows_rejected,
            prepared.data_file.name,
            rejected,
            browser_url(rejected, settings),
        )
    return uris
