"""The multi-turn (agentic) RFT task format: one task per row, which the service hands to the team's agent.

A row is ``{"id": ..., "metadata": {"prompt": ...}}`` plus, optionally, ``answer`` (what the agent may grade
against), ``task`` (a task family name) and ``info`` (anything else the agent needs, an object). The service passes
the row to the agent as the rollout's ``instance`` without reading it (docs/agentic-rft.md#the-task-format), so
the rules are the ones that make a row usable at all: a unique, non-blank id, a non-blank prompt (a string, or
chat messages with roles), and - as for every Nova format - an optional field on every row or on none. A flat row
(``id``, ``prompt`` columns from a table) is lifted into that shape.

Example:
    >>> check_mtrl({"id": "t1", "metadata": {"prompt": "Guess my number"}, "answer": "7"})[1]
    {'answer'}
"""

from __future__ import annotations

from typing import Any

from novaflow.data.converse import RowProblem

OPTIONAL = ("answer", "task", "info")
ALLOWED = frozenset({"id", "metadata", *OPTIONAL})
PROMPT_ROLES = frozenset({"system", "user", "assistant"})


def lift_flat(row: dict[str, Any]) -> dict[str, Any]:
    """A table row with a ``prompt`` column (and no ``metadata``) as a task record; other rows unchanged."""
    if "metadata" in row or "prompt" not in row:
        return row
    out: dict[str, Any] = {"id": row.get("id"), "metadata": {"prompt": row["prompt"]}}
    for key in OPTIONAL:
        if row.get(key) is not None:
            out[key] = row[key]
    return out


def check_mtrl(row: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The record as written (ids as strings) and the optional fields it uses; :class:`RowProblem` otherwise."""
    row = lift_flat(row)
    if extra := sorted(set(row) - ALLOWED):
        raise RowProblem(extra[0], f"unexpected key {extra[0]!r}: a task row holds id, metadata, answer, task, info")
    task_id = row.get("id")
    if isinstance(task_id, bool) or not isinstance(task_id, (str, int)) or not str(task_id).strip():
        raise RowProblem("id", "missing or blank id: every task needs a unique id (string)")
    metadata = row.get("metadata")
    if not isinstance(metadata, dict):
        raise RowProblem("metadata", "missing 'metadata': it must be an object holding the task's prompt")
    _check_prompt(metadata.get("prompt"))
    used: set[str] = set()
    for key in ("answer", "task"):
        if row.get(key) is not None:
            value = row[key]
            if isinstance(value, str) and not value.strip():
                raise RowProblem(key, f"empty {key}: leave it out on every row or give it on every row")
            if key == "task" and not isinstance(value, str):
                raise RowProblem(key, f"wrong type: task must be a string, got {type(value).__name__}")
            used.add(key)
    if row.get("info") is not None:
        if not isinstance(row["info"], dict):
            raise RowProblem("info", f"wrong type: info must be an object, got {type(row['info']).__name__}")
        used.add("info")
    return {**row, "id": str(task_id)}, used


def _check_prompt(prompt: Any) -> None:
    if isinstance(prompt, str):
        if not prompt.strip():
            raise RowProblem("metadata.prompt", "empty prompt")
        return
    if not isinstance(prompt, list) or not prompt:
        raise RowProblem("metadata.prompt", "missing prompt: a string, or a non-empty list of {role, content}")
    for i, message in enumerate(prompt):
        path = f"metadata.prompt[{i}]"
        if not isinstance(message, dict):
            raise RowProblem(path, "must be an object {role, content}")
        if message.get("role") not in PROMPT_ROLES:
            raise RowProblem(f"{path}.role", f"role {message.get('role')!r} not in {', '.join(sorted(PROMPT_ROLES))}")
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            raise RowProblem(f"{path}.content", "content must be a non-blank string")
    if not any(m.get("role") == "user" for m in prompt):
        raise RowProblem("metadata.prompt", "needs at least one user message")


def prompt_text(row: dict[str, Any]) -> str:
    """The prompt as plain text (messages joined), for length statistics and the stand-in policy."""
    prompt = (row.get("metadata") or {}).get("prompt")
    if isinstance(prompt, str):
        return prompt
    return "\n".join(str(m.get("content", "")) for m in prompt or [] if isinstance(m, dict))


def answer_text(row: dict[str, Any]) -> str:
    answer = row.get("answer")
    if answer is None:
        return ""
    return answer if isinstance(answer, str) else str(answer)
