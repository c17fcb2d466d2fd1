"""Local mode: the embedded AWS (moto plus our patches) and the emulator of the Nova service side.

Only the CLI and test fixtures import this package; tasks and flows never do (local mode is just an endpoint).
"""

from novaflow.local.aws.server import LOCAL_BUCKET, LOCAL_ROLE_ARN, LocalAws, fake_aws_environment, local_aws

__all__ = ["LOCAL_BUCKET", "LOCAL_ROLE_ARN", "LocalAws", "fake_aws_environment", "local_aws"]
