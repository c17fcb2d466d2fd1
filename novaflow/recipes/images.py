"""The SageMaker training-job image for a Nova recipe: an AWS-owned ECR repository per region and method.

Example:
    >>> image_uri("us-east-1", get_model("nova-lite-2"), Method.SFT_LORA)
    '708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:SM-TJ-SFT-V2-latest'
"""

from __future__ import annotations

from novaflow.catalog import ESCROW_ACCOUNTS, DataFormat, Method, NovaModel, Platform, region_problem
from novaflow.errors import RecipeError

CPT_IMAGE_PROBLEM = (
    "AWS publishes no SageMaker training job image for CPT (the recipe hub lists CPT images for HyperPod only): "
    "set image_uri to the CPT training image AWS gave your account, or run CPT on HyperPod."
)


def image_uri(region: str, model: NovaModel, method: Method) -> str:
    """Evaluation runs in the evaluation repository, training in the fine-tune one; Nova 2 images end in ``-V2``."""
    problem = region_problem(Platform.SMTJ, region)
    if problem:
        raise RecipeError(problem)
    account = ESCROW_ACCOUNTS[region]
    v2 = "-V2" if model.version == 2 else ""
    if method is Method.EVALUATION:
        repo, tag = "nova-evaluation-repo", f"SM-TJ-Eval{v2}-latest"
    elif method.data_format is DataFormat.RFT:
        repo, tag = "nova-fine-tune-repo", f"SM-TJ-RFT{v2}-latest"
    elif method.data_format is DataFormat.DPO:
        repo, tag = "nova-fine-tune-repo", f"SM-TJ-DPO{v2}-latest"
    elif method.data_format is DataFormat.CPT:
        raise RecipeError(CPT_IMAGE_PROBLEM)
    else:
        repo, tag = "nova-fine-tune-repo", f"SM-TJ-SFT{v2}-latest"
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{repo}:{tag}"
