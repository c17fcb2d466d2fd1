"""A team's own reward file: check it without running it, then package it as a deterministic Lambda zip.

The file defines either the Nova ``lambda_handler(event, context)`` (used as is) or ``grade(response,
reference_answer, sample)`` (wrapped by :mod:`reward_lambda.wrapper`). It is packaged as ``user_reward.py`` next to
a generated ``lambda_function.py`` that picks the right handler, so the function's handler setting is the same
``lambda_function.lambda_handler`` for every reward. A ``requirements.txt`` beside the file is installed into the
zip with pip (for the Lambda runtime's platform), and the zip stays a function of its inputs: same source and
requirements, same bytes, same CodeSha256 - so redeploying unchanged code changes nothing.

Problems a person can fix are refused here, in one line naming the file: a syntax error (with its line), no
handler, a handler with the wrong number of parameters.

Example:
    >>> source = load_reward_source("my_reward.py")        # doctest: +SKIP
    >>> zip_bytes = build_reward_zip(source)                # doctest: +SKIP
"""

from __future__ import annotations

import ast
import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from novaflow.aws import get_client, is_not_found, split_s3_uri, wrap_client_error
from novaflow.errors import RewardError
from novaflow.reward.package import ENTRY_MODULE, source_files, zip_files
from novaflow.settings import NovaflowSettings

USER_MODULE = "user_reward"
REQUIREMENTS = "requirements.txt"
LAMBDA_PLATFORM = ("--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.12")
"""pip flags that fetch wheels for the Lambda python3.12 x86_64 runtime rather than for this machine."""
ENTRY_SOURCE = b'''"""Entry module of a reward packaged by novaflow: the team's handler, or one around its grade."""

import user_reward
from reward_lambda.wrapper import handler_for

lambda_handler = handler_for(user_reward)
'''
_SKIPPED_PARTS = ("__pycache__", "bin")
_SKIPPED_NAMES = ("RECORD", "direct_url.json", "INSTALLER")


@dataclass(frozen=True)
class RewardSource:
    """A checked reward file: where it came from, which entry point it defines, and its requirements."""

    location: str
    path: Path
    kind: str
    """``"lambda_handler"`` (used as is) or ``"grade"`` (wrapped)."""
    requirements: Path | None = None

    @property
    def name(self) -> str:
        return self.location.rstrip("/").rsplit("/", 1)[-1]


def load_reward_source(location: str | Path, settings: NovaflowSettings) -> RewardSource:
    """Read and check a reward file (a local path or ``s3://``; ``requirements.txt`` beside it is picked up)."""
    text_location = str(location)
    if text_location.startswith("s3://"):
        path, requirements = _download(text_location, settings)
    else:
        path = Path(location)
        if not path.is_file():
            raise RewardError(f"{path}: no such reward file")
        beside = path.with_name(REQUIREMENTS)
        requirements = beside if beside.is_file() else None
    if path.suffix != ".py":
        raise RewardError(f"{text_location}: a reward file must be a Python file ending in .py")
    kind = check_reward_code(path.read_bytes(), text_location)
    return RewardSource(location=text_location, path=path, kind=kind, requirements=requirements)


def check_reward_code(code: bytes, where: str) -> str:
    """The entry point the code defines (``lambda_handler`` or ``grade``); a problem raises one clear line."""
    try:
        tree = ast.parse(code, filename=where)
    except SyntaxError as exc:
        raise RewardError(f"{where}: line {exc.lineno}: syntax error: {exc.msg}") from None
    except ValueError as exc:  # e.g. null bytes
        raise RewardError(f"{where}: not Python source ({exc})") from None
    functions = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for name, wanted, shape in (
        ("lambda_handler", 2, "lambda_handler(event, context)"),
        ("grade", 3, "grade(response, reference_answer, sample)"),
    ):
        node = functions.get(name)
        if node is None:
            continue
        if isinstance(node, ast.AsyncFunctionDef):
            raise RewardError(f"{where}: line {node.lineno}: {name} is async; define it as a plain def {shape}")
        if not _accepts(node.args, wanted):
            raise RewardError(
                f"{where}: line {node.lineno}: {name} takes {_describe(node.args)}; it is called as {shape}"
            )
        return name
    raise RewardError(
        f"{where}: defines neither lambda_handler(event, context) nor grade(response, reference_answer, sample) "
        "at the top level"
    )


def build_reward_zip(source: RewardSource, *, cache_dir: Path | None = None) -> bytes:
    """The deployment package: entry module, the team's file as ``user_reward.py``, novaflow's wrapper, deps."""
    files = {name: data for name, data in source_files().items() if name != ENTRY_MODULE}
    files[ENTRY_MODULE] = ENTRY_SOURCE
    files[f"{USER_MODULE}.py"] = source.path.read_bytes()
    if source.requirements is not None:
        for name, data in vendored_files(source.requirements, cache_dir=cache_dir).items():
            if name in files:
                raise RewardError(f"{source.requirements}: installs {name}, which clashes with the packaged reward")
            files[name] = data
    return zip_files(files)


def vendored_files(requirements: Path, *, cache_dir: Path | None = None) -> dict[str, bytes]:
    """What ``pip install --target`` puts in the zip for ``requirements`` (cached by the file's content).

    Files that record the installing machine (``RECORD``, ``direct_url.json``, ``INSTALLER``, compiled caches
    and console scripts with this machine's interpreter path) are left out: the Lambda runtime needs none of them,
    and keeping them would make the same requirements give a different zip on another machine.
    """
    content = requirements.read_bytes()
    digest = hashlib.sha256(content + repr(LAMBDA_PLATFORM).encode()).hexdigest()[:20]
    root = (cache_dir or Path(tempfile.gettempdir()) / "novaflow-vendor") / digest
    if not (root / ".complete").is_file():
        target = root.with_name(root.name + ".partial")
        shutil.rmtree(target, ignore_errors=True)
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--only-binary=:all:",
            *LAMBDA_PLATFORM,
            "--target",
            str(target),
            "-r",
            requirements.name,
        ]
        done = subprocess.run(command, cwd=requirements.parent, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise RewardError(f"{requirements}: pip could not install the requirements for the Lambda runtime: {last}")
        shutil.rmtree(root, ignore_errors=True)
        target.rename(root)
        (root / ".complete").write_text("ok\n")
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or relative.name == ".complete" or relative.suffix == ".pyc":
            continue
        if relative.parts[0] in _SKIPPED_PARTS or "__pycache__" in relative.parts:
            continue
        if relative.parent.name.endswith(".dist-info") and relative.name in _SKIPPED_NAMES:
            continue
        files[relative.as_posix()] = path.read_bytes()
    return files


def _accepts(args: ast.arguments, count: int) -> bool:
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    return (args.vararg is not None and required <= count) or required <= count <= positional


def _describe(args: ast.arguments) -> str:
    names = [a.arg for a in (*args.posonlyargs, *args.args)]
    if args.vararg is not None:
        names.append("*" + args.vararg.arg)
    return f"({', '.join(names)})" if names else "no arguments"


def _download(uri: str, settings: NovaflowSettings) -> tuple[Path, Path | None]:
    """Fetch an ``s3://`` reward file (and ``requirements.txt`` in the same prefix, when there is one)."""
    bucket, key = split_s3_uri(uri)
    s3 = get_client("s3", settings)
    folder = Path(tempfile.mkdtemp(prefix="novaflow-reward-"))
    path = folder / key.rsplit("/", 1)[-1]
    try:
        path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        raise wrap_client_error(exc, f"read the reward file {uri}") from exc
    req_key = (key.rsplit("/", 1)[0] + "/" if "/" in key else "") + REQUIREMENTS
    try:
        body = s3.get_object(Bucket=bucket, Key=req_key)["Body"].read()
    except ClientError as exc:
        if not is_not_found(exc) and "NoSuchKey" not in str(exc):
            raise wrap_client_error(exc, f"read s3://{bucket}/{req_key}") from exc
        return path, None
    requirements = folder / REQUIREMENTS
    requirements.write_bytes(body)
    return path, requirements
