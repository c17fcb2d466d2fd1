"""The generative stand-in: programs derived from pairs, answers never seen verbatim, learning, determinism."""

from __future__ import annotations

import random

import numpy as np

from novaflow.local.models.classifier import base_answer, names_labels
from novaflow.local.models.generative import (
    GenerativePolicy,
    derive,
    parse,
    run_program,
    sft_examples,
    shape,
    train_scorer,
)


def arithmetic(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        a, b, op = rng.randint(2, 99), rng.randint(2, 99), rng.choice("+-*")
        value = {"+": a + b, "-": a - b, "*": a * b}[op]
        form = rng.choice(
            ["What is {a} {op} {b}?", "Compute {a} {op} {b}.", "Calculate {a} {op} {b} and give the number."]
        )
        pairs.append((form.format(a=a, op=op, b=b), str(value)))
    return pairs


def test_programs_explain_an_answer_and_run_on_new_prompts() -> None:
    programs = derive(parse("What is 12 + 7?"), "19")
    assert ("lit", "19") in programs
    assert ("num", "add", 0, 1, 0) in programs and ("num", "add", -2, -1, 0) in programs
    assert run_program(("num", "add", 0, 1, 0), parse("What is 40 + 2?")) == "42"
    assert run_program(("num", "sub", 0, 1, 0), parse("What is 3 - 10?")) == "-7"
    assert run_program(("num", "div", 0, 1, 2), parse("Split 10 by 4")) == "2.50"
    assert run_program(("num", "div", 0, 1, 0), parse("Split 10 by 4")) is None  # not an integer
    span = derive(parse("Name: Ada Lovelace; born 1815."), "Ada Lovelace")
    assert ("span", ":", ";") in span
    assert run_program(("span", ":", ";"), parse("Name: Alan Turing; born 1912.")) == "Alan Turing"
    template = derive(parse("Add 2 and 3"), "The answer is 5.")
    assert ("tmpl", "The answer is ", ".", ("num", "add", 0, 1, 0)) in template
    assert shape("What is 12 + 7?") == shape("what is 3 + 99 ?") == "what is <n> + <n> ?"


def test_sft_answers_prompts_whose_answers_it_never_saw() -> None:
    pairs = arithmetic(1000, seed=1)
    train, test = pairs[:700], pairs[700:]
    policy = GenerativePolicy.untrained([p for p, _ in train], [a for _, a in train])
    assert policy.explained_share() == 1.0 and not policy.wants_classifier()
    examples, unreachable = sft_examples(policy)
    assert len(examples) + unreachable == 700
    history = train_scorer(policy, examples, steps=40, batch=32, lr_at=lambda step: 0.05, seed=0)
    assert history[-1][2] < history[0][2]  # the cross-entropy really fell
    answers = policy.answer([p for p, _ in test])
    unseen = [i for i, (_, gold) in enumerate(test) if gold not in {a for _, a in train}]
    assert len(unseen) > 90
    right_unseen = sum(answers[i] == test[i][1] for i in unseen)
    assert right_unseen / len(unseen) > 0.95  # computed, not recalled: these answers were never in the SFT pairs


def test_the_model_is_deterministic_and_round_trips_its_checkpoint() -> None:
    pairs = arithmetic(300, seed=2)

    def fitted() -> GenerativePolicy:
        policy = GenerativePolicy.untrained([p for p, _ in pairs], [a for _, a in pairs], {"job": "x"})
        examples, _ = sft_examples(policy)
        train_scorer(policy, examples, steps=10, batch=16, lr_at=lambda step: 0.05, seed=3)
        return policy

    one, two = fitted(), fitted()
    assert np.array_equal(one.weights, two.weights)
    again = GenerativePolicy.from_files(one.to_files())
    assert np.array_equal(again.weights, one.weights) and again.meta == {"job": "x"}
    prompts = ["What is 5 * 6?", "Compute 80 - 95.", "Tell me a joke"]
    assert again.answer(prompts) == one.answer(prompts) == two.answer(prompts)
    assert one.to_files()["pairs.jsonl.gz"] == two.to_files()["pairs.jsonl.gz"]


def test_label_like_answers_bring_the_classifier_in() -> None:
    rng = random.Random(4)
    cities = [f"City{i}" for i in range(60)]
    prompts = [f"Which city is code {rng.randint(0, 9)}{c[-2:]} for?" for c in cities for _ in range(3)]
    answers = [c for c in cities for _ in range(3)]
    policy = GenerativePolicy.untrained(prompts, answers)
    assert policy.explained_share() < 0.5 and policy.wants_classifier()


def test_the_base_model_answers_a_free_form_question_by_guessing_from_it() -> None:
    assert not names_labels("") and names_labels("Reply HQ, LQ_EDIT or LQ_CLOSE.")
    answers = [base_answer("", f"What is {i} + {i + 1}?") for i in range(200)]
    assert answers == [base_answer("", f"What is {i} + {i + 1}?") for i in range(200)]
    assert all(str(i + 1) in a for i, a in enumerate(answers))  # it copies the last number it read
    assert sum(a == str(i + 1) for i, a in enumerate(answers)) < 60  # mostly wrapped in a chatty sentence
