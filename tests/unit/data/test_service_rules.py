"""The Nova Forge SDK's dataset-validator cases, run through novaflow: the same inputs, the same verdicts.

sagemaker v3 (``sagemaker-train``) is the reference SDK now; Forge, which it replaces, still publishes the dataset
rules as executable cases. Each case is an input Forge's validator tests
(tests/unit/dataset/test_{sft,rft,eval,cpt}_dataset_validator.py at aws/nova-forge-sdk@a4d5b3d) feed to its SFT,
RFT, evaluation or CPT validator, rebuilt here with small helpers, with the verdict that SDK gives. novaflow
checks the file as the service would read it (:func:`novaflow.data.validate.validate_records`) and, for records
that carry messages, also prepares it. Where AWS's documentation disagrees with the SDK, novaflow follows the
documentation: those cases are in ``DOCUMENTED_EXCEPTIONS`` with both sources, and in README's "Where the
references and AWS disagree".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from novaflow.data.prepare import prepare_dataset
from novaflow.data.validate import validate_file, validate_records
from novaflow.errors import DataError
from novaflow.settings import load_settings

README = Path(__file__).parents[3] / "README.md"
SCHEMA = "bedrock-conversation-2024"

# -- small builders for Converse records ------------------------------------------------------------------------


def text(value: str) -> dict[str, Any]:
    return {"text": value}


def media(kind: str, fmt: str, uri: str | None = None, *, source: Any = None) -> dict[str, Any]:
    location = {"s3Location": {"uri": uri or f"s3://bucket/media/file.{fmt}", "bucketOwner": "123456789012"}}
    return {kind: {"format": fmt, "source": location if source is None else source}}


def reasoning(value: str) -> dict[str, Any]:
    return {"reasoningContent": {"reasoningText": {"text": value}}}


def tool_use(use_id: str, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"toolUse": {"toolUseId": use_id, "name": name, "input": args or {}}}


def tool_result(use_id: str, *content: dict[str, Any]) -> dict[str, Any]:
    return {"toolResult": {"toolUseId": use_id, "content": list(content)}}


def turn(role: str, *content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": list(content), **extra}


def tool_spec(name: str, description: str = "A tool", schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "toolSpec": {"name": name, "description": description, "inputSchema": {"json": schema or {"type": "object"}}}
    }


def converse(*messages: dict[str, Any], system: str | None = None, tools: list[Any] | None = None, **extra: Any):
    row: dict[str, Any] = {"schemaVersion": SCHEMA}
    if system is not None:
        row["system"] = [text(system)]
    if tools is not None:
        row["toolConfig"] = {"tools": tools}
    row["messages"] = list(messages)
    row.update(extra)
    return row


def qa(question: str, answer_content: list[dict[str, Any]] | None = None, *parts: dict[str, Any], **kw: Any):
    """One user question (plus media parts) and one assistant answer."""
    answer = answer_content if answer_content is not None else [text("Response")]
    return converse(turn("user", text(question), *parts), turn("assistant", *answer), **kw)


def rft_row(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"messages": list(messages), **fields}


def fn_tool(name: str, description: str = "A tool", params: dict[str, Any] | None = None, kind: str = "function"):
    return {
        "type": kind,
        "function": {
            "name": name,
            "description": description,
            "parameters": params or {"type": "object", "properties": {}},
        },
    }


CHEMISTRY = [
    {"role": "system", "content": "You are a helpful chemistry assistant"},
    {
        "role": "user",
        "content": "Predict hydrogen bond donors and acceptors for this SMILES: CCN(CC)CCC(=O)c1sc(N)nc1C",
    },
]
CHEMISTRY_ANSWER = {"donor_bond_counts": 2, "acceptor_bond_counts": 4}
STAT_TOOL = fn_tool(
    "StatRollAPI",
    "Generates character stats by rolling 4d6, dropping the lowest die result, and applying a modifier.",
    {
        "type": "object",
        "properties": {"modifier": {"description": "The modifier to add to the roll.", "type": "integer"}},
        "required": ["modifier"],
    },
)
WEATHER = tool_spec(
    "getWeather",
    "Get weather information for a location",
    {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
)
FIFA = converse(
    turn("user", text("Who won the FIFA world cup in 2022?")),
    turn("assistant", text("Argentina")),
    system="You are a helpful assistant.",
)
CALIFORNIA = converse(
    turn("user", text("What are some good places to visit in California?")),
    turn("assistant", text("San Jose, Los Angeles, San Diego")),
    turn("user", text("Where is San Diego?")),
    turn("assistant", text("South California")),
    system="You are a helpful assistant.",
)


@dataclass(frozen=True)
class Case:
    """One SDK test input: its data format, model, rows and the SDK's verdict."""

    id: str
    format: str
    model: str
    rows: list[Any]
    sdk: str  # "accept" or "reject"
    where: str | None = None  # the field novaflow names in its first rejection
    extra: dict[str, Any] = field(default_factory=dict)


SFT_CASES = [
    Case("micro_rejects_multimodal", "sft", "nova-micro", [qa("What's in this image?", None, media("image", "png"))],
         "reject", "messages[0].content[1].image"),
    Case("nova1_text_conversations", "sft", "nova-lite", [FIFA] * 4 + [CALIFORNIA] * 3, "accept"),
    Case("nova1_missing_role", "sft", "nova-lite",
         [converse({"typo": "user", "content": [text("What is 2+2?")]}, turn("assistant", text("4")))],
         "reject", "messages[0].role"),
    Case("nova1_video", "sft", "nova-lite",
         [qa("How many white items are visible in this video?", None, media("video", "mp4"), system="Be brief.")],
         "accept"),
    Case("nova1_video_bad_format", "sft", "nova-lite",
         [qa("How many white items are visible?", None, media("video", "fake format"))],
         "reject", "messages[0].content[1].video.format"),
    Case("nova1_image", "sft", "nova-lite", [qa("What does the text say?", None, media("image", "png"))], "accept"),
    Case("nova1_image_bad_format", "sft", "nova-lite",
         [qa("What does the text say?", None, media("image", "fake_format"))],
         "reject", "messages[0].content[1].image.format"),
    Case("nova1_image_without_source", "sft", "nova-lite",
         [qa("What does the text say?", None, media("image", "png", source={}))],
         "reject", "messages[0].content[1].image.source.s3Location.uri"),
    Case("nova1_image_and_video_in_one_item", "sft", "nova-lite",
         [qa("What does it say?", None, {**media("image", "png"), **media("video", "mp4")})],
         "reject", "messages[0].content"),
    Case("nova1_rejects_reasoning", "sft", "nova-lite",
         [qa("What is the capital of France?", [reasoning("I recall geography"), text("Paris.")])],
         "reject", "messages[1].content[0].reasoningContent"),
    Case("nova2_reasoning", "sft", "nova-lite-2",
         [qa("What is the capital of France?", [reasoning("I recall geography"), text("Paris.")], system="Friendly.")],
         "accept"),
    Case("nova2_malformed_reasoning", "sft", "nova-lite-2",
         [qa("Capital of France?", [{"reasoningContent": {"improper_form": {"text": "x"}}}, text("Paris.")])],
         "reject", "messages[1].content[0].reasoningContent.reasoningText.text"),
    Case("nova2_document", "sft", "nova-lite-2",
         [qa("How can checkout fail?", None, media("document", "pdf"))], "accept"),
    Case("nova2_document_bad_format", "sft", "nova-lite-2",
         [qa("How can checkout fail?", None, media("document", "fake format"))],
         "reject", "messages[0].content[1].document.format"),
    Case("nova1_rejects_document", "sft", "nova-lite",
         [qa("Summarize this document", None, media("document", "pdf"))],
         "reject", "messages[0].content[1].document"),
    Case("nova1_webm_video", "sft", "nova-lite", [qa("Count the items", None, media("video", "webm"))], "accept"),
    Case("nova2_webm_video", "sft", "nova-lite-2", [qa("Count the items", None, media("video", "webm"))], "accept",
         "messages[0].content[1].video.format"),
    Case("nova1_tiff_image", "sft", "nova-lite", [qa("Count the items", None, media("image", "tiff"))], "reject",
         "messages[0].content[1].image.format"),
    Case("nova2_tiff_image", "sft", "nova-lite-2", [qa("Count the items", None, media("image", "tiff"))], "reject",
         "messages[0].content[1].image.format"),
    Case("nova1_webp_image", "sft", "nova-lite", [qa("Count the items", None, media("image", "webp"))], "accept"),
    Case("nova2_webp_image", "sft", "nova-lite-2", [qa("Count the items", None, media("image", "webp"))], "accept",
         "messages[0].content[1].image.format"),
    Case("nova2_tool_round_trip", "sft", "nova-lite-2", [converse(
        turn("user", text("What's the weather in Paris?")),
        turn("assistant", tool_use("weather_1", "getWeather", {"location": "Paris"})),
        turn("user", tool_result("weather_1", text("Sunny, 22°C"))),
        turn("assistant", text("It is sunny and 22°C in Paris.")),
        system="You compose function calls.", tools=[WEATHER])], "accept"),
    Case("nova1_tool_config", "sft", "nova-lite",
         [converse(turn("user", text("Hello")), turn("assistant", text("Hi")), tools=[tool_spec("getWeather")])],
         "accept"),
    Case("empty_tool_list", "sft", "nova-lite-2",
         [converse(turn("user", text("Hello")), turn("assistant", text("Hi")), tools=[])],
         "reject", "toolConfig.tools"),
    Case("duplicate_tool_names", "sft", "nova-lite-2", [converse(
        turn("user", text("Hello")), turn("assistant", text("Hi")),
        tools=[tool_spec("getTool", "First tool"), tool_spec("getTool", "Duplicate name")])],
        "reject", "toolConfig.tools[1].toolSpec.name"),
    Case("tool_use_from_user", "sft", "nova-lite-2", [converse(
        turn("user", tool_use("tool_1", "getTool")), turn("assistant", text("Hi")), tools=[tool_spec("getTool")])],
        "reject", "messages[0].content[0].toolUse"),
    Case("tool_result_from_assistant", "sft", "nova-lite-2", [converse(
        turn("user", text("Hello")), turn("assistant", tool_result("tool_1", text("Result"))),
        tools=[tool_spec("getTool")])],
        "reject", "messages[1].content[0].toolResult"),
    Case("tool_result_unknown_id", "sft", "nova-lite-2", [converse(
        turn("user", text("Hello")), turn("assistant", text("Let me help")),
        turn("user", tool_result("non_existent_id", text("Result"))), turn("assistant", text("Done")),
        tools=[tool_spec("getTool")])],
        "reject", "messages[2].content[0].toolResult.toolUseId"),
    Case("tool_not_declared", "sft", "nova-lite-2", [converse(
        turn("user", text("Hello")), turn("assistant", tool_use("tool_1", "notAllowedTool")),
        turn("user", tool_result("tool_1", text("Result"))), turn("assistant", text("Done")),
        tools=[tool_spec("allowedTool", "Allowed tool")])],
        "reject", "messages[1].content[0].toolUse.name"),
    Case("tool_result_json", "sft", "nova-lite-2", [converse(
        turn("user", text("Get info")), turn("assistant", tool_use("info_1", "getInfo")),
        turn("user", tool_result("info_1", {"json": {"status": "success", "data": "info"}})),
        turn("assistant", text("Got the info")), tools=[tool_spec("getInfo", "Get information")])], "accept"),
    Case("tool_use_with_reasoning", "sft", "nova-lite-2", [converse(
        turn("user", text("Calculate 2+2")),
        turn("assistant", reasoning("I need to add 2+2"), tool_use("calc_1", "calculate", {"a": 2, "b": 2})),
        turn("user", tool_result("calc_1", text("4"))), turn("assistant", text("2+2 equals 4")),
        tools=[tool_spec("calculate", "Perform calculation")])], "accept"),
    Case("tool_use_and_result_in_one_item", "sft", "nova-lite-2", [converse(
        turn("user", {**tool_use("tool_1", "getTool"), **tool_result("tool_1", text("Result"))}),
        turn("assistant", text("Done")), tools=[tool_spec("getTool")])],
        "reject", "messages[0].content[0]"),
    Case("unknown_record_key", "sft", "nova-lite-2",
         [converse(turn("user", text("Hello")), turn("assistant", text("Hi")), unknown_field="should be rejected")],
         "reject", "unknown_field"),
    Case("unknown_message_key", "sft", "nova-lite-2",
         [converse(turn("user", text("Hello"), metadata="should be rejected"), turn("assistant", text("Hi")))],
         "reject", "messages[0]"),
    Case("ten_images_in_a_message", "sft", "nova-lite-2",
         [qa("Describe", [text("Done.")], *[media("image", "png", f"s3://bucket/img{i}.png") for i in range(10)])],
         "accept"),
    Case("five_images_in_a_message", "sft", "nova-lite-2",
         [qa("Describe", [text("Done.")], *[media("image", "png", f"s3://bucket/img{i}.png") for i in range(5)])],
         "accept"),
    Case("eleven_images_in_a_message", "sft", "nova-lite-2",
         [qa("Describe", [text("Done.")], *[media("image", "png", f"s3://bucket/img{i}.png") for i in range(11)])],
         "reject", "messages[0].content"),
    Case("one_video_in_a_message", "sft", "nova-lite-2",
         [qa("Describe", [text("Done.")], media("video", "mp4", "s3://bucket/vid0.mp4"))], "accept"),
    Case("two_videos_in_a_message", "sft", "nova-lite-2",
         [qa("Describe", [text("Done.")], *[media("video", "mp4", f"s3://bucket/vid{i}.mp4") for i in range(2)])],
         "reject", "messages[0].content"),
]  # fmt: skip

RFT_CASES = [
    Case("chemistry", "rft", "nova-lite-2", [rft_row(*CHEMISTRY, id="chem-001", reference_answer=CHEMISTRY_ANSWER)],
         "accept"),
    Case("no_messages", "rft", "nova-lite-2",
         [{"id": "chem-001", "NOT messages": CHEMISTRY, "reference_answer": CHEMISTRY_ANSWER}], "reject", "messages"),
    Case("with_tool", "rft", "nova-lite-2", [rft_row(
        {"role": "system", "content": "You are a helpful game master assistant"},
        {"role": "user", "content": "Generate a strength stat for a warrior. Apply a +2 racial bonus modifier."},
        id="tool-001", tools=[STAT_TOOL],
        reference_answer={"tool_called": "StatRollAPI", "tool_parameters": {"modifier": 2}})], "accept"),
    Case("duplicate_tool", "rft", "nova-lite-2", [rft_row(
        *CHEMISTRY, id="tool-001", tools=[STAT_TOOL, STAT_TOOL], reference_answer={"tool_called": "StatRollAPI"})],
        "reject", "tools[1].function.name"),
    Case("nova1", "rft", "nova-lite", [rft_row(*CHEMISTRY, id="chem-001", reference_answer=CHEMISTRY_ANSWER)],
         "reject", "model"),
    Case("id_on_one_row_only", "rft", "nova-lite-2", [
        rft_row(*CHEMISTRY, id="chem-001", reference_answer=CHEMISTRY_ANSWER),
        rft_row(*CHEMISTRY, not_an_id="chem-001", reference_answer=CHEMISTRY_ANSWER)], "reject", "id"),
    Case("empty_tools", "rft", "nova-lite-2", [rft_row({"role": "user", "content": "Hello"}, id="e-1", tools=[])],
         "reject", "tools"),
    Case("no_tools_field", "rft", "nova-lite-2",
         [rft_row({"role": "user", "content": "What is 2+2?"}, id="n-1", reference_answer="2+2 equals 4")], "accept"),
    Case("tool_type_not_function", "rft", "nova-lite-2",
         [rft_row({"role": "user", "content": "Use a tool"}, id="t-1", tools=[fn_tool("myTool", kind="invalid_type")])],
         "reject", "tools[0]"),
    Case("parameters_not_object", "rft", "nova-lite-2", [rft_row(
        {"role": "user", "content": "Use a tool"}, id="p-1",
        tools=[fn_tool("myTool", params={"type": "string", "properties": {}})])],
        "reject", "tools[0].function.parameters"),
    Case("empty_function_name", "rft", "nova-lite-2",
         [rft_row({"role": "user", "content": "Use a tool"}, id="n-1", tools=[fn_tool("")])],
         "reject", "tools[0].function.name"),
    Case("empty_function_description", "rft", "nova-lite-2",
         [rft_row({"role": "user", "content": "Use a tool"}, id="d-1", tools=[fn_tool("myTool", "")])],
         "reject", "tools[0].function.description"),
    Case("two_tools", "rft", "nova-lite-2", [rft_row(
        {"role": "system", "content": "You have tools."}, {"role": "user", "content": "Weather and a sum"},
        id="m-1", tools=[fn_tool("getWeather", "Get weather"), fn_tool("calculate", "Perform calculations")],
        reference_answer="I'll get the weather and do the sum.")], "accept"),
    Case("image_on_a_message", "rft", "nova-lite-2",
         [rft_row({"role": "user", "content": "Describe this", **media("image", "png")})],
         "reject", "messages[0].image"),
    Case("custom_fields", "rft", "nova-lite-2", [rft_row(
        {"role": "user", "content": "Solve: 2x + 5 = 13"}, reference_answer={"solution": "x = 4"},
        task_id="algebra_001", difficulty_level="easy", domain="algebra", expected_reasoning_steps=3)], "accept"),
    Case("developer_role", "rft", "nova-lite-2",
         [rft_row({"role": "developer", "content": "You are a helper"}, {"role": "user", "content": "Hi"})], "accept"),
    Case("content_parts_with_image_url", "rft", "nova-lite-2", [rft_row({"role": "user", "content": [
        {"type": "text", "text": "Describe this image"},
        {"type": "image_url", "image_url": {"url": "https://example.com/img.png"}}]})],
        "accept", "messages[0].content[1]"),
    Case("tool_calls_and_tool_call_id", "rft", "nova-lite-2", [rft_row(
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "content": "Sunny, 22°C", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "It is sunny at 22°C in Paris."})], "accept"),
]  # fmt: skip

EVAL_SYSTEM = "You are an English major with top marks in class who likes to give minimal word responses: "
EVAL_QUERY = "What is the symbol that ends the sentence as a question"
DIGIT = "What is the number in the image? Please just use one English word to answer."
EVAL_CASES = [
    Case("text", "eval", "nova-lite", [{"system": EVAL_SYSTEM, "query": EVAL_QUERY, "response": "?"}], "accept"),
    Case("no_response", "eval", "nova-lite", [{"system": EVAL_SYSTEM, "query": EVAL_QUERY, "not right": "?"}],
         "reject", "response"),
    Case("image", "eval", "nova-lite", [{"system": "Image inference: ", "query": DIGIT, "response": "two",
                                         "images": [{"data": "data:image/png;Base64,iVBORw0KGgoA"}]}], "accept"),
    Case("image_not_base64", "eval", "nova-lite", [{"system": "Image inference: ", "query": DIGIT, "response": "two",
                                                    "images": [{"data": "data:image/png;WRONG,iVBORw0KGgoA"}]}],
         "reject", "images[0].data"),
    Case("metadata", "eval", "nova-lite",
         [{"system": "Image inference: ", "query": DIGIT, "response": "two", "metadata": "hello"}], "accept"),
    Case("metadata_with_reserved_word", "eval", "nova-lite",
         [{"system": "Image inference: ", "query": DIGIT, "response": "two", "metadata": "<image> bad response"}],
         "accept"),
]  # fmt: skip

LONG = (
    "This is a much longer text sample with several sentences. It shows that long content is handled. "
    "Continued pre-training uses substantial passages so the model learns a domain's language and knowledge."
)
CPT_CASES = [
    Case("one_text", "cpt", "nova-lite-2", [{"text": "A valid text sample for continued pre-training."}], "accept"),
    Case("three_texts", "cpt", "nova-pro", [{"text": "First sample."}, {"text": "Second one."}, {"text": "Third."}],
         "accept"),
    Case("long_text", "cpt", "nova-lite", [{"text": LONG}], "accept"),
    Case("empty_text", "cpt", "nova-micro", [{"text": ""}], "reject", "text"),
    Case("blank_text", "cpt", "nova-lite-2", [{"text": "   \n\t   "}], "reject", "text"),
    Case("content_instead_of_text", "cpt", "nova-lite-2", [{"content": "should be 'text'"}], "reject", "content"),
    Case("extra_field", "cpt", "nova-lite-2", [{"text": "Valid text", "extra_field": "not allowed"}],
         "reject", "extra_field"),
    Case("several_extra_fields", "cpt", "nova-lite-2",
         [{"text": "Valid text", "id": "s-1", "metadata": {"source": "web"}, "timestamp": "2024-01-01"}],
         "reject", "id"),
    Case("one_bad_row_of_three", "cpt", "nova-lite-2", [{"text": "First"}, {"text": ""}, {"text": "Third"}],
         "reject", "text", {"row": 2}),
    Case("special_characters", "cpt", "nova-lite-2", [{"text": "Symbols @#$%^&*() and unicode: 你好, Привет, مرحبا"}],
         "accept"),
    Case("newlines", "cpt", "nova-lite-2", [{"text": "Line 1\nLine 2\nLine 3\n\nParagraph 2"}], "accept"),
    Case("number_text", "cpt", "nova-lite-2", [{"text": 12345}], "reject", "text"),
    Case("null_text", "cpt", "nova-lite-2", [{"text": None}], "reject", "text"),
]  # fmt: skip

PNG = media("image", "png")
PDF = media("document", "pdf")
CODE_CASES = [
    # What the SDK's validator code decides where its tests have no case (sft/rft/eval_dataset_validator.py at
    # aws/nova-forge-sdk@a4d5b3d) and the AWS guides say nothing.
    Case("code_metadata_on_some_rows", "eval", "nova-lite-2",
         [{"query": "q1", "response": "r1", "metadata": "m"}, {"query": "q2", "response": "r2"}], "accept"),
    Case("code_system_on_some_rows", "eval", "nova-lite-2",
         [{"query": "q1", "response": "r1", "system": "s"}, {"query": "q2", "response": "r2"}], "reject", "system"),
    Case("code_empty_text_beside_image", "sft", "nova-lite-2", [qa("", None, PNG)], "accept"),
    Case("code_empty_text_beside_document", "sft", "nova-lite-2", [qa("", None, PDF)], "reject", "messages[0].content"),
    Case("code_empty_text_beside_reasoning", "sft", "nova-lite-2",
         [qa("Capital of France?", [reasoning("Paris."), text("")])], "reject", "messages[1].content"),
    Case("code_empty_text_beside_tool_use", "sft", "nova-lite-2",
         [converse(turn("user", text("Weather in Paris?")), turn("assistant", text(""), tool_use("t1", "getWeather")),
                   tools=[WEATHER])], "reject", "messages[1].content"),
    Case("code_tool_turns_without_content", "rft", "nova-lite-2", [rft_row(
        {"role": "user", "content": "Roll a strength stat with a +2 modifier."},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                              "function": {"name": "StatRollAPI", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1"}, tools=[STAT_TOOL])], "accept"),
    Case("code_user_turn_without_content", "rft", "nova-lite-2",
         [rft_row({"role": "system", "content": "Be brief."}, {"role": "user"})], "accept"),
]  # fmt: skip

CASES = SFT_CASES + RFT_CASES + EVAL_CASES + CPT_CASES + CODE_CASES

DOCUMENTED_EXCEPTIONS = {
    "nova2_webm_video": "Nova 2 SFT video formats are MOV, MKV, MP4 (AWS Nova 2 SFT data preparation guide)",
    "nova2_webp_image": "Nova 2 SFT image formats are PNG, JPEG, GIF (AWS Nova 2 SFT data preparation guide)",
    "content_parts_with_image_url": "RFT data is text only (AWS Nova RFT guide, current limitations)",
}
"""Case id -> why novaflow's verdict is the documentation's, not the SDK's."""


def novaflow_verdict(case: Case) -> tuple[str, list[Any]]:
    result = validate_records(case.rows, case.format, case.model, source=f"{case.id}.jsonl")
    return ("reject" if result.rejected else "accept"), result.rejected


@pytest.mark.parametrize("case", CASES, ids=[f"{c.format}-{c.id}" for c in CASES])
def test_verdict_equals_the_reference_sdk_or_the_documented_exception(case: Case) -> None:
    verdict, rejected = novaflow_verdict(case)
    expected = case.sdk if case.id not in DOCUMENTED_EXCEPTIONS else {"accept": "reject", "reject": "accept"}[case.sdk]
    assert verdict == expected, [r.as_dict() for r in rejected]
    if verdict == "reject":
        first = rejected[0]
        assert first.field == case.where
        assert first.source == f"{case.id}.jsonl"
        assert first.row == case.extra.get("row", first.row)
        assert first.reason.strip()


def test_every_documented_exception_is_a_real_case_and_in_the_readme() -> None:
    ids = {c.id for c in CASES}
    readme = README.read_text(encoding="utf-8")
    section = readme.split("## Where the references and AWS disagree", 1)[1]
    for case_id, why in DOCUMENTED_EXCEPTIONS.items():
        assert case_id in ids
        assert f"`{case_id}`" in section, f"README does not list the dataset exception {case_id}: {why}"


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


RECORD_PATH = [c for c in CASES if c.format in ("sft", "rft") and c.id not in ("nova1", "no_messages")]
"""Inputs that reach prepare's record path (a Nova 1 RFT job and a file without messages are refused earlier)."""


@pytest.mark.parametrize("case", RECORD_PATH, ids=lambda c: c.id)
def test_prepare_keeps_or_rejects_the_same_rows(case: Case, tmp_path: Path) -> None:
    """Records that already carry messages go through prepare's record path with the same verdict."""
    source = _jsonl(tmp_path / f"{case.id}.jsonl", case.rows)
    verdict, _ = novaflow_verdict(case)
    try:
        prepared = prepare_dataset(
            str(source), case.format, case.model, tmp_path / "out", strict=True, settings=load_settings()
        )
    except DataError as exc:
        assert verdict == "reject", str(exc)
        assert f"{case.id}.jsonl" in str(exc)
        return
    assert verdict == "accept"
    assert prepared.rows == len(case.rows)


def test_validate_file_numbers_rows_by_line_and_rejects_broken_json(tmp_path: Path) -> None:
    path = tmp_path / "cpt.jsonl"
    path.write_text('{"text": "ok"}\n\n{"text": \n{"text": ""}\n', encoding="utf-8")
    result = validate_file(str(path), "cpt", "nova-lite-2")
    assert result.rows == 3
    assert [(r.row, r.field) for r in result.rejected] == [(3, "line"), (4, "text")]
    assert result.rejected[0].reason.startswith("not valid JSON")
    assert result.rejected[1].reason == "empty text"


def test_gen_qa_metadata_column_is_carried_without_a_mapping(tmp_path: Path) -> None:
    source = _jsonl(
        tmp_path / "eval.jsonl",
        [{"query": "2+2?", "response": "4", "metadata": "arith"}, {"query": "3+3?", "response": "6", "metadata": "x"}],
    )
    prepared = prepare_dataset(str(source), "eval", "nova-lite", tmp_path / "out", settings=load_settings())
    lines = prepared.data_file.read_text(encoding="utf-8").splitlines()
    assert lines == [
        '{"query":"2+2?","response":"4","metadata":"arith"}',
        '{"query":"3+3?","response":"6","metadata":"x"}',
    ]
    assert validate_file(str(prepared.data_file), "eval", "nova-lite").ok


def test_cli_validate_prints_each_refused_row_and_exits_1(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from novaflow.cli import app

    rows = [qa("Count the items", None, media("video", fmt)) for fmt in ("mp4", "webm", "mov")]
    path = _jsonl(tmp_path / "train.jsonl", rows)
    runner = CliRunner()
    refused = runner.invoke(app, ["data", "validate", str(path), "--method", "sft", "--model", "nova-lite-2"])
    assert refused.exit_code == 1, refused.output
    assert refused.output.splitlines() == [
        f"{path}: 3 rows, 1 rejected",
        "  row 2 messages[0].content[1].video.format: video format 'webm' not supported (use mkv, mov, mp4)",
    ]
    taken = runner.invoke(app, ["data", "validate", str(path), "--method", "sft", "--model", "nova-lite"])
    assert taken.exit_code == 0 and taken.output == f"{path}: 3 rows, 0 rejected\n"
