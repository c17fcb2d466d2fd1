"""What a serverless fine-tuning job does when it has trained: register the model as a version of its group.

The version is created through the public API, like every other output of the emulator, before the job may read
as Completed - so ``OutputModelPackageArn`` never names a version that does not exist yet. Its container holds the
checkpoint (``ModelDataSource``) and the base model's hub content, which is how AWS lets a later job continue from
it (``SourceModelPackageArn``) and a deployment find what to serve.
"""

from __future__ import annotations

from novaflow.local.emulator import aws_io
from novaflow.local.emulator.job_context import JobContext
from novaflow.local.emulator.serverless_jobs import ServerlessPlan


def register_output(ctx: JobContext, plan: ServerlessPlan, checkpoint_uri: str) -> str:
    """Create the version for the job's checkpoint (one per job: the job name is the client token)."""
    if plan.group_name is None:
        raise RuntimeError(f"serverless fine-tuning job {ctx.name} has no model package group")
    name, version = plan.base_content
    response = aws_io.client("sagemaker", ctx.url, ctx.region).create_model_package(
        ModelPackageGroupName=plan.group_name,
        ModelPackageDescription=f"Trained by serverless {plan.technique} job {ctx.name}",
        ClientToken=ctx.name[-36:],
        InferenceSpecification={
            "Containers": [
                {
                    "ModelDataSource": {
                        "S3DataSource": {
                            "S3Uri": checkpoint_uri.rstrip("/") + "/",
                            "S3DataType": "S3Prefix",
                            "CompressionType": "None",
                        }
                    },
                    "BaseModel": {"HubContentName": name, "HubContentVersion": version},
                }
            ],
        },
        ModelApprovalStatus="PendingManualApproval",
    )
    return str(response["ModelPackageArn"])
