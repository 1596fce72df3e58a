"""The Connect protocol (connectrpc.com) with its JSON codec, as E2B's SDK speaks it to envd.

Unary calls are a JSON body each way; streaming calls carry enveloped messages (a flag byte, a
big-endian u32 length, the JSON), and a streamed answer ends with one end-stream envelope that holds
the error, if any. Server streaming takes one message and answers many; client streaming takes
messages as they come and answers one. No compression either way. Only what envd's services need is
here.
"""

from __future__ import annotations

import json
import struct
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from cove.errors import CoveError

END_STREAM_FLAG = 0x02
HEADER = struct.Struct(">BI")
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Largest request message read (a SendInput's stdin is the largest envd takes)."""
STREAM_CONTENT_TYPE = "application/connect+json"

STATUS_OF_CODE = {
    "invalid_argument": 400,
    "failed_precondition": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "already_exists": 409,
    "resource_exhausted": 429,
    "canceled": 499,
    "unknown": 500,
    "internal": 500,
    "unimplemented": 501,
    "unavailable": 503,
    "deadline_exceeded": 504,
}
CODE_OF_STATUS = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    409: "failed_precondition",
    429: "resource_exhausted",
    501: "unimplemented",
    503: "unavailable",
}
"""Cove's HTTP statuses as Connect codes; any other is internal."""

Message = dict[str, Any]


class ConnectError(Exception):
    """A call's failure, with one of Connect's codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def of(cls, error: CoveError) -> ConnectError:
        return cls(CODE_OF_STATUS.get(error.http_status, "internal"), error.message)

    def body(self) -> Message:
        return {"code": self.code, "message": self.message}


async def read_message(request: Request) -> Message:
    """The request's one message: the body of a unary call, the first envelope of a streamed one."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_MESSAGE_BYTES + HEADER.size:
            raise ConnectError("resource_exhausted", f"the message is over {MAX_MESSAGE_BYTES} bytes")
    if request.headers.get("content-type", "").startswith(STREAM_CONTENT_TYPE):
        if len(body) < HEADER.size:
            raise ConnectError("invalid_argument", "the request holds no enveloped message")
        _, length = HEADER.unpack_from(body)
        body = body[HEADER.size : HEADER.size + length]
    return _parsed(bytes(body))


async def read_messages(request: Request) -> AsyncIterator[Message]:
    """A client stream's messages, each as soon as its envelope has arrived whole."""
    buffered = bytearray()
    async for chunk in request.stream():
        buffered += chunk
        while len(buffered) >= HEADER.size:
            _, length = HEADER.unpack_from(buffered)
            if length > MAX_MESSAGE_BYTES:
                raise ConnectError("resource_exhausted", f"a message is over {MAX_MESSAGE_BYTES} bytes")
            if len(buffered) < HEADER.size + length:
                break
            yield _parsed(bytes(buffered[HEADER.size : HEADER.size + length]))
            del buffered[: HEADER.size + length]
    if buffered:
        raise ConnectError("invalid_argument", "the stream ended inside a message")


def _parsed(body: bytes) -> Message:
    try:
        message = json.loads(body or b"{}")
    except ValueError as error:
        raise ConnectError("invalid_argument", f"the message is not JSON: {error}") from None
    if not isinstance(message, dict):
        raise ConnectError("invalid_argument", "the message must be a JSON object")
    return message


def unary_answer(message: Message) -> JSONResponse:
    return JSONResponse(message)


def unary_error(error: ConnectError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=STATUS_OF_CODE.get(error.code, 500))


def envelope(message: Message, flags: int = 0) -> bytes:
    data = json.dumps(message, separators=(",", ":")).encode()
    return HEADER.pack(flags, len(data)) + data


async def _framed(messages: AsyncIterator[Message]) -> AsyncIterator[bytes]:
    """Each message as an envelope, then the end of the stream, carrying the error that ended it."""
    end: Message = {}
    try:
        async for message in messages:
            yield envelope(message)
    except ConnectError as error:
        end = {"error": error.body()}
    except CoveError as error:
        end = {"error": ConnectError.of(error).body()}
    yield envelope(end, END_STREAM_FLAG)


def stream_answer(messages: AsyncIterator[Message]) -> StreamingResponse:
    """A streamed answer; each envelope is sent as soon as it is made."""
    return StreamingResponse(_framed(messages), media_type=STREAM_CONTENT_TYPE)


async def client_stream_answer(answer: Awaitable[Message]) -> Response:
    """A client-streaming call's answer, once the call has taken the whole request: its message and
    the end of the stream. (A streamed response would start while the request still arrives, and
    Starlette's watch for a disconnect would take the request's messages.)"""
    body, end = b"", {}
    try:
        body = envelope(await answer)
    except ConnectError as error:
        end = {"error": error.body()}
    except CoveError as error:
        end = {"error": ConnectError.of(error).body()}
    return Response(body + envelope(end, END_STREAM_FLAG), media_type=STREAM_CONTENT_TYPE)
