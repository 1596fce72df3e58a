"""Which requests are for a sandbox, and for which of its ports, as E2B's edge proxy decides
(e2b-dev/infra `packages/shared/pkg/proxy/host.go`):

1. by header: `E2b-Sandbox-Id` (and `E2b-Sandbox-Port`, 49983 when absent), which E2B's SDK sends
   on every request to a sandbox, whatever host it sends it to (with `E2B_SANDBOX_URL` set, the
   API's own host and port);
2. else by Host: `{port}-{sandbox id}.{domain}`, the hosts the SDK makes from `E2B_DOMAIN` or the
   `domain` the API answered (envd's, the interpreter's, and `get_host(port)`'s);
3. else a signed `/files` URL with neither (signed_files.py) goes to envd.

Everything else, `api.{domain}` included, goes on to Cove's own surfaces untouched. A target goes
to the app its port has (`port_apps`: envd on 49983, the interpreter on 49999) or else to the
sandbox's port itself (`other_ports`, ports.py), with the target in the scope under `TARGET`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from cove.server.api.e2b.ids import SANDBOX_ID

SANDBOX_HEADER = b"e2b-sandbox-id"
PORT_HEADER = b"e2b-sandbox-port"
ENVD_PORT = 49983
INTERPRETER_PORT = 49999
TARGET = "cove.e2b_target"
"""The scope key a routed request's SandboxTarget is under."""


@dataclass(frozen=True)
class SandboxTarget:
    """The sandbox (by its E2B id, as sent) and the port a request is for."""

    sandbox_id: str
    port: int


def port_of(text: str) -> int | None:
    """A TCP port written in ASCII digits, or None."""
    if not (text.isascii() and text.isdigit() and len(text) <= 5):
        return None
    number = int(text)
    return number if 0 < number < 65536 else None


def host_name(host: str) -> str:
    """`Host` without its port, lower case ("[::1]:8080" -> "[::1]")."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def host_target(host: str, domain: str) -> SandboxTarget | None:
    """The target a `{port}-{sandbox id}.{domain}` Host names, or None. Ports on either side are
    ignored: a proxy in front of Cove may change them."""
    name, base = host_name(host), host_name(domain)
    if not base or not name.endswith("." + base):
        return None
    label = name[: -len(base) - 1]
    port_text, dash, sandbox_id = label.partition("-")
    port = port_of(port_text)
    if not dash or port is None or not SANDBOX_ID.fullmatch(sandbox_id):
        return None
    return SandboxTarget(sandbox_id, port)


def header_target(headers: Mapping[bytes, bytes]) -> SandboxTarget | None:
    """The target `E2b-Sandbox-Id` and `E2b-Sandbox-Port` name, or None without the id. A port that
    is not one is 0, which no app serves (answered "port is not open")."""
    sandbox_id = headers.get(SANDBOX_HEADER)
    if sandbox_id is None:
        return None
    port_text = headers.get(PORT_HEADER, str(ENVD_PORT).encode()).decode("latin-1")
    return SandboxTarget(sandbox_id.decode("latin-1"), port_of(port_text.strip()) or 0)


def is_signed_file(scope: Scope) -> bool:
    return scope["path"] == "/files" and bool(
        parse_qs(scope["query_string"].decode("latin-1")).get("signature")
    )


class SandboxRouting:
    """Pure ASGI middleware: sandbox requests to their port's app, the rest to the app it wraps."""

    def __init__(
        self, app: ASGIApp, port_apps: Mapping[int, ASGIApp], other_ports: ASGIApp, domain: str
    ) -> None:
        self.app = app
        self.port_apps = port_apps
        self.other_ports = other_ports
        self.domain = domain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope["headers"]}
        target = header_target(headers) or host_target(
            headers.get(b"host", b"").decode("latin-1"), self.domain
        )
        if target is not None:
            app = self.port_apps.get(target.port, self.other_ports)
            await app({**scope, TARGET: target}, receive, send)
        elif scope["type"] == "http" and is_signed_file(scope):
            await self.port_apps[ENVD_PORT](scope, receive, send)
        else:
            await self.app(scope, receive, send)
