"""Experiment tracking outside Prefect (MLflow), for teams that compare runs there."""
