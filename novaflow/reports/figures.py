"""Plotly figures for an evaluation report. Each takes plain results so a notebook can use them too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from novaflow.evaluation.classification import ClassificationReport
from novaflow.evaluation.results import EvalResult


def metric_bars(stages: Mapping[str, EvalResult]) -> go.Figure:
    """One bar group per metric, one bar per stage, stderr as error bars; BLEU shown on 0-1 like the rest."""
    fig = go.Figure()
    for name, result in stages.items():
        rows = list(result.metrics)
        fractions = [r.as_fraction() for r in rows]
        labels = [r.name + (" (/100)" if r.scale == "0-100" else "") for r in rows]
        fig.add_bar(
            name=name,
            x=labels,
            y=[v for v, _ in fractions],
            error_y={"type": "data", "array": [s or 0.0 for _, s in fractions], "visible": True},
        )
    fig.update_layout(title="Metrics by stage (error bars: stderr)", barmode="group", yaxis_title="score (0-1)")
    return fig


def confusion_heatmap(report: ClassificationReport, stage: str) -> go.Figure:
    """Gold label (rows) against extracted prediction (columns, plus no prediction)."""
    fig = go.Figure(
        go.Heatmap(
            z=report.confusion,
            x=report.columns,
            y=list(report.labels),
            colorscale="Blues",
            text=report.confusion,
            texttemplate="%{text}",
            showscale=False,
        )
    )
    fig.update_layout(
        title=f"Confusion matrix - {stage} (accuracy {report.accuracy:.3f})",
        xaxis_title="predicted",
        yaxis_title="gold",
        yaxis_autorange="reversed",
    )
    return fig


def length_histogram(reports: Mapping[str, ClassificationReport] | Mapping[str, Sequence[int]]) -> go.Figure:
    """Response length in words per stage (long answers to a label task are a format problem to see)."""
    fig = go.Figure()
    for stage, item in reports.items():
        words = item.response_words if isinstance(item, ClassificationReport) else list(item)
        fig.add_histogram(x=words, name=stage, opacity=0.6)
    fig.update_layout(title="Response length (words)", barmode="overlay", xaxis_title="words", yaxis_title="responses")
    return fig


def training_curves(curves: Mapping[str, Sequence[tuple[float, float]]]) -> go.Figure:
    """Training metrics by step (e.g. ``{"sft reduced_train_loss": [(step, value), ...]}``) from parsed logs."""
    fig = go.Figure()
    for name, points in curves.items():
        fig.add_scatter(x=[s for s, _ in points], y=[v for _, v in points], mode="lines+markers", name=name)
    fig.update_layout(title="Training curves", xaxis_title="global step", yaxis_title="value")
    return fig
