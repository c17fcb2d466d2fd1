from __future__ import annotations

import pytest

from novaflow.aws import get_client
from novaflow.settings import load_settings

ESCROW_BUCKET = "customer-escrow-123456789012-smtj-deploytest"
CHECKPOINT = f"s3://{ESCROW_BUCKET}/nova-sft-job/outputs/checkpoints"


@pytest.fixture
def checkpoint(aws: object) -> str:
    """An escrow-style checkpoint prefix (what manifest.json's checkpoint_s3_bucket points at)."""
    s3 = get_client("s3", settings=load_settings())
    s3.create_bucket(Bucket=ESCROW_BUCKET)
    s3.put_object(
        Bucket=ESCROW_BUCKET, Key="nova-sft-job/outputs/checkpoints/adapter_model.safetensors", Body=b"\x00" * 16
    )
    return CHECKPOINT


class Sleeps:
    """Injected sleep: records the requested delays, never sleeps."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
