"""A deterministic zip of the reward Lambda: same source, same bytes, so CodeSha256 says whether code changed.

Fixed timestamps, sorted entries, fixed permissions and compression level: the zip's sha256 depends only on the
source files. The handler name and runtime live here and nowhere else.

Example:
    >>> data = build_zip()
    >>> code_sha256(data) == code_sha256(build_zip())
    True
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

import reward_lambda

HANDLER = "lambda_function.lambda_handler"
"""What the Lambda runtime loads: ``lambda_function.py`` at the zip root."""
RUNTIME = "python3.12"
ENTRY_MODULE = "lambda_function.py"
PACKAGE_NAME = "reward_lambda"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
COMPRESS_LEVEL = 9


def source_files(source_dir: Path | None = None) -> dict[str, bytes]:
    """Archive name -> bytes: the entry module at the root, the package's ``*.py`` under ``reward_lambda/``."""
    root = Path(source_dir) if source_dir is not None else Path(reward_lambda.__file__).parent
    files: dict[str, bytes] = {}
    for path in sorted(root.glob("*.py")):
        files[f"{PACKAGE_NAME}/{path.name}"] = path.read_bytes()
    entry = root / ENTRY_MODULE
    if not entry.is_file():
        raise FileNotFoundError(f"{entry}: the reward Lambda entry module is missing")
    files[ENTRY_MODULE] = entry.read_bytes()
    return dict(sorted(files.items()))


def build_zip(source_dir: Path | None = None) -> bytes:
    """The deployment package as bytes (deterministic; see module docstring)."""
    return zip_files(source_files(source_dir))


def zip_files(files: dict[str, bytes]) -> bytes:
    """Archive name -> bytes as a zip whose bytes depend only on the names and contents (sorted, fixed time)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so external_attr carries the permission bits on every OS
            info.external_attr = (0o100000 | FILE_MODE) << 16
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL)
    return buffer.getvalue()


def code_sha256(data: bytes) -> str:
    """Lambda's ``CodeSha256``: base64 of the zip's SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def write_zip(out: Path, source_dir: Path | None = None) -> tuple[Path, str]:
    """Write the package to ``out``; returns the path and its CodeSha256."""
    data = build_zip(source_dir)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out, code_sha256(data)
