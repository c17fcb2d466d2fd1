"""A team's agent: a Python file deployed as a Lambda (like a reward file), an existing Lambda, or an AgentCore
runtime.

The file defines ``lambda_handler(event, context)``; it receives one rollout per invocation (the task row as
``event["instance"]``, the rollout ``metadata``) and talks to the job's runtime service itself
(docs/agentic-rft.md#the-agent). It is packaged as ``lambda_function.py`` with the packages of a
``requirements.txt`` beside it installed for the Lambda runtime - the reward packaging's own installer, so the zip
is a function of its inputs - and deployed with the reward deployer: same role handling, versions and invoke grant
to the SageMaker role. Mistakes a person can fix are refused here in one line naming the file.

Example:
    >>> source = load_agent_source("examples/agents/guess_the_word.py")    # doctest: +SKIP
    >>> arn = deploy_agent(source).arn                                      # doctest: +SKIP
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from novaflow.errors import AgentError, RewardError
from novaflow.reward.deploy import RewardLambda, deploy_reward_lambda
from novaflow.reward.package import ENTRY_MODULE, zip_files
from novaflow.reward.source import REQUIREMENTS, vendored_files
from novaflow.settings import NovaflowSettings

AGENT_TIMEOUT_SECONDS = 900
"""A rollout may play many turns: the Lambda maximum (sagemaker v3's CustomAgentLambda default too)."""
FUNCTION_PREFIX = "SageMaker-novaflow-agent-"
"""The service invokes only functions whose name contains SageMaker (as for reward functions)."""


@dataclass(frozen=True)
class AgentSource:
    """A checked agent file and the requirements beside it."""

    path: Path
    requirements: Path | None = None

    @property
    def function_name(self) -> str:
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", self.path.stem).strip("-") or "agent"
        return (FUNCTION_PREFIX + stem)[:64]


def load_agent_source(location: str | Path) -> AgentSource:
    path = Path(location)
    if not path.is_file():
        raise AgentError(f"{path}: no such agent file")
    if path.suffix != ".py":
        raise AgentError(f"{path}: an agent file must be a Python file ending in .py")
    check_agent_code(path.read_bytes(), str(path))
    beside = path.with_name(REQUIREMENTS)
    return AgentSource(path, beside if beside.is_file() else None)


def check_agent_code(code: bytes, where: str) -> None:
    """The file parses and defines a plain ``lambda_handler(event, context)`` at the top level."""
    try:
        tree = ast.parse(code, filename=where)
    except SyntaxError as exc:
        raise AgentError(f"{where}: line {exc.lineno}: syntax error: {exc.msg}") from None
    except ValueError as exc:
        raise AgentError(f"{where}: not Python source ({exc})") from None
    node = next(
        (n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "lambda_handler"),
        None,
    )
    if node is None:
        raise AgentError(f"{where}: defines no lambda_handler(event, context) at the top level")
    if isinstance(node, ast.AsyncFunctionDef):
        raise AgentError(f"{where}: line {node.lineno}: lambda_handler is async; define it as a plain def")
    positional = len(node.args.posonlyargs) + len(node.args.args)
    if positional - len(node.args.defaults) > 2 or (positional < 2 and node.args.vararg is None):
        raise AgentError(f"{where}: line {node.lineno}: lambda_handler must take (event, context)")


def build_agent_zip(source: AgentSource, *, cache_dir: Path | None = None) -> bytes:
    """``lambda_function.py`` (the team's file) plus its requirements installed for the Lambda runtime."""
    files = {ENTRY_MODULE: source.path.read_bytes()}
    if source.requirements is not None:
        try:
            vendored = vendored_files(source.requirements, cache_dir=cache_dir)
        except RewardError as exc:
            raise AgentError(str(exc)) from None
        for name, data in vendored.items():
            if name in files:
                raise AgentError(f"{source.requirements}: installs {name}, which clashes with the agent's own file")
            files[name] = data
    return zip_files(files)


def deploy_agent(source: AgentSource, settings: NovaflowSettings, *, zip_bytes: bytes | None = None) -> RewardLambda:
    """Create or update the agent's function (unchanged code deploys nothing) and grant the SageMaker role."""
    try:
        return deploy_reward_lambda(
            function_name=source.function_name,
            settings=settings,
            timeout_seconds=AGENT_TIMEOUT_SECONDS,
            zip_bytes=zip_bytes if zip_bytes is not None else build_agent_zip(source),
            environment={},
        )
    except RewardError as exc:
        raise AgentError(str(exc).replace("reward function", "agent function")) from None
