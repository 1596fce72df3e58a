"""The browser tools: start the session's Chromium (`browser_start`, what InitBrowser and GetCdpLink
do) and stop it (`stopChrome`, AgentBay's name for what `browser.destroy()` calls). Pages are driven
over CDP by the client, not by tools (../browser.py, docs/browser.md).
"""

from __future__ import annotations

import json
from typing import Any

from .. import browser
from . import Tool

SIZE = {
    "type": "object",
    "properties": {"width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1}},
    "required": ["width", "height"],
}
PROXY = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["custom", "wuying", "managed"]},
        "server": {"type": "string"},
        "username": {"type": "string"},
        "password": {"type": "string"},
    },
    "required": ["type"],
}
BROWSER_OPTION = {
    "type": "object",
    "properties": {
        "viewport": SIZE,
        "screen": SIZE,
        "userAgent": {"type": "string"},
        "cmdArgs": {"type": "array", "items": {"type": "string"}},
        "defaultNavigateUrl": {"type": "string"},
        "browserType": {"type": "string", "enum": ["chrome", "chromium"]},
        "extensionPath": {"type": "string"},
        "proxies": {"type": "array", "items": PROXY},
    },
}
"""AgentBay's BrowserOption keys that mean something here; the others are accepted and ignored."""


def start(arguments: dict[str, Any]) -> str:
    running = browser.ensure(arguments.get("option") or {}, arguments.get("persistent_path"))
    return json.dumps(running)


def stop(arguments: dict[str, Any]) -> str:
    return "true" if browser.stop() else "false"


TOOLS = [
    Tool(
        name="browser_start",
        description=(
            "Start the session's Chromium on its display if it is not running (options apply only "
            "then); answers JSON {port, path, browser, started}, path being the browser's CDP "
            "WebSocket path. Clients reach it through the session's CDP URL."
        ),
        run=start,
        properties={
            "option": BROWSER_OPTION,
            "persistent_path": {
                "type": "string",
                "description": "Chromium's profile folder (user-data-dir); ~/.config/cove-browser if none",
            },
        },
    ),
    Tool(
        name="stopChrome",
        description="Stop the session's browser, letting it write its profile first; 'false' if none ran.",
        run=stop,
    ),
]
