"""The sessions' DNS server: forwards their queries upstream and remembers what names resolved to.

A session's /etc/resolv.conf names the gateway; nftables turns port 53 there to this forwarder
(UDP and TCP). The answers' IPv4 addresses are remembered by name for as long as the answer lives
(at least a minute, at most an hour): the egress proxy lets a domain rule allow a connection only
to an address its name really resolved to, so a client cannot name an allowed host while it
connects to another.

Everything from a session is bounded: a query of at most 4 KiB, 512 under way at once, three
seconds for the upstream to answer (then SERVFAIL).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Iterator

MAX_MESSAGE = 4096
MAX_PENDING = 512
UPSTREAM_TIMEOUT_S = 3.0
TCP_IDLE_S = 10.0
MIN_REMEMBER_S, MAX_REMEMBER_S = 60, 3600
MAX_NAMES = 65536
_A, _IN = 1, 1


class ResolvedNames:
    """Name -> the IPv4 addresses answers gave it, until they expire."""

    def __init__(self) -> None:
        self._addresses: dict[str, dict[str, float]] = {}

    def remember(self, name: str, address: str, ttl: int) -> None:
        if len(self._addresses) >= MAX_NAMES:
            self._addresses.clear()  # a flood of names: forget them all, not the memory
        keep = min(max(ttl, MIN_REMEMBER_S), MAX_REMEMBER_S)
        self._addresses.setdefault(name.lower().rstrip("."), {})[address] = time.monotonic() + keep

    def resolves_to(self, name: str, address: str) -> bool:
        until = self._addresses.get(name.lower().rstrip("."), {}).get(address)
        return until is not None and until > time.monotonic()


def _read_name(message: bytes, offset: int) -> tuple[str, int]:
    """A (possibly compressed) name at `offset`, and the offset after it."""
    labels: list[str] = []
    end = None
    for _ in range(128):  # bounded: a pointer loop ends here
        length = message[offset]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | message[offset + 1]
            continue
        if length == 0:
            return ".".join(labels), end if end is not None else offset + 1
        labels.append(message[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    raise ValueError("name too long")


def answers(message: bytes) -> Iterator[tuple[str, str, int]]:
    """(name, IPv4 address, ttl) of every A record in a DNS answer, also under the name asked
    (an answer through CNAMEs gives the address to the last name of the chain); nothing if it does
    not parse."""
    try:
        _, _, questions, records = struct.unpack("!HHHH", message[:8])
        offset = 12
        asked = []
        for _ in range(questions):
            name, offset = _read_name(message, offset)
            asked.append(name)
            offset += 4
        for _ in range(records):
            name, offset = _read_name(message, offset)
            kind, klass, ttl, length = struct.unpack("!HHIH", message[offset : offset + 10])
            offset += 10
            if kind == _A and klass == _IN and length == 4:
                address = socket.inet_ntoa(message[offset : offset + 4])
                for owner in {name, *asked[:1]}:
                    yield owner, address, ttl
            offset += length
    except (ValueError, IndexError, struct.error):
        return


def failure(query: bytes) -> bytes:
    """SERVFAIL for `query`: its id and question, the answer bit and rcode 2."""
    flags = struct.unpack("!H", query[2:4])[0]
    return query[:2] + struct.pack("!H", 0x8000 | (flags & 0x0100) | 2) + query[4:]


class DnsForwarder:
    def __init__(self, upstream: tuple[str, int] | None, names: ResolvedNames) -> None:
        self.upstream = upstream
        self.names = names
        self._pending = asyncio.Semaphore(MAX_PENDING)
        self._servers: list[asyncio.AbstractServer] = []
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self, host: str) -> int:
        """Listen on UDP and TCP at `host` on one free port, and return it."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), local_addr=(host, 0))
        self._transport = transport
        port = int(transport.get_extra_info("sockname")[1])
        self._servers.append(await asyncio.start_server(self._stream, host, port))
        return port

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        for server in self._servers:
            server.close()

    async def resolve(self, query: bytes, over_tcp: bool = False) -> bytes:
        """Upstream's answer to a query, or SERVFAIL; its A records are remembered."""
        if self.upstream is None:
            return failure(query)
        async with self._pending:
            try:
                answer = await asyncio.wait_for(self._ask(query, over_tcp), UPSTREAM_TIMEOUT_S)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                return failure(query)
        if answer[:2] != query[:2]:
            return failure(query)
        for name, address, ttl in answers(answer):
            self.names.remember(name, address, ttl)
        return answer

    async def _ask(self, query: bytes, over_tcp: bool) -> bytes:
        assert self.upstream is not None
        host, port = self.upstream
        if over_tcp:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(struct.pack("!H", len(query)) + query)
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                return await reader.readexactly(length)
            finally:
                writer.close()
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, (host, port))
            await loop.sock_sendall(sock, query)
            return await loop.sock_recv(sock, 65535)

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
            while True:
                (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_S))
                if not 12 <= length <= MAX_MESSAGE:
                    break
                query = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE_S)
                answer = await self.resolve(query, over_tcp=True)
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        writer.close()


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, forwarder: DnsForwarder) -> None:
        self.forwarder = forwarder
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not 12 <= len(data) <= MAX_MESSAGE or len(self._tasks) >= MAX_PENDING:
            return
        task = asyncio.ensure_future(self._answer(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, query: bytes, addr: tuple[str, int]) -> None:
        answer = await self.forwarder.resolve(query)
        if self.transport is not None:
            self.transport.sendto(answer, addr)
