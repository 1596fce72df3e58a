"""The desktop viewer: a page on the link listener showing a session's display over VNC, opened in a
real Chromium (Debian's, driven by Playwright), and its WebSocket spoken to directly in RFB."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from click.testing import CliRunner
from playwright.sync_api import Browser, Page, sync_playwright

from cove.cli import main
from tests.integration.computer_tools import XTERM_RUNTIMES, Call, until
from tests.integration.rfb import RfbClient
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_A, CoveServer, sdk_session

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Chromium reaches for Google's hosts unless told not to; this machine's network refuses them."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def desktop_url(desktop: tuple[str, Call], api: httpx.Client) -> Callable[..., str]:
    session_id, _ = desktop

    def url(interactive: bool = False) -> str:
        answer = api.get(f"/v1/sessions/{session_id}/desktop_url", params={"interactive": interactive})
        assert answer.status_code == 200, answer.text
        found: str = answer.json()["url"]
        return found

    return url


PIXEL_AT = (
    "([x, y]) => [...document.querySelector('#screen canvas').getContext('2d').getImageData(x, y, 1, 1).data]"
)
"""The viewer's pixel at (x, y) of the session's screen, as RGBA."""


def rgb_at(page: Page, x: int, y: int) -> str:
    """The viewer's colour at (x, y), as #rrggbb."""
    red, green, blue, _ = page.evaluate(PIXEL_AT, [x, y])
    return f"#{red:02x}{green:02x}{blue:02x}"


def open_viewer(browser: Browser, url: str) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    page.wait_for_selector("body[data-state=connected]", timeout=20_000)
    page.wait_for_selector("#screen canvas")
    return page


@BOTH_RUNTIMES
def test_the_viewer_shows_the_desktop_live_and_only_views_by_default(
    desktop: tuple[str, Call], desktop_url: Callable[..., str], browser: Browser, server: CoveServer
) -> None:
    session_id, call = desktop
    page = open_viewer(browser, desktop_url())  # the first viewer starts the display
    assert page.inner_text("#status") == "view only"
    canvas = page.locator("#screen canvas")
    assert canvas.bounding_box() == {"x": 0, "y": 0, "width": 1280, "height": 800}
    for colour in ("#ff00ff", "#00ffff"):  # the screen's background, as it changes
        server.sandbox(session_id, f"DISPLAY=:99 xsetroot -solid '{colour}'")
        until(lambda wanted=colour: rgb_at(page, 640, 400) == wanted)

    call("move_mouse", x=5, y=5)
    page.mouse.click(640, 400)
    assert json.loads(call("get_cursor_position")) == {"x": 5, "y": 5}
    page.close()


@XTERM_RUNTIMES
def test_the_interactive_viewer_takes_over_the_pointer_and_keyboard(
    desktop: tuple[str, Call], desktop_url: Callable[..., str], browser: Browser, server: CoveServer
) -> None:
    session_id, call = desktop
    call("start_app", start_cmd="xterm -title typing -geometry 60x10+0+0 -e sh -c 'cat > /tmp/typed.txt'")
    until(lambda: any(w["window_title"] == "typing" for w in json.loads(call("list_root_windows"))))
    page = open_viewer(browser, desktop_url(interactive=True))
    assert page.inner_text("#status") == "connected"
    page.mouse.move(321, 123)
    until(lambda: json.loads(call("get_cursor_position")) == {"x": 321, "y": 123})
    page.mouse.click(100, 60)  # into the terminal
    page.keyboard.type("typed in the browser\n")
    until(lambda: server.sandbox(session_id, "cat /tmp/typed.txt").stdout == "typed in the browser\n")
    page.close()


@BOTH_RUNTIMES
def test_a_view_only_url_cannot_control_whatever_its_client_sends(
    desktop: tuple[str, Call], desktop_url: Callable[..., str]
) -> None:
    """The VNC server behind a view-only URL ignores input, so a client that sends some anyway (not
    the page, which sends none) moves nothing; behind the interactive URL the same input lands."""
    _, call = desktop
    call("move_mouse", x=5, y=5)
    pointer_event = struct.pack(">BBHH", 5, 0, 200, 100)  # no button pressed, at (200, 100)
    with rfb(desktop_url()) as viewer:
        viewer.connection.send(pointer_event)
        viewer.request_update(16, 16)  # answered after the pointer event was handled
        assert viewer.read_update() == 16 * 16
    assert json.loads(call("get_cursor_position")) == {"x": 5, "y": 5}
    with rfb(desktop_url(interactive=True)) as viewer:
        viewer.connection.send(pointer_event)
        until(lambda: json.loads(call("get_cursor_position")) == {"x": 200, "y": 100})


@BOTH_RUNTIMES
def test_wrong_tokens_and_stopped_sessions_find_no_viewer(
    desktop: tuple[str, Call], desktop_url: Callable[..., str], api: httpx.Client
) -> None:
    session_id, _ = desktop
    url = desktop_url()
    forged = url.replace(url.rstrip("/").rsplit("/", 1)[1], "0" * 64)
    assert httpx.get(forged).status_code == 404
    assert httpx.get(url.rstrip("/"), follow_redirects=False).status_code == 308
    page = httpx.get(url)
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    other = url.replace(session_id, session_id[:-1] + ("0" if session_id[-1] != "0" else "1"))
    assert httpx.get(other).status_code == 404  # a token is for one session only
    assert api.post(f"/v1/sessions/{session_id}/pause").status_code == 200
    paused = httpx.get(url)
    assert paused.status_code == 409 and "resume it first" in paused.text
    assert api.get(f"/v1/sessions/{session_id}/desktop_url").status_code == 409
    assert api.post(f"/v1/sessions/{session_id}/resume").status_code == 200
    assert api.get("/v1/sessions/session-none/desktop_url").status_code == 404


@contextmanager
def rfb(page_url: str) -> Iterator[RfbClient]:
    client = RfbClient(page_url)
    try:
        assert client.handshake() == (1280, 800)
        yield client
    finally:
        client.connection.close()


@BOTH_RUNTIMES
def test_the_sdk_gives_both_viewer_urls(server: CoveServer, runtime: str) -> None:
    with sdk_session(server, "linux_latest", runtime) as session:
        view_only, interactive = session.get_desktop_url(), session.get_desktop_url(interactive=True)
        assert view_only.success and interactive.success
        assert view_only.data.startswith(f"{server.link_url}/desktop/{session.session_id}/")
        assert view_only.data != interactive.data
        assert 'data-interactive="true"' in httpx.get(interactive.data).text
        command = ["session", "view", "--endpoint", server.url, "--api-key", KEY_A, session.session_id]
        printed = CliRunner().invoke(main, [*command, "--interactive"], catch_exceptions=False)
        assert (printed.exit_code, printed.output) == (0, interactive.data + "\n")


MAGENTA_PAGE = "data:text/html,<body style='margin:0;background:rgb(255,0,255)'>"


@BOTH_RUNTIMES
def test_the_sessions_browser_is_seen_in_the_viewer(
    browser_server: CoveServer, browser: Browser, runtime: str
) -> None:
    """On browser_latest, Chromium runs on the display the viewer shows."""
    with (
        sdk_session(browser_server, "browser_latest", runtime) as session,
        browser_server.client(KEY_A) as api,
    ):
        api.timeout = 120
        option = {"defaultNavigateUrl": MAGENTA_PAGE}
        started = api.post(f"/v1/sessions/{session.session_id}/browser", json={"option": option})
        assert started.status_code == 200, started.text
        url = api.get(f"/v1/sessions/{session.session_id}/desktop_url").json()["url"]
        page = open_viewer(browser, url)
        until(lambda: page.evaluate(PIXEL_AT, [640, 500]) == [255, 0, 255, 255], timeout=30)
        page.close()
