"""The web console at /console: one page, its own script and style, and xterm.js from npm, all served
from disk (no CDN). Its routes and static files are all it adds: no middleware, nothing on any other
request's way. The page signs in with an API key kept in the browser's sessionStorage and calls the
/v1 API with it like any client (docs/console.md).
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from cove.console import assets

router = APIRouter()
STATIC = resources.files("cove.console") / "static"


def page_policy(link_origin: str) -> str:
    """Only the console's own scripts run; it talks only to its own origin, and frames only the
    desktop viewer on the link listener's. Results of code cells are shown in sandboxed frames.
    Inline styles are allowed (not scripts): xterm.js writes its theme as a style element."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; "
        f"frame-src {link_origin}; child-src {link_origin}; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@router.get("/", include_in_schema=False)
async def root(request: Request) -> Response:
    """Browsers go to the console; anything else learns where the API is."""
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/console/", status_code=302)
    body = {
        "request_id": request.state.request_id,
        "error": {
            "code": "MethodNotAllowed",
            "message": "the API is under /v1 (see /docs); POST / is AgentBay's",
        },
    }
    return JSONResponse(body, status_code=405, headers={"Allow": "POST"})


@router.get("/console", include_in_schema=False)
async def console_root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)


@router.get("/console/", include_in_schema=False)
async def console_page(request: Request) -> HTMLResponse:
    settings = request.app.state.services.settings
    page = (STATIC / "index.html").read_text()
    if not assets.installed():
        page = page.replace('data-terminal="yes"', 'data-terminal="no"')
    headers = {
        "Content-Security-Policy": page_policy(_origin(settings.link_base_url)),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return HTMLResponse(page, headers=headers)


def mount_files(app: FastAPI) -> None:
    """The console's own files, and the npm packages it uses."""
    app.mount("/console/static", StaticFiles(directory=str(STATIC)), name="console-static")
    app.mount(
        "/console/vendor/xterm",
        StaticFiles(directory=assets.XTERM.folder(), check_dir=False),
        name="console-xterm",
    )
    app.mount(
        "/console/vendor/xterm-fit",
        StaticFiles(directory=assets.XTERM_FIT.folder(), check_dir=False),
        name="console-xterm-fit",
    )
