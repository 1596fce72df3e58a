"""The envelope of every HTTP answer: a request id, the status counted, and Cove's JSON error body.

A pure ASGI middleware, outermost of the app's own, so that even an unexpected exception is answered
here (a 500 with the same body as any other error, its request id, counted, logged once) rather than
by Starlette's last-resort handler, which answers outside it and closes the keep-alive connection.
"""

from __future__ import annotations

import logging
import uuid

from pydantic import BaseModel
from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cove.errors import CoveError

log = logging.getLogger("cove.server")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorAnswer(BaseModel):
    """What every failed native call answers: `code` is stable, `message` says what to do."""

    request_id: str
    error: ErrorDetail


_ERRORS: dict[int | str, str] = {
    400: "bad input (code InvalidArgument)",
    401: "no or unknown API key (code Unauthorized)",
    404: "no such session, context or file of this key's",
    408: "the request body took too long to arrive (code RequestTimeout)",
    409: "the session or context is in the wrong state for this",
    413: "the request body or a file is too large (code PayloadTooLarge)",
    429: "over this key's quota (code QuotaExceeded)",
    500: "the server failed (codes InternalError, SandboxError); see its log by request id",
    503: "the host has no room for another sandbox now (code CapacityExceeded)",
    "default": "any other error, in the same body",
}
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorAnswer, "description": description} for status, description in _ERRORS.items()
}
"""Every error a native route may answer, for the OpenAPI document: one definition for all routes."""


def error_answer(request_id: str, error: CoveError) -> JSONResponse:
    """Cove's error body, the same from a route, a middleware or the last-resort handler."""
    body = {"request_id": request_id, "error": {"code": error.code, "message": error.message}}
    return JSONResponse(body, status_code=error.http_status)


def request_id_of(scope: Scope) -> str:
    found: str = scope["state"]["request_id"]
    return found


class RequestEnvelope:
    """Gives each HTTP request an id, stamps and counts its answer, and answers what nothing else did."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        metrics = scope["app"].state.services.metrics
        started = gone = False

        async def receive_watched() -> Message:
            nonlocal gone
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            return message

        async def send_stamped(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
                metrics.answered(message["status"])
            await send(message)

        try:
            await self.app(scope, receive_watched, send_stamped)
        except Exception as error:
            if gone or isinstance(error, ClientDisconnect):
                log.info("request %s: the client went away before its answer", request_id)
                return
            if started:
                raise  # the answer is cut short: the server logs it and must close the connection
            log.exception("request %s: unexpected error in %s %s", request_id, scope["method"], scope["path"])
            failure = CoveError(
                f"internal error ({type(error).__name__}); see the server log for request {request_id}"
            )
            await error_answer(request_id, failure)(scope, receive, send_stamped)
