from __future__ import annotations

import pytest

from novaflow.settings import NovaflowSettings, load_settings

ROLE = "arn:aws:iam::111122223333:role/nova-exec"


@pytest.fixture
def settings() -> NovaflowSettings:
    """Fixed settings so golden requests do not depend on the environment."""
    return load_settings(
        bucket="golden-bucket",
        prefix="nf",
        role_arn=ROLE,
        region="us-east-1",
        kms_key_id="alias/nova",
        subnets=["subnet-1"],
        security_group_ids=["sg-1"],
    )
