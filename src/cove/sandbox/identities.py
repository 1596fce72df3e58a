"""Each session's own host identity: the uid and gid its user's processes and files have on the host.

The kernel keeps per-user counters that no cgroup covers (inotify instances and watches, keys,
RLIMIT_NPROC, user namespaces): were every sandbox user the same host uid, one session could use up
those counters for all. So a sandbox's uid 1000, the only identity anything in it runs as, maps to
a host uid no other live sandbox has. The image's other owners (root, system users) keep one shared
mapping, so one image serves every session unchanged; nothing runs as them, and sessions cannot
become them (no capabilities, no setuid files).

Claims are files in a registry folder shared by every Cove server on the host, made under a lock,
each naming the session folder it belongs to; a claim whose folder is gone is free again. A
session's mapping is also written in its config.json, which stays the truth for that session.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from cove.errors import CapacityExceeded

DEFAULT_IDENTITY_REGISTRY = Path("/run/cove/identities")
FIRST_SESSION_UID = 1_000_000
"""Host uids from here on go to sessions, far above those of the host's users and the image range."""
SESSION_UIDS = 1_000_000
"""How many sessions can hold an identity at once, on the whole host."""


class SessionIdentities:
    """Allocates, records and frees sessions' host uids (used for the gid as well)."""

    def __init__(
        self,
        registry: Path,
        first: int = FIRST_SESSION_UID,
        count: int = SESSION_UIDS,
        what: str = "session identities",
    ) -> None:
        """`what` names the numbers in errors: the same registry hands out sessions' addresses."""
        self.registry = registry
        self.what = what
        self.first = first
        self.count = count
        registry.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._next = first

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.registry / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _owner(self, uid: int) -> Path | None:
        try:
            return Path((self.registry / str(uid)).read_text())
        except FileNotFoundError:
            return None

    def _write(self, uid: int, owner: Path) -> None:
        claim = self.registry / str(uid)
        temporary = claim.with_name(f".{uid}.tmp")
        temporary.write_text(str(owner))
        temporary.replace(claim)

    def claim(self, owner: Path) -> int:
        """A uid no live session holds, recorded as `owner`'s (the session's folder, which must exist)."""
        with self._locked():
            for step in range(self.count):
                uid = self.first + (self._next - self.first + step) % self.count
                holder = self._owner(uid)
                if holder is None or not holder.exists():
                    self._write(uid, owner)
                    self._next = uid + 1
                    return uid
        raise CapacityExceeded(f"all {self.count} {self.what} of this host are in use")

    def keep(self, uid: int, owner: Path) -> bool:
        """Record `uid` as `owner`'s again (at start-up, after a reboot emptied the registry);
        False when another live session holds it."""
        with self._locked():
            holder = self._owner(uid)
            if holder is not None and holder != owner and holder.exists():
                return False
            self._write(uid, owner)
            return True

    def release(self, uid: int, owner: Path) -> None:
        """Free `uid` if `owner` still holds it."""
        with self._locked():
            if self._owner(uid) == owner:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.registry / str(uid))
