"""The front door: a request's key is checked before its body is read, and every body is bounded.

Without it a caller with no key could make the server read (and FastAPI copy) a body of any size, or
hold a connection open with a body that never finishes. So, before any route runs:

- a request with a body to a route that takes an `Authorization: Bearer` key must carry a good one,
  or it is answered 401 with the body unread;
- a body over `max_request_body_bytes` is answered 413: at once when its Content-Length says so,
  else as soon as that many bytes have come;
- a body must arrive within `request_body_timeout_s` (408 otherwise).

Streamed uploads (session files, context files, links) carry their own size limits and may take as
long as they need, so long as no pause in them lasts `request_body_timeout_s`. The AgentBay RPC
surface carries its key in its form body: its body is read first, bounded by the surface's own cap.
Any error answered before the body has arrived whole closes the connection, so nothing more is read.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cove.errors import CoveError, PayloadTooLarge, RequestTimeout, Unauthorized
from cove.server.envelope import error_answer, request_id_of

_STREAMED = re.compile(r"PUT /v1/sessions/[^/]+/files|PUT /v1/context-files/[^/]+|[A-Z]+ /links/.*")
"""Routes that stream their body on, each with its own size limit."""
_KEY_ELSEWHERE = re.compile(
    r"[A-Z]+ (/|/links/.*|/v1/context-files/[^/]+|/v1/screenshots/[^/]+/[^/]+|(/v2)?/sandboxes(/.*)?)"
)
"""Routes whose credential is not an Authorization header: AgentBay RPC (form body), tokens in paths,
E2B's API (X-API-KEY, checked by its routes)."""
_DISCONNECT: Message = {"type": "http.disconnect"}


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    body_timeout_s: float


class _Body:
    """The request's body as the route reads it, cut off (as a disconnect) past a limit."""

    def __init__(self, receive: Receive, limit: int | None, timeout_s: float, streamed: bool, done: bool):
        self._receive = receive
        self._limit = limit
        self._timeout_s = timeout_s
        self._streamed = streamed
        self._deadline = asyncio.get_running_loop().time() + timeout_s
        self.received = 0
        self.done = done
        self.refusal: CoveError | None = None

    async def receive(self) -> Message:
        if self.refusal is not None:
            return _DISCONNECT
        if self.done:
            return await self._receive()
        wait = self._timeout_s if self._streamed else self._deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                message = await self._receive()
        except TimeoutError:
            self.refusal = RequestTimeout(
                f"the request body did not arrive within {self._timeout_s:g} s; send it again, faster"
            )
            return _DISCONNECT
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self._limit is not None and self.received > self._limit:
                self.refusal = _too_large(self._limit)
                return _DISCONNECT
            self.done = not message.get("more_body", False)
        return message


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is over {limit} bytes; send files with PUT /v1/sessions/{{id}}/files "
        "(Cove's SDK: file_system.upload_file)"
    )


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else None


class RequestLimits:
    """Pure ASGI middleware enforcing the front door's rules (see the module's docstring)."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        route = f"{scope['method']} {scope['path']}"
        streamed = _STREAMED.fullmatch(route) is not None
        declared = _declared_length(headers)
        has_body = bool(declared) or (declared is None and "transfer-encoding" in headers)
        limit = None if streamed or route == "POST /" else self.limits.max_body_bytes
        body = _Body(receive, limit, self.limits.body_timeout_s, streamed, done=not has_body)
        started = False

        async def send_unless_refused(message: Message) -> None:
            """The route's answer, unless the body was refused before it began; an early error closes."""
            nonlocal started
            if message["type"] == "http.response.start":
                if body.refusal is not None:
                    return
                started = True
                if message["status"] >= 400 and not body.done:
                    MutableHeaders(scope=message)["Connection"] = "close"
            if started:
                await send(message)

        async def send_closing(message: Message) -> None:
            """A refusal's answer: the body is left unread, so the connection ends with it."""
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Connection"] = "close"
            await send(message)

        refusal = await self._refusal(scope, headers, route, has_body, declared, limit)
        if refusal is None:
            try:
                await self.app(scope, body.receive, send_unless_refused)
            except Exception:
                if body.refusal is None or started:
                    raise
            refusal = None if started else body.refusal
        if refusal is not None:
            await error_answer(request_id_of(scope), refusal)(scope, receive, send_closing)

    async def _refusal(
        self,
        scope: Scope,
        headers: Headers,
        route: str,
        has_body: bool,
        declared: int | None,
        limit: int | None,
    ) -> CoveError | None:
        """What refuses the request before its body is read: no good key, or a declared size too big."""
        if has_body and _KEY_ELSEWHERE.fullmatch(route) is None:
            keys = scope["app"].state.services.keys
            try:
                await run_in_threadpool(keys.authenticate, headers.get("authorization"))
            except Unauthorized as error:
                return error
        if limit is not None and declared is not None and declared > limit:
            return _too_large(limit)
        return None
