"""Checks of the test world itself, from this host: the hosts the network tests stand in for the
internet must answer as `testnet.py` says, or every failure downstream would be a false lead."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from tests.network.hosts_server import WHEEL_NAME, build_wheel
from tests.network.testnet import QTYPE_AAAA, RCODE_NXDOMAIN, DnsError, TestNetwork, query_dns, resolve

VENV_PYTHON = Path(__file__).parents[2] / ".venv" / "bin" / "python"


@pytest.fixture
def world(test_network: TestNetwork) -> TestNetwork:
    """The run's test hosts (tests/conftest.py starts them once)."""
    return test_network


def get(address: str, path: str, host: str) -> tuple[int, bytes]:
    """GET over plain HTTP to `address`, naming `host` in the Host header."""
    connection = http.client.HTTPConnection(address, 80, timeout=10)
    connection.request("GET", path, headers={"Host": host})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def test_dns_answers_test_hosts_and_names_under_them(world: TestNetwork) -> None:
    assert resolve("api.test", world.dns) == ["198.18.0.11"]
    assert resolve("WWW.Api.Test.", world.dns) == ["198.18.0.11"]
    assert resolve("pypi.test", world.dns, tcp=True) == ["198.18.0.10"]
    assert query_dns("api.test", world.dns, qtype=QTYPE_AAAA).addresses == []
    assert query_dns("api.test", world.dns, qtype=QTYPE_AAAA).rcode == 0


def test_dns_says_nxdomain_for_other_names(world: TestNetwork) -> None:
    for tcp in (False, True):
        with pytest.raises(DnsError) as raised:
            resolve("unknown.test", world.dns, tcp=tcp)
        assert raised.value.rcode == RCODE_NXDOMAIN


def test_http_names_the_host(world: TestNetwork) -> None:
    assert get(world.hosts["api.test"], "/", "api.test") == (200, b"hello from api.test\n")
    assert get(world.hosts["denied.test"], "/ip", "denied.test") == (200, f"{world.host_address}\n".encode())
    status, body = get(world.hosts["pypi.test"], "/bytes/100000", "pypi.test")
    assert (status, len(body)) == (200, 100000)


def test_https_is_verified_against_the_test_ca(world: TestNetwork) -> None:
    context = world.ssl_context()
    with (
        socket.create_connection((world.hosts["api.test"], 443), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="api.test") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
        response = b"".join(iter(lambda: tls.recv(65536), b""))
    assert response.startswith(b"HTTP/1.1 200")
    assert response.endswith(b"hello from api.test\n")
    with (
        socket.create_connection((world.hosts["api.test"], 443), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
        context.wrap_socket(raw, server_hostname="pypi.test"),
    ):
        pass  # api.test's certificate is not valid for pypi.test


def test_echo(world: TestNetwork) -> None:
    with socket.create_connection((world.echo, 7), timeout=10) as sock:
        sock.sendall(b"ping\n")
        assert sock.recv(100) == b"ping\n"


def test_pip_downloads_the_wheel_from_the_test_index(world: TestNetwork, tmp_path: Path) -> None:
    # Only this index: no pip.conf (extra-index-url, find-links) and no PIP_* or proxy variables.
    env = {
        k: v for k, v in os.environ.items() if not k.upper().startswith("PIP_") and "PROXY" not in k.upper()
    }
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    address = world.hosts["pypi.test"]
    python = str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable)
    download = [python, "-m", "pip", "download", "--no-deps", "--no-cache-dir"]
    download += ["--index-url", f"http://{address}/simple/", "--trusted-host", address]
    subprocess.run([*download, "covetestpkg", "-d", str(tmp_path)], env=env, check=True, timeout=120)
    wheel = tmp_path / WHEEL_NAME
    assert hashlib.sha256(wheel.read_bytes()).digest() == hashlib.sha256(build_wheel()).digest()
    # ...and the wheel installs and imports (pip checks its metadata; no network involved).
    target = tmp_path / "site"
    install = [python, "-m", "pip", "install", "--no-index", "--no-deps", "--target", str(target), str(wheel)]
    subprocess.run(install, env=env, check=True, timeout=120)
    code = "import covetestpkg; print(covetestpkg.GREETING)"
    imported = subprocess.run(
        [python, "-c", code], env=env | {"PYTHONPATH": str(target)}, capture_output=True
    )
    assert imported.stdout == b"hello from covetestpkg\n"


def test_run_executes_inside_the_namespace(world: TestNetwork) -> None:
    result = world.run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"], check=True)
    assert "198.18.0.53/32" in result.stdout
