"""The stand-in for Nova: a small, real model that runs on a CPU in milliseconds.

Why a real model and not canned answers: a local run must show the same story as the case study (the base model
rambles and leans to one label; SFT teaches it the labels and to answer with the label only; RFT sharpens it from
reward-Lambda scores), and every number a report shows must come from computation on the data.

* **Base model** (any prod path such as ``nova-lite-2/prod``): a deterministic zero-shot rule. It reads the
  candidate labels from the system prompt (upper-case tokens such as ``HQ`` or ``LQ_EDIT``), picks a favourite
  (the first label it read) for most questions and another label for a hash-chosen minority, and usually wraps it
  in a verbose sentence; only a hash-chosen few answers are terse. Exact match is therefore low and skewed.
* **Fine-tuned model** (an ``s3://`` escrow checkpoint): a softmax-linear model over hashed unigram and bigram
  features of the user text (``2**14`` buckets, numpy only). Its output vocabulary is the set of exact assistant
  responses seen in the SFT rows, so it answers tersely by construction once trained; SFT minimises cross-entropy
  with Adam, RFT applies a group-relative policy gradient with a KL penalty towards the starting weights.
* **Checkpoint**: ``model.npz`` (weights) and ``model.json`` (classes and provenance) under the emulated escrow
  bucket ``s3://customer-escrow-<account>-smtj-<id>/<job>/outputs/checkpoints/``.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reward_lambda.labels import DEFAULT_LABELS

DIM = 1 << 14
FORMAT = "novaflow-standin-v1"
_TOKEN_RE = re.compile(r"[a-z0-9]+|</?[a-z]+>|[^\sa-z0-9]", re.IGNORECASE)
_LABEL_RE = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|\b[A-Z]{2,}[0-9]*\b")
_NOT_LABELS = frozenset(
    {
        "JSON",
        "ONLY",
        "ONE",
        "AND",
        "OR",
        "NOT",
        "THE",
        "YOU",
        "DO",
        "NO",
        "OF",
        "A",
        "AN",
        "IS",
        "IT",
        "TO",
        "IN",
        "ON",
        "WITH",
        "LABEL",
        "ANSWER",
        "HTML",
        "URL",
        "API",
    }
)


def tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN_RE.findall(text)]


def _hash(token: str) -> int:
    return zlib.crc32(token.encode("utf-8")) & (DIM - 1)


def feature_ids(text: str) -> np.ndarray:
    """Hashed unigram + bigram bucket ids of ``text`` (bucket 0 is the bias, always present)."""
    toks = tokens(text)
    grams = toks + [f"{a} {b}" for a, b in itertools.pairwise(toks)]
    ids = {0}
    ids.update(_hash(g) | 1 for g in grams)  # odd buckets: never collide with the bias
    return np.fromiter(sorted(ids), dtype=np.int64)


@dataclass
class Batch:
    """Rows of sparse binary features in CSR-like form (``cols`` with ``starts`` offsets)."""

    cols: np.ndarray
    starts: np.ndarray
    rows: np.ndarray

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> Batch:
        parts = [feature_ids(t) for t in texts]
        lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if parts else np.zeros(0, dtype=np.int64)
        cols = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        rows = np.repeat(np.arange(len(parts)), lengths)
        return cls(cols=cols, starts=starts.astype(np.int64), rows=rows)

    def __len__(self) -> int:
        return len(self.starts)

    def take(self, index: np.ndarray) -> Batch:
        parts = [
            self.cols[self.starts[i] : (self.starts[i + 1] if i + 1 < len(self.starts) else len(self.cols))]
            for i in index
        ]
        lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return Batch(
            cols=np.concatenate(parts), starts=starts.astype(np.int64), rows=np.repeat(np.arange(len(parts)), lengths)
        )


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class LinearPolicy:
    """Softmax-linear policy over a fixed vocabulary of exact responses."""

    classes: list[str]
    weights: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def empty(cls, classes: Sequence[str], meta: dict[str, Any] | None = None) -> LinearPolicy:
        return cls(list(classes), np.zeros((DIM, len(classes)), dtype=np.float64), dict(meta or {}))

    def logits(self, batch: Batch) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros((0, len(self.classes)))
        return np.add.reduceat(self.weights[batch.cols], batch.starts, axis=0)

    def probs(self, batch: Batch, temperature: float = 1.0) -> np.ndarray:
        return softmax(self.logits(batch) / max(temperature, 1e-6))

    def gradient(self, batch: Batch, row_grads: np.ndarray) -> np.ndarray:
        """d(sum_i row_grads[i] . logits[i]) / dW as a dense (DIM, C) array."""
        grad = np.zeros_like(self.weights)
        for c in range(len(self.classes)):
            grad[:, c] = np.bincount(batch.cols, weights=row_grads[batch.rows, c], minlength=DIM)
        return grad

    def answer(self, user_texts: Sequence[str]) -> list[str]:
        if not user_texts:
            return []
        best = self.logits(Batch.from_texts(user_texts)).argmax(axis=1)
        return [self.classes[i] for i in best]

    # -- checkpoint ------------------------------------------------------------------------------------
    def to_files(self) -> dict[str, bytes]:
        buf = io.BytesIO()
        np.savez_compressed(buf, weights=self.weights.astype(np.float32))
        meta = {"format": FORMAT, "classes": self.classes, "dim": DIM, **self.meta}
        return {"model.npz": buf.getvalue(), "model.json": json.dumps(meta, indent=2, sort_keys=True).encode()}

    @classmethod
    def from_files(cls, npz: bytes, meta_json: bytes) -> LinearPolicy:
        meta = json.loads(meta_json)
        if meta.get("format") != FORMAT or meta.get("dim") != DIM:
            raise ValueError(f"not a {FORMAT} checkpoint with dim {DIM}: {meta.get('format')!r}")
        with np.load(io.BytesIO(npz)) as data:
            weights = data["weights"].astype(np.float64)
        classes = meta.pop("classes")
        meta.pop("format", None)
        meta.pop("dim", None)
        return cls(classes, weights, meta)


class Adam:
    """Adam on the dense weight matrix (the recipe's lr is scaled: recipes are tuned for billions of weights)."""

    def __init__(self, shape: tuple[int, ...], lr: float, beta1: float = 0.9, beta2: float = 0.95) -> None:
        self.lr, self.b1, self.b2 = lr, beta1, beta2
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.t = 0

    def step(self, weights: np.ndarray, grad: np.ndarray, lr: float | None = None) -> None:
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * grad
        self.v = self.b2 * self.v + (1 - self.b2) * grad * grad
        m_hat = self.m / (1 - self.b1**self.t)
        v_hat = self.v / (1 - self.b2**self.t)
        weights -= (self.lr if lr is None else lr) * m_hat / (np.sqrt(v_hat) + 1e-8)


# -- the base model ----------------------------------------------------------------------------------------
def labels_from_system(system: str) -> list[str]:
    """Candidate labels named in a system prompt, in order of appearance (DEFAULT_LABELS when none)."""
    found: list[str] = []
    for match in _LABEL_RE.findall(system or ""):
        if match not in _NOT_LABELS and match not in found:
            found.append(match)
    return found or list(DEFAULT_LABELS)


_VERBOSE = (
    "Looking at this question, I would classify it as {label}. The post explains the problem and what was tried.",
    "This looks like {label} to me, because of how the question is phrased and formatted.",
    "Based on the title and the body, my assessment is {label}; it could be improved with more detail.",
)


_GENERIC = (
    "Let me think about this step by step. The question mentions {guess}, so my answer is {guess}.",
    "Good question! Based on what you wrote, I would say {guess}, although more context would help.",
    "Here is what I found: {guess}. Let me know if you need a longer explanation.",
)


def names_labels(system: str) -> bool:
    """Whether a system prompt names a label set (two or more label-like words), as the case study's does."""
    return sum(1 for m in dict.fromkeys(_LABEL_RE.findall(system or "")) if m not in _NOT_LABELS) >= 2


def base_answer(system: str, user: str) -> str:
    """The zero-shot rule of the base model: verbose, and leaning to the first label it read.

    Without a label set in the system prompt (a team's own free-form task) it guesses by copying a word or number
    of the question - the last number when there is one - and usually wraps the guess in a chatty sentence.
    """
    if not names_labels(system):
        return generic_answer(user)
    labels = labels_from_system(system)
    h = zlib.crc32(user.encode("utf-8"))
    label = labels[0] if h % 100 >= 20 else labels[(h // 100) % len(labels)]
    if h % 1000 < 150:
        return label
    return _VERBOSE[(h // 7) % len(_VERBOSE)].format(label=label)


def generic_answer(user: str) -> str:
    h = zlib.crc32(user.encode("utf-8"))
    numbers = re.findall(r"\d+(?:\.\d+)?", user)
    words = [w for w in re.findall(r"[A-Za-z][\w-]*", user) if len(w) > 3]
    guess = numbers[-1] if numbers else (words[(h // 13) % len(words)] if words else "I am not sure")
    if h % 1000 < 150:
        return guess
    return _GENERIC[(h // 7) % len(_GENERIC)].format(guess=guess)


def is_base_model(model_name_or_path: str | None) -> bool:
    return not (model_name_or_path or "").startswith("s3://")


# -- the continued-pre-training model ---------------------------------------------------------------------
LM_FORMAT = "novaflow-standin-lm-v1"
LM_VOCAB = 512
UNKNOWN = "<unk>"


@dataclass
class CorpusModel:
    """A bigram language model of a corpus, on top of the base model: what continued pre-training leaves.

    CPT teaches a model the domain's language, not a task, so this model answers a question as the base model
    does and then continues in the corpus's words (greedy bigram decoding from the question's last known token).
    ``vocab`` holds the corpus's most frequent tokens (plus ``<unk>``); ``weights[i, j]`` is the logit of token
    ``j`` following token ``i``.
    """

    vocab: list[str]
    weights: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_corpus(cls, texts: Sequence[str], size: int = LM_VOCAB) -> CorpusModel:
        counts: dict[str, int] = {}
        for text in texts:
            for token in tokens(text):
                counts[token] = counts.get(token, 0) + 1
        common = sorted(counts, key=lambda t: (-counts[t], t))[: size - 1]
        vocab = [UNKNOWN, *common]
        return cls(vocab, np.zeros((len(vocab), len(vocab)), dtype=np.float64))

    def ids(self, text: str) -> np.ndarray:
        index = {t: i for i, t in enumerate(self.vocab)}
        return np.fromiter((index.get(t, 0) for t in tokens(text)), dtype=np.int64)

    def bigrams(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        prev, nxt = [], []
        for text in texts:
            ids = self.ids(text)
            prev.append(ids[:-1])
            nxt.append(ids[1:])
        if not prev:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(prev), np.concatenate(nxt)

    def cross_entropy(self, prev: np.ndarray, nxt: np.ndarray) -> float:
        """Mean negative log-likelihood per token (nats) of the bigrams."""
        if len(prev) == 0:
            return 0.0
        probs = softmax(self.weights[prev])
        return float(-np.log(probs[np.arange(len(prev)), nxt] + 1e-12).mean())

    def continuation(self, text: str, length: int = 5) -> str:
        known = [i for i in self.ids(text) if i != 0]
        if not known:
            return ""
        current, words = int(known[-1]), []
        for _ in range(length):
            row = self.weights[current].copy()
            row[0] = -np.inf
            current = int(row.argmax())
            words.append(self.vocab[current])
        return " ".join(words)

    def answer(self, system: str, user: str) -> str:
        return f"{base_answer(system, user)} {self.continuation(user)}".strip()

    def to_files(self) -> dict[str, bytes]:
        buf = io.BytesIO()
        np.savez_compressed(buf, weights=self.weights.astype(np.float32))
        meta = {"format": LM_FORMAT, "vocab": self.vocab, **self.meta}
        return {"model.npz": buf.getvalue(), "model.json": json.dumps(meta, indent=2, sort_keys=True).encode()}

    @classmethod
    def from_files(cls, npz: bytes, meta_json: bytes) -> CorpusModel:
        meta = json.loads(meta_json)
        if meta.get("format") != LM_FORMAT:
            raise ValueError(f"not a {LM_FORMAT} checkpoint: {meta.get('format')!r}")
        with np.load(io.BytesIO(npz)) as data:
            weights = data["weights"].astype(np.float64)
        vocab = meta.pop("vocab")
        meta.pop("format", None)
        return cls(vocab, weights, meta)


def minibatch_steps(
    rng: np.random.Generator, rows: int, per_step: int, steps: int
) -> Iterator[tuple[int, np.ndarray, float]]:
    """(step, the rows of the step, its start time) for every emulated trainer: shuffled epochs, reshuffled when a
    step would run past the end of one, so each step takes a full batch. The draws from ``rng`` happen in this order
    in every trainer, which keeps an emulated run reproducible from its seed."""
    order, cursor = rng.permutation(rows), 0
    for step in range(1, steps + 1):
        started = time.perf_counter()
        if cursor + per_step > len(order):
            order, cursor = rng.permutation(rows), 0
        take = order[cursor : cursor + per_step]
        cursor += len(take)
        yield step, take, started
