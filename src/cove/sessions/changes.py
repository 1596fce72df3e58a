"""Word that sessions changed, for those watching live (the event stream of api/events.py).

The store calls `note()` after each write to a session's row or labels. With nobody watching that is
one look at an empty set; each watcher is an asyncio event set on its own loop, and reads the
sessions again itself, so nothing here knows tenants or what changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class SessionChanges:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def note(self) -> None:
        """Wake every watcher; safe from any thread."""
        if not self._watchers:
            return
        with self._lock:
            watchers = list(self._watchers)
        for loop, event in watchers:
            with contextlib.suppress(RuntimeError):  # its loop closed
                loop.call_soon_threadsafe(event.set)

    @contextmanager
    def watch(self) -> Iterator[asyncio.Event]:
        """An event set at the next change (clear it, then read): call from the running loop."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._watchers.add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._watchers.discard(entry)
