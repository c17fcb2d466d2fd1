"""Plotly figures for an evaluation report. Each takes plain results so a notebook can use them too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from novaflow.data.splits import SplitReport
from novaflow.evaluation.classification import ClassificationReport
from novaflow.evaluation.results import EvalResult
from novaflow.jobs.series import TrainingSeries
from novaflow.reward.verify import RewardVerification
from novaflow.runs.graph import StageTiming


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


def sft_loss(series: TrainingSeries) -> go.Figure:
    """Training loss by step (and the learning rate on a second axis when the logs carry it)."""
    fig = go.Figure()
    steps, loss = zip(*series.points("loss"), strict=True) if series.has("loss") else ((), ())
    fig.add_scatter(
        x=list(steps),
        y=list(loss),
        mode="lines+markers",
        name="training loss (per batch)",
        marker={"size": 3},
        line={"width": 1},
        opacity=0.55,
    )
    if len(loss) >= 2 * SMOOTHING:
        fig.add_scatter(
            x=list(steps),
            y=moving_mean(list(loss), SMOOTHING),
            mode="lines",
            name=f"mean of {SMOOTHING} steps",
            line={"width": 3},
        )
    if series.has("lr"):
        lr_steps, lr = zip(*series.points("lr"), strict=True)
        fig.add_scatter(
            x=list(lr_steps), y=list(lr), mode="lines", name="learning rate", yaxis="y2", line={"dash": "dot"}
        )
        fig.update_layout(yaxis2={"title": "learning rate", "overlaying": "y", "side": "right", "showgrid": False})
    fig.update_layout(
        title=f"{series.stage}: training loss by step ({series.job_name})",
        xaxis_title="global step",
        yaxis_title="loss",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


SMOOTHING = 10
"""Steps averaged in the smoothed loss: one batch's loss is noisy, the trend is what tells convergence."""


def moving_mean(values: list[float], window: int) -> list[float]:
    """Trailing mean over up to ``window`` values (the first points average what there is)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


RFT_PANELS = (
    ("reward_mean", "reward (mean, min-max band)"),
    ("kl", "KL penalty"),
    ("entropy", "policy entropy"),
    ("response_length", "response length (mean)"),
)


def rft_dynamics(series: TrainingSeries) -> go.Figure:
    """Reward mean with its min-max spread, KL, entropy and response length by step: the panels that show
    whether RFT converges or its reward collapses (every sample scored the same, nothing left to learn)."""
    panels = [(name, title) for name, title in RFT_PANELS if series.has(name)]
    cols = 2 if len(panels) > 1 else 1
    rows = max(1, -(-len(panels) // cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[t for _, t in panels] or ["reward"])
    for i, (name, title) in enumerate(panels):
        row, col = i // cols + 1, i % cols + 1
        steps, values = zip(*series.points(name), strict=True)
        if name == "reward_mean" and series.has("reward_min") and series.has("reward_max"):
            low, high = dict(series.points("reward_min")), dict(series.points("reward_max"))
            band = [s for s in steps if s in low and s in high]
            fig.add_scatter(
                x=band + band[::-1],
                y=[high[s] for s in band] + [low[s] for s in band[::-1]],
                fill="toself",
                mode="lines",
                fillcolor="rgba(31,119,180,0.15)",
                line={"width": 0},
                hoverinfo="skip",
                name="reward min-max",
                row=row,
                col=col,
            )
        fig.add_scatter(
            x=list(steps), y=list(values), mode="lines+markers", name=title, marker={"size": 4}, row=row, col=col
        )
        fig.update_xaxes(title_text="global step", row=row, col=col)
    fig.update_layout(
        title=f"{series.stage}: reward and policy by step ({series.job_name})",
        height=320 * rows,
        showlegend=False,
    )
    return fig


def training_figure(series: TrainingSeries) -> go.Figure | None:
    """The right figure for a stage's curves: RFT panels when there is a reward, the loss otherwise."""
    if series.has("reward_mean"):
        return rft_dynamics(series)
    if series.has("loss"):
        return sft_loss(series)
    return None


def split_sizes(split: SplitReport) -> go.Figure:
    """Rows per split, stacked by label (a skewed eval split makes every metric hard to read)."""
    fig = go.Figure()
    labels = sorted({label for counts in split.labels.values() for label in counts})
    names = list(split.sizes)
    for label in labels:
        fig.add_bar(name=label, x=names, y=[split.labels.get(n, {}).get(label, 0) for n in names])
    if not labels:
        fig.add_bar(name="rows", x=names, y=[split.sizes[n] for n in names])
    fig.update_layout(title="Rows per split and label", barmode="stack", yaxis_title="rows")
    return fig


def reward_shares(verification: RewardVerification) -> go.Figure:
    """How the reward Lambda scored the verification rows: share at the maximum, at the minimum, in between."""
    fig = go.Figure()
    names = [f"{d.source} / {d.runner}" for d in verification.distributions]
    at_max = [d.share_max for d in verification.distributions]
    at_min = [d.share_min for d in verification.distributions]
    fig.add_bar(name="at max reward", x=names, y=at_max)
    fig.add_bar(name="between", x=names, y=[max(0.0, 1 - a - b) for a, b in zip(at_max, at_min, strict=True)])
    fig.add_bar(name="at min reward", x=names, y=at_min)
    fig.update_layout(title="Reward distribution in the verification", barmode="stack", yaxis_title="share of rows")
    return fig


def stage_timeline(timeline: Sequence[StageTiming]) -> go.Figure:
    """One bar per stage from its start to its end offset (a Gantt chart): what ran side by side, what waited, and
    the stage that failed (red) or was stopped because of it (grey)."""
    colors = {"completed": "#4c78a8", "failed": "#e45756", "stopped": "#9d9d9d"}
    fig = go.Figure()
    ordered = sorted(timeline, key=lambda t: (t.start, t.end))
    for status in ("completed", "failed", "stopped"):
        rows = [t for t in ordered if t.status == status]
        if not rows:
            continue
        fig.add_bar(
            name=status,
            orientation="h",
            y=[t.key for t in rows],
            x=[max(t.seconds, 0.01) for t in rows],
            base=[t.start for t in rows],
            marker_color=colors[status],
            hovertemplate="%{y}: %{base:.1f} s to %{customdata:.1f} s<extra></extra>",
            customdata=[t.end for t in rows],
        )
    fig.update_layout(
        title="Stages over time (seconds from the start of the run)",
        barmode="overlay",
        xaxis_title="seconds",
        yaxis={"categoryorder": "array", "categoryarray": [t.key for t in reversed(ordered)]},
        height=120 + 28 * len(ordered),
    )
    return fig


def curves_overlay(curves: Mapping[str, TrainingSeries]) -> go.Figure | None:
    """Every training stage's loss (or, for RFT, mean reward) by step on one chart: the variants' curves side by
    side. None when no stage logged either."""
    fig = go.Figure()
    for name, series in curves.items():
        for metric in ("loss", "reward_mean"):
            values = series.values.get(metric)
            if values:
                fig.add_scatter(x=series.steps[: len(values)], y=values, mode="lines", name=f"{name} {metric}")
                break
    if not fig.data:
        return None
    fig.update_layout(title="Training curves of every variant", xaxis_title="step", yaxis_title="loss / reward")
    return fig
