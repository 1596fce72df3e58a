"""AgentBay's `system_screenshot`, served by the server: AgentBay's SDK (`computer.screenshot()`)
answers the tool's text as a URL of the image, so the server takes the screen with the agent's
`screenshot` tool, keeps the PNG under DATA_DIR/screenshots/<session id>/ and answers a URL on
itself, `GET /v1/screenshots/{session_id}/{name}.png?token=...`.

The token is the URL's key (no API key): the session, the image's name and an expiry, signed with
HMAC-SHA256 under a key derived from the server's secret (server_secret.py), as context file URLs
are. A session keeps its last KEEP_PER_SESSION images; they go when it ends, and a start of the
server removes those of sessions that are no longer live.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from cove.errors import CoveError, SandboxError
from cove.sandbox.agent_client import AgentClient
from cove.server_secret import server_secret

URL_LIFETIME_S = 3600
KEEP_PER_SESSION = 20
"""A session's older images are removed past this many, so repeated screenshots do not fill the disk."""
MAX_PNG_BYTES = 32 * 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_NAME = re.compile(r"[0-9]{19,20}-[0-9a-f]{16}")
"""A name sorts by the time it was taken (nanoseconds), then random: the oldest is first."""

SCREENSHOT_TOOL: dict[str, Any] = {
    "name": "system_screenshot",
    "description": (
        "Take a PNG screenshot of the screen and answer a URL of it on the Cove server "
        f"(no API key needed; valid {URL_LIFETIME_S // 60} minutes)."
    ),
    "inputSchema": {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
}


class ScreenshotNotFound(CoveError):
    code = "ScreenshotNotFound"
    http_status = 404


class ScreenshotUrlNotValid(CoveError):
    """A screenshot URL whose token is forged, for another image, or expired."""

    code = "ScreenshotUrlNotValid"
    http_status = 403


class Screenshots:
    """The images `system_screenshot` took, per session, and the signed URLs to them."""

    def __init__(self, data_dir: Path, base_url: str) -> None:
        self.root = data_dir / "screenshots"
        self.base_url = base_url
        self._key = hmac.new(server_secret(data_dir), b"cove screenshots", hashlib.sha256).digest()
        self._lock = threading.Lock()

    def take(self, session_id: str, agent: AgentClient) -> dict[str, Any]:
        """Run the agent's `screenshot` and answer, as MCP's result, the URL of the PNG kept here;
        the agent's failure (no display, say) is answered as it is."""
        result = agent.call("tools/call", {"name": "screenshot", "arguments": {"format": "png"}})
        if result.get("isError"):
            return result
        data = _data_of(result)
        if len(data) > (MAX_PNG_BYTES + 2) // 3 * 4:
            limit = f"{MAX_PNG_BYTES // (1024 * 1024)} MiB"
            return {
                "content": [{"type": "text", "text": f"the screenshot is larger than {limit}"}],
                "isError": True,
            }
        name = self._keep(session_id, _png(data))
        return {"content": [{"type": "text", "text": self.url(session_id, name)}], "isError": False}

    def url(self, session_id: str, name: str) -> str:
        expires = int(time.time()) + URL_LIFETIME_S
        token = f"{expires}.{self._signature(session_id, name, expires)}"
        return f"{self.base_url}/v1/screenshots/{session_id}/{name}.png?token={token}"

    def open(self, session_id: str, name: str, token: str) -> IO[bytes]:
        """The image the token grants, opened: it stays readable even if it is removed meanwhile."""
        expires, _, signature = token.partition(".")
        refused = ScreenshotUrlNotValid(
            "this screenshot URL is not valid (forged or expired); take a new one"
        )
        if not expires.isdigit() or int(expires) < time.time() or not _NAME.fullmatch(name):
            raise refused
        expected = self._signature(session_id, name, int(expires))
        if not hmac.compare_digest(expected.encode(), signature.encode(errors="surrogateescape")):
            raise refused
        try:
            return (self.root / session_id / f"{name}.png").open("rb")
        except FileNotFoundError:
            raise ScreenshotNotFound(
                "this screenshot is gone: its session ended, or newer screenshots replaced it"
            ) from None

    def forget(self, session_id: str) -> None:
        """Remove an ended session's images."""
        shutil.rmtree(self.root / session_id, ignore_errors=True)

    def sweep(self, live: Iterable[str]) -> None:
        """Remove the images of sessions not in `live` (ended while the server was down, say)."""
        keep = set(live)
        if self.root.is_dir():
            for folder in self.root.iterdir():
                if folder.name not in keep:
                    shutil.rmtree(folder, ignore_errors=True)

    def _keep(self, session_id: str, png: bytes) -> str:
        folder = self.root / session_id
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{secrets.token_hex(8)}"
        # Written under another name, then renamed: a download never sees half an image.
        partial = folder / f".{name}.partial"
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            handle.write(png)
        partial.rename(folder / f"{name}.png")
        with self._lock:
            kept = sorted(path for path in folder.glob("*.png") if _NAME.fullmatch(path.stem))
            for old in kept[:-KEEP_PER_SESSION]:
                old.unlink(missing_ok=True)
        return name

    def _signature(self, session_id: str, name: str, expires: int) -> str:
        payload = json.dumps([session_id, name, expires]).encode()
        digest = hmac.new(self._key, payload, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _data_of(result: dict[str, Any]) -> str:
    """The base64 image in the `screenshot` tool's answer; any other shape is the agent's failure."""
    try:
        data = json.loads(result["content"][0]["text"])["data"]
    except (KeyError, IndexError, TypeError, ValueError):
        data = None
    if not isinstance(data, str):
        raise SandboxError("the screenshot tool answered no image")
    return data


def _png(data: str) -> bytes:
    try:
        png = base64.b64decode(data, validate=True)
    except binascii.Error:
        png = b""
    if not png.startswith(PNG_MAGIC):
        raise SandboxError("the screenshot tool answered no PNG image")
    return png
