"""A page served inside a session, and Playwright on the session's browser over its CDP URL, for the
browser's tests (test_browser.py, and the official SDK's in test_agentbay_sdk.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from playwright.sync_api import Browser, sync_playwright

from tests.integration.computer_tools import tool_caller

FORM_PAGE = """<!doctype html>
<title>Form</title>
<form id="f" onsubmit="document.getElementById('out').textContent = 'hello ' +
  document.getElementById('name').value; return false;">
  <input id="name"><button id="go">Send</button>
</form>
<p id="out"></p>
"""
SITE_PORT = 8000


def serve_form(api: httpx.Client, session_id: str) -> str:
    """A page served inside the session, by Python's http.server in the background."""
    call = tool_caller(api, session_id)
    call("write_file", path="/tmp/site/index.html", content=FORM_PAGE)
    call("shell", command=f"cd /tmp/site && nohup python3 -m http.server {SITE_PORT} >/dev/null 2>&1 &")
    call(
        "shell",
        command=f"for i in $(seq 100); do curl -sf localhost:{SITE_PORT} >/dev/null && exit; sleep 0.1; done",
    )
    return f"http://127.0.0.1:{SITE_PORT}/"


def over_cdp(url: str, use: Callable[[Browser], Any]) -> Any:
    with sync_playwright() as playwright:
        browser = playwright.chromium.connect_over_cdp(url, timeout=60_000)
        try:
            return use(browser)
        finally:
            browser.close()


def fill_the_form(browser: Browser, page_url: str) -> tuple[str, bytes]:
    """Open the page in the browser's default context, fill and send the form, read the DOM."""
    context = browser.contexts[0]
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(page_url)
    page.fill("#name", "cove")
    page.click("#go")
    page.wait_for_function("document.getElementById('out').textContent !== ''")
    return page.inner_text("#out"), page.screenshot()
