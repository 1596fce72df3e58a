"""GET /v1/events: the key's sessions as they change, as server-sent events.

A stream starts with a `snapshot` of the sessions matching its filters (those of GET /v1/sessions:
`labels`, `status`), then sends `upsert` (a session appeared or changed) and `remove` (it no longer
matches: deleted, or moved out of the filter). The store wakes streams after each write to a
session (sessions/changes.py); each reads its key's sessions again and sends the difference, so it
costs nothing while nobody listens. Authenticated as every /v1 call, with the Authorization header:
browsers read it with fetch() (EventSource cannot send a header, and a key never goes in a URL).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from cove.server.api.native import Tenant, _labels_query, _session_out, manager

router = APIRouter()

MAX_SESSIONS = 500
"""The most sessions one stream follows (the first, oldest, by creation)."""
PAGE = 100
KEEPALIVE_S = 15.0
"""A comment line this often keeps proxies from closing a quiet stream; the sessions are read
again then too, in case another server process changed them."""
SETTLE_S = 0.1
"""A burst of writes (a create writes its row twice) is read once, this long after its first."""


def _sessions(
    request: Request, tenant_id: str, labels: dict[str, Any] | None, status: str | None
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    page = 1
    while len(found) < MAX_SESSIONS:
        listed = manager(request).list(tenant_id, labels=labels, status=status, page=page, limit=PAGE)
        for record in listed.items:
            found[record.session_id] = _session_out(request, record).model_dump(mode="json")
        if listed.next_page is None:
            break
        page = listed.next_page
    return found


def _event(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@router.get(
    "/v1/events",
    tags=["sessions"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def session_events(
    request: Request,
    tenant_id: Tenant,
    labels: Annotated[str | None, Query(description='JSON object, e.g. {"team": "a"}')] = None,
    status: str | None = None,
) -> StreamingResponse:
    """The key's sessions, then their changes, as server-sent events (`snapshot`, `upsert`, `remove`)."""
    wanted = _labels_query(labels)
    first = await run_in_threadpool(_sessions, request, tenant_id, wanted, status)  # bad filters: 400 now
    changes = request.app.state.services.store.changes

    async def stream() -> AsyncIterator[str]:
        with changes.watch() as changed:
            known = first
            yield _event("snapshot", {"sessions": list(known.values())})
            while True:
                try:
                    await asyncio.wait_for(changed.wait(), KEEPALIVE_S)
                    await asyncio.sleep(SETTLE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                changed.clear()
                current = await run_in_threadpool(_sessions, request, tenant_id, wanted, status)
                for session_id in known.keys() - current.keys():
                    yield _event("remove", {"session_id": session_id})
                for session_id, session in current.items():
                    if known.get(session_id) != session:
                        yield _event("upsert", {"session": session})
                known = current

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
