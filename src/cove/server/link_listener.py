"""The listener links are served on: a port of its own, so pages from sessions never share the API's
origin (a service worker or script there could otherwise claim the API's pages, /docs included).

It runs inside the API server's process and event loop, started and stopped by the API app's
lifespan, so both share one set of services. The API's signals stop the API server, whose lifespan
then stops this one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from cove.config import Settings

SHUTDOWN_GRACE_S = 5
"""How long open links (a WebSocket, a long download) may go on once the server is stopping."""


def proxy_options(settings: Settings) -> dict[str, Any]:
    """Which proxies' X-Forwarded-For uvicorn believes: only those configured (uvicorn's own default
    believes any on loopback, so a local process could pose as any client)."""
    return {
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": settings.trusted_proxies or None,
    }


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves signals to the API server it runs beside."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        yield


class LinkListener:
    """Serves `app` on the settings' link port until stopped."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.link_listen_port,
            lifespan="off",
            log_config=None,  # the API server configured logging already; keep its levels
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            **proxy_options(settings),
        )
        self.server = _Listener(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen, or raise if the port cannot be had (the API server then does not start either)."""
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()  # an error, such as the port being taken, is raised here
                raise RuntimeError(f"the link listener on port {self.server.config.port} did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self.task is not None:
            self.server.should_exit = True
            await self.task
