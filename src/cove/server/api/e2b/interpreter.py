"""E2B's code interpreter, the server the `e2b-code-interpreter` SDK reaches on a sandbox's port 49999:
`POST /execute` (a cell, answered as JSON lines) and `/contexts` (create, list, restart, remove).

A thin translation onto the agent's `run_code` and `code_context` tools (agent/tools/code.py): a
context is a kernel of its own in the agent; a language's default context is its ordinary kernel.
The agent answers a cell whole, once it has ended, so the lines of `/execute` are written then, not
as the cell runs. Requests reach this app by their port, 49999, in a header or the Host (routing.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from cove.errors import CoveError, InvalidArgument, InvalidState
from cove.server.api.e2b import ids
from cove.server.api.e2b.envd import SandboxGone
from cove.server.api.e2b.routing import TARGET, SandboxTarget
from cove.server.sandbox_calls import in_sandbox
from cove.sessions import links
from cove.sessions.manager import SessionManager

CELL_TIMEOUT_S = 300
"""How long a cell may run before the agent interrupts it: the SDK's own default timeout (its
timeout is a read deadline on its side; a cell is not stopped when the client leaves)."""
RESULT_FIELDS = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
    "e2b/data": "data",
    "chart": "chart",
}
"""The E2B result field of each MIME type of a kernel's bundle; the rest go into `extra`."""


class ContextNotFound(CoveError):
    code = "ContextNotFound"
    http_status = 404


class Execute(BaseModel):
    code: str
    context_id: str | None = None
    language: str | None = None
    env_vars: dict[str, str] | None = None


class NewContext(BaseModel):
    language: str | None = None
    cwd: str | None = None


class Interpreter:
    """The session a request is for, and its tools."""

    def __init__(self, manager: SessionManager, tenant_id: str, session_id: str) -> None:
        self.manager, self.tenant_id, self.session_id = manager, tenant_id, session_id

    async def tool(self, name: str, arguments: dict[str, Any]) -> Any:
        """The tool's answer, parsed as JSON (a failed cell's too); an unknown context is
        ContextNotFound, any other failure InvalidArgument."""
        result = await in_sandbox(self.manager.call_tool, self.tenant_id, self.session_id, name, arguments)
        text = "".join(part.get("text", "") for part in result["content"])
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if result["isError"] and not (name == "run_code" and isinstance(answer, dict)):
            if text.startswith("no code context"):
                raise ContextNotFound(text)
            raise InvalidArgument(text)
        return answer


async def interpreter(request: Request) -> Interpreter:
    """The request's running session, by id and access token. The SDK sends the token on `/execute`
    only; `/contexts` requests are found by the sandbox id alone, as E2B's are."""
    manager: SessionManager = request.app.state.services.manager
    target: SandboxTarget | None = request.scope.get(TARGET)
    session_id = ids.session_named(manager.settings.data_dir, target.sandbox_id) if target else ""
    token = request.headers.get("x-access-token")
    if token is None and request.url.path.startswith("/contexts"):
        token = links.sandbox_token(manager.settings.data_dir, session_id)
    try:
        tenant_id, _agent = await run_in_threadpool(links.open_sandbox, manager, session_id, token or "")
    except (links.LinkNotFound, InvalidState):
        raise SandboxGone() from None
    return Interpreter(manager, tenant_id, session_id)


Target = Annotated[Interpreter, Depends(interpreter)]


def create_interpreter_app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(CoveError)
    async def plain_error(request: Request, error: CoveError) -> JSONResponse:
        return JSONResponse(
            {"code": error.http_status, "message": error.message}, status_code=error.http_status
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        return await plain_error(request, InvalidArgument(f"{first['loc'][-1]}: {first['msg']}"))

    @app.get("/health")
    async def health(target: Target) -> Response:
        return Response(status_code=204)

    @app.post("/execute")
    async def execute(body: Execute, target: Target) -> StreamingResponse:
        if body.context_id and body.language:
            raise InvalidArgument("give context_id or language, not both")
        arguments: dict[str, Any] = {"code": body.code, "timeout_s": CELL_TIMEOUT_S}
        if body.context_id:
            arguments["context_id"] = body.context_id
        if body.language:
            arguments["language"] = body.language
        if body.env_vars:
            arguments["env"] = body.env_vars
        answer = await target.tool("run_code", arguments)
        return StreamingResponse(execution_lines(answer), media_type="application/x-ndjson")

    @app.post("/contexts")
    async def create_context(target: Target, body: NewContext | None = None) -> Any:
        arguments = {"action": "create", **(body.model_dump(exclude_none=True) if body else {})}
        return await target.tool("code_context", arguments)

    @app.get("/contexts")
    async def list_contexts(target: Target) -> Any:
        return await target.tool("code_context", {"action": "list"})

    @app.post("/contexts/{context_id}/restart")
    async def restart_context(target: Target, context_id: str) -> Any:
        return await target.tool("code_context", {"action": "restart", "context_id": context_id})

    @app.delete("/contexts/{context_id}")
    async def remove_context(target: Target, context_id: str) -> Any:
        return await target.tool("code_context", {"action": "remove", "context_id": context_id})

    return app


def execution_lines(answer: dict[str, Any]) -> Iterator[bytes]:
    """run_code's answer as E2B's stream: output, results, the error, the count, then the end."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    lines: list[dict[str, Any]] = []
    for stream in ("stdout", "stderr"):
        lines += [
            {"type": stream, "text": text, "timestamp": now} for text in answer.get(stream) or [] if text
        ]
    lines += [
        {"type": "result", **result_fields(json.loads(bundle))} for bundle in answer.get("result") or []
    ]
    error = answer.get("error")
    if error:
        lines.append({"type": "error", **{key: error.get(key, "") for key in ("name", "value", "traceback")}})
    if answer.get("execution_count") is not None:
        lines.append({"type": "number_of_executions", "execution_count": answer["execution_count"]})
    lines.append({"type": "end_of_execution"})
    for line in lines:
        yield json.dumps(line).encode() + b"\n"


def result_fields(bundle: dict[str, Any]) -> dict[str, Any]:
    """A kernel's MIME bundle as E2B's result: a field per known type, the rest in `extra`."""
    result: dict[str, Any] = {"is_main_result": bool(bundle.pop("isMainResult", False))}
    extra = {}
    for mime, value in bundle.items():
        if mime in RESULT_FIELDS:
            result[RESULT_FIELDS[mime]] = value
        else:
            extra[mime] = value
    chart = result.get("chart")
    if isinstance(chart, dict) and chart.get("type") == "composite_chart":
        result["chart"] = {**chart, "type": "superchart"}  # AgentBay's name for a figure of several axes
    text = result.get("text")
    if isinstance(text, str) and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        result["text"] = text[1:-1]  # a string's repr, as E2B's server gives it
    if extra:
        result["extra"] = extra
    return result
