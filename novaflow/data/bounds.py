"""Row-count bounds per platform, checked wherever platform and data format are known (data prep, dry run).

The Forge SDK checks the Bedrock bounds only at train time, after data is uploaded; here they run at
preparation and again in the dry run, so a too-small dataset never reaches a paid job.
"""

from __future__ import annotations

from novaflow.catalog import DataFormat, NovaModel, Platform, get_model

BEDROCK_BOUNDS: dict[tuple[int, DataFormat], tuple[int, int]] = {
    (1, DataFormat.SFT): (8, 20_000),
    (1, DataFormat.DPO): (8, 20_000),
    (1, DataFormat.CPT): (8, 20_000),
    (2, DataFormat.SFT): (200, 20_000),
    (2, DataFormat.RFT): (100, 20_000),
}
"""(Nova version, data format) -> (fewest, most) training rows a Bedrock customization job accepts."""


def row_count_problem(
    rows: int,
    platform: Platform | str,
    model: str | NovaModel,
    data_format: DataFormat | str,
    *,
    global_batch_size: int | None = None,
) -> str | None:
    """Why ``rows`` is not allowed for this platform/model/format, or None when it is."""
    nova = get_model(model)
    where = Platform.parse(platform)
    fmt = DataFormat.of(data_format)
    if where is Platform.BEDROCK:
        bounds = BEDROCK_BOUNDS.get((nova.version, fmt))
        if bounds and not bounds[0] <= rows <= bounds[1]:
            return f"{rows} rows for {fmt.value} on Bedrock with {nova.key}: needs {bounds[0]:,} to {bounds[1]:,} rows"
    elif fmt is DataFormat.SFT and nova.version == 2 and global_batch_size and rows < global_batch_size:
        return (
            f"{rows} rows for sft on {where.value} with {nova.key}: needs at least the recipe's "
            f"global_batch_size ({global_batch_size})"
        )
    return None
