"""MCP's Streamable HTTP transport at /v1/sessions/{id}/mcp: any MCP client can use a session's tools.

The tools are the ones the native API serves (implemented once, by the tool agent in the sandbox);
this surface only translates between the official `mcp` SDK's low-level `Server` and the session
manager. The session comes from the URL, the tenant from the bearer key, which is checked (401)
before any MCP processing. It is stateless (one JSON answer per POST, no Mcp-Session-Id), so a
client may call any server of a deployment, and each request gets its own short-lived SDK session
manager, whose task group lives as long as the request: the app needs no lifespan for it.

Errors: a tool that ran and failed is a result with isError true, as the agent answered it; an
unknown tool or bad arguments (InvalidArgument) is also an isError result naming the problem, as
the SDK's own MCPServer answers them, so a model can correct itself; any other Cove error (an
unknown session or another tenant's, one not RUNNING, a sandbox failure) is a JSON-RPC error whose
message is Cove's and whose data holds its stable code and HTTP status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import version
from typing import Any, TypeVar, cast

from fastapi import APIRouter
from mcp import types
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from cove.agent.protocol import MAX_LINE_BYTES
from cove.errors import CoveError, InvalidArgument
from cove.server.sandbox_calls import in_sandbox
from cove.server.services import Services
from cove.sessions.manager import SessionManager

log = logging.getLogger("cove.server.mcp")
PATH = "/v1/sessions/{session_id}/mcp"
_TENANT = "cove_tenant_id"  # where the endpoint leaves the authenticated tenant in request.state

Answer = TypeVar("Answer")


def _protocol_error(error: Exception) -> MCPError:
    """A Cove error as a JSON-RPC error: Cove's message, its stable code and HTTP status as data."""
    if not isinstance(error, CoveError):
        log.exception("unexpected error in an MCP call", exc_info=error)
        error = CoveError(f"internal error ({type(error).__name__}); see the server log")
    code = types.INVALID_REQUEST if error.http_status < 500 else types.INTERNAL_ERROR
    return MCPError(code, error.message, {"code": error.code, "http_status": error.http_status})


async def _in_session(ctx: ServerRequestContext[Any, Any], call: Callable[..., Answer], *args: Any) -> Answer:
    """Run a blocking SessionManager method for the request's tenant and session on a sandbox thread."""
    request = cast("Request", ctx.request)  # the Streamable HTTP transport attaches it
    services: Services = request.app.state.services
    tenant_id: str = getattr(request.state, _TENANT)
    session_id: str = request.path_params["session_id"]
    return await in_sandbox(call, services.manager, tenant_id, session_id, *args)


async def _list_tools(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    try:
        tools = await _in_session(ctx, SessionManager.list_tools)
    except Exception as error:
        raise _protocol_error(error) from None
    return types.ListToolsResult(tools=[types.Tool.model_validate(tool) for tool in tools])


async def _call_tool(
    ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    arguments = params.arguments if params.arguments is not None else {}
    try:
        result = await _in_session(ctx, SessionManager.call_tool, params.name, arguments)
    except InvalidArgument as error:  # an unknown tool or bad arguments: the model can correct itself
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=error.message)], is_error=True
        )
    except Exception as error:
        raise _protocol_error(error) from None
    return types.CallToolResult.model_validate(result)


server: Server[Any] = Server(
    "cove",
    version=version("cove"),
    instructions="Each tool runs inside one Cove session: an isolated Linux sandbox, as its user 'user'.",
    on_list_tools=_list_tools,
    on_call_tool=_call_tool,
)


class McpEndpoint:
    """The raw ASGI endpoint: authenticate, then let the SDK answer the request statelessly."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        services: Services = request.app.state.services
        # Unauthorized propagates to the app's CoveError handler: a 401 in Cove's envelope.
        tenant_id = await run_in_threadpool(services.keys.authenticate, request.headers.get("authorization"))
        setattr(request.state, _TENANT, tenant_id)
        sessions = StreamableHTTPSessionManager(
            server, json_response=True, stateless=True, max_request_body_size=MAX_LINE_BYTES
        )
        async with sessions.run():
            await sessions.handle_request(scope, receive, send)


# A starlette Route with an ASGI app as its endpoint: the SDK writes the response itself. POST only:
# stateless, there is no stream for a GET to hold open nor a session to DELETE, so both answer 405.
router = APIRouter(routes=[Route(PATH, McpEndpoint(), methods=["POST"], include_in_schema=False)])
