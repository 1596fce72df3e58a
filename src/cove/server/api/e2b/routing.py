"""Which requests are for an E2B sandbox: those carrying `E2b-Sandbox-Id`, which E2B's SDK sends on
every request to a sandbox (with `E2B_SANDBOX_URL` set, they come to the API's own host and port),
and signed `/files` URLs, which carry no header (signed_files.py). Every other request goes on to
Cove's own surfaces untouched.

A sandbox request goes to the app serving its port (`E2b-Sandbox-Port`, envd's 49983 if absent):
`port_apps` is the one table of them; a port not in it goes to envd's app, which answers that the
port is not open."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from cove.server.api.e2b.envd import ENVD_PORT

SANDBOX_HEADER = b"e2b-sandbox-id"
PORT_HEADER = b"e2b-sandbox-port"


class SandboxRouting:
    """Pure ASGI middleware: sandbox requests to the app of their port, the rest to the app it wraps."""

    def __init__(self, app: ASGIApp, port_apps: Mapping[int, ASGIApp]) -> None:
        self.app = app
        self.port_apps = port_apps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            any(name == SANDBOX_HEADER for name, _ in scope["headers"]) or _is_signed_file(scope)
        ):
            await self.port_app(_header_port(scope))(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def port_app(self, port: int) -> ASGIApp:
        return self.port_apps.get(port, self.port_apps[ENVD_PORT])


def _header_port(scope: Scope) -> int:
    value = next((value for name, value in scope["headers"] if name == PORT_HEADER), b"")
    return int(value) if value.isdigit() else ENVD_PORT


def _is_signed_file(scope: Scope) -> bool:
    return scope["path"] == "/files" and bool(
        parse_qs(scope["query_string"].decode("latin-1")).get("signature")
    )
