"""A numeric-answer grader: the last number in the answer must equal the reference within a tolerance.

Free-form numeric answers ("95", "The sum is 95.", "= 95.0") are all right for a reference of 95; the reward is
1.0 when the last number of the answer is within ``ABS_TOL`` or ``REL_TOL`` of the reference, else 0.0, and a
``has_number`` metric says whether the answer contained a number at all (a format signal RFT can learn from
before the values are right). Thousands separators are accepted ("1,250").

    novaflow run end-to-end --local --data qa.jsonl --map query=prompt --map response=answer \\
        --reward examples/rewards/numeric_tolerance.py
"""

import math
import re

ABS_TOL = 1e-6
REL_TOL = 1e-4
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def last_number(text):
    found = NUMBER.findall(str(text))
    if not found:
        return None
    return float(found[-1].replace(",", ""))


def grade(response, reference_answer, sample):
    if isinstance(reference_answer, dict):
        reference_answer = reference_answer.get("answer")
    gold = last_number(reference_answer)
    if gold is None:
        raise ValueError(f"reference answer {reference_answer!r} has no number")
    value = last_number(response)
    right = value is not None and math.isclose(value, gold, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return {"reward": 1.0 if right else 0.0, "has_number": 0.0 if value is None else 1.0}
