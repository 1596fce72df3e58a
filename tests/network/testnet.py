"""The test world that stands in for the internet: test hosts in a Linux network namespace.

The machine that runs the tests has no internet (and tests must not depend on one), so the network
tests talk to hosts of their own, on 198.18.0.0/24 (RFC 2544's benchmarking range, never routed):

    198.18.0.1   this host's end of the veth pair (`ctn<pid>`)
    198.18.0.2   the namespace's end (`eth0`), its default route goes back via 198.18.0.1
    198.18.0.10  pypi.test    HTTP 80, HTTPS 443, a PEP 503 index at /simple/ with one small wheel
    198.18.0.11  api.test     HTTP 80, HTTPS 443, TCP echo on 7
    198.18.0.12  denied.test  HTTP 80, HTTPS 443
    198.18.0.53  DNS on UDP and TCP 53: A records of the names above and any name under them

Every HTTP(S) host answers GET / with `hello from NAME`, GET /bytes/N with N bytes (N <= 1 GiB,
streamed), GET /ip with the client's address as the host sees it, and POST with the body's size.
HTTPS certificates are signed by a CA made for the run (`TestNetwork.ca_cert`).

Needs root and iproute2. The addresses are fixed, so one TestNetwork may be open per machine at a time.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.network.hosts_server import QCLASS_IN, QTYPE_A, decode_name, encode_name

HOSTS = {"pypi.test": "198.18.0.10", "api.test": "198.18.0.11", "denied.test": "198.18.0.12"}
DNS_ADDRESS = "198.18.0.53"
ECHO_ADDRESS = HOSTS["api.test"]
HOST_ADDRESS = "198.18.0.1"
NAMESPACE_SIDE_ADDRESS = "198.18.0.2"
SUBNET = "198.18.0.0/24"
NAMESPACE_PREFIX = "cove-testnet-"
LINK_PREFIX = "ctn"
"""Host-side link names are `ctn<pid>` (at most 10 characters: pids have at most 7 digits)."""
START_TIMEOUT_S = 20
SERVER_SCRIPT = Path(__file__).with_name("hosts_server.py")

QTYPE_AAAA = 28
RCODE_NXDOMAIN = 3


class TestNetwork:
    """The namespace, its veth pair and its servers, for the duration of a `with` block.

    `__enter__` first removes what a crashed earlier run left behind, and returns only when every
    server accepts connections from this host; `__exit__` removes everything even after a failure.
    """

    __test__ = False  # not a test class, despite its name
    _open = False

    ca_cert: Path
    """PEM certificate of the CA that signed every test host's certificate."""

    def __init__(self) -> None:
        pid = os.getpid()
        self.namespace = f"{NAMESPACE_PREFIX}{pid}"
        self.link = f"{LINK_PREFIX}{pid}"
        self.hosts: dict[str, str] = dict(HOSTS)
        self.dns = DNS_ADDRESS
        self.echo = ECHO_ADDRESS
        self.host_address = HOST_ADDRESS
        self.subnet = SUBNET
        self._folder: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> TestNetwork:
        if TestNetwork._open:
            raise RuntimeError("a TestNetwork is already open in this process (its addresses are fixed)")
        TestNetwork._open = True
        try:
            remove_leftovers()
            self._folder = Path(tempfile.mkdtemp(prefix=f"{NAMESPACE_PREFIX}{os.getpid()}-"))
            self.ca_cert = _make_certificates(self._folder, self.hosts)
            self._make_namespace()
            self._start_servers()
            self._wait_until_up()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdin is not None:
                self._process.stdin.close()
            self._process = None
        _remove_namespace(self.namespace, self.link)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        TestNetwork._open = False

    def run(
        self, argv: Sequence[str], *, timeout: float = 120, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Runs a command inside the namespace, i.e. on the test hosts' side of the link (its output
        captured as text). Names there resolve through this host's /etc/resolv.conf: use addresses."""
        return subprocess.run(
            ["ip", "netns", "exec", self.namespace, *argv],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=check,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the test CA (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def _make_namespace(self) -> None:
        ns = self.namespace
        _ip("netns", "add", ns)
        _ip("link", "add", self.link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("addr", "add", f"{HOST_ADDRESS}/24", "dev", self.link)
        _ip("link", "set", self.link, "up")
        _ip("-n", ns, "addr", "add", f"{NAMESPACE_SIDE_ADDRESS}/24", "dev", "eth0")
        for address in {*self.hosts.values(), self.dns}:
            _ip("-n", ns, "addr", "add", f"{address}/32", "dev", "eth0")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "route", "add", "default", "via", HOST_ADDRESS)

    def _start_servers(self) -> None:
        assert self._folder is not None
        config = {
            "hosts": {
                name: {
                    "address": address,
                    "cert": str(self._folder / f"{name}.pem"),
                    "key": str(self._folder / f"{name}.key"),
                }
                for name, address in self.hosts.items()
            },
            "pypi": "pypi.test",
            "dns": self.dns,
            "echo": self.echo,
        }
        config_path = self._folder / "hosts.json"
        config_path.write_text(json.dumps(config))
        with (self._folder / "hosts.log").open("wb") as log:
            # stdin is a pipe nobody writes to: the server exits when it reaches end-of-file, i.e.
            # when this process dies without running __exit__.
            self._process = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.namespace,
                    sys.executable,
                    "-I",
                    str(SERVER_SCRIPT),
                    str(config_path),
                ],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _wait_until_up(self) -> None:
        """Polls every server from this host (which also proves the link and routes work)."""
        pending: set[tuple[str, int]] = {(a, port) for a in self.hosts.values() for port in (80, 443)}
        pending |= {(self.echo, 7), (self.dns, 53)}
        dns_udp_up = False
        deadline = time.monotonic() + START_TIMEOUT_S
        while pending or not dns_udp_up:
            assert self._process is not None and self._folder is not None
            log = self._folder / "hosts.log"
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the test hosts' server exited with {self._process.returncode}:\n{log.read_text()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"test hosts not up in {START_TIMEOUT_S} s: TCP {sorted(pending)}, DNS over UDP "
                    f"{'up' if dns_udp_up else 'down'}; server log:\n{log.read_text()}"
                )
            for address, port in list(pending):
                with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.5):
                    pending.discard((address, port))
            if not dns_udp_up:
                with contextlib.suppress(OSError):
                    dns_udp_up = query_dns("api.test", self.dns, timeout=0.5).addresses == [
                        self.hosts["api.test"]
                    ]
            if pending or not dns_udp_up:
                time.sleep(0.05)


# --- a small DNS client, to check the test DNS server (or any other) from this host ---


class DnsError(LookupError):
    """The server answered with an error code (`rcode`: 3 is NXDOMAIN)."""

    def __init__(self, name: str, rcode: int) -> None:
        super().__init__(f"DNS lookup of {name!r} failed with rcode {rcode}")
        self.rcode = rcode


@dataclass(frozen=True)
class DnsReply:
    rcode: int
    addresses: list[str]
    """IPv4 addresses of the A records in the answer section."""


def query_dns(
    name: str,
    server: str = DNS_ADDRESS,
    *,
    port: int = 53,
    qtype: int = QTYPE_A,
    tcp: bool = False,
    timeout: float = 2.0,
) -> DnsReply:
    """Sends one query and parses the reply (over UDP, or over TCP with its length prefix)."""
    ident = random.randrange(1 << 16)
    query = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + encode_name(name)
    query += struct.pack("!HH", qtype, QCLASS_IN)
    if tcp:
        with socket.create_connection((server, port), timeout=timeout) as sock:
            sock.sendall(struct.pack("!H", len(query)) + query)
            stream = sock.makefile("rb")
            (length,) = struct.unpack("!H", stream.read(2))
            reply = stream.read(length)
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.connect((server, port))
            sock.send(query)
            while (reply := sock.recv(65535))[:2] != query[:2]:
                pass  # a stray reply to an earlier query
    return _parse_reply(reply)


def _parse_reply(reply: bytes) -> DnsReply:
    _, flags, qdcount, ancount = struct.unpack("!HHHH", reply[:8])
    offset = 12
    for _ in range(qdcount):
        offset = decode_name(reply, offset)[1] + 4
    addresses = []
    for _ in range(ancount):
        offset = decode_name(reply, offset)[1]
        rtype, rclass, _ttl, length = struct.unpack("!HHIH", reply[offset : offset + 10])
        offset += 10
        if rtype == QTYPE_A and rclass == QCLASS_IN and length == 4:
            addresses.append(socket.inet_ntoa(reply[offset : offset + 4]))
        offset += length
    return DnsReply(rcode=flags & 0xF, addresses=addresses)


def resolve(name: str, server: str = DNS_ADDRESS, *, port: int = 53, tcp: bool = False) -> list[str]:
    """The IPv4 addresses of `name` according to `server`; DnsError if it answers with an error."""
    reply = query_dns(name, server, port=port, tcp=tcp)
    if reply.rcode != 0:
        raise DnsError(name, reply.rcode)
    return reply.addresses


# --- set-up and clean-up ---


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def _make_certificates(folder: Path, hosts: dict[str, str]) -> Path:
    """A CA (only its certificate is written: ca.pem) and, per host, NAME.pem and NAME.key valid for
    NAME, *.NAME and the host's address."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cove test CA")])
    usage = dict.fromkeys(
        ("content_commitment", "data_encipherment", "key_agreement", "encipher_only", "decipher_only"), False
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_encipherment=False, key_cert_sign=True, crl_sign=True, **usage
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    for name, address in hosts.items():
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName(name), x509.DNSName(f"*.{name}"), x509.IPAddress(ipaddress.ip_address(address))]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    **usage,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return ca_path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_leftover(name: str, prefix: str) -> bool:
    """Ours from a run whose process is gone (or had this process's pid: ours is not made yet)."""
    match = re.fullmatch(re.escape(prefix) + r"(\d+)", name)
    return match is not None and (int(match[1]) == os.getpid() or not _pid_alive(int(match[1])))


def _remove_namespace(namespace: str, link: str) -> None:
    """Kills what still runs in the namespace, then deletes the veth pair and the namespace."""
    pids = _ip("netns", "pids", namespace, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _ip("link", "del", link, check=False)  # takes its peer in the namespace with it
    _ip("netns", "del", namespace, check=False)


def remove_leftovers() -> None:
    """Removes namespaces, links and temporary folders of earlier runs that crashed before their
    `__exit__`."""
    for line in _ip("netns", "list").stdout.splitlines():
        namespace = line.split(" ", 1)[0]
        if _is_leftover(namespace, NAMESPACE_PREFIX):
            _remove_namespace(namespace, LINK_PREFIX + namespace.removeprefix(NAMESPACE_PREFIX))
    for link in json.loads(_ip("-j", "link", "show").stdout or "[]"):
        if _is_leftover(link["ifname"], LINK_PREFIX):
            _ip("link", "del", link["ifname"], check=False)
    for folder in Path(tempfile.gettempdir()).glob(f"{NAMESPACE_PREFIX}*-*"):
        if _is_leftover(folder.name.rsplit("-", 1)[0], NAMESPACE_PREFIX):
            shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    """Keep the test hosts up until Ctrl-C, to try sessions' network by hand (docs/network.md).

    SIGINT and SIGTERM are waited for, not raised, so the hosts are always taken down."""
    import signal

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    with TestNetwork() as world:
        print(f"test hosts: {', '.join(f'{name} {address}' for name, address in world.hosts.items())}")
        print(f"their DNS server: {world.dns}; their CA certificate: {world.ca_cert}")
        print(f"start Cove with COVE_EGRESS_ALLOW={world.subnet} COVE_DNS_UPSTREAM={world.dns}; Ctrl-C ends")
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


if __name__ == "__main__":
    main()
