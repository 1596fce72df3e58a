"""The filesystem tools: read, write, edit, list, search and watch files as the session user.

Their answers are texts in the formats AgentBay's SDK parses (`[DIR] name` listings, `key: value`
file info, `No matches found`, ...). Every OSError becomes a ToolError that names the path, so the
caller learns what went wrong where; writes replace files atomically, so a reader never sees half a
file; reads are bounded, so one call cannot fill the agent's memory.
"""

import base64
import binascii
import contextlib
import difflib
import errno
import fnmatch
import grp
import json
import os
import pwd
import re
import secrets
import shutil
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from . import InvalidArguments, Tool, ToolError
from .file_watch import DirectoryWatch, WatchError

MiB = 1024 * 1024
READ_LIMIT_BYTES = 32 * MiB
"""At most this much file content in one call; more goes in parts, or by the streamed download."""
UTF8_LONGEST = 4
"""Bytes in the longest UTF-8 character."""
SEARCH_LIMIT = 10_000
WATCH_LIMIT = 10_000
"""At most this many folders under a directory that get_file_change watches."""

OS_ERROR_MESSAGES: tuple[tuple[type[OSError], str], ...] = (
    (FileNotFoundError, "no such file or directory: {}"),
    (IsADirectoryError, "{} is a directory, not a file"),
    (NotADirectoryError, "{} is not a directory"),
    (PermissionError, "permission denied: {}"),
    (FileExistsError, "{} already exists"),
)

watches: dict[str, DirectoryWatch] = {}
"""The directories get_file_change watches, by their real path."""
watches_lock = threading.Lock()


def holds_state() -> bool:
    """A watched directory's baseline keeps the agent alive, so no change goes unreported."""
    with watches_lock:
        return bool(watches)


# Helpers shared by the tools.


def resolve(path: str) -> str:
    """`path` made absolute and normalised; a relative path is taken from the user's home directory.

    A NUL is refused here: the system calls would raise ValueError, which no caller expects."""
    if "\0" in path:
        raise InvalidArguments(f"path {path[:200]!r} contains a NUL character")
    return os.path.normpath(os.path.join(os.environ.get("HOME") or "/", path))


def describe(error: OSError, path: str) -> str:
    """What went wrong with `path`, in words a caller can act on."""
    for error_type, message in OS_ERROR_MESSAGES:
        if isinstance(error, error_type):
            return message.format(path)
    return f"{(error.strerror or str(error)).lower()}: {path}"


@contextlib.contextmanager
def os_errors(path: str) -> Iterator[None]:
    """Turn an OSError raised in the block into a ToolError that says what went wrong with `path`."""
    try:
        yield
    except OSError as error:
        raise ToolError(describe(error, path)) from None


def read_bytes(path: str, offset: int, length: int, limit: int) -> bytes:
    """The bytes [offset, offset + length) of the file (length 0: to its end), refused beyond `limit`."""
    too_large = ToolError(
        f"{path}: reading it would pass the limit of {READ_LIMIT_BYTES // MiB} MiB per call; read it in "
        "parts with offset and length, or download it with GET /v1/sessions/{id}/files?path="
    )
    # O_NONBLOCK: opening a FIFO that has no writer must not hang the call.
    with (
        os_errors(path),
        open(path, "rb", opener=lambda name, flags: os.open(name, flags | os.O_NONBLOCK)) as file,
    ):
        info = os.fstat(file.fileno())
        if stat.S_ISFIFO(info.st_mode) or stat.S_ISSOCK(info.st_mode):
            raise ToolError(f"{path} is a pipe or socket, not a file")
        remaining = info.st_size - offset
        if length > limit or (length == 0 and remaining > limit):
            raise too_large
        if offset:
            file.seek(offset)
        data = file.read(length or limit + 1)  # files such as /proc's report size 0: read and see
    if len(data) > limit:
        raise too_large
    return data


def make_directories(path: str) -> None:
    """Create the directory `path` and its missing parents; an existing directory is fine."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ToolError(f"{path} exists and is not a directory")
    with os_errors(path):
        os.makedirs(path, exist_ok=True)


def replace_atomically(path: str, data: bytes) -> None:
    """Write `data` beside the file, then rename it over the file: readers see old or new, never half.

    A replaced file keeps its mode bits; a new one gets the umask's default. Through a symlink, the
    file it points to is replaced and the link stays.
    """
    target = os.path.realpath(path)
    temporary = os.path.join(
        os.path.dirname(target), f".{os.path.basename(target)}.{secrets.token_hex(4)}.tmp"
    )
    with os_errors(path):
        mode = stat.S_IMODE(os.stat(target).st_mode) if os.path.exists(target) else None
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(descriptor, "wb") as file:
                if mode is not None:
                    os.fchmod(file.fileno(), mode)
                file.write(data)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise


def walk(root: str, skip: Callable[[str, str], bool] | None = None) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every entry under `root` with its path relative to `root`, symlinks not followed.

    `skip(name, relative_path)` leaves an entry out and, if it is a directory, everything in it.
    A subdirectory that cannot be read is passed over; `root` itself must be readable.
    """
    with os_errors(root):
        pending = [("", scan(root))]
    while pending:
        directory, entries = pending.pop()
        for entry in entries:
            relative = os.path.join(directory, entry.name)
            if skip is not None and skip(entry.name, relative):
                continue
            yield relative, entry
            if entry.is_dir(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    pending.append((relative, scan(entry.path)))


def scan(directory: str) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as entries:
        return list(entries)


def as_text(data: bytes, format: str) -> str:
    return base64.b64encode(data).decode("ascii") if format == "binary" else data.decode(errors="replace")


def timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


# The tools.


def read_file(arguments: dict[str, Any]) -> str:
    path = resolve(arguments["path"])
    offset, length, format = (
        arguments.get("offset", 0),
        arguments.get("length", 0),
        arguments.get("format", "text"),
    )
    if format == "binary" or (offset == 0 and length == 0):
        return as_text(read_bytes(path, offset, length, READ_LIMIT_BYTES), format)
    return text_part(path, offset, length)


def text_part(path: str, offset: int, length: int) -> str:
    """The characters that start within bytes [offset, offset + length), whole.

    Clients such as AgentBay's SDK read a text file in parts of a fixed number of bytes and join
    the texts; a character cut by a part's edge belongs wholly to the part it starts in, so the
    parts join into exactly the file's text.
    """
    slack = UTF8_LONGEST - 1
    data = read_bytes(path, offset, length + slack if length else 0, READ_LIMIT_BYTES + slack)
    start = 0
    while offset and start < min(slack, len(data)) and is_continuation(data[start]):
        start += 1
    end = length or len(data)
    while end < min(length + slack, len(data)) and is_continuation(data[end]):
        end += 1
    return data[start:end].decode(errors="replace")


def is_continuation(byte: int) -> bool:
    """A UTF-8 byte that continues a character begun before it (0b10xxxxxx)."""
    return byte & 0xC0 == 0x80


def write_file(arguments: dict[str, Any]) -> str:
    path = resolve(arguments["path"])
    content: str = arguments["content"]
    if arguments.get("format") == "binary":
        try:
            data = base64.b64decode(content, validate=True)
        except binascii.Error:
            raise ToolError("content is not valid base64, which format 'binary' needs") from None
    else:
        data = content.encode()
    make_directories(os.path.dirname(path))
    if arguments.get("mode") == "append":
        with os_errors(path), open(path, "ab") as file:
            file.write(data)
        return f"appended {len(data)} bytes to {path}"
    replace_atomically(path, data)
    return f"wrote {len(data)} bytes to {path}"


def list_directory(arguments: dict[str, Any]) -> str:
    path = resolve(arguments["path"])
    if arguments.get("format") == "json":
        return json.dumps(entries_under(path, arguments.get("depth", 1)), ensure_ascii=False)
    with os_errors(path):
        entries = sorted(scan(path), key=lambda entry: entry.name)
        return "\n".join(f"[{'DIR' if entry.is_dir() else 'FILE'}] {entry.name}" for entry in entries)


def entries_under(root: str, depth: int) -> list[dict[str, Any]]:
    """The entries `depth` levels deep under `root` (1: its own entries), described, symlinks not
    followed into; `root` must be a directory."""
    with os_errors(root):
        if not stat.S_ISDIR(os.stat(root).st_mode):
            raise ToolError(f"{root} is not a directory")
    found = []
    for relative, _ in walk(root, skip=lambda name, relative: relative.count(os.sep) >= depth):
        with contextlib.suppress(OSError):  # gone since it was listed
            found.append(entry_info(os.path.join(root, relative)))
    return sorted(found, key=lambda info: info["path"])


def entry_info(path: str) -> dict[str, Any]:
    """One entry described for structured clients: a symlink shows its target's type and size, and is
    marked with is_symlink and symlink_target (a dangling one shows the link itself)."""
    link = os.lstat(path)
    status = link
    target = None
    if stat.S_ISLNK(link.st_mode):
        target = os.readlink(path)
        with contextlib.suppress(OSError):
            status = os.stat(path)
    kind = (
        "dir"
        if stat.S_ISDIR(status.st_mode)
        else "file"
        if stat.S_ISREG(status.st_mode)
        else "symlink"
        if stat.S_ISLNK(status.st_mode)
        else "other"
    )
    return {
        "name": os.path.basename(path) or path,
        "path": path,
        "type": kind,
        "size": status.st_size,
        "mode": stat.S_IMODE(status.st_mode),
        "permissions": stat.filemode(status.st_mode),
        "owner": user_name(status.st_uid),
        "group": group_name(status.st_gid),
        "modified": timestamp(status.st_mtime),
        "is_symlink": target is not None,
        "symlink_target": target,
    }


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def create_directory(arguments: dict[str, Any]) -> str:
    path = resolve(arguments["path"])
    if os.path.isdir(path):
        return f"directory {path} already exists"
    make_directories(path)
    return f"created directory {path}"


def delete_file(arguments: dict[str, Any]) -> str:
    path = resolve(arguments["path"])
    with os_errors(path):
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
        elif arguments.get("recursive"):
            shutil.rmtree(path)
        elif os.listdir(path):
            raise ToolError(f"{path} is a directory that is not empty; pass recursive=true to delete it all")
        else:
            os.rmdir(path)
    return f"deleted {path}"


def move_file(arguments: dict[str, Any]) -> str:
    source, destination = resolve(arguments["source"]), resolve(arguments["destination"])
    with os_errors(source):
        os.lstat(source)
    if os.path.lexists(destination):
        raise ToolError(f"{destination} already exists; delete it first or choose another destination")
    make_directories(os.path.dirname(destination))
    with os_errors(source):
        try:
            os.rename(source, destination)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            shutil.move(source, destination)  # another filesystem: copy, then delete the source
    return f"moved {source} to {destination}"


def edit_file(arguments: dict[str, Any]) -> str:
    path = resolve(arguments["path"])
    try:
        before = read_bytes(path, 0, 0, READ_LIMIT_BYTES).decode()
    except UnicodeDecodeError:
        raise ToolError(f"{path} is not UTF-8 text; edit_file changes text files only") from None
    after = before
    for index, edit in enumerate(arguments["edits"]):
        old: str = edit["oldText"]
        if not old:
            raise ToolError(f"edits[{index}]: oldText is empty; give the text to replace")
        position = after.find(old)
        if position < 0:
            shown = repr(old[:60]) + ("..." if len(old) > 60 else "")
            raise ToolError(f"edits[{index}]: oldText {shown} not found in {path}; nothing was changed")
        after = after[:position] + edit["newText"] + after[position + len(old) :]
    if after != before and not arguments.get("dryRun"):
        replace_atomically(path, after.encode())
    return unified_diff(path, before, after)


def unified_diff(path: str, before: str, after: str) -> str:
    """The change as a unified diff, marking a last line without newline as `diff` does."""
    lines = difflib.unified_diff(split_lines(before), split_lines(after), fromfile=path, tofile=path)
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def split_lines(text: str) -> list[str]:
    """Lines with their "\\n" (unlike str.splitlines, which also splits at \\r, \\f, \\u2028, ...)."""
    return [line for line in re.split(r"(?<=\n)", text) if line]


def get_file_info(arguments: dict[str, Any]) -> str:
    path = resolve(arguments["path"])
    if arguments.get("format") == "json":
        with os_errors(path):
            return json.dumps(entry_info(path), ensure_ascii=False)
    with os_errors(path):
        link = os.lstat(path)
    status = link
    if stat.S_ISLNK(link.st_mode):
        with contextlib.suppress(OSError):  # a dangling symlink: describe the link itself
            status = os.stat(path)
    info = {
        "size": status.st_size,
        # Linux's stat has no birth time; the last status change is the closest it offers.
        "created": timestamp(getattr(status, "st_birthtime", status.st_ctime)),
        "modified": timestamp(status.st_mtime),
        "accessed": timestamp(status.st_atime),
        "isDirectory": str(stat.S_ISDIR(status.st_mode)).lower(),
        "isFile": str(stat.S_ISREG(status.st_mode)).lower(),
        "isSymlink": str(stat.S_ISLNK(link.st_mode)).lower(),
        "permissions": f"{stat.S_IMODE(status.st_mode) & 0o777:03o}",
        "owner": status.st_uid,
    }
    return "\n".join(f"{key}: {value}" for key, value in info.items())


def search_files(arguments: dict[str, Any]) -> str:
    root = resolve(arguments["path"])
    pattern = arguments["pattern"].lower()
    excludes = [p.strip().lower() for p in arguments.get("excludePatterns", "").split(",") if p.strip()]

    wildcard = any(character in pattern for character in "*?[")

    def matches(name: str) -> bool:
        return fnmatch.fnmatchcase(name.lower(), pattern) if wildcard else pattern in name.lower()

    def excluded(name: str, relative: str) -> bool:
        return any(fnmatch.fnmatchcase(n, p) for p in excludes for n in (name.lower(), relative.lower()))

    found: list[str] = []
    for _, entry in walk(root, skip=excluded):
        if matches(entry.name):
            found.append(entry.path)
            if len(found) > SEARCH_LIMIT:
                break
    if not found:
        return "No matches found"
    lines = sorted(found[:SEARCH_LIMIT])
    if len(found) > SEARCH_LIMIT:
        lines.append(f"(list cut at {SEARCH_LIMIT} matches; narrow the pattern or the path)")
    return "\n".join(lines)


def read_multiple_files(arguments: dict[str, Any]) -> str:
    budget = READ_LIMIT_BYTES
    parts: list[str] = []
    for given in arguments["paths"]:
        try:
            data = read_bytes(resolve(given), 0, 0, budget)
        except ToolError as error:
            parts.append(f"{given}: Error - {error}")
            continue
        budget -= len(data)
        parts.append(f"{given}:\n{data.decode(errors='replace')}\n")
    return "\n---\n".join(parts)


def get_file_change(arguments: dict[str, Any]) -> str:
    root = resolve(arguments["path"])
    key = os.path.realpath(root)  # one watch per directory, however its path is spelt
    with watches_lock:
        watch = watches.get(key)
        if watch is None:
            try:
                with os_errors(root):
                    watches[key] = DirectoryWatch(key, WATCH_LIMIT)
            except WatchError as error:
                raise ToolError(f"{root} cannot be watched: {error}") from None
            return "[]"  # the first call starts the watch
        events = watch.changes()
    if key != root:  # reported as the caller spelt the directory
        for event in events:
            event["path"] = root + event["path"][len(key) :]
    return json.dumps(events, ensure_ascii=False)


PATH_ARGUMENT = {"type": "string", "description": "absolute, or relative to the home directory"}
DETAILS_FORMAT = {
    "type": "string",
    "enum": ["text", "json"],
    "description": (
        "default text; json: a JSON object per entry with name, path, type (file, dir, symlink, other), "
        "size, mode, permissions, owner, group, modified, is_symlink, symlink_target"
    ),
}

TOOLS = [
    Tool(
        name="read_file",
        description=(
            "Read a file, whole or the bytes [offset, offset+length), as UTF-8 text or as base64 "
            f"(format 'binary'). At most {READ_LIMIT_BYTES // MiB} MiB per call: read larger files in parts."
        ),
        run=read_file,
        properties={
            "path": PATH_ARGUMENT,
            "offset": {"type": "integer", "minimum": 0, "description": "first byte to read, default 0"},
            "length": {
                "type": "integer",
                "minimum": 0,
                "description": "bytes to read; 0 (default): to the end",
            },
            "format": {"type": "string", "enum": ["text", "binary"], "description": "default text"},
        },
        required=("path",),
    ),
    Tool(
        name="write_file",
        description=(
            "Write a file, creating missing parent directories: replace it whole (atomically, keeping "
            "its permissions) or append to it. With format 'binary' the content is base64."
        ),
        run=write_file,
        properties={
            "path": PATH_ARGUMENT,
            "content": {"type": "string", "description": "the text, or base64 with format 'binary'"},
            "mode": {"type": "string", "enum": ["overwrite", "append"], "description": "default overwrite"},
            "format": {"type": "string", "enum": ["text", "binary"], "description": "default text"},
        },
        required=("path", "content"),
    ),
    Tool(
        name="list_directory",
        description=(
            "List a directory, one entry per line as '[DIR] name' or '[FILE] name', sorted by name "
            "(a symlink to a directory counts as DIR); with format 'json', a JSON array of the entries "
            "down to `depth` levels, sorted by path."
        ),
        run=list_directory,
        properties={
            "path": PATH_ARGUMENT,
            "format": DETAILS_FORMAT,
            "depth": {
                "type": "integer",
                "minimum": 1,
                "description": "levels to descend with format 'json'; default 1, the directory's own entries",
            },
        },
        required=("path",),
    ),
    Tool(
        name="create_directory",
        description="Create a directory and any missing parents; an existing directory is not an error.",
        run=create_directory,
        properties={"path": PATH_ARGUMENT},
        required=("path",),
    ),
    Tool(
        name="delete_file",
        description=(
            "Delete a file, a symlink (never what it points to) or an empty directory; a directory "
            "with contents needs recursive=true."
        ),
        run=delete_file,
        properties={
            "path": PATH_ARGUMENT,
            "recursive": {"type": "boolean", "description": "delete a directory with everything in it"},
        },
        required=("path",),
    ),
    Tool(
        name="move_file",
        description=(
            "Move or rename a file or directory, creating the destination's missing parents. Refuses "
            "to replace an existing destination."
        ),
        run=move_file,
        properties={"source": PATH_ARGUMENT, "destination": PATH_ARGUMENT},
        required=("source", "destination"),
    ),
    Tool(
        name="edit_file",
        description=(
            "Edit a UTF-8 text file: each edit in turn replaces the first occurrence of oldText with "
            "newText. Answers a unified diff; if any oldText is missing, nothing is changed. dryRun "
            "shows the diff without writing."
        ),
        run=edit_file,
        properties={
            "path": PATH_ARGUMENT,
            "edits": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"oldText": {"type": "string"}, "newText": {"type": "string"}},
                    "required": ["oldText", "newText"],
                },
                "description": "replacements, applied in order",
            },
            "dryRun": {"type": "boolean", "description": "only show the diff, default false"},
        },
        required=("path", "edits"),
    ),
    Tool(
        name="get_file_info",
        description=(
            "Describe a file or directory, one 'key: value' per line: size, created, modified, "
            "accessed (ISO 8601 UTC), isDirectory, isFile, isSymlink, permissions (octal), owner (uid); "
            "with format 'json', one JSON object as list_directory's entries."
        ),
        run=get_file_info,
        properties={"path": PATH_ARGUMENT, "format": DETAILS_FORMAT},
        required=("path",),
    ),
    Tool(
        name="search_files",
        description=(
            "Find files and directories under a directory whose name matches a wildcard pattern "
            "(case-insensitive; without * ? [ a name containing it matches). Answers full paths, "
            f"one per line, or 'No matches found'; at most {SEARCH_LIMIT}."
        ),
        run=search_files,
        properties={
            "path": PATH_ARGUMENT,
            "pattern": {"type": "string", "description": "e.g. '*.py', 'test_*', 'config'"},
            "excludePatterns": {
                "type": "string",
                "description": "comma-separated wildcard patterns of names or relative paths to skip",
            },
        },
        required=("path", "pattern"),
    ),
    Tool(
        name="read_multiple_files",
        description=(
            "Read several text files at once: each as '<path>:' and its content, separated by '---'. "
            "A file that cannot be read shows '<path>: Error - <why>'. At most "
            f"{READ_LIMIT_BYTES // MiB} MiB in all."
        ),
        run=read_multiple_files,
        properties={"paths": {"type": "array", "items": {"type": "string"}, "description": "files to read"}},
        required=("paths",),
    ),
    Tool(
        name="get_file_change",
        description=(
            "Report what was created, modified or deleted under a directory since the previous call "
            "for it, as a JSON array of {eventType, path, pathType}; the first call answers [] and "
            f"starts watching. At most {WATCH_LIMIT} entries."
        ),
        run=get_file_change,
        properties={"path": PATH_ARGUMENT},
        required=("path",),
    ),
]
