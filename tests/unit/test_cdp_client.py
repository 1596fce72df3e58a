"""The agent's small CDP client (agent/cdp.py) against a WebSocket server that plays Chromium: answers
matched by id past events, fragmented and large messages, and the bounds on size and time."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.sync.server import ServerConnection, serve

from cove.agent import cdp

Handler = Callable[[ServerConnection, dict[str, Any]], None]


@pytest.fixture
def browser() -> Iterator[Callable[[Handler], int]]:
    """Start a fake browser whose `handler` gets each command; answers its port."""
    servers = []

    def start(handler: Handler) -> int:
        def serve_one(connection: ServerConnection) -> None:
            for message in connection:
                handler(connection, json.loads(message))

        server = serve(serve_one, "127.0.0.1", 0, max_size=None)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        port: int = server.socket.getsockname()[1]
        return port

    yield start
    for server in servers:
        server.shutdown()


def answer(connection: ServerConnection, command: dict[str, Any], result: Any) -> None:
    connection.send(json.dumps({"id": command["id"], "result": result}))


def test_answers_are_matched_by_id_and_events_kept(browser: Callable[[Handler], int]) -> None:
    def handler(connection: ServerConnection, command: dict[str, Any]) -> None:
        connection.send(json.dumps({"method": "Page.loadEventFired", "params": {"at": 1}, "sessionId": "s"}))
        connection.send(json.dumps({"id": 999, "result": {}}))  # someone else's answer
        answer(connection, command, {"echo": command["method"], "session": command.get("sessionId", "")})

    with cdp.CdpConnection(browser(handler), "/devtools/browser/x", 10) as connection:
        assert connection.call("Page.navigate", {"url": "x"}, "s") == {
            "echo": "Page.navigate",
            "session": "s",
        }
        assert connection.wait_event("Page.loadEventFired", "s") == {"at": 1}


def test_fragmented_and_large_messages(browser: Callable[[Handler], int]) -> None:
    big = "x" * 3_000_000

    def handler(connection: ServerConnection, command: dict[str, Any]) -> None:
        text = json.dumps({"id": command["id"], "result": {"data": big}})
        connection.send([text[:10], text[10:100], text[100:]])  # one message in three frames

    with cdp.CdpConnection(browser(handler), "/", 10) as connection:
        assert connection.call("Page.captureScreenshot", {"pad": "y" * 70_000})["data"] == big


def test_errors_too_large_and_too_slow(
    browser: Callable[[Handler], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def handler(connection: ServerConnection, command: dict[str, Any]) -> None:
        if command["method"] == "Fail":
            connection.send(json.dumps({"id": command["id"], "error": {"message": "no such thing"}}))
        elif command["method"] == "Large":
            answer(connection, command, {"data": "z" * 5000})
        # "Slow" is never answered

    port = browser(handler)
    with (
        cdp.CdpConnection(port, "/", 10) as connection,
        pytest.raises(cdp.CdpError, match="Fail: no such thing"),
    ):
        connection.call("Fail")
    monkeypatch.setattr(cdp, "MAX_MESSAGE_BYTES", 1000)
    with cdp.CdpConnection(port, "/", 10) as connection, pytest.raises(cdp.CdpError, match="over"):
        connection.call("Large")
    with cdp.CdpConnection(port, "/", 0.5) as connection, pytest.raises(cdp.CdpError, match="in time"):
        connection.call("Slow")


def test_nothing_listening() -> None:
    with pytest.raises(cdp.CdpError, match="cannot reach"):
        cdp.CdpConnection(1, "/", 2)
