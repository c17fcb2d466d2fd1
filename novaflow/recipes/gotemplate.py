"""The part of Go's text/template (with the Helm functions the Nova charts call) needed to render those charts.

The recipe hub publishes the HyperPod job of each Nova recipe as a Helm chart, and its launcher renders it with
``helm template``. novaflow keeps no helm binary (a Prefect worker would have to carry it), so the derivation in
:mod:`novaflow.recipes.hyperpod_derive` renders the chart itself with this interpreter: actions, trim markers,
``if``/``with``/``else``/``range``/variables, comments, pipelines and the functions the charts use (``quote``,
``indent``, ``nindent``, ``toYaml``, ``default``, ``int``, ``gt``, ``eq``, ``ne``, ``or``, ``and``, ``not``,
``index``, ``add``, ``printf``). A chart that needs more fails loudly (:class:`TemplateError`), so a hub release
using a new construct is noticed at refresh time instead of producing a wrong job.

Example:
    >>> render("{{ range $k, $v := .Values.m }}{{ $k }}={{ $v | quote }} {{ end }}", {"Values": {"m": {"b": 2}}})
    'b="2" '
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from novaflow.errors import ConfigError


class TemplateError(ConfigError):
    """The chart uses a construct this interpreter does not know (or is malformed)."""


_ACTION = re.compile(r"\{\{(-?)(\s*)(.*?)(\s*)(-?)\}\}", re.DOTALL)
_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<assign>:=|=)|(?P<punct>[()|,])'
    r"|(?P<var>\$[\w]*(?:\.[\w]+)*)|(?P<field>\.(?:[\w]+(?:\.[\w]+)*)?)|(?P<ident>[A-Za-z_]\w*))"
)


# -- parsing ------------------------------------------------------------------------------------------------------


@dataclass
class _Text:
    text: str


@dataclass
class _Action:
    tokens: list[tuple[str, str]]


@dataclass
class _If:
    cond: list[tuple[str, str]]
    body: list[Any] = field(default_factory=list)
    other: list[Any] = field(default_factory=list)


@dataclass
class _With:
    source: list[tuple[str, str]]
    body: list[Any] = field(default_factory=list)
    other: list[Any] = field(default_factory=list)


@dataclass
class _Range:
    names: list[str]
    source: list[tuple[str, str]]
    body: list[Any] = field(default_factory=list)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"cannot read template action {text!r} at {text[pos:]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _split(source: str) -> list[Any]:
    """Text and actions, with ``{{-``/``-}}`` trimming applied to the neighbouring text."""
    items: list[Any] = []
    pos = 0
    trim_next = False
    for m in _ACTION.finditer(source):
        text = source[pos : m.start()]
        if trim_next:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        if text:
            items.append(_Text(text))
        if not m.group(3).startswith("/*"):  # a comment renders nothing (its trim markers still apply)
            items.append(_Action(_tokens(m.group(3))))
        trim_next = bool(m.group(5))
        pos = m.end()
    tail = source[pos:]
    if trim_next:
        tail = tail.lstrip()
    if tail:
        items.append(_Text(tail))
    return items


def _parse(items: list[Any]) -> list[Any]:
    root: list[Any] = []
    stack: list[tuple[Any, list[Any]]] = [(None, root)]
    for item in items:
        target = stack[-1][1]
        if isinstance(item, _Text):
            target.append(item)
            continue
        toks = item.tokens
        head = toks[0] if toks else ("", "")
        if head == ("ident", "if"):
            node = _If(toks[1:])
            target.append(node)
            stack.append((node, node.body))
        elif head == ("ident", "with"):
            node_w = _With(toks[1:])
            target.append(node_w)
            stack.append((node_w, node_w.body))
        elif head == ("ident", "range"):
            rest = toks[1:]
            names: list[str] = []
            if any(k == "assign" for k, _ in rest):
                idx = next(i for i, (k, _) in enumerate(rest) if k == "assign")
                names = [v for k, v in rest[:idx] if k == "var"]
                rest = rest[idx + 1 :]
            node_r = _Range(names, rest)
            target.append(node_r)
            stack.append((node_r, node_r.body))
        elif head == ("ident", "else"):
            owner = stack[-1][0]
            if not isinstance(owner, (_If, _With)):
                raise TemplateError("else outside if or with")
            stack[-1] = (owner, owner.other)
        elif head == ("ident", "end"):
            if len(stack) == 1:
                raise TemplateError("end without a block")
            stack.pop()
        else:
            target.append(item)
    if len(stack) != 1:
        raise TemplateError("a block is not closed with end")
    return root


# -- evaluation ---------------------------------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and not (isinstance(value, (dict, list)) and not value)


def _text(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _to_yaml(value: Any) -> str:
    return str(yaml.safe_dump(value, default_flow_style=False, sort_keys=True)).rstrip("\n")


def _indent(n: Any, text: Any) -> str:
    pad = " " * int(n)
    return "\n".join(pad + line for line in _text(text).split("\n"))


_FUNCS: dict[str, Any] = {
    "quote": lambda *a: " ".join('"' + _text(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in a),
    "indent": _indent,
    "nindent": lambda n, text: "\n" + _indent(n, text),
    "toYaml": _to_yaml,
    "default": lambda d, *v: v[0] if v and _truthy(v[0]) else d,
    "int": lambda v: int(v or 0),
    "gt": lambda a, b: a > b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "or": lambda *a: next((v for v in a if _truthy(v)), a[-1]),
    "and": lambda *a: next((v for v in a if not _truthy(v)), a[-1]),
    "not": lambda v: not _truthy(v),
    "index": lambda c, *keys: _index(c, keys),
    "add": lambda *a: sum(int(v) for v in a),
    "printf": lambda fmt, *a: _printf(fmt, a),
}


def _index(container: Any, keys: tuple[Any, ...]) -> Any:
    for key in keys:
        container = container[key] if container is not None else None
    return container


def _printf(fmt: str, args: tuple[Any, ...]) -> str:
    return re.sub(r"%[sdv]", lambda _m, it=iter(args): _text(next(it)), fmt)  # type: ignore[misc]


class _Scope:
    def __init__(self, dot: Any, root: Any, variables: dict[str, Any]) -> None:
        self.dot = dot
        self.root = root
        self.vars = variables

    def child(self, dot: Any) -> _Scope:
        return _Scope(dot, self.root, dict(self.vars))


def _lookup(base: Any, path: list[str]) -> Any:
    for part in path:
        if part == "Get" and isinstance(base, _Files):
            return base.get
        base = base.get(part) if isinstance(base, dict) else getattr(base, part, None)
    return base


class _Files:
    """``.Files`` of a chart: every file the template reads has the one text the caller gives (the recipe), or, given
    a mapping, the text of that name (a missing file reads as empty, as in helm)."""

    def __init__(self, text: str | dict[str, str]) -> None:
        self.text = text

    def get(self, name: str) -> str:
        if isinstance(self.text, dict):
            return self.text.get(name, "")
        return self.text


def _operand(tok: tuple[str, str], scope: _Scope) -> Any:
    kind, value = tok
    if kind == "str":
        return bytes(value[1:-1], "utf-8").decode("unicode_escape")
    if kind == "num":
        return float(value) if "." in value else int(value)
    if kind == "field":
        return scope.dot if value == "." else _lookup(scope.dot, value[1:].split("."))
    if kind == "var":
        name, _, rest = value.partition(".")
        if name == "$":
            base = scope.root
        elif name in scope.vars:
            base = scope.vars[name]
        else:
            raise TemplateError(f"undefined variable {name}")
        return _lookup(base, rest.split(".")) if rest else base
    if kind == "ident" and value in ("true", "false", "nil"):
        return {"true": True, "false": False, "nil": None}[value]
    raise TemplateError(f"unexpected {value!r}")


def _group(tokens: list[tuple[str, str]], start: int) -> tuple[list[tuple[str, str]], int]:
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i] == ("punct", "("):
            depth += 1
        elif tokens[i] == ("punct", ")"):
            depth -= 1
            if depth == 0:
                return tokens[start + 1 : i], i + 1
    raise TemplateError("unbalanced parentheses")


def _pipeline(tokens: list[tuple[str, str]], scope: _Scope) -> Any:
    commands: list[list[Any]] = [[]]
    i = 0
    while i < len(tokens):
        if tokens[i] == ("punct", "("):
            inner, i = _group(tokens, i)
            commands[-1].append(("groupval", _Deferred(inner)))
            continue
        if tokens[i] == ("punct", "|"):
            commands.append([])
        else:
            commands[-1].append(tokens[i])
        i += 1
    result: Any = _NOTHING
    for command in commands:
        result = _command(command, scope, result)
    return result


class _Deferred:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens


_NOTHING = object()


def _arg(tok: Any, scope: _Scope) -> Any:
    if tok[0] == "groupval":
        return _pipeline(tok[1].tokens, scope)
    return _operand(tok, scope)


def _command(command: list[Any], scope: _Scope, piped: Any) -> Any:
    if not command:
        raise TemplateError("empty command in pipeline")
    head = command[0]
    if head[0] == "ident" and head[1] in _FUNCS:
        args = [_arg(t, scope) for t in command[1:]]
        if piped is not _NOTHING:
            args.append(piped)
        return _FUNCS[head[1]](*args)
    if head[0] == "ident" and head[1] not in ("true", "false", "nil"):
        raise TemplateError(f"function {head[1]!r} is not supported")
    value = _arg(head, scope)
    if callable(value):
        args = [_arg(t, scope) for t in command[1:]]
        return value(*args)
    if len(command) > 1 or piped is not _NOTHING:
        raise TemplateError(f"cannot call {head[1]!r}")
    return value


def _run(nodes: list[Any], scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _If):
            _run(node.body if _truthy(_pipeline(node.cond, scope)) else node.other, scope, out)
        elif isinstance(node, _With):
            value = _pipeline(node.source, scope)
            if _truthy(value):
                _run(node.body, scope.child(value), out)
            else:
                _run(node.other, scope, out)
        elif isinstance(node, _Range):
            source = _pipeline(node.source, scope)
            pairs = sorted(source.items()) if isinstance(source, dict) else list(enumerate(source or []))
            for key, value in pairs:
                inner = scope.child(value)
                if len(node.names) == 2:
                    inner.vars[node.names[0]], inner.vars[node.names[1]] = key, value
                elif node.names:
                    inner.vars[node.names[0]] = value
                _run(node.body, inner, out)
                for name in scope.vars:  # assignments (=) to outer variables survive the iteration
                    scope.vars[name] = inner.vars[name]
        else:
            toks = node.tokens
            if len(toks) >= 2 and toks[0][0] == "var" and toks[1][0] == "assign":
                scope.vars[toks[0][1]] = _pipeline(toks[2:], scope)
            else:
                out.append(_text(_pipeline(toks, scope)))


def render(source: str, values: dict[str, Any], *, file_text: str | dict[str, str] = "") -> str:
    """``source`` rendered with ``values`` as the root (``.Values``, ``.Release``, ...) as helm would;
    ``.Files.Get`` returns ``file_text`` (or, for a mapping, the text of the file named)."""
    root = {**values, "Files": _Files(file_text)}
    out: list[str] = []
    _run(_parse(_split(source)), _Scope(root, root, {}), out)
    return "".join(out).replace("<no value>", "")  # helm blanks what Go prints for a missing or nil value
