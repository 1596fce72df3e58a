"""`session.file_system` on real sandboxes: every method, sync and async, and each bad input."""

from __future__ import annotations

import asyncio
import threading

from cove import AsyncSession, FileChangeEvent, Session
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import CoveServer


def in_sandbox(server: CoveServer, session: Session, script: str) -> str:
    result = server.sandbox(session.session_id, script)
    assert result.returncode == 0, result.stderr
    return result.stdout


@BOTH_RUNTIMES
def test_write_read_and_append(session: Session, server: CoveServer) -> None:
    fs = session.file_system
    assert fs.write_file("/tmp/deep/er/note.txt", "héllo\n").success, "parents are created"
    assert fs.write("/tmp/deep/er/note.txt", "more\n", mode="append").success
    assert in_sandbox(server, session, "cat /tmp/deep/er/note.txt; stat -c %U /tmp/deep/er/note.txt") == (
        "héllo\nmore\nuser\n"
    ), "written as the session user"
    read = fs.read_file("/tmp/deep/er/note.txt")
    assert read.success and read.content == "héllo\nmore\n" and read.request_id
    assert session.fs.read("deep.txt").error_message, "relative paths are in the home directory"


def test_binary_files(session: Session, server: CoveServer) -> None:
    data = bytes(range(256)) * 4
    assert session.files.write_file("/tmp/blob.bin", data).success
    assert (
        in_sandbox(server, session, "sha256sum < /tmp/blob.bin").split()[0]
        == __import__("hashlib").sha256(data).hexdigest()
    )
    read = session.file_system.read_file("/tmp/blob.bin", format="bytes")
    assert read.success and read.content == data and read.size == len(data)


@BOTH_RUNTIMES
def test_directories_info_and_listing(session: Session) -> None:
    fs = session.file_system
    assert fs.create_directory("/tmp/tree/a/b").success
    assert fs.create_directory("/tmp/tree/a/b").success, "an existing directory is fine"
    assert fs.write_file("/tmp/tree/a/file.txt", "12345").success
    listed = fs.list_directory("/tmp/tree/a")
    assert [(e.name, e.is_directory, e.is_file) for e in listed.entries] == [
        ("b", True, False),
        ("file.txt", False, True),
    ]
    assert [e.name for e in fs.ls("/tmp/tree").entries] == ["a"]
    info = fs.get_file_info("/tmp/tree/a/file.txt")
    assert info.success and info.size == 5 and info.is_file and not info.is_directory
    assert info.permissions == "644" and "modified" in info.file_info
    assert fs.get_file_info("/tmp/tree").is_directory


def test_move_edit_search_and_delete(session: Session) -> None:
    fs = session.file_system
    fs.write_file("/tmp/work/src/main.py", "print('hello')\nx = 1\n")
    fs.write_file("/tmp/work/src/util.py", "")
    fs.write_file("/tmp/work/build/main.py", "")
    assert fs.move_file("/tmp/work/src/util.py", "/tmp/work/lib/helpers.py").success
    assert fs.read_file("/tmp/work/lib/helpers.py").success
    assert not fs.read_file("/tmp/work/src/util.py").success

    edits = [{"oldText": "hello", "newText": "bye"}, {"oldText": "x = 1", "newText": "x = 2"}]
    assert fs.edit_file("/tmp/work/src/main.py", edits, dry_run=True).success
    assert fs.read_file("/tmp/work/src/main.py").content == "print('hello')\nx = 1\n", (
        "a dry run writes nothing"
    )
    assert fs.edit_file("/tmp/work/src/main.py", edits).success
    assert fs.read_file("/tmp/work/src/main.py").content == "print('bye')\nx = 2\n"
    missing = fs.edit_file("/tmp/work/src/main.py", [{"oldText": "absent", "newText": ""}])
    assert not missing.success and "absent" in missing.error_message

    found = fs.search_files("/tmp/work", "*.py")
    assert found.matches == ["/tmp/work/build/main.py", "/tmp/work/lib/helpers.py", "/tmp/work/src/main.py"]
    assert fs.search_files("/tmp/work", "main", exclude_patterns=["build"]).matches == [
        "/tmp/work/src/main.py"
    ]
    nothing = fs.search_files("/tmp/work", "*.rs")
    assert nothing.success and nothing.matches == []

    assert fs.delete_file("/tmp/work/lib/helpers.py").success
    not_empty = fs.rm("/tmp/work/src")
    assert not not_empty.success and "recursive" in not_empty.error_message
    assert fs.delete("/tmp/work", recursive=True).success
    assert not fs.get_file_info("/tmp/work").success


def test_read_multiple_files(session: Session) -> None:
    fs = session.file_system
    fs.write_file("/tmp/m/a.txt", "alpha\nbeta")
    fs.write_file("/tmp/m/b.txt", "gamma\n")
    read = fs.read_multiple_files(["/tmp/m/a.txt", "/tmp/m/b.txt", "/tmp/m/none.txt"])
    assert read.success
    assert read.contents["/tmp/m/a.txt"] == "alpha\nbeta"
    assert read.contents["/tmp/m/b.txt"] == "gamma\n"
    assert "no such file" in read.contents["/tmp/m/none.txt"]


def test_errors_name_the_path(session: Session) -> None:
    fs = session.file_system
    missing = fs.read_file("/tmp/nope.txt")
    assert (
        not missing.success
        and "no such file" in missing.error_message
        and "/tmp/nope.txt" in (missing.error_message)
    )
    fs.create_directory("/tmp/adir")
    assert "is a directory" in fs.read_file("/tmp/adir").error_message
    fs.write_file("/tmp/afile", "x")
    assert "not a directory" in fs.list_directory("/tmp/afile").error_message
    assert "not a directory" in fs.create_directory("/tmp/afile/sub").error_message
    denied = fs.write_file("/etc/passwd", "owned")
    assert not denied.success and "permission denied" in denied.error_message
    fs.write_file("/tmp/other", "y")
    taken = fs.move_file("/tmp/afile", "/tmp/other")
    assert not taken.success and "exists" in taken.error_message
    bad_mode = fs.write_file("/tmp/x", "y", mode="truncate")
    assert (bad_mode.success, bad_mode.code) == (
        False,
        "InvalidArgument",
    ) and "mode" in bad_mode.error_message


def test_watch_directory(session: Session) -> None:
    fs = session.file_system
    fs.create_directory("/tmp/watched")
    batches: list[list[FileChangeEvent]] = []
    seen = threading.Event()

    def on_change(events: list[FileChangeEvent]) -> None:
        batches.append(events)
        seen.set()

    watcher = fs.watch_directory("/tmp/watched", on_change, interval=0.1)
    assert not watcher.is_alive(), "as in AgentBay, the caller starts it"
    watcher.start()
    try:
        assert watcher.ready_event.wait(30), "the baseline is taken"
        fs.write_file("/tmp/watched/new.txt", "1")
        assert seen.wait(30)
    finally:
        watcher.stop_event.set()
        watcher.join(10)
    events = [e for batch in batches for e in batch]
    assert ("create", "/tmp/watched/new.txt", "file") in [(e.event_type, e.path, e.path_type) for e in events]
    assert not watcher.is_alive()


def test_file_change_events(session: Session) -> None:
    fs = session.file_system
    fs.write_file("/tmp/changes/keep.txt", "1")
    fs.write_file("/tmp/changes/gone.txt", "1")
    assert fs.get_file_change("/tmp/changes").events == [], "the first call sets the baseline"
    fs.write_file("/tmp/changes/keep.txt", "22")
    fs.delete_file("/tmp/changes/gone.txt")
    fs.create_directory("/tmp/changes/sub")
    changes = fs.get_file_change("/tmp/changes")
    assert changes.has_changes()
    assert changes.get_modified_files() == ["/tmp/changes/keep.txt"]
    assert changes.get_deleted_files() == ["/tmp/changes/gone.txt"]
    assert ("create", "/tmp/changes/sub", "directory") in [
        (e.event_type, e.path, e.path_type) for e in changes.events
    ]


async def test_async_file_system(async_session: AsyncSession) -> None:
    fs = async_session.file_system
    assert (await fs.write_file("/tmp/async/a.txt", "one")).success
    assert (await fs.write("/tmp/async/a.txt", "two", mode="append")).success
    assert (await fs.read_file("/tmp/async/a.txt")).content == "onetwo"
    assert (await fs.read_file("/tmp/async/a.txt", format="bytes")).content == b"onetwo"
    assert (await fs.create_directory("/tmp/async/d")).success
    assert [e.name for e in (await fs.list_directory("/tmp/async")).entries] == ["a.txt", "d"]
    assert (await fs.get_file_info("/tmp/async/a.txt")).size == 6
    assert (await fs.edit_file("/tmp/async/a.txt", [{"oldText": "one", "newText": "1"}])).success
    assert (await fs.move_file("/tmp/async/a.txt", "/tmp/async/b.txt")).success
    assert (await fs.search_files("/tmp/async", "b*")).matches == ["/tmp/async/b.txt"]
    assert (await fs.read_multiple_files(["/tmp/async/b.txt"])).contents == {"/tmp/async/b.txt": "1two"}
    assert (await fs.delete_file("/tmp/async/b.txt")).success
    assert "no such file" in (await fs.read_file("/tmp/async/b.txt")).error_message

    batches: list[list[FileChangeEvent]] = []
    watcher = fs.watch_directory("/tmp/async", batches.append, interval=0.1)
    watcher.start()
    watcher.ready_event.wait(30)  # blocking the loop, as AgentBay's example does, must not deadlock
    await fs.write_file("/tmp/async/c.txt", "3")
    for _ in range(300):
        if batches:
            break
        await asyncio.sleep(0.1)
    watcher.stop_event.set()
    watcher.join(10)
    assert "/tmp/async/c.txt" in [e.path for batch in batches for e in batch]
