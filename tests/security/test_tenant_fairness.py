"""One tenant's long tool calls neither freeze the API for the others nor take more than its share.

Each test runs a tenant A's `sleep`s in threads and checks, while they are still running, what A and
a tenant B get: the order of events is asserted, never a duration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.integration.server import KEY_A, KEY_B, CoveServer, running_server

SLEEP_S = 6
"""Long enough that B's requests, on a busy two-core machine, are answered before A's sleeps end."""
LIMIT = 4


def create(client: httpx.Client) -> str:
    answer = client.post("/v1/sessions", json={})
    assert answer.status_code == 201, answer.text
    session_id: str = answer.json()["session"]["session_id"]
    return session_id


def shell(client: httpx.Client, session_id: str, command: str) -> httpx.Response:
    return client.post(f"/v1/sessions/{session_id}/tools/shell", json={"arguments": {"command": command}})


def stdout(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    text: str = json.loads(answer.json()["result"]["content"][0]["text"])["stdout"]
    return text


@contextmanager
def sleeping(server: CoveServer, session_id: str, count: int) -> Iterator[list[Future[httpx.Response]]]:
    """`count` calls of A's running `sleep SLEEP_S` at once in `session_id`; joined on the way out."""
    with server.client(KEY_A) as client, ThreadPoolExecutor(count) as pool:
        yield [pool.submit(shell, client, session_id, f"sleep {SLEEP_S}; echo slept") for _ in range(count)]


def running_sleeps(server: CoveServer, session_id: str) -> int:
    """How many of the sleeps have started inside the sandbox."""
    found = server.sandbox(session_id, "pgrep -cx sleep || true").stdout.strip()
    return int(found or 0)


def wait_for_sleeps(
    server: CoveServer, session_id: str, count: int, calls: list[Future[httpx.Response]]
) -> None:
    while running_sleeps(server, session_id) < count:
        assert not any(call.done() for call in calls), [call.result().text for call in calls if call.done()]
        time.sleep(0.1)


def still_running(calls: list[Future[httpx.Response]]) -> bool:
    return not any(call.done() for call in calls)


def agentbay_call(server: CoveServer, session_id: str) -> httpx.Response:
    form = {
        "Authorization": f"Bearer {KEY_A}",
        "SessionId": session_id,
        "Name": "shell",
        "Args": json.dumps({"command": "echo hi"}),
    }
    query = {"Action": "CallMcpTool", "Format": "json", "Version": "2025-05-06"}
    return httpx.post(f"{server.url}/", params=query, data=form, headers={"host": server.url}, timeout=60)


def mcp_call(server: CoveServer, session_id: str) -> dict[str, Any]:
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "shell", "arguments": {"command": "echo hi"}},
    }
    headers = {"Authorization": f"Bearer {KEY_A}", "Accept": "application/json, text/event-stream"}
    answer = httpx.post(
        f"{server.url}/v1/sessions/{session_id}/mcp", json=request, headers=headers, timeout=60
    )
    body: dict[str, Any] = answer.json()
    return body


def test_a_tenant_past_its_tool_call_limit_gets_429_and_others_go_on(data_root: Path) -> None:
    with (
        running_server(data_root / "data", tenant_tool_calls=LIMIT, warm_pool=0) as server,
        server.client(KEY_A) as a,
        server.client(KEY_B) as b,
    ):
        a_session, b_session = create(a), create(b)
        with sleeping(server, a_session, LIMIT) as calls:
            wait_for_sleeps(server, a_session, LIMIT, calls)

            refused = shell(a, a_session, "echo one too many")
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "QuotaExceeded"
            assert "COVE_TENANT_TOOL_CALLS" in refused.json()["error"]["message"]
            wire = agentbay_call(server, a_session)
            assert wire.status_code == 429 and wire.json()["Code"] == "QuotaExceeded", wire.text
            mcp = mcp_call(server, a_session)
            assert mcp["error"]["data"] == {"code": "QuotaExceeded", "http_status": 429}, mcp

            listed = b.get("/v1/sessions")
            assert listed.status_code == 200 and listed.json()["total_count"] == 1
            assert stdout(shell(b, b_session, "echo b is served")) == "b is served\n"
            assert still_running(calls)  # all of that happened while A's sleeps were running

        assert [stdout(call.result()) for call in calls] == ["slept\n"] * LIMIT
        assert stdout(shell(a, a_session, "echo room again")) == "room again\n"


def test_more_tool_calls_than_request_threads_leave_quick_routes_free(data_root: Path) -> None:
    """The server serves quick routes on 40 threads; tool calls beyond that must not take them."""
    many = 48
    with (
        running_server(data_root / "data", tenant_tool_calls=many, warm_pool=0) as server,
        server.client(KEY_A) as a,
        server.client(KEY_B) as b,
    ):
        a_session = create(a)
        with sleeping(server, a_session, many) as calls:
            wait_for_sleeps(server, a_session, many, calls)
            assert b.get("/v1/health").status_code == 200
            assert b.get("/v1/sessions").status_code == 200
            assert still_running(calls)
        assert [stdout(call.result()) for call in calls] == ["slept\n"] * many
