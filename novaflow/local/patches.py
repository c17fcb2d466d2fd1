"""Entry point for the patch layer that closes moto's gaps and runs the Nova emulator.

``install`` is called by :class:`novaflow.local.server.LocalAws` before the server serves its first request;
``reset`` after ``/moto-api/reset``. Both must be idempotent.
"""

from __future__ import annotations

_INSTALLED = False


def install() -> None:
    """Install every patch into this process (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from novaflow.local import lambda_exec

    lambda_exec.install()
    _INSTALLED = True


def reset() -> None:
    """Forget emulator state that moto's reset does not wipe (queues, fault injections, transitions)."""
    from novaflow.local import lambda_exec

    lambda_exec.reset()
