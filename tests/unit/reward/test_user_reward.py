"""A team's own reward file: refused in one line when broken, wrapped robustly, packaged byte for byte the same."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import pytest

from novaflow.errors import RewardError
from novaflow.reward.local_run import LocalPackage
from novaflow.reward.package import code_sha256
from novaflow.reward.probes import probe_samples, verify_grader, verify_reward_function
from novaflow.reward.source import build_reward_zip, check_reward_code, load_reward_source
from novaflow.settings import load_settings
from reward_lambda.wrapper import grade_samples, handler_for, to_output

ROWS = [
    {"id": "q1", "messages": [{"role": "user", "content": "What is 2 + 3?"}], "reference_answer": "5"},
    {"id": "q2", "messages": [{"role": "user", "content": "What is 4 * 4?"}], "reference_answer": "16"},
    {"id": "q3", "messages": [{"role": "user", "content": "What is 9 - 1?"}], "reference_answer": "8"},
]
NUMERIC = """
def grade(response, reference_answer, sample):
    return 1.0 if response.strip() == str(reference_answer).strip() else 0.0
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_rows(path: Path, rows: list[dict[str, Any]] = ROWS) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "def grade(response, reference_answer, sample)\n    return 1\n",
            "bad.py: line 1: syntax error: expected ':'",
        ),
        (
            "def score(response):\n    return 1\n",
            "bad.py: defines neither lambda_handler(event, context) nor grade(response, reference_answer, sample) "
            "at the top level",
        ),
        (
            "def lambda_handler(event):\n    return []\n",
            "bad.py: line 1: lambda_handler takes (event); it is called as lambda_handler(event, context)",
        ),
        (
            "def grade(response):\n    return 1\n",
            "bad.py: line 1: grade takes (response); it is called as grade(response, reference_answer, sample)",
        ),
        (
            "async def grade(response, reference_answer, sample):\n    return 1\n",
            "bad.py: line 1: grade is async; define it as a plain def grade(response, reference_answer, sample)",
        ),
    ],
)
def test_broken_reward_code_is_refused_in_one_line_naming_the_file(code: str, message: str) -> None:
    with pytest.raises(RewardError) as info:
        check_reward_code(code.encode(), "bad.py")
    assert str(info.value) == message


def test_entry_points_that_fit_are_recognised(tmp_path: Path) -> None:
    assert check_reward_code(b"def lambda_handler(event, context=None):\n    return []\n", "a.py") == "lambda_handler"
    assert check_reward_code(b"def grade(*args):\n    return 0\n", "b.py") == "grade"
    assert check_reward_code(b"def grade(r, ref, sample, scale=1):\n    return 0\n", "c.py") == "grade"
    source = load_reward_source(write(tmp_path / "mine.py", NUMERIC), settings=load_settings())
    assert (source.kind, source.name, source.requirements) == ("grade", "mine.py", None)
    with pytest.raises(RewardError, match=r"missing\.py: no such reward file$"):
        load_reward_source(tmp_path / "missing.py", settings=load_settings())
    with pytest.raises(RewardError, match=r"must be a Python file ending in \.py"):
        load_reward_source(write(tmp_path / "reward.txt", NUMERIC), settings=load_settings())


def test_the_package_is_deterministic_and_holds_the_entry_the_file_and_the_wrapper(tmp_path: Path) -> None:
    source = load_reward_source(write(tmp_path / "mine.py", NUMERIC), settings=load_settings())
    first, second = build_reward_zip(source), build_reward_zip(source)
    assert first == second and code_sha256(first) == code_sha256(second)
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert names[:1] == ["lambda_function.py"]
    assert {"user_reward.py", "reward_lambda/wrapper.py", "reward_lambda/grader.py"} <= set(names)
    assert zipfile.ZipFile(io.BytesIO(first)).read("user_reward.py") == NUMERIC.encode()
    changed = load_reward_source(write(tmp_path / "mine.py", NUMERIC + "\n# a comment\n"), settings=load_settings())
    assert code_sha256(build_reward_zip(changed)) != code_sha256(first)


def _wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel (what pip installs from a requirements line naming a file)."""
    path = folder / "tinytol-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr("tinytol/__init__.py", "TOLERANCE = 0.5\n")
        whl.writestr("tinytol-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinytol\nVersion: 1.0\n")
        whl.writestr(
            "tinytol-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        whl.writestr("tinytol-1.0.dist-info/RECORD", "")
    return path


@pytest.mark.slow
def test_requirements_are_vendored_into_the_zip_the_same_way_on_every_build(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # the wheel is a local file; never ask an index
    folder = tmp_path / "reward"
    folder.mkdir()
    _wheel(folder)
    write(folder / "requirements.txt", "./tinytol-1.0-py3-none-any.whl\n")
    write(folder / "mine.py", "import tinytol\n\ndef grade(r, ref, s):\n    return tinytol.TOLERANCE\n")
    source = load_reward_source(folder / "mine.py", settings=load_settings())
    assert source.requirements == folder / "requirements.txt"
    one = build_reward_zip(source, cache_dir=tmp_path / "cache-1")
    two = build_reward_zip(source, cache_dir=tmp_path / "cache-2")  # a fresh pip install
    assert one == two
    names = zipfile.ZipFile(io.BytesIO(one)).namelist()
    assert "tinytol/__init__.py" in names and "tinytol-1.0.dist-info/METADATA" in names
    assert not [n for n in names if n.endswith(("RECORD", "direct_url.json", ".pyc"))]
    with LocalPackage(one) as package:  # the vendored module is importable by the packaged code
        outcome = package.invoke(
            [{"id": 1, "messages": [{"role": "assistant", "content": "x"}], "reference_answer": "y"}]
        )
    assert outcome.ok and outcome.result[0]["aggregate_reward_score"] == 0.5


@pytest.mark.slow
def test_an_unsatisfiable_requirement_is_one_line_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    write(tmp_path / "requirements.txt", "no-such-package-novaflow==0.0.1\n")
    source = load_reward_source(write(tmp_path / "mine.py", NUMERIC), settings=load_settings())
    with pytest.raises(RewardError) as info:
        build_reward_zip(source, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'requirements.txt'}: pip could not install the requirements for the ")
    assert "\n" not in message


def test_the_wrapper_turns_grades_into_the_contract_and_bad_samples_into_the_minimum(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="reward_lambda.wrapper")
    assert to_output("a", 0.25) == {
        "id": "a",
        "aggregate_reward_score": 0.25,
        "metrics_list": [{"name": "invalid_sample", "value": 0, "type": "Metric"}],
    }
    assert to_output("b", {"reward": 1, "format": 0.5}) == {
        "id": "b",
        "aggregate_reward_score": 1.0,
        "metrics_list": [
            {"name": "reward", "value": 1.0, "type": "Reward"},
            {"name": "format", "value": 0.5, "type": "Metric"},
            {"name": "invalid_sample", "value": 0, "type": "Metric"},
        ],
    }
    assert to_output("c", {"x": 1, "y": 0})["aggregate_reward_score"] == 0.5

    def grade(response: str, reference: Any, sample: dict[str, Any]) -> Any:
        if response == "boom":
            raise ZeroDivisionError("division by zero")
        return "high" if response == "str" else float(response == reference)

    samples = [
        {"id": 1, "messages": [{"role": "assistant", "content": "5"}], "metadata": {"reference_answer": "5"}},
        {
            "id": 2,
            "messages": [{"role": "assistant", "content": [{"type": "text", "text": "5"}]}],
            "reference_answer": "6",
        },
        {"id": 3, "messages": [{"role": "assistant", "content": "boom"}], "reference_answer": "5"},
        {"id": 4, "messages": [{"role": "assistant", "content": "str"}], "reference_answer": "5"},
        {"id": 5, "messages": [{"role": "user", "content": "no rollout"}]},
        "not a sample",
    ]
    out = grade_samples(samples, grade, minimum=-1.0)
    assert [o["aggregate_reward_score"] for o in out] == [1.0, 0.0, -1.0, -1.0, -1.0, -1.0]
    assert [o["metrics_list"][-1]["value"] for o in out] == [0, 0, 1, 1, 1, 1]
    assert [o["id"] for o in out] == [1, 2, 3, 4, 5, None]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "invalid_sample id=3 reason=grade raised ZeroDivisionError: division by zero" in warnings
    assert (
        "invalid_sample id=4 reason=grade returned 'high', not a finite number or a dict of named numbers" in warnings
    )
    assert warnings[-1] == "invalid_samples 4 of 6 in this batch"


def test_handler_for_uses_the_files_own_handler_or_wraps_grade() -> None:
    import types

    own = types.ModuleType("own")
    own.lambda_handler = lambda event, context: ["as is"]  # type: ignore[attr-defined]
    assert handler_for(own)([], None) == ["as is"]
    graded = types.ModuleType("graded")
    graded.grade = lambda r, ref, s: 2.0  # type: ignore[attr-defined]
    graded.MIN_REWARD = -5  # type: ignore[attr-defined]
    handler = handler_for(graded)
    assert (
        handler([{"id": 7, "messages": [{"role": "assistant", "content": "x"}]}], None)[0]["aggregate_reward_score"]
        == 2.0
    )
    assert handler([{"id": 8}], None)[0]["aggregate_reward_score"] == -5.0
    with pytest.raises(ValueError, match="event must be a JSON array of samples, got a dict"):
        handler({"id": 1}, None)


def test_probe_rollouts_are_the_reference_another_rows_an_empty_and_a_garbled_answer() -> None:
    sets = probe_samples(ROWS)
    assert list(sets) == ["reference", "other-row", "empty", "garbled"]
    texts = {probe: [s["messages"][-1]["content"] for s in samples] for probe, samples in sets.items()}
    assert texts == {
        "reference": ["5", "16", "8"],
        "other-row": ["16", "8", "5"],
        "empty": ["", "", ""],
        "garbled": ["5", "61", "8"],
    }
    assert sets["reference"][0]["id"] == "q1:reference" and sets["reference"][0]["reference_answer"] == "5"
    assert sets["empty"][1]["messages"][0] == {"role": "user", "content": "What is 4 * 4?"}


def test_degenerate_graders_are_refused_with_one_line() -> None:
    def constant(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": s["id"], "aggregate_reward_score": 0.5} for s in batch]

    result = verify_grader(ROWS, {"local": constant}, source="const.py")
    assert not result.ok
    assert result.reason() == (
        "const.py: returns the same reward 0.5 for all 12 probe samples (reference answers, other rows' answers, "
        "empty and garbled answers): RFT would learn nothing from it"
    )

    def shapeless(batch: list[dict[str, Any]]) -> dict[str, Any]:
        return {"scores": [1.0] * len(batch)}

    with pytest.raises(RewardError) as info:
        verify_grader(ROWS, {"local": shapeless}, source="shape.py")
    assert str(info.value) == (
        "shape.py: returned a malformed response (local, samples 1-3): response is a dict, not a JSON array; "
        "the RFT service expects [{id, aggregate_reward_score, metrics_list?}] per sample"
    )


@pytest.mark.slow
def test_a_sound_grader_passes_and_its_distribution_is_computed(tmp_path: Path) -> None:
    package = build_reward_zip(load_reward_source(write(tmp_path / "mine.py", NUMERIC), settings=load_settings()))
    result = verify_reward_function(
        write_rows(tmp_path / "rows.jsonl"), source="mine.py", zip_bytes=package, settings=load_settings()
    )
    assert result.ok, result.reason()
    means = {row["probe"]: row["mean"] for row in result.table()}
    assert means == {"reference": 1.0, "other-row": 0.0, "empty": 0.0, "garbled": 0.6667}  # "5" and "8" read the same
    assert {row["runner"] for row in result.table()} == {"local"}
    assert result.metric_names == ["invalid_sample"]


@pytest.mark.slow
def test_a_grade_that_raises_on_every_sample_is_refused_with_its_reason(tmp_path: Path) -> None:
    code = "def grade(response, reference_answer, sample):\n    return 1 / 0\n"
    package = build_reward_zip(load_reward_source(write(tmp_path / "zero.py", code), settings=load_settings()))
    result = verify_reward_function(
        write_rows(tmp_path / "rows.jsonl"), source="zero.py", zip_bytes=package, settings=load_settings()
    )
    assert result.reason() == (
        "zero.py: every one of the 12 probe samples was invalid (first reason: grade raised ZeroDivisionError: "
        "division by zero)"
    )


@pytest.mark.slow
def test_a_handler_that_raises_is_refused_with_the_error(tmp_path: Path) -> None:
    code = "def lambda_handler(event, context):\n    raise KeyError('reference')\n"
    package = build_reward_zip(load_reward_source(write(tmp_path / "raising.py", code), settings=load_settings()))
    with pytest.raises(RewardError) as info:
        verify_reward_function(
            write_rows(tmp_path / "rows.jsonl"), source="raising.py", zip_bytes=package, settings=load_settings()
        )
    assert str(info.value) == (
        "raising.py: the handler raised KeyError: 'reference' (local run, batch of 3 samples): the RFT service would "
        "fail on its first step"
    )
