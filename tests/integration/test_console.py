"""The web console at /console, driven in a real Chromium (Debian's, by Playwright) against a real
server and real sandboxes: sign-in, the live session list, a session's terminal, files, code and
desktop, contexts and the server's page. Each page's screenshot is written to docs/console/."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from cove import AgentBay, Config
from cove.console import assets
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_A, KEY_B, CoveServer
from tests.integration.test_desktop_viewer import CHROMIUM, CHROMIUM_FLAGS

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
VIEWPORT = {"width": 1366, "height": 860}
"""A laptop's screen."""
WAIT_MS = 30_000
PROMPT = r"bash-[\d.]+\$"
"""bash's prompt in the terminal: the shell waits for a line (input typed ahead of it is not kept
reliably on gvisor: docs/runtimes.md)."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not assets.installed():
        pytest.fail("the console's npm packages are not installed: python -m cove.server.npm_packages")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A tab of its own (its own sessionStorage), which accepts the console's confirmations."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "console",
        lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None,
    )
    opened.on("dialog", lambda dialog: dialog.accept())
    opened.set_default_timeout(WAIT_MS)
    yield opened
    context.close()
    assert not errors, f"the page raised or broke its policy: {errors}"


def screenshot(page: Page, name: str, full_page: bool = False) -> None:
    """The page as a user sees it, notices gone (they fade by themselves)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.getElementById('toast').replaceChildren()")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def sign_in(page: Page, server: CoveServer, key: str = KEY_A, hash_route: str = "") -> None:
    page.goto(f"{server.url}/console/{hash_route}")
    page.fill("#api-key", key)
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#nav:not([hidden])")


def terminal_shows(page: Page, pattern: str) -> re.Match[str]:
    """Waits until the terminal's text matches `pattern`, and answers the last match."""
    page.wait_for_function(
        "(pattern) => new RegExp(pattern).test(document.querySelector('.xterm-rows').innerText)", arg=pattern
    )
    *_, last = re.finditer(pattern, page.locator(".xterm-rows").inner_text())
    return last


def test_a_browser_at_the_root_goes_to_the_console_and_a_wrong_key_is_refused(
    page: Page, server: CoveServer
) -> None:
    page.goto(f"{server.url}/")
    assert page.url == f"{server.url}/console/"
    policy = httpx.get(f"{server.url}/console/").headers["content-security-policy"]
    assert "script-src 'self';" in policy and "connect-src 'self';" in policy
    assert httpx.get(f"{server.url}/", headers={"Accept": "application/json"}).status_code == 405

    page.fill("#api-key", "not-a-key-of-this-server")
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#sign-in-error:has-text('refused')")
    assert page.evaluate("sessionStorage.length") == 0
    assert page.is_hidden("#nav")
    screenshot(page, "sign-in")


@BOTH_RUNTIMES
def test_the_list_is_live_and_shows_only_the_key_s_sessions(
    page: Page, server: CoveServer, api: httpx.Client, new_session: Callable[..., dict[str, Any]]
) -> None:
    mine = new_session(labels={"console": "list"})["session_id"]
    theirs = new_session(key=KEY_B, labels={"console": "list"})["session_id"]
    sign_in(page, server)
    page.wait_for_selector(f"#session-rows tr[data-session-id='{mine}']")
    assert page.locator(f"#session-rows tr[data-session-id='{theirs}']").count() == 0
    assert KEY_A in page.evaluate("Object.values(sessionStorage)")
    assert KEY_A not in page.url

    # Created from the form: it appears without a reload, as does everything below.
    marker = uuid.uuid4().hex[:8]
    page.fill("#create-labels", f"console=list, run={marker}")
    page.click("text=Create session")
    created = page.wait_for_selector(f"#session-rows tr:has(.chip:text-is('run={marker}'))")
    created_id = created.get_attribute("data-session-id")
    assert created_id
    try:
        row = f"#session-rows tr[data-session-id='{mine}']"
        page.wait_for_selector(f"{row} td.num:has-text('MiB')")  # its memory, from the metrics
        with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
            paused = agent_bay.get(mine).session
            assert paused is not None
            assert paused.beta_pause().success
        page.wait_for_selector(f"{row}[data-status=PAUSED]")
        page.fill("#filter-labels", f"run={marker}")
        page.click("form[role=search] button[type=submit]")
        page.wait_for_selector(f"{row}", state="detached")
        page.fill("#filter-labels", "console=list")
        page.click("form[role=search] button[type=submit]")
        page.wait_for_selector(row)
        screenshot(page, "sessions")
        page.emulate_media(color_scheme="dark")
        screenshot(page, "sessions-dark")
        page.emulate_media(color_scheme="light")

        page.click(f"button[aria-label='Delete {created_id}']")
        page.wait_for_selector(f"#session-rows tr[data-session-id='{created_id}']", state="detached")
        assert api.get(f"/v1/sessions/{created_id}").json()["session"]["status"] == "DELETED"
    finally:
        api.delete(f"/v1/sessions/{created_id}")


@BOTH_RUNTIMES
def test_a_session_s_page_runs_a_terminal_files_code_and_its_desktop(
    page: Page, server: CoveServer, api: httpx.Client, new_session: Callable[..., dict[str, Any]]
) -> None:
    session_id = new_session(labels={"console": "page"})["session_id"]
    sign_in(page, server, hash_route=f"#/sessions/{session_id}")
    page.wait_for_selector("#session-status .badge[data-status=RUNNING]")
    page.wait_for_selector("#chart-memory strong:has-text('MiB')")

    # Labels edited on the page are the session's.
    page.click("text=Add label")
    page.locator(".label-key").last.fill("owner")
    page.locator(".label-value").last.fill("console")
    page.click("text=Save labels")
    page.wait_for_selector("#toast:has-text('Labels saved')")
    assert api.get(f"/v1/sessions/{session_id}/labels").json()["labels"] == {
        "console": "page",
        "owner": "console",
    }
    screenshot(page, "session")

    page.click("#tab-terminal")
    page.wait_for_selector("#terminal[data-state=connected]")
    terminal_shows(page, PROMPT)  # each line is typed at the shell's prompt, as a person types
    page.keyboard.type("echo console-$((6 * 7)) && stty size\n")
    rows, cols = map(int, terminal_shows(page, r"console-42\s*\n(\d+) (\d+)\s*\n" + PROMPT).groups())
    assert cols > 80, (rows, cols)  # the terminal took the page's width
    screenshot(page, "terminal")
    page.set_viewport_size({"width": 900, "height": 700})  # the terminal follows the window
    page.keyboard.type("clear; echo size-$(stty size | tr ' ' x)\n")
    resized = terminal_shows(page, r"size-(\d+)x(\d+)\s*\n" + PROMPT).groups()
    assert int(resized[1]) < cols, resized
    page.set_viewport_size(VIEWPORT)

    page.click("#tab-files")
    page.wait_for_selector("#file-rows tr")
    content = b"uploaded from the console\n" * 1000
    page.set_input_files(
        "#upload-input", files=[{"name": "upload.txt", "mimeType": "text/plain", "buffer": content}]
    )
    page.wait_for_selector("#file-rows tr[data-name='upload.txt']")
    assert (
        api.get(f"/v1/sessions/{session_id}/files", params={"path": "/home/user/upload.txt"}).content
        == content
    )
    api.put(
        f"/v1/sessions/{session_id}/files",
        params={"path": "/home/user/made.txt"},
        content=b"made by the API\n",
    )
    page.click("text=Refresh")
    with page.expect_download() as download:
        page.click("button[aria-label='Download made.txt']")
    assert Path(download.value.path()).read_bytes() == b"made by the API\n"
    page.click("button[aria-label='Edit made.txt']")
    page.fill("#editor-text", "edited in the console\n")
    page.click("#file-editor button:text-is('Save')")
    page.wait_for_selector("#toast:has-text('Saved /home/user/made.txt')")
    page.click("button[aria-label='Edit made.txt']")  # the editor stays open for the screenshot
    screenshot(page, "files")
    page.click("button[aria-label='Delete upload.txt']")
    page.wait_for_selector("#file-rows tr[data-name='upload.txt']", state="detached")
    made = api.get(f"/v1/sessions/{session_id}/files", params={"path": "/home/user/made.txt"})
    assert made.content == b"edited in the console\n"

    page.click("#tab-code")
    page.fill("#code-input", CELL)
    page.click("#code-run")
    page.wait_for_selector(".cell-output[data-state=done]")
    output = page.locator(".cell-output").first
    assert "hello from a cell" in output.inner_text()
    assert output.locator("pre.result-text:text-is('42')").count() == 1
    frame = output.locator("iframe.html-result")
    assert frame.get_attribute("sandbox") == ""  # the session's HTML runs no script, has no origin
    assert page.frame_locator(".cell-output iframe.html-result").locator("b").inner_text() == "rich"
    assert output.locator("img[src^='data:image/png']").evaluate("image => image.naturalWidth") == 120
    assert page.title() == "Cove console"
    screenshot(page, "code", full_page=True)

    page.click("#tab-desktop")
    page.click("#desktop-view")
    viewer = page.frame_locator("iframe.desktop-frame")
    viewer.locator("body[data-state=connected]").wait_for(timeout=60_000)
    screenshot(page, "desktop")


CELL = """print("hello from a cell")
import base64, struct, zlib
display({"text/html": "<b>rich</b> <script>parent.document.title = 'taken'</script>"}, raw=True)
rows = b"".join(b"\\0" + b"".join(bytes((x * 2, y * 4, 200)) for x in range(120)) for y in range(60))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
image = b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 120, 60, 8, 2, 0, 0, 0))
image += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
display({"image/png": base64.b64encode(image).decode(), "text/plain": "a gradient"}, raw=True)
6 * 7"""


def test_contexts_and_the_server_s_page(page: Page, server: CoveServer, api: httpx.Client) -> None:
    name = f"console-{uuid.uuid4().hex[:8]}"
    context_id = api.post("/v1/contexts", json={"name": name}).json()["context"]["id"]
    try:
        for path, body in (("notes/a.txt", b"alpha\n"), ("top.txt", b"top\n")):
            upload = api.post(f"/v1/contexts/{context_id}/upload_url", params={"path": path}).json()
            assert httpx.put(upload["url"], content=body).status_code == 200
        sign_in(page, server, hash_route="#/contexts")
        page.click(f"text={name}")
        page.wait_for_selector("#context-file-rows tr[data-name='notes']")
        page.click("#context-file-rows a:text-is('notes/')")
        page.wait_for_selector("#context-file-rows tr[data-name='a.txt']")
        with page.expect_download() as download:
            page.click("button[aria-label='Download a.txt']")
        assert Path(download.value.path()).read_bytes() == b"alpha\n"
        page.click("button[aria-label='Delete a.txt']")
        page.wait_for_selector("#context-file-rows tr[data-name='a.txt']", state="detached")
        page.click("#context-path button:text-is('Up')")
        page.wait_for_selector("#context-file-rows tr[data-name='top.txt']")
        screenshot(page, "context-files")
        page.click("a:text-is('← All contexts')")
        page.wait_for_selector(f"#context-rows tr[data-context-id='{context_id}']")
        screenshot(page, "contexts")
        page.click(f"button[aria-label='Delete context {name}']")
        page.wait_for_selector(f"#context-rows tr[data-context-id='{context_id}']", state="detached")
        assert api.get(f"/v1/contexts/{context_id}").status_code == 404
    finally:
        api.delete(f"/v1/contexts/{context_id}")

    page.click("#nav a:text-is('Server')")
    page.wait_for_selector("#server-health:has-text('healthy')")
    page.wait_for_selector(
        "#sessions-by-status td:text-is('RUNNING'), #sessions-by-status td:text-is('DELETED')"
    )
    screenshot(page, "server")


def test_the_terminal_and_the_event_stream_need_the_key_and_show_only_its_sessions(
    server: CoveServer, new_session: Callable[..., dict[str, Any]]
) -> None:
    session_id = new_session()["session_id"]
    url = server.url.replace("http", "ws", 1) + f"/v1/sessions/{session_id}/terminal"
    for key, close_code in (("not-a-key", 4401), (KEY_B, 4404)):
        with connect(url) as socket:
            socket.send(json.dumps({"type": "auth", "key": key, "cols": 80, "rows": 24}))
            refusal = json.loads(socket.recv(timeout=30))
            assert refusal["type"] == "error", refusal
            with pytest.raises(ConnectionClosed) as closed:
                socket.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == close_code

    assert httpx.get(f"{server.url}/v1/events").status_code == 401
    bad = httpx.get(
        f"{server.url}/v1/events", params={"labels": "team=a"}, headers={"Authorization": f"Bearer {KEY_A}"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidArgument"
    for key, seen in ((KEY_A, True), (KEY_B, False)):
        with httpx.stream(
            "GET", f"{server.url}/v1/events", headers={"Authorization": f"Bearer {key}"}
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == "event: snapshot"
            snapshot = json.loads(next(lines).removeprefix("data: "))
        listed = {session["session_id"] for session in snapshot["sessions"]}
        assert (session_id in listed) is seen
