"""Every server of the test world, in one process inside the test network namespace.

`tests/network/testnet.py` starts it as `ip netns exec NAMESPACE python -I hosts_server.py CONFIG.json`
once the namespace holds the addresses named in the config. It serves, per test host, HTTP on 80 and
HTTPS on 443 (the host's own certificate, signed by the test CA), plus a TCP echo server on port 7 of
the `echo` address and a DNS server (UDP and TCP port 53) that knows the test hosts and nothing else.

Standard library only, so that it runs the same under any interpreter; the DNS wire helpers and the
wheel builder are also imported by `testnet.py` (this module has no side effects on import).

It exits when its standard input reaches end-of-file, i.e. when the parent that holds the other end
of the pipe dies or closes it, and on SIGTERM (the default action).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import re
import socket
import socketserver
import ssl
import struct
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PACKAGE = "covetestpkg"
WHEEL_NAME = f"{PACKAGE}-1.0-py3-none-any.whl"
MAX_BYTES = 1 << 30
"""Largest body /bytes/N streams (1 GiB), enough for throughput benchmarks."""
CHUNK = b"\0" * (1 << 20)
IDLE_TIMEOUT_S = 30
"""Idle client connections (keep-alive, echo, DNS over TCP) are dropped after this, freeing threads."""

QTYPE_A = 1
QCLASS_IN = 1
RCODE_FORMERR, RCODE_NXDOMAIN, RCODE_NOTIMP = 1, 3, 4
TTL_S = 60


# --- DNS wire format (RFC 1035) ---


def encode_name(name: str) -> bytes:
    """`api.test` -> b"\\x03api\\x04test\\x00"."""
    labels = [label for label in name.rstrip(".").split(".") if label]
    if any(len(label.encode()) > 63 for label in labels):
        raise ValueError(f"DNS label too long in {name!r}")
    return b"".join(bytes([len(label.encode())]) + label.encode() for label in labels) + b"\0"


def decode_name(message: bytes, offset: int) -> tuple[str, int]:
    """The name at `offset` (following compression pointers) and the offset just after it."""
    labels: list[str] = []
    end: int | None = None
    for _ in range(128):  # bounds pointer loops in hostile messages
        length = message[offset]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | message[offset + 1]
        elif length == 0:
            return ".".join(labels), offset + 1 if end is None else end
        else:
            labels.append(message[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length
    raise ValueError("DNS name has too many labels or a pointer loop")


def lookup(name: str, hosts: dict[str, str]) -> str | None:
    """The address of `name`, a test host or any name under one (www.api.test is api.test)."""
    name = name.lower().rstrip(".")
    for host, address in hosts.items():
        if name == host or name.endswith("." + host):
            return address
    return None


def dns_answer(query: bytes, hosts: dict[str, str]) -> bytes | None:
    """The reply to one DNS message, or None for something that is not a query (never answer those)."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000:
        return None
    opcode = (flags >> 11) & 0xF

    def reply(rcode: int, question: bytes = b"", answers: bytes = b"") -> bytes:
        reply_flags = 0x8000 | (opcode << 11) | 0x0400 | (flags & 0x0100) | rcode  # QR, AA, RD copied
        counts = (1 if question else 0, 1 if answers else 0, 0, 0)
        return struct.pack("!HH4H", ident, reply_flags, *counts) + question + answers

    if opcode != 0:
        return reply(RCODE_NOTIMP)
    if qdcount != 1:
        return reply(RCODE_FORMERR)
    try:
        name, end = decode_name(query, 12)
        qtype, qclass = struct.unpack("!HH", query[end : end + 4])
    except (IndexError, ValueError, struct.error):
        return reply(RCODE_FORMERR)
    question = query[12 : end + 4]
    address = lookup(name, hosts)
    if address is None:
        return reply(RCODE_NXDOMAIN, question)
    if qtype != QTYPE_A or qclass != QCLASS_IN:
        return reply(0, question)  # the name exists, but has no records of that type
    record = b"\xc0\x0c" + struct.pack("!HHIH", QTYPE_A, QCLASS_IN, TTL_S, 4) + socket.inet_aton(address)
    return reply(0, question, record)


class DnsUdpHandler(socketserver.BaseRequestHandler):
    server: DnsUdpServer

    def handle(self) -> None:
        data, sock = self.request
        answer = dns_answer(data, self.server.hosts)
        if answer is not None:
            sock.sendto(answer, self.client_address)


class DnsTcpHandler(socketserver.StreamRequestHandler):
    """DNS over TCP: each message is preceded by its 2-byte length; several may share a connection."""

    server: DnsTcpServer
    timeout = IDLE_TIMEOUT_S

    def handle(self) -> None:
        while len(prefix := self.rfile.read(2)) == 2:
            answer = dns_answer(self.rfile.read(struct.unpack("!H", prefix)[0]), self.server.hosts)
            if answer is None:
                return
            self.wfile.write(struct.pack("!H", len(answer)) + answer)


class QuietErrors:
    """Clients that hang up or fail the TLS handshake are normal here (readiness probes do both)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # ssl.SSLError and timeouts are OSErrors
            super().handle_error(request, client_address)  # type: ignore[misc]


class DnsUdpServer(QuietErrors, socketserver.ThreadingUDPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: str, hosts: dict[str, str]) -> None:
        self.hosts = hosts
        super().__init__((address, 53), DnsUdpHandler)


class DnsTcpServer(QuietErrors, socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: str, hosts: dict[str, str]) -> None:
        self.hosts = hosts
        super().__init__((address, 53), DnsTcpHandler)


# --- the package index's wheel ---


def build_wheel() -> bytes:
    """A tiny valid wheel of `covetestpkg` 1.0, byte-identical on every call (fixed zip timestamps)."""
    dist_info = f"{PACKAGE}-1.0.dist-info"
    files = {
        f"{PACKAGE}.py": b'"""From the Cove test index."""\n\nGREETING = "hello from covetestpkg"\n',
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 1.0\n".encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: cove-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
        f"{len(data)}\n"
        for path, data in files.items()
    )
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files.items():
            wheel.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def index_pages() -> dict[str, tuple[str, bytes]]:
    """A PEP 503 simple index with one project and one file: path -> (content type, body)."""
    wheel = build_wheel()
    digest = hashlib.sha256(wheel).hexdigest()
    html = "<!DOCTYPE html><html><body>{}</body></html>\n"
    link = f'<a href="/packages/{WHEEL_NAME}#sha256={digest}">{WHEEL_NAME}</a>'
    return {
        "/simple/": ("text/html", html.format(f'<a href="/simple/{PACKAGE}/">{PACKAGE}</a>').encode()),
        f"/simple/{PACKAGE}/": ("text/html", html.format(link).encode()),
        f"/packages/{WHEEL_NAME}": ("application/octet-stream", wheel),
    }


# --- HTTP and HTTPS ---


class HostHandler(BaseHTTPRequestHandler):
    """GET / names the host; GET /bytes/N streams N bytes; GET /ip tells the client's address as seen
    here; POST counts the body it received (upload benchmarks); anything else comes from `pages`."""

    server: HostServer
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def do_POST(self) -> None:
        remaining = int(self.headers.get("Content-Length") or 0)
        received = 0
        while remaining > received and (data := self.rfile.read(min(len(CHUNK), remaining - received))):
            received += len(data)
        self._send(200, f"received {received} bytes\n".encode())

    def _respond(self, send_body: bool) -> None:
        path = urlsplit(self.path).path
        if path == "/":
            self._send(200, f"hello from {self.server.name}\n".encode(), send_body=send_body)
        elif path == "/ip":
            self._send(200, f"{self.client_address[0]}\n".encode(), send_body=send_body)
        elif match := re.fullmatch(r"/bytes/(\d+)", path):
            self._stream(int(match[1]), send_body)
        elif path in self.server.pages:
            content_type, body = self.server.pages[path]
            self._send(200, body, content_type, send_body)
        else:
            self._send(404, b"not found\n", send_body=send_body)

    def _send(
        self, status: int, body: bytes, content_type: str = "text/plain", send_body: bool = True
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", self.server.name)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _stream(self, size: int, send_body: bool) -> None:
        if size > MAX_BYTES:
            self._send(400, f"at most {MAX_BYTES} bytes\n".encode(), send_body=send_body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        view = memoryview(CHUNK)
        while send_body and size > 0:
            self.wfile.write(view[: min(size, len(CHUNK))])
            size -= len(CHUNK)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a line per request would swamp the log with readiness probes and benchmark requests


class HostServer(QuietErrors, ThreadingHTTPServer):
    """One test host's HTTP (tls None) or HTTPS server on one address."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        name: str,
        pages: dict[str, tuple[str, bytes]],
        tls: ssl.SSLContext | None,
    ) -> None:
        self.name, self.pages, self.tls = name, pages, tls
        super().__init__(address, HostHandler)

    def server_bind(self) -> None:
        """HTTPServer's own would call socket.getfqdn(address): a reverse DNS query to the host's
        resolver, which must not happen (and hangs in the namespace, having no route to it)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.name, self.server_address[1]

    def finish_request(self, request: Any, client_address: Any) -> None:
        """The TLS handshake happens here, in the connection's own thread, so that a slow or silent
        client cannot hold up the accept loop."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(IDLE_TIMEOUT_S)
        with self.tls.wrap_socket(request, server_side=True) as tls_request:
            super().finish_request(tls_request, client_address)
            with contextlib.suppress(OSError):
                tls_request.shutdown(socket.SHUT_WR)


class EchoHandler(socketserver.BaseRequestHandler):
    """Sends back every byte it receives (a non-HTTP protocol for the policy tests)."""

    timeout = IDLE_TIMEOUT_S

    def handle(self) -> None:
        self.request.settimeout(self.timeout)
        while data := self.request.recv(65536):
            self.request.sendall(data)


class EchoServer(QuietErrors, socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def make_servers(config: dict[str, Any]) -> list[socketserver.BaseServer]:
    """The servers of `config`: {"hosts": {NAME: {"address", "cert", "key"}}, "pypi": NAME,
    "dns": ADDRESS, "echo": ADDRESS}."""
    servers: list[socketserver.BaseServer] = []
    addresses = {name: host["address"] for name, host in config["hosts"].items()}
    for name, host in config["hosts"].items():
        pages = index_pages() if name == config["pypi"] else {}
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(host["cert"], host["key"])
        servers.append(HostServer((host["address"], 80), name, pages, None))
        servers.append(HostServer((host["address"], 443), name, pages, tls))
    servers.append(EchoServer((config["echo"], 7), EchoHandler))
    servers.append(DnsUdpServer(config["dns"], addresses))
    servers.append(DnsTcpServer(config["dns"], addresses))
    return servers


def main(argv: list[str]) -> None:
    config = json.loads(Path(argv[1]).read_text())
    for server in make_servers(config):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.buffer.read()  # returns at end-of-file: the parent is gone or wants us gone


if __name__ == "__main__":
    main(sys.argv)
