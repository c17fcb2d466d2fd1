"""Row-count bounds per platform (nova-contract.md §5.12), checked wherever platform and method are known.

The reference SDK checks the Bedrock bounds only at train time, after data is uploaded (§18 defect 14); here they
run at preparation so a too-small dataset never reaches a paid job.
"""

from __future__ import annotations

from novaflow.data.formats import MODELS

BEDROCK_BOUNDS: dict[tuple[int, str], tuple[int, int]] = {
    (1, "sft"): (8, 20_000),
    (1, "dpo"): (8, 20_000),
    (1, "cpt"): (8, 20_000),
    (2, "sft"): (200, 20_000),
    (2, "rft"): (100, 20_000),
}


def row_count_problem(
    rows: int, *, platform: str, model: str, method: str, global_batch_size: int | None = None
) -> str | None:
    """Why ``rows`` is not allowed for this platform/model/method, or None when it is."""
    version = MODELS.get(model, 0)
    platform = platform.lower()
    if platform == "bedrock":
        bounds = BEDROCK_BOUNDS.get((version, method))
        if bounds and not bounds[0] <= rows <= bounds[1]:
            return f"{rows} rows for {method} on Bedrock with {model}: needs {bounds[0]:,} to {bounds[1]:,} rows"
    elif platform in ("smtj", "smhp") and method == "sft" and version == 2 and global_batch_size:
        if rows < global_batch_size:
            return (
                f"{rows} rows for sft on {platform.upper()} with {model}: needs at least the recipe's "
                f"global_batch_size ({global_batch_size})"
            )
    return None
