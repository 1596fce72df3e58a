"""A session's network policy and the one function that judges a connection by it.

The same judgement runs in two places: compiled into nftables rules for what an address alone
decides (sandbox/egress_rules.py), and in the egress proxy for TCP connections whose verdict
depends on the host name the client asks for (HTTP Host, TLS SNI; sandbox/egress_proxy.py).

Layers, first match decides:
1. Always denied: the ranges below and every address of the host or of another session, unless
   the operator opened a range (`COVE_EGRESS_OPEN`). No session rule can reach them.
2. The operator's allow-list (`COVE_EGRESS_ALLOW`), when set: a destination outside it is denied.
3. The session's rules: allow_out wins over deny_out; nothing matched is allowed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from cove.errors import InvalidArgument

EGRESS = "egress"
NONE = "none"
MODES = (EGRESS, NONE)
MAX_RULES = 256
ALWAYS_DENIED = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
    "::/128",
    "fd00:ec2::254/128",
)
"""Loopback, link-local and cloud metadata (169.254.169.254, fd00:ec2::254), the private ranges,
multicast and reserved space: what a sandbox has no business reaching unless the operator says so."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class Verdict(Enum):
    ALLOW = "allow"
    DENY = "deny"
    NEEDS_NAME = "needs_name"
    """Only the host name the client asks for can decide (a domain rule may match it)."""


@dataclass(frozen=True)
class Rules:
    """A list of destinations: networks and domain patterns (`pypi.org`, `*.example.com`)."""

    networks: tuple[Network, ...] = ()
    domains: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[Any], what: str) -> Rules:
        networks: list[Network] = []
        domains: list[str] = []
        for entry in entries:
            if not isinstance(entry, str) or not entry.strip():
                raise InvalidArgument(f"{what}: {entry!r} is not a CIDR, an address or a domain name")
            text = entry.strip().lower()
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            if not _is_domain_pattern(text):
                raise InvalidArgument(
                    f"{what}: {entry!r} is not a CIDR (1.2.3.0/24), an address or a domain name "
                    "(example.com, or *.example.com for its sub-domains)"
                )
            domains.append(text.rstrip("."))
        return cls(tuple(networks), tuple(domains))

    def entries(self) -> list[str]:
        return [str(network) for network in self.networks] + list(self.domains)

    def has_address(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def has_name(self, name: str | None) -> bool:
        return name is not None and any(_name_matches(pattern, name) for pattern in self.domains)


def _is_domain_pattern(text: str) -> bool:
    """A host name, or `*.` and one; its last label is never all digits, so that a mistyped
    address (1.2.3.999) is refused rather than taken for a name."""
    name = text[2:] if text.startswith("*.") else text
    labels = name.rstrip(".").split(".")
    return len(name) <= 253 and all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def _name_matches(pattern: str, name: str) -> bool:
    name = name.lower().rstrip(".")
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


@dataclass(frozen=True)
class NetworkPolicy:
    """What a session may reach, as the API gives it."""

    mode: str = EGRESS
    allow_out: Rules = field(default_factory=Rules)
    deny_out: Rules = field(default_factory=Rules)

    @classmethod
    def from_wire(cls, raw: Any, default_mode: str) -> NetworkPolicy:
        """Check a policy from a request: {"mode", "allow_out", "deny_out"}, every field optional."""
        if raw is None:
            return cls(mode=default_mode)
        if not isinstance(raw, dict):
            raise InvalidArgument("network must be an object: {mode, allow_out, deny_out}")
        unknown = sorted(set(raw) - {"mode", "allow_out", "deny_out"})
        if unknown:
            raise InvalidArgument(f"network: unknown fields {unknown}; it has mode, allow_out and deny_out")
        mode = raw.get("mode") or default_mode
        if mode not in MODES:
            raise InvalidArgument(f"network.mode must be 'egress' or 'none', not {mode!r}")
        lists = {}
        for name in ("allow_out", "deny_out"):
            entries = raw.get(name)
            entries = [] if entries is None else entries
            if not isinstance(entries, list):
                raise InvalidArgument(f"network.{name} must be a list of CIDRs and domain names")
            if len(entries) > MAX_RULES:
                raise InvalidArgument(f"network.{name} has {len(entries)} entries; at most {MAX_RULES}")
            lists[name] = Rules.parse(entries, f"network.{name}")
        return cls(mode=mode, allow_out=lists["allow_out"], deny_out=lists["deny_out"])

    def to_wire(self) -> dict[str, Any]:
        return {"mode": self.mode, "allow_out": self.allow_out.entries(), "deny_out": self.deny_out.entries()}

    @property
    def has_domains(self) -> bool:
        return bool(self.allow_out.domains or self.deny_out.domains)


@dataclass(frozen=True)
class OperatorPolicy:
    """The server's own rules, which no session policy can widen."""

    egress_allowed: bool = True
    """False: every session is `none`, whatever it asks."""
    allow: Rules | None = None
    """When set, the only destinations any session may reach."""
    open_ranges: tuple[Network, ...] = ()
    """Always-denied ranges the operator opened."""
    closed: tuple[Network, ...] = ()
    """Networks denied besides ALWAYS_DENIED: the sessions' own subnet, the host's addresses."""

    def always_denied(self) -> list[Network]:
        """ALWAYS_DENIED less what the operator opened (a part of a range opens that part), plus
        what is closed whatever was opened."""
        kept = [ipaddress.ip_network(cidr) for cidr in ALWAYS_DENIED]
        for opened in self.open_ranges:
            kept = [part for network in kept for part in _without(network, opened)]
        return kept + list(self.closed)

    @property
    def has_domains(self) -> bool:
        return self.allow is not None and bool(self.allow.domains)


def _without(network: Network, opened: Network) -> list[Network]:
    """`network` less the addresses of `opened`."""
    if network.version != opened.version or not network.overlaps(opened):
        return [network]
    if network.subnet_of(opened):  # type: ignore[arg-type]
        return []
    return list(network.address_exclude(opened))  # type: ignore[arg-type]


def judge(operator: OperatorPolicy, policy: NetworkPolicy, address: Address, name: str | None) -> Verdict:
    """The verdict for a connection to `address`, asked for as `name`.

    `name` None: not known yet, and NEEDS_NAME says a domain rule could still change the verdict.
    `name` "": there will be none (neither HTTP nor TLS), so domain rules match nothing.
    """
    if policy.mode != EGRESS or not operator.egress_allowed:
        return Verdict.DENY
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in operator.always_denied()):
        return Verdict.DENY
    undecided = False
    if operator.allow is not None and not operator.allow.has_address(address):
        if name is None and operator.allow.domains:
            undecided = True
        elif not operator.allow.has_name(name):
            return Verdict.DENY
    allowed = Verdict.NEEDS_NAME if undecided else Verdict.ALLOW
    if policy.allow_out.has_address(address) or policy.allow_out.has_name(name):
        return allowed
    if policy.deny_out.has_address(address):
        return Verdict.NEEDS_NAME if name is None and policy.allow_out.domains else Verdict.DENY
    if name is None and policy.deny_out.domains:
        return Verdict.NEEDS_NAME
    return Verdict.DENY if policy.deny_out.has_name(name) else allowed


@dataclass(frozen=True)
class Denial:
    """A connection the policy refused, for `GET /v1/sessions/{id}/network`."""

    destination: str
    port: int | None
    protocol: str
    name: str | None
    at: datetime


@dataclass(frozen=True)
class NetworkState:
    """A session's policy, where it is on the network, and what it was refused lately."""

    policy: NetworkPolicy
    address: str | None
    gateway: str | None
    denied_count: int
    denied: list[Denial]
