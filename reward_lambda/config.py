"""Grader configuration from environment variables (the only knob a deployed Lambda has).

A bad value is a deployment bug, not a bad sample, so it raises :class:`ConfigurationError` on the first
invocation instead of silently grading everything with a default.

Variables (all optional):

* ``REWARD_LABELS`` - comma-separated label set (default ``HQ,LQ_EDIT,LQ_CLOSE``).
* ``REWARD_CORRECT`` / ``REWARD_INCORRECT`` - rewards for a right / wrong label (default ``1`` / ``-1``).
  The incorrect value is also the minimum reward that invalid samples get.
* ``REWARD_VERBOSE_PENALTY`` - subtracted when the answer is longer than ``REWARD_VERBOSE_CHARS``
  (defaults ``0`` and ``32``); the score never leaves ``[incorrect, correct]``.
* ``REWARD_MAX_BATCH`` - largest batch accepted (default 4096 samples).
* ``REWARD_MAX_TEXT_CHARS`` - longest answer graded (default 100,000 characters; longer is an invalid sample).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from reward_lambda.labels import DEFAULT_LABELS

MAX_BATCH_DEFAULT = 4096
MAX_TEXT_CHARS_DEFAULT = 100_000
ENV_VARS = (
    "REWARD_LABELS",
    "REWARD_CORRECT",
    "REWARD_INCORRECT",
    "REWARD_VERBOSE_PENALTY",
    "REWARD_VERBOSE_CHARS",
    "REWARD_MAX_BATCH",
    "REWARD_MAX_TEXT_CHARS",
)


class ConfigurationError(ValueError):
    """An environment variable of the reward Lambda is malformed (names the variable and the value)."""


@dataclass(frozen=True)
class RewardConfig:
    """How answers are scored; immutable so one config can be shared by every sample of a batch."""

    labels: tuple[str, ...] = DEFAULT_LABELS
    correct: float = 1.0
    incorrect: float = -1.0
    verbose_penalty: float = 0.0
    verbose_chars: int = 32
    max_batch: int = MAX_BATCH_DEFAULT
    max_text_chars: int = MAX_TEXT_CHARS_DEFAULT

    @property
    def minimum(self) -> float:
        return min(self.correct, self.incorrect)

    @property
    def maximum(self) -> float:
        return max(self.correct, self.incorrect)

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce this config on a deployed function."""
        return {
            "REWARD_LABELS": ",".join(self.labels),
            "REWARD_CORRECT": _fmt(self.correct),
            "REWARD_INCORRECT": _fmt(self.incorrect),
            "REWARD_VERBOSE_PENALTY": _fmt(self.verbose_penalty),
            "REWARD_VERBOSE_CHARS": str(self.verbose_chars),
            "REWARD_MAX_BATCH": str(self.max_batch),
            "REWARD_MAX_TEXT_CHARS": str(self.max_text_chars),
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RewardConfig:
        """Read the ``REWARD_*`` variables of ``env`` (default ``os.environ``)."""
        env = os.environ if env is None else env
        default = cls()
        labels = default.labels
        raw_labels = env.get("REWARD_LABELS")
        if raw_labels is not None:
            labels = tuple(p.strip() for p in raw_labels.split(",") if p.strip())
            if not labels:
                raise ConfigurationError(f"REWARD_LABELS={raw_labels!r} names no label; give e.g. HQ,LQ_EDIT")
            if len(set(labels)) != len(labels):
                raise ConfigurationError(f"REWARD_LABELS={raw_labels!r} repeats a label")
        config = cls(
            labels=labels,
            correct=_float(env, "REWARD_CORRECT", default.correct),
            incorrect=_float(env, "REWARD_INCORRECT", default.incorrect),
            verbose_penalty=_float(env, "REWARD_VERBOSE_PENALTY", default.verbose_penalty),
            verbose_chars=_int(env, "REWARD_VERBOSE_CHARS", default.verbose_chars),
            max_batch=_int(env, "REWARD_MAX_BATCH", default.max_batch),
            max_text_chars=_int(env, "REWARD_MAX_TEXT_CHARS", default.max_text_chars),
        )
        if config.correct <= config.incorrect:
            raise ConfigurationError(
                f"REWARD_CORRECT ({_fmt(config.correct)}) must be greater than REWARD_INCORRECT "
                f"({_fmt(config.incorrect)})"
            )
        if config.verbose_penalty < 0:
            raise ConfigurationError(f"REWARD_VERBOSE_PENALTY must be >= 0, got {_fmt(config.verbose_penalty)}")
        for name, value in (("REWARD_MAX_BATCH", config.max_batch), ("REWARD_MAX_TEXT_CHARS", config.max_text_chars)):
            if value < 1:
                raise ConfigurationError(f"{name} must be >= 1, got {value}")
        if config.verbose_chars < 0:
            raise ConfigurationError(f"REWARD_VERBOSE_CHARS must be >= 0, got {config.verbose_chars}")
        return config


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigurationError(f"{name}={raw!r} must be a finite number")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not an integer") from None
