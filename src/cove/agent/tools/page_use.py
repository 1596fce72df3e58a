"""AgentBay's page-use tools (`session.browser.operator`), with its names, arguments and answers:
those that need no LLM drive the session's running Chromium over CDP (../cdp.py); those that turn
instructions into actions (act, observe, extract, login) need an LLM endpoint this server does not
have, and say so at once, since AgentBay's SDK would otherwise poll them for minutes.

A page is a CDP target: `page_id` is its targetId (what the SDK sends for a Playwright page); with
none, the operator's page is the tab the browser's window shows. `context_id` is accepted: every
page here is in the browser's one default context.
"""

from __future__ import annotations

from typing import Any

from .. import browser
from ..cdp import CdpConnection, CdpError
from . import Tool, ToolError

CALL_TIMEOUT_S = 45.0
"""How long one tool may talk to the browser, in all (the server waits 60 s for a tool's answer)."""
PAGE = {
    "context_id": {
        "type": "integer",
        "description": "the page's browser context; accepted, one context here",
    },
    "page_id": {"type": "string", "description": "the page's CDP targetId; the tab shown if none"},
}
CLIP = {
    "type": "object",
    "properties": {name: {"type": "number"} for name in ("x", "y", "width", "height")},
    "required": ["x", "y", "width", "height"],
}


def _connect(timeout_s: float = CALL_TIMEOUT_S) -> CdpConnection:
    return CdpConnection(browser.PORT, browser.running_path(), timeout_s)


def _attach(cdp: CdpConnection, page_id: str | None) -> str:
    """Attach to the page `page_id`, or to the operator's page (the tab shown, opened if there is
    none); its flat CDP session id."""
    pages = [target for target in cdp.call("Target.getTargets")["targetInfos"] if target["type"] == "page"]
    if page_id is not None:
        if not any(target["targetId"] == page_id for target in pages):
            raise ToolError(f"no page has the id {page_id!r} (a CDP targetId) in the browser")
        return _attach_to(cdp, page_id)
    if not pages:
        return _attach_to(cdp, cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"])
    return _shown(cdp, [target["targetId"] for target in pages])


def _shown(cdp: CdpConnection, target_ids: list[str]) -> str:
    """Attach to the tab the browser's window shows, the one its user sees (the first tab if no
    window shows one): Chromium lists its tabs in no stable order, and only the shown tab's document
    is visible."""
    for target_id in target_ids:
        session_id = _attach_to(cdp, target_id)
        shown = cdp.call("Runtime.evaluate", {"expression": "document.visibilityState"}, session_id)
        if shown["result"].get("value") == "visible":
            return session_id
        cdp.call("Target.detachFromTarget", {"sessionId": session_id})
    return _attach_to(cdp, target_ids[0])


def _attach_to(cdp: CdpConnection, target_id: str) -> str:
    session_id: str = cdp.call("Target.attachToTarget", {"targetId": target_id, "flatten": True})["sessionId"]
    return session_id


def navigate(arguments: dict[str, Any]) -> str:
    url = arguments["url"]
    try:
        with _connect() as cdp:
            page = _attach(cdp, None)
            cdp.call("Page.enable", session_id=page)
            answer = cdp.call("Page.navigate", {"url": url}, session_id=page)
            if answer.get("errorText"):
                raise ToolError(f"{url}: {answer['errorText']}")
            if answer.get("loaderId"):  # a new document, not a move within this one
                cdp.wait_event("Page.loadEventFired", session_id=page)
    except CdpError as error:
        raise ToolError(f"navigate to {url}: {error}") from None
    return f"Navigated to {url}"


def screenshot(arguments: dict[str, Any]) -> str:
    """A PNG of the page as a data URL; `quality` is for JPEG, so it is accepted and not used."""
    timeout_s = min(float(arguments.get("timeout") or CALL_TIMEOUT_S), CALL_TIMEOUT_S)
    params: dict[str, Any] = {"format": "png"}
    try:
        with _connect(timeout_s) as cdp:
            page = _attach(cdp, arguments.get("page_id"))
            if clip := arguments.get("clip"):
                params.update(clip={**clip, "scale": 1}, captureBeyondViewport=True)
            elif arguments.get("full_page", True):
                size = cdp.call("Page.getLayoutMetrics", session_id=page)["cssContentSize"]
                whole = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
                params.update(clip=whole, captureBeyondViewport=True)
            data: str = cdp.call("Page.captureScreenshot", params, session_id=page)["data"]
    except CdpError as error:
        raise ToolError(f"screenshot: {error}") from None
    return "data:image/png;base64," + data


def close_session(arguments: dict[str, Any]) -> str:
    """The operator's browser ends: stopped as `stopChrome` stops it, its profile written first."""
    return "true" if browser.stop() else "false"


LLM_ARGUMENTS = (
    "trace_id",
    "action",
    "variables",
    "use_vision",
    "timeout",
    "instruction",
    "selector",
    "field_schema",
    "use_text_extract",
    "max_page",
    "login_config",
)
"""What AgentBay's SDK sends to the LLM tools; accepted so that the answer is the missing LLM, not an
argument."""


def needs_an_llm(name: str) -> Tool:
    def refuse(arguments: dict[str, Any]) -> str:
        raise ToolError(
            f"NotSupported: {name} needs an LLM endpoint to turn instructions into page actions, and "
            "this server has none; drive the page over CDP (the browser's endpoint URL) instead"
        )

    return Tool(
        name=name,
        description=f"AgentBay's {name}: needs an LLM endpoint, which this server does not have; it fails.",
        run=refuse,
        properties={**PAGE, **{key: {} for key in LLM_ARGUMENTS}},
    )


TOOLS = [
    Tool(
        name="page_use_navigate",
        description="Open `url` in the running browser's shown tab and wait for it to load.",
        run=navigate,
        properties={"url": {"type": "string"}},
        required=("url",),
    ),
    Tool(
        name="page_use_screenshot",
        description=(
            "A PNG screenshot of a page of the running browser, as a data URL "
            "(data:image/png;base64,...): the whole page, the viewport, or a clip."
        ),
        run=screenshot,
        properties={
            **PAGE,
            "full_page": {
                "type": "boolean",
                "description": "the whole scrollable page (default) or the viewport",
            },
            "quality": {"type": "integer", "description": "JPEG quality; accepted, the image is PNG"},
            "clip": CLIP,
            "timeout": {"type": "integer", "minimum": 1, "description": "seconds; at most 45"},
        },
    ),
    Tool(
        name="page_use_close_session",
        description="Close the operator's browser (as stopChrome): it writes its profile and stops.",
        run=close_session,
    ),
    *(
        needs_an_llm(name)
        for name in (
            "page_use_act_async",
            "page_use_observe_async",
            "page_use_extract_async",
            "page_use_login",
        )
    ),
]
