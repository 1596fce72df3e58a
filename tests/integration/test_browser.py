"""The session's browser on real sandboxes of browser_latest: Debian's Chromium, driven from the host by
Playwright (from PyPI, no browser of its own) over the session's CDP URL given by Cove's REST API.
The official AgentBay SDK's browser is tested in test_agentbay_sdk.py.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from cove import AsyncAgentBay, BrowserError, BrowserOption, BrowserViewport, Config, CreateSessionParams
from cove.server.api.cdp import MAX_CONNECTIONS
from tests.integration.browser_pages import fill_the_form, over_cdp, serve_form
from tests.integration.computer_tools import ToolFailed, tool_caller
from tests.integration.runtimes import BOTH_RUNTIMES, both_runtimes
from tests.integration.server import KEY_A, CoveServer, sdk_session

HEAP_GROWTH = "kept.push(new Array(1e6).fill(Math.random()))"
"""A page whose JavaScript heap grows without end."""
BUFFER_GROWTH = "kept.push(new Uint8Array(1e7).fill(7))"
"""A page whose array buffers, memory outside its JavaScript heap, grow without end."""
SHARED_RUNTIMES = both_runtimes(scope="module")
"""For the tests of CDP connections to a running browser: one session per runtime, shared."""
SANDBOX_DIES = pytest.mark.xfail(
    reason="gVisor has no OOM killer of its own: past the session's memory limit the host's kills the "
    "whole sandbox, the agent with it (docs/runtimes.md)",
    strict=True,
)


@pytest.fixture
def api(browser_server: CoveServer) -> Iterator[httpx.Client]:
    with browser_server.client(KEY_A) as client:
        client.timeout = 120
        yield client


@pytest.fixture
def session_id(api: httpx.Client, runtime: str) -> Iterator[str]:
    """A session of browser_latest on `runtime`, deleted after the test."""
    created = api.post("/v1/sessions", json={"runtime": runtime})
    assert created.status_code == 201, created.text
    found: str = created.json()["session"]["session_id"]
    yield found
    api.delete(f"/v1/sessions/{found}")


@pytest.fixture(scope="module")
def cdp_url(browser_server: CoveServer, runtime: str) -> Iterator[str]:
    """The CDP URL of a session on `runtime` whose browser it starts, shared by the module's tests
    that only connect to it."""
    with (
        sdk_session(browser_server, "browser_latest", runtime) as session,
        browser_server.client(KEY_A) as client,
    ):
        client.timeout = 120
        yield client.get(f"/v1/sessions/{session.session_id}/browser/cdp_url").json()["url"]


@BOTH_RUNTIMES
def test_playwright_drives_the_sessions_chromium(
    api: httpx.Client, session_id: str, browser_server: CoveServer, runtime: str
) -> None:
    page_url = serve_form(api, session_id)
    started = api.post(
        f"/v1/sessions/{session_id}/browser", json={"option": {"viewport": {"width": 1000, "height": 700}}}
    )
    assert started.status_code == 200, started.text
    assert started.json()["started"] is True
    cdp_url = started.json()["cdp_url"]
    assert cdp_url.startswith(f"ws://{browser_server.link_url.split('://', 1)[1]}/cdp/{session_id}/")

    text, screenshot = over_cdp(cdp_url, lambda browser: fill_the_form(browser, page_url))
    assert text == "hello cove"
    assert screenshot.startswith(b"\x89PNG\r\n\x1a\n")

    windows = browser_server.sandbox(session_id, "DISPLAY=:99 wmctrl -l").stdout
    assert "Chromium" in windows or "Form" in windows  # headful, on the display the desktop viewer shows
    again = api.post(f"/v1/sessions/{session_id}/browser", json={})
    assert again.json()["started"] is False
    same = api.get(f"/v1/sessions/{session_id}/browser/cdp_url")
    assert same.json()["url"] == cdp_url
    # The http:// form, which Playwright and Puppeteer (browserURL) read /json/version of first.
    http_url = "http" + cdp_url.removeprefix("ws")
    assert httpx.get(http_url + "/json/version").json()["webSocketDebuggerUrl"] == cdp_url
    assert over_cdp(http_url, lambda browser: browser.contexts[0].pages[0].evaluate("1 + 1")) == 2
    sandboxed = "You are adequately sandboxed." in over_cdp(cdp_url, sandbox_status)
    assert sandboxed is (runtime == "gvisor"), "Chromium's own sandbox where user namespaces can be made"


def sandbox_status(browser: Browser) -> str:
    """What Chromium says of its own sandbox."""
    page = browser.contexts[0].new_page()
    page.goto("chrome://sandbox")
    return page.inner_text("body")


@BOTH_RUNTIMES
def test_a_stopped_or_killed_browser_is_started_again(
    api: httpx.Client, session_id: str, browser_server: CoveServer
) -> None:
    assert api.post(f"/v1/sessions/{session_id}/browser", json={}).json()["started"] is True
    assert api.delete(f"/v1/sessions/{session_id}/browser").json()["stopped"] is True
    assert api.delete(f"/v1/sessions/{session_id}/browser").json()["stopped"] is False
    assert api.post(f"/v1/sessions/{session_id}/browser", json={}).json()["started"] is True
    leader = json.loads(browser_server.sandbox(session_id, "cat /tmp/.cove-browser/tree.json").stdout)[
        "leader"
    ]
    browser_server.sandbox(session_id, f"kill -9 {leader}")
    with pytest.raises(ToolFailed, match="not running: it exited"):
        tool_caller(api, session_id)("page_use_navigate", url="about:blank")
    restarted = api.post(f"/v1/sessions/{session_id}/browser", json={})
    assert restarted.json()["started"] is True
    assert (
        over_cdp(restarted.json()["cdp_url"], lambda browser: browser.contexts[0].pages[0].evaluate("1 + 1"))
        == 2
    )


@SHARED_RUNTIMES
def test_a_wrong_cdp_token_is_refused(cdp_url: str) -> None:
    wrong = cdp_url[:-4] + ("0000" if not cdp_url.endswith("0000") else "1111")
    with pytest.raises(InvalidStatus) as refused:
        connect(wrong, open_timeout=30).close()
    assert refused.value.response.status_code == 404
    assert httpx.get("http" + wrong.removeprefix("ws") + "/json/version").status_code == 404
    with connect(cdp_url, open_timeout=30, max_size=None) as cdp:
        cdp.send(json.dumps({"id": 1, "method": "Browser.getVersion"}))
        assert "Chrome/" in json.loads(cdp.recv(timeout=30))["result"]["product"]


@BOTH_RUNTIMES
def test_coves_sdk(browser_server: CoveServer, runtime: str) -> None:
    with sdk_session(browser_server, "browser_latest", runtime) as session:
        assert session.browser is session.browser and not session.browser.is_initialized()
        option = BrowserOption(viewport=BrowserViewport(width=900, height=600), user_agent="cove-test/1")
        assert session.browser.initialize(option) is True and session.browser.get_option() is option
        url = session.browser.get_endpoint_url()
        assert session.get_link().data == url
        agent = over_cdp(url, lambda browser: browser.contexts[0].pages[0].evaluate("navigator.userAgent"))
        assert agent == "cove-test/1"
        operator = session.browser.operator
        assert "data:text/html" in operator.navigate("data:text/html,<p>cove</p>")
        shot = operator.screenshot(full_page=False)
        assert base64.b64decode(shot.removeprefix("data:image/png;base64,")).startswith(b"\x89PNG")
        session.browser.destroy()
        assert not session.browser.is_initialized()
        assert "chromium" not in browser_server.sandbox(session.session_id, "ps -eo comm").stdout
    with pytest.raises(ValueError, match="browser_type"):
        BrowserOption(browser_type="firefox")


@BOTH_RUNTIMES
async def test_coves_async_sdk(browser_server: CoveServer, runtime: str) -> None:
    async with AsyncAgentBay(api_key=KEY_A, cfg=Config(endpoint=browser_server.url)) as agent_bay:
        created = await agent_bay.create(CreateSessionParams(image_id="browser_latest", runtime=runtime))
        assert created.session is not None, created.error_message
        browser = created.session.browser
        try:
            assert await browser.initialize(BrowserOption(cmd_args=["--bogus-switch-is-fine"])) is True
            assert (await browser.get_endpoint_url()).startswith("ws://")
            await browser.destroy()
        finally:
            await created.session.delete()
        with pytest.raises(BrowserError, match="Failed to get endpoint URL"):
            await browser.get_endpoint_url()  # the session is gone


@SHARED_RUNTIMES
def test_many_cdp_connections_are_bounded(cdp_url: str) -> None:
    held = [connect(cdp_url, open_timeout=60, max_size=None) for _ in range(MAX_CONNECTIONS)]
    try:
        with pytest.raises(InvalidStatus) as refused:
            connect(cdp_url, open_timeout=60).close()
        assert refused.value.response.status_code == 429
        assert b"CDP connections open" in refused.value.response.body
        held.pop().close()
        assert browser_version(cdp_url)  # a slot is free again once a client leaves
    finally:
        for cdp in held:
            cdp.close()


@SHARED_RUNTIMES
def test_a_client_leaving_mid_message_does_not_hurt_the_browser(cdp_url: str) -> None:
    for _ in range(3):
        where = urlsplit(cdp_url)
        with socket.create_connection((where.hostname, where.port), timeout=60) as raw:
            raw.sendall(
                f"GET {where.path} HTTP/1.1\r\nHost: {where.netloc}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            assert raw.recv(4096).startswith(b"HTTP/1.1 101")
            message = json.dumps({"id": 1, "method": "Browser.getVersion"}).encode()
            frame = bytes([0x81, 0x80 | len(message)]) + b"\0\0\0\0" + message  # masked with zeros
            raw.sendall(frame[: len(frame) // 2])
    assert browser_version(cdp_url)
    assert over_cdp(cdp_url, lambda browser: browser.contexts[0].pages[0].evaluate("1 + 1")) == 2


@pytest.mark.parametrize(
    ("runtime", "growth"),
    [
        pytest.param("runc", HEAP_GROWTH, id="runc-heap"),
        pytest.param("gvisor", HEAP_GROWTH, id="gvisor-heap"),
        pytest.param("runc", BUFFER_GROWTH, id="runc-buffers"),
        pytest.param("gvisor", BUFFER_GROWTH, id="gvisor-buffers", marks=SANDBOX_DIES),
    ],
    indirect=["runtime"],
)
def test_a_page_that_eats_memory_is_stopped_and_the_session_lives_on(
    api: httpx.Client, browser_server: CoveServer, runtime: str, growth: str
) -> None:
    """On runc the kernel's OOM killer, held to the session's cgroup, kills the page's renderer. On
    gvisor Chromium sizes its JavaScript heap by the memory the sandbox shows (its limit) and stops a
    page at that heap's end itself; memory outside the heap is the gap marked above."""
    created = api.post("/v1/sessions", json={"runtime": runtime, "resources": {"memory_mb": 600}})
    assert created.status_code == 201, created.text
    small = created.json()["session"]["session_id"]
    try:
        url = api.post(f"/v1/sessions/{small}/browser", json={}).json()["cdp_url"]

        def eat_memory(browser: Browser) -> str:
            page = browser.contexts[0].new_page()
            try:
                page.evaluate(f"() => {{ const kept = []; for (;;) {growth}; }}")
            except Exception as error:  # the page's renderer was killed under it
                return str(error)
            return "the page ran to its end"

        assert over_cdp(url, eat_memory) != "the page ran to its end"
        call = tool_caller(api, small)
        assert "alive" in call("shell", command="echo alive")  # the agent lives on
        if runtime == "runc":
            assert host_oom_kills(browser_server, small) > 0
        else:
            assert host_oom_kills(browser_server, small) == 0
            log = call("shell", command="grep 'V8 javascript OOM' /tmp/.cove-browser/browser.log")
            assert "Reached heap limit" in log
        # The renderer alone, or the whole browser, was killed: either way a start gives a working one.
        again = api.post(f"/v1/sessions/{small}/browser", json={})
        assert again.status_code == 200, again.text
        assert (
            over_cdp(
                again.json()["cdp_url"], lambda browser: browser.contexts[0].new_page().evaluate("1 + 1")
            )
            == 2
        )
    finally:
        api.delete(f"/v1/sessions/{small}")


def host_oom_kills(server: CoveServer, session_id: str) -> int:
    """The kernel's OOM kills in the session's memory cgroup on the host (v1 or v2)."""
    for directory in server.cgroup_dirs():
        for name in ("memory.events", "memory.oom_control"):
            if directory.name == session_id and (directory / name).is_file():
                counts = dict(line.split() for line in (directory / name).read_text().splitlines())
                return int(counts["oom_kill"])
    raise AssertionError(f"no memory cgroup for {session_id}")


def browser_version(url: str) -> str:
    with connect(url, open_timeout=60, max_size=None) as cdp:
        cdp.send(json.dumps({"id": 1, "method": "Browser.getVersion"}))
        product: str = json.loads(cdp.recv(timeout=60))["result"]["product"]
        return product


AUTH_PROXY = """
import base64, http.server, urllib.request
WANTED = "Basic " + base64.b64encode(b"alice:s3cret").decode()
class Proxy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Proxy-Authorization") != WANTED:
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open("/tmp/proxy.log", "a") as log:
            log.write(self.requestline + "\\n")
        body = urllib.request.urlopen(self.path).read()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("127.0.0.1", 3128), Proxy).serve_forever()
"""


@BOTH_RUNTIMES
def test_a_custom_proxy_with_credentials_carries_the_pages(
    api: httpx.Client, session_id: str, browser_server: CoveServer
) -> None:
    """Chromium is pointed at a local chaining proxy that adds the credentials AgentBay's option gives."""
    page_url = serve_form(api, session_id)
    call = tool_caller(api, session_id)
    call("write_file", path="/tmp/proxy.py", content=AUTH_PROXY)
    call("shell", command="nohup python3 /tmp/proxy.py >/tmp/proxy.out 2>&1 &")
    call(
        "shell", command="for i in $(seq 100); do curl -s localhost:3128 >/dev/null && exit; sleep 0.1; done"
    )
    proxy = {"type": "custom", "server": "127.0.0.1:3128", "username": "alice", "password": "s3cret"}
    option = {"proxies": [proxy], "cmdArgs": ["--proxy-bypass-list=<-loopback>"]}  # loopback too
    started = api.post(f"/v1/sessions/{session_id}/browser", json={"option": option})
    assert started.status_code == 200, started.text
    call("page_use_navigate", url=page_url)
    log = browser_server.sandbox(session_id, "cat /tmp/proxy.log").stdout
    assert f"GET {page_url} HTTP/1.1" in log

    refused = {"option": {"proxies": [{"type": "wuying", "strategy": "restricted"}]}}
    api.delete(f"/v1/sessions/{session_id}/browser")
    answer = api.post(f"/v1/sessions/{session_id}/browser", json=refused)
    assert answer.status_code == 400 and "type 'custom'" in answer.text
