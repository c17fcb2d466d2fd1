"""Where the Nova inference container lives: an AWS-owned ("escrow") ECR account per region.

Nova hosting only exists in these regions; asking for another one fails here, offline, instead of as an
``ImagePull`` failure twenty minutes into endpoint creation.
"""

from __future__ import annotations

from novaflow.catalog import escrow_accounts
from novaflow.errors import ConfigError

INFERENCE_REPOSITORY = "nova-inference-repo"
INFERENCE_TAG = "SM-Inference-latest"


def escrow_account(region: str) -> str:
    """The escrow account for a region; ConfigError naming the supported regions otherwise."""
    try:
        return escrow_accounts()[region]
    except KeyError:
        raise ConfigError(
            f"Nova inference is not available in {region}: use one of "
            f"{', '.join(escrow_accounts())} (set NOVAFLOW_REGION)."
        ) from None


def inference_image_uri(region: str, tag: str = INFERENCE_TAG) -> str:
    """``<escrow>.dkr.ecr.<region>.amazonaws.com/nova-inference-repo:SM-Inference-latest``."""
    return f"{escrow_account(region)}.dkr.ecr.{region}.amazonaws.com/{INFERENCE_REPOSITORY}:{tag}"


def inference_repository_arn(region: str) -> str:
    """The ECR repository ARN the execution role needs pull rights on."""
    return f"arn:aws:ecr:{region}:{escrow_account(region)}:repository/{INFERENCE_REPOSITORY}"
