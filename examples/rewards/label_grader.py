"""The case study's grader as a team would write it: +1 for the right label, -1 otherwise.

A ``grade`` function is all novaflow needs: it wraps it in a Lambda handler that reads both event shapes of the
Nova RFT contract and gives a sample it cannot grade the minimum reward (``MIN_REWARD``) instead of failing the
batch. An answer counts when it names exactly one of the labels, whatever the case or punctuation
("**lq_edit**", "The answer is LQ_EDIT."); naming two labels is a hedge and gets the minimum.

    novaflow run end-to-end --local --reward examples/rewards/label_grader.py
"""

import re

LABELS = ("HQ", "LQ_EDIT", "LQ_CLOSE")
MIN_REWARD = -1.0


def named_labels(text):
    """The labels ``text`` names (longest first, so LQ_EDIT is not also read as a shorter label)."""
    found = set()
    upper = str(text).upper().replace("-", "_").replace(" ", "_")
    for label in sorted(LABELS, key=len, reverse=True):
        pattern = r"(?<![A-Z0-9])" + re.escape(label) + r"(?![A-Z0-9])"
        if re.search(pattern, upper):
            found.add(label)
            upper = re.sub(pattern, " ", upper)
    return found


def grade(response, reference_answer, sample):
    gold = named_labels(reference_answer)
    predicted = named_labels(response)
    if len(gold) != 1:
        raise ValueError(f"reference answer {reference_answer!r} is not one of {LABELS}")
    correct = len(predicted) == 1 and predicted == gold
    return {"reward": 1.0 if correct else -1.0, "label_present": float(len(predicted) == 1)}
