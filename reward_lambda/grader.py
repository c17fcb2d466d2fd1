"""The default grader for label tasks: +correct for the right label, +incorrect otherwise.

Both event shapes of the Nova contract are read (reference answer under ``metadata`` or at the top level; the
rollout as a string or a list of text parts). A sample that cannot be graded is not an exception: it gets the
minimum reward, an ``invalid_sample`` metric and a reason, because one broken rollout must not fail the whole RFT
step - but the reason is returned (and logged by the handler) so the problem stays visible.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reward_lambda.config import RewardConfig
from reward_lambda.labels import extract_label

# Keys under which a dict-shaped reference answer may carry the label, in order of preference.
REFERENCE_KEYS = ("label", "answer", "reference_answer", "class", "category")
METRIC_NAMES = ("correct", "label_present", "response_length", "verbose_penalty", "invalid_sample")


class InvalidSample(ValueError):
    """The sample cannot be graded; the message is the reason reported for it."""


@dataclass(frozen=True)
class Grade:
    """The grade of one sample, with the reason when it was invalid (never sent back, only logged)."""

    id: Any
    score: float
    correct: int
    label_present: int
    response_length: int
    verbose_penalty: float
    invalid_reason: str | None = None

    def to_output(self) -> dict[str, Any]:
        """The contract's output object: ``{id, aggregate_reward_score, metrics_list}``."""
        values = (
            self.correct,
            self.label_present,
            self.response_length,
            self.verbose_penalty,
            0 if self.invalid_reason is None else 1,
        )
        return {
            "id": self.id,
            "aggregate_reward_score": self.score,
            "metrics_list": [
                {"name": name, "value": value, "type": "Metric"}
                for name, value in zip(METRIC_NAMES, values, strict=True)
            ],
        }


def sample_id(sample: object) -> Any:
    """The id to echo: the sample's own (any JSON value), or None when absent or not representable in JSON."""
    if not isinstance(sample, Mapping):
        return None
    value = sample.get("id")
    if value is None or isinstance(value, (str, bool, int)):
        return value
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return value


def invalid_grade(sid: Any, reason: str, config: RewardConfig, response_length: int = 0) -> Grade:
    return Grade(sid, config.minimum, 0, 0, response_length, 0.0, reason)


def grade_sample(sample: object, config: RewardConfig) -> Grade:
    """Grade one sample; never raises for bad input (see module docstring)."""
    sid = sample_id(sample)
    try:
        response = rollout_text(sample, config)
        gold = reference_label(sample, config)
    except InvalidSample as exc:
        return invalid_grade(sid, str(exc), config)
    length = len(response)
    if length > config.max_text_chars:
        return invalid_grade(
            sid,
            f"assistant answer has {length} characters, over the limit of "
            f"{config.max_text_chars} (REWARD_MAX_TEXT_CHARS)",
            config,
            length,
        )
    predicted = extract_label(response, config.labels)
    correct = predicted == gold
    score = config.correct if correct else config.incorrect
    penalty = config.verbose_penalty if length > config.verbose_chars else 0.0
    score = max(config.minimum, min(config.maximum, score - penalty))
    return Grade(sid, score, int(correct), int(predicted is not None), length, penalty)


def rollout_text(sample: object, config: RewardConfig | None = None) -> str:
    """The text of the last (assistant) message: a string, or the concatenated text parts of a list."""
    if not isinstance(sample, Mapping):
        raise InvalidSample(f"sample is a {type(sample).__name__}, not an object")
    messages = sample.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidSample("sample has no 'messages' list")
    last = messages[-1]
    if not isinstance(last, Mapping):
        raise InvalidSample(f"last message is a {type(last).__name__}, not an object")
    if last.get("role") != "assistant":
        raise InvalidSample(f"last message has role {_short(last.get('role'))}, not 'assistant' (no rollout)")
    return content_text(last.get("content"))


def content_text(content: object) -> str:
    """Text of a message ``content``: a string, or a list of ``{"type": "text", "text": ...}`` / ``{"text": ...}``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for i, part in enumerate(content):
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping):
                kind = part.get("type", "text")
                text = part.get("text")
                if kind == "text" and isinstance(text, str):
                    parts.append(text)
                elif kind == "text":
                    raise InvalidSample(f"assistant content part {i} has no string 'text'")
            else:
                raise InvalidSample(f"assistant content part {i} is a {type(part).__name__}")
        return "".join(parts)
    if content is None:
        raise InvalidSample("assistant message has no 'content'")
    raise InvalidSample(f"assistant content is a {type(content).__name__}, not a string or a list of text parts")


def reference_label(sample: object, config: RewardConfig) -> str:
    """The gold label: ``metadata.reference_answer`` first, then the top-level ``reference_answer``."""
    assert isinstance(sample, Mapping)  # rollout_text checked it
    reference = raw_reference(sample)
    if reference is None:
        raise InvalidSample("no reference_answer (looked in metadata.reference_answer and reference_answer)")
    if isinstance(reference, Mapping):
        found = next((reference[k] for k in REFERENCE_KEYS if isinstance(reference.get(k), str)), None)
        if found is None:
            raise InvalidSample(f"reference_answer object has none of the keys {', '.join(REFERENCE_KEYS)} as a string")
        reference = found
    if not isinstance(reference, str) or not reference.strip():
        raise InvalidSample(f"reference_answer is {_short(reference)}, not a non-empty string or object")
    label = extract_label(reference, config.labels)
    if label is None:
        raise InvalidSample(
            f"reference_answer {_short(reference)} names none (or several) of the labels {', '.join(config.labels)}"
        )
    return label


def raw_reference(sample: Mapping[str, Any]) -> object:
    """The reference answer as the dataset gave it: ``metadata.reference_answer`` first, then the top level."""
    metadata = sample.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            metadata = None
    reference = metadata.get("reference_answer") if isinstance(metadata, Mapping) else None
    return sample.get("reference_answer") if reference is None else reference


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
