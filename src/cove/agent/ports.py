"""Connections to TCP ports inside the sandbox, relayed over the agent's Unix socket (`ports/connect`).

A sandbox's network namespace has only `lo`, so the host cannot reach a server the session runs; the
agent, inside that namespace, can. The host sends one request line `ports/connect {"port": N}`; the
agent connects to 127.0.0.1:N (then [::1]:N), answers one result line (or a JSON-RPC error when
nothing listens there), and from then on the connection carries raw bytes both ways until both
directions have ended. An end of one direction is passed on as a half-close (shutdown(SHUT_WR)); the
host hanging up altogether ends the TCP connection at once.

The host sends nothing after its request line until it has read the answer.
"""

import contextlib
import io
import select
import socket
import threading
from typing import Any

from . import protocol

CHUNK_BYTES = 256 * 1024
CONNECT_TIMEOUT_S = 10.0
ADDRESSES = (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6))
"""Where a port is looked for: IPv4 loopback first, then IPv6 (servers bound to "localhost")."""


class PortError(Exception):
    """The connection cannot be made; `code` is the JSON-RPC error code the host maps to HTTP."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def checked_port(params: Any) -> int:
    port = params.get("port") if isinstance(params, dict) else None
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise PortError(protocol.INVALID_PARAMS, "port must be an integer from 1 to 65535")
    return port


def connect(port: int) -> socket.socket:
    """A TCP connection to `port` on the sandbox's loopback interface."""
    failure: OSError | None = None
    for host, family in ADDRESSES:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            sock.connect((host, port))
        except OSError as error:
            sock.close()
            failure = failure or error
            continue
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    if isinstance(failure, ConnectionRefusedError):
        raise PortError(protocol.PORT_CLOSED, f"nothing is listening on port {port} in the session")
    raise PortError(protocol.PORT_CLOSED, f"port {port} in the session cannot be reached: {failure}")


def relay(host: socket.socket, host_reader: io.BufferedIOBase, upstream: socket.socket) -> None:
    """Copy bytes both ways until both directions have ended; closes `upstream`.

    `host_reader` is the buffered reader the request line came through: it is read rather than
    `host` itself, so nothing it already holds is lost.
    """
    done = threading.Event()
    towards_upstream = threading.Thread(
        target=_host_to_upstream, args=(host, host_reader, upstream, done), daemon=True
    )
    towards_upstream.start()
    try:
        _upstream_to_host(upstream, host)
    finally:
        done.set()  # the other thread, if only watching for a hang-up by now, may stop
        towards_upstream.join()
        upstream.close()


def _host_to_upstream(
    host: socket.socket, host_reader: io.BufferedIOBase, upstream: socket.socket, done: threading.Event
) -> None:
    try:
        while data := host_reader.read1(CHUNK_BYTES):
            upstream.sendall(data)
    except OSError:
        _abort(upstream)
        return
    if _hung_up(host):
        _abort(upstream)  # the host is gone, not merely done sending: nobody will read the rest
        return
    with contextlib.suppress(OSError):
        upstream.shutdown(socket.SHUT_WR)
    _watch_for_hang_up(host, upstream, done)


def _upstream_to_host(upstream: socket.socket, host: socket.socket) -> None:
    try:
        while data := upstream.recv(CHUNK_BYTES):
            host.sendall(data)
    except OSError:
        # A reset or a host that cannot take more: end everything, so the other thread wakes too.
        _abort(upstream)
        with contextlib.suppress(OSError):
            host.shutdown(socket.SHUT_RDWR)
        return
    with contextlib.suppress(OSError):
        host.shutdown(socket.SHUT_WR)


def _hung_up(host: socket.socket) -> bool:
    """Whether the host closed its end entirely (a Unix socket then polls POLLHUP, a half-close not)."""
    poller = select.poll()
    poller.register(host, select.POLLHUP)
    return any(events & select.POLLHUP for _, events in poller.poll(0))


def _watch_for_hang_up(host: socket.socket, upstream: socket.socket, done: threading.Event) -> None:
    """After a half-close from the host, end the upstream connection should the host hang up."""
    poller = select.poll()
    poller.register(host, select.POLLHUP)
    while not done.is_set():
        if poller.poll(500):
            _abort(upstream)
            return


def _abort(upstream: socket.socket) -> None:
    """End both directions of the upstream connection, which also wakes the other relay thread."""
    with contextlib.suppress(OSError):
        upstream.shutdown(socket.SHUT_RDWR)
