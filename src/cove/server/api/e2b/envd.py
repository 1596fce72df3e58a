"""E2B's envd, the in-sandbox API, served for every session by the server: `/health`, `/files`, and
the Connect services `process.Process` and `filesystem.Filesystem` (processes.py, filesystem.py).

Requests reach this app by their `E2b-Sandbox-Id` header or their Host (routing.py). The session is
found by that sandbox id (ids.py) and the `X-Access-Token` handed out at create (sessions/links.py
`sandbox_token`); every call is a tool call, or a streamed transfer, through the session's own
agent, like any other surface's.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from cove.errors import CoveError, InvalidArgument, InvalidState
from cove.sandbox.agent_client import AgentClient
from cove.server.api.e2b import ids
from cove.server.api.e2b.connect import (
    ConnectError,
    Message,
    client_stream_answer,
    read_message,
    read_messages,
    stream_answer,
    unary_answer,
    unary_error,
)
from cove.server.api.e2b.routing import ENVD_PORT, TARGET, SandboxTarget
from cove.server.api.e2b.signed_files import signed_session
from cove.server.api.e2b.uploads import IncomingFile, multipart_files, octet_stream_file
from cove.server.api.e2b.watchers import Watchers
from cove.server.sandbox_calls import in_sandbox
from cove.server.transfer_stalls import StallGuardedResponse, within_stalls
from cove.sessions import links
from cove.sessions.manager import SessionManager

DEFAULT_USER = "user"
"""The one user processes and files belong to in a Cove session, E2B's default user too."""

TOOL_ERROR_CODES = (
    ("no such file or directory", "not_found"),
    ("no process", "not_found"),
    ("already exists", "already_exists"),
    ("is not a directory", "invalid_argument"),
    ("is a directory", "invalid_argument"),
    ("permission denied", "permission_denied"),
    ("has exited", "failed_precondition"),
    ("has no terminal", "failed_precondition"),
)
"""Connect codes of the agent's tool errors, by the words its messages use (agent/tools/files.py,
processes.py)."""


class SandboxGone(CoveError):
    """What E2B's proxy answers for a sandbox that is not running; the SDK then raises
    SandboxNotRunningException."""

    code = "SandboxNotFound"
    http_status = 502

    def __init__(self) -> None:
        super().__init__("The sandbox was not found")


class PortClosed(CoveError):
    code = "PortNotOpen"
    http_status = 502

    def __init__(self, reason: str) -> None:
        super().__init__(f"The sandbox is running but port is not open ({reason})")


class UserNotSupported(CoveError):
    code = "UserNotSupported"
    http_status = 403


@dataclass(frozen=True)
class Sandbox:
    """The session a request is for, and how to reach its agent."""

    manager: SessionManager
    tenant_id: str
    session_id: str
    agent: AgentClient
    watchers: Watchers

    async def tool(self, name: str, arguments: dict[str, Any]) -> Any:
        """A tool's answer, parsed as JSON when it is; a tool's failure as a ConnectError."""
        try:
            result = await in_sandbox(
                self.manager.call_tool, self.tenant_id, self.session_id, name, arguments
            )
        except CoveError as error:
            raise ConnectError.of(error) from None
        text = "".join(part.get("text", "") for part in result["content"])
        if result["isError"]:
            lowered = text.lower()
            code = next((code for words, code in TOOL_ERROR_CODES if words in lowered), "unknown")
            raise ConnectError(code, text)
        try:
            return json.loads(text)
        except ValueError:
            return text


def _check_user(user: str | None) -> None:
    if user and user != DEFAULT_USER:
        raise UserNotSupported(f"every process and file of a Cove session is the user {DEFAULT_USER!r}'s")


def _basic_user(authorization: str | None) -> str | None:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidArgument("the Authorization header is not Basic base64 of user:") from None


async def sandbox(request: Request) -> Sandbox:
    """The request's running session, by the sandbox routed to (routing.py) and its access token,
    or by a signed `/files` URL; 502 as E2B's proxy answers otherwise."""
    target: SandboxTarget | None = request.scope.get(TARGET)
    if target is not None and target.port != ENVD_PORT:
        raise PortClosed(f"port {target.port} is not served by Cove")
    _check_user(_basic_user(request.headers.get("authorization")) or request.query_params.get("username"))
    manager: SessionManager = request.app.state.services.manager
    session_id = ids.session_named(manager.settings.data_dir, target.sandbox_id) if target else ""
    token = request.headers.get("x-access-token", "")
    if not token and request.url.path == "/files" and "signature" in request.query_params:
        session_id, token = await run_in_threadpool(
            signed_session, manager, request.method, request.query_params, session_id
        )
    try:
        tenant_id, agent = await run_in_threadpool(links.open_sandbox, manager, session_id, token)
    except (links.LinkNotFound, InvalidState):
        raise SandboxGone() from None
    return Sandbox(manager, tenant_id, session_id, agent, request.app.state.watchers)


Target = Annotated[Sandbox, Depends(sandbox)]
Unary = Callable[[Sandbox, Message], Awaitable[Message]]
Streaming = Callable[[Sandbox, Message], AsyncIterator[Message]]
ClientStreaming = Callable[[Sandbox, AsyncIterator[Message]], Awaitable[Message]]


def create_sandbox_app(
    unary: dict[str, Unary], streaming: dict[str, Streaming], client_streaming: dict[str, ClientStreaming]
) -> FastAPI:
    """The envd facade: `unary`, `streaming` (from the server) and `client_streaming` are the
    Connect methods by path ("process.Process/List")."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.watchers = Watchers()

    @app.exception_handler(CoveError)
    async def plain_error(request: Request, error: CoveError) -> JSONResponse:
        """envd's and E2B's proxy's own errors: a JSON body with the status as its code."""
        headers = {"Should-Retry": "false"} if error.http_status >= 500 else None
        body = {"code": error.http_status, "message": error.message}
        return JSONResponse(body, status_code=error.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        return await plain_error(request, InvalidArgument(f"{first['loc'][-1]}: {first['msg']}"))

    @app.get("/health")
    async def health(target: Target) -> Response:
        return Response(status_code=204)

    @app.get("/files")
    async def download(target: Target, path: str) -> StallGuardedResponse:
        stall_s = target.manager.settings.transfer_stall_timeout_s
        size, body = await target.agent.download(path, stall_s)
        return StallGuardedResponse(body, size, stall_s)

    @app.post("/files")
    async def upload(request: Request, target: Target, path: str | None = None) -> list[dict[str, str]]:
        """Each file streamed into the sandbox as it arrives (uploads.py); with one file, `path`
        says where it goes, else each multipart part's filename does."""
        stall_s = target.manager.settings.transfer_stall_timeout_s
        body = within_stalls(request.stream(), stall_s)
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            files = multipart_files(body, content_type)
        elif path:
            files = _one(
                octet_stream_file(
                    body, request.headers.get("content-length"), request.headers.get("content-encoding")
                )
            )
        else:
            raise InvalidArgument("an application/octet-stream upload needs the path query parameter")
        written: list[dict[str, str]] = []
        async for file in files:
            target_path = file.filename if written or not path else path
            if not target_path:
                raise InvalidArgument("a file part has no filename to say where it goes")
            saved = await target.agent.upload(target_path, file.size, file.chunks, stall_s)
            written.append({"path": saved["path"], "name": os.path.basename(saved["path"]), "type": "file"})
        if not written:
            raise InvalidArgument("the upload has no file part")
        return written

    @app.post("/{service}/{method}")
    async def rpc(request: Request, target: Target, service: str, method: str) -> Response:
        name = f"{service}/{method}"
        if name in client_streaming:
            return await client_stream_answer(client_streaming[name](target, read_messages(request)))
        try:
            message = await read_message(request)
            if name in streaming:
                return stream_answer(streaming[name](target, message))
            if name in unary:
                return unary_answer(await unary[name](target, message))
            raise ConnectError("unimplemented", f"{name} is not supported by Cove yet")
        except ConnectError as error:
            return unary_error(error)

    return app


async def _one(file: IncomingFile) -> AsyncIterator[IncomingFile]:
    yield file


def selected_pid(message: Message) -> int:
    """The pid of a ProcessSelector (`{"process": {"pid": 123}}`); tags are not supported."""
    selector = message.get("process") or {}
    pid = selector.get("pid")
    if not isinstance(pid, int):
        raise ConnectError(
            "invalid_argument", "select the process by its pid (tags are not supported by Cove)"
        )
    return pid
