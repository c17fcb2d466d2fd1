"""Evaluation outputs are read as streams, with documented limits refused in one line naming the member."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novaflow.errors import EvaluationError
from novaflow.evaluation import sources
from novaflow.evaluation.parser import parse_eval_output, parse_inference_output
from novaflow.settings import load_settings
from tests.unit.evaluation.layouts import PAIRS, TS, eval_files, inference_jsonl, tar_bytes


def _archive(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "output.tar.gz"
    path.write_bytes(tar_bytes({f"eval_results/{k}": v for k, v in members.items()}))
    return path


def test_inference_output_is_parsed_line_by_line_the_same_as_whole(tmp_path: Path) -> None:
    data = inference_jsonl(PAIRS)
    whole = parse_inference_output(data, where="f.jsonl")
    streamed = parse_inference_output(iter(data.splitlines(keepends=True)), where="f.jsonl")
    assert whole == streamed
    assert streamed[0].messages == [{"role": "system", "content": "Label only."}, {"role": "user", "content": "Q0?"}]
    bare = parse_eval_output(_archive(tmp_path, eval_files(PAIRS)), prompts=False, settings=load_settings())
    assert [s.prompt for s in bare.samples] == [""] * len(PAIRS)
    assert [s.prediction for s in bare.samples] == [s.prediction for s in whole]


def test_a_member_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch) -> None:
    archive = _archive(tmp_path, eval_files(PAIRS))
    size = len(inference_jsonl(PAIRS))
    monkeypatch.setattr(sources, "MAX_MEMBER_BYTES", size - 1)
    with pytest.raises(EvaluationError) as err:
        parse_eval_output(archive, settings=load_settings())
    assert str(err.value) == (
        f"{archive}!eval_results/inference_output.jsonl: {size:,} bytes is over the {size - 1:,}-byte limit "
        "novaflow reads from an evaluation output; point novaflow at the evaluation output of one job"
    )


def test_a_results_file_over_the_whole_file_limit_is_refused(tmp_path, monkeypatch) -> None:
    files = eval_files(PAIRS)
    archive = _archive(tmp_path, files)
    monkeypatch.setattr(sources, "MAX_WHOLE_BYTES", 100)
    with pytest.raises(
        EvaluationError, match=rf"results_{TS}\.json: [\d,]+ bytes is over the 100-byte limit for a file"
    ):
        parse_eval_output(archive, settings=load_settings())


def test_one_endless_line_is_refused_naming_its_number(tmp_path, monkeypatch) -> None:
    files = eval_files(PAIRS)
    files["inference_output.jsonl"] += json.dumps({"inference": "['x']", "gold": "y" * 500}).encode() + b"\n"
    archive = _archive(tmp_path, files)
    monkeypatch.setattr(sources, "MAX_RECORD_BYTES", 400)
    with pytest.raises(EvaluationError) as err:
        parse_eval_output(archive, settings=load_settings())
    assert str(err.value) == (
        f"{archive}!eval_results/inference_output.jsonl line {len(PAIRS) + 1}: longer than 400 bytes "
        "(the limit for one record)"
    )


def test_a_folder_is_read_with_the_same_limits(tmp_path, monkeypatch) -> None:
    root = tmp_path / "out"
    for name, data in eval_files(PAIRS).items():
        target = root / "eval_results" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    assert len(parse_eval_output(root, settings=load_settings()).samples) == len(PAIRS)
    monkeypatch.setattr(sources, "MAX_MEMBER_BYTES", 10)
    with pytest.raises(EvaluationError, match=r"inference_output\.jsonl: .* bytes is over the 10-byte limit"):
        parse_eval_output(root, settings=load_settings())
