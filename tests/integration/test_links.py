"""Links to ports inside a session (`get_link`): real web and WebSocket servers run in the sandbox, and
are reached through the Cove server with no API key, HTTP and WebSocket, from the SDKs and the wire."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from cove import AgentBay, Config, CreateSessionParams, Session
from tests.integration.runtimes import BOTH_RUNTIMES, both_runtimes
from tests.integration.server import KEY_A, KEY_B, CoveServer

WEB_PORT, CLOSED_PORT, SOCKET_PORT = 30100, 30101, 30102
RANGE_MESSAGE = "port must be an integer in the range [30100, 30199]"
WEB_RUNTIMES = both_runtimes(scope="module")
"""For the tests on `web`: one serving session per runtime, shared by the module's tests."""

WEB_APP = r"""
import hashlib, http.server, json, sys

class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        with open("/tmp/requests.log", "a") as log:
            log.write(self.requestline + "\n")

    def reply(self, value):
        data = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while (size := int(self.rfile.readline().split(b";")[0], 16)):
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def echo(self, body):
        self.reply({"method": self.command, "target": self.path, "headers": dict(self.headers.items()),
                    "length": len(body), "sha256": hashlib.sha256(body).hexdigest()})

    def do_GET(self):
        if self.path.startswith("/echo"):
            return self.echo(b"")
        if self.path.startswith("/big/"):
            size, _, query = self.path[5:].partition("?")
            block = bytes(range(256)) * 256
            self.send_response(200)
            if query != "nolength":
                self.send_header("Content-Length", size)
            self.end_headers()
            left = int(size)
            while left:
                self.wfile.write(block[:min(left, len(block))])
                left -= min(left, len(block))
            return
        return super().do_GET()

    def do_POST(self):
        self.log_message("")
        self.echo(self.body())

    do_PUT = do_POST

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

SOCKET_APP = r"""
import base64, hashlib, socket, struct, sys, threading

def send(conn, opcode, data):
    size = len(data)
    if size < 126:
        head = struct.pack(">BB", 0x80 | opcode, size)
    elif size < 65536:
        head = struct.pack(">BBH", 0x80 | opcode, 126, size)
    else:
        head = struct.pack(">BBQ", 0x80 | opcode, 127, size)
    conn.sendall(head + data)

def serve(conn):
    stream = conn.makefile("rb")
    target = stream.readline().split()[1].decode()
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    key = headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    accept = base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()
    offered = headers.get("sec-websocket-protocol")
    chosen = f"Sec-WebSocket-Protocol: {offered.split(',')[0].strip()}\r\n" if offered else ""
    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {accept}\r\n{chosen}\r\n").encode())
    send(conn, 1, f"hello {target} {headers.get('x-token', '')}".encode())  # right behind the 101
    while True:
        first, second = stream.read(2)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack(">H", stream.read(2))[0]
        elif size == 127:
            size = struct.unpack(">Q", stream.read(8))[0]
        mask = stream.read(4)
        masked = stream.read(size)
        keys = (mask * (size // 4 + 1))[:size]
        data = (int.from_bytes(masked, "big") ^ int.from_bytes(keys, "big")).to_bytes(size, "big")
        opcode = first & 0x0F
        if opcode == 8:
            send(conn, 8, data[:2])
            conn.close()
            return
        if opcode == 9:
            send(conn, 10, data)
        elif data == b"close please":
            send(conn, 8, struct.pack(">H", 4001) + b"asked to")
        else:
            send(conn, opcode, data)

listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
"""


def wait_until_answers(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(url, timeout=10).status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def start_servers(session: Session) -> None:
    """The web app on WEB_PORT (serving /tmp/site) and the WebSocket echo server on SOCKET_PORT."""
    assert session.file_system.write_file("/tmp/site/hello.txt", "hello from the sandbox\n").success
    assert session.file_system.write_file("/tmp/web.py", WEB_APP).success
    assert session.file_system.write_file("/tmp/sockets.py", SOCKET_APP).success
    assert session.command.start(f"python3 /tmp/web.py {WEB_PORT}", cwd="/tmp/site").success
    assert session.command.start(f"python3 /tmp/sockets.py {SOCKET_PORT}").success


@pytest.fixture(scope="module")
def web(server: CoveServer, runtime: str) -> Iterator[tuple[Session, str]]:
    """One session on `runtime` serving the web app and the WebSocket server, and the HTTP link to the
    app."""
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        session = agent_bay.create(CreateSessionParams(runtime=runtime)).session
        assert session is not None
        try:
            start_servers(session)
            link = session.get_link("https", WEB_PORT)
            assert link.success, link.error_message
            wait_until_answers(link.data + "echo")
            yield session, link.data
        finally:
            session.delete()


def requests_seen(session: Session) -> int:
    return len(session.file_system.read_file("/tmp/requests.log").content.splitlines())


@WEB_RUNTIMES
def test_the_link_url_and_a_file_through_it(web: tuple[Session, str], server: CoveServer) -> None:
    session, link = web
    prefix = f"{server.link_url}/links/{session.session_id}/{WEB_PORT}/"
    assert link.startswith(prefix) and link.endswith("/")
    token = link[len(prefix) : -1]
    assert len(token) == 64 and int(token, 16) >= 0
    again = session.get_link("https", WEB_PORT)
    assert again.data == link, "a link is the same each time it is asked for"
    websocket = session.get_link(port=WEB_PORT)
    assert websocket.data == "ws" + link.removeprefix("http"), "without a protocol type: WebSocket"
    assert session.get_link("wss", WEB_PORT).data == websocket.data

    got = httpx.get(link + "hello.txt")  # no API key
    assert got.status_code == 200 and got.content == b"hello from the sandbox\n"
    head = httpx.head(link + "hello.txt")
    assert head.status_code == 200 and head.headers["content-length"] == "23" and head.content == b""
    redirected = httpx.get(link.rstrip("/"), params={"q": "1"})
    assert redirected.status_code == 308 and redirected.headers["location"].endswith(
        f"/{WEB_PORT}/{token}/?q=1"
    )
    assert httpx.get(link + "missing.txt").status_code == 404, "the service's own answers pass through"


@WEB_RUNTIMES
def test_query_headers_and_bodies_reach_the_service(web: tuple[Session, str]) -> None:
    _, link = web
    query = httpx.get(
        link + "echo/a%2Fb?x=1&y=%20two&x=3", headers={"X-Custom": "yes", "Authorization": f"Bearer {KEY_A}"}
    )
    echoed = query.json()
    assert echoed["target"] == "/echo/a%2Fb?x=1&y=%20two&x=3", "path and query exactly as sent"
    headers = {name.lower(): value for name, value in echoed["headers"].items()}
    assert headers["x-custom"] == "yes" and headers["host"] == f"localhost:{WEB_PORT}"
    assert headers["x-forwarded-prefix"].startswith("/links/") and "x-forwarded-for" in headers
    assert "authorization" not in headers, "the owner's API key never reaches the sandbox"
    path = f"Path={headers['x-forwarded-prefix']}"
    assert query.headers.get_list("set-cookie") == [f"a=1; {path}", f"b=2; {path}"], "repeats are kept"
    other = httpx.get(link + "echo", headers={"Authorization": "Bearer app-token"}).json()
    assert {k.lower(): v for k, v in other["headers"].items()}["authorization"] == "Bearer app-token"

    body = os.urandom(3 * 1024 * 1024 + 7)
    posted = httpx.post(link + "echo?kind=post", content=body).json()
    assert (posted["method"], posted["target"], posted["length"]) == ("POST", "/echo?kind=post", len(body))
    assert posted["sha256"] == hashlib.sha256(body).hexdigest()

    def chunks() -> Iterator[bytes]:
        yield b"first,"
        yield b"second"

    streamed = httpx.put(link + "echo", content=chunks()).json()  # no length: sent on chunked
    assert (streamed["method"], streamed["length"]) == ("PUT", len(b"first,second"))


@WEB_RUNTIMES
@pytest.mark.parametrize("query", ["", "?nolength"])
def test_a_large_response_streams_intact(web: tuple[Session, str], query: str) -> None:
    _, link = web
    size = 20 * 1024 * 1024 + 123
    block = bytes(range(256)) * 256
    expected = hashlib.sha256()
    for offset in range(0, size, len(block)):
        expected.update(block[: min(len(block), size - offset)])
    digest, received = hashlib.sha256(), 0
    with httpx.stream("GET", f"{link}big/{size}{query}", timeout=60) as response:
        assert response.status_code == 200
        assert response.headers.get("content-length") == (str(size) if not query else None)
        for chunk in response.iter_raw():
            digest.update(chunk)
            received += len(chunk)
    assert received == size and digest.hexdigest() == expected.hexdigest()


@WEB_RUNTIMES
def test_websocket_messages_go_both_ways(web: tuple[Session, str]) -> None:
    session, _ = web
    link = session.get_link("wss", SOCKET_PORT)
    assert link.success and link.data.startswith("ws://")
    with connect(
        link.data + "chat?room=1", subprotocols=["chat"], additional_headers={"X-Token": "t1"}, max_size=None
    ) as ws:
        assert ws.subprotocol == "chat"
        assert ws.recv(timeout=10) == "hello /chat?room=1 t1", "a message right behind the 101 is kept"
        ws.send("héllo")
        assert ws.recv(timeout=10) == "héllo"
        large = os.urandom(3 * 1024 * 1024)
        ws.send(large)
        assert ws.recv(timeout=30) == large
        ws.send(["frag", "mented"])  # one message in three frames
        assert ws.recv(timeout=10) == "fragmented"
        ws.ping()
    with connect(link.data) as ws:
        assert ws.recv(timeout=10) == "hello / "
        ws.send("close please")
        with pytest.raises(Exception) as closed:
            ws.recv(timeout=10)
        assert ws.close_code == 4001 and ws.close_reason == "asked to", closed.value


@WEB_RUNTIMES
def test_wrong_tokens_answer_404_and_reach_nothing(
    web: tuple[Session, str], server: CoveServer, new_session: Callable[..., dict[str, Any]]
) -> None:
    session, link = web
    base = f"{server.link_url}/links/{session.session_id}"
    token = link.rstrip("/").rsplit("/", 1)[1]
    other = new_session()
    with server.client() as api:
        other_link = api.get(f"/v1/sessions/{other['session_id']}/link", params={"port": WEB_PORT}).json()[
            "url"
        ]
    other_token = other_link.rstrip("/").rsplit("/", 1)[1]
    before = requests_seen(session)
    wrong = [
        f"{base}/{WEB_PORT}/{'0' * 64}/hello.txt",
        f"{base}/{WEB_PORT}/{token[:-1]}/hello.txt",
        f"{base}/{WEB_PORT}/{other_token}/hello.txt",  # another session's token
        f"{base}/{WEB_PORT + 1}/{token}/hello.txt",  # another port's
        f"{base}/80/{token}/hello.txt",
        f"{base}/{WEB_PORT}//hello.txt",
        f"{base}/{WEB_PORT}/",
        f"{server.link_url}/links/session-nosuchsession00/{WEB_PORT}/{token}/hello.txt",
    ]
    for url in wrong:
        answer = httpx.post(url, content=b"x")
        assert answer.status_code == 404, url
    answer = httpx.get(wrong[0])
    assert answer.json()["error"]["code"] == "LinkNotFound"
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws{base.removeprefix('http')}/{SOCKET_PORT}/{token}/")
    assert refused.value.response.status_code == 404
    assert requests_seen(session) == before, "no request reached the service"
    assert httpx.get(link + "hello.txt").status_code == 200


@WEB_RUNTIMES
def test_bad_ports_and_protocols_are_refused(web: tuple[Session, str], server: CoveServer) -> None:
    session, _ = web
    for port in (8080, 30099, 30200, "http"):
        with server.client() as api:
            answer = api.get(f"/v1/sessions/{session.session_id}/link", params={"port": port})
        assert answer.status_code == 400 and RANGE_MESSAGE in answer.json()["error"]["message"], port
    refused = session.get_link("https", 8080)
    assert (refused.success, refused.code, refused.http_status_code) == (False, "InvalidArgument", 400)
    assert RANGE_MESSAGE in refused.error_message
    no_port = session.get_link("https")  # the browser's CDP URL, and linux_latest has no browser
    assert not no_port.success and no_port.code == "BrowserUnavailable"
    assert "browser_latest" in no_port.error_message
    bad_type = session.get_link("ftp", WEB_PORT)
    assert not bad_type.success and "protocol_type" in bad_type.error_message
    with server.client(KEY_B) as stranger:
        answer = stranger.get(f"/v1/sessions/{session.session_id}/link", params={"port": WEB_PORT})
    assert answer.status_code == 404, "another tenant's session is not found"


@WEB_RUNTIMES
def test_nothing_listening_is_502(web: tuple[Session, str]) -> None:
    session, _ = web
    link = session.get_link("https", CLOSED_PORT)
    answer = httpx.get(link.data + "anything")
    assert answer.status_code == 502
    assert answer.json()["error"]["message"] == f"nothing is listening on port {CLOSED_PORT} in the session"
    with pytest.raises(InvalidStatus) as refused:
        connect(session.get_link(port=CLOSED_PORT).data)
    assert refused.value.response.status_code == 502


@BOTH_RUNTIMES
def test_a_paused_session_answers_409_and_a_deleted_one_no_more(session: Session) -> None:
    assert session.file_system.write_file("/tmp/site/hello.txt", "hi").success
    assert session.command.start(f"python3 -m http.server {WEB_PORT}", cwd="/tmp/site").success
    link = session.get_link("https", WEB_PORT).data
    wait_until_answers(link + "hello.txt")
    assert session.beta_pause().success
    paused = httpx.get(link + "hello.txt")
    assert paused.status_code == 409 and "resume it first" in paused.json()["error"]["message"]
    assert session.get_link("https", WEB_PORT).http_status_code == 409
    assert session.beta_resume().success
    assert httpx.get(link + "hello.txt").content == b"hi"
    assert session.delete().success
    assert httpx.get(link + "hello.txt").status_code == 409


@pytest.mark.filterwarnings(r"ignore:Config\(endpoint=:DeprecationWarning")
def test_the_official_sdk_gets_a_working_link(server: CoveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    os.environ.setdefault("AGENTBAY_LOG_LEVEL", "CRITICAL")
    from agentbay import AgentBay as OfficialAgentBay
    from agentbay import Config as OfficialConfig
    from agentbay._common.exceptions import SessionError

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "AGENTBAY_REGION_ID"):
        monkeypatch.delenv(name, raising=False)
    agent_bay = OfficialAgentBay(api_key=KEY_A, cfg=OfficialConfig(endpoint=server.url, timeout_ms=60_000))
    official = agent_bay.create().session
    try:
        official.file_system.write_file("/tmp/site/index.html", "<h1>official</h1>")
        official.command.execute_command(
            f"cd /tmp/site && nohup python3 -m http.server {WEB_PORT} >/dev/null 2>&1 &"
        )
        link = official.get_link("https", WEB_PORT)
        assert link.success and link.data.startswith(
            f"{server.link_url}/links/{official.session_id}/{WEB_PORT}/"
        )
        wait_until_answers(link.data)
        assert httpx.get(link.data).text == "<h1>official</h1>"
        assert official.get_link(port=WEB_PORT).data.startswith("ws://")
        with pytest.raises(SessionError, match=r"range \[30100, 30199\]"):
            official.get_link("https", 8080)
    finally:
        official.delete()
