"""What a session can reach, tried from inside real sessions against the test hosts (testnet.py).

Every server here lets sessions reach the test hosts' subnet only (CoveServer's settings), so no
attempt below can leave the machine, even one the policy should have stopped and did not.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import CoveServer, scratch_server
from tests.network.testnet import TestNetwork

API, PYPI, DENIED = "198.18.0.11", "198.18.0.10", "198.18.0.12"
ALLOW_LIST = {
    "mode": "egress",
    "allow_out": ["api.test", "*.pypi.test", "pypi.test"],
    "deny_out": ["0.0.0.0/0"],
}
PROBE = r"""
import json, socket, ssl, sys, urllib.request
def attempt(kind, target, port, name=None, timeout=10):
    try:
        if kind == "tcp":
            with socket.create_connection((target, port), timeout=timeout) as s:
                if name is not None:
                    s.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
                    data = s.recv(4096)
                    return "ok" if data else "closed"
                if port == 7:  # the echo server: a protocol with no name in it
                    s.sendall(b"ping\n")
                    return "ok" if s.recv(16) == b"ping\n" else "closed"
            return "ok"
        if kind == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(timeout)
                s.connect((target, port))
                s.send(b"ping\n")
                return "ok" if s.recv(64) else "closed"
        if kind == "https":
            context = ssl.create_default_context(cafile="/tmp/ca.pem")
            with socket.create_connection((target, port), timeout=timeout) as raw:
                with context.wrap_socket(raw, server_hostname=name) as s:
                    s.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
                    return "ok" if s.recv(4096) else "closed"
        if kind == "http":
            return "ok:" + urllib.request.urlopen(target, timeout=timeout).read().decode().strip()
        if kind == "dns":
            return "ok:" + socket.gethostbyname(target)
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"
    except OSError as error:
        return f"error:{error.errno}:{error}"
print(json.dumps([attempt(*a) for a in json.loads(sys.argv[1])]))
"""
FAST_FAILURES = ("refused", "reset", "error:113:", "error:101:", "error:104:", "closed")
"""A refusal the client sees at once: a reset, ICMP port unreachable, no route (EHOSTUNREACH, ENETUNREACH)."""


def probe(server: CoveServer, session_id: str, *attempts: tuple[Any, ...]) -> list[str]:
    """Try each (kind, target, port, name) from inside the session; the outcome of each."""
    script = f"python3 -c {shlex.quote(PROBE)} {shlex.quote(json.dumps(attempts))}"
    result = server.sandbox(session_id, script, timeout=120)
    assert result.returncode == 0, result.stderr
    outcomes: list[str] = json.loads(result.stdout)
    return outcomes


def refused_fast(outcome: str) -> bool:
    return outcome.startswith(FAST_FAILURES)


def interfaces(server: CoveServer, session_id: str) -> list[str]:
    """The network interfaces a session sees (from /proc/net/dev: gVisor's /sys has no class/net)."""
    listed = server.sandbox(session_id, "cat /proc/net/dev")
    assert listed.returncode == 0, listed.stderr
    return [line.split(":")[0].strip() for line in listed.stdout.splitlines()[2:]]


@pytest.fixture
def session_with(new_session: Callable[..., dict[str, Any]]) -> Callable[..., str]:
    """Makes a session with a network policy (the server's default without one), on `runtime`."""

    def create(network: dict[str, Any] | None = None) -> str:
        body: dict[str, Any] = {"network": network} if network else {}
        return str(new_session(**body)["session_id"])

    return create


@BOTH_RUNTIMES
def test_reaches_a_test_host_by_name_and_by_address(
    server: CoveServer, session_with: Callable[..., str]
) -> None:
    session_id = session_with()
    outcomes = probe(
        server,
        session_id,
        ("dns", "api.test", 0),
        ("http", "http://api.test/", 0),
        ("http", f"http://{PYPI}/", 0),
        ("tcp", API, 7),
    )
    assert outcomes == ["ok:" + API, "ok:hello from api.test", "ok:hello from pypi.test", "ok"]
    curl = server.sandbox(session_id, "curl -sS --max-time 10 http://api.test/")
    assert (curl.returncode, curl.stdout.strip()) == (0, "hello from api.test"), curl.stderr


@BOTH_RUNTIMES
def test_a_session_reaches_the_test_hosts_after_a_pause(
    server: CoveServer, session_with: Callable[..., str], api: Any
) -> None:
    """The interface and its rules outlive a pause; on gvisor the restored network stack takes the
    session's interface again."""
    session_id = session_with({"mode": "egress", "deny_out": [DENIED]})
    assert api.post(f"/v1/sessions/{session_id}/pause").status_code == 200
    assert api.post(f"/v1/sessions/{session_id}/resume").status_code == 200
    reached, denied = probe(server, session_id, ("http", "http://api.test/", 0), ("tcp", DENIED, 80))
    assert reached == "ok:hello from api.test"
    assert refused_fast(denied), denied


@BOTH_RUNTIMES
def test_the_host_other_sessions_metadata_and_private_ranges_are_refused_at_once(
    server: CoveServer, session_with: Callable[..., str], api: Any
) -> None:
    session_id = session_with()
    other = api.get(f"/v1/sessions/{session_with()}/network").json()["address"]
    host_addresses = ["192.0.2.2", "198.18.0.1", "10.203.0.1"]
    targets = [(address, server.port) for address in host_addresses] + [
        ("127.0.0.1", server.port),  # the session's own loopback: nothing listens there
        (other, 8080),
        ("169.254.169.254", 80),
        ("10.0.0.1", 80),
        ("172.16.0.1", 80),
        ("192.168.1.1", 80),
        ("100.64.0.1", 80),
        ("192.0.2.1", 80),  # outside the operator's allow-list
    ]
    outcomes = probe(
        server,
        session_id,
        *[("tcp", address, port) for address, port in targets],
        ("udp", "169.254.169.254", 53),
    )
    assert all(refused_fast(outcome) for outcome in outcomes), list(
        zip([*targets, "udp"], outcomes, strict=True)
    )

    denied = api.get(f"/v1/sessions/{session_id}/network").json()["denied"]
    assert denied["count"] >= len(targets) - 1, denied
    seen = {(entry["destination"], entry["port"]) for entry in denied["recent"]}
    assert ("169.254.169.254", 80) in seen and ("192.0.2.2", server.port) in seen, seen


@BOTH_RUNTIMES
def test_an_allow_list_by_name_over_http_and_tls(
    server: CoveServer, session_with: Callable[..., str], test_network: TestNetwork, api: Any
) -> None:
    session_id = session_with(ALLOW_LIST)
    upload = api.put(
        f"/v1/sessions/{session_id}/files",
        params={"path": "/tmp/ca.pem"},
        content=test_network.ca_cert.read_bytes(),
    )
    assert upload.status_code in (200, 201), upload.text
    outcomes = probe(
        server,
        session_id,
        ("dns", "api.test", 0),
        ("dns", "denied.test", 0),  # names resolve: the connection is what is judged
        ("http", "http://api.test/", 0),
        ("https", "api.test", 443, "api.test"),
        ("https", "pypi.test", 443, "pypi.test"),
        ("http", "http://denied.test/", 0),
        ("https", "denied.test", 443, "denied.test"),
        ("tcp", DENIED, 80, "api.test"),  # an allowed name on a connection to another address
        ("https", DENIED, 443, "api.test"),
        ("tcp", API, 7),  # no name to judge by: denied by the address rule
    )
    assert outcomes[:5] == ["ok:" + API, "ok:" + DENIED, "ok:hello from api.test", "ok", "ok"], outcomes
    assert all(refused_fast(outcome) for outcome in outcomes[5:]), json.dumps(outcomes)

    recent = api.get(f"/v1/sessions/{session_id}/network").json()["denied"]["recent"]
    assert {"destination": DENIED, "port": 80, "protocol": "tcp", "name": "denied.test"}.items() <= next(
        entry for entry in recent if entry["name"] == "denied.test" and entry["port"] == 80
    ).items()


@BOTH_RUNTIMES
def test_a_denied_cidr_and_a_live_change_take_effect_on_the_next_connection(
    server: CoveServer, session_with: Callable[..., str], api: Any
) -> None:
    session_id = session_with({"deny_out": [f"{DENIED}/32"]})
    assert probe(server, session_id, ("tcp", API, 80), ("tcp", DENIED, 80))[0] == "ok"
    assert refused_fast(probe(server, session_id, ("tcp", DENIED, 80))[0])

    changed = api.put(f"/v1/sessions/{session_id}/network", json={"deny_out": [f"{API}/32"]})
    assert changed.status_code == 200, changed.text
    api_now, denied_now = probe(server, session_id, ("tcp", API, 80), ("tcp", DENIED, 80))
    assert refused_fast(api_now) and denied_now == "ok"

    shut = api.put(f"/v1/sessions/{session_id}/network", json={"mode": "none"})
    assert shut.status_code == 200 and shut.json()["address"] is None, shut.text
    # runc takes the interface away; gVisor's network stack keeps it, refused everything
    connection, name = probe(server, session_id, ("tcp", API, 80), ("dns", "api.test", 0))
    assert refused_fast(connection) and name.startswith("error:"), (connection, name)
    back = api.put(f"/v1/sessions/{session_id}/network", json={"mode": "egress"})
    assert back.status_code == 200 and back.json()["address"], back.text
    assert probe(server, session_id, ("tcp", API, 80)) == ["ok"]


@pytest.mark.parametrize("runtime", ["gvisor"], indirect=True)
def test_a_fork_of_a_gvisor_session_shut_to_none_can_be_opened(
    server: CoveServer, session_with: Callable[..., str], api: Any
) -> None:
    """Only gvisor sessions fork. A copy's network stack is restored with the source's interface, so
    the copy of a shut session is shut on an interface of its own, which it can open."""
    session_id = session_with()
    assert api.put(f"/v1/sessions/{session_id}/network", json={"mode": "none"}).status_code == 200
    fork = api.post(f"/v1/sessions/{session_id}/fork")
    assert fork.status_code == 201, fork.text
    fork_id = fork.json()["session"]["session_id"]
    try:
        assert refused_fast(probe(server, fork_id, ("tcp", API, 80))[0])
        opened = api.put(f"/v1/sessions/{fork_id}/network", json={"mode": "egress"})
        assert opened.status_code == 200 and opened.json()["address"], opened.text
        assert probe(server, fork_id, ("tcp", API, 80)) == ["ok"]
    finally:
        api.delete(f"/v1/sessions/{fork_id}")


@BOTH_RUNTIMES
def test_mode_none_sees_only_loopback(server: CoveServer, session_with: Callable[..., str]) -> None:
    session_id = session_with({"mode": "none"})
    assert interfaces(server, session_id) == ["lo"]
    outcome = probe(server, session_id, ("tcp", API, 80))[0]
    # no route at all: Linux says ENETUNREACH, gVisor's network stack EHOSTUNREACH
    assert outcome.startswith(("error:101:", "error:113:")), outcome


@BOTH_RUNTIMES
def test_pip_downloads_from_a_test_index(server: CoveServer, session_with: Callable[..., str]) -> None:
    session_id = session_with({"allow_out": ["pypi.test"], "deny_out": ["0.0.0.0/0"]})
    result = server.sandbox(
        session_id,
        "cd /tmp && PIP_CONFIG_FILE=/dev/null python3 -m pip download --no-deps --disable-pip-version-check "
        "--index-url http://pypi.test/simple/ --trusted-host pypi.test covetestpkg -d wheels && ls wheels",
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "covetestpkg-1.0-py3-none-any.whl" in result.stdout


@BOTH_RUNTIMES
def test_traffic_shows_in_metrics(server: CoveServer, session_with: Callable[..., str], api: Any) -> None:
    session_id = session_with()
    fetched = server.sandbox(
        session_id, f"curl -sS --max-time 30 -o /dev/null -w '%{{size_download}}' http://{API}/bytes/3000000"
    )
    assert fetched.stdout == "3000000", fetched.stderr
    metrics = api.get(f"/v1/sessions/{session_id}/metrics").json()["metrics"]
    assert metrics["rx_used_kbyte"] >= 3000000 / 1024, metrics


@pytest.fixture(scope="module")
def limited_server() -> Iterator[CoveServer]:
    with scratch_server(egress_max_connections=4, egress_rate_mbit=8, warm_pool=0) as server:
        yield server


@BOTH_RUNTIMES
def test_connection_and_bandwidth_caps(limited_server: CoveServer, runtime: str) -> None:
    with limited_server.client() as client:
        created = client.post("/v1/sessions", json={"runtime": runtime})
        assert created.status_code == 201, created.text
        session_id = created.json()["session"]["session_id"]
        held = r"""
import socket, json
held, outcomes = [], []
for _ in range(6):
    try:
        held.append(socket.create_connection(("198.18.0.11", 7), timeout=10))
        outcomes.append("ok")
    except OSError as error:
        outcomes.append(type(error).__name__)
print(json.dumps(outcomes))
"""
        result = limited_server.sandbox(session_id, f"python3 -c {shlex.quote(held)}")
        assert (
            json.loads(result.stdout) == ["ok"] * 4 + ["ConnectionResetError"] * 2
            or json.loads(result.stdout) == ["ok"] * 4 + ["ConnectionRefusedError"] * 2
        ), result.stdout + result.stderr

        # 2 MB out at 8 Mbit/s takes at least about 2 s: a lower bound, which noise cannot break.
        upload = limited_server.sandbox(
            session_id,
            "head -c 2000000 /dev/zero > /tmp/blob && curl -sS --max-time 60 -o /dev/null "
            "-w '%{time_total}' --data-binary @/tmp/blob http://198.18.0.11/",
        )
        assert upload.returncode == 0, upload.stderr
        assert float(upload.stdout) >= 1.5, upload.stdout
        client.delete(f"/v1/sessions/{session_id}")


@pytest.fixture(scope="module")
def no_egress_server() -> Iterator[CoveServer]:
    with scratch_server(network_egress_allowed=False, warm_pool=0) as server:
        yield server


@BOTH_RUNTIMES
def test_an_operator_can_forbid_egress(no_egress_server: CoveServer, runtime: str) -> None:
    with no_egress_server.client() as client:
        refused = client.post("/v1/sessions", json={"network": {"mode": "egress"}, "runtime": runtime})
        assert refused.status_code == 400 and "mode 'none'" in refused.json()["error"]["message"]
        created = client.post("/v1/sessions", json={"runtime": runtime})
        assert created.status_code == 201, created.text
        session_id = created.json()["session"]["session_id"]
        shown = client.get(f"/v1/sessions/{session_id}/network").json()
        assert (shown["policy"]["mode"], shown["address"]) == ("none", None)
        client.delete(f"/v1/sessions/{session_id}")


@pytest.fixture(scope="module")
def operator_list_server() -> Iterator[CoveServer]:
    with scratch_server(egress_allow=f"{API},pypi.test", warm_pool=0) as server:
        yield server


@BOTH_RUNTIMES
def test_an_operator_allow_list_with_names_binds_every_session(
    operator_list_server: CoveServer, runtime: str
) -> None:
    server = operator_list_server
    with server.client() as client:
        created = client.post("/v1/sessions", json={"network": {"allow_out": [DENIED]}, "runtime": runtime})
        assert created.status_code == 201, created.text
        session_id = created.json()["session"]["session_id"]
        outcomes = probe(
            server,
            session_id,
            ("http", "http://api.test/", 0),  # by the operator's address
            ("http", "http://pypi.test/", 0),  # by the operator's name, through the proxy
            ("http", "http://denied.test/", 0),  # the session's own allow cannot widen the operator's
            ("tcp", PYPI, 80, ""),  # no name asked for: its address alone is outside the list
        )
        assert outcomes[:2] == ["ok:hello from api.test", "ok:hello from pypi.test"], outcomes
        assert all(refused_fast(outcome) for outcome in outcomes[2:]), outcomes
        client.delete(f"/v1/sessions/{session_id}")
