"""The link surface: `/links/{session_id}/{port}/{token}/...`, HTTP and WebSocket, no API key.

Served only by the link listener (server/link_listener.py), never on the API's port. The token in the
path is the credential (sessions/links.py); a wrong one answers 404 before anything else is looked
at. What is behind a good one is relayed by server/link_proxy.py.
"""

from __future__ import annotations

import asyncio
import socket

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from cove.errors import CoveError
from cove.server import link_proxy
from cove.server.services import Services
from cove.sessions import links

router = APIRouter()
LINK_PATH = "/links/{session_id}/{port}/{token}"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _open(
    services: Services, session_id: str, port: str, token: str, authorizations: list[bytes]
) -> tuple[links.LinkTarget, socket.socket, frozenset[bytes]]:
    """The link's target, a connection to its agent, and which `authorizations` carry a Cove key,
    in one trip to a worker thread."""
    target = links.open_link(services.manager, session_id, port, token)
    return target, target.agent.connect(), frozenset(filter(services.keys.is_key, authorizations))


async def _connect(
    services: Services, scope: Scope, session_id: str, port: str, token: str
) -> tuple[link_proxy.Upstream, asyncio.StreamReader, asyncio.StreamWriter]:
    """Check the link, and connect to its port inside the session (404, 409 or 502 otherwise)."""
    authorizations = [value for key, value in scope["headers"] if key.lower() == b"authorization"]
    target, sock, cove_keys = await run_in_threadpool(
        _open, services, session_id, port, token, authorizations
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


@router.api_route(LINK_PATH, methods=METHODS, include_in_schema=False)
async def link_root(request: Request, session_id: str, port: str, token: str) -> Response:
    """The link without its final slash: sent on to it, so relative URLs in its pages work."""
    services: Services = request.app.state.services
    await run_in_threadpool(links.open_link, services.manager, session_id, port, token)
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"{request.url.path}/{query}", status_code=308)


@router.api_route(LINK_PATH + "/{path:path}", methods=METHODS, include_in_schema=False)
async def link_http(request: Request, session_id: str, port: str, token: str, path: str) -> Response:
    """An HTTP request to the service on `port` in the session, relayed both ways as it streams."""
    upstream, reader, writer = await _connect(
        request.app.state.services, request.scope, session_id, port, token
    )
    client = request.client.host if request.client else ""
    headers = link_proxy.forwarded_headers(
        list(request.scope["headers"]), upstream, client, request.url.scheme
    )
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    return await link_proxy.relay_http(
        request.method, headers, chunked, request.receive, upstream, reader, writer
    )


@router.websocket(LINK_PATH + "/{path:path}")
async def link_websocket(websocket: WebSocket, session_id: str, port: str, token: str, path: str) -> None:
    """A WebSocket to the service on `port` in the session; refused with an HTTP answer if it cannot be."""
    writer = None
    try:
        upstream, reader, writer = await _connect(
            websocket.app.state.services, websocket.scope, session_id, port, token
        )
        scheme = "https" if websocket.url.scheme == "wss" else "http"
        client = websocket.client.host if websocket.client else ""
        headers = link_proxy.forwarded_headers(list(websocket.scope["headers"]), upstream, client, scheme)
        protocol, received = await link_proxy.websocket_handshake(
            websocket, upstream, headers, reader, writer
        )
    except CoveError as error:
        if writer is not None:
            writer.transport.abort()
        await link_proxy.refuse_websocket(websocket, error)
        return
    await websocket.accept(subprotocol=protocol.subprotocol)
    await link_proxy.relay_websocket(websocket, protocol, received, reader, writer)
