"""E2B's APIs, so the unmodified E2B SDKs drive Cove sessions (docs/e2b-compatibility.md): the
control plane (control.py) beside Cove's routes, and, for requests routed to a sandbox by their
headers or their Host (routing.py), the app of the port they are for: envd (envd.py, processes.py,
filesystem.py) on 49983, the code interpreter (interpreter.py) on 49999, and the sandbox's own port
(ports.py) for any other."""

from fastapi import FastAPI

from cove.server.api.e2b import filesystem, processes
from cove.server.api.e2b.control import router
from cove.server.api.e2b.envd import create_sandbox_app
from cove.server.api.e2b.interpreter import create_interpreter_app
from cove.server.api.e2b.ports import create_port_app
from cove.server.api.e2b.routing import ENVD_PORT, INTERPRETER_PORT, SandboxRouting


def create_envd_app() -> FastAPI:
    return create_sandbox_app(
        {**processes.UNARY, **filesystem.UNARY},
        {**processes.STREAMING, **filesystem.STREAMING},
        processes.CLIENT_STREAMING,
    )


def create_port_apps() -> dict[int, FastAPI]:
    """The app serving each port Cove answers for itself in every sandbox; any other port is the
    sandbox's own (`create_port_app`)."""
    return {ENVD_PORT: create_envd_app(), INTERPRETER_PORT: create_interpreter_app()}


__all__ = ["SandboxRouting", "create_envd_app", "create_port_app", "create_port_apps", "router"]
