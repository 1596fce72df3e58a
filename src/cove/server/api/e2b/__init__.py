"""E2B's APIs, so the unmodified E2B SDKs drive Cove sessions (docs/e2b-compatibility.md): the
control plane (control.py) beside Cove's routes, and envd (envd.py, processes.py, filesystem.py)
for requests routed to a sandbox by their headers (routing.py)."""

from fastapi import FastAPI

from cove.server.api.e2b import filesystem, processes
from cove.server.api.e2b.control import router
from cove.server.api.e2b.envd import create_sandbox_app
from cove.server.api.e2b.routing import SandboxRouting


def create_envd_app() -> FastAPI:
    return create_sandbox_app(
        {**processes.UNARY, **filesystem.UNARY},
        {**processes.STREAMING, **filesystem.STREAMING},
        processes.CLIENT_STREAMING,
    )


__all__ = ["SandboxRouting", "create_envd_app", "router"]
