"""The OSS tools' own checks, before any byte moves: where the server may send requests for a session,
the arguments, credentials kept out of sight, and a call before `oss_env_init`."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cove.contexts.transfer_limits import TransferLimits
from cove.errors import InvalidArgument
from cove.sandbox.agent_client import AgentClient
from cove.sessions.oss import (
    ObjectStorageTools,
    OssCredentials,
    OssFailed,
    check_destination,
    url_client,
)

NO_AGENT = AgentClient(Path("/nonexistent"), "s-unit")
LIMITS = TransferLimits(1 << 30, 1 << 32, 60.0, Path("/nonexistent"))
"""The checks answer before the sandbox is asked anything."""


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/bucket/key",
        "http://localhost/x",
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://10.1.2.3/x",
        "http://[::1]:8080/x",
        "https://192.168.0.10/x",
        "http://0.0.0.0:8000/x",  # connects to this machine
        "http://[::]:8000/x",
        "http://2130706433/x",  # 127.0.0.1 as one decimal number
        "http://0177.0.0.1/x",  # octal
        "http://0x7f.1/x",
        "http://[::ffff:127.0.0.1]/x",  # IPv4-mapped IPv6
        "http://[::ffff:169.254.169.254]/x",
        "http://[64:ff9b::a9fe:a9fe]/x",  # NAT64 of 169.254.169.254
        "http://[::127.0.0.1]/x",  # IPv4-compatible IPv6
        "http://[2002:7f00:1::]/x",  # 6to4 of 127.0.0.1
        "http://100.64.0.1/x",  # carrier-grade NAT
    ],
)
def test_private_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(OssFailed, match="COVE_OSS_PRIVATE_NETWORKS"):
        check_destination(url, private_networks=False)
    check_destination(url, private_networks=True)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "http:///nohost", "gopher://x"])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(OssFailed, match="not an http"):
        check_destination(url, private_networks=True)


def test_a_public_address_is_allowed() -> None:
    check_destination("https://8.8.8.8/bucket/key?X-Amz-Signature=x", private_networks=False)


def test_arguments_and_a_call_before_env_init() -> None:
    tools = ObjectStorageTools(LIMITS, private_networks=False)
    with pytest.raises(InvalidArgument, match="bucket is required"):
        tools.call("s-1", NO_AGENT, "oss_upload", {"object": "o", "path": "/p"})
    with pytest.raises(InvalidArgument, match="unknown argument 'size'"):
        tools.call("s-1", NO_AGENT, "oss_download", {"bucket": "b", "object": "o", "path": "/p", "size": "1"})
    early = tools.call("s-1", NO_AGENT, "oss_upload", {"bucket": "b", "object": "o", "path": "/p"})
    assert early["isError"] and "call oss_env_init first" in early["content"][0]["text"]
    refused = tools.call(
        "s-1",
        NO_AGENT,
        "oss_env_init",
        {"access_key_id": "k", "access_key_secret": "s", "endpoint": "127.0.0.1:9000"},
    )
    assert refused["isError"] and "127.0.0.1" in refused["content"][0]["text"]


def test_credentials_stay_out_of_answers_and_reprs() -> None:
    tools = ObjectStorageTools(LIMITS, private_networks=True)
    arguments = {
        "access_key_id": "AK",
        "access_key_secret": "very-secret",
        "security_token": "tok",
        "endpoint": "s3.example.com",
    }
    answer = tools.call("s-1", NO_AGENT, "oss_env_init", arguments)
    assert not answer["isError"] and "very-secret" not in str(answer) and "tok" not in str(answer)
    assert "https://s3.example.com" in answer["content"][0]["text"]  # host names mean https, as on AgentBay
    assert "very-secret" not in repr(OssCredentials("AK", "very-secret", "tok", "", "us-east-1"))
    tools.forget("s-1")
    again = tools.call("s-1", NO_AGENT, "oss_download", {"bucket": "b", "object": "o", "path": "/p"})
    assert again["isError"] and "oss_env_init first" in again["content"][0]["text"]


@pytest.fixture
def local_server() -> Iterator[tuple[int, list[str]]]:
    """A real HTTP server on loopback that notes the paths it was asked for."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], asked
    finally:
        server.shutdown()
        server.server_close()


async def _get(url: str, private_networks: bool) -> int:
    async with url_client(private_networks) as http:
        return (await http.get(url)).status_code


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::ffff:127.0.0.1]"])
def test_the_url_client_checks_the_address_it_connects_to(
    local_server: tuple[int, list[str]], host: str
) -> None:
    """The check runs when the connection opens, on the address connected to: a name that resolved
    to a public address a moment earlier (DNS rebinding) cannot bring the request to loopback."""
    port, asked = local_server
    with pytest.raises(OssFailed, match="COVE_OSS_PRIVATE_NETWORKS"):
        asyncio.run(_get(f"http://{host}:{port}/latest/meta-data/", private_networks=False))
    assert asked == []
    assert asyncio.run(_get(f"http://127.0.0.1:{port}/allowed", private_networks=True)) == 200
    assert asked == ["/allowed"]


def test_the_url_client_ignores_proxy_variables(
    local_server: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy would resolve and reach the host itself, past the check."""
    port, asked = local_server
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
    with contextlib.suppress(OSError, httpx.HTTPError, TimeoutError):  # whatever 8.8.8.8:1 does
        asyncio.run(asyncio.wait_for(_get("http://8.8.8.8:1/via-proxy", private_networks=False), 3))
    assert asked == []  # a client that used the proxy would have asked the local server
