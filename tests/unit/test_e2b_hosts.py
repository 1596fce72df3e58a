"""E2B's host routing: `{port}-{sandbox id}.{domain}` parsed as E2B's proxy does, sandbox ids that
name a session and carry a tag only the server can make, and the certificate `cove e2b-cert` makes,
checked by a real TLS handshake."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cove.server.api.e2b import ids
from cove.server.api.e2b.routing import SandboxTarget, header_target, host_name, host_target
from cove.server.certificates import base_domain, make_certificates


@pytest.mark.parametrize(
    ("host", "domain", "target"),
    [
        ("49983-abc123.cove.localhost:8443", "cove.localhost:8443", SandboxTarget("abc123", 49983)),
        ("3000-abc123.cove.localhost", "cove.localhost:8443", SandboxTarget("abc123", 3000)),
        ("49999-ABC123.Cove.Localhost:9000", "cove.localhost", SandboxTarget("abc123", 49999)),
        ("8080-x1.sandboxes.example.com", "sandboxes.example.com", SandboxTarget("x1", 8080)),
        ("api.cove.localhost:8443", "cove.localhost:8443", None),
        ("cove.localhost:8443", "cove.localhost:8443", None),
        ("127.0.0.1:8443", "cove.localhost:8443", None),
        ("3000-abc.other.localhost", "cove.localhost", None),
        ("3000-abc.xcove.localhost", "cove.localhost", None),
        ("3000-session-abc.cove.localhost", "cove.localhost", None),
        ("abc-123.cove.localhost", "cove.localhost", None),
        ("70000-abc.cove.localhost", "cove.localhost", None),
        ("0-abc.cove.localhost", "cove.localhost", None),
        ("3000-.cove.localhost", "cove.localhost", None),
        ("a.3000-abc.cove.localhost", "cove.localhost", None),
        ("3000-abc.cove.localhost", "", None),
    ],
)
def test_host_target(host: str, domain: str, target: SandboxTarget | None) -> None:
    assert host_target(host, domain) == target


def test_host_name() -> None:
    assert host_name("Api.Cove.Localhost:8443") == "api.cove.localhost"
    assert host_name("[::1]:8443") == "[::1]"
    assert host_name("example.com") == "example.com"


@given(st.text(max_size=80), st.sampled_from(["cove.localhost", "cove.localhost:8443", "a.b.c"]))
def test_host_target_takes_any_text(host: str, domain: str) -> None:
    found = host_target(host, domain)
    if found is not None:
        assert 0 < found.port < 65536
        assert ids.SANDBOX_ID.fullmatch(found.sandbox_id)
        assert host_name(host) == f"{found.port}-{found.sandbox_id}.{host_name(domain)}"


def test_header_target() -> None:
    assert header_target({}) is None
    assert header_target({b"e2b-sandbox-id": b"abc"}) == SandboxTarget("abc", 49983)
    assert header_target({b"e2b-sandbox-id": b"abc", b"e2b-sandbox-port": b"3000"}) == SandboxTarget(
        "abc", 3000
    )
    assert header_target({b"e2b-sandbox-id": b"abc", b"e2b-sandbox-port": b"http"}) == SandboxTarget("abc", 0)


def test_sandbox_ids(tmp_path: Path) -> None:
    session_id = "session-0123456789abcdefg"
    sandbox_id = ids.sandbox_id(tmp_path, session_id)
    assert ids.SANDBOX_ID.fullmatch(sandbox_id) and "-" not in sandbox_id
    assert sandbox_id.startswith("0123456789abcdefg")
    assert ids.session_of(tmp_path, sandbox_id) == session_id
    assert ids.sandbox_id(tmp_path, session_id) == sandbox_id  # the same every time
    assert host_target(f"3000-{sandbox_id}.cove.localhost", "cove.localhost") == SandboxTarget(
        sandbox_id, 3000
    )

    tampered = sandbox_id[:-1] + ("a" if sandbox_id[-1] != "a" else "b")
    assert ids.session_of(tmp_path, tampered) is None
    assert ids.session_of(tmp_path, "0123456789abcdefg") is None  # the session id without its tag
    assert ids.session_of(tmp_path, session_id) is None
    assert ids.session_of(tmp_path, sandbox_id.upper()) is None
    other_server = tmp_path / "other"
    other_server.mkdir()
    assert ids.session_of(other_server, sandbox_id) is None

    assert ids.session_named(tmp_path, sandbox_id) == session_id
    assert ids.session_named(tmp_path, session_id) == session_id


def test_base_domain() -> None:
    assert base_domain("Cove.Localhost:8443") == "cove.localhost"
    for wrong in ("localhost", "", "a..b", "-a.b", "a_b.c"):
        with pytest.raises(ValueError, match="two labels"):
            base_domain(wrong)


def _handshake(certificate: Path, key: Path, bundle: Path, server_name: str) -> str:
    """A TLS handshake on loopback, the client trusting `bundle` and checking `server_name`."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(certificate, key)
    client_context = ssl.create_default_context(cafile=str(bundle))
    client_context.verify_flags |= ssl.VERIFY_X509_STRICT
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            connection, _ = listener.accept()
            try:
                with server_context.wrap_socket(connection, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port)) as raw,
                client_context.wrap_socket(raw, server_hostname=server_name) as tls,
            ):
                return tls.recv(2).decode()
        finally:
            thread.join(5)


def test_certificates(tmp_path: Path) -> None:
    files = make_certificates(tmp_path, "cove.localhost:8443")
    assert files.folder == tmp_path / "tls"
    assert files.key.stat().st_mode & 0o777 == 0o600
    assert files.ca_key.stat().st_mode & 0o777 == 0o600
    for name in (
        "49983-abc123.cove.localhost",
        "api.cove.localhost",
        "cove.localhost",
        "localhost",
        "127.0.0.1",
    ):
        assert _handshake(files.certificate, files.key, files.bundle, name) == "ok"
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(files.certificate, files.key, files.bundle, "a.b.cove.localhost")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(files.certificate, files.key, files.bundle, "3000-abc.example.com")
    bundle = files.bundle.read_text()
    assert bundle.endswith(files.ca.read_text()) and bundle.count("BEGIN CERTIFICATE") > 1

    ca = files.ca.read_bytes()
    again = make_certificates(tmp_path, "sandboxes.example.test")
    assert again.ca.read_bytes() == ca  # the CA is kept; clients' bundles stay valid
    assert _handshake(again.certificate, again.key, again.bundle, "3000-x.sandboxes.example.test") == "ok"
