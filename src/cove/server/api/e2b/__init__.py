"""E2B's APIs, so the unmodified E2B SDKs drive Cove sessions (docs/e2b-compatibility.md): the
control plane (control.py) beside Cove's routes, and for requests routed to a sandbox by their
headers (routing.py), envd (envd.py, processes.py, filesystem.py) on port 49983 and the code
interpreter (interpreter.py) on port 49999."""

from fastapi import FastAPI

from cove.server.api.e2b import filesystem, processes
from cove.server.api.e2b.control import router
from cove.server.api.e2b.envd import ENVD_PORT, create_sandbox_app
from cove.server.api.e2b.interpreter import INTERPRETER_PORT, create_interpreter_app
from cove.server.api.e2b.routing import SandboxRouting


def create_envd_app() -> FastAPI:
    return create_sandbox_app(
        {**processes.UNARY, **filesystem.UNARY}, {**processes.STREAMING, **filesystem.STREAMING}
    )


def create_port_apps() -> dict[int, FastAPI]:
    """The app serving each port of a sandbox; routing.py sends a request to its port's."""
    return {ENVD_PORT: create_envd_app(), INTERPRETER_PORT: create_interpreter_app()}


__all__ = ["SandboxRouting", "create_port_apps", "router"]
