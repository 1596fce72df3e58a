"""Streamed upload and download through the REST API and the SDK, on real sandboxes."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import httpx

from cove import AsyncSession, Session
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_A, CoveServer

pytestmark = BOTH_RUNTIMES

GiB = 1024**3
MiB = 1024**2


def write_pattern(path: Path, size: int) -> str:
    """A file of `size` bytes from 1 MiB of random data, rotated per block; answers its SHA-256."""
    block = os.urandom(MiB)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for index in range(size // MiB):
            chunk = block[index % MiB :] + block[: index % MiB]
            out.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def peak_memory_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_1_gib_round_trip_keeps_every_byte(session: Session, server: CoveServer, data_root: Path) -> None:
    source, back = data_root / "big.bin", data_root / "back.bin"
    checksum = write_pattern(source, GiB)
    progress: list[int] = []
    uploaded = session.file_system.upload_file(str(source), "/home/user/big.bin", progress_cb=progress.append)
    assert uploaded.success, uploaded.error_message
    assert (uploaded.bytes_sent, uploaded.path, progress[-1]) == (GiB, "/home/user/big.bin", GiB)
    inside = server.sandbox(session.session_id, "sha256sum /home/user/big.bin", timeout=300)
    assert inside.stdout.split()[0] == checksum
    source.unlink()

    downloaded = session.file_system.download_file("/home/user/big.bin", str(back))
    assert downloaded.success, downloaded.error_message
    assert downloaded.bytes_received == GiB and sha256_of(back) == checksum
    assert server.process is not None
    assert peak_memory_mib(server.process.pid) < 512, "the server never holds a whole file in memory"


def test_upload_and_download_with_plain_http(session: Session, server: CoveServer) -> None:
    files = f"/v1/sessions/{session.session_id}/files"
    with server.client(KEY_A) as http:
        put = http.put(files, params={"path": "up/load.txt"}, content=b"via http\n")
        assert put.status_code == 200, put.text
        assert put.json()["path"] == "/home/user/up/load.txt" and put.json()["size"] == 9
        got = http.get(files, params={"path": "/home/user/up/load.txt"})
        assert got.status_code == 200 and got.content == b"via http\n"
        assert got.headers["content-length"] == "9"
        assert server.sandbox(session.session_id, "stat -c %U up/load.txt").stdout == "user\n"


def test_bad_transfers_are_refused_clearly(session: Session, server: CoveServer) -> None:
    files = f"/v1/sessions/{session.session_id}/files"
    with server.client(KEY_A) as http:
        missing = http.get(files, params={"path": "/tmp/nothing"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "FileNotFound"
        assert "/tmp/nothing" in missing.json()["error"]["message"]
        directory = http.get(files, params={"path": "/tmp"})
        assert directory.status_code == 400 and "is a directory" in directory.json()["error"]["message"]
        onto_directory = http.put(files, params={"path": "/tmp"}, content=b"x")
        assert onto_directory.status_code == 400 and "is a directory" in onto_directory.text
        denied = http.put(files, params={"path": "/etc/passwd"}, content=b"x")
        assert denied.status_code == 400 and "permission denied" in denied.text
        chunked = http.put(files, params={"path": "/tmp/c"}, content=iter([b"no", b"length"]))
        assert chunked.status_code == 411 and chunked.json()["error"]["code"] == "LengthRequired"
        assert http.get(files).status_code == 400, "path is required"
        server.sandbox(session.session_id, "mkfifo /tmp/fifo")
        fifo = http.get(files, params={"path": "/tmp/fifo"})
        assert fifo.status_code == 400 and "not a regular file" in fifo.text, "a FIFO would never end"
        assert http.get("/v1/sessions/session-nope/files", params={"path": "/tmp/x"}).status_code == 404
    other_tenant = httpx.get(f"{server.url}{files}", params={"path": "/etc/hostname"})
    assert other_tenant.status_code == 401


def test_a_cut_off_upload_leaves_nothing(session: Session, server: CoveServer) -> None:
    """A client that dies midway: no file, not even a partial one, and no temporary file."""
    head = (
        f"PUT /v1/sessions/{session.session_id}/files?path=/tmp/partial.bin HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {KEY_A}\r\nContent-Length: {10 * MiB}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(head.encode() + b"x" * MiB)
    listing = session.file_system.list_directory("/tmp")
    for _ in range(50):  # the server notices the closed connection soon, not at once
        if not any(e.name.startswith(".cove-upload") for e in listing.entries):
            break
        listing = session.file_system.list_directory("/tmp")
    names = [e.name for e in listing.entries]
    assert "partial.bin" not in names and not any(n.startswith(".cove-upload") for n in names)


def test_sdk_transfer_errors(session: Session, data_root: Path) -> None:
    fs = session.file_system
    nowhere = fs.upload_file(str(data_root / "absent"), "/tmp/x")
    assert not nowhere.success and "absent" in nowhere.error_message
    missing = fs.download_file("/tmp/absent", str(data_root / "out"))
    assert (missing.success, missing.code, missing.http_status_code) == (False, "FileNotFound", 404)
    assert not (data_root / "out").exists()
    (data_root / "kept").write_text("mine")
    fs.write_file("/tmp/there", "theirs")
    refused = fs.download_file("/tmp/there", str(data_root / "kept"), overwrite=False)
    assert not refused.success and (data_root / "kept").read_text() == "mine"


async def test_async_transfers(async_session: AsyncSession, data_root: Path) -> None:
    source, back = data_root / "a.bin", data_root / "b.bin"
    checksum = write_pattern(source, 8 * MiB)
    uploaded = await async_session.file_system.upload_file(str(source), "/tmp/a.bin")
    assert uploaded.success and uploaded.bytes_sent == 8 * MiB
    downloaded = await async_session.file_system.download_file("/tmp/a.bin", str(back))
    assert downloaded.success and sha256_of(back) == checksum
