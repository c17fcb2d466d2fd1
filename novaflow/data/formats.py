"""Constants of the Nova dataset formats: file names, the schema version, reserved keywords, media limits.

Kept apart from the transforms so the CLI, the validators and the row-count bounds agree on one spelling of every
name. Which formats exist and which model may use them is the catalog's (:mod:`novaflow.catalog`).
"""

from __future__ import annotations

import re

from novaflow.catalog import DataFormat

SCHEMA_VERSION = "bedrock-conversation-2024"
DEFAULT_RFT_SYSTEM = "You are a helpful AI assistant."


OUTPUT_FILES: dict[DataFormat, str] = {
    DataFormat.EVAL: "gen_qa.jsonl",  # AWS requires exactly this single file name for gen_qa BYOD
    DataFormat.SFT: "train.jsonl",
    DataFormat.RFT: "rft.jsonl",
    DataFormat.CPT: "cpt.jsonl",
    DataFormat.DPO: "train.jsonl",
    DataFormat.MTRL: "train.jsonl",
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
"""Compared case-insensitively: the strictest of the two published validators, so a row that passes here passes both
the Forge SDK and the current AWS sample validator."""

RESERVED_RE = re.compile("|".join(re.escape(k) for k in RESERVED_KEYWORDS), re.IGNORECASE)
RESERVED_PATTERN = "(?i)" + "|".join(re.escape(k) for k in RESERVED_KEYWORDS)
"""The same rule as an RE2 pattern for pyarrow's vectorized ``match_substring_regex``."""

IMAGE_FORMATS = {1: frozenset({"gif", "jpeg", "png", "webp"}), 2: frozenset({"png", "jpeg", "gif"})}
VIDEO_FORMATS = {1: frozenset({"mov", "mkv", "mp4", "webm"}), 2: frozenset({"mov", "mkv", "mp4"})}
MAX_IMAGES_PER_MESSAGE = 10
MAX_VIDEOS_PER_MESSAGE = 1
S3_KEY_RE = re.compile(r"^[\w\-/\.]+$")


def estimate_tokens(chars: int) -> int:
    """About four characters per token for English text and code: good enough to flag rows over max_length."""
    return -(-chars // 4)
