"""The one moto version the embedded AWS is written against.

The patches reach into moto internals (classes they subclass, sources they rely on), which any moto release may
move. ``pyproject.toml`` pins the install to :data:`PINNED_MOTO`, :func:`check_version` refuses to patch any other
version, and ``tests/unit/local/test_moto_guards.py`` is what to run against a candidate before moving the pin.
"""

from __future__ import annotations

PINNED_MOTO = "5.2.5"


class MotoInternalsChanged(RuntimeError):
    """moto differs from the pinned version (or its internals from what a patch was written against)."""


def check_version() -> None:
    """Raise :class:`MotoInternalsChanged` unless the installed moto is the pinned one."""
    import moto

    if moto.__version__ != PINNED_MOTO:
        raise MotoInternalsChanged(
            f"moto is {moto.__version__}, the embedded AWS is pinned to {PINNED_MOTO}: run "
            "tests/unit/local/test_moto_guards.py against the new moto, then move the pin in pyproject.toml and "
            "novaflow/local/aws/moto_pin.py together."
        )
