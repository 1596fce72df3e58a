"""Which requests are E2B's envd's: those carrying `E2b-Sandbox-Id`, which E2B's SDK sends on every
request to a sandbox (with `E2B_SANDBOX_URL` set, they come to the API's own host and port), and
signed `/files` URLs, which carry no header (signed_files.py). Every other request goes on to Cove's
own surfaces untouched."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

SANDBOX_HEADER = b"e2b-sandbox-id"


class SandboxRouting:
    """Pure ASGI middleware: sandbox requests to `sandbox_app`, the rest to the app it wraps."""

    def __init__(self, app: ASGIApp, sandbox_app: ASGIApp) -> None:
        self.app = app
        self.sandbox_app = sandbox_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            any(name == SANDBOX_HEADER for name, _ in scope["headers"]) or _is_signed_file(scope)
        ):
            await self.sandbox_app(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _is_signed_file(scope: Scope) -> bool:
    return scope["path"] == "/files" and bool(
        parse_qs(scope["query_string"].decode("latin-1")).get("signature")
    )
