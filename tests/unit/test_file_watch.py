"""get_file_change on a real directory of the host: each change once, in order (agent/tools/file_watch.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cove.agent.tools import files


def changes(path: Path) -> list[tuple[str, str, str]]:
    answer = json.loads(files.get_file_change({"path": str(path)}))
    return [(event["eventType"], os.path.relpath(event["path"], path), event["pathType"]) for event in answer]


def test_a_burst_reports_each_change_once_in_order(tmp_path: Path) -> None:
    assert changes(tmp_path) == [], "the first call starts the watch"
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    with (tmp_path / "a").open("a") as appended:
        for _ in range(3):  # several writes, one change
            appended.write("x")
            appended.flush()
    (tmp_path / "b").unlink()
    (tmp_path / "a").write_text("again")
    assert changes(tmp_path) == [
        ("create", "a", "file"),
        ("create", "b", "file"),
        ("modify", "a", "file"),
        ("delete", "b", "file"),
        ("modify", "a", "file"),
    ]
    assert changes(tmp_path) == []


def test_a_file_replaced_by_write_file_is_modified(tmp_path: Path) -> None:
    (tmp_path / "kept").write_text("1")
    changes(tmp_path)
    files.write_file({"path": str(tmp_path / "kept"), "content": "22"})
    files.write_file({"path": str(tmp_path / "new"), "content": "3"})
    assert changes(tmp_path) == [("modify", "kept", "file"), ("create", "new", "file")]


def test_new_folders_are_watched_and_moves_reported(tmp_path: Path) -> None:
    changes(tmp_path)
    (tmp_path / "sub").mkdir()
    assert changes(tmp_path) == [("create", "sub", "directory")]
    (tmp_path / "sub" / "c").write_text("c")
    (tmp_path / "sub" / "c").rename(tmp_path / "d")
    os.utime(tmp_path / "d")
    assert changes(tmp_path) == [
        ("create", "sub/c", "file"),
        ("delete", "sub/c", "file"),
        ("create", "d", "file"),
        ("modify", "d", "file"),
    ]
    (tmp_path / "sub").rename(tmp_path / "moved")
    (tmp_path / "moved" / "e").write_text("e")
    assert changes(tmp_path) == [
        ("delete", "sub", "directory"),
        ("create", "moved", "directory"),
        ("create", "moved/e", "file"),
    ]
