"""`novaflow eval`: compute gen_qa metrics, parse evaluation outputs, compare stages, build reports.

``metrics`` turns a JSONL of (prediction, gold) pairs into the exact results document Nova writes, so a local
experiment and an AWS evaluation are read the same way. ``compare`` says whether a difference is real (paired
bootstrap CI and McNemar / sign-flip p-values on the same rows), not only how big it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from novaflow.errors import EvaluationError

app = typer.Typer(
    help="Compute gen_qa metrics, parse evaluation outputs, compare stages, build reports.", no_args_is_help=True
)


def _read_pairs(path: Path) -> tuple[list[str], list[str]]:
    golds: list[str] = []
    preds: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot read ({exc.strerror})") from exc
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"{path} line {line_no}: not valid JSON ({exc.msg})") from exc
        for field in ("prediction", "gold"):
            if not isinstance(row, dict) or not isinstance(row.get(field), str):
                raise EvaluationError(f"{path} line {line_no}: field {field!r} must be a string")
        golds.append(row["gold"])
        preds.append(row["prediction"])
    return golds, preds


def _stage_names(locations: list[str], names: str | None) -> list[str]:
    if names is None:
        defaults = ["baseline", "sft", "rft"]
        return defaults[: len(locations)] if len(locations) <= 3 else [f"stage{i}" for i in range(len(locations))]
    out = [n.strip() for n in names.split(",")]
    if len(out) != len(locations) or len(set(out)) != len(out):
        raise typer.BadParameter(f"--names needs {len(locations)} distinct comma-separated names")
    return out


@app.command("metrics")
def metrics(
    pairs: Path = typer.Argument(..., help="JSONL with 'prediction' and 'gold' per line."),
    extras: bool = typer.Option(False, help="Add the correct corpus BLEU and its bootstrap SE."),
) -> None:
    """Print the gen_qa results JSON exactly as Nova's evaluation container would write it."""
    from novaflow.evaluation.metrics import extra_metrics, nova_results_json

    golds, preds = _read_pairs(pairs)
    doc = nova_results_json(golds, preds)
    if extras:
        doc["extras"] = extra_metrics(golds, preds)
    typer.echo(json.dumps(doc, indent=2))


@app.command("parse")
def parse(
    uri: str = typer.Argument(..., help="output.tar.gz, a folder, or an s3:// archive or prefix."),
    as_json: bool = typer.Option(False, "--json", help="Print the metric table as JSON rows."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip recomputing metrics from samples."),
) -> None:
    """Print the metric table of an evaluation output (and any disagreement with a recomputation)."""
    from novaflow.evaluation.parser import parse_eval_output
    from novaflow.reports.eval_summary import metric_table_markdown
    from novaflow.settings import load_settings

    result = parse_eval_output(uri, verify=not no_verify, prompts=False, settings=load_settings())
    if as_json:
        typer.echo(json.dumps(result.metrics.to_records(), indent=2))
    else:
        typer.echo(f"{result.source} ({result.task}, {len(result.samples)} samples)")
        typer.echo(metric_table_markdown(result))
    for warning in result.warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    for d in result.disagreements:
        typer.secho(f"disagreement: {d}", err=True, fg=typer.colors.RED)


@app.command("compare")
def compare(
    locations: list[str] = typer.Argument(..., help="Two or more evaluation outputs, baseline first."),
    names: str | None = typer.Option(None, help="Comma-separated stage names (default baseline,sft,rft)."),
    n_boot: int = typer.Option(2000, help="Bootstrap resamples for the confidence intervals."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    as_json: bool = typer.Option(False, "--json", help="Print the deltas as JSON rows."),
) -> None:
    """Compare stages on the same rows: deltas with paired CIs and p-values."""
    from novaflow.evaluation.compare import compare_stages
    from novaflow.evaluation.parser import parse_eval_output
    from novaflow.reports.eval_summary import comparison_markdown
    from novaflow.settings import load_settings

    if len(locations) < 2:
        raise typer.BadParameter("give at least two evaluation outputs (baseline first)")
    stages = {
        n: parse_eval_output(loc, prompts=False, settings=load_settings())
        for n, loc in zip(_stage_names(locations, names), locations, strict=True)
    }
    comparison = compare_stages(stages, n_boot=n_boot, seed=seed)
    typer.echo(json.dumps(comparison.delta_records(), indent=2) if as_json else comparison_markdown(comparison))


@app.command("report")
def report(
    locations: list[str] = typer.Argument(..., help="One or more evaluation outputs, baseline first."),
    out: Path = typer.Option(Path("report.html"), "--out", help="Where to write the HTML report."),
    s3_uri: str | None = typer.Option(None, "--s3", help="Also upload the report to this s3:// URI."),
    names: str | None = typer.Option(None, help="Comma-separated stage names."),
    n_boot: int = typer.Option(2000, help="Bootstrap resamples for the comparison."),
) -> None:
    """Write one self-contained HTML report (figures, tables, paired comparison)."""
    from novaflow.evaluation.compare import compare_stages
    from novaflow.evaluation.parser import parse_eval_output
    from novaflow.reports.html import build_report, save_report
    from novaflow.settings import load_settings

    settings = load_settings()
    stages = {
        n: parse_eval_output(loc, prompts=False, settings=settings)
        for n, loc in zip(_stage_names(locations, names), locations, strict=True)
    }
    comparison = compare_stages(stages, n_boot=n_boot) if len(stages) > 1 else None
    where = save_report(build_report(stages, comparison=comparison), out, s3_uri=s3_uri, settings=settings)
    typer.echo(" ".join(where.values()))
