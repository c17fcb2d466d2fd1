"""The Nova dataset vocabulary: methods, models, file names and the rules that are plain constants.

Kept apart from the transforms so the CLI, the validators and the row-count bounds agree on one spelling of
every name (nova-contract.md §2-§5).
"""

from __future__ import annotations

import re
from enum import Enum

SCHEMA_VERSION = "bedrock-conversation-2024"
DEFAULT_RFT_SYSTEM = "You are a helpful AI assistant."


class Method(str, Enum):
    """What the prepared file is for; decides the target format (nova-contract.md §4)."""

    EVAL = "eval"
    SFT = "sft"
    RFT = "rft"
    CPT = "cpt"
    DPO = "dpo"


MODELS: dict[str, int] = {"nova-micro": 1, "nova-lite": 1, "nova-pro": 1, "nova-lite-2": 2}
"""Model name -> Nova version (1 or 2): the version decides reasoning, RFT and DPO availability."""

MULTIMODAL_MODELS = frozenset({"nova-lite", "nova-pro", "nova-lite-2"})

OUTPUT_FILES: dict[Method, str] = {
    Method.EVAL: "gen_qa.jsonl",  # AWS requires exactly this single file name for gen_qa BYOD
    Method.SFT: "train.jsonl",
    Method.RFT: "rft.jsonl",
    Method.CPT: "cpt.jsonl",
    Method.DPO: "train.jsonl",
}
REJECTED_FILE = "rejected.jsonl"
REPORT_FILE = "report.json"
MANIFEST_FILE = "manifest.json"

RESERVED_KEYWORDS: tuple[str, ...] = (
    "System:",
    "User:",
    "Bot:",
    "Assistant:",
    "Thought:",
    "[EOS]",
    "<image>",
    "<video>",
    "<unk>",
)
"""Compared case-insensitively: the strictest of the two published validators (§5.5), so a row that passes here
passes both the reference SDK and the current AWS sample validator."""

RESERVED_RE = re.compile("|".join(re.escape(k) for k in RESERVED_KEYWORDS), re.IGNORECASE)
RESERVED_PATTERN = "(?i)" + "|".join(re.escape(k) for k in RESERVED_KEYWORDS)
"""The same rule as an RE2 pattern for pyarrow's vectorized ``match_substring_regex``."""

IMAGE_FORMATS = {1: frozenset({"gif", "jpeg", "png", "webp"}), 2: frozenset({"png", "jpeg", "gif"})}
VIDEO_FORMATS = {1: frozenset({"mov", "mkv", "mp4", "webm"}), 2: frozenset({"mov", "mkv", "mp4"})}
MAX_IMAGES_PER_MESSAGE = 10
MAX_VIDEOS_PER_MESSAGE = 1
S3_KEY_RE = re.compile(r"^[\w\-/\.]+$")


def model_version(model: str) -> int:
    """Nova version of a model name; a clear error lists the known names."""
    try:
        return MODELS[model]
    except KeyError:
        from novaflow.errors import DataError

        raise DataError(f"unknown model {model!r}: use one of {', '.join(MODELS)}") from None


def estimate_tokens(chars: int) -> int:
    """About four characters per token for English text and code: good enough to flag rows over max_length."""
    return -(-chars // 4)
