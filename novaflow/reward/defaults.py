"""Defaults of the reward commands, in a module light enough for ``novaflow reward --help`` to import."""

from __future__ import annotations

DEFAULT_FUNCTION_NAME = "SageMaker-novaflow-reward"
"""The reward Lambda's name; SageMaker HyperPod only invokes functions whose name contains 'SageMaker'."""
DEFAULT_LIMIT = 200
"""Rows graded when verifying the reward function before RFT."""
