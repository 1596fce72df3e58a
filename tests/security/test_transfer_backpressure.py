"""A client that stops reading a download costs the server a few MiB, not the file, and is cut off
after `transfer_stall_timeout_s`; an upload that stops sending is ended the same way."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.server import KEY_A, CoveServer, scratch_server

MiB = 1024**2
STALL_S = 4
FILE_MIB = 100


@pytest.fixture(scope="module")
def stalling() -> Iterator[CoveServer]:
    with scratch_server(transfer_stall_timeout_s=STALL_S, warm_pool=0) as server:
        yield server


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def request(server: CoveServer, head: str, rcvbuf: int = 4096) -> socket.socket:
    """A raw connection with a small receive buffer, so the kernel holds little of the answer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(f"{head}Host: 127.0.0.1\r\nAuthorization: Bearer {KEY_A}\r\n\r\n".encode())
    return sock


def received_until_closed(sock: socket.socket, timeout_s: float) -> int:
    sock.settimeout(timeout_s)
    total = 0
    while chunk := sock.recv(MiB):
        total += len(chunk)
    return total


def test_a_download_nobody_reads_holds_little_and_is_cut_off(stalling: CoveServer) -> None:
    with stalling.client() as api:
        session_id = api.post("/v1/sessions", json={}).json()["session"]["session_id"]
        try:
            stalling.sandbox(session_id, f"head -c {FILE_MIB * MiB} /dev/zero > /tmp/big.bin")
            assert stalling.process is not None
            before = resident_mib(stalling.process.pid)
            with request(
                stalling, f"GET /v1/sessions/{session_id}/files?path=/tmp/big.bin HTTP/1.1\r\n"
            ) as sock:
                time.sleep(STALL_S - 1)
                grown = resident_mib(stalling.process.pid) - before
                assert grown < 32, f"the server holds {grown:.0f} MiB for one stalled download"
                time.sleep(3)  # past the stall limit: the server gives up on this client
                started = time.monotonic()
                got = received_until_closed(sock, 3 * STALL_S)
                assert got < FILE_MIB * MiB, "the stalled download is cut off, not finished"
                assert time.monotonic() - started < 3 * STALL_S
            assert api.get(f"/v1/sessions/{session_id}").status_code == 200, "the server goes on"
        finally:
            api.delete(f"/v1/sessions/{session_id}")


def test_an_upload_that_stops_sending_is_ended(stalling: CoveServer) -> None:
    with stalling.client() as api:
        session_id = api.post("/v1/sessions", json={}).json()["session"]["session_id"]
        try:
            head = (
                f"PUT /v1/sessions/{session_id}/files?path=/tmp/up.bin HTTP/1.1\r\nContent-Length: {MiB}\r\n"
            )
            with request(stalling, head, rcvbuf=65536) as sock:
                sock.sendall(b"x" * 1024)
                sock.settimeout(3 * STALL_S)
                answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            listing = stalling.sandbox(session_id, "ls -a /tmp").stdout.split()
            assert "up.bin" not in listing and not any(name.startswith(".cove-upload") for name in listing)
        finally:
            api.delete(f"/v1/sessions/{session_id}")
