"""The session's browser for CDP clients, on the link listener: `/cdp/{session_id}/{token}` is a
browser-level CDP WebSocket (what Playwright's `connect_over_cdp` and Puppeteer's `connect` take),
relayed to Chromium's `/devtools/browser/<id>` inside the session through the agent's port relay.
The token is the key (sessions/links.py). Connecting starts the browser if it is not running, so the
URL outlives a browser that was stopped or died; Chromium's port never leaves the session.

Clients given the http:// form of the URL (Playwright's `connect_over_cdp("http://...")`,
Puppeteer's `browserURL`) first read `{url}/json/version`, which answers the WebSocket URL above.
"""

from __future__ import annotations

import asyncio
import socket

from fastapi import APIRouter, Request, WebSocket
from starlette.concurrency import run_in_threadpool

from cove.errors import CoveError
from cove.sandbox.agent_client import AgentClient
from cove.server import link_proxy
from cove.server.services import Services
from cove.sessions import browser, links

router = APIRouter()
CDP_PATH = "/cdp/{session_id}/{token}"


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
    writer = None
    try:
        upstream, reader, writer = await _connect(websocket, websocket.app.state.services, session_id, token)
        protocol, received = await link_proxy.websocket_handshake(websocket, upstream, [], reader, writer)
    except CoveError as error:
        if writer is not None:
            writer.transport.abort()
        await link_proxy.refuse_websocket(websocket, error)
        return
    await websocket.accept(subprotocol=protocol.subprotocol)
    await link_proxy.relay_websocket(websocket, protocol, received, reader, writer)
