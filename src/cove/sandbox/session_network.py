"""Each session's way out: a veth pair routed through the host, an address, and its policy's rules.

A session with egress has `eth0` in its network namespace, with a /32 address from the session
subnet and a default route to the gateway (the subnet's first address, which the host holds on
its loopback interface). The host end, `cv…`, is routed, not bridged: every packet a session sends
crosses the host's forward or input hook, where this server's nftables table (egress_rules.py)
judges it, so sessions never meet on a shared link. Names are resolved by the server's DNS
forwarder, TCP whose verdict needs a host name by its egress proxy (both in egress_proxy.py).

What is whose: a session's address is claimed in a registry shared by every Cove server on the
host (like its uid, identities.py), its interface dies with its network namespace, and its chains
are named after it; `network.json` in its folder (root's, out of the sandbox's reach) records them,
so a restart puts the rules back and a sweep removes what no session owns.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cove.errors import InvalidArgument, SandboxError
from cove.sandbox.egress_proxy import EgressHelpers
from cove.sandbox.egress_rules import (
    DENIED_MEMORY_S,
    TableLayout,
    base_table,
    chain_key,
    interface_group,
    session_removal,
    session_rules,
    table_name,
)
from cove.sandbox.identities import SessionIdentities
from cove.sandbox.network_policy import (
    EGRESS,
    NONE,
    Denial,
    NetworkPolicy,
    NetworkState,
    OperatorPolicy,
    Rules,
)
from cove.sandbox.nftables import Nftables
from cove.sandbox.process_runner import run_bounded

log = logging.getLogger(__name__)
GATEWAY_INTERFACE = "lo"
"""Where the host holds the gateway address (shared by every Cove server on the host): always
there, and the host answers ARP for it on every session interface."""
INTERFACE_PREFIX = "cv"
NETWORK_FILE = "network.json"
IP_TIMEOUT_S = 20
RECENT_DENIALS = 20


@dataclass(frozen=True)
class NetworkSettings:
    """The operator's side of sessions' networking (server settings)."""

    default_mode: str = EGRESS
    operator: OperatorPolicy = OperatorPolicy()
    subnet: ipaddress.IPv4Network = ipaddress.IPv4Network("10.203.0.0/16")
    dns_upstream: tuple[str, int] | None = None
    rate_mbit: float = 0.0
    max_connections: int = 1024

    @classmethod
    def parse(
        cls,
        *,
        default_mode: str,
        egress_allowed: bool,
        allow: str,
        open_ranges: str,
        subnet: str,
        dns_upstream: str,
        rate_mbit: float,
        max_connections: int,
    ) -> NetworkSettings:
        """From the COVE_* settings; a bad one is a ValueError naming it."""
        if default_mode not in (EGRESS, NONE):
            raise ValueError(f"setting network_default: {default_mode!r} is neither 'egress' nor 'none'")
        try:
            session_subnet = ipaddress.IPv4Network(subnet)
        except ValueError as error:
            raise ValueError(f"setting session_subnet: {error}") from error
        if session_subnet.num_addresses < 8:
            raise ValueError(f"setting session_subnet: {subnet} is too small; a /16 holds 65533 sessions")
        try:
            operator_allow = Rules.parse(_items(allow), "setting egress_allow") if allow.strip() else None
            opened = Rules.parse(_items(open_ranges), "setting egress_open")
        except InvalidArgument as error:
            raise ValueError(error.message) from error
        if opened.domains:
            raise ValueError("setting egress_open: only CIDRs can be opened, not domain names")
        operator = OperatorPolicy(
            egress_allowed=egress_allowed,
            allow=operator_allow,
            open_ranges=opened.networks,
            closed=(session_subnet,),
        )
        mode = default_mode if egress_allowed else NONE
        return cls(mode, operator, session_subnet, _upstream(dns_upstream), rate_mbit, max_connections)


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _upstream(setting: str) -> tuple[str, int] | None:
    """`IP` or `IP:PORT` (`[v6]:PORT`); empty: the host's first nameserver, None if it has none."""
    text = setting.strip()
    if not text:
        with contextlib.suppress(OSError):
            for line in Path("/etc/resolv.conf").read_text().splitlines():
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "nameserver":
                    return fields[1], 53
        return None
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = int(number)
    try:
        ipaddress.ip_address(host)
    except ValueError as error:
        raise ValueError(f"setting dns_upstream: {setting!r} is not IP or IP:PORT") from error
    return host, port


@dataclass
class Attachment:
    """A session's place on the network, as network.json keeps it."""

    interface: str
    address: str
    policy: NetworkPolicy

    def to_json(self) -> str:
        return json.dumps(
            {"interface": self.interface, "address": self.address, "policy": self.policy.to_wire()}
        )

    @classmethod
    def from_json(cls, text: str) -> Attachment:
        raw = json.loads(text)
        return cls(raw["interface"], raw["address"], NetworkPolicy.from_wire(raw["policy"], EGRESS))


class SessionNetworks:
    """Attaches sessions to the network, keeps their rules in force, and says what they were denied."""

    def __init__(self, settings: NetworkSettings, instance_id: str, registry: Path) -> None:
        self.settings = settings
        self.gateway = settings.subnet.network_address + 1
        self.addresses = SessionIdentities(
            registry, first=2, count=settings.subnet.num_addresses - 3, what="session addresses"
        )
        self.nft = Nftables()
        self.helpers = EgressHelpers(str(self.gateway), settings.dns_upstream, settings.operator, self)
        self.layout: TableLayout | None = None
        self._instance_id = instance_id
        self._policies: dict[str, tuple[str, NetworkPolicy]] = {}
        """By session address: its session and policy, for the proxy."""
        self._proxy_denials: dict[str, deque[Denial]] = {}
        self._proxy_denied: dict[str, int] = {}
        self._lock = threading.Lock()

    def start(self, session_dirs: list[Path]) -> None:
        """Make the gateway, this server's table and helpers; put back the rules of live sessions."""
        # The subnet is unreachable but for its sessions' own routes: never sent out of the host.
        self._run_ip(
            f"addr replace {self.gateway}/32 dev {GATEWAY_INTERFACE}\n"
            f"route replace unreachable {self.settings.subnet}\n"
        )
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
        dns_port, proxy_port = self.helpers.start()
        self.layout = TableLayout(
            table=table_name(self._instance_id),
            group=interface_group(self._instance_id),
            gateway=self.gateway,
            subnet=self.settings.subnet,
            dns_port=dns_port,
            proxy_port=proxy_port,
            max_connections=self.settings.max_connections,
        )
        self.nft.run(base_table(self.layout, self.settings.operator))
        for directory in session_dirs:
            attachment = self.attachment(directory)
            if attachment is None:
                continue
            if Path(f"/sys/class/net/{attachment.interface}").exists():
                self.addresses.keep(self._address_number(attachment.address), directory)
                self._apply_rules(directory.name, attachment)
            else:
                self.detach(directory.name, directory)

    def close(self) -> None:
        self.helpers.close()

    def policy(self, raw: object) -> NetworkPolicy:
        """A requested policy, checked against what the operator allows."""
        policy = NetworkPolicy.from_wire(raw, self.settings.default_mode)
        if policy.mode == EGRESS and not self.settings.operator.egress_allowed:
            raise InvalidArgument(
                "this server gives sessions no network (COVE_NETWORK_EGRESS_ALLOWED=false); "
                "ask for mode 'none'"
            )
        return policy

    # --- the runtime's calls ---

    def attach(self, session_id: str, directory: Path, netns: str) -> Attachment:
        """Give a sandbox its interface and address; until a policy is applied, all is refused.

        `netns` is the path of the sandbox's network namespace (/proc/PID/ns/net, or a file it is
        bound to)."""
        interface = INTERFACE_PREFIX + session_id[-13:]
        number = self.addresses.claim(directory)
        address = str(self.settings.subnet.network_address + number)
        attachment = Attachment(interface, address, NetworkPolicy(mode=NONE))
        self._write(directory, attachment)
        assert self.layout is not None
        self._run_ip(
            f"link add {interface} group {self.layout.group} type veth peer name eth0 netns {netns}\n"
            f"link set {interface} up\n"
            f"route replace {address}/32 dev {interface} src {self.gateway}\n"
        )
        for name, value in (("ipv6/conf/{}/disable_ipv6", "1"), ("ipv4/conf/{}/rp_filter", "1")):
            Path("/proc/sys/net/" + name.format(interface)).write_text(value)
        self._configure_inside(netns, address)
        if self.settings.rate_mbit > 0:  # a token bucket on what the session sends
            rate = self.settings.rate_mbit
            burst = max(int(rate * 1e6 / 8 / 100), 16384)  # 10 ms at the rate
            shaping = f"qdisc add dev eth0 root tbf rate {rate}mbit burst {burst} latency 100ms\n"
            self._run_in_namespace(netns, ["tc", "-batch", "-"], shaping)
        return attachment

    def _configure_inside(self, netns: str, address: str) -> None:
        inside = [
            f"addr replace {address}/32 dev eth0",
            "link set eth0 up",
            f"route replace {self.gateway} dev eth0",
            f"route replace default via {self.gateway} dev eth0",
        ]
        self._run_in_namespace(netns, ["ip", "-batch", "-"], "\n".join(inside) + "\n")

    def configure_again(self, directory: Path, netns: str) -> None:
        """Give a session's interface its address and routes again, in a namespace that outlived its
        sandbox: gVisor's runsc takes them off the interface when it starts its own network stack,
        and reads them from there again when it restores a checkpoint."""
        attachment = self.attachment(directory)
        if attachment is not None:
            self._configure_inside(netns, attachment.address)

    def apply(
        self,
        session_id: str,
        directory: Path,
        netns: str,
        policy: NetworkPolicy,
        keep_interface: bool = False,
    ) -> None:
        """Put a policy in force: from the next connection on. `none` takes the interface away, or
        with `keep_interface` refuses all it sends (gVisor's network stack takes the interfaces only
        when it starts: one taken away could not be given back)."""
        attachment = self.attachment(directory)
        if policy.mode == NONE and not (keep_interface and attachment is not None):
            self.detach(session_id, directory)
            return
        if attachment is None:
            attachment = self.attach(session_id, directory, netns)
        attachment.policy = policy
        self._write(directory, attachment)
        self._apply_rules(session_id, attachment)

    def detach(self, session_id: str, directory: Path) -> None:
        """Remove a session's rules, interface and address; safe to call for any state."""
        attachment = self.attachment(directory)
        if attachment is None:
            return
        with self._lock:
            applied = self._policies.pop(attachment.address, None) is not None
            self._proxy_denials.pop(attachment.address, None)
            self._proxy_denied.pop(attachment.address, None)
        if applied and self.layout is not None:
            self._remove_rules(session_id, attachment.interface)
        if Path(f"/sys/class/net/{attachment.interface}").exists():
            self._run_ip(f"link del {attachment.interface}\n", check=False)
        self.addresses.release(self._address_number(attachment.address), directory)
        (directory / NETWORK_FILE).unlink(missing_ok=True)

    def sweep(self, sessions_dir: Path, keep: set[str]) -> list[str]:
        """Detach every session here that is not kept; also interfaces of this server no folder names."""
        removed = []
        for directory in sessions_dir.iterdir():
            if directory.name not in keep and (directory / NETWORK_FILE).exists():
                self.detach(directory.name, directory)
                removed.append(directory.name)
        if self.layout is not None:
            known = {a.interface for d in sessions_dir.iterdir() if (a := self.attachment(d)) is not None}
            for link in Path("/sys/class/net").iterdir():
                if link.name.startswith(INTERFACE_PREFIX) and link.name not in known:
                    group = (link / "netdev_group").read_text().strip()
                    if group == str(self.layout.group):
                        self._run_ip(f"link del {link.name}\n", check=False)
                        removed.append(link.name)
        return removed

    def state(self, directory: Path) -> NetworkState:
        """A session's policy, address and latest denials (those of the kernel and of the proxy)."""
        attachment = self.attachment(directory)
        if attachment is None:
            return NetworkState(NetworkPolicy(mode=NONE), None, None, 0, [])
        shut = attachment.policy.mode == NONE
        counted = self._refused_count(directory.name)
        with self._lock:
            proxied = list(self._proxy_denials.get(attachment.address, ()))
            counted += self._proxy_denied.get(attachment.address, 0)
        recent = sorted(proxied + self._recent_refusals(attachment.address), key=lambda d: d.at, reverse=True)
        address, gateway = (None, None) if shut else (attachment.address, str(self.gateway))
        return NetworkState(attachment.policy, address, gateway, counted, recent[:RECENT_DENIALS])

    def attachment(self, directory: Path) -> Attachment | None:
        try:
            return Attachment.from_json((directory / NETWORK_FILE).read_text())
        except (FileNotFoundError, NotADirectoryError):
            return None

    # --- for the egress proxy ---

    def session_at(self, address: str) -> tuple[str, NetworkPolicy] | None:
        with self._lock:
            return self._policies.get(address)

    def record_denial(self, address: str, denial: Denial) -> None:
        with self._lock:
            self._proxy_denials.setdefault(address, deque(maxlen=RECENT_DENIALS)).append(denial)
            self._proxy_denied[address] = self._proxy_denied.get(address, 0) + 1

    # --- inner workings ---

    def _apply_rules(self, session_id: str, attachment: Attachment) -> None:
        assert self.layout is not None
        self.nft.run(
            session_rules(
                self.layout,
                session_id,
                attachment.interface,
                attachment.address,
                attachment.policy,
                self.settings.operator,
            )
        )
        with self._lock:
            self._policies[attachment.address] = (session_id, attachment.policy)

    def _remove_rules(self, session_id: str, interface: str) -> None:
        """One batch when all the rules are there; one by one when a crash left only some."""
        assert self.layout is not None
        commands = session_removal(self.layout, session_id, interface)
        try:
            self.nft.run("\n".join(commands) + "\n")
        except SandboxError:
            for command in commands:
                with contextlib.suppress(SandboxError):
                    self.nft.run(command)

    def _refused_count(self, session_id: str) -> int:
        assert self.layout is not None
        try:
            objects = self.nft.list_json(f"counter inet {self.layout.table} r_{chain_key(session_id)}")
        except SandboxError:
            return 0
        return sum(int(entry["counter"]["packets"]) for entry in objects if "counter" in entry)

    def _recent_refusals(self, address: str) -> list[Denial]:
        assert self.layout is not None
        try:
            objects = self.nft.list_json(f"set inet {self.layout.table} denied")
        except SandboxError:
            return []
        now = datetime.now(UTC)
        found = []
        for entry in objects:
            for element in entry.get("set", {}).get("elem", []):
                value = element.get("elem", element) if isinstance(element, dict) else element
                key = value.get("val", value) if isinstance(value, dict) else value
                parts = key.get("concat", []) if isinstance(key, dict) else []
                if len(parts) != 4 or parts[0] != address:
                    continue
                expires = (
                    value.get("expires", DENIED_MEMORY_S) if isinstance(value, dict) else DENIED_MEMORY_S
                )
                at = now - timedelta(seconds=DENIED_MEMORY_S - int(expires))
                found.append(Denial(parts[1], int(parts[3]), str(parts[2]), None, at))
        return found

    def _address_number(self, address: str) -> int:
        return int(ipaddress.IPv4Address(address)) - int(self.settings.subnet.network_address)

    def _write(self, directory: Path, attachment: Attachment) -> None:
        temporary = directory / f".{NETWORK_FILE}.tmp"
        temporary.write_text(attachment.to_json())
        temporary.replace(directory / NETWORK_FILE)

    def _run_ip(self, batch: str, check: bool = True) -> None:
        result = run_bounded(["ip", "-batch", "-"], IP_TIMEOUT_S, input=batch)
        if check and result.returncode != 0:
            raise SandboxError(f"could not set up a session's network: {result.stderr.strip()}")

    def _run_in_namespace(self, netns: str, argv: list[str], stdin: str) -> None:
        result = run_bounded(["nsenter", f"--net={netns}", "--", *argv], IP_TIMEOUT_S, input=stdin)
        if result.returncode != 0:
            raise SandboxError(f"could not set up a session's network: {result.stderr.strip()}")
