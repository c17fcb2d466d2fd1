"""The client factory against the embedded AWS: one cached client, pointed at the session's endpoint."""

from __future__ import annotations

import threading

from novaflow.aws import get_client
from novaflow.settings import load_settings


def test_clients_are_cached_and_shared_across_threads(local_aws_session) -> None:
    seen: list[object] = []
    threads = [
        threading.Thread(target=lambda: seen.append(get_client("s3", settings=load_settings()))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 1
    assert seen[0].meta.endpoint_url == local_aws_session.url
