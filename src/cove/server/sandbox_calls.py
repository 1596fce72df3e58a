"""Long calls into sandboxes run on worker threads of their own, apart from those of quick routes.

Starlette runs sync routes and `run_in_threadpool` on anyio's default limiter: 40 threads shared by
every route. A tool call blocks its thread as long as its command runs (up to the longest command
timeout), so if tool calls took those threads, one tenant's parallel `sleep`s would make every
other request wait, health checks included. Calls made through `in_sandbox` count against a
limiter of their own instead; quick routes keep all 40 threads whatever is in flight here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, TypeVarTuple

import anyio.to_thread
from anyio import CapacityLimiter
from anyio.lowlevel import RunVar

SANDBOX_CALL_THREADS = 512
"""Calls into sandboxes running at once, all tenants together (each tenant has its own smaller
bound, the `tenant_tool_calls` setting); past it they wait for a thread."""

_limiter: RunVar[CapacityLimiter] = RunVar("cove_sandbox_calls")
"""One limiter per event loop, as anyio keeps its default one."""

Answer = TypeVar("Answer")
Arguments = TypeVarTuple("Arguments")


def _sandbox_limiter() -> CapacityLimiter:
    try:
        return _limiter.get()
    except LookupError:
        limiter = CapacityLimiter(SANDBOX_CALL_THREADS)
        _limiter.set(limiter)
        return limiter


async def in_sandbox(call: Callable[[*Arguments], Answer], *args: *Arguments) -> Answer:
    """Run a blocking call that waits on a sandbox (a tool call, a context sync) on the sandbox
    threads; anything quick stays with `run_in_threadpool`."""
    return await anyio.to_thread.run_sync(call, *args, limiter=_sandbox_limiter())
