"""The Lambda execution patch is pinned to moto internals: this fails loudly when an upgrade changes them."""

from __future__ import annotations

import moto
import pytest
from moto.awslambda_simple.models import LambdaSimpleBackend

from novaflow.local import lambda_exec


def test_pinned_moto_internals_are_present() -> None:
    assert moto.__version__ == lambda_exec.PINNED_MOTO, (
        f"moto {moto.__version__} is not the pinned {lambda_exec.PINNED_MOTO}: re-check novaflow/local/lambda_exec.py"
    )
    lambda_exec.check_internals()


def test_patch_is_installed_on_the_class() -> None:
    lambda_exec.install()
    lambda_exec.install()  # idempotent: the original is not wrapped twice
    assert LambdaSimpleBackend.invoke is lambda_exec._invoke
    assert lambda_exec._ORIGINAL_INVOKE is not lambda_exec._invoke


def test_check_internals_reports_a_changed_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto, "__version__", "9.9.9")
    with pytest.raises(lambda_exec.MotoInternalsChanged, match=r"moto is 9\.9\.9, the patch is pinned to 5\.2\.5"):
        lambda_exec.check_internals()
