"""A terminal in a session over a WebSocket: `/v1/sessions/{id}/terminal`, for the web console's
xterm.js (and any client that speaks these JSON messages).

A browser cannot put a header on a WebSocket, and a key never goes in a URL, so the client's first
message carries it: `{"type": "auth", "key": KEY, "cols": 80, "rows": 24}`. The server then starts
`bash -l` on a PTY in the session (the agent's `process_start` with `pty`) and relays: the output,
long-polled with `process_output`, goes out as `{"type": "output", "data": text}`; the client sends
`{"type": "input", "data": text}` (written with `process_write`) and `{"type": "resize", "cols",
"rows"}`. When the shell ends the server sends `{"type": "exit", "code": n}` and closes; when the
client goes, the shell is hung up (SIGHUP). A refusal is `{"type": "error", "code", "message"}` and a
close with code 4401 (key), 4404 (session), 4409 (state) or 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from cove.errors import CoveError, InvalidArgument
from cove.server.sandbox_calls import in_sandbox
from cove.server.services import Services

router = APIRouter()

AUTH_TIMEOUT_S = 10.0
OUTPUT_WAIT_MS = 20_000
SHELL = "bash -l"
MAX_SIDE = 1000


class ToolFailed(CoveError):
    code = "ToolFailed"
    http_status = 500


def _close_code(error: CoveError) -> int:
    return {401: 4401, 403: 4403, 404: 4404, 409: 4409}.get(error.http_status, 1011)


async def _tool(
    services: Services, tenant_id: str, session_id: str, name: str, arguments: dict[str, Any]
) -> Any:
    result = await in_sandbox(services.manager.call_tool, tenant_id, session_id, name, arguments)
    text = "".join(part.get("text", "") for part in result["content"])
    if result["isError"]:
        raise ToolFailed(text)
    return json.loads(text)


def _size(message: dict[str, Any]) -> dict[str, int]:
    cols, rows = message.get("cols", 80), message.get("rows", 24)
    if not all(isinstance(side, int) and 1 <= side <= MAX_SIDE for side in (cols, rows)):
        raise InvalidArgument(f"cols and rows must be whole numbers from 1 to {MAX_SIDE}")
    return {"cols": cols, "rows": rows}


@router.websocket("/v1/sessions/{session_id}/terminal")
async def terminal(websocket: WebSocket, session_id: str) -> None:
    services: Services = websocket.app.state.services
    await websocket.accept()
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_S):
            hello = json.loads(await websocket.receive_text())
        if not isinstance(hello, dict) or hello.get("type") != "auth":
            raise InvalidArgument('the first message must be {"type": "auth", "key": KEY, "cols", "rows"}')
        tenant_id = services.keys.authenticate(f"Bearer {hello.get('key') or ''}")
        started = await _tool(
            services, tenant_id, session_id, "process_start", {"command": SHELL, "pty": True, **_size(hello)}
        )
    except (TimeoutError, ValueError, WebSocketDisconnect):
        with contextlib.suppress(Exception):
            await websocket.close(code=1008)
        return
    except CoveError as error:
        with contextlib.suppress(Exception):
            await websocket.send_json({"type": "error", "code": error.code, "message": error.message})
            await websocket.close(code=_close_code(error))
        return
    process_id = started["process_id"]
    await websocket.send_json({"type": "ready", "process_id": process_id})

    async def call(name: str, **arguments: Any) -> Any:
        return await _tool(services, tenant_id, session_id, name, {"process_id": process_id, **arguments})

    async def relay_output() -> None:
        offset = 0
        while True:
            polled = await call("process_output", stdout_offset=offset, wait_ms=OUTPUT_WAIT_MS)
            if polled["stdout"]:
                await websocket.send_json({"type": "output", "data": polled["stdout"]})
            moved = polled["stdout_offset"] != offset
            offset = polled["stdout_offset"]
            if not polled["running"] and not moved:
                code = polled["exit_code"]
                await websocket.send_json({"type": "exit", "code": code if code is not None else 1})
                return

    async def relay_input() -> None:
        while True:
            message = json.loads(await websocket.receive_text())
            if message.get("type") == "input" and isinstance(message.get("data"), str):
                await call("process_write", data=message["data"])
            elif message.get("type") == "resize":
                await call("process_resize", **_size(message))

    output = asyncio.create_task(relay_output())
    typed = asyncio.create_task(relay_input())
    exited = False
    try:
        done, _ = await asyncio.wait({output, typed}, return_when=asyncio.FIRST_COMPLETED)
        exited = output in done and output.exception() is None
        failure = next((task.exception() for task in done if task.exception() is not None), None)
        if isinstance(failure, CoveError):
            with contextlib.suppress(Exception):
                await websocket.send_json({"type": "error", "code": failure.code, "message": failure.message})
    finally:
        for task in (output, typed):
            task.cancel()
        await asyncio.gather(output, typed, return_exceptions=True)
        if not exited:  # the client went, or a call failed: the shell is hung up as a terminal's is
            with contextlib.suppress(Exception):
                await call("process_kill", signal="HUP")
        with contextlib.suppress(Exception):
            await websocket.close()
