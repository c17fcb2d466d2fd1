"""IAM's ``SimulatePrincipalPolicy`` for the embedded AWS: moto 5.2.5 has none (its server answers an HTML 500, which
botocore reports as ``ResponseParserError``), so the dry run's permission check never ran offline.

The answer is IAM's evaluation of the principal's identity policies (a role's or user's inline policies and the
default versions of its attached managed policies) for each action and resource asked: an explicit ``Deny``
wins, else an ``Allow`` allows, else the decision is ``implicitDeny``; ``Action``/``NotAction`` and
``Resource``/``NotResource`` match with IAM's ``*`` and ``?`` wildcards, actions case-insensitively. Without
``ResourceArns`` IAM simulates the resource ``*``, which any statement's resource covers. A statement with a
``Condition`` does not match: the simulation is given no context values, and IAM lists the keys it lacked in
``MissingContextValues`` instead of assuming them. Permission boundaries, SCPs and resource policies are not
evaluated (IAM evaluates them only when they are passed in).
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any
from urllib.parse import unquote

from moto.core.responses import ActionResult
from moto.iam import responses as iam_responses

_DECISIONS = ("allowed", "explicitDeny", "implicitDeny")


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _matches(patterns: list[str], value: str, *, case_insensitive: bool) -> bool:
    for pattern in patterns:
        p, v = (pattern.lower(), value.lower()) if case_insensitive else (pattern, value)
        if value == "*" and not case_insensitive:  # the simulated resource "*" is any resource
            return True
        if fnmatch.fnmatchcase(v, p.replace("[", "[[]")):
            return True
    return False


def _statement_applies(statement: dict[str, Any], action: str, resource: str) -> bool:
    if "Action" in statement:
        if not _matches(_listed(statement["Action"]), action, case_insensitive=True):
            return False
    elif "NotAction" in statement:
        if _matches(_listed(statement["NotAction"]), action, case_insensitive=True):
            return False
    if "Resource" in statement:
        if not _matches(_listed(statement["Resource"]), resource, case_insensitive=False):
            return False
    elif "NotResource" in statement:
        if resource != "*" and _matches(_listed(statement["NotResource"]), resource, case_insensitive=False):
            return False
    return True


def _documents(backend: Any, arn: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(policy id, policy type, document) of every identity policy of the role or user ``arn``."""
    kind, _, name = arn.split(":", 5)[-1].partition("/")
    principal = backend.get_role_by_arn(arn) if kind == "role" else backend.get_user(name.rsplit("/", 1)[-1])
    found = [(policy_name, "IAM Policy", doc) for policy_name, doc in principal.policies.items()]
    for policy in principal.managed_policies.values():
        default = next((v for v in policy.versions if v.is_default), None)
        found.append((policy.name, "IAM Policy", default.document if default else policy.document))
    out = []
    for policy_id, kind_name, doc in found:
        parsed = json.loads(unquote(doc)) if isinstance(doc, str) else doc
        out.append((policy_id, kind_name, parsed))
    return out


def evaluate(
    documents: list[tuple[str, str, dict[str, Any]]], action: str, resource: str
) -> tuple[str, list[dict[str, Any]], list[str]]:
    """(decision, matched statements, missing context keys) for one action on one resource."""
    allowed: list[dict[str, Any]] = []
    denied: list[dict[str, Any]] = []
    missing: list[str] = []
    for policy_id, policy_type, document in documents:
        for statement in _listed_statements(document):
            if not _statement_applies(statement, action, resource):
                continue
            if statement.get("Condition"):
                for operator in statement["Condition"].values():
                    missing += [key for key in operator if key not in missing]
                continue
            matched = {"SourcePolicyId": policy_id, "SourcePolicyType": policy_type}
            (denied if statement.get("Effect") == "Deny" else allowed).append(matched)
    if denied:
        return "explicitDeny", denied, missing
    if allowed:
        return "allowed", allowed, missing
    return "implicitDeny", [], missing


def _listed_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def simulate_principal_policy(self: Any) -> ActionResult:
    source = self._get_param("PolicySourceArn")
    actions = self._get_param("ActionNames", [])
    resources = self._get_param("ResourceArns", []) or ["*"]
    documents = _documents(self.backend, source)
    results = []
    for action in actions:
        for resource in resources:
            decision, matched, missing = evaluate(documents, action, resource)
            results.append(
                {
                    "EvalActionName": action,
                    "EvalResourceName": resource,
                    "EvalDecision": decision,
                    "MatchedStatements": matched,
                    "MissingContextValues": missing,
                }
            )
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


def install() -> None:
    iam_responses.IamResponse.simulate_principal_policy = simulate_principal_policy  # type: ignore[attr-defined]
