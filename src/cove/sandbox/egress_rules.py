"""The nftables rules that carry out network policies (sandbox/network_policy.py), as nft text.

One table per Cove server, `inet cove_<instance>`, sees only the interfaces of its own sessions
(their interface group). What an address alone decides is judged in the kernel, per packet of a new
connection; a TCP connection whose verdict hangs on the host name it asks for is turned to the
egress proxy (sandbox/egress_proxy.py), which judges it whole. The rule lists follow `judge()` with
an unknown name, so both places give one verdict.

Chains of a session S on interface I:
    s_S   forward: its connections out (anti-spoofing, always denied, operator list, its rules)
    d_S   prerouting: which of its TCP connections go to the proxy
    r_S   a refusal: counted, remembered in @denied, answered at once (TCP reset, ICMP otherwise)
A session with no policy in force (mode `none` on an interface it keeps, as a gvisor session does)
is also in the set `shut`: the host's DNS forwarder and egress proxy refuse it too.
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from dataclasses import dataclass

from cove.sandbox.network_policy import EGRESS, Network, NetworkPolicy, OperatorPolicy

DENIED_MEMORY_S = 3600
DENIED_REMEMBERED = 4096


@dataclass(frozen=True)
class TableLayout:
    """Where one server's sessions live on the host, and the ports its helpers listen on."""

    table: str
    group: int
    """The interface group of this server's session interfaces: how its rules know them."""
    gateway: ipaddress.IPv4Address
    subnet: ipaddress.IPv4Network
    dns_port: int
    proxy_port: int
    max_connections: int


def table_name(instance_id: str) -> str:
    return f"cove_{instance_id}"


def interface_group(instance_id: str) -> int:
    """The interface group of one server's session interfaces (never 0, the default group)."""
    return zlib.crc32(instance_id.encode()) & 0x7FFFFFFF | 1


def chain_key(session_id: str) -> str:
    return re.sub(r"[^a-z0-9]", "_", session_id.lower())


def _v4(networks: list[Network] | tuple[Network, ...]) -> list[str]:
    """The IPv4 networks, overlaps merged (an nft interval set refuses overlapping elements)."""
    v4 = [network for network in networks if isinstance(network, ipaddress.IPv4Network)]
    return [str(network) for network in ipaddress.collapse_addresses(v4)]


def _elements(networks: list[str]) -> str:
    return "{ " + ", ".join(networks) + " }"


def base_table(layout: TableLayout, operator: OperatorPolicy) -> str:
    """The whole table, replacing any earlier one of this server (sessions' chains come after)."""
    t, group, gateway = layout.table, layout.group, layout.gateway
    closed = _v4(operator.always_denied())
    allowed = _v4(operator.allow.networks) if operator.allow else []
    operator_set = f"elements = {_elements(allowed)}" if allowed else ""
    proxy_ports = f"{{ {layout.dns_port}, {layout.proxy_port} }}"
    to_dns = f"dnat ip to {gateway}:{layout.dns_port}"
    too_many = f"ct state new add @connections {{ ip saddr ct count over {layout.max_connections} }}"
    return f"""
table inet {t}
delete table inet {t}
table inet {t} {{
    set always_denied {{ type ipv4_addr; flags interval; elements = {_elements(closed)} }}
    set operator_allow {{ type ipv4_addr; flags interval; {operator_set} }}
    map sessions {{ type ifname : verdict; }}
    map diverts {{ type ifname : verdict; }}
    map refusals {{ type ifname : verdict; }}
    set shut {{ type ifname; }}
    set connections {{ type ipv4_addr; size 65535; flags dynamic; }}
    set denied {{
        type ipv4_addr . ipv4_addr . inet_proto . inet_service; size {DENIED_REMEMBERED};
        flags dynamic, timeout; timeout {DENIED_MEMORY_S}s;
    }}
    chain refuse {{
        meta l4proto {{ tcp, udp }} update @denied {{ ip saddr . ip daddr . meta l4proto . th dport }}
        meta l4proto tcp reject with tcp reset
        reject with icmpx port-unreachable
    }}
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        iifgroup {group} ip daddr {gateway} meta l4proto {{ tcp, udp }} th dport 53 {to_dns}
        iifgroup {group} iifname vmap @diverts
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {layout.subnet} oifgroup != {group} masquerade
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        iifgroup {group} jump to_host
        ip daddr {gateway} meta l4proto {{ tcp, udp }} th dport {proxy_ports} drop
    }}
    chain to_host {{
        ct state established,related accept
        iifname @shut iifname vmap @refusals
        ip daddr {gateway} tcp dport {proxy_ports} {too_many} iifname vmap @refusals
        ip daddr {gateway} udp dport {layout.dns_port} accept
        ip daddr {gateway} tcp dport {proxy_ports} accept
        iifname vmap @refusals
        jump refuse
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifgroup {group} jump from_session
        oifgroup {group} ct state established,related accept
        oifgroup {group} jump refuse
    }}
    chain from_session {{
        ct state established,related accept
        {too_many} iifname vmap @refusals
        iifname vmap @sessions
        jump refuse
    }}
}}
"""


def session_rules(
    layout: TableLayout,
    session_id: str,
    interface: str,
    address: str,
    policy: NetworkPolicy,
    operator: OperatorPolicy,
) -> str:
    """A session's chains, made or replaced in one batch: the kernel swaps them atomically."""
    t, key = layout.table, chain_key(session_id)
    s, d, r = f"s_{key}", f"d_{key}", f"r_{key}"
    lines = [f"add chain inet {t} {chain}" for chain in (s, d, r)]
    lines += [f"flush chain inet {t} {chain}" for chain in (s, d, r)]
    lines.append(f"add counter inet {t} {r}")  # kept when the policy changes: the count goes on
    lines.append(f'add rule inet {t} {r} counter name "{r}" jump refuse')
    if policy.mode != EGRESS:  # an interface whose session has no policy in force yet
        lines.append(f"add rule inet {t} {s} goto {r}")
    lines.append(f"add rule inet {t} {s} ip saddr != {address} goto {r}")
    lines.append(f"add rule inet {t} {s} ip daddr @always_denied goto {r}")
    if operator.allow is not None:
        lines.append(f"add rule inet {t} {s} ip daddr != @operator_allow goto {r}")
    allowed, denied = _v4(policy.allow_out.networks), _v4(policy.deny_out.networks)
    if allowed:
        lines.append(f"add rule inet {t} {s} ip daddr {_elements(allowed)} accept")
    if denied:
        lines.append(f"add rule inet {t} {s} ip daddr {_elements(denied)} goto {r}")
    lines.append(f"add rule inet {t} {s} accept")
    if policy.has_domains or operator.has_domains:
        lines.append(f"add rule inet {t} {d} ip daddr @always_denied return")
        if not operator.has_domains:
            if operator.allow is not None:
                lines.append(f"add rule inet {t} {d} ip daddr != @operator_allow return")
            if allowed:
                lines.append(f"add rule inet {t} {d} ip daddr {_elements(allowed)} return")
        lines.append(
            f"add rule inet {t} {d} meta l4proto tcp dnat ip to {layout.gateway}:{layout.proxy_port}"
        )
    quoted = f'"{interface}"'
    lines += [
        f"add element inet {t} sessions {{ {quoted} : jump {s} }}",
        f"add element inet {t} diverts {{ {quoted} : jump {d} }}",
        f"add element inet {t} refusals {{ {quoted} : goto {r} }}",
    ]
    if policy.mode == EGRESS:
        lines += _leave_shut(t, quoted)
    else:
        lines.append(f"add element inet {t} shut {{ {quoted} }}")
    return "\n".join(lines) + "\n"


def _leave_shut(table: str, quoted: str) -> list[str]:
    """Take an interface out of `shut`, whether or not it is in: a delete alone fails on one that is not."""
    return [
        f"add element inet {table} shut {{ {quoted} }}",
        f"delete element inet {table} shut {{ {quoted} }}",
    ]


def session_removal(layout: TableLayout, session_id: str, interface: str) -> list[str]:
    """Commands that remove a session's rules, each to be run alone (some may be gone already)."""
    t, key = layout.table, chain_key(session_id)
    quoted = f'"{interface}"'
    commands = [
        f"delete element inet {t} {name} {{ {quoted} }}" for name in ("sessions", "diverts", "refusals")
    ]
    commands += _leave_shut(t, quoted)
    chains = [f"delete chain inet {t} {prefix}_{key}" for prefix in ("s", "d", "r")]
    return [*commands, *chains, f"delete counter inet {t} r_{key}"]
