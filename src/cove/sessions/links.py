"""Links to ports inside a session (AgentBay's `get_link`): their URLs, tokens and checks.

A link is `{link_base_url}/links/{session_id}/{port}/{token}/`, served by a listener of its own
(`link_port`), so pages from a session never share the API's origin. The token is an HMAC-SHA256 of
the session id and port under a secret only the server knows (`DATA_DIR/link_secret`), so a link
needs no API key and cannot be guessed or moved to another session or port; it works while its
session is RUNNING, and dies with the session. The server proxies HTTP and WebSocket through it
(server/link_proxy.py).

The desktop viewer is reached the same way, at `{link_base_url}/desktop/{session_id}/{token}/`: a
page that shows the session's display over VNC (server/api/desktop.py), with a token of its own for
each mode, so a view-only URL cannot be turned into one that controls the desktop.

The session's browser is reached at `{ws base}/cdp/{session_id}/{token}`, a browser-level CDP
WebSocket (server/api/cdp.py) with a token of its own, so a CDP URL opens no port and no desktop.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cove.config import Settings
from cove.errors import CoveError, InvalidArgument, InvalidState, SessionNotFound
from cove.sandbox.agent_client import AgentClient
from cove.server_secret import server_secret
from cove.sessions.manager import SessionManager

FIRST_PORT, LAST_PORT = 30100, 30199
"""The ports a link may point to, as in AgentBay."""
PORT_RANGE = f"port must be an integer in the range [{FIRST_PORT}, {LAST_PORT}]"
PROTOCOL_TYPES = ("https", "http", "wss", "ws")

MAX_REMEMBERED_OWNERS = 10_000
_owners: dict[str, str] = {}
_owners_lock = threading.Lock()


class LinkNotFound(CoveError):
    """A link whose token does not fit: the same answer whether or not its session exists."""

    code = "LinkNotFound"
    http_status = 404

    def __init__(self) -> None:
        super().__init__("no such link; ask for a new one with get_link")


def port_number(text: str) -> int | None:
    """The port `text` writes in ASCII digits, or None (str.isdigit and int() also take "٣" or "²")."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 5 else None


def check_port(raw: Any) -> int:
    """A link's port, from an integer or its decimal text; 400 naming the range otherwise."""
    if isinstance(raw, str) and (number := port_number(raw.strip())) is not None:
        raw = number
    if isinstance(raw, bool) or not isinstance(raw, int) or not FIRST_PORT <= raw <= LAST_PORT:
        raise InvalidArgument(f"invalid port value: {raw}; {PORT_RANGE}")
    return raw


def check_protocol_type(raw: str | None) -> str:
    """`https`/`http` for an HTTP link, `wss`/`ws` for a WebSocket one; none means WebSocket, as in
    AgentBay, where a port alone gives a wss:// link."""
    protocol_type = (raw or "wss").strip().lower()
    if protocol_type not in PROTOCOL_TYPES:
        raise InvalidArgument(f"protocol_type must be one of {', '.join(PROTOCOL_TYPES)}, not {raw!r}")
    return protocol_type


def token(data_dir: Path, session_id: str, port: int) -> str:
    message = f"{session_id}:{port}".encode()
    return hmac.new(server_secret(data_dir), message, hashlib.sha256).hexdigest()


def link_url(manager: SessionManager, tenant_id: str, session_id: str, port: Any, protocol_type: Any) -> str:
    """The URL of `port` in the caller's RUNNING session: http(s):// or ws(s):// after the links' URL."""
    if port is None or port == "":
        raise InvalidArgument(
            f"a port is required: links reach a server in the session on a port in [{FIRST_PORT}, "
            f"{LAST_PORT}] (the browser's CDP URL is cdp_url)"
        )
    number = check_port(port)
    kind = check_protocol_type(protocol_type)
    _check_running(manager, tenant_id, session_id)
    base_url = manager.settings.link_base_url
    secure = urlsplit(base_url).scheme == "https"
    scheme = ("wss" if secure else "ws") if kind in ("wss", "ws") else ("https" if secure else "http")
    address = base_url.split("://", 1)[1]
    secret_token = token(manager.settings.data_dir, session_id, number)
    return f"{scheme}://{address}/links/{session_id}/{number}/{secret_token}/"


def desktop_token(data_dir: Path, session_id: str, interactive: bool) -> str:
    message = f"{session_id}:desktop:{'control' if interactive else 'view'}".encode()
    return hmac.new(server_secret(data_dir), message, hashlib.sha256).hexdigest()


def desktop_url(manager: SessionManager, tenant_id: str, session_id: str, interactive: bool) -> str:
    """The URL of the desktop viewer of the caller's RUNNING session; view-only unless `interactive`."""
    _check_running(manager, tenant_id, session_id)
    return desktop_page(manager.settings, session_id, interactive)


def desktop_page(settings: Settings, session_id: str, interactive: bool) -> str:
    """The viewer's URL, whatever the session's state (it works while the session is RUNNING)."""
    secret_token = desktop_token(settings.data_dir, session_id, interactive)
    return f"{settings.link_base_url}/desktop/{session_id}/{secret_token}/"


def cdp_token(data_dir: Path, session_id: str) -> str:
    message = f"{session_id}:cdp".encode()
    return hmac.new(server_secret(data_dir), message, hashlib.sha256).hexdigest()


def cdp_url(manager: SessionManager, tenant_id: str, session_id: str) -> str:
    """The browser-level CDP WebSocket URL of the caller's RUNNING session (ws://, or wss:// when the
    links are served over https), for Playwright's `connect_over_cdp` and Puppeteer's `connect`."""
    _check_running(manager, tenant_id, session_id)
    base_url = manager.settings.link_base_url
    scheme = "wss" if urlsplit(base_url).scheme == "https" else "ws"
    address = base_url.split("://", 1)[1]
    return f"{scheme}://{address}/cdp/{session_id}/{cdp_token(manager.settings.data_dir, session_id)}"


def _check_running(manager: SessionManager, tenant_id: str, session_id: str) -> None:
    record = manager.get(tenant_id, session_id)
    if record.status != "RUNNING":
        raise InvalidState(f"session {session_id} is {record.status}; links work only in a RUNNING session")


@dataclass(frozen=True)
class LinkTarget:
    """What a good link leads to: the session's agent, the port, and the session's owner."""

    agent: AgentClient
    port: int
    tenant_id: str


def open_link(manager: SessionManager, session_id: str, port: str, given_token: str) -> LinkTarget:
    """Where the link leads, once its token is checked and its session found RUNNING.

    A token that does not fit answers LinkNotFound (404) before anything else is looked at.
    """
    number = port_number(port) or 0
    expected = token(manager.settings.data_dir, session_id, number)
    if not FIRST_PORT <= number <= LAST_PORT or not hmac.compare_digest(
        expected.encode(), given_token.encode(errors="surrogateescape")
    ):
        raise LinkNotFound()
    tenant_id = _owner(manager, session_id)
    return LinkTarget(_running_agent(manager, tenant_id, session_id), number, tenant_id)


@dataclass(frozen=True)
class DesktopTarget:
    """What a good desktop viewer URL leads to: the session's agent, and whether it may control."""

    agent: AgentClient
    interactive: bool


def open_desktop(manager: SessionManager, session_id: str, given_token: str) -> DesktopTarget:
    """The desktop a viewer URL leads to, once its token is checked (LinkNotFound otherwise, first)."""
    given = given_token.encode(errors="surrogateescape")
    for interactive in (False, True):
        expected = desktop_token(manager.settings.data_dir, session_id, interactive)
        if hmac.compare_digest(expected.encode(), given):
            tenant_id = _owner(manager, session_id)
            return DesktopTarget(_running_agent(manager, tenant_id, session_id), interactive)
    raise LinkNotFound()


def open_cdp(manager: SessionManager, session_id: str, given_token: str) -> tuple[str, AgentClient]:
    """The owner and agent of the session a CDP URL leads to, once its token is checked
    (LinkNotFound otherwise, first)."""
    return _open_by_token(manager, session_id, cdp_token(manager.settings.data_dir, session_id), given_token)


def sandbox_token(data_dir: Path, session_id: str) -> str:
    """The access token of a session's E2B envd facade (E2B's envdAccessToken)."""
    message = f"{session_id}:e2b-envd".encode()
    return hmac.new(server_secret(data_dir), message, hashlib.sha256).hexdigest()


def open_sandbox(manager: SessionManager, session_id: str, given_token: str) -> tuple[str, AgentClient]:
    """The owner and agent of the session an E2B access token is for (LinkNotFound otherwise, first)."""
    expected = sandbox_token(manager.settings.data_dir, session_id)
    return _open_by_token(manager, session_id, expected, given_token)


def open_public_port(manager: SessionManager, session_id: str) -> tuple[str, AgentClient]:
    """The owner and agent of a RUNNING session whose ports are reached with no token: an E2B
    sandbox's public ports, for which the caller has checked the sandbox id (server/api/e2b/ids.py)."""
    tenant_id = _owner(manager, session_id)
    return tenant_id, _running_agent(manager, tenant_id, session_id)


def _open_by_token(
    manager: SessionManager, session_id: str, expected: str, given_token: str
) -> tuple[str, AgentClient]:
    if not hmac.compare_digest(expected.encode(), given_token.encode(errors="surrogateescape")):
        raise LinkNotFound()
    tenant_id = _owner(manager, session_id)
    return tenant_id, _running_agent(manager, tenant_id, session_id)


def _running_agent(manager: SessionManager, tenant_id: str, session_id: str) -> AgentClient:
    """The session's agent, through the manager's own check that it is RUNNING, as for any use."""
    try:
        return manager.agent(tenant_id, session_id)
    except (InvalidState, SessionNotFound):
        record = manager.store.get_session(session_id)
        if record is None:
            raise LinkNotFound() from None
        advice = "; resume it first" if record.status in ("PAUSED", "PAUSING") else ""
        raise InvalidState(
            f"session {session_id} is {record.status}; its links work only while it is RUNNING{advice}"
        ) from None


def _owner(manager: SessionManager, session_id: str) -> str:
    """The session's tenant, which never changes: remembered, so a request reads the database once."""
    with _owners_lock:
        tenant_id = _owners.get(session_id)
    if tenant_id is None:
        record = manager.store.get_session(session_id)
        if record is None:
            raise LinkNotFound()
        tenant_id = record.tenant_id
        with _owners_lock:
            if len(_owners) >= MAX_REMEMBERED_OWNERS:
                _owners.clear()
            _owners[session_id] = tenant_id
    return tenant_id
