from __future__ import annotations

import json
from pathlib import Path

import pytest

from novaflow.errors import EvaluationError
from novaflow.evaluation.metrics import GEN_QA_TASK, nova_results_json
from novaflow.evaluation.parser import parse_eval_output, parse_inference_output, parse_results_json
from novaflow.settings import load_settings
from tests.unit.evaluation.layouts import PAIRS, layout, tar_bytes, write_tree

GOLDS = [g for g, _ in PAIRS]
PREDS = [p for _, p in PAIRS]
EXPECTED = nova_results_json(GOLDS, PREDS)["results"]["all"]


def _check(result, *, recomputed: bool = False) -> None:  # type: ignore[no-untyped-def]
    assert result.golds == GOLDS
    assert result.predictions == PREDS
    assert result.metrics.get("em").value == EXPECTED["em"] == 1 / 6
    assert result.metrics.get("em").stderr == EXPECTED["em_stderr"]
    assert result.metrics.get("bleu").scale == "0-100"
    assert result.metrics.get("rouge1").scale == "0-1"
    assert result.disagreements == []
    assert result.samples[1].metadata == '{"row": 1}'
    assert result.samples[3].messages == [
        {"role": "system", "content": "Label only."},
        {"role": "user", "content": "Q3?"},
    ]
    if not recomputed:
        assert result.task == GEN_QA_TASK
        assert result.metrics.names() == ["rouge1", "rouge2", "rougeL", "em", "qem", "f1", "f1_score_quasi", "bleu"]


@pytest.mark.parametrize("variant", ["smtj", "smhp", "serverless", "docs-alt"])
def test_every_layout_as_a_folder(tmp_path: Path, variant: str) -> None:
    result = parse_eval_output(write_tree(tmp_path, layout(variant)), settings=load_settings())
    _check(result)
    assert len(result.files["tensorboard"]) == 1
    assert result.samples[0].logprobs == [[{"▁HQ": -0.01, "▁X": -4.6}]]
    assert result.samples[0].metrics["qem"] == 1.0


@pytest.mark.parametrize("variant", ["smtj", "smhp", "serverless", "docs-alt"])
def test_every_layout_as_a_tar_gz(tmp_path: Path, variant: str) -> None:
    archive = tmp_path / "output.tar.gz"
    archive.write_bytes(tar_bytes(layout(variant)))
    result = parse_eval_output(archive, settings=load_settings())
    _check(result)
    assert result.files["results"][0].startswith(f"{archive}!")


def test_folder_holding_only_the_archive_is_opened(tmp_path: Path) -> None:
    (tmp_path / "job" / "output").mkdir(parents=True)
    (tmp_path / "job" / "output" / "output.tar.gz").write_bytes(tar_bytes(layout("smtj")))
    _check(parse_eval_output(tmp_path, settings=load_settings()))


def test_batch_inference_output_gets_recomputed_metrics(tmp_path: Path) -> None:
    result = parse_eval_output(write_tree(tmp_path, layout("batch")), settings=load_settings())
    _check(result, recomputed=True)
    assert "no results_*.json; metrics recomputed from 6 samples" in result.warnings[0]
    assert result.metrics.get("bleu").value == EXPECTED["bleu"]


def test_python_literal_quirk_is_decoded_safely() -> None:
    line = {
        "prompt": "[{'role': 'user', 'content': \"it's\"}]",
        "inference": "['it\\'s \"fine\"', 'second']",
        "gold": "x",
    }
    (sample,) = parse_inference_output((json.dumps(line) + "\n").encode(), where="f.jsonl")
    assert sample.prediction == 'it\'s "fine"'
    assert sample.messages == [{"role": "user", "content": "it's"}]
    evil = dict(line, inference="[__import__('os').system('echo pwned')]")
    with pytest.raises(EvaluationError, match=r"f.jsonl line 1 field 'inference': not a Python literal"):
        parse_inference_output(json.dumps(evil).encode(), where="f.jsonl")


def test_truncated_jsonl_line_names_file_and_line() -> None:
    data = b'{"inference": "[\'a\']", "gold": "a"}\n{"inference": "[\'b'
    with pytest.raises(EvaluationError, match=r"inf.jsonl line 2: not valid JSON"):
        parse_inference_output(data, where="inf.jsonl")


def test_all_missing_or_empty_falls_back_to_first_non_empty_task() -> None:
    entry = {"em": 0.5, "em_stderr": 0.1, "bleu": 12.0, "judge": {"a": 1}}
    for results in (
        {"custom|empty|0": {}, "custom|gen_qa_gen_qa|0": entry},
        {"all": {}, "custom|empty|0": {}, "custom|gen_qa_gen_qa|0": entry},
    ):
        task, table, warnings = parse_results_json(json.dumps({"results": results}).encode(), where="r.json")
        assert task == "custom|gen_qa_gen_qa|0"
        assert [(r.name, r.value, r.stderr) for r in table] == [("em", 0.5, 0.1), ("bleu", 12.0, None)]
        assert warnings == ["r.json: metric 'judge' is not a number (dict); skipped"]


def test_docs_example_document_parses_to_its_exact_numbers() -> None:
    doc = {
        "results": {
            "custom|gen_qa_gen_qa|0": {
                "em": 0.6562150055991042,
                "em_stderr": 0.007948251702846893,
                "bleu": 100.00000000000004,
                "bleu_stderr": 1.464411857851008,
            }
        }
    }
    doc["results"]["all"] = dict(doc["results"]["custom|gen_qa_gen_qa|0"])
    task, table, _ = parse_results_json(json.dumps(doc).encode(), where="r.json")
    assert task == GEN_QA_TASK
    assert table.get("bleu").as_fraction() == (100.00000000000004 / 100, 1.464411857851008 / 100)
    assert table.to_records()[0] == {
        "metric": "em",
        "value": 0.6562150055991042,
        "stderr": 0.007948251702846893,
        "scale": "0-1",
    }


def test_disagreement_with_the_archive_is_flagged(tmp_path: Path) -> None:
    doc = nova_results_json(GOLDS, PREDS)
    doc["results"]["all"]["em"] = 0.5
    result = parse_eval_output(write_tree(tmp_path, layout("smtj", results=doc)), settings=load_settings())
    assert [str(d) for d in result.disagreements] == [f"em: reported 0.5, recomputed {1 / 6!r}"]


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_archive_names_the_file(tmp_path: Path, damage: str) -> None:
    data = tar_bytes(layout("smtj"))
    archive = tmp_path / "output.tar.gz"
    archive.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not a tar at all" * 10)
    with pytest.raises(EvaluationError, match=rf"{archive}: corrupt or truncated tar.gz archive"):
        parse_eval_output(archive, settings=load_settings())


def test_missing_and_empty_locations(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="no such file or folder"):
        parse_eval_output(tmp_path / "nope", settings=load_settings())
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(EvaluationError, match=r"no results_\*.json or inference_output.jsonl among 1 files"):
        parse_eval_output(tmp_path, settings=load_settings())


def test_bad_results_json_names_the_member(tmp_path: Path) -> None:
    members = layout("smhp")
    name = next(k for k in members if k.endswith(".json"))
    members[name] = b'{"results": '
    with pytest.raises(EvaluationError, match=rf"{tmp_path}/{name}: not valid JSON"):
        parse_eval_output(write_tree(tmp_path, members), settings=load_settings())


def test_details_parquet_stringified_columns() -> None:
    from novaflow.evaluation.parser import parse_details_parquet
    from tests.unit.evaluation.layouts import details_parquet

    samples = parse_details_parquet(details_parquet(PAIRS), where="d.parquet")
    assert [s.prediction for s in samples] == PREDS and [s.gold for s in samples] == GOLDS
    # gold "LQ_EDIT" -> [lq, edit]; pred -> [the, answer, is, lq, edit]: P = 2/5, R = 1 for ROUGE-1 and -L.
    r1 = 2 * 0.4 * 1.0 / 1.4
    assert samples[1].metrics == {
        "rouge1": r1,
        "rouge2": 2 * 0.25 / 1.25,
        "rougeL": r1,
        "em": 0.0,
        "qem": 0.0,
        "f1": 0.0,
        "f1_score_quasi": 2 * (1 / 3) / (4 / 3),
    }
    assert samples[2].metadata == '{"row": 2}'
    assert samples[0].prompt == "<system>Label only.</system>Q0?"
    with pytest.raises(EvaluationError, match=r"d.parquet: not a readable parquet file"):
        parse_details_parquet(b"PAR1 nope", where="d.parquet")
