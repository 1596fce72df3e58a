"""The server's front door under abuse: keyless and oversized bodies, slow senders, unexpected errors.

A server with small limits (1 MiB bodies, 2 s per body) is attacked over raw loopback sockets, so
what is sent, and when, is exactly what a hostile client would do.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from cove.cli import _listening
from cove.config import Settings
from cove.server.envelope import RequestEnvelope
from cove.server.prometheus import ServerMetrics
from tests.integration.server import KEY_A, CoveServer, free_port, scratch_server

MiB = 1024 * 1024
BODY_LIMIT = MiB
BODY_TIMEOUT_S = 2.0
ANSWER_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def limited() -> Iterator[CoveServer]:
    settings = {
        "max_request_body_bytes": BODY_LIMIT,
        "request_body_timeout_s": BODY_TIMEOUT_S,
        "warm_pool": 0,
    }
    with scratch_server(**settings) as started:
        yield started


def rss_kib(pid: int) -> int:
    """The process's resident memory now, KiB, from /proc (no psutil)."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found is not None
    return int(found.group(1))


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT_S)
    return sock


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP answer off the socket: status, headers (lower-case names) and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-answer"
        body += chunk
    return int(lines[0].split()[1]), headers, body[:length]


def is_closed(sock: socket.socket) -> bool:
    """Whether the server has closed the connection (it answers no more)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def head(method: str, path: str, *lines: str) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n"
    ).encode()


def send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send what the server may refuse to read: it may close the connection part way."""
    with contextlib.suppress(OSError):
        sock.sendall(data)


def test_keyless_body_is_refused_unread(limited: CoveServer) -> None:
    """64 MiB with no key: a 401 without reading it; the server's memory does not grow with it."""
    assert limited.process is not None
    before = rss_kib(limited.process.pid)
    with connect(limited.port) as sock:
        size = 64 * MiB
        sock.sendall(
            head("POST", "/v1/sessions", "Content-Type: application/json", f"Content-Length: {size}")
        )
        sender = threading.Thread(target=send_quietly, args=(sock, b"[" + b"1," * (size // 2 - 1) + b"]"))
        sender.start()
        status, headers, body = read_answer(sock)
        sender.join(ANSWER_TIMEOUT_S)
    grown = rss_kib(limited.process.pid) - before
    print(f"server RSS growth for a 64 MiB keyless body: {grown} KiB")
    assert status == 401 and b'"Unauthorized"' in body
    assert headers["connection"] == "close" and len(headers["x-request-id"]) == 32
    assert grown < 8 * 1024, f"the server grew by {grown} KiB"


def test_declared_length_past_the_limit_is_refused_before_reading(limited: CoveServer) -> None:
    with connect(limited.port) as sock:
        sock.sendall(
            head("POST", "/v1/sessions", f"Authorization: Bearer {KEY_A}", f"Content-Length: {2**30}")
        )
        status, headers, body = read_answer(sock)
        assert status == 413 and b'"PayloadTooLarge"' in body and headers["connection"] == "close"
        assert is_closed(sock)


def test_chunked_body_past_the_limit_is_cut_off(limited: CoveServer) -> None:
    with connect(limited.port) as sock:
        sock.sendall(
            head("POST", "/v1/contexts", f"Authorization: Bearer {KEY_A}", "Transfer-Encoding: chunked")
        )
        chunk = b"x" * (256 * 1024)
        send_quietly(sock, (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * 8)
        status, headers, body = read_answer(sock)
    assert status == 413 and b'"PayloadTooLarge"' in body and headers["connection"] == "close"


def test_slow_body_times_out(limited: CoveServer) -> None:
    """A body that trickles in gets a 408 after the time a body may take, and the connection ends."""
    with connect(limited.port) as sock:
        started = time.monotonic()
        sock.sendall(head("POST", "/v1/contexts", f"Authorization: Bearer {KEY_A}", "Content-Length: 100"))
        sock.sendall(b'{"name": ')
        status, headers, body = read_answer(sock)
        took = time.monotonic() - started
        assert status == 408 and b'"RequestTimeout"' in body and headers["connection"] == "close"
        assert BODY_TIMEOUT_S - 0.5 < took < BODY_TIMEOUT_S + 3
        assert is_closed(sock)


def test_streamed_context_upload_is_not_capped_and_a_dropped_one_is_no_error(limited: CoveServer) -> None:
    """Uploads stream past the body limit; a client that leaves mid-upload is not an error of ours."""
    with limited.client() as api:
        context_id = api.post("/v1/contexts", json={"name": f"front-door-{time.monotonic_ns()}"}).json()[
            "context"
        ]["id"]
        try:
            url = api.post(f"/v1/contexts/{context_id}/upload_url", params={"path": "big.bin"}).json()["url"]
            stored = httpx.put(url, content=b"x" * (3 * BODY_LIMIT), timeout=ANSWER_TIMEOUT_S)
            assert stored.status_code == 200 and stored.json()["size"] == 3 * BODY_LIMIT
            token_path = httpx.URL(url).raw_path.decode()
            with connect(limited.port) as sock:
                sock.sendall(head("PUT", token_path, f"Content-Length: {2 * MiB}") + b"y" * 4096)
            time.sleep(0.5)
        finally:
            api.delete(f"/v1/contexts/{context_id}")
    assert "unexpected error" not in limited.log.read_text()


def test_refusals_carry_request_ids_and_are_counted(limited: CoveServer) -> None:
    def refused() -> float:
        text = httpx.get(f"{limited.url}/metrics", timeout=ANSWER_TIMEOUT_S).text
        found = re.search(r'^cove_http_errors_total\{status="401"\} (\S+)$', text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    before = refused()
    answer = httpx.post(f"{limited.url}/v1/sessions", json={}, timeout=ANSWER_TIMEOUT_S)
    assert answer.status_code == 401 and answer.json()["request_id"] == answer.headers["x-request-id"]
    assert refused() == before + 1


def test_openapi_documents_every_error(limited: CoveServer) -> None:
    document = httpx.get(f"{limited.url}/openapi.json", timeout=ANSWER_TIMEOUT_S).json()
    assert "ErrorAnswer" in document["components"]["schemas"]
    operations = [
        op for path, item in document["paths"].items() if path.startswith("/v1/") for op in item.values()
    ]
    assert operations
    for operation in operations:
        statuses = set(operation["responses"])
        assert {"400", "401", "404", "408", "409", "413", "429", "500", "503", "default"} <= statuses
        assert "422" not in statuses, operation["operationId"]
        schema = operation["responses"]["401"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorAnswer"}


def test_no_proxy_is_trusted_unless_configured() -> None:
    assert _listening(Settings())["proxy_headers"] is False
    trusted = _listening(Settings(trusted_proxies="10.0.0.1"))
    assert trusted["proxy_headers"] is True and trusted["forwarded_allow_ips"] == "10.0.0.1"


@pytest.fixture
def failing_app() -> Iterator[tuple[int, ServerMetrics]]:
    """Cove's envelope around a route that fails unexpectedly, served by uvicorn on loopback."""

    async def broken(request: Request) -> PlainTextResponse:
        raise RuntimeError("a bug")

    async def fine(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/broken", broken), Route("/fine", fine)])
    app.add_middleware(RequestEnvelope)
    metrics = ServerMetrics(store=SimpleNamespace(count_by_status=dict))  # type: ignore[arg-type]
    app.state.services = SimpleNamespace(metrics=metrics)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield port, metrics
    finally:
        server.should_exit = True
        thread.join(ANSWER_TIMEOUT_S)


def test_unexpected_error_is_a_counted_500_on_a_kept_connection(
    failing_app: tuple[int, ServerMetrics], caplog: pytest.LogCaptureFixture
) -> None:
    port, metrics = failing_app
    with caplog.at_level(logging.ERROR), connect(port) as sock:
        sock.sendall(head("GET", "/broken"))
        status, headers, body = read_answer(sock)
        sock.sendall(head("GET", "/fine"))  # on the same connection: it was kept
        after, _, _ = read_answer(sock)
    answer = json.loads(body)
    assert status == 500 and answer["error"]["code"] == "InternalError"
    assert answer["request_id"] == headers["x-request-id"] and after == 200
    assert metrics.errors.labels("500")._value.get() == 1
    logged = [record for record in caplog.records if record.exc_info]
    assert len(logged) == 1 and "unexpected error" in logged[0].getMessage()
