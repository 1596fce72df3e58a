"""Session networks without a server: the SDK's calls and results, and the policy model that
checks what clients send (`NetworkPolicy.from_wire`) and judges connections by it (`judge`)."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import httpx
import pytest

from cove import (
    AgentBay,
    AsyncAgentBay,
    Config,
    CreateSessionParams,
    DeniedConnection,
    NetworkPolicy,
    NetworkResult,
    SessionData,
)
from cove.errors import InvalidArgument
from cove.sandbox import network_policy as wire
from cove.sandbox.network_policy import OperatorPolicy, Rules, Verdict, judge
from cove.sdk import core, network_calls

ANSWER: dict[str, Any] = {
    "request_id": "r1",
    "session_id": "session-1",
    "policy": {"mode": "egress", "allow_out": ["pypi.org"], "deny_out": ["0.0.0.0/0"]},
    "address": "10.203.0.7",
    "gateway": "10.203.0.1",
    "denied": {
        "count": 3,
        "recent": [
            {
                "destination": "198.18.0.12",
                "port": 443,
                "protocol": "tcp",
                "name": "denied.test",
                "at": "2026-12-04T21:00:00Z",
            },
            {"destination": "198.18.0.11", "port": None, "protocol": "icmp", "name": None, "at": "t2"},
        ],
    },
}


# The SDK


def test_create_sends_the_policy_and_leaves_an_unset_mode_to_the_server() -> None:
    policy = NetworkPolicy(mode="egress", allow_out=["pypi.org"], deny_out=["0.0.0.0/0"])
    call = core.create_session(CreateSessionParams(network=policy), lambda data: data)
    assert call.body is not None
    assert call.body["network"] == {"mode": "egress", "allow_out": ["pypi.org"], "deny_out": ["0.0.0.0/0"]}
    unset = core.create_session(CreateSessionParams(network=NetworkPolicy()), lambda data: data).body
    assert unset is not None and unset["network"] == {"allow_out": [], "deny_out": []}
    assert "network" not in (core.create_session(CreateSessionParams(), lambda data: data).body or {})


def test_get_reads_the_policy_address_and_denials() -> None:
    call = network_calls.get("session-1")
    assert (call.method, call.path, call.body) == ("GET", "/v1/sessions/session-1/network", None)
    result = call.finish(200, {}, json.dumps(ANSWER).encode())
    assert isinstance(result, NetworkResult)
    assert (result.success, result.request_id, result.http_status_code) == (True, "r1", 200)
    assert result.policy == NetworkPolicy(mode="egress", allow_out=["pypi.org"], deny_out=["0.0.0.0/0"])
    assert (result.address, result.gateway, result.denied_count) == ("10.203.0.7", "10.203.0.1", 3)
    assert result.denied == [
        DeniedConnection(
            destination="198.18.0.12", port=443, protocol="tcp", name="denied.test", at="2026-12-04T21:00:00Z"
        ),
        DeniedConnection(destination="198.18.0.11", port=None, protocol="icmp", name=None, at="t2"),
    ]


def test_a_session_without_a_network_has_no_address() -> None:
    answer = {**ANSWER, "address": None, "gateway": None, "denied": {"count": 0, "recent": []}}
    answer["policy"] = {"mode": "none", "allow_out": [], "deny_out": []}
    result = network_calls.get("session-1").finish(200, {}, json.dumps(answer).encode())
    assert result.policy == NetworkPolicy(mode="none")
    assert (result.address, result.gateway, result.denied_count, result.denied) == (None, None, 0, [])


def test_update_puts_the_whole_policy() -> None:
    call = network_calls.update("session-1", NetworkPolicy(allow_out=["*.example.com"]))
    assert (call.method, call.path) == ("PUT", "/v1/sessions/session-1/network")
    assert call.body == {"allow_out": ["*.example.com"], "deny_out": []}
    assert call.finish(200, {}, json.dumps(ANSWER).encode()).address == "10.203.0.7"


def test_a_refused_policy_is_a_failed_result_with_the_servers_message() -> None:
    error = {"code": "InvalidArgument", "message": "network.allow_out: 'a b' is not a CIDR"}
    body = json.dumps({"request_id": "r2", "error": error}).encode()
    result = network_calls.update("session-1", NetworkPolicy(allow_out=["a b"])).finish(400, {}, body)
    assert (result.success, result.code, result.http_status_code) == (False, "InvalidArgument", 400)
    assert "'a b'" in result.error_message and result.policy is None and result.denied == []


def test_an_empty_session_id_is_refused_without_a_request() -> None:
    assert network_calls.get(" ").refusal == "session_id is required"
    assert network_calls.update("", NetworkPolicy()).refused().code == "InvalidArgument"


def _recording(seen: list[httpx.Request]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ANSWER)

    return httpx.MockTransport(answer)


def test_sync_session_network_sends_the_calls() -> None:
    seen: list[httpx.Request] = []
    with AgentBay(api_key="k", cfg=Config(endpoint="http://cove.test")) as agent_bay:
        agent_bay._http = httpx.Client(base_url="http://cove.test", transport=_recording(seen))
        session = agent_bay._bind(SessionData(session_id="session-1"))
        assert session.network.get().address == "10.203.0.7"
        assert session.network.update(NetworkPolicy(mode="none")).success
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/v1/sessions/session-1/network"),
        ("PUT", "/v1/sessions/session-1/network"),
    ]
    assert json.loads(seen[1].content) == {"mode": "none", "allow_out": [], "deny_out": []}


async def test_async_session_network_sends_the_calls() -> None:
    seen: list[httpx.Request] = []
    async with AsyncAgentBay(api_key="k", cfg=Config(endpoint="http://cove.test")) as agent_bay:
        await agent_bay._http.aclose()
        agent_bay._http = httpx.AsyncClient(base_url="http://cove.test", transport=_recording(seen))
        session = agent_bay._bind(SessionData(session_id="session-1"))
        assert (await session.network.get()).denied_count == 3
        assert (await session.network.update(NetworkPolicy(deny_out=["0.0.0.0/0"]))).success
    assert [r.method for r in seen] == ["GET", "PUT"]
    assert json.loads(seen[1].content) == {"allow_out": [], "deny_out": ["0.0.0.0/0"]}


# NetworkPolicy.from_wire: what the server accepts


def test_from_wire_takes_cidrs_addresses_domains_and_wildcards() -> None:
    raw = {
        "mode": "egress",
        "allow_out": ["1.2.3.4/24", "8.8.8.8", "2001:db8::/32", "::1", " PyPI.org ", "*.pythonhosted.org"],
        "deny_out": ["0.0.0.0/0", "example.com."],
    }
    policy = wire.NetworkPolicy.from_wire(raw, "none")
    assert policy.to_wire() == {
        "mode": "egress",
        "allow_out": [
            "1.2.3.0/24",
            "8.8.8.8/32",
            "2001:db8::/32",
            "::1/128",
            "pypi.org",
            "*.pythonhosted.org",
        ],
        "deny_out": ["0.0.0.0/0", "example.com"],
    }
    assert policy.has_domains


@pytest.mark.parametrize("raw", [None, {}, {"mode": None}, {"mode": "", "allow_out": None}])
def test_from_wire_fills_in_the_default_mode(raw: Any) -> None:
    assert wire.NetworkPolicy.from_wire(raw, "none").to_wire() == {
        "mode": "none",
        "allow_out": [],
        "deny_out": [],
    }


@pytest.mark.parametrize(
    "entry",
    [
        "not a domain",
        "http://pypi.org",
        "pypi.org:443",
        "10.0.0.0/33",
        "300.1.2.3/8",
        "-pypi.org",
        "a..b",
        "*",
        "*.",
        "**.example.com",
        "foo.*.com",
        "under_score.com",
        "bücher.de",
        "a" * 64 + ".com",
        ".".join(["abcdefghi"] * 26),
        "",
        "   ",
        5,
        None,
        ["pypi.org"],
    ],
)
def test_from_wire_refuses_a_bad_entry_by_naming_it(entry: Any) -> None:
    with pytest.raises(InvalidArgument) as refused:
        wire.NetworkPolicy.from_wire({"deny_out": ["1.1.1.1", entry]}, "egress")
    assert "network.deny_out" in str(refused.value) and repr(entry) in str(refused.value)


@pytest.mark.parametrize("entry", ["1.2.3.999", "1.2.3", "10.0.0.256"])
def test_from_wire_refuses_numbers_that_are_not_addresses(entry: str) -> None:
    with pytest.raises(InvalidArgument):
        wire.NetworkPolicy.from_wire({"allow_out": [entry]}, "egress")


def test_from_wire_bounds_the_lists() -> None:
    most = [f"10.0.{i // 256}.{i % 256}" for i in range(wire.MAX_RULES)]
    assert len(wire.NetworkPolicy.from_wire({"allow_out": most}, "egress").allow_out.networks) == 256
    with pytest.raises(InvalidArgument, match=re.escape("network.allow_out has 257 entries; at most 256")):
        wire.NetworkPolicy.from_wire({"allow_out": [*most, "1.1.1.1"]}, "egress")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"mood": "egress"}, "unknown fields ['mood']"),
        ({"mode": "egress", "allow": ["pypi.org"]}, "unknown fields ['allow']"),
        ({"mode": "open"}, "network.mode must be 'egress' or 'none', not 'open'"),
        ({"mode": "EGRESS"}, "not 'EGRESS'"),
        ({"allow_out": "pypi.org"}, "network.allow_out must be a list"),
        ({"deny_out": {"0.0.0.0/0": True}}, "network.deny_out must be a list"),
        (["egress"], "network must be an object"),
        ("egress", "network must be an object"),
    ],
)
def test_from_wire_refuses_bad_shapes(raw: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        wire.NetworkPolicy.from_wire(raw, "egress")


# judge(): the verdict for one connection

OPEN = OperatorPolicy()


def policy(
    mode: str = "egress", allow: list[str] | None = None, deny: list[str] | None = None
) -> wire.NetworkPolicy:
    return wire.NetworkPolicy.from_wire(
        {"mode": mode, "allow_out": allow or [], "deny_out": deny or []}, "egress"
    )


def verdict(
    rules: wire.NetworkPolicy, address: str, name: str | None = "", operator: OperatorPolicy = OPEN
) -> Verdict:
    return judge(operator, rules, ipaddress.ip_address(address), name)


def test_nothing_listed_is_allowed() -> None:
    assert verdict(policy(), "8.8.8.8") is Verdict.ALLOW
    assert verdict(policy(), "2001:4860:4860::8888", None) is Verdict.ALLOW


def test_allow_wins_over_deny() -> None:
    rules = policy(allow=["8.8.8.8"], deny=["8.8.8.0/24"])
    assert verdict(rules, "8.8.8.8") is Verdict.ALLOW
    assert verdict(rules, "8.8.8.9") is Verdict.DENY
    assert verdict(rules, "8.8.4.4") is Verdict.ALLOW
    by_name = policy(allow=["*.example.com"], deny=["1.1.1.0/24", "www.example.com"])
    assert verdict(by_name, "1.1.1.1", "www.example.com") is Verdict.ALLOW


def test_a_whitelist_of_domains_needs_the_name_to_decide() -> None:
    rules = policy(allow=["pypi.org", "*.pythonhosted.org"], deny=["0.0.0.0/0"])
    assert verdict(rules, "151.101.0.223", None) is Verdict.NEEDS_NAME
    assert verdict(rules, "151.101.0.223", "pypi.org") is Verdict.ALLOW
    assert verdict(rules, "151.101.0.223", "PyPI.org.") is Verdict.ALLOW
    assert verdict(rules, "151.101.0.223", "files.pythonhosted.org") is Verdict.ALLOW
    assert verdict(rules, "151.101.0.223", "pythonhosted.org") is Verdict.DENY, (
        "a wildcard is sub-domains only"
    )
    assert verdict(rules, "151.101.0.223", "evilpypi.org") is Verdict.DENY
    assert verdict(rules, "151.101.0.223", "") is Verdict.DENY, "no name: domain rules match nothing"


def test_a_denied_domain_needs_the_name_to_decide() -> None:
    rules = policy(deny=["*.evil.test"])
    assert verdict(rules, "1.1.1.1", None) is Verdict.NEEDS_NAME
    assert verdict(rules, "1.1.1.1", "www.evil.test") is Verdict.DENY
    assert verdict(rules, "1.1.1.1", "good.test") is Verdict.ALLOW
    assert verdict(rules, "1.1.1.1", "") is Verdict.ALLOW


@pytest.mark.parametrize(
    "address", ["10.1.2.3", "169.254.169.254", "127.0.0.1", "192.168.1.1", "172.16.0.1", "100.64.0.1", "::1"]
)
def test_always_denied_ranges_stay_denied_whatever_the_policy(address: str) -> None:
    rules = policy(allow=[address, "0.0.0.0/0", "::/0", "metadata.test"])
    assert verdict(rules, address, None) is Verdict.DENY
    assert verdict(rules, address, "metadata.test") is Verdict.DENY


def test_the_operator_can_open_an_always_denied_range_but_not_the_closed_ones() -> None:
    opened = OperatorPolicy(
        open_ranges=(ipaddress.ip_network("10.0.0.0/8"),), closed=(ipaddress.ip_network("10.203.0.0/16"),)
    )
    assert verdict(policy(), "10.1.2.3", operator=opened) is Verdict.ALLOW
    assert verdict(policy(deny=["10.1.0.0/16"]), "10.1.2.3", operator=opened) is Verdict.DENY
    assert verdict(policy(allow=["10.203.0.0/16"]), "10.203.0.9", operator=opened) is Verdict.DENY
    assert verdict(policy(), "169.254.169.254", operator=opened) is Verdict.DENY


def test_opening_part_of_an_always_denied_range_opens_that_part() -> None:
    opened = OperatorPolicy(open_ranges=(ipaddress.ip_network("10.1.0.0/16"),))
    assert verdict(policy(), "10.1.2.3", operator=opened) is Verdict.ALLOW


def test_the_operators_allow_list_bounds_every_session() -> None:
    test_world = OperatorPolicy(allow=Rules.parse(["198.18.0.0/24"], "allow"))
    assert verdict(policy(allow=["8.8.8.8"]), "8.8.8.8", None, test_world) is Verdict.DENY
    assert verdict(policy(allow=["8.8.8.8"]), "8.8.8.8", "pypi.test", test_world) is Verdict.DENY
    assert verdict(policy(), "198.18.0.10", None, test_world) is Verdict.ALLOW
    assert verdict(policy(deny=["198.18.0.12"]), "198.18.0.12", "", test_world) is Verdict.DENY


def test_an_operator_allow_list_of_domains_waits_for_the_name() -> None:
    by_name = OperatorPolicy(allow=Rules.parse(["*.corp.test"], "allow"))
    assert verdict(policy(), "1.1.1.1", None, by_name) is Verdict.NEEDS_NAME
    assert verdict(policy(), "1.1.1.1", "git.corp.test", by_name) is Verdict.ALLOW
    assert verdict(policy(), "1.1.1.1", "github.com", by_name) is Verdict.DENY
    assert verdict(policy(deny=["git.corp.test"]), "1.1.1.1", "git.corp.test", by_name) is Verdict.DENY


def test_mode_none_or_egress_forbidden_denies_everything() -> None:
    for address in ("8.8.8.8", "198.18.0.10"):
        assert verdict(policy("none", allow=["0.0.0.0/0"]), address, None) is Verdict.DENY
        forbidden = OperatorPolicy(egress_allowed=False)
        assert verdict(policy(allow=["0.0.0.0/0"]), address, "pypi.org", forbidden) is Verdict.DENY


def test_an_ipv4_address_in_ipv6_form_is_judged_as_itself() -> None:
    metadata = ipaddress.ip_address("::ffff:169.254.169.254")
    assert judge(OperatorPolicy(), policy(allow=["::ffff:169.254.169.254"]), metadata, "") is Verdict.DENY
