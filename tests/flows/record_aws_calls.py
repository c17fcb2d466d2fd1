"""Run a flow in this process and write down every AWS request it sends, as signed (a child of the flow tests).

Every botocore client, whichever session or library creates it, is created by ``botocore.session.Session
.create_client``; each gets a ``before-send`` handler that records the service, operation, URL and the access
key id, signing region and signing service from the request's SigV4 ``Authorization`` header, i.e. what the
embedded AWS receives. An unsigned request is recorded with no key id.

    python -m tests.flows.record_aws_calls OUT.jsonl PARAMS_JSON [AWS_CREDENTIALS_BLOCK]

Prints one JSON line: the flow run id and whether the run completed.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from typing import Any

import botocore.session

SIGV4 = re.compile(r"Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")


def install(out_path: str) -> None:
    lock = threading.Lock()

    def record(request: Any, event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        auth = request.headers.get("Authorization") or ""
        match = SIGV4.search(auth.decode() if isinstance(auth, bytes) else str(auth))
        entry = {
            "service": service,
            "operation": operation,
            "url": request.url,
            "key_id": match["key"] if match else None,
            "signing_region": match["region"] if match else None,
            "signing_service": match["service"] if match else None,
        }
        with lock, open(out_path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")

    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-send", record)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def main(out_path: str, params_json: str, block: str | None = None) -> None:
    install(out_path)
    from flows.end_to_end import end_to_end
    from flows.params import EndToEndParams

    state = end_to_end(EndToEndParams.model_validate_json(params_json), aws_credentials=block, return_state=True)
    print(json.dumps({"flow_run_id": str(state.state_details.flow_run_id), "completed": state.is_completed()}))


if __name__ == "__main__":
    main(*sys.argv[1:])
