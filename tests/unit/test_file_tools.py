"""The filesystem tools, called as the agent calls them (schema check, then run) on a temporary folder."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cove.agent.tools import InvalidArguments, ToolError, all_tools
from cove.agent.tools import files as file_tools

TOOLS = all_tools()


def call(name: str, **arguments: Any) -> str:
    tool = TOOLS[name]
    return tool.run(tool.check(arguments))


def fails(name: str, message: str, **arguments: Any) -> None:
    with pytest.raises(ToolError) as caught:
        call(name, **arguments)
    assert str(caught.value) == message


def test_every_file_tool_is_served() -> None:
    names = {tool.name for tool in file_tools.TOOLS}
    assert names == {
        "read_file",
        "write_file",
        "list_directory",
        "create_directory",
        "delete_file",
        "move_file",
        "edit_file",
        "get_file_info",
        "search_files",
        "read_multiple_files",
        "get_file_change",
    }
    assert names <= TOOLS.keys()


# read_file and write_file


def test_write_then_read_text(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "note.txt"  # parents are created
    assert call("write_file", path=str(path), content="héllo\n") == f"wrote 7 bytes to {path}"
    assert call("read_file", path=str(path)) == "héllo\n"
    assert call("read_file", path=str(path), offset=1, length=2) == "é"
    assert call("read_file", path=str(path), offset=3) == "llo\n"
    assert call("read_file", path=str(path), offset=100) == ""


def test_text_read_replaces_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "bin").write_bytes(b"a\xffb")
    assert call("read_file", path=str(tmp_path / "bin")) == "a\ufffdb"


def test_write_then_read_binary(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = bytes(range(256))
    call("write_file", path=str(path), content=base64.b64encode(data).decode(), format="binary")
    assert path.read_bytes() == data
    assert base64.b64decode(call("read_file", path=str(path), format="binary")) == data
    assert (
        call("read_file", path=str(path), format="binary", offset=254)
        == base64.b64encode(b"\xfe\xff").decode()
    )


def test_binary_content_must_be_base64(tmp_path: Path) -> None:
    fails(
        "write_file",
        "content is not valid base64, which format 'binary' needs",
        path=str(tmp_path / "x"),
        content="not base64!",
        format="binary",
    )
    assert not (tmp_path / "x").exists()


def test_append(tmp_path: Path) -> None:
    path = tmp_path / "log"
    call("write_file", path=str(path), content="one\n", mode="append")
    assert call("write_file", path=str(path), content="two\n", mode="append") == f"appended 4 bytes to {path}"
    assert path.read_text() == "one\ntwo\n"


def test_overwrite_is_atomic_and_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "script.sh"
    path.write_text("old, and longer than the new content")
    path.chmod(0o751)
    call("write_file", path=str(path), content="new")
    assert path.read_text() == "new"
    assert path.stat().st_mode & 0o7777 == 0o751
    assert os.listdir(tmp_path) == ["script.sh"]  # no temporary file left


def test_new_file_gets_the_umask_default_mode(tmp_path: Path) -> None:
    old_umask = os.umask(0o027)
    try:
        call("write_file", path=str(tmp_path / "new"), content="x")
    finally:
        os.umask(old_umask)
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o640


def test_overwrite_through_a_symlink_replaces_its_target(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("old")
    (tmp_path / "link").symlink_to("target")
    call("write_file", path=str(tmp_path / "link"), content="new")
    assert (tmp_path / "link").is_symlink()
    assert (tmp_path / "target").read_text() == "new"


def test_failed_overwrite_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    fails("write_file", f"{tmp_path}/dir is a directory, not a file", path=str(tmp_path / "dir"), content="x")
    assert os.listdir(tmp_path) == ["dir"]
    assert os.listdir(tmp_path / "dir") == []


def test_relative_paths_are_taken_from_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    call("write_file", path="sub/file.txt", content="hi")
    assert (tmp_path / "sub" / "file.txt").read_text() == "hi"
    assert call("read_file", path="sub/file.txt") == "hi"


def test_read_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    fails("read_file", f"no such file or directory: {tmp_path}/missing", path=str(tmp_path / "missing"))
    fails("read_file", f"{tmp_path} is a directory, not a file", path=str(tmp_path))
    fails("read_file", f"{tmp_path}/file/x is not a directory", path=str(tmp_path / "file" / "x"))


def test_write_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    fails(
        "write_file",
        f"{tmp_path}/file exists and is not a directory",
        path=str(tmp_path / "file" / "x"),
        content="y",
    )


def test_reads_beyond_the_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_tools, "READ_LIMIT_BYTES", 10)
    path = tmp_path / "big"
    path.write_bytes(b"x" * 11)
    for arguments in ({}, {"length": 11}, {"offset": 0, "length": 0}):
        with pytest.raises(
            ToolError, match=r"limit of .* MiB per call; read it in parts with offset and length"
        ):
            call("read_file", path=str(path), **arguments)
    assert call("read_file", path=str(path), offset=1) == "x" * 10
    assert call("read_file", path=str(path), length=10) == "x" * 10


def test_arguments_are_checked_against_the_schema(tmp_path: Path) -> None:
    with pytest.raises(InvalidArguments, match="offset' must be at least 0"):
        call("read_file", path=str(tmp_path), offset=-1)
    with pytest.raises(InvalidArguments, match="format' must be one of text, binary"):
        call("read_file", path=str(tmp_path), format="hex")
    with pytest.raises(InvalidArguments, match=r"edits'\[0\]: 'newText' is required"):
        call("edit_file", path=str(tmp_path), edits=[{"oldText": "a"}])


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000), offset=st.integers(0, 2100), length=st.integers(0, 2100))
def test_binary_round_trip_and_slices(tmp_path: Path, data: bytes, offset: int, length: int) -> None:
    path = str(tmp_path / "round-trip")
    call("write_file", path=path, content=base64.b64encode(data).decode(), format="binary")
    assert base64.b64decode(call("read_file", path=path, format="binary")) == data
    piece = call("read_file", path=path, format="binary", offset=offset, length=length)
    expected = data[offset : offset + length] if length else data[offset:]
    assert base64.b64decode(piece) == expected


# directories


def test_list_directory(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("")
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "c-link-to-dir").symlink_to("a-dir")
    (tmp_path / "d-link-to-file").symlink_to("b.txt")
    (tmp_path / "e-dangling").symlink_to("nowhere")
    assert call("list_directory", path=str(tmp_path)) == (
        "[DIR] a-dir\n[FILE] b.txt\n[DIR] c-link-to-dir\n[FILE] d-link-to-file\n[FILE] e-dangling"
    )
    assert call("list_directory", path=str(tmp_path / "a-dir")) == ""
    fails("list_directory", f"{tmp_path}/b.txt is not a directory", path=str(tmp_path / "b.txt"))
    fails("list_directory", f"no such file or directory: {tmp_path}/none", path=str(tmp_path / "none"))


def test_create_directory(tmp_path: Path) -> None:
    path = tmp_path / "x" / "y"
    assert call("create_directory", path=str(path)) == f"created directory {path}"
    assert path.is_dir()
    assert call("create_directory", path=str(path)) == f"directory {path} already exists"
    (tmp_path / "file").write_text("")
    fails("create_directory", f"{tmp_path}/file exists and is not a directory", path=str(tmp_path / "file"))


def test_delete_file_and_symlink(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("kept")
    (tmp_path / "link").symlink_to("target")
    assert call("delete_file", path=str(tmp_path / "link")) == f"deleted {tmp_path}/link"
    assert (tmp_path / "target").read_text() == "kept"
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir-link").symlink_to("dir")
    call("delete_file", path=str(tmp_path / "dir-link"), recursive=True)
    assert (tmp_path / "dir").is_dir()
    call("delete_file", path=str(tmp_path / "target"))
    fails("delete_file", f"no such file or directory: {tmp_path}/target", path=str(tmp_path / "target"))


def test_delete_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    call("delete_file", path=str(tmp_path / "empty"))
    full = tmp_path / "full"
    (full / "sub").mkdir(parents=True)
    (full / "sub" / "f").write_text("x")
    fails(
        "delete_file",
        f"{full} is a directory that is not empty; pass recursive=true to delete it all",
        path=str(full),
    )
    assert (full / "sub" / "f").exists()
    call("delete_file", path=str(full), recursive=True)
    assert os.listdir(tmp_path) == []


def test_move_file(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("A")
    destination = tmp_path / "new" / "parents" / "b"
    assert call("move_file", source=str(tmp_path / "a"), destination=str(destination)) == (
        f"moved {tmp_path}/a to {destination}"
    )
    assert destination.read_text() == "A" and not (tmp_path / "a").exists()
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f").write_text("F")
    call("move_file", source=str(tmp_path / "dir"), destination=str(tmp_path / "moved"))
    assert (tmp_path / "moved" / "f").read_text() == "F"


def test_move_refusals(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("A")
    (tmp_path / "b").write_text("B")
    fails(
        "move_file",
        f"{tmp_path}/b already exists; delete it first or choose another destination",
        source=str(tmp_path / "a"),
        destination=str(tmp_path / "b"),
    )
    assert (tmp_path / "a").read_text() == "A" and (tmp_path / "b").read_text() == "B"
    fails(
        "move_file",
        f"no such file or directory: {tmp_path}/none",
        source=str(tmp_path / "none"),
        destination=str(tmp_path / "c"),
    )


def test_move_across_filesystems_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cross_device(source: str, destination: str) -> None:
        raise OSError(18, "Invalid cross-device link", source, None, destination)

    (tmp_path / "a").write_text("A")
    monkeypatch.setattr(os, "rename", cross_device)
    call("move_file", source=str(tmp_path / "a"), destination=str(tmp_path / "b"))
    assert (tmp_path / "b").read_text() == "A" and not (tmp_path / "a").exists()


# edit_file


def test_edit_file(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("debug = false\nlevel = info\nname = x\nlevel = info\n")
    path.chmod(0o600)
    edits = [{"oldText": "false", "newText": "true"}, {"oldText": "info", "newText": "warn"}]
    diff = call("edit_file", path=str(path), edits=edits)
    assert path.read_text() == "debug = true\nlevel = warn\nname = x\nlevel = info\n"  # the first only
    assert path.stat().st_mode & 0o777 == 0o600
    assert diff == (
        f"--- {path}\n+++ {path}\n@@ -1,4 +1,4 @@\n"
        "-debug = false\n-level = info\n+debug = true\n+level = warn\n name = x\n level = info\n"
    )


def test_edit_file_dry_run_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("a\nb")
    diff = call("edit_file", path=str(path), edits=[{"oldText": "b", "newText": "c"}], dryRun=True)
    assert path.read_text() == "a\nb"
    assert diff == (
        f"--- {path}\n+++ {path}\n@@ -1,2 +1,2 @@\n a\n"
        "-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"
    )


def test_edit_file_not_found_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("one two")
    edits = [{"oldText": "one", "newText": "1"}, {"oldText": "three" * 20, "newText": "3"}]
    with pytest.raises(ToolError) as caught:
        call("edit_file", path=str(path), edits=edits)
    shown = repr("three" * 12) + "..."
    assert str(caught.value) == f"edits[1]: oldText {shown} not found in {path}; nothing was changed"
    assert path.read_text() == "one two"
    fails(
        "edit_file",
        "edits[0]: oldText is empty; give the text to replace",
        path=str(path),
        edits=[{"oldText": "", "newText": "x"}],
    )
    fails("edit_file", f"no such file or directory: {tmp_path}/none", path=str(tmp_path / "none"), edits=[])


def test_edit_file_refuses_what_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "bin").write_bytes(b"\xff\xfe")
    fails(
        "edit_file",
        f"{tmp_path}/bin is not UTF-8 text; edit_file changes text files only",
        path=str(tmp_path / "bin"),
        edits=[{"oldText": "a", "newText": "b"}],
    )


# get_file_info


def info(path: Path) -> dict[str, str]:
    text = call("get_file_info", path=str(path))
    return dict(line.split(": ", 1) for line in text.split("\n"))


def test_get_file_info(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("12345")
    path.chmod(0o640)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    file = info(path)
    assert file["size"] == "5"
    assert file["isDirectory"] == "false" and file["isFile"] == "true" and file["isSymlink"] == "false"
    assert file["permissions"] == "640"
    assert file["owner"] == str(os.getuid())
    assert file["modified"] == "2023-11-14T22:13:20+00:00"
    assert file["accessed"] == "2023-11-14T22:13:20+00:00"
    assert "created" in file
    directory = info(tmp_path)
    assert directory["isDirectory"] == "true" and directory["isFile"] == "false"


def test_get_file_info_of_symlinks(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to("dir")
    (tmp_path / "dangling").symlink_to("nowhere")
    link = info(tmp_path / "link")
    assert link["isSymlink"] == "true" and link["isDirectory"] == "true"
    dangling = info(tmp_path / "dangling")
    assert dangling["isSymlink"] == "true" and dangling["isDirectory"] == "false"
    assert dangling["size"] == str(len("nowhere"))
    fails("get_file_info", f"no such file or directory: {tmp_path}/none", path=str(tmp_path / "none"))


# search_files


def test_search_files(tmp_path: Path) -> None:
    for name in ("src/main.py", "src/Test_Main.PY", "src/lib/util.py", "node_modules/x/pkg.py", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "linked").symlink_to("src")  # matched by name, never entered
    found = call("search_files", path=str(tmp_path), pattern="*.py", excludePatterns="node_modules")
    assert found.split("\n") == [f"{tmp_path}/src/{n}" for n in ("Test_Main.PY", "lib/util.py", "main.py")]
    assert call("search_files", path=str(tmp_path), pattern="MAIN") == (
        f"{tmp_path}/src/Test_Main.PY\n{tmp_path}/src/main.py"
    )
    assert call("search_files", path=str(tmp_path), pattern="*.py", excludePatterns="test_*, src/lib") == (
        f"{tmp_path}/node_modules/x/pkg.py\n{tmp_path}/src/main.py"
    )
    assert call("search_files", path=str(tmp_path), pattern="l?b") == f"{tmp_path}/src/lib"
    assert call("search_files", path=str(tmp_path), pattern="link") == f"{tmp_path}/linked"
    assert call("search_files", path=str(tmp_path), pattern="*.rs") == "No matches found"
    fails(
        "search_files",
        f"{tmp_path}/notes.txt is not a directory",
        path=str(tmp_path / "notes.txt"),
        pattern="x",
    )


def test_search_stops_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_tools, "SEARCH_LIMIT", 3)
    for index in range(5):
        (tmp_path / f"f{index}").write_text("")
    lines = call("search_files", path=str(tmp_path), pattern="f").split("\n")
    assert len(lines) == 4
    assert lines[-1] == "(list cut at 3 matches; narrow the pattern or the path)"


# read_multiple_files


def test_read_multiple_files(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("A")
    (tmp_path / "b").write_text("B")
    a, b, missing = str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "missing")
    assert call("read_multiple_files", paths=[a, b]) == f"{a}:\nA\n\n---\n{b}:\nB\n"
    assert call("read_multiple_files", paths=[a, missing, b]) == (
        f"{a}:\nA\n\n---\n{missing}: Error - no such file or directory: {missing}\n---\n{b}:\nB\n"
    )
    assert call("read_multiple_files", paths=[]) == ""


def test_read_multiple_files_shares_one_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_tools, "READ_LIMIT_BYTES", 10)
    (tmp_path / "a").write_text("x" * 6)
    a = str(tmp_path / "a")
    first, second = call("read_multiple_files", paths=[a, a]).split("\n---\n")
    assert first == f"{a}:\nxxxxxx\n"
    assert second.startswith(f"{a}: Error - {a}: reading it would pass the limit")


# get_file_change


def changes(path: Path) -> list[dict[str, str]]:
    events: list[dict[str, str]] = json.loads(call("get_file_change", path=str(path)))
    return events


def test_get_file_change(tmp_path: Path) -> None:
    (tmp_path / "kept").write_text("same")
    (tmp_path / "changed").write_text("old")
    (tmp_path / "removed").write_text("x")
    assert changes(tmp_path) == []  # the baseline
    assert changes(tmp_path) == []
    (tmp_path / "changed").write_text("new and longer")
    (tmp_path / "removed").unlink()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "created").write_text("")
    assert changes(tmp_path) == [
        {"eventType": "modify", "path": f"{tmp_path}/changed", "pathType": "file"},
        {"eventType": "delete", "path": f"{tmp_path}/removed", "pathType": "file"},
        {"eventType": "create", "path": f"{tmp_path}/sub", "pathType": "directory"},
        {"eventType": "create", "path": f"{tmp_path}/sub/created", "pathType": "file"},
    ]
    assert changes(tmp_path) == []


def test_get_file_change_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("")
    fails("get_file_change", f"{tmp_path}/file is not a directory", path=str(tmp_path / "file"))
    monkeypatch.setattr(file_tools, "WATCH_LIMIT", 1)
    (tmp_path / "other").mkdir()
    fails(
        "get_file_change",
        f"{tmp_path} cannot be watched: more than 1 folders under it, too many to watch",
        path=str(tmp_path),
    )


# OSError messages


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (FileNotFoundError(2, "x"), "no such file or directory: /p"),
        (IsADirectoryError(21, "x"), "/p is a directory, not a file"),
        (NotADirectoryError(20, "x"), "/p is not a directory"),
        (PermissionError(13, "x"), "permission denied: /p"),
        (FileExistsError(17, "x"), "/p already exists"),
        (OSError(30, "Read-only file system"), "read-only file system: /p"),
    ],
)
def test_os_errors_name_the_path(error: OSError, message: str) -> None:
    with pytest.raises(ToolError) as caught, file_tools.os_errors("/p"):
        raise error
    assert str(caught.value) == message


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=400),
    part=st.integers(min_value=1, max_value=9),
)
def test_text_read_in_byte_parts_joins_into_the_exact_text(
    tmp_path_factory: Any, text: str, part: int
) -> None:
    """AgentBay's SDK reads text in fixed byte parts; characters cut by a part's edge stay whole."""
    path = tmp_path_factory.mktemp("parts") / "text.txt"
    path.write_bytes(text.encode())
    size = path.stat().st_size
    joined = "".join(
        call("read_file", path=str(path), offset=offset, length=min(part, size - offset))
        for offset in range(0, size, part)
    )
    assert joined == text


def test_entries_in_json(tmp_path: Path) -> None:
    (tmp_path / "dir" / "deeper").mkdir(parents=True)
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "link").symlink_to(tmp_path / "a.txt")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    entries = json.loads(call("list_directory", path=str(tmp_path), format="json"))
    by_name = {entry["name"]: entry for entry in entries}
    assert sorted(by_name) == ["a.txt", "dangling", "dir", "link"]
    status = (tmp_path / "a.txt").stat()
    assert by_name["a.txt"] == {
        "name": "a.txt",
        "path": str(tmp_path / "a.txt"),
        "type": "file",
        "size": 5,
        "mode": stat.S_IMODE(status.st_mode),
        "permissions": stat.filemode(status.st_mode),
        "owner": file_tools.user_name(status.st_uid),
        "group": file_tools.group_name(status.st_gid),
        "modified": file_tools.timestamp(status.st_mtime),
        "is_symlink": False,
        "symlink_target": None,
    }
    assert (by_name["link"]["type"], by_name["link"]["is_symlink"]) == ("file", True)
    assert by_name["link"]["symlink_target"] == str(tmp_path / "a.txt")
    assert by_name["dangling"]["type"] == "symlink"
    assert by_name["dir"]["type"] == "dir"
    deep = json.loads(call("list_directory", path=str(tmp_path), format="json", depth=2))
    assert str(tmp_path / "dir" / "deeper") in [entry["path"] for entry in deep]
    info = json.loads(call("get_file_info", path=str(tmp_path / "dir"), format="json"))
    assert (info["type"], info["path"]) == ("dir", str(tmp_path / "dir"))
    fails(
        "list_directory",
        f"{tmp_path / 'a.txt'} is not a directory",
        path=str(tmp_path / "a.txt"),
        format="json",
    )
    fails(
        "get_file_info",
        f"no such file or directory: {tmp_path / 'gone'}",
        path=str(tmp_path / "gone"),
        format="json",
    )
