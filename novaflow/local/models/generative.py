"""The stand-in for free-form answers: retrieval over the SFT pairs, small edit programs, and a learned scorer.

A label classifier can only repeat answers it has seen; a team's own task (arithmetic, extraction, formatting)
needs answers nobody wrote down. This model explains every SFT answer by the small programs that reproduce it
from its prompt, and answers a new prompt by running its nearest neighbours' programs on it:

* **Retrieval**: prompts are compared by TF-IDF cosine over hashed word and word-pair features of their *shape*
  (numbers replaced by ``<n>``), so "What is 12 + 7?" finds the other additions, not the questions that share a 12.
* **Programs** (derived from each SFT pair, kept when they reproduce the answer exactly): the literal answer; a
  number computed from the prompt's numbers (copy, ``+``, ``-``, ``*``, ``/``, the sum of all, counted from the
  start or the end); a span of the prompt between two anchor words; a literal template around such a number.
* **Scorer**: each candidate answer gets features - the neighbours' similarity-weighted vote, the vote by program
  kind, how many SFT pairs the program explains, the classifier's log-probability when the answer set is small
  enough for one, and a hashed indicator of the program itself. A linear softmax over the candidates is trained
  by SFT (cross-entropy of the true answer among the candidates of its leave-one-out neighbours, Adam) and by RFT
  (group-relative policy gradient on the rewards the team's Lambda returns).

It is deterministic for a given input and runs in milliseconds; it is not a language model: it cannot write an
answer that no program of a neighbour produces, and what it "knows" is only the SFT pairs.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from novaflow.local.models.classifier import Adam, Batch, LinearPolicy, feature_ids, minibatch_steps, softmax

FORMAT = "novaflow-standin-generative-v1"
NEIGHBOURS = 10
MAX_NUMBERS = 8
MAX_PROGRAMS = 24
CLASSIFIER_MAX_CLASSES = 200
"""Answer sets up to this size also get the hashed-feature classifier as a scorer feature (and its top answers)."""
CLASSIFIER_CANDIDATES = 3
PROGRAM_BUCKETS = 1 << 12
DENSE = ("vote", "top", "lit", "num", "span", "tmpl", "support", "clf", "not_class")
OFFSET = 16
DIM = OFFSET + PROGRAM_BUCKETS
PRIOR = {"vote": 2.0, "support": 1.0, "clf": 0.5}
"""Scorer weights before training: follow the neighbours' vote, prefer programs that explain many pairs."""

_TOKEN = re.compile(r"\d+(?:\.\d+)?|\w+|[^\w\s]")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
Program = tuple[Any, ...]


@dataclass(frozen=True)
class Parsed:
    """A prompt's tokens (with character offsets) and its numbers, in order of appearance."""

    text: str
    tokens: tuple[tuple[str, int, int], ...]
    numbers: tuple[float, ...]


def parse(text: str) -> Parsed:
    tokens = tuple((m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text))
    numbers = tuple(float(t) for t, _, _ in tokens if _NUMBER.fullmatch(t))[:MAX_NUMBERS]
    return Parsed(text, tokens, numbers)


def shape(text: str) -> str:
    """The retrieval key: lower-cased tokens with every number replaced by ``<n>``."""
    return " ".join("<n>" if _NUMBER.fullmatch(t) else t.lower() for t, _, _ in parse(text).tokens)


# -- programs ----------------------------------------------------------------------------------------------
def number_text(value: float, decimals: int) -> str | None:
    """``value`` written with ``decimals`` places (an integer answer must come out integral)."""
    if not math.isfinite(value):
        return None
    if decimals == 0:
        return str(round(value)) if abs(value - round(value)) < 1e-9 else None
    return f"{value:.{decimals}f}"


def _index_forms(i: int, n: int) -> tuple[int, int]:
    return i, i - n


def numeric_programs(target: str, prompt: Parsed) -> list[Program]:
    """Programs computing ``target`` (a number as written) from the prompt's numbers."""
    if not re.fullmatch(r"-?\d+(?:\.\d+)?", target):
        return []
    decimals = len(target.split(".")[1]) if "." in target else 0
    nums, n = prompt.numbers, len(prompt.numbers)
    found: list[Program] = []

    def hit(value: float) -> bool:
        return number_text(value, decimals) == target

    for i in range(n):
        if hit(nums[i]):
            found += [("num", "copy", a, None, decimals) for a in _index_forms(i, n)]
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            a, b = nums[i], nums[j]
            results = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b if b else math.nan}
            for op, value in results.items():
                if op in ("add", "mul") and j < i:
                    continue  # commutative: one order is enough
                if hit(value):
                    found += [
                        ("num", op, x, y, decimals) for x, y in zip(_index_forms(i, n), _index_forms(j, n), strict=True)
                    ]
    if n >= 3 and hit(sum(nums)):
        found.append(("num", "sum", None, None, decimals))
    return found


def derive(prompt: Parsed, response: str) -> list[Program]:
    """Every program (up to :data:`MAX_PROGRAMS`) that turns ``prompt`` into exactly ``response``."""
    answer = response.strip()
    programs: list[Program] = [("lit", answer)]
    programs += numeric_programs(answer, prompt)
    at = prompt.text.find(answer) if answer else -1
    if at >= 0:
        before = [t for t, _, end in prompt.tokens if end <= at]
        after = [t for t, start, _ in prompt.tokens if start >= at + len(answer)]
        programs.append(("span", before[-1].lower() if before else "^", after[0].lower() if after else "$"))
    for match in _NUMBER.finditer(answer):
        prefix, suffix = answer[: match.start()], answer[match.end() :]
        if prefix or suffix:
            programs += [("tmpl", prefix, suffix, p) for p in numeric_programs(match.group(), prompt)]
    return list(dict.fromkeys(programs))[:MAX_PROGRAMS]


def run_program(program: Program, prompt: Parsed) -> str | None:
    """The answer ``program`` gives for ``prompt``, or None when it does not apply."""
    kind = program[0]
    if kind == "lit":
        return str(program[1])
    if kind == "num":
        _, op, i, j, decimals = program
        nums = prompt.numbers
        if op == "sum":
            return number_text(sum(nums), decimals) if len(nums) >= 3 else None
        if not -len(nums) <= i < len(nums) or (j is not None and not -len(nums) <= j < len(nums)):
            return None
        a = nums[i]
        if op == "copy":
            return number_text(a, decimals)
        b = nums[j]
        value = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b if b else math.nan}[op]
        return number_text(value, decimals)
    if kind == "span":
        _, left, right = program
        tokens = prompt.tokens
        start = 0
        if left != "^":
            anchor = next((k for k, (t, _, _) in enumerate(tokens) if t.lower() == left), None)
            if anchor is None:
                return None
            start = tokens[anchor][2]
        end = len(prompt.text)
        if right != "$":
            stop = next((s for t, s, _ in tokens if s >= start and t.lower() == right and s > start), None)
            if stop is None:
                return None
            end = stop
        text = prompt.text[start:end].strip()
        return text or None
    if kind == "tmpl":
        _, prefix, suffix, inner = program
        number = run_program(inner, prompt)
        return None if number is None else f"{prefix}{number}{suffix}"
    raise ValueError(f"unknown program {program!r}")


def _bucket(program: Program) -> int:
    return OFFSET + zlib.crc32(repr(program).encode("utf-8")) % PROGRAM_BUCKETS


# -- retrieval ---------------------------------------------------------------------------------------------
class Index:
    """TF-IDF cosine retrieval over the prompts' shapes (hashed unigrams and bigrams)."""

    def __init__(self, prompts: Sequence[str]) -> None:
        self.ids = [feature_ids(shape(p)) for p in prompts]
        n = len(prompts)
        df = Counter(int(i) for ids in self.ids for i in ids)
        self.idf = {i: math.log((n + 1) / (c + 1)) + 1.0 for i, c in df.items()}
        postings: dict[int, list[int]] = {}
        for row, ids in enumerate(self.ids):
            for i in ids:
                postings.setdefault(int(i), []).append(row)
        self.postings = {i: np.asarray(rows, dtype=np.int64) for i, rows in postings.items()}
        self.norms = np.array([math.sqrt(sum(self.idf[int(i)] ** 2 for i in ids)) for ids in self.ids])

    def neighbours(self, text: str, k: int = NEIGHBOURS, exclude: int | None = None) -> list[tuple[int, float]]:
        """(row, cosine) of the ``k`` most similar prompts, best first (ties by row, so the order is stable)."""
        query = feature_ids(shape(text))
        scores = np.zeros(len(self.ids))
        norm = 0.0
        for i in query:
            weight = self.idf.get(int(i))
            if weight is None:
                continue
            scores[self.postings[int(i)]] += weight * weight
            norm += weight * weight
        if norm == 0.0:
            return []
        scores /= self.norms * math.sqrt(norm)
        if exclude is not None:
            scores[exclude] = -1.0
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]
        return [(int(r), float(scores[r])) for r in order if scores[r] > 0]


# -- the policy ----------------------------------------------------------------------------------------------
@dataclass
class Candidates:
    """A prompt's candidate answers and their sparse features (``cols``/``vals`` per candidate)."""

    texts: list[str]
    cols: list[np.ndarray]
    vals: list[np.ndarray]

    def logits(self, weights: np.ndarray) -> np.ndarray:
        return np.array([float(weights[c] @ v) for c, v in zip(self.cols, self.vals, strict=True)])

    def gradient(self, row_grad: np.ndarray, out: np.ndarray) -> None:
        """Add d(row_grad . logits)/dW to ``out``."""
        for g, c, v in zip(row_grad, self.cols, self.vals, strict=True):
            if g:
                np.add.at(out, c, g * v)


@dataclass
class GenerativePolicy:
    """SFT pairs + scorer weights (+ the classifier when the answer set is small); see the module docstring."""

    prompts: list[str]
    responses: list[str]
    weights: np.ndarray
    classifier: LinearPolicy | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._parsed = [parse(p) for p in self.prompts]
        self._programs = [derive(p, r) for p, r in zip(self._parsed, self.responses, strict=True)]
        self._support = Counter(p for programs in self._programs for p in programs)
        self._index = Index(self.prompts)
        self._log_n = math.log1p(len(self.prompts))

    @classmethod
    def untrained(
        cls, prompts: Sequence[str], responses: Sequence[str], meta: dict[str, Any] | None = None
    ) -> GenerativePolicy:
        """The model before SFT: the pairs indexed, prior scorer weights, no classifier yet."""
        weights = np.zeros(DIM)
        for name, value in PRIOR.items():
            weights[DENSE.index(name)] = value
        return cls(list(prompts), [r.strip() for r in responses], weights, None, dict(meta or {}))

    def explained_share(self) -> float:
        """Share of SFT pairs whose answer some non-literal program reproduces (what can generalise)."""
        return sum(any(p[0] != "lit" for p in ps) for ps in self._programs) / max(1, len(self._programs))

    def wants_classifier(self) -> bool:
        """A small answer set that programs mostly do not explain looks like labels: add the classifier.

        (Where programs explain the answers, a classifier trained on the same pairs would only add memorised
        answers to candidates that the leave-one-out SFT examples make it look better than it is.)
        """
        return len(set(self.responses)) <= CLASSIFIER_MAX_CLASSES and self.explained_share() < 0.5

    def candidates(self, text: str, exclude: int | None = None) -> Candidates:
        prompt = parse(text)
        neighbours = self._index.neighbours(text, exclude=exclude)
        total = sum(s for _, s in neighbours) or 1.0
        feats: dict[str, dict[int, float]] = {}
        for rank, (row, sim) in enumerate(neighbours):
            weight = sim / total
            seen: set[str] = set()
            for program in self._programs[row]:
                out = run_program(program, prompt)
                if not out:
                    continue
                f = feats.setdefault(out, {})
                if out not in seen:
                    seen.add(out)
                    f[0] = f.get(0, 0.0) + weight
                    if rank == 0:
                        f[1] = 1.0
                kind = DENSE.index(program[0])
                f[kind] = f.get(kind, 0.0) + weight
                support = math.log1p(self._support[program]) / self._log_n
                f[6] = max(f.get(6, 0.0), support)
                bucket = _bucket(program)
                f[bucket] = f.get(bucket, 0.0) + weight
        if self.classifier is not None:
            probs = self.classifier.probs(Batch.from_texts([text]))[0]
            index = {c: k for k, c in enumerate(self.classifier.classes)}
            for k in np.argsort(-probs, kind="stable")[:CLASSIFIER_CANDIDATES]:
                feats.setdefault(self.classifier.classes[int(k)], {})
            for out, f in feats.items():
                k = index.get(out)
                if k is None:
                    f[8] = 1.0
                else:
                    f[7] = math.log(float(probs[k]) + 1e-12)
        texts = sorted(feats)
        cols = [np.fromiter(feats[t], dtype=np.int64) for t in texts]
        vals = [np.fromiter(feats[t].values(), dtype=np.float64) for t in texts]
        return Candidates(texts, cols, vals)

    def answer(self, user_texts: Sequence[str]) -> list[str]:
        out = []
        for text in user_texts:
            cands = self.candidates(text)
            out.append(cands.texts[int(np.argmax(cands.logits(self.weights)))] if cands.texts else "")
        return out

    def probabilities(self, cands: Candidates, temperature: float = 1.0) -> np.ndarray:
        return softmax(cands.logits(self.weights)[None, :] / max(temperature, 1e-6))[0]

    # -- checkpoint ------------------------------------------------------------------------------------
    def to_files(self) -> dict[str, bytes]:
        buf = io.BytesIO()
        np.savez_compressed(buf, weights=self.weights)
        pairs = "".join(
            json.dumps({"prompt": p, "response": r}) + "\n" for p, r in zip(self.prompts, self.responses, strict=True)
        )
        meta = {"format": FORMAT, "dim": DIM, "classifier": self.classifier is not None, **self.meta}
        files = {
            "model.npz": buf.getvalue(),
            "model.json": json.dumps(meta, indent=2, sort_keys=True).encode(),
            "pairs.jsonl.gz": gzip.compress(pairs.encode("utf-8"), mtime=0),
        }
        if self.classifier is not None:
            clf = self.classifier.to_files()
            files.update({"classifier.npz": clf["model.npz"], "classifier.json": clf["model.json"]})
        return files

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> GenerativePolicy:
        meta = json.loads(files["model.json"])
        if meta.get("format") != FORMAT or meta.get("dim") != DIM:
            raise ValueError(f"not a {FORMAT} checkpoint with dim {DIM}: {meta.get('format')!r}")
        with np.load(io.BytesIO(files["model.npz"])) as data:
            weights = data["weights"].astype(np.float64)
        pairs = [json.loads(line) for line in gzip.decompress(files["pairs.jsonl.gz"]).decode("utf-8").splitlines()]
        classifier = None
        if meta.pop("classifier", False):
            classifier = LinearPolicy.from_files(files["classifier.npz"], files["classifier.json"])
        for key in ("format", "dim"):
            meta.pop(key, None)
        return cls([p["prompt"] for p in pairs], [p["response"] for p in pairs], weights, classifier, meta)


# -- training ------------------------------------------------------------------------------------------------
def sft_examples(policy: GenerativePolicy) -> tuple[list[tuple[Candidates, int]], int]:
    """(candidates of each SFT prompt from its *other* pairs, index of its true answer); and how many had none."""
    examples: list[tuple[Candidates, int]] = []
    unreachable = 0
    for row, (prompt, answer) in enumerate(zip(policy.prompts, policy.responses, strict=True)):
        cands = policy.candidates(prompt, exclude=row)
        if answer in cands.texts:
            examples.append((cands, cands.texts.index(answer)))
        else:
            unreachable += 1
    return examples, unreachable


def train_scorer(
    policy: GenerativePolicy,
    examples: Sequence[tuple[Candidates, int]],
    *,
    steps: int,
    batch: int,
    lr_at: Any,
    seed: int,
    beta1: float = 0.9,
    beta2: float = 0.95,
    on_step: Any = None,
) -> list[tuple[int, int, float]]:
    """Mini-batch cross-entropy of the true answer among its candidates (Adam); (step, epoch, loss) per step."""
    adam = Adam(policy.weights.shape, lr=0.0, beta1=beta1, beta2=beta2)
    rng = np.random.default_rng(seed)
    history = []
    for step, take, started in minibatch_steps(rng, len(examples), batch, steps):
        grad = np.zeros_like(policy.weights)
        loss = 0.0
        for k in take:
            cands, target = examples[int(k)]
            probs = policy.probabilities(cands)
            loss -= math.log(float(probs[target]) + 1e-12)
            row = probs.copy()
            row[target] -= 1.0
            cands.gradient(row, grad)
        loss /= max(1, len(take))
        lr = lr_at(step)
        adam.step(policy.weights, grad / max(1, len(take)), lr=lr)
        epoch = (step * batch) // max(1, len(examples))
        history.append((step, epoch, loss))
        if on_step is not None:
            on_step(step, epoch, lr, loss, time.perf_counter() - started)
    return history
