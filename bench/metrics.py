"""Benchmark: novaflow's gen_qa engine vs the reference stack lighteval 0.10 uses, on the same pairs.

Reference: three single-type ``rouge_score`` scorers, ``nltk.scores.f_measure`` on token sets, the HELM normalizer,
``sacrebleu`` with lighteval's reference layout, and lighteval's 1000-draw BLEU bootstrap re-running sacrebleu per
resample. Prints times, the speed-up and the largest absolute difference (must be <= 1e-9).

    python bench/metrics.py [--pairs 10000] [--bootstrap-pairs 500] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from novaflow.evaluation.bleu import NovaBleu, mean_stderr
from novaflow.evaluation.metrics import SAMPLE_METRICS, aggregate, sample_metric_columns
from novaflow.evaluation.reference import ReferenceMetrics

VOCAB = (
    "the a an of to in is was for on that with as it by at from this be are or which HQ LQ_EDIT LQ_CLOSE "
    "Python code error function value list dict 3.14 42 $1,000 don't U.S.A. café naïve résumé -5 1e3 "
    "answer question data model train loss step, step. (see) [x] {y} #tag @user"
).split()


def make_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    rnd = random.Random(seed)
    pairs = []
    for _ in range(n):
        kind = rnd.random()
        length = rnd.randint(1, 3) if kind < 0.3 else rnd.randint(5, 60) if kind < 0.9 else rnd.randint(100, 200)
        gold = [rnd.choice(VOCAB) for _ in range(length)]
        r = rnd.random()
        if r < 0.3:
            pred = list(gold)
        elif r < 0.7:
            pred = [w if rnd.random() < 0.7 else rnd.choice(VOCAB) for w in gold]
            pred = pred[: max(1, int(len(pred) * rnd.uniform(0.6, 1.3)))]
        else:
            pred = [rnd.choice(VOCAB) for _ in range(rnd.randint(1, 80))]
        pairs.append((" ".join(gold), " ".join(pred) + rnd.choice(["", ".", " ", "\n"])))
    return pairs


def reference_run(pairs: list[tuple[str, str]], ref: ReferenceMetrics) -> dict[str, float]:
    per = [ref.sample(g, p) for g, p in pairs]
    out: dict[str, float] = {}
    for name in SAMPLE_METRICS:
        values = [s[name] for s in per]
        out[name] = float(np.mean(values))
        out[f"{name}_stderr"] = mean_stderr(values)
    out["bleu"] = ref.bleu([g for g, _ in pairs], [p for _, p in pairs])
    return out


def novaflow_run(pairs: list[tuple[str, str]]) -> dict[str, float]:
    golds, preds = [g for g, _ in pairs], [p for _, p in pairs]
    columns = sample_metric_columns(golds, preds)
    out: dict[str, float] = {}
    for name in SAMPLE_METRICS:
        out[name], out[f"{name}_stderr"] = aggregate(columns[name])  # type: ignore[assignment]
    out["bleu"] = NovaBleu(golds, preds).value()
    return out


def timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def max_diff(a: dict[str, float], b: dict[str, float]) -> float:
    return max(abs(a[k] - b[k]) for k in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--bootstrap-pairs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pairs = make_pairs(args.pairs, args.seed)
    ref = ReferenceMetrics()
    print(f"pairs: {len(pairs)}  (f1 via {'nltk' if ref.uses_nltk else 'the nltk formula; nltk not installed'})")

    ours, t_ours = timed(novaflow_run, pairs)
    theirs, t_ref = timed(reference_run, pairs, ref)
    per_ours = sample_metric_columns([g for g, _ in pairs], [p for _, p in pairs])
    per_ref = [ref.sample(g, p) for g, p in pairs]
    per_diff = max(abs(per_ours[m][i] - s[m]) for i, s in enumerate(per_ref) for m in SAMPLE_METRICS)
    print(f"{'workload':<46}{'reference s':>12}{'novaflow s':>12}{'speed-up':>10}{'max |diff|':>12}")
    print(
        f"{'sample metrics + aggregation + bleu':<46}{t_ref:>12.3f}{t_ours:>12.3f}{t_ref / t_ours:>9.1f}x"
        f"{max(max_diff(ours, theirs), per_diff):>12.1e}"
    )

    sub = pairs[: args.bootstrap_pairs]
    golds, preds = [g for g, _ in sub], [p for _, p in sub]
    se_ours, tb_ours = timed(lambda: NovaBleu(golds, preds).stderr())
    se_ref, tb_ref = timed(ref.bleu_stderr, golds, preds)
    print(
        f"{f'bleu_stderr bootstrap, 1000 draws, n={len(sub)}':<46}{tb_ref:>12.3f}{tb_ours:>12.3f}"
        f"{tb_ref / tb_ours:>9.1f}x{abs(se_ours - se_ref):>12.1e}"
    )
    total_ref, total_ours = t_ref + tb_ref, t_ours + tb_ours
    print(f"{'total':<46}{total_ref:>12.3f}{total_ours:>12.3f}{total_ref / total_ours:>9.1f}x")
    ok = max(max_diff(ours, theirs), per_diff, abs(se_ours - se_ref)) <= 1e-9
    print(f"equal within 1e-9: {ok}; >= 3x faster: {total_ref / total_ours >= 3}")


if __name__ == "__main__":
    main()
