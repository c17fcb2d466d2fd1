"""Property test: 10,000 generated events, many hostile; every response is schema-valid, nothing escapes.

The handler runs in-process here (the subprocess path is covered in tests/aws/reward); a well-formed batch must
yield exactly one valid output per sample with the sample's id, and a malformed event must raise InvalidEvent -
never any other exception.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from novaflow.reward.schema import metrics_of, output_problems
from reward_lambda.grader import sample_id
from reward_lambda.handler import InvalidEvent, lambda_handler

pytestmark = pytest.mark.slow  # ten thousand generated events: seconds, not milliseconds

N_EVENTS = 10_000
LABELS = ["HQ", "LQ_EDIT", "LQ_CLOSE", "hq", "lq-edit", "LQ EDIT", "**LQ_CLOSE**", "", "SPAM"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
texts = st.one_of(
    st.sampled_from(LABELS),
    st.text(max_size=40),
    st.builds(lambda a, b: f"{a} {b}", st.sampled_from(LABELS), st.text(max_size=10)),
)
parts = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, texts), st.builds(lambda t: {"text": t}, texts), texts, json_values
)
contents = st.one_of(texts, st.lists(parts, max_size=4), json_values)
references = st.one_of(
    texts, st.builds(lambda t: {"label": t}, texts), st.builds(lambda t: {"answer": t}, texts), json_values
)
messages = st.builds(
    lambda role, content: {"role": role, "content": content},
    st.sampled_from(["user", "assistant", "system", "tool", None, 3]),
    contents,
)


@st.composite
def samples(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, 9))
    if kind == 0:  # hostile: not even an object
        return draw(json_values)
    sample: dict[str, Any] = {}
    if draw(st.booleans()):
        sample["id"] = draw(json_values)
    msgs = draw(st.lists(messages, max_size=3))
    if kind >= 4:  # mostly well formed: a real rollout last
        msgs.append({"role": "assistant", "content": draw(contents)})
    sample["messages"] = msgs if kind != 1 else draw(json_values)
    where = draw(st.integers(0, 3))
    if where in (0, 2):
        sample["reference_answer"] = draw(references)
    if where in (1, 2):
        sample["metadata"] = draw(
            st.one_of(
                st.builds(lambda r: {"reference_answer": r}, references),
                json_values,
                st.builds(lambda r: json.dumps({"reference_answer": r}), texts),
            )
        )
    return sample


EXAMPLES = 80
EVENTS_PER_EXAMPLE = 125
"""Hypothesis draws a pool of samples per example (drawing is the slow part, ~1.5 ms a sample), then its seeded
random source composes 125 events from that pool - batches, mutated batches and hostile non-batches - so 10,000
events cost a few seconds instead of a minute."""


def compose(pool: list[Any], rnd: Any) -> Any:
    roll = rnd.random()
    if roll < 0.08:  # hostile: not a batch at all
        return rnd.choice([rnd.choice(pool), {"batch": pool[:3]}, json.dumps(pool[:2], default=repr), None, 42])
    batch = [rnd.choice(pool) for _ in range(rnd.randint(0, 8))]
    if roll < 0.5:  # mutate: swap content, ids, references between samples
        mutated = []
        for item in batch:
            if isinstance(item, dict):
                item = dict(item)
                key = rnd.choice(["id", "messages", "reference_answer", "metadata"])
                if rnd.random() < 0.3:
                    item.pop(key, None)
                else:
                    donor = rnd.choice(pool)
                    item[key] = donor.get(key, donor) if isinstance(donor, dict) else donor
            mutated.append(item)
        batch = mutated
    return batch


def check_event(event: Any) -> bool:
    """True when the event was a batch and graded; False when it was rightly refused."""
    if not isinstance(event, list):
        try:
            lambda_handler(event, None)
        except InvalidEvent as exc:
            assert "event must be a JSON array" in str(exc)
            return False
        raise AssertionError("a non-list event was accepted")
    out = lambda_handler(event, None)
    assert output_problems(out, [sample_id(s) for s in event]) == []
    json.dumps(out, allow_nan=False)  # what the Lambda runtime must be able to send back
    for item in out:
        score = item["aggregate_reward_score"]
        assert score in (1.0, -1.0) and math.isfinite(score)
        m = metrics_of(item)
        assert m["invalid_sample"] in (0, 1) and m["correct"] in (0, 1)
        assert (score == 1.0) == (m["correct"] == 1)
    return True


def test_ten_thousand_generated_events_all_schema_valid(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="reward_lambda")  # thousands of invalid-sample warnings are expected
    seen = {"events": 0, "graded": 0, "samples": 0}

    @seed(20261202)  # the sample-count floor below is then a fact about one fixed draw, not a flaky bet
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(pool=st.lists(samples(), min_size=20, max_size=20), rnd=st.randoms(use_true_random=False))
    def run(pool: list[Any], rnd: Any) -> None:
        for _ in range(EVENTS_PER_EXAMPLE):
            event = compose(pool, rnd)
            seen["events"] += 1
            if check_event(event):
                seen["graded"] += 1
                seen["samples"] += len(event)

    run()
    assert seen["events"] >= N_EVENTS
    assert seen["events"] - seen["graded"] >= 500  # the hostile share was really exercised
    assert seen["samples"] >= 15_000, seen
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []  # no grader bug hidden
