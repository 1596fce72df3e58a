"""The session's browser for CDP clients, on the link listener: `/cdp/{session_id}/{token}` is a
browser-level CDP WebSocket (what Playwright's `connect_over_cdp` and Puppeteer's `connect` take),
relayed to Chromium's `/devtools/browser/<id>` inside the session through the agent's port relay.
The token is the key (sessions/links.py). Connecting starts the browser if it is not running, so the
URL outlives a browser that was stopped or died; Chromium's port never leaves the session.

Clients given the http:// form of the URL (Playwright's `connect_over_cdp("http://...")`,
Puppeteer's `browserURL`) first read `{url}/json/version`, which answers the WebSocket URL above.

A session has at most `MAX_CONNECTIONS` CDP connections open at once; one more is refused (429)
before it reaches the browser, since each holds a relay through its agent and Chromium's own
memory for the client.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from fastapi import APIRouter, Request, WebSocket
from starlette.concurrency import run_in_threadpool

from cove.errors import CoveError, QuotaExceeded
from cove.sandbox.agent_client import AgentClient
from cove.server import link_proxy
from cove.server.services import Services
from cove.sessions import browser, links

router = APIRouter()
CDP_PATH = "/cdp/{session_id}/{token}"
MAX_CONNECTIONS = 16
"""CDP connections one session may have open at once (Playwright uses one per browser it connects)."""
_open_connections: Counter[str] = Counter()
"""Per session id; touched only on the event loop, so without a lock."""


@contextmanager
def _connection_slot(session_id: str) -> Iterator[None]:
    """Hold one of the session's CDP connections for as long as the client's lasts."""
    if _open_connections[session_id] >= MAX_CONNECTIONS:
        raise QuotaExceeded(
            f"session {session_id} has {MAX_CONNECTIONS} CDP connections open, the most it may; "
            "close one (or reuse it: one connection drives every page) and connect again"
        )
    _open_connections[session_id] += 1
    try:
        yield
    finally:
        _open_connections[session_id] -= 1
        if not _open_connections[session_id]:
            del _open_connections[session_id]


def _open(
    services: Services, session_id: str, token: str
) -> tuple[AgentClient, browser.RunningBrowser, socket.socket]:
    """The session's agent, its running browser, and a connection to the agent, in one worker trip."""
    tenant_id, agent = links.open_cdp(services.manager, session_id, token)
    running = browser.start(services.manager, tenant_id, session_id)
    return agent, running, agent.connect()


async def _connect(
    websocket: WebSocket, services: Services, session_id: str, token: str
) -> tuple[link_proxy.Upstream, asyncio.StreamReader, asyncio.StreamWriter]:
    agent, running, sock = await run_in_threadpool(_open, services, session_id, token)
    reader, writer = await agent.open_port(running.port, sock)
    upstream = link_proxy.Upstream(
        port=running.port, target=running.path.encode(), prefix=f"/cdp/{session_id}/{token}"
    )
    return upstream, reader, writer


def _version(services: Services, session_id: str, token: str) -> dict[str, str]:
    tenant_id, _ = links.open_cdp(services.manager, session_id, token)
    running = browser.start(services.manager, tenant_id, session_id)
    url = links.cdp_url(services.manager, tenant_id, session_id)
    return {"Browser": running.product, "Protocol-Version": "1.3", "webSocketDebuggerUrl": url}


@router.get(CDP_PATH + "/json/version", include_in_schema=False)
@router.get(CDP_PATH + "/json/version/", include_in_schema=False)
async def cdp_version(request: Request, session_id: str, token: str) -> dict[str, str]:
    """Chromium's /json/version, its WebSocket URL being the session's CDP URL."""
    return await run_in_threadpool(_version, request.app.state.services, session_id, token)


@router.websocket(CDP_PATH)
async def cdp_websocket(websocket: WebSocket, session_id: str, token: str) -> None:
    """CDP to the session's browser. None of the client's headers are passed on: Chromium refuses a
    WebSocket whose Origin it was not told to allow, and needs nothing else."""
    with ExitStack() as held:
        writer = None
        try:
            upstream, reader, writer = await _connect(
                websocket, websocket.app.state.services, session_id, token
            )
            held.enter_context(_connection_slot(session_id))  # after the token's check
            protocol, received = await link_proxy.websocket_handshake(websocket, upstream, [], reader, writer)
        except CoveError as error:
            if writer is not None:
                writer.transport.abort()
            await link_proxy.refuse_websocket(websocket, error)
            return
        await websocket.accept(subprotocol=protocol.subprotocol)
        await link_proxy.relay_websocket(websocket, protocol, received, reader, writer)
