"""The server's memory while clients stall: downloads nobody reads, and keyless oversized bodies.

Run as root from the repo root: `.venv/bin/python -m bench.stalled_transfers` (options: --clients,
--mib). Opens `--clients` downloads of a `--mib` MiB file that read nothing (small receive buffers),
and as many keyless requests announcing a 64 MiB body, and reports the growth of the server's
resident memory (VmRSS) per connection. Writes bench/results/stalled_transfers.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import time
from contextlib import ExitStack
from pathlib import Path

from tests.integration.server import KEY_A, CoveServer

from bench.harness import bench_server

RESULTS = Path(__file__).parent / "results" / "stalled_transfers.json"
MiB = 1024**2
SETTLE_S = 3.0


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def connect(server: CoveServer, head: bytes) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel holds little of the answer
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(head)
    return sock


def growth_per_connection(server: CoveServer, heads: list[bytes], body: bytes = b"") -> float:
    """MiB the server's RSS grows by, per connection, while `heads` wait unread (after SETTLE_S)."""
    assert server.process is not None
    before = resident_mib(server.process.pid)
    with ExitStack() as stack:
        for head in heads:
            sock = stack.enter_context(connect(server, head))
            if body:
                # The server may refuse at once: what it would have read is what is measured.
                with contextlib.suppress(OSError):
                    sock.sendall(body)
        time.sleep(SETTLE_S)
        grown = resident_mib(server.process.pid) - before
    return grown / len(heads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--mib", type=int, default=100)
    args = parser.parse_args()
    with bench_server(warm_pool=0, transfer_stall_timeout_s=60) as bench:
        server = bench.server
        with server.client(KEY_A) as client:
            session_id = client.post("/v1/sessions", json={}).json()["session"]["session_id"]
            server.sandbox(session_id, f"head -c {args.mib * MiB} /dev/urandom > /tmp/big.bin")
            download = (
                f"GET /v1/sessions/{session_id}/files?path=/tmp/big.bin HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nAuthorization: Bearer {KEY_A}\r\n\r\n"
            ).encode()
            stalled_download = growth_per_connection(server, [download] * args.clients)
            keyless = (
                f"POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {64 * MiB}\r\n\r\n"
            ).encode()
            keyless_body = growth_per_connection(server, [keyless] * args.clients, b" " * (4 * MiB))
            client.delete(f"/v1/sessions/{session_id}")
    figures = {
        "clients": args.clients,
        "file_mib": args.mib,
        "stalled_download_mib_per_client": stalled_download,
        "keyless_64mib_body_mib_per_client": keyless_body,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"server memory per stalled {args.mib} MiB download: {stalled_download:.1f} MiB")
    print(f"server memory per keyless request announcing 64 MiB: {keyless_body:.1f} MiB")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
