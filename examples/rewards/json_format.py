"""A format grader for structured output: the answer must be a JSON object with the reference's keys and types.

Half of the reward is the format (a JSON object - bare, or inside a ```json fence - whose keys and value types
match the reference answer's), half is content (the share of keys whose value equals the reference's). So a model
first learns to answer in the right shape, then to fill it correctly. The reference answer is the expected
object (or a JSON string of it).

    novaflow run end-to-end --local --data extraction.jsonl --reward examples/rewards/json_format.py
"""

import json
import re

FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_object(text):
    text = str(text).strip()
    fenced = FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def grade(response, reference_answer, sample):
    expected = reference_answer if isinstance(reference_answer, dict) else parse_object(reference_answer)
    if not expected:
        raise ValueError(f"reference answer {reference_answer!r} is not a JSON object")
    answer = parse_object(response)
    if answer is None:
        return {"reward": 0.0, "valid_json": 0.0, "schema": 0.0, "content": 0.0}
    same_keys = set(answer) == set(expected)
    same_types = all(type(answer.get(k)) is type(v) for k, v in expected.items())
    schema = 1.0 if same_keys and same_types else 0.0
    content = sum(answer.get(k) == v for k, v in expected.items()) / len(expected)
    return {"reward": 0.5 * schema + 0.5 * content, "valid_json": 1.0, "schema": schema, "content": content}
