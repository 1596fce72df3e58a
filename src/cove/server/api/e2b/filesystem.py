"""envd's `filesystem.Filesystem` service on the agent's file tools (agent/tools/files.py)."""

from __future__ import annotations

from typing import Any

from cove.server.api.e2b.connect import ConnectError, Message
from cove.server.api.e2b.envd import Sandbox, Unary

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


UNARY: dict[str, Unary] = {
    "filesystem.Filesystem/Stat": stat,
    "filesystem.Filesystem/ListDir": list_dir,
    "filesystem.Filesystem/MakeDir": make_dir,
    "filesystem.Filesystem/Move": move,
    "filesystem.Filesystem/Remove": remove,
}
