"""A sandbox's other ports: what `get_host(port)` hands out, `{port}-{sandbox id}.{domain}`, and
requests whose `E2b-Sandbox-Port` is neither envd's nor the interpreter's (routing.py).

As in E2B, a sandbox's ports are public: the sandbox id, which only its owner is told (ids.py), is
what opens them, with no key or token, so a browser reaches a server started in the sandbox. HTTP
and WebSocket are relayed to the port inside the session by the link proxy (server/link_proxy.py),
as Cove's own links are, on a host of their own (no path prefix, cookies kept to that host).
"""

from __future__ import annotations

import socket

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from cove.errors import CoveError, InvalidState, UpstreamError
from cove.sandbox.agent_client import AgentClient
from cove.server import link_proxy
from cove.server.api.e2b import ids
from cove.server.api.e2b.envd import PortClosed, SandboxGone
from cove.server.api.e2b.routing import TARGET, SandboxTarget
from cove.server.services import Services
from cove.sessions import links


def _open(
    services: Services, target: SandboxTarget, authorizations: list[bytes]
) -> tuple[AgentClient, socket.socket, frozenset[bytes]]:
    """The session's agent, a connection to it, and which `authorizations` carry a Cove key, in one
    trip to a worker thread; SandboxGone for an id this server did not give or a session not running."""
    session_id = ids.session_of(services.settings.data_dir, target.sandbox_id)
    if session_id is None:
        raise SandboxGone()
    try:
        _, agent = links.open_public_port(services.manager, session_id)
    except (links.LinkNotFound, InvalidState):
        raise SandboxGone() from None
    return agent, agent.connect(), frozenset(filter(services.keys.is_key, authorizations))


async def _connect(services: Services, scope: Scope) -> link_proxy.Connection:
    target: SandboxTarget = scope[TARGET]
    if target.port == 0:
        raise PortClosed("E2b-Sandbox-Port is not a port number")
    authorizations = link_proxy.authorizations(scope)
    agent, sock, cove_keys = await run_in_threadpool(_open, services, target, authorizations)
    try:
        reader, writer = await agent.open_port(target.port, sock)
    except UpstreamError as error:
        raise PortClosed(error.message) from None
    path = scope.get("raw_path") or scope["path"].encode()
    upstream = link_proxy.Upstream(
        port=target.port,
        target=path + b"?" + scope["query_string"] if scope["query_string"] else path,
        prefix="",
        cove_authorizations=cove_keys,
    )
    return upstream, reader, writer


def create_port_app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(CoveError)
    async def plain_error(request: Request, error: CoveError) -> JSONResponse:
        """E2B's proxy's answer: a JSON body with the status as its code, not to be retried."""
        headers = {"Should-Retry": "false"} if error.http_status >= 500 else None
        body = {"code": error.http_status, "message": error.message}
        return JSONResponse(body, status_code=error.http_status, headers=headers)

    @app.api_route("/{path:path}", methods=link_proxy.METHODS)
    async def port_http(request: Request, path: str) -> Response:
        """An HTTP request to the service on the port, relayed both ways as it streams."""
        return await link_proxy.proxy_http(request, _connect(request.app.state.services, request.scope))

    @app.websocket("/{path:path}")
    async def port_websocket(websocket: WebSocket, path: str) -> None:
        """A WebSocket to the service on the port; refused with an HTTP answer if it cannot be."""
        services = websocket.app.state.services
        await link_proxy.proxy_websocket(websocket, _connect(services, websocket.scope))

    return app
