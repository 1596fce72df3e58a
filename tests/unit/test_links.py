"""Links without a sandbox: ports, tokens and their secret, and what the proxy passes on."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cove import server_secret
from cove.errors import InvalidArgument
from cove.server.link_proxy import Upstream, forwarded_headers, response_headers, split_target
from cove.sessions import links

RANGE = "port must be an integer in the range [30100, 30199]"


@pytest.mark.parametrize("raw", [30100, 30199, "30150", " 30100 "])
def test_ports_in_the_range(raw: object) -> None:
    assert links.FIRST_PORT <= links.check_port(raw) <= links.LAST_PORT


@pytest.mark.parametrize("raw", [8080, 30099, 30200, -30100, "http", "", 30100.0, True, None])
def test_ports_outside_the_range_name_it(raw: object) -> None:
    with pytest.raises(InvalidArgument, match=RANGE.replace("[", r"\[").replace("]", r"\]")):
        links.check_port(raw)


def test_protocol_types() -> None:
    assert [links.check_protocol_type(raw) for raw in ("https", "HTTP", "ws", None)] == [
        "https",
        "http",
        "ws",
        "wss",
    ]
    with pytest.raises(InvalidArgument, match="protocol_type"):
        links.check_protocol_type("ftp")


def test_the_secret_is_private_made_once_and_kept(tmp_path: Path) -> None:
    first = links.token(tmp_path, "session-a", 30100)
    secret_file = tmp_path / server_secret.SECRET_FILE
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert [path.name for path in tmp_path.iterdir()] == [server_secret.SECRET_FILE], (
        "no temporary file is left"
    )
    server_secret._secrets.clear()  # as after a restart: read back from the file
    assert links.token(tmp_path, "session-a", 30100) == first
    assert (
        len({first, links.token(tmp_path, "session-b", 30100), links.token(tmp_path, "session-a", 30101)})
        == 3
    )


def test_another_server_has_other_tokens(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    assert links.token(tmp_path / "one", "session-a", 30100) != links.token(
        tmp_path / "two", "session-a", 30100
    )


@given(st.text(alphabet="abc/%?=&2F", max_size=30), st.binary(max_size=20))
def test_the_target_is_what_follows_the_token(rest: str, query: bytes) -> None:
    raw = b"/links/session-a/30100/" + b"f" * 64 + b"/" + rest.encode()
    target = split_target(raw, query)
    assert target.startswith(b"/" + rest.encode())
    assert target == b"/" + rest.encode() + (b"?" + query if query else b"")


def test_forwarded_headers() -> None:
    upstream = Upstream(
        port=30100, target=b"/", prefix="/links/s/30100/t", cove_authorizations=frozenset({b"Bearer KEY"})
    )
    sent = [
        (b"host", b"cove.example:9000"),
        (b"connection", b"keep-alive, x-private"),
        (b"x-private", b"hop"),
        (b"keep-alive", b"timeout=5"),
        (b"transfer-encoding", b"chunked"),
        (b"x-forwarded-for", b"spoofed"),
        (b"authorization", b"Bearer KEY"),
        (b"cookie", b"a=1"),
        (b"Accept", b"*/*"),
    ]
    got = dict(forwarded_headers(sent, upstream, "10.0.0.1", "https"))
    assert got == {
        b"cookie": b"a=1",
        b"accept": b"*/*",
        b"host": b"localhost:30100",
        b"x-forwarded-host": b"cove.example:9000",
        b"x-forwarded-proto": b"https",
        b"x-forwarded-for": b"10.0.0.1",
        b"x-forwarded-prefix": b"/links/s/30100/t",
    }
    other_key = forwarded_headers([(b"authorization", b"Bearer app")], upstream, "", "http")
    assert (b"authorization", b"Bearer app") in other_key


def test_response_headers_drop_hop_by_hop_ones_and_keep_repeats() -> None:
    answered = [
        (b"content-type", b"text/plain"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2; Path=/; Domain=example.com; HttpOnly"),
        (b"connection", b"close"),
        (b"transfer-encoding", b"chunked"),
        (b"service-worker-allowed", b"/"),
    ]
    assert response_headers(answered, "/links/s/30100/t") == [
        (b"content-type", b"text/plain"),
        (b"set-cookie", b"a=1; Path=/links/s/30100/t"),
        (b"set-cookie", b"b=2; HttpOnly; Path=/links/s/30100/t"),
    ]
