"""The screenshot URLs that `system_screenshot` answers (sessions/screenshots.py): the token in the
URL is their key, so AgentBay's SDK and its users download them with no API key."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from cove.sandbox.agent_client import CHUNK_BYTES
from cove.sessions.screenshots import Screenshots

router = APIRouter(tags=["sessions"])


@router.get(
    "/v1/screenshots/{session_id}/{name}.png",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/png": {}}}},
)
async def get_screenshot(
    request: Request, session_id: str, name: str, token: str = Query(description="the URL's signed token")
) -> StreamingResponse:
    """A screenshot that system_screenshot took. No API key: the token grants it, for an hour."""
    screenshots: Screenshots = request.app.state.services.manager.screenshots
    image = await run_in_threadpool(screenshots.open, session_id, name, token)
    size = os.fstat(image.fileno()).st_size
    return StreamingResponse(_chunks(image), media_type="image/png", headers={"Content-Length": str(size)})


def _chunks(image: IO[bytes]) -> Iterator[bytes]:
    with image:
        while chunk := image.read(CHUNK_BYTES):
            yield chunk
