"""Calls of `session.browser`: start the session's Chromium, its CDP URL, stop it."""

from __future__ import annotations

from typing import Any

from cove.sdk.core import Call, session_id_refusal, session_path, url_answer
from cove.sdk.models import BoolResult, BrowserOption, BrowserStartResult, OperationResult

START_TIMEOUT_S = 120.0
"""Longer than the agent gives Chromium to start (45 s), whatever the client's own timeout."""


def _started(answer: dict[str, Any], request_id: str) -> BrowserStartResult:
    return BrowserStartResult(
        request_id=request_id,
        success=True,
        port=answer["port"],
        started=answer["started"],
        cdp_url=answer["cdp_url"],
    )


def start(session_id: str, option: BrowserOption) -> Call[BrowserStartResult]:
    return Call(
        method="POST",
        path=f"{session_path(session_id)}/browser",
        body={"option": option.to_map()},
        refusal=session_id_refusal(session_id),
        result_type=BrowserStartResult,
        parse=_started,
        timeout_s=START_TIMEOUT_S,
    )


def cdp_url(session_id: str) -> Call[OperationResult]:
    """`data` is the URL; the server starts the browser first if it is not running."""
    return Call(
        method="GET",
        path=f"{session_path(session_id)}/browser/cdp_url",
        refusal=session_id_refusal(session_id),
        result_type=OperationResult,
        parse=url_answer,
        timeout_s=START_TIMEOUT_S,
    )


def stop(session_id: str) -> Call[BoolResult]:
    """`data` is False when no browser ran."""
    return Call(
        method="DELETE",
        path=f"{session_path(session_id)}/browser",
        refusal=session_id_refusal(session_id),
        result_type=BoolResult,
        parse=lambda answer, rid: BoolResult(request_id=rid, success=True, data=answer["stopped"]),
    )
