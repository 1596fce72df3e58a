"""The desktop viewer, on the link listener: `/desktop/{session_id}/{token}/` is a page showing the
session's display with noVNC, whose WebSocket beside it carries VNC to a new x11vnc in the session
(the agent's `desktop/view`). The token is the key (sessions/links.py): no API key, and the view-only
token gives a view-only VNC server, whatever the page is told.
"""

from __future__ import annotations

import html
from importlib import resources

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from cove.errors import CoveError
from cove.server import link_proxy, novnc
from cove.server.services import Services
from cove.sessions import links

router = APIRouter()
DESKTOP_PATH = "/desktop/{session_id}/{token}"
PAGE = resources.files("cove.server") / "viewer" / "desktop.html"
SCRIPT = resources.files("cove.server") / "viewer" / "desktop.js"
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data: blob:; base-uri 'none'; form-action 'none'"
)
"""The page runs only its own scripts and talks only to its own origin."""


class ViewerNotInstalled(CoveError):
    code = "ViewerNotInstalled"
    http_status = 503

    def __init__(self) -> None:
        super().__init__(
            "the desktop viewer's browser client (noVNC) is not installed on this server; "
            "install it with scripts/install.sh or `python -m cove.server.novnc`"
        )


def novnc_files() -> StaticFiles:
    """noVNC's modules, for the link app to mount at /viewer/novnc."""
    return StaticFiles(directory=novnc.client_dir(), check_dir=False)


@router.get(DESKTOP_PATH, include_in_schema=False)
async def desktop_root(request: Request, session_id: str, token: str) -> Response:
    """The viewer without its final slash: sent on to it, so the page's relative URLs work."""
    await run_in_threadpool(links.open_desktop, request.app.state.services.manager, session_id, token)
    return RedirectResponse(f"{request.url.path}/", status_code=308)


@router.get(DESKTOP_PATH + "/", include_in_schema=False)
async def desktop_page(request: Request, session_id: str, token: str) -> HTMLResponse:
    target = await run_in_threadpool(
        links.open_desktop, request.app.state.services.manager, session_id, token
    )
    if not novnc.installed():
        raise ViewerNotInstalled()
    page = PAGE.read_text().replace("{session_id}", html.escape(session_id))
    page = page.replace("{interactive}", "true" if target.interactive else "false")
    return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-store"})


@router.get("/viewer/desktop.js", include_in_schema=False)
async def desktop_script() -> FileResponse:
    return FileResponse(str(SCRIPT), media_type="text/javascript")


@router.websocket(DESKTOP_PATH + "/websockify")
async def desktop_websocket(websocket: WebSocket, session_id: str, token: str) -> None:
    """VNC to a new x11vnc on the session's display, which the agent starts if it is not running."""
    services: Services = websocket.app.state.services
    try:
        target = await run_in_threadpool(links.open_desktop, services.manager, session_id, token)
        sock = await run_in_threadpool(target.agent.connect)
        reader, writer = await target.agent.open_desktop_view(target.interactive, sock)
    except CoveError as error:
        await link_proxy.refuse_websocket(websocket, error)
        return
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol="binary" if "binary" in offered else None)
    await link_proxy.relay_stream(websocket, reader, writer)
