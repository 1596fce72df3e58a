"""The session network's API surfaces against a real server with egress on: REST, SDK and CLI.

What a session can actually reach is tested elsewhere; this checks that every surface sets and
shows the same policy, and refuses bad ones clearly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from cove import AgentBay, AsyncAgentBay, Config, CreateSessionParams, NetworkPolicy, Session, SessionData
from cove.cli import main
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_A, CoveServer

SUBNET = ipaddress.ip_network("10.203.0.0/16")
ALLOW_LIST = NetworkPolicy(mode="egress", allow_out=["pypi.test", "*.api.test"], deny_out=["0.0.0.0/0"])


@pytest.fixture
def agent_bay(network_server: CoveServer) -> Iterator[AgentBay]:
    """A client whose sessions are deleted after the test, pass or fail."""
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=network_server.url)) as client:
        yield client
        for session_id in client.list(limit=100).session_ids:
            client.delete(session_id)


@pytest.fixture
def api(network_server: CoveServer, agent_bay: AgentBay) -> Iterator[httpx.Client]:
    """Raw HTTP; sessions it creates go with `agent_bay`'s."""
    with network_server.client(KEY_A) as client:
        yield client


@pytest.fixture
def create(agent_bay: AgentBay, runtime: str | None) -> Callable[..., Session]:
    """Makes a session on `runtime` (conftest.py) with a network policy."""

    def made(network: NetworkPolicy | None = None) -> Session:
        result = agent_bay.create(CreateSessionParams(network=network, runtime=runtime))
        assert result.success and result.session is not None, result.error_message
        return result.session

    return made


@BOTH_RUNTIMES
def test_sdk_create_with_a_policy_and_get_it_back(create: Callable[..., Session]) -> None:
    session = create(ALLOW_LIST)
    got = session.network.get()
    assert got.success and got.request_id, got.error_message
    assert got.policy == ALLOW_LIST
    assert got.address is not None and ipaddress.ip_address(got.address) in SUBNET
    assert got.gateway == "10.203.0.1" and got.address != got.gateway
    assert (got.denied_count, got.denied) == (0, [])

    other = create().network.get()
    assert other.policy == NetworkPolicy(mode="egress"), "the server's default mode, no rules"
    assert other.address is not None and other.address != got.address


@BOTH_RUNTIMES
def test_rest_create_get_and_put(api: httpx.Client, runtime: str) -> None:
    policy = {"mode": "egress", "allow_out": ["198.18.0.10"], "deny_out": ["198.18.0.0/24"]}
    created = api.post("/v1/sessions", json={"network": policy, "runtime": runtime})
    assert created.status_code == 201, created.text
    path = f"/v1/sessions/{created.json()['session']['session_id']}/network"

    shown = api.get(path)
    assert shown.status_code == 200, shown.text
    answer = shown.json()
    assert set(answer) == {"request_id", "session_id", "policy", "address", "gateway", "denied"}
    assert answer["policy"] == {**policy, "allow_out": ["198.18.0.10/32"]}
    assert ipaddress.ip_address(answer["address"]) in SUBNET
    assert answer["denied"] == {"count": 0, "recent": []}

    changed = api.put(path, json={"allow_out": ["pypi.test"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["policy"] == {"mode": "egress", "allow_out": ["pypi.test"], "deny_out": []}
    assert changed.json()["address"] == answer["address"], "a new policy keeps the address"
    assert api.get(path).json()["policy"] == changed.json()["policy"]


@BOTH_RUNTIMES
def test_mode_none_has_no_address(create: Callable[..., Session]) -> None:
    got = create(NetworkPolicy(mode="none")).network.get()
    assert got.success, got.error_message
    assert (got.policy, got.address, got.gateway) == (NetworkPolicy(mode="none"), None, None)


@BOTH_RUNTIMES
async def test_async_sdk_updates_the_policy(
    network_server: CoveServer, agent_bay: AgentBay, runtime: str
) -> None:
    async with AsyncAgentBay(api_key=KEY_A, cfg=Config(endpoint=network_server.url)) as client:
        created = await client.create(CreateSessionParams(runtime=runtime))
        assert created.session is not None, created.error_message
        updated = await created.session.network.update(ALLOW_LIST)
        assert updated.success and updated.policy == ALLOW_LIST, updated.error_message
        assert (await created.session.network.get()).policy == ALLOW_LIST


@pytest.mark.parametrize(
    ("policy", "named"),
    [
        ({"allow_out": ["pypi.test", "no such thing"]}, "'no such thing'"),
        ({"deny_out": ["10.0.0.0/33"]}, "'10.0.0.0/33'"),
        ({"mode": "bridge"}, "'bridge'"),
        ({"allow_out": [f"198.18.{i // 256}.{i % 256}" for i in range(257)]}, "257"),
    ],
)
def test_a_bad_policy_is_400_naming_what_is_wrong(
    api: httpx.Client, create: Callable[..., Session], policy: dict[str, Any], named: str
) -> None:
    created = api.post("/v1/sessions", json={"network": policy})
    path = f"/v1/sessions/{create().session_id}/network"
    for response in (created, api.put(path, json=policy)):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "InvalidArgument" and named in error["message"], error
    assert api.get(path).json()["policy"] == {"mode": "egress", "allow_out": [], "deny_out": []}


def test_an_unknown_session_is_404(api: httpx.Client, agent_bay: AgentBay) -> None:
    for response in (
        api.get("/v1/sessions/session-nope/network"),
        api.put("/v1/sessions/session-nope/network", json={"mode": "none"}),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "SessionNotFound"
    missing = agent_bay._bind(SessionData(session_id="session-nope")).network.get()
    assert (missing.success, missing.code, missing.http_status_code) == (False, "SessionNotFound", 404)


@BOTH_RUNTIMES
def test_cli_session_net_shows_and_changes_the_policy(
    network_server: CoveServer, create: Callable[..., Session]
) -> None:
    session = create()
    client_args = ["--endpoint", network_server.url, "--api-key", KEY_A]

    def cove(*args: str) -> Any:
        command = ["session", "net", *client_args, session.session_id, *args]
        return CliRunner().invoke(main, command, catch_exceptions=False)

    shown = cove()
    assert shown.exit_code == 0, shown.output
    assert "mode:      egress" in shown.output and "address:   10.203." in shown.output
    assert shown.output.strip().endswith("0 of 0 denied connections shown")

    changed = cove("--allow", "pypi.test", "--allow", "*.api.test", "--deny", "0.0.0.0/0")
    assert changed.exit_code == 0, changed.output
    assert "allow out: pypi.test, *.api.test" in changed.output and "deny out:  0.0.0.0/0" in changed.output
    assert session.network.get().policy == ALLOW_LIST

    refused = cove("--deny", "no such thing")
    assert refused.exit_code == 1 and "'no such thing'" in refused.output


def test_agentbay_gives_the_session_address_and_says_what_to_use_for_networks(
    network_server: CoveServer,
) -> None:
    from tests.integration.test_agentbay_wire import envelope, rpc

    created = envelope(rpc(network_server, "CreateMcpSession"))
    session_id = created["Data"]["SessionId"]
    try:
        address = created["Data"]["NetworkInterfaceIp"]
        assert ipaddress.ip_address(address) in SUBNET
        with network_server.client(KEY_A) as client:
            assert client.get(f"/v1/sessions/{session_id}/network").json()["address"] == address
        refused = envelope(rpc(network_server, "CreateNetwork"))
        assert refused["Success"] is False and "PUT /v1/sessions/{id}/network" in refused["Message"]
    finally:
        envelope(rpc(network_server, "DeleteSessionAsync", SessionId=session_id))
