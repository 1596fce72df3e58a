"""The desktop viewer without a sandbox: its tokens, and how the browser client is unpacked."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from cove.server import novnc
from cove.sessions import links


def test_each_session_and_mode_has_its_own_token(tmp_path: Path) -> None:
    tokens = {
        links.desktop_token(tmp_path, session_id, interactive)
        for session_id in ("session-a", "session-b")
        for interactive in (False, True)
    }
    assert len(tokens) == 4
    assert links.token(tmp_path, "session-a", 30100) not in tokens
    assert links.desktop_token(tmp_path, "session-a", False) == links.desktop_token(
        tmp_path, "session-a", False
    )


def _tarball(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, data in members:
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_only_the_client_s_regular_files_are_unpacked(tmp_path: Path) -> None:
    link = tarfile.TarInfo("package/core/link.js")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    tarball = _tarball(
        (tarfile.TarInfo("package/core/rfb.js"), b"export default 1;"),
        (tarfile.TarInfo("package/vendor/pako/lib/zlib/inflate.js"), b"pako"),
        (tarfile.TarInfo("package/core/../../escaped.js"), b"no"),
        (tarfile.TarInfo("package/app/ui.js"), b"not needed"),
        (link, b""),
    )
    novnc._unpack(tarball, tmp_path)
    files = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file())
    assert files == ["package/core/rfb.js", "package/vendor/pako/lib/zlib/inflate.js"]
    assert not (tmp_path / "package" / "core" / "link.js").exists()
