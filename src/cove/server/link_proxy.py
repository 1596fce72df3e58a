"""Relays a link's HTTP requests and WebSocket messages to a port inside the session.

Each request, or WebSocket, gets its own connection to the port, made by the session's tool agent
(`AgentClient.open_port`: the agent connects inside the sandbox's network namespace and relays raw
bytes). Cove's links (api/links.py) and an E2B sandbox's ports (api/e2b/ports.py) are relayed alike
(`proxy_http`, `proxy_websocket`); each surface only checks its credential and makes the connection.
Over it the server speaks HTTP/1.1 with h11, or WebSocket with the sans-I/O protocol of `websockets`,
and streams both ways, so no body or message is held whole beyond the message limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, Awaitable
from dataclasses import dataclass

import h11
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.exceptions import InvalidState as WebSocketInvalidState
from websockets.exceptions import ProtocolError as WebSocketProtocolError
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from cove.errors import CoveError, UpstreamError

CHUNK_BYTES = 256 * 1024
RESPONSE_TIMEOUT_S = 300.0
"""How long a request waits for the head of the service's answer (the body may take any time)."""
HANDSHAKE_TIMEOUT_S = 30.0
"""How long a WebSocket waits for the service to accept the upgrade."""
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""The largest WebSocket message relayed from the service (uvicorn's limit the other way)."""
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
"""Headers about one connection, never passed on (RFC 9110 7.6.1), with those `Connection` names."""
NOT_FORWARDED = HOP_BY_HOP | {"host", "expect"}
NOT_ANSWERED = HOP_BY_HOP | {"service-worker-allowed"}
"""A service worker may claim no more than its script's own folder: never the links' whole origin."""
WEBSOCKET_HANDSHAKE = {
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "sec-websocket-accept",
}
UNSENDABLE_CLOSE_CODES = {1004, 1005, 1006, 1015}
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
"""The HTTP methods relayed to a port."""

Headers = list[tuple[bytes, bytes]]


class UpstreamTimeout(UpstreamError):
    code = "UpstreamTimeout"
    http_status = 504


@dataclass(frozen=True)
class Upstream:
    """Where a link leads and what the service is told about the original request."""

    port: int
    target: bytes
    """The path after the link's prefix, with the query: what the service sees as the request target."""
    prefix: str
    """The link's own path (`/links/{id}/{port}/{token}`), for X-Forwarded-Prefix and cookie paths;
    empty for a port served on a host of its own."""
    cove_authorizations: frozenset[bytes] = frozenset()
    """The request's Authorization values that carry a Cove API key (any tenant's): never passed into
    the sandbox, where code the key's owner may not control would read it."""


Connection = tuple[Upstream, asyncio.StreamReader, asyncio.StreamWriter]
"""Where a request goes, and the connection to its port."""


def authorizations(scope: Scope) -> list[bytes]:
    """The request's Authorization values, of which those with a Cove key are never passed on."""
    return [value for key, value in scope["headers"] if key.lower() == b"authorization"]


def split_target(raw_path: bytes, query: bytes) -> bytes:
    """`/links/{id}/{port}/{token}/rest?q` -> `/rest?q`, percent-encoding kept exactly as sent."""
    parts = raw_path.split(b"/", 5)
    target = b"/" + (parts[5] if len(parts) > 5 else b"")
    return target + b"?" + query if query else target


def forwarded_headers(headers: Headers, upstream: Upstream, client: str, scheme: str) -> Headers:
    """The client's headers minus hop-by-hop ones, with Host and X-Forwarded-* for the service.

    X-Forwarded-* headers the client sent are replaced, not trusted.
    """
    named_by_connection = {
        name.strip().lower()
        for key, value in headers
        if key.lower() == b"connection"
        for name in value.decode("latin-1").split(",")
    }
    kept: Headers = []
    original_host = b""
    for key, value in headers:
        name = key.decode("latin-1").lower()
        if name == "host":
            original_host = value
        if name in NOT_FORWARDED or name in named_by_connection or name.startswith("x-forwarded-"):
            continue
        if name == "authorization" and value in upstream.cove_authorizations:
            continue
        kept.append((key.lower(), value))
    kept += [
        (b"host", f"localhost:{upstream.port}".encode()),
        (b"x-forwarded-host", original_host),
        (b"x-forwarded-proto", scheme.encode()),
        (b"x-forwarded-for", client.encode()),
        (b"x-forwarded-prefix", upstream.prefix.encode()),
    ]
    return [(key, value) for key, value in kept if value]


def response_headers(headers: list[tuple[bytes, bytes]], prefix: str) -> Headers:
    """The service's answer headers minus hop-by-hop ones and Service-Worker-Allowed, its cookies
    scoped to the link (`scoped_cookie`)."""
    named_by_connection = {
        name.strip().lower()
        for key, value in headers
        if key == b"connection"
        for name in value.decode("latin-1").split(",")
    }
    return [
        (key, scoped_cookie(value, prefix) if key == b"set-cookie" else value)
        for key, value in headers
        if key.decode("latin-1") not in NOT_ANSWERED and key.decode("latin-1") not in named_by_connection
    ]


def scoped_cookie(value: bytes, prefix: str) -> bytes:
    """A Set-Cookie value with its Path replaced by the link's own and its Domain removed.

    Browsers send a cookie to every port of its host, so a cookie a service sets for `/` would reach
    every other link and the API's host too; scoped to the link's path, it comes back to this link
    only (a `__Host-` cookie, which must have Path=/, is then refused by the browser). With no
    prefix, a port served on a host of its own (an E2B sandbox's `{port}-{id}.{domain}`), the path
    is kept and only the Domain goes, so the cookie stays on that host.
    """
    cookie, *attributes = value.split(b";")
    dropped = (b"path", b"domain") if prefix else (b"domain",)
    kept = [
        attribute for attribute in attributes if attribute.split(b"=", 1)[0].strip().lower() not in dropped
    ]
    return b";".join([cookie, *kept, *([b" Path=" + prefix.encode()] if prefix else [])])


class HttpExchange:
    """One request relayed to the service: send the head, pump the body, read the answer."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: Upstream
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.port = upstream.port
        self.prefix = upstream.prefix
        self.connection = h11.Connection(h11.CLIENT)
        self.pump: asyncio.Task[None] | None = None
        self.client_gone = False

    async def start(
        self, method: str, target: bytes, headers: Headers, chunked: bool, receive: Receive
    ) -> h11.Response:
        """Send the request (its body streamed from `receive` meanwhile) and wait for the answer's head.

        `chunked`: the client sent its body without a length; it goes on to the service chunked.
        """
        if chunked:
            headers = [*headers, (b"transfer-encoding", b"chunked")]
        request = h11.Request(method=method, target=target, headers=[*headers, (b"connection", b"close")])
        try:
            self.writer.write(self.connection.send(request) or b"")
            self.pump = asyncio.create_task(self._pump_body(receive))
            try:
                return await asyncio.wait_for(self._head(), RESPONSE_TIMEOUT_S)
            except TimeoutError:
                raise UpstreamTimeout(
                    f"the service on port {self.port} did not answer within {RESPONSE_TIMEOUT_S:.0f} s"
                ) from None
        except BaseException:
            await self.close()
            raise

    async def _pump_body(self, receive: Receive) -> None:
        """The client's body to the service; then wait for the client to go, and hang up on the service.

        Only this task reads `receive`. A service that answers before reading the whole body (a 413,
        say) may close its end: the rest of the body is then read and dropped.
        """
        sending = True
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                self.client_gone = True
                self.writer.transport.abort()  # wakes the reader of the answer, which then ends
                return
            if not sending:
                continue
            try:
                if body := message.get("body", b""):
                    self.writer.write(self.connection.send(h11.Data(data=body)) or b"")
                if not message.get("more_body", False):
                    self.writer.write(self.connection.send(h11.EndOfMessage()) or b"")
                    sending = False
                await self.writer.drain()
            except (OSError, h11.LocalProtocolError):
                sending = False

    async def _next_event(self) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        """The next event of the answer (never NEED_DATA: it reads until there is one)."""
        while True:
            try:
                event = self.connection.next_event()
            except h11.RemoteProtocolError as error:
                raise UpstreamError(
                    f"the service on port {self.port} did not answer in HTTP: {error}"
                ) from None
            if event is h11.NEED_DATA:
                try:
                    data = await self.reader.read(CHUNK_BYTES)
                except OSError:
                    data = b""
                self.connection.receive_data(data)
                continue
            return event

    async def _head(self) -> h11.Response:
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Response):
                return event
            if isinstance(event, h11.InformationalResponse):
                continue  # 100 Continue and the like: the client got its own from the server
            raise UpstreamError(f"the service on port {self.port} closed the connection without answering")

    async def body(self) -> AsyncGenerator[bytes]:
        """The answer's body as it arrives.

        A service that hangs up midway raises UpstreamError: the client's connection is then cut
        too, so a short body never looks complete. A client that left ends it quietly.
        """
        try:
            while True:
                event = await self._next_event()
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return
                elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    raise UpstreamError(f"the service on port {self.port} ended its answer early")
        except UpstreamError:
            if not self.client_gone:
                raise
        finally:
            await self.close()

    async def close(self) -> None:
        self.writer.transport.abort()
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.pump


class RelayedResponse(Response):
    """The service's answer: its status and headers at once, its body streamed as it comes."""

    def __init__(self, exchange: HttpExchange, head: h11.Response) -> None:
        self.exchange = exchange
        self.status_code = head.status_code
        self.background = None
        self.raw_headers = response_headers(list(head.headers), exchange.prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self.exchange.body()
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            async for chunk in body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await body.aclose()
        if self.background is not None:
            await self.background()


async def relay_http(
    method: str,
    headers: Headers,
    chunked: bool,
    receive: Receive,
    upstream: Upstream,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> RelayedResponse:
    exchange = HttpExchange(reader, writer, upstream)
    head = await exchange.start(method, upstream.target, headers, chunked, receive)
    return RelayedResponse(exchange, head)


async def proxy_http(request: Request, connect: Awaitable[Connection]) -> Response:
    """An HTTP request to the service on the port that `connect` (which checks the request's
    credential) reaches, relayed both ways as it streams."""
    upstream, reader, writer = await connect
    client = request.client.host if request.client else ""
    headers = forwarded_headers(list(request.scope["headers"]), upstream, client, request.url.scheme)
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    return await relay_http(request.method, headers, chunked, request.receive, upstream, reader, writer)


async def proxy_websocket(websocket: WebSocket, connect: Awaitable[Connection]) -> None:
    """A WebSocket to the service on the port that `connect` (which checks the request's credential)
    reaches; refused with an HTTP answer if it cannot be."""
    writer = None
    try:
        upstream, reader, writer = await connect
        scheme = "https" if websocket.url.scheme == "wss" else "http"
        client = websocket.client.host if websocket.client else ""
        headers = forwarded_headers(list(websocket.scope["headers"]), upstream, client, scheme)
        protocol, received = await websocket_handshake(websocket, upstream, headers, reader, writer)
    except CoveError as error:
        if writer is not None:
            writer.transport.abort()
        await refuse_websocket(websocket, error)
        return
    await websocket.accept(subprotocol=protocol.subprotocol)
    await relay_websocket(websocket, protocol, received, reader, writer)


async def _flush(protocol: ClientProtocol, writer: asyncio.StreamWriter) -> None:
    for data in protocol.data_to_send():
        if data:
            writer.write(data)
        elif writer.can_write_eof():
            writer.write_eof()
    await writer.drain()


async def websocket_handshake(
    websocket: WebSocket,
    upstream: Upstream,
    headers: Headers,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> tuple[ClientProtocol, list[Frame]]:
    """Open the WebSocket to the service with the client's subprotocols and headers, or raise 502.

    Answers the protocol and any frames that arrived right behind the service's 101 answer.
    """
    subprotocols = websocket.scope.get("subprotocols") or None
    protocol = ClientProtocol(
        parse_uri(f"ws://localhost:{upstream.port}/"), subprotocols=subprotocols, max_size=MAX_MESSAGE_BYTES
    )
    request = protocol.connect()
    request.path = upstream.target.decode("latin-1")
    for key, value in headers:
        if key.decode("latin-1") not in WEBSOCKET_HANDSHAKE and key != b"host":
            request.headers[key.decode("latin-1")] = value.decode("latin-1")
    protocol.send_request(request)
    await _flush(protocol, writer)

    received: list[Frame] = []

    async def answer() -> None:
        while True:
            data = await reader.read(CHUNK_BYTES)
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            events = protocol.events_received()
            received.extend(event for event in events if isinstance(event, Frame))
            if events or not data:
                return

    try:
        await asyncio.wait_for(answer(), HANDSHAKE_TIMEOUT_S)
    except TimeoutError:
        raise UpstreamTimeout(
            f"the service on port {upstream.port} did not accept the WebSocket within "
            f"{HANDSHAKE_TIMEOUT_S:.0f} s"
        ) from None
    if protocol.state is not State.OPEN:
        failure = protocol.handshake_exc
        if isinstance(failure, InvalidStatus):
            reason = f"it answered HTTP {failure.response.status_code}"
        elif isinstance(failure, InvalidHandshake):
            reason = str(failure)
        else:
            reason = "it closed the connection"
        raise UpstreamError(f"the service on port {upstream.port} refused the WebSocket: {reason}")
    return protocol, received


async def relay_websocket(
    websocket: WebSocket,
    protocol: ClientProtocol,
    received: list[Frame],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """Messages both ways until either side closes; the close code is passed on where it can be."""
    towards_service = asyncio.create_task(_client_to_service(websocket, protocol, writer))
    towards_client = asyncio.create_task(_service_to_client(websocket, protocol, received, reader, writer))
    try:
        await asyncio.wait({towards_service, towards_client}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (towards_service, towards_client):
            task.cancel()
        for task in (towards_service, towards_client):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        writer.transport.abort()


async def _client_to_service(
    websocket: WebSocket, protocol: ClientProtocol, writer: asyncio.StreamWriter
) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            code, reason = message.get("code", 1000), message.get("reason") or ""
            with contextlib.suppress(WebSocketInvalidState, WebSocketProtocolError):
                if code in UNSENDABLE_CLOSE_CODES:
                    protocol.send_close()
                else:
                    protocol.send_close(code, reason)
            with contextlib.suppress(OSError):
                await _flush(protocol, writer)
            return
        if message.get("text") is not None:
            protocol.send_text(message["text"].encode())
        elif message.get("bytes") is not None:
            protocol.send_binary(message["bytes"])
        await _flush(protocol, writer)


async def _service_to_client(
    websocket: WebSocket,
    protocol: ClientProtocol,
    received: list[Frame],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    parts: list[bytes] = []
    opcode = Opcode.BINARY
    frames, ended = received, False
    while True:
        for frame in frames:
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                opcode, parts = frame.opcode, [bytes(frame.data)]
            elif frame.opcode is Opcode.CONT:
                parts.append(bytes(frame.data))
            else:
                continue  # pings are answered by the protocol itself; a close ends the loop below
            if frame.fin:
                message, parts = b"".join(parts), []
                if opcode is Opcode.TEXT:
                    await websocket.send_text(message.decode())
                else:
                    await websocket.send_bytes(message)
        with contextlib.suppress(OSError):
            await _flush(protocol, writer)
        if ended or protocol.close_rcvd is not None or protocol.state is State.CLOSED:
            break  # the close is answered (flushed just above): done, whether or not TCP ends too
        try:
            data = await reader.read(CHUNK_BYTES)
        except OSError:
            data = b""
        if data:
            protocol.receive_data(data)
        else:
            protocol.receive_eof()
            ended = True
        frames = [event for event in protocol.events_received() if isinstance(event, Frame)]
    closing = protocol.close_rcvd or protocol.close_sent
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        if closing is None:
            await websocket.close(1011, "the service in the session closed the connection")
        elif closing.code in UNSENDABLE_CLOSE_CODES:
            await websocket.close(1000)
        else:
            await websocket.close(closing.code, closing.reason)


async def relay_stream(
    websocket: WebSocket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """A WebSocket's messages to a raw byte stream and the stream back as binary messages, as
    websockify does for VNC, until either side ends."""
    towards_stream = asyncio.create_task(_messages_to_stream(websocket, writer))
    towards_client = asyncio.create_task(_stream_to_messages(websocket, reader))
    try:
        await asyncio.wait({towards_stream, towards_client}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (towards_stream, towards_client):
            task.cancel()
        for task in (towards_stream, towards_client):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        writer.transport.abort()
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await websocket.close(1000)


async def _messages_to_stream(websocket: WebSocket, writer: asyncio.StreamWriter) -> None:
    while (message := await websocket.receive())["type"] != "websocket.disconnect":
        data = message.get("bytes")
        writer.write(data if data is not None else (message.get("text") or "").encode())
        await writer.drain()


async def _stream_to_messages(websocket: WebSocket, reader: asyncio.StreamReader) -> None:
    while data := await reader.read(CHUNK_BYTES):
        await websocket.send_bytes(data)


async def refuse_websocket(websocket: WebSocket, error: CoveError) -> None:
    """An HTTP error answer to the upgrade where the server can send one, else a policy close."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        body = {"request_id": uuid.uuid4().hex, "error": {"code": error.code, "message": error.message}}
        await websocket.send_denial_response(JSONResponse(body, status_code=error.http_status))
    else:
        await websocket.close(code=1008, reason=error.message[:120])
