"""The web console's server side without a sandbox: word of session changes, the npm packages, the
page's policy."""

from __future__ import annotations

import asyncio
import io
import tarfile
import threading
from pathlib import Path

import pytest

from cove.console import assets
from cove.server import novnc
from cove.server.api.console import page_policy
from cove.server.npm_packages import ASSETS_DIR_VARIABLE, all_packages, unpack
from cove.sessions.changes import SessionChanges


def test_a_change_noted_on_any_thread_wakes_every_watcher() -> None:
    changes = SessionChanges()
    changes.note()  # nobody watching: nothing to do

    async def watch_two() -> tuple[bool, bool]:
        with changes.watch() as first, changes.watch() as second:
            threading.Thread(target=changes.note).start()
            await asyncio.wait_for(asyncio.gather(first.wait(), second.wait()), 5)
            return first.is_set(), second.is_set()

    assert asyncio.run(watch_two()) == (True, True)
    assert not changes._watchers, "a watcher is forgotten once it leaves"


def test_packages_are_pinned_and_unpacked_under_one_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ASSETS_DIR_VARIABLE, str(tmp_path))
    names = {package.name for package in all_packages()}
    assert names == {"@novnc/novnc", "@xterm/xterm", "@xterm/addon-fit"}
    assert all(len(package.sha256) == 64 for package in all_packages())
    assert assets.XTERM.folder() == tmp_path / "xterm-6.0.0"
    assert novnc.client_dir() == tmp_path / "novnc-1.7.0"
    assert assets.XTERM.tarball_url() == "https://registry.npmjs.org/@xterm/xterm/-/xterm-6.0.0.tgz"
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", "http://mirror.test/npm/")
    assert assets.XTERM_FIT.tarball_url() == "http://mirror.test/npm/@xterm/addon-fit/-/addon-fit-0.11.0.tgz"
    assert not assets.installed()


def test_only_the_kept_files_are_unpacked(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (
            ("package/lib/xterm.mjs", b"export {}"),
            ("package/src/a.ts", b"no"),
            ("package/lib/../../x", b"no"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    unpack(buffer.getvalue(), tmp_path, assets.XTERM.kept)
    assert [str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file()] == [
        "package/lib/xterm.mjs"
    ]


def test_the_page_runs_only_its_own_scripts_and_frames_only_the_link_origin() -> None:
    policy = dict(part.strip().split(" ", 1) for part in page_policy("http://127.0.0.1:9001").split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-src"] == "http://127.0.0.1:9001"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["default-src"] == "'none'"
