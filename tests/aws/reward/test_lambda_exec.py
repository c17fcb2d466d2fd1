"""Invoke through the embedded AWS runs the zip's real handler in a subprocess, with AWS's error shapes."""

from __future__ import annotations

import base64
import io
import json
import textwrap
import time
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError

from novaflow.aws import get_client
from novaflow.local.aws import lambda_exec
from novaflow.settings import load_settings

ROLE_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)

HANDLER_SOURCE = textwrap.dedent("""
    import json, logging, os, sys, time
    CALLS = 0
    logging.getLogger().setLevel(logging.INFO)

    def handler(event, context):
        global CALLS
        CALLS += 1
        mode = event.get("mode") if isinstance(event, dict) else None
        print("hello from the handler", json.dumps(event)[:60])
        if mode == "raise":
            raise ValueError("bad input: " + str(event.get("why")))
        if mode == "sleep":
            time.sleep(event["seconds"])
        if mode == "import":
            import novaflow  # present in the test venv (editable), absent on AWS
        if mode == "marshal":
            return {1, 2}
        if mode == "exit":
            os._exit(3)
        if mode == "spam":
            for i in range(400):
                print(f"line {i:04d} " + "x" * 40)
        logging.info("info line")
        return {"calls": CALLS, "greeting": os.environ.get("GREETING"), "event": event,
                "fn": context.function_name, "version": context.function_version,
                "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 3000,
                "task_root_first": sys.path[0] == os.environ["LAMBDA_TASK_ROOT"]}
""")


def make_zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", source)
    return buf.getvalue()


def create(name: str = "probe", source: str = HANDLER_SOURCE, timeout: int = 3) -> Any:
    iam = get_client("iam", settings=load_settings())
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=ROLE_TRUST)["Role"]["Arn"]
    lam = get_client("lambda", settings=load_settings())
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": make_zip(source)},
        Timeout=timeout,
        Environment={"Variables": {"GREETING": "hi"}},
    )
    return lam


def invoke(lam: Any, payload: Any, name: str = "probe", **kw: Any) -> tuple[dict, Any]:
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(payload), **kw)
    return resp, json.loads(resp["Payload"].read())


def test_runs_the_real_handler_with_env_and_context(aws: object) -> None:
    lam = create()
    resp, body = invoke(lam, {"x": 1})
    assert "FunctionError" not in resp and resp["StatusCode"] == 200
    assert body == {
        "calls": 1,
        "greeting": "hi",
        "event": {"x": 1},
        "fn": "probe",
        "version": "$LATEST",
        "remaining_ok": True,
        "task_root_first": True,
    }
    _, again = invoke(lam, {"x": 2})
    assert again["calls"] == 1  # a fresh process per invocation: no state kept between calls


def test_handler_exception_is_unhandled_with_aws_error_document(aws: object) -> None:
    lam = create()
    resp, body = invoke(lam, {"mode": "raise", "why": "no label"})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "bad input: no label"
    assert any('app.py", line' in frame and "in handler" in frame for frame in body["stackTrace"])


@pytest.mark.parametrize(
    "mode, error_type, message",
    [
        ("import", "ModuleNotFoundError", "No module named 'novaflow'"),
        ("marshal", "Runtime.MarshalError", "Unable to marshal response"),
        ("exit", "Runtime.ExitError", "Runtime exited with error: exit status 3"),
    ],
)
def test_runtime_failures(aws: object, mode: str, error_type: str, message: str) -> None:
    lam = create()
    resp, body = invoke(lam, {"mode": mode})
    assert resp["FunctionError"] == "Unhandled" and body["errorType"] == error_type
    assert message in body["errorMessage"]


def test_timeout_becomes_sandbox_timedout(aws: object) -> None:
    lam = create(timeout=1)
    started = time.monotonic()
    resp, body = invoke(lam, {"mode": "sleep", "seconds": 10})
    assert time.monotonic() - started < 5
    assert resp["FunctionError"] == "Unhandled" and body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")


def test_unknown_function_is_resource_not_found(aws: object) -> None:
    with pytest.raises(ClientError) as err:
        get_client("lambda", settings=load_settings()).invoke(FunctionName="missing", Payload=b"[]")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_log_tail_is_last_4kb_and_logs_reach_cloudwatch(aws: object) -> None:
    lam = create()
    resp, _ = invoke(lam, {"mode": "spam"}, LogType="Tail")
    tail = base64.b64decode(resp["LogResult"])
    assert len(tail) == 4096
    text = tail.decode()
    assert "line 0399 " in text and "line 0000 " not in text
    assert text.splitlines()[-1].startswith("REPORT RequestId: ") and "Duration: " in text
    logs = get_client("logs", settings=load_settings())
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/probe")["logStreams"]
    assert len(streams) == 1 and streams[0]["logStreamName"].split("/")[3].startswith("[$LATEST]")
    events = [
        e["message"]
        for e in logs.get_log_events(
            logGroupName="/aws/lambda/probe", logStreamName=streams[0]["logStreamName"], startFromHead=True
        )["events"]
    ]
    assert events[0].startswith("START RequestId: ") and events[1].startswith("hello from the handler")
    assert "line 0000 " + "x" * 40 in events
    assert any(e.startswith("[INFO]\t") and e.endswith("\tinfo line") for e in events)


def test_injected_error_and_queued_result(aws: Any) -> None:
    lam = create()
    lambda_exec.inject_error("probe", "throttled by test", times=1)
    resp, body = invoke(lam, {"x": 1})
    assert resp["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": "throttled by test", "errorType": "InjectedError", "stackTrace": []}
    assert "FunctionError" not in invoke(lam, {"x": 1})[0]  # one-shot
    aws.api("/moto-api/static/lambda-simple/response", {"results": ['{"queued": true}'], "region": "us-east-1"})
    assert invoke(lam, {"x": 1})[1] == {"queued": True}  # moto's documented lever still wins
    assert invoke(lam, {"x": 1})[1]["calls"] == 1


def test_published_version_keeps_its_code(aws: object) -> None:
    lam = create()
    lam.publish_version(FunctionName="probe")
    lam.update_function_code(FunctionName="probe", ZipFile=make_zip("def handler(e, c):\n    return 'v2'\n"))
    # moto 5.2.5 ignores the Qualifier parameter; a qualified name or ARN (what RFT is given) selects the version
    resp, body = invoke(lam, {"x": 1}, name="probe:1")
    assert body["calls"] == 1 and resp["ExecutedVersion"] == "1"
    resp, body = invoke(lam, {"x": 1})
    assert body == "v2" and resp["ExecutedVersion"] == "$LATEST"
