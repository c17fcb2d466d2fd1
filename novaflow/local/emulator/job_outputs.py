"""Archives the emulator writes, in the layouts of docs/training-jobs.md#output-layout (training) and
docs/evaluation-outputs.md (gen_qa evaluation)."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Mapping


def tar_gz(files: Mapping[str, bytes], directories: tuple[str, ...] = ()) -> bytes:
    """A gzip tar of ``files`` (path -> bytes), entries in the given order, owned by root, mtime now."""
    buf = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for directory in directories:
            info = tarfile.TarInfo(directory.rstrip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
        for path, body in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(body), 0o644, now
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def training_files(checkpoint_uri: str, metrics_csv: str) -> dict[str, bytes]:
    """What a Nova training job outputs: exactly ``manifest.json`` and ``step_wise_training_metrics.csv``."""
    manifest = json.dumps({"checkpoint_s3_bucket": checkpoint_uri}).encode()
    return {"manifest.json": manifest, "step_wise_training_metrics.csv": metrics_csv.encode()}


def training_archive(checkpoint_uri: str, metrics_csv: str) -> bytes:
    """``output.tar.gz`` of an SMTJ training job (:func:`training_files`, compressed)."""
    return tar_gz(training_files(checkpoint_uri, metrics_csv))


def output_uri(s3_output_path: str, job_name: str) -> str:
    return f"{s3_output_path.rstrip('/')}/{job_name}/output/output.tar.gz"


def uncompressed_root(s3_output_path: str, job_name: str) -> str:
    """Where a job whose output is not compressed (``CompressionType: NONE``) puts its files."""
    return f"{s3_output_path.rstrip('/')}/{job_name}/output/output"
