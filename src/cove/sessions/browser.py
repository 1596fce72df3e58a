"""The session's browser as the host sees it: started and stopped by the agent's browser tools
(agent/browser.py), reached by clients through the session's CDP URL (links.py, server/api/cdp.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cove.errors import CoveError, InvalidArgument

if TYPE_CHECKING:
    from cove.sessions.manager import SessionManager

START_TOOL = "browser_start"
STOP_TOOL = "stopChrome"
CHROMIUM_PATH = "/usr/bin/chromium"
"""Where an image has the browser (Debian's chromium, as browser_latest's)."""
STOP_TIMEOUT_S = 30.0
"""Longer than the agent gives Chromium to close and leave (at most 15 s) before killing it."""


class BrowserUnavailable(CoveError):
    """The browser could not be started: not in the image, or it failed (the message says which)."""

    code = "BrowserUnavailable"
    http_status = 409


@dataclass(frozen=True)
class RunningBrowser:
    port: int
    """Chromium's debugging port inside the session (never reachable from outside it)."""
    path: str
    """The browser-level CDP WebSocket path, `/devtools/browser/<id>`."""
    started: bool
    """Whether this call started it (False: it was running, and its options were kept)."""
    product: str
    """Chromium's name and version, as /json/version's `Browser` says it (`Chrome/150.0...`)."""


def start(
    manager: SessionManager,
    tenant_id: str,
    session_id: str,
    option: Any = None,
    persistent_path: str | None = None,
) -> RunningBrowser:
    """The session's running browser, started with AgentBay's BrowserOption `option` and profile
    folder `persistent_path` if none runs."""
    if option is not None and not isinstance(option, dict):
        raise InvalidArgument("the browser option must be a JSON object (AgentBay's BrowserOption)")
    arguments: dict[str, Any] = {"option": option or {}}
    if persistent_path:
        arguments["persistent_path"] = persistent_path
    text = _text(manager.call_tool(tenant_id, session_id, START_TOOL, arguments))
    try:
        found = json.loads(text)
        return RunningBrowser(
            port=int(found["port"]),
            path=str(found["path"]),
            started=bool(found["started"]),
            product=str(found["browser"]),
        )
    except (ValueError, KeyError, TypeError):
        raise CoveError(f"the session's agent answered {START_TOOL} with {text[:200]!r}") from None


def stop(manager: SessionManager, tenant_id: str, session_id: str) -> bool:
    """Stop the session's browser; False if none ran."""
    return _text(manager.call_tool(tenant_id, session_id, STOP_TOOL, {})) == "true"


def _text(result: dict[str, Any]) -> str:
    content = result.get("content") or [{}]
    text = str(content[0].get("text", ""))
    if result.get("isError"):
        raise BrowserUnavailable(text)
    return text
