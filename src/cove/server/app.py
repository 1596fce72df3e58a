"""The ASGI application: wires settings, store, runtime and manager, and mounts each API surface."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.metadata import version

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cove.auth import ensure_default_key
from cove.config import Settings
from cove.errors import CoveError, InvalidArgument
from cove.server.api import (
    agentbay,
    cdp,
    console,
    contexts,
    desktop,
    e2b,
    events,
    links,
    mcp,
    native,
    screenshots,
    terminal,
)
from cove.server.certificates import e2b_client_settings
from cove.server.envelope import ERROR_RESPONSES, RequestEnvelope, error_answer
from cove.server.link_listener import LinkListener
from cove.server.request_limits import Limits, RequestLimits
from cove.server.services import Services, build_services
from cove.sessions.manager import SessionManager

log = logging.getLogger("cove.server")


def _start(services: Services) -> None:
    """Blocking start-up work: default image, first key, and recovery from a crash."""
    services.images.get(services.settings.default_image)
    if services.keys.is_empty():
        key = ensure_default_key(services.settings.data_dir, services.store)
        print(f"cove: no API key configured; created one (also in {services.settings.data_dir}/api_key):")
        print(f"cove: {key}", flush=True)
    print(f"cove: web console at {services.settings.base_url}/console/", flush=True)
    for line in e2b_client_settings(services.settings):
        print(f"cove: {line}", flush=True)
    report = services.manager.reconcile(at_startup=True)
    log.info("recovered %d running sessions, ended %d", len(report.kept), len(report.ended))
    services.manager.start_warm_pool()
    services.manager.syncs.start_periodic()


async def _reconcile_forever(manager: SessionManager) -> None:
    while True:
        await asyncio.sleep(manager.settings.reconcile_interval_s)
        try:
            await run_in_threadpool(manager.reconcile)
        except Exception:
            log.exception("periodic reconcile failed")


def error_response(request: Request, error: CoveError) -> JSONResponse:
    return error_answer(request.state.request_id, error)


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await run_in_threadpool(build_services, settings)
        await run_in_threadpool(_start, services)
        for each in (app, link_app, other_ports, *port_apps.values()):
            each.state.services = services
        link_listener = LinkListener(link_app, settings)
        await link_listener.start()
        reconciler = asyncio.create_task(_reconcile_forever(services.manager))
        yield
        reconciler.cancel()
        await link_listener.stop()
        await run_in_threadpool(services.manager.close)
        services.runtime.close()
        services.store.close()

    app = FastAPI(title="Cove", version=version("cove"), lifespan=lifespan, docs_url="/docs")
    _answer_in_envelopes(app, settings)
    app.include_router(native.router, responses=ERROR_RESPONSES)
    app.include_router(events.router, responses=ERROR_RESPONSES)
    app.include_router(terminal.router)
    app.include_router(contexts.router, responses=ERROR_RESPONSES)
    app.include_router(screenshots.router, responses=ERROR_RESPONSES)
    app.include_router(agentbay.router)
    app.include_router(mcp.router)
    app.include_router(e2b.router)
    app.include_router(console.router)
    console.mount_files(app)
    port_apps, other_ports = e2b.create_port_apps(), e2b.create_port_app()
    # Outermost: requests for an E2B sandbox (by header or Host) are apart from Cove's own.
    app.add_middleware(
        e2b.SandboxRouting, port_apps=port_apps, other_ports=other_ports, domain=settings.e2b_public_domain
    )
    link_app = create_link_app(settings)
    return app


def create_link_app(settings: Settings) -> FastAPI:
    """The links, the desktop viewer and the CDP endpoint alone, for the link listener: no API route,
    no /docs, nothing else on its origin."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    _answer_in_envelopes(app, settings)
    app.include_router(links.router)
    app.include_router(desktop.router)
    app.include_router(cdp.router)
    app.mount("/viewer/novnc", desktop.novnc_files())
    return app


def _answer_in_envelopes(app: FastAPI, settings: Settings) -> None:
    """Request ids, limits on bodies, and errors answered in Cove's shape, alike on both listeners."""
    # The last added runs first: every request gets its id before its key and body are looked at.
    app.add_middleware(
        RequestLimits, limits=Limits(settings.max_request_body_bytes, settings.request_body_timeout_s)
    )
    app.add_middleware(RequestEnvelope)

    @app.exception_handler(CoveError)
    async def cove_error(request: Request, error: CoveError) -> JSONResponse:
        return error_response(request, error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"] if part not in ("body", "query", "path"))
        return error_response(request, InvalidArgument(f"{field or 'request'}: {first['msg']}"))
