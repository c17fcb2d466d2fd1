"""Evaluation reports: plotly figures in one self-contained HTML file, a markdown summary, artifact rows."""
