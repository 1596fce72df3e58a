"""envd's directory watchers (CreateWatcher, GetWatcherEvents, RemoveWatcher, WatchDir) on the
agent's inotify watch (get_file_change, agent/tools/file_watch.py).

The agent keeps one watch per directory and hands each change to whoever polls it first, while E2B
lets several watchers watch the same directory. So the server keeps E2B's watchers, and every poll
of a directory hands its changes to each watcher of that directory.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cove.server.api.e2b.connect import ConnectError, Message

EVENT_TYPES = {"create": "EVENT_TYPE_CREATE", "modify": "EVENT_TYPE_WRITE", "delete": "EVENT_TYPE_REMOVE"}
MAX_WATCHERS_PER_SESSION = 64
MAX_KEPT_EVENTS = 10_000
"""Events a watcher keeps until it is polled; older ones are dropped first."""


@dataclass
class Watcher:
    session_id: str
    root: str
    """The watched directory's absolute path, as the agent reports changes under it."""
    recursive: bool
    events: deque[Message] = field(default_factory=lambda: deque(maxlen=MAX_KEPT_EVENTS))

    def take(self, change: dict[str, Any]) -> None:
        name = os.path.relpath(change["path"], self.root)
        kind = EVENT_TYPES.get(change["eventType"])
        if kind and not name.startswith("..") and (self.recursive or "/" not in name):
            self.events.append({"name": name, "type": kind})

    def drain(self) -> list[Message]:
        events = list(self.events)
        self.events.clear()
        return events


class Watchers:
    """The E2B watchers of every session the server serves, by id."""

    def __init__(self) -> None:
        self.by_id: dict[str, Watcher] = {}

    def add(self, session_id: str, root: str, recursive: bool) -> str:
        watching = sum(watcher.session_id == session_id for watcher in self.by_id.values())
        if watching >= MAX_WATCHERS_PER_SESSION:
            raise ConnectError(
                "resource_exhausted", f"a sandbox has at most {MAX_WATCHERS_PER_SESSION} watchers; stop one"
            )
        watcher_id = uuid.uuid4().hex
        self.by_id[watcher_id] = Watcher(session_id, root, recursive)
        return watcher_id

    def get(self, session_id: str, watcher_id: Any) -> Watcher:
        watcher = self.by_id.get(watcher_id) if isinstance(watcher_id, str) else None
        if watcher is None or watcher.session_id != session_id:
            raise ConnectError("not_found", f"watcher {watcher_id} not found")
        return watcher

    def remove(self, watcher_id: str) -> None:
        self.by_id.pop(watcher_id, None)

    def deliver(self, session_id: str, root: str, changes: list[dict[str, Any]]) -> None:
        """A poll's changes under `root`, to every watcher of it."""
        for watcher in self.by_id.values():
            if watcher.session_id == session_id and watcher.root == root:
                for change in changes:
                    watcher.take(change)
