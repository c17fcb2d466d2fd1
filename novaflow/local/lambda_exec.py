"""Patch for moto's simple Lambda backend: run the uploaded zip's real handler in a subprocess (no Docker)."""

from __future__ import annotations


def install() -> None:
    """Install the patch (idempotent)."""


def reset() -> None:
    """Forget queued errors and other per-test state."""
