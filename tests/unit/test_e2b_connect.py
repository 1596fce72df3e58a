"""The Connect framing of E2B's envd facade, and the control plane's parsing of list filters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from cove.errors import InvalidArgument, SessionNotFound
from cove.server.api.e2b import connect
from cove.server.api.e2b.control import _metadata_query, _statuses

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=10,
)


def request(body: bytes, content_type: str) -> Request:
    chunks = [body[:3], body[3:]]

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    scope = {"type": "http", "method": "POST", "headers": [(b"content-type", content_type.encode())]}
    return Request(scope, receive)


@given(st.dictionaries(st.text(), JSON_VALUES))
def test_a_streamed_request_is_one_envelope(message: dict[str, Any]) -> None:
    framed = request(connect.envelope(message), "application/connect+json")
    assert asyncio.run(connect.read_message(framed)) == message
    assert (
        asyncio.run(connect.read_message(request(json.dumps(message).encode(), "application/json")))
        == message
    )


@pytest.mark.parametrize("body", [b"[1]", b"{", b"\x00\x00"])
def test_bad_messages_are_invalid_arguments(body: bytes) -> None:
    content_type = "application/connect+json" if body.startswith(b"\x00") else "application/json"
    with pytest.raises(connect.ConnectError) as caught:
        asyncio.run(connect.read_message(request(body, content_type)))
    assert caught.value.code == "invalid_argument"


def unframe(data: bytes) -> list[tuple[int, dict[str, Any]]]:
    frames = []
    while data:
        flags, length = connect.HEADER.unpack_from(data)
        frames.append((flags, json.loads(data[connect.HEADER.size : connect.HEADER.size + length])))
        data = data[connect.HEADER.size + length :]
    return frames


async def body_of(messages: AsyncIterator[dict[str, Any]]) -> bytes:
    answer = connect.stream_answer(messages)
    assert answer.media_type == "application/connect+json"
    return b"".join([chunk async for chunk in answer.body_iterator])  # type: ignore[misc]


def test_a_stream_ends_with_its_error_or_nothing() -> None:
    async def fine() -> AsyncIterator[dict[str, Any]]:
        yield {"event": {"start": {"pid": 1}}}

    async def failing() -> AsyncIterator[dict[str, Any]]:
        yield {"a": 1}
        raise SessionNotFound("s")

    assert unframe(asyncio.run(body_of(fine()))) == [(0, {"event": {"start": {"pid": 1}}}), (2, {})]
    assert unframe(asyncio.run(body_of(failing()))) == [
        (0, {"a": 1}),
        (2, {"error": {"code": "not_found", "message": "session 's' not found"}}),
    ]


def test_list_filters() -> None:
    # The SDK quotes each key and value, then urlencodes the pairs (e2b/sandbox_sync/paginator.py).
    assert _metadata_query(urlencode({quote("k"): quote("v"), quote("a=b"): quote("c&d")})) == {
        "k": "v",
        "a=b": "c&d",
    }
    assert _metadata_query(None) is None
    assert _statuses("running") == "RUNNING"
    assert _statuses("running,paused") is None
    assert _statuses(None) is None
    with pytest.raises(InvalidArgument):
        _statuses("gone")
