"""The egress proxy: judges sessions' TCP connections by the host name they ask for.

nftables turns to it only the connections whose verdict hangs on a name (egress_rules.py). It
learns where the client meant to go from conntrack (SO_ORIGINAL_DST), reads the first bytes for an
HTTP Host header or a TLS server name (SNI), judges with the session's policy (network_policy.py),
and then either relays the connection, unchanged, or resets it at once and records the denial.

What it reads from a session is bounded: 16 KiB and NAME_WAIT_S for the name (a protocol in which
the server speaks first gets its address-only verdict after that wait), CONNECT_TIMEOUT_S to reach
the destination. A domain rule allows a connection only to an address that its name resolved to
through the sessions' DNS forwarder, so naming an allowed host while connecting elsewhere fails.
It also refuses every address of the host itself, which it would otherwise reach from the inside.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
import struct
import threading
from datetime import UTC, datetime
from typing import Protocol

from cove.sandbox.dns_forwarder import DnsForwarder, ResolvedNames
from cove.sandbox.network_policy import Denial, NetworkPolicy, OperatorPolicy, Verdict, judge

log = logging.getLogger(__name__)
SO_ORIGINAL_DST = 80
MAX_FIRST_BYTES = 16384
NAME_WAIT_S = 1.5
CONNECT_TIMEOUT_S = 10.0
RELAY_CHUNK = 256 * 1024
_HTTP_REQUEST = re.compile(rb"^[A-Z]{3,10} \S+ HTTP/1\.[01]\r\n")
_HOST_HEADER = re.compile(rb"\r\nhost:[ \t]*([^\r\n]+)\r\n", re.IGNORECASE)


class Sessions(Protocol):
    """What the proxy needs from the session networks."""

    def session_at(self, address: str) -> tuple[str, NetworkPolicy] | None: ...

    def record_denial(self, address: str, denial: Denial) -> None: ...


def http_host(data: bytes) -> str | None:
    """The host of an HTTP/1 request's Host header ('' if `data` is no HTTP request), None if
    more bytes are needed."""
    if not _HTTP_REQUEST.match(data[:64]):
        return "" if len(data) >= 16 or b"\n" in data else None
    found = _HOST_HEADER.search(data)
    if found is None:
        return "" if b"\r\n\r\n" in data else None
    host = found.group(1).strip().decode("ascii", "replace")
    return (
        host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0] if ":" in host else host
    )


def tls_server_name(data: bytes) -> str | None:
    """The SNI of a TLS ClientHello ('' if `data` is no ClientHello or has none), None if more
    bytes are needed."""
    if data[:1] != b"\x16":
        return ""
    if len(data) < 5:
        return None
    end = 5 + struct.unpack("!H", data[3:5])[0]
    if len(data) < end:
        return None
    try:
        body = data[5:end]
        if body[0] != 1:
            return ""
        offset = 4 + 2 + 32
        offset += 1 + body[offset]
        offset += 2 + struct.unpack("!H", body[offset : offset + 2])[0]
        offset += 1 + body[offset]
        extensions_end = offset + 2 + struct.unpack("!H", body[offset : offset + 2])[0]
        offset += 2
        while offset + 4 <= extensions_end:
            kind, length = struct.unpack("!HH", body[offset : offset + 4])
            offset += 4
            if kind == 0:  # server_name: list length, type 0 (host name), name length, name
                name_length = struct.unpack("!H", body[offset + 3 : offset + 5])[0]
                return body[offset + 5 : offset + 5 + name_length].decode("ascii", "replace")
            offset += length
    except (IndexError, struct.error):
        return ""
    return ""


def requested_name(data: bytes) -> str | None:
    """The host name a connection's first bytes ask for: '' when they ask for none, None when
    more bytes are needed to tell."""
    if data[:1] == b"\x16":
        return tls_server_name(data)
    return http_host(data)


def _is_host_address(address: str) -> bool:
    """Whether `address` is one of this host's own: binding to it works only then."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, so the client fails at once rather than waiting."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class EgressProxy:
    def __init__(self, operator: OperatorPolicy, sessions: Sessions, names: ResolvedNames) -> None:
        self.operator = operator
        self.sessions = sessions
        self.names = names
        self._listener: socket.socket | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, 0))
        listener.listen(1024)
        listener.setblocking(False)
        self._listener = listener
        self._tasks.add(asyncio.ensure_future(self._accept_forever(listener)))
        return int(listener.getsockname()[1])

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._listener is not None:
            self._listener.close()

    async def _accept_forever(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            client, peer = await loop.sock_accept(listener)
            task = asyncio.ensure_future(self._serve(client, peer[0]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, client: socket.socket, peer: str) -> None:
        try:
            await self._judge_and_relay(client, peer)
        except OSError as error:  # the client went away, or conntrack forgot the connection
            log.debug("egress proxy: a connection from %s failed: %s", peer, error)
            _reset(client)

    async def _judge_and_relay(self, client: socket.socket, peer: str) -> None:
        client.setblocking(False)
        owner = self.sessions.session_at(peer)
        if owner is None:
            _reset(client)
            return
        _, policy = owner
        raw = client.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        port, packed = struct.unpack("!H", raw[2:4])[0], raw[4:8]
        destination = socket.inet_ntoa(packed)
        address = ipaddress.IPv4Address(destination)
        first, name = await self._first_bytes(client, policy, address)
        verdict = judge(self.operator, policy, address, name)
        by_name_only = judge(self.operator, policy, address, "") is not Verdict.ALLOW
        if verdict is Verdict.ALLOW and by_name_only and not self.names.resolves_to(name, destination):
            verdict = Verdict.DENY  # a domain rule allows only the addresses its name resolved to
        if verdict is not Verdict.ALLOW or _is_host_address(destination):
            self.sessions.record_denial(
                peer, Denial(destination, port, "tcp", name or None, datetime.now(UTC))
            )
            _reset(client)
            return
        await self._relay(client, destination, port, first)

    async def _first_bytes(
        self, client: socket.socket, policy: NetworkPolicy, address: ipaddress.IPv4Address
    ) -> tuple[bytes, str]:
        """What the client sent first, and the name it asks for ('' for none)."""
        if judge(self.operator, policy, address, None) is not Verdict.NEEDS_NAME:
            return b"", ""
        loop = asyncio.get_running_loop()
        data = b""
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(NAME_WAIT_S):
                while len(data) < MAX_FIRST_BYTES:
                    chunk = await loop.sock_recv(client, MAX_FIRST_BYTES - len(data))
                    if not chunk:
                        break
                    data += chunk
                    name = requested_name(data)
                    if name is not None:
                        return data, name.lower()
        return data, ""

    async def _relay(self, client: socket.socket, host: str, port: int, first: bytes) -> None:
        loop = asyncio.get_running_loop()
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(upstream, (host, port)), CONNECT_TIMEOUT_S)
            if first:
                await loop.sock_sendall(upstream, first)
        except (OSError, TimeoutError):
            upstream.close()
            _reset(client)
            return
        with client, upstream:
            await asyncio.gather(_pipe(client, upstream), _pipe(upstream, client))


async def _pipe(source: socket.socket, target: socket.socket) -> None:
    """Copy until the source ends, then end the target's sending side (half-close)."""
    loop = asyncio.get_running_loop()
    buffer = bytearray(RELAY_CHUNK)
    view = memoryview(buffer)
    with contextlib.suppress(OSError):
        while True:
            count = await loop.sock_recv_into(source, buffer)
            if count == 0:
                break
            await loop.sock_sendall(target, view[:count])
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


class EgressHelpers:
    """The DNS forwarder and the egress proxy, on one event loop in a thread of the server."""

    def __init__(
        self, gateway: str, upstream: tuple[str, int] | None, operator: OperatorPolicy, sessions: Sessions
    ) -> None:
        self.gateway = gateway
        self.names = ResolvedNames()
        self.dns = DnsForwarder(upstream, self.names)
        self.proxy = EgressProxy(operator, sessions, self.names)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cove-egress", daemon=True)

    def start(self) -> tuple[int, int]:
        """Start both on the gateway address; their ports (DNS, proxy)."""
        self._thread.start()

        async def listen() -> tuple[int, int]:
            return await self.dns.start(self.gateway), await self.proxy.start(self.gateway)

        return asyncio.run_coroutine_threadsafe(listen(), self._loop).result(timeout=10)

    def close(self) -> None:
        if not self._thread.is_alive():
            return

        def stop() -> None:
            self.dns.close()
            self.proxy.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(timeout=5)
