"""E2B sandbox ids: how a Cove session is named to E2B's SDK, and found again from that name.

E2B's hosts are `{port}-{sandbox id}.{domain}`, split on `-`, so a sandbox id is `[a-z0-9]+`. A
Cove session id is `session-` and 17 such characters. The sandbox id is those 17 characters and a
tag of `TAG_CHARS` more: an HMAC of the session id under the server's secret. The session is then
found without a lookup (drop the tag, put the prefix back), and the id is a credential, as in E2B,
where whoever knows a sandbox's id reaches its public ports: the session id alone, which a link
URL shows, is not enough to make it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from cove.server_secret import server_secret

SESSION_PREFIX = "session-"
TAG_CHARS = 16
"""About 82 bits: not to be guessed, even by one who knows the session id."""
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
SANDBOX_ID = re.compile(r"[a-z0-9]+")


def _tag(data_dir: Path, session_id: str) -> str:
    digest = hmac.new(server_secret(data_dir), f"{session_id}:e2b-id".encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest[:16])
    characters = []
    for _ in range(TAG_CHARS):
        number, digit = divmod(number, len(_DIGITS))
        characters.append(_DIGITS[digit])
    return "".join(characters)


def sandbox_id(data_dir: Path, session_id: str) -> str:
    """The E2B sandbox id of a session."""
    return session_id.removeprefix(SESSION_PREFIX) + _tag(data_dir, session_id)


def session_of(data_dir: Path, given: str) -> str | None:
    """The session a sandbox id names, or None if it is not one this server gave (its tag does not
    fit, or it is not `[a-z0-9]+`)."""
    if len(given) <= TAG_CHARS or not SANDBOX_ID.fullmatch(given):
        return None
    session_id = SESSION_PREFIX + given[:-TAG_CHARS]
    expected = _tag(data_dir, session_id)
    return session_id if hmac.compare_digest(expected, given[-TAG_CHARS:]) else None


def session_named(data_dir: Path, given: str) -> str:
    """The session a sandbox id names, or `given` itself, for callers who also take Cove's own
    session ids (the API, where the key decides; envd, where the access token does). An id that
    names none is returned as it is, to be found nowhere."""
    return session_of(data_dir, given) or given
