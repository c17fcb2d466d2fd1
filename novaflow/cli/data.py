"""`novaflow data`: prepare, split, profile and generate datasets in the Nova formats.

Errors are :class:`~novaflow.errors.DataError` with file, row and field; the console entry point prints them as one
line and exits 2. ``prepare`` exits 0 when at least one row is valid (and ``--strict`` is off), printing how many
rows were rejected and where they are.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from novaflow.catalog import DataFormat
from novaflow.cli.options import model_option

if TYPE_CHECKING:
    from novaflow.data.filters import CurationConfig
    from novaflow.data.source import DatasetSource

app = typer.Typer(help="Prepare, split, profile and generate datasets in the Nova formats.", no_args_is_help=True)

MAP_HELP = (
    "KEY=COLUMN, repeatable. Keys: query, response, system, reference_answer, id, reasoning, text, "
    "chosen and rejected (DPO preference pairs), metadata (comma-separated columns). COLUMN may be a {Col} "
    "template or A+B."
)


def _source(
    input_path: str,
    mapping: list[str] | None,
    system: str | None,
    system_file: Path | None,
    fmt: str | None,
    delimiter: str,
    encoding: str,
) -> DatasetSource:
    from novaflow.data.source import ColumnMap, DatasetSource
    from novaflow.errors import DataError

    if system and system_file:
        raise DataError("pass --system or --system-file, not both")
    prompt = system_file.read_text(encoding="utf-8") if system_file else system
    return DatasetSource.model_validate(
        {
            "path": input_path,
            "format": fmt,
            "columns": ColumnMap.parse(mapping or []),
            "system_prompt": prompt,
            "delimiter": delimiter.encode().decode("unicode_escape"),
            "encoding": encoding,
        }
    )


FORMATS = ", ".join(f.value for f in DataFormat)


@contextmanager
def without_pydantic_plugins() -> Iterator[None]:
    """Build the data engine's model classes without pydantic plugins.

    Start-up: pydantic looks for plugins in the entry points of every installed distribution when it builds its
    first model class (about 200 distributions in the project's environment: a tenth of a small `data prepare`'s
    fixed cost), and the data engine's own option models need none. Typer builds its parameter adapters the same
    way. A user's own ``PYDANTIC_DISABLE_PLUGINS`` is left as it is.
    """
    if _PLUGINS_VARIABLE in os.environ:
        yield
        return
    os.environ[_PLUGINS_VARIABLE] = "__all__"
    try:
        yield
    finally:
        os.environ.pop(_PLUGINS_VARIABLE, None)


_PLUGINS_VARIABLE = "PYDANTIC_DISABLE_PLUGINS"


def _print_rows(rows: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title)
    for col in rows[0] if rows else ["item"]:
        table.add_column(escape(str(col)))
    for row in rows:
        table.add_row(*(escape(str(v)) for v in row.values()))
    Console().print(table)


@app.command()
def prepare(
    input_path: str = typer.Argument(..., metavar="INPUT", help="CSV/TSV, JSONL, JSON or Parquet (path or s3://)."),
    method: str = typer.Option(
        ..., "--method", help=f"Target format: {FORMATS} (or the training method it is for, e.g. rft_lora)."
    ),
    model: str = model_option("Model the data is for"),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    mapping: list[str] = typer.Option(None, "--map", help=MAP_HELP),
    system: str = typer.Option(None, "--system", help="One constant system prompt for every row."),
    system_file: Path | None = typer.Option(None, "--system-file", help="Read the constant system prompt from a file."),
    strict: bool = typer.Option(False, "--strict", help="Fail on any rejected row."),
    fmt: str = typer.Option(None, "--format", help="csv, jsonl, json or parquet (default: from the extension)."),
    delimiter: str = typer.Option(",", "--delimiter", help="CSV delimiter (\\t for tab)."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of CSV input."),
    platform: str = typer.Option(None, "--platform", help="bedrock, smtj or smhp: also check row-count bounds."),
    max_length: int = typer.Option(8192, "--max-length", help="Flag rows whose estimated tokens exceed this."),
    workers: int = typer.Option(
        None,
        "--workers",
        min=1,
        help="Processes transforming chunks, per instance with --on sagemaker (default: one; cores - 1 from 160 MB "
        "of input on 3+ cores; with --filter, one per core from 16 MB).",
    ),
    filters: str = typer.Option(
        None,
        "--filter",
        help="Curation filters, comma separated: dedup, near-dedup, language=en[,de...], quality (Forge SDK's "
        "seven text-quality sub-filters). Removed rows go to rejected.jsonl with the filter and score.",
    ),
    filter_fields: str = typer.Option("query,response", "--filter-fields", help="Fields the filters read, joined."),
    near_threshold: float = typer.Option(0.8, "--near-dedup-threshold", help="near-dedup: Jaccard similarity."),
    shingle_words: int = typer.Option(3, "--shingle-words", min=1, help="near-dedup: words per shingle."),
    language_percent: int = typer.Option(0, "--language-min-percent", help="language: CLD2 percent, at least."),
    quality_options: list[str] = typer.Option(
        None,
        "--quality",
        help="quality: THRESHOLD=VALUE, repeatable (max_url_ratio, min_alnum_ratio, max_word_repetition, "
        "max_char_repetition, max_mojibake_ratio, max_badness, min_length, max_length, min_avg_line_length, "
        "max_avg_line_length, min_lines, word_ngram, char_ngram, drop_porn_urls).",
    ),
    on: str = typer.Option(
        "local", "--on", help="local (this machine) or sagemaker (Processing jobs in --image over --instances shards)."
    ),
    instances: int = typer.Option(2, "--instances", min=1, help="--on sagemaker: instances of the first job."),
    instance_type: str = typer.Option("ml.m5.2xlarge", "--instance-type", help="--on sagemaker: instance type."),
    image: str = typer.Option(None, "--image", help="--on sagemaker: the project's image URI (see the Dockerfile)."),
) -> None:
    """Transform and validate INPUT; writes the data file, rejected.jsonl, report.json and manifest.json."""
    with without_pydantic_plugins():
        from novaflow.data.prepare import prepare_dataset
        from novaflow.settings import load_settings

        src = _source(input_path, mapping, system, system_file, fmt, delimiter, encoding)
        curation = (
            _curation(filters, filter_fields, near_threshold, shingle_words, language_percent, quality_options)
            if filters
            else None
        )
    settings = load_settings()
    if on == "sagemaker":
        from novaflow.data.remote import prepare_on_sagemaker
        from novaflow.errors import DataError

        if not image:
            raise DataError("--on sagemaker needs --image: the project's image URI in ECR (built from the Dockerfile)")
        prepared = prepare_on_sagemaker(
            src,
            method,
            model,
            out,
            image_uri=image,
            instances=instances,
            instance_type=instance_type,
            strict=strict,
            platform=platform,
            max_length=max_length,
            curation=curation,
            workers=workers,
            settings=settings,
        )
    elif on == "local":
        prepared = prepare_dataset(
            src,
            method,
            model,
            out,
            strict,
            platform=platform,
            max_length=max_length,
            workers=workers,
            curation=curation,
            settings=settings,
        )
    else:
        from novaflow.errors import DataError

        raise DataError(f"--on {on}: expected local or sagemaker")
    rep = prepared.report
    typer.echo(f"wrote {prepared.data_file}: {rep.rows_out} rows ({rep.rows_in} read)")
    if rep.rows_rejected:
        typer.echo(f"rejected {rep.rows_rejected} rows -> {prepared.rejected_file}")
        for reason, count in rep.rejections_by_reason.items():
            typer.echo(f"  {count:6d}  {reason}")
    for name, count in rep.filtered.items():
        typer.echo(f"  filter {name}: {count} rows removed")
    typer.echo(f"report: {prepared.report_file}  manifest: {prepared.manifest_file}")


def _curation(
    filters: str, fields: str, threshold: float, shingle: int, percent: int, quality: list[str] | None
) -> CurationConfig:
    from pydantic import ValidationError

    from novaflow.data.filters import CurationConfig
    from novaflow.data.quality import QualityThresholds
    from novaflow.errors import DataError

    settings: dict[str, str] = {}
    for item in quality or []:
        key, eq, value = item.partition("=")
        if not eq:
            raise DataError(f"--quality {item}: expected THRESHOLD=VALUE, e.g. min_length=20")
        settings[key.strip()] = value.strip()
    try:
        thresholds = QualityThresholds.model_validate(settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        known = ", ".join(QualityThresholds.model_fields)
        raise DataError(f"--quality {first['loc'][0]}: {first['msg']} (thresholds: {known})") from None
    try:
        return CurationConfig.parse(
            filters,
            fields=tuple(f.strip() for f in fields.split(",") if f.strip()),
            near_dedup_threshold=threshold,
            shingle_words=shingle,
            min_language_percent=percent,
            quality=thresholds,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        option = {"near_dedup_threshold": "--near-dedup-threshold", "shingle_words": "--shingle-words"}
        option |= {"min_language_percent": "--language-min-percent", "fields": "--filter-fields"}
        raise DataError(f"{option.get(str(first['loc'][0]), '--filter')}: {first['msg']}") from None


@app.command()
def validate(
    input_path: str = typer.Argument(..., metavar="FILE", help="JSONL already in the Nova format (path or s3://)."),
    method: str = typer.Option(..., "--method", help=f"The format FILE is in: {FORMATS} (or its training method)."),
    model: str = model_option("Model the data is for"),
    show: int = typer.Option(20, "--show", help="How many rejected rows to print."),
) -> None:
    """Check FILE row by row as the service reads it, without rewriting it; exit 1 when a row would be refused."""
    from novaflow.data.validate import validate_file
    from novaflow.settings import load_settings
    from novaflow.storage import local_copy

    with local_copy(input_path, settings=load_settings()) as local:
        result = validate_file(str(local), method, model)
    typer.echo(f"{input_path}: {result.rows} rows, {len(result.rejected)} rejected")
    for rejection in result.rejected[:show]:
        typer.echo(f"  row {rejection.row} {rejection.field}: {rejection.reason}")
    if len(result.rejected) > show:
        typer.echo(f"  ... and {len(result.rejected) - show} more")
    if result.rejected:
        raise typer.Exit(1)


@app.command()
def split(
    input_path: str = typer.Argument(..., metavar="INPUT"),
    sizes: str = typer.Option(..., "--sizes", help="Counts (3500,500,700) or ratios (0.7,0.1,0.2)."),
    out: Path = typer.Option(..., "--out"),
    names: str = typer.Option("sft,eval,rft", "--names", help="Split names, in the order of --sizes."),
    stratify: str = typer.Option(None, "--stratify", help="Label column to stratify by."),
    seed: int = typer.Option(0, "--seed"),
    holdout: str = typer.Option("eval", "--holdout", help="Held-out splits the leakage guard protects."),
    augment: list[str] = typer.Option(None, "--augment", help="TARGET=SRC[,SRC]: append SRC rows to TARGET."),
    key: str = typer.Option(None, "--key", help="Columns whose normalized text identifies a row (leakage, dedup)."),
    dedup: bool = typer.Option(False, "--dedup", help="Drop rows whose key text repeats."),
    leakage: str = typer.Option(
        "drop-eval",
        "--leakage",
        help="Held-out rows that are near-copies of training rows: drop-eval (remove them from the held-out "
        "split), drop-train (remove the training rows) or keep (report only).",
    ),
    leakage_threshold: float = typer.Option(0.8, "--leakage-threshold", help="Jaccard similarity of a near-copy."),
    require: str = typer.Option(None, "--require", help="Columns that must be non-blank (e.g. Body,Y)."),
    fmt: str = typer.Option(None, "--format"),
    delimiter: str = typer.Option(",", "--delimiter"),
    encoding: str = typer.Option("utf-8", "--encoding"),
) -> None:
    """Seeded, stratified split of INPUT into files of the same format, with a leakage guard."""
    from novaflow.data.splits import split_dataset
    from novaflow.errors import DataError
    from novaflow.settings import load_settings

    try:
        values = [float(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise DataError(f"--sizes {sizes!r}: expected numbers separated by commas") from None
    name_list = [n.strip() for n in names.split(",") if n.strip()][: len(values)]
    aug: dict[str, list[str]] = {}
    for item in augment or []:
        target, _, srcs = item.partition("=")
        aug[target.strip()] = [s.strip() for s in srcs.split(",") if s.strip()]
    src = _source(input_path, None, None, None, fmt, delimiter, encoding)
    result = split_dataset(
        src,
        values,
        out,
        names=name_list,
        stratify=stratify,
        seed=seed,
        holdout=[h for h in holdout.split(",") if h],
        augment=aug,
        key_columns=[k for k in key.split(",") if k] if key else None,
        dedup=dedup,
        require=[c for c in (require or "").split(",") if c],
        leakage=leakage,
        leakage_threshold=leakage_threshold,
        settings=load_settings(),
    )
    for name, path in result.files.items():
        typer.echo(f"{name}: {result.report.sizes[name]} rows -> {path}")
    _print_rows(result.report.table_rows(), "split")


@app.command()
def profile(
    input_path: str = typer.Argument(..., metavar="INPUT"),
    method: str = typer.Option("eval", "--method", help=f"Target format: {FORMATS}."),
    model: str = model_option("Model the data is for"),
    mapping: list[str] = typer.Option(None, "--map", help=MAP_HELP),
    system: str = typer.Option(None, "--system"),
    system_file: Path | None = typer.Option(None, "--system-file"),
    max_length: int = typer.Option(8192, "--max-length"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    fmt: str = typer.Option(None, "--format"),
    delimiter: str = typer.Option(",", "--delimiter"),
    encoding: str = typer.Option("utf-8", "--encoding"),
) -> None:
    """Print the data-quality report of INPUT as it would be prepared (nothing is kept)."""
    import orjson

    from novaflow.data.prepare import prepare_dataset
    from novaflow.settings import load_settings

    src = _source(input_path, mapping, system, system_file, fmt, delimiter, encoding)
    with tempfile.TemporaryDirectory(prefix="novaflow-profile-") as tmp:
        prepared = prepare_dataset(src, method, model, tmp, max_length=max_length, settings=load_settings())
    if as_json:
        typer.echo(orjson.dumps(prepared.report.model_dump(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_rows(prepared.report.table_rows(), f"{src.name} as {prepared.data_format.value} for {prepared.model}")


@app.command()
def upload(
    prepared_dir: Path = typer.Argument(..., help="A directory written by `novaflow data prepare`."),
    to: str = typer.Option(..., "--to", help="s3:// prefix; the data file goes under data/, the rest under meta/."),
) -> None:
    """Upload a prepared dataset, encrypted and checksum-verified; prints the S3 URIs."""
    from novaflow.data.io import upload_prepared
    from novaflow.data.prepare import load_prepared
    from novaflow.settings import load_settings

    for name, uri in upload_prepared(load_prepared(prepared_dir), to, settings=load_settings()).items():
        typer.echo(f"{name}: {uri}")


@app.command()
def sample(
    out: Path = typer.Argument(..., help="CSV file to write."),
    rows: int = typer.Option(5000, "--rows"),
    seed: int = typer.Option(0, "--seed"),
    broken: bool = typer.Option(False, "--broken", help="Mix in the deliberately broken demo rows."),
) -> None:
    """Generate a synthetic Stack Overflow question-quality CSV (Id,Title,Body,Tags,CreationDate,Y)."""
    from novaflow.data.samples import generate_stackoverflow_csv

    path = generate_stackoverflow_csv(out, rows, seed, broken=broken)
    typer.echo(f"wrote {path} ({path.stat().st_size:,} bytes)")
