"""A summary-style grader written as a full Lambda handler (the Nova RFT contract, no novaflow wrapper).

The reward is the word-overlap F1 between the answer and the reference, minus a penalty for every word beyond
``1.5x`` the reference's length, so the model is rewarded for covering the reference without padding. Because this
file defines ``lambda_handler`` itself, novaflow deploys it as is: it must read the event shapes itself (the
reference answer under ``metadata`` or at the top level) and answer ``[{id, aggregate_reward_score,
metrics_list}]`` for every sample.

    novaflow run end-to-end --local --data summaries.jsonl --reward examples/rewards/length_penalized.py
"""

import re

PENALTY_PER_WORD = 0.02
ALLOWANCE = 1.5


def words(text):
    return re.findall(r"[a-z0-9]+", str(text).lower())


def f1(answer, reference):
    a, r = set(answer), set(reference)
    overlap = len(a & r)
    if not overlap:
        return 0.0
    precision, recall = overlap / len(a), overlap / len(r)
    return 2 * precision * recall / (precision + recall)


def grade_one(sample):
    messages = sample.get("messages") or []
    answer = messages[-1].get("content", "") if messages and messages[-1].get("role") == "assistant" else ""
    if isinstance(answer, list):
        answer = "".join(part.get("text", "") for part in answer if isinstance(part, dict))
    reference = (sample.get("metadata") or {}).get("reference_answer", sample.get("reference_answer", ""))
    answer_words, reference_words = words(answer), words(reference)
    overlap = f1(answer_words, reference_words)
    excess = max(0.0, len(answer_words) - ALLOWANCE * len(reference_words))
    penalty = min(overlap, PENALTY_PER_WORD * excess)
    return {
        "id": sample.get("id"),
        "aggregate_reward_score": overlap - penalty,
        "metrics_list": [
            {"name": "f1", "value": overlap, "type": "Reward"},
            {"name": "length_penalty", "value": penalty, "type": "Metric"},
        ],
    }


def lambda_handler(event, context):
    return [grade_one(sample) for sample in event]
