"""Parsing evaluation outputs straight from S3 (the embedded AWS)."""

from __future__ import annotations

import pytest

from novaflow.aws import get_client
from novaflow.errors import EvaluationError
from novaflow.evaluation.metrics import nova_results_json
from novaflow.evaluation.parser import parse_eval_output
from novaflow.settings import load_settings
from tests.unit.evaluation.layouts import PAIRS, layout, tar_bytes

BUCKET = "novaflow-local"
EM = nova_results_json([g for g, _ in PAIRS], [p for _, p in PAIRS])["results"]["all"]["em"]


def test_smtj_archive_on_s3(aws: object) -> None:
    s3 = get_client("s3", settings=load_settings())
    s3.put_object(Bucket=BUCKET, Key="out/nova-eval-job-1/output/output.tar.gz", Body=tar_bytes(layout("smtj")))
    result = parse_eval_output(f"s3://{BUCKET}/out/nova-eval-job-1/output/output.tar.gz", settings=load_settings())
    assert result.metrics.get("em").value == EM
    assert len(result.samples) == len(PAIRS) and result.disagreements == []
    # The job's output prefix works too: the archive inside it is found and opened.
    assert parse_eval_output(f"s3://{BUCKET}/out/nova-eval-job-1/", settings=load_settings()).predictions == [
        p for _, p in PAIRS
    ]


@pytest.mark.parametrize("variant", ["smhp", "serverless"])
def test_uncompressed_prefix_on_s3(aws: object, variant: str) -> None:
    s3 = get_client("s3", settings=load_settings())
    for name, data in layout(variant).items():
        s3.put_object(Bucket=BUCKET, Key=f"evals/{name}", Body=data)
    result = parse_eval_output(f"s3://{BUCKET}/evals", settings=load_settings())
    assert result.metrics.get("em").value == EM
    assert result.files["results"][0].startswith(f"s3://{BUCKET}/evals/")
    assert result.samples[0].logprobs == [[{"▁HQ": -0.01, "▁X": -4.6}]]


def test_missing_s3_locations_are_clear(aws: object) -> None:
    with pytest.raises(EvaluationError, match=rf"s3://{BUCKET}/nothing/here: no objects under this prefix"):
        parse_eval_output(f"s3://{BUCKET}/nothing/here", settings=load_settings())
    with pytest.raises(EvaluationError, match=rf"s3://{BUCKET}/x/output.tar.gz: no such S3 object"):
        parse_eval_output(f"s3://{BUCKET}/x/output.tar.gz", settings=load_settings())
    with pytest.raises(EvaluationError, match="s3://no-such-bucket-xyz/a: no such S3 bucket"):
        parse_eval_output("s3://no-such-bucket-xyz/a", settings=load_settings())
