"""envd's `filesystem.Filesystem` service on the agent's file tools (agent/tools/files.py), its
watchers on the agent's directory watch (watchers.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from cove.server.api.e2b.connect import ConnectError, Message
from cove.server.api.e2b.envd import Sandbox, Streaming, Unary

WATCH_POLL_S = 0.25
"""How often a WatchDir stream asks the agent for changes."""
KEEPALIVE_S = 30.0

FILE_TYPES = {"file": "FILE_TYPE_FILE", "dir": "FILE_TYPE_DIRECTORY", "symlink": "FILE_TYPE_SYMLINK"}


def entry_info(entry: dict[str, Any]) -> Message:
    """An agent's entry (list_directory's format json) as envd's EntryInfo."""
    info: Message = {
        "name": entry["name"],
        "type": FILE_TYPES.get(entry["type"], "FILE_TYPE_UNSPECIFIED"),
        "path": entry["path"],
        "size": str(entry["size"]),
        "mode": entry["mode"],
        "permissions": entry["permissions"],
        "owner": entry["owner"],
        "group": entry["group"],
        "modifiedTime": entry["modified"],
        "isSymlink": entry["is_symlink"],
    }
    if entry["symlink_target"] is not None:
        info["symlinkTarget"] = entry["symlink_target"]
    return info


def _path(message: Message, name: str = "path") -> str:
    value = message.get(name)
    if not isinstance(value, str) or not value:
        raise ConnectError("invalid_argument", f"{name} is required")
    return value


async def _entry(target: Sandbox, path: str) -> Message:
    return entry_info(await target.tool("get_file_info", {"path": path, "format": "json"}))


async def stat(target: Sandbox, message: Message) -> Message:
    return {"entry": await _entry(target, _path(message))}


async def list_dir(target: Sandbox, message: Message) -> Message:
    depth = message.get("depth") or 1
    arguments = {"path": _path(message), "format": "json", "depth": depth}
    entries = [entry_info(entry) for entry in await target.tool("list_directory", arguments)]
    return {"entries": [entry for entry in entries if entry["type"] != "FILE_TYPE_UNSPECIFIED"]}


async def make_dir(target: Sandbox, message: Message) -> Message:
    path = _path(message)
    try:
        await target.tool("get_file_info", {"path": path})
    except ConnectError as error:
        if error.code != "not_found":
            raise
    else:
        raise ConnectError("already_exists", f"{path} already exists")
    await target.tool("create_directory", {"path": path})
    return {"entry": await _entry(target, path)}


async def move(target: Sandbox, message: Message) -> Message:
    destination = _path(message, "destination")
    await target.tool("move_file", {"source": _path(message, "source"), "destination": destination})
    return {"entry": await _entry(target, destination)}


async def remove(target: Sandbox, message: Message) -> Message:
    """As envd's RemoveAll: a path that is not there is not an error."""
    try:
        await target.tool("delete_file", {"path": _path(message), "recursive": True})
    except ConnectError as error:
        if error.code != "not_found":
            raise
    return {}


async def _poll(target: Sandbox, root: str) -> None:
    """The agent's changes under `root` since its last poll, to every watcher of it."""
    changes = await target.tool("get_file_change", {"path": root})
    target.watchers.deliver(target.session_id, root, changes)


async def _watched_root(target: Sandbox, message: Message) -> str:
    """The directory's absolute path, once the agent watches it."""
    entry = await target.tool("get_file_info", {"path": _path(message), "format": "json"})
    if entry["type"] != "dir":
        raise ConnectError("invalid_argument", f"{entry['path']} is not a directory")
    # the first poll starts the agent's watch; a later one hands what it saw to the watchers so far
    await _poll(target, entry["path"])
    return str(entry["path"])


async def create_watcher(target: Sandbox, message: Message) -> Message:
    root = await _watched_root(target, message)
    return {"watcherId": target.watchers.add(target.session_id, root, bool(message.get("recursive")))}


async def get_watcher_events(target: Sandbox, message: Message) -> Message:
    watcher = target.watchers.get(target.session_id, message.get("watcherId"))
    await _poll(target, watcher.root)
    return {"events": watcher.drain()}


async def remove_watcher(target: Sandbox, message: Message) -> Message:
    target.watchers.get(target.session_id, message.get("watcherId"))
    target.watchers.remove(message["watcherId"])
    return {}


async def watch_dir(target: Sandbox, message: Message) -> AsyncIterator[Message]:
    """start, then each change as the agent's watch sees it, until the client goes."""
    root = await _watched_root(target, message)
    watcher_id = target.watchers.add(target.session_id, root, bool(message.get("recursive")))
    watcher = target.watchers.get(target.session_id, watcher_id)
    try:
        yield {"start": {}}
        quiet_s = 0.0
        while True:
            await asyncio.sleep(WATCH_POLL_S)
            await _poll(target, root)
            events = watcher.drain()
            for event in events:
                yield {"filesystem": event}
            quiet_s = 0.0 if events else quiet_s + WATCH_POLL_S
            if quiet_s >= KEEPALIVE_S:
                yield {"keepalive": {}}
                quiet_s = 0.0
    finally:
        target.watchers.remove(watcher_id)


STREAMING: dict[str, Streaming] = {"filesystem.Filesystem/WatchDir": watch_dir}
UNARY: dict[str, Unary] = {
    "filesystem.Filesystem/CreateWatcher": create_watcher,
    "filesystem.Filesystem/GetWatcherEvents": get_watcher_events,
    "filesystem.Filesystem/RemoveWatcher": remove_watcher,
    "filesystem.Filesystem/Stat": stat,
    "filesystem.Filesystem/ListDir": list_dir,
    "filesystem.Filesystem/MakeDir": make_dir,
    "filesystem.Filesystem/Move": move,
    "filesystem.Filesystem/Remove": remove,
}
