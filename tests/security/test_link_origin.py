"""Links are served on an origin apart from the API's: a page from a session can claim nothing of
the API's (no service worker, no cookie for its paths), and no Cove key reaches the sandbox."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx

from cove import Session
from tests.integration.server import KEY_A, KEY_B, CoveServer

PORT = 30100
APP = r"""
import http.server, json, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        data = json.dumps(dict(self.headers.items())).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Service-Worker-Allowed", "/")
        self.send_header("Set-Cookie", "grab=1; Path=/; Domain=127.0.0.1")
        self.end_headers()
        self.wfile.write(data)

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def serving_link(session: Session) -> str:
    """Start the app in the session and answer its HTTP link, once the app answers through it."""
    assert session.file_system.write_file("/tmp/app.py", APP).success
    assert session.command.start(f"python3 /tmp/app.py {PORT}").success
    answer = session.get_link("https", PORT)
    assert answer.success, answer.error_message
    link: str = answer.data
    deadline = time.monotonic() + 30
    while httpx.get(link).status_code != 200:
        assert time.monotonic() < deadline, "the app in the session did not answer"
        time.sleep(0.2)
    return link


def test_links_have_an_origin_of_their_own(server: CoveServer, session: Session) -> None:
    link = serving_link(session)
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == server.link_url != server.url, "another origin"

    on_api_port = httpx.get(f"{server.url}{parts.path}")
    assert on_api_port.status_code == 404, "the API's port serves no link"
    assert httpx.get(f"{server.link_url}/docs").status_code == 404, "the link origin has no /docs"
    assert (
        httpx.get(f"{server.link_url}/v1/sessions", headers={"Authorization": f"Bearer {KEY_A}"}).status_code
        == 404
    )

    answer = httpx.get(link)
    assert "service-worker-allowed" not in answer.headers, "a worker may claim no more than its folder"
    assert answer.headers.get_list("set-cookie") == [f"grab=1; Path={parts.path.rstrip('/')}"]


def test_no_cove_key_reaches_the_sandbox(session: Session) -> None:
    link = serving_link(session)
    for key in (KEY_A, KEY_B):  # the owner's key, and another tenant's
        seen = httpx.get(link, headers={"Authorization": f"Bearer {key}"}).json()
        assert "authorization" not in {name.lower() for name in seen}, "no Cove key passes into a sandbox"
    own = httpx.get(link, headers={"Authorization": "Bearer the-app's-own"}).json()
    assert {name.lower(): value for name, value in own.items()}["authorization"] == "Bearer the-app's-own"
