from __future__ import annotations

import pytest

from novaflow.deploy.environment import EndpointEnvironment
from novaflow.deploy.images import inference_image_uri, inference_repository_arn
from novaflow.deploy.tiers import SUPPORTED_TIERS, Tier, allowed_tiers, validate_tier
from novaflow.errors import ConfigError


@pytest.mark.parametrize(
    ("model", "instance", "tier"),
    [
        (model, instance, tier)
        for model, table in SUPPORTED_TIERS.items()
        for instance, tiers in table.items()
        for tier in tiers
    ],
)
def test_every_tier_ceiling_is_accepted_and_one_more_is_not(model: str, instance: str, tier: Tier) -> None:
    assert (
        validate_tier(model, instance, context_length=tier.context_length, max_concurrency=tier.max_concurrency) == tier
    )
    larger = max(t.context_length for t in SUPPORTED_TIERS[model][instance])
    with pytest.raises(ConfigError):
        validate_tier(model, instance, context_length=larger + 1, max_concurrency=1)


def test_smallest_fitting_tier_is_chosen() -> None:
    assert validate_tier("nova-lite-2", "ml.p5.48xlarge", context_length=20000, max_concurrency=30) == Tier(64000, 32)
    assert validate_tier("nova-micro", "ml.g5.12xlarge", context_length=4000, max_concurrency=7) == Tier(4000, 12)
    assert validate_tier("nova-micro", "ml.g5.12xlarge", context_length=4001, max_concurrency=6) == Tier(8000, 6)


def test_refusal_names_every_allowed_tier() -> None:
    with pytest.raises(ConfigError) as err:
        validate_tier("nova-lite", "ml.g6.48xlarge", context_length=8000, max_concurrency=9)
    assert str(err.value) == (
        "CONTEXT_LENGTH=8000 with MAX_CONCURRENCY=9 is not supported for nova-lite on ml.g6.48xlarge; allowed tiers: "
        "(CONTEXT_LENGTH<=4000, MAX_CONCURRENCY<=16), (CONTEXT_LENGTH<=8000, MAX_CONCURRENCY<=8)."
    )


def test_unsupported_instance_names_the_supported_ones() -> None:
    with pytest.raises(
        ConfigError,
        match=r"nova-pro cannot be hosted on ml.g6.48xlarge: supported instance types "
        r"are ml.p5.48xlarge\.",
    ):
        allowed_tiers("nova-pro", "ml.g6.48xlarge")
    with pytest.raises(ConfigError, match=r"cannot be hosted on ml\.g5\.12xlarge"):
        validate_tier("nova-lite-2", "ml.g5.12xlarge", context_length=1000, max_concurrency=1)


def test_non_positive_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="must be positive"):
        validate_tier("nova-micro", "ml.p5.48xlarge", context_length=0, max_concurrency=1)


def test_environment_checks_its_tier_and_renders_strings() -> None:
    env = EndpointEnvironment(
        context_length=8000,
        max_concurrency=8,
        default_temperature=0.0,
        default_top_p=0.9,
        default_top_k=-1,
        default_max_new_tokens=64,
    )
    assert env.tier_for("nova-lite-2", "ml.g6.48xlarge") == Tier(8000, 8)
    assert env.to_env() == {
        "CONTEXT_LENGTH": "8000",
        "MAX_CONCURRENCY": "8",
        "DEFAULT_TEMPERATURE": "0",
        "DEFAULT_TOP_P": "0.9",
        "DEFAULT_TOP_K": "-1",
        "DEFAULT_MAX_NEW_TOKENS": "64",
    }
    assert EndpointEnvironment().to_env() == {"CONTEXT_LENGTH": "4000", "MAX_CONCURRENCY": "1"}


@pytest.mark.parametrize(
    "bad",
    [
        {"default_temperature": 2.5},
        {"default_top_k": 0},
        {"default_logprobs": 21},
        {"num_speculative_tokens": 11},
        {"speculative_decoding_method": "medusa"},
        {"bogus": 1},
    ],
)
def test_environment_ranges(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        EndpointEnvironment(**bad)


def test_inference_image_per_region() -> None:
    assert (
        inference_image_uri("us-west-2")
        == "176779409107.dkr.ecr.us-west-2.amazonaws.com/nova-inference-repo:SM-Inference-latest"
    )
    assert inference_repository_arn("eu-west-2") == "arn:aws:ecr:eu-west-2:470633809225:repository/nova-inference-repo"
    with pytest.raises(ConfigError, match="Nova inference is not available in sa-east-1"):
        inference_image_uri("sa-east-1")
