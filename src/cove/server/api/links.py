"""The link surface: `/links/{session_id}/{port}/{token}/...`, HTTP and WebSocket, no API key.

Served only by the link listener (server/link_listener.py), never on the API's port. The token in the
path is the credential (sessions/links.py); a wrong one answers 404 before anything else is looked
at. What is behind a good one is relayed by server/link_proxy.py.
"""

from __future__ import annotations

import socket

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from cove.server import link_proxy
from cove.server.services import Services
from cove.sessions import links

router = APIRouter()
LINK_PATH = "/links/{session_id}/{port}/{token}"


def _open(
    services: Services, session_id: str, port: str, token: str, authorizations: list[bytes]
) -> tuple[links.LinkTarget, socket.socket, frozenset[bytes]]:
    """The link's target, a connection to its agent, and which `authorizations` carry a Cove key,
    in one trip to a worker thread."""
    target = links.open_link(services.manager, session_id, port, token)
    return target, target.agent.connect(), frozenset(filter(services.keys.is_key, authorizations))


async def _connect(
    services: Services, scope: Scope, session_id: str, port: str, token: str
) -> link_proxy.Connection:
    """Check the link, and connect to its port inside the session (404, 409 or 502 otherwise)."""
    target, sock, cove_keys = await run_in_threadpool(
        _open, services, session_id, port, token, link_proxy.authorizations(scope)
    )
    reader, writer = await target.agent.open_port(target.port, sock)
    upstream = link_proxy.Upstream(
        port=target.port,
        target=link_proxy.split_target(
            scope.get("raw_path") or scope["path"].encode(), scope["query_string"]
        ),
        prefix=f"/links/{session_id}/{target.port}/{token}",
        cove_authorizations=cove_keys,
    )
    return upstream, reader, writer


@router.api_route(LINK_PATH, methods=link_proxy.METHODS, include_in_schema=False)
async def link_root(request: Request, session_id: str, port: str, token: str) -> Response:
    """The link without its final slash: sent on to it, so relative URLs in its pages work."""
    services: Services = request.app.state.services
    await run_in_threadpool(links.open_link, services.manager, session_id, port, token)
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"{request.url.path}/{query}", status_code=308)


@router.api_route(LINK_PATH + "/{path:path}", methods=link_proxy.METHODS, include_in_schema=False)
async def link_http(request: Request, session_id: str, port: str, token: str, path: str) -> Response:
    """An HTTP request to the service on `port` in the session, relayed both ways as it streams."""
    services = request.app.state.services
    return await link_proxy.proxy_http(request, _connect(services, request.scope, session_id, port, token))


@router.websocket(LINK_PATH + "/{path:path}")
async def link_websocket(websocket: WebSocket, session_id: str, port: str, token: str, path: str) -> None:
    """A WebSocket to the service on `port` in the session; refused with an HTTP answer if it cannot be."""
    services = websocket.app.state.services
    await link_proxy.proxy_websocket(websocket, _connect(services, websocket.scope, session_id, port, token))
