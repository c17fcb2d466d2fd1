"""What the Prefect run form shows for every flow: descriptions an HTML renderer keeps whole, defaults as values.

The UI renders a parameter's description as markdown with HTML allowed, so ``novaflow-<run_name>`` shows as
``novaflow-`` (the "tag" is dropped). A list or dict default given by ``default_factory`` is missing from the JSON
schema, so the form shows an empty field ("0 selected") although the flow would use the default. These tests walk
every flow in ``flows/`` so a parameter added later is held to the same rules.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from typing import Any

from prefect import Flow
from prefect.utilities.callables import parameter_schema
from pydantic import BaseModel

import flows

HTML_LIKE = re.compile(r"<[A-Za-z/!]")


def every_flow() -> Iterator[Flow[Any, Any]]:
    seen: set[int] = set()
    for info in pkgutil.walk_packages(flows.__path__, prefix="flows."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, Flow) and id(value) not in seen:
                seen.add(id(value))
                yield value


def descriptions(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                yield path, value
            else:
                yield from descriptions(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from descriptions(value, f"{path}[{i}]")


def models(annotation: Any, seen: set[type[BaseModel]]) -> Iterator[type[BaseModel]]:
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel) and candidate not in seen:
            seen.add(candidate)
            yield candidate
            for field in candidate.model_fields.values():
                yield from models(field.annotation, seen)


def test_there_are_flows_to_check() -> None:
    names = {f.name for f in every_flow()}
    assert {"end-to-end", "sft", "rft", "deploy", "cleanup"} <= names


def test_no_description_carries_text_an_html_renderer_drops() -> None:
    bad = [
        f"{flow.name}: {where}: {text!r}"
        for flow in every_flow()
        for where, text in descriptions(parameter_schema(flow.fn).model_dump(), "schema")
        if HTML_LIKE.search(text)
    ]
    assert not bad, "write placeholders as {name} or NAME, not <name>:\n" + "\n".join(bad)


def test_list_and_dict_defaults_are_in_the_schema_so_the_form_shows_them() -> None:
    bad = []
    for flow in every_flow():
        seen: set[type[BaseModel]] = set()
        for annotation in flow.fn.__annotations__.values():
            hints = vars(importlib.import_module(flow.fn.__module__))
            resolved = hints.get(annotation, annotation) if isinstance(annotation, str) else annotation
            for model in models(resolved, seen):
                for name, field in model.model_fields.items():
                    if field.default_factory is None:
                        continue
                    value = field.default_factory()  # type: ignore[call-arg]
                    if not isinstance(value, BaseModel) and value:
                        bad.append(f"{flow.name}: {model.__name__}.{name} (default {value!r})")
    assert not bad, "give these a plain default, not default_factory:\n" + "\n".join(bad)


def test_the_end_to_end_form_starts_with_what_a_user_changes_most() -> None:
    from flows.end_to_end import end_to_end

    properties = list(parameter_schema(end_to_end.fn).model_dump()["definitions"]["EndToEndParams"]["properties"])
    assert properties[:4] == ["data", "model", "stages", "run_name"]
    assert properties.index("wait") > properties.index("sft") and properties[-1] == "tracking"


def test_optional_fields_render_as_plain_fields_and_still_take_none() -> None:
    from flows.params import FormParams

    ours = {cls.__name__ for cls in _subclasses(FormParams)}
    toggles = []
    for flow in every_flow():
        schema = parameter_schema(flow.fn).model_dump()
        for name, definition in schema.get("definitions", {}).items():
            if name not in ours:
                continue  # prefect-aws's own blocks (AwsCredentials) render as Prefect draws them
            for field, prop in definition.get("properties", {}).items():
                # (a field whose default is a value, not None, keeps its null branch: None is a choice there)
                if prop.get("default") is None and any(b.get("type") == "null" for b in prop.get("anyOf", [])):
                    toggles.append(f"{flow.name}: {name}.{field}")
    assert not toggles, "shown as 'X / None' toggles:\n" + "\n".join(toggles)

    from flows.end_to_end import end_to_end
    from flows.params import EndToEndParams

    props = parameter_schema(end_to_end.fn).model_dump()["definitions"]["JobParams"]["properties"]
    assert props["image_uri"]["type"] == "string" and "default" not in props["image_uri"]
    assert props["instance_count"] == {
        "type": "integer",
        "minimum": 1,
        "title": "Instance Count",
        "description": "Default from the instance table.",
    }
    assert EndToEndParams.model_validate({"sft": {"image_uri": None}}).sft.image_uri is None


def _subclasses(cls: type) -> set[type]:
    out = set(cls.__subclasses__())
    for sub in list(out):
        out |= _subclasses(sub)
    return out
