"""The agent's upload of unknown length (agent/transfers.py): framed chunks, kept only when whole."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from cove.agent import protocol, transfers


def frames(*chunks: bytes, end: bool = True) -> io.BufferedReader:
    data = b"".join(protocol.FRAME_HEADER.pack(len(chunk)) + chunk for chunk in chunks)
    return io.BufferedReader(io.BytesIO(data + (protocol.FRAME_HEADER.pack(0) if end else b"")))


def test_frames_make_the_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.bin"
    saved = transfers.receive_file({"path": str(target), "chunked": True}, frames(b"ab", b"c" * 5000))
    assert saved == {"path": str(target), "size": 5002}
    assert target.read_bytes() == b"ab" + b"c" * 5000


def test_cut_short_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    with pytest.raises(transfers.TransferError, match="cut short after 2 bytes"):
        transfers.receive_file({"path": str(target), "chunked": True}, frames(b"ab", end=False))
    assert list(tmp_path.iterdir()) == []


def test_refused_upload_is_read_past(tmp_path: Path) -> None:
    source = frames(b"ab", b"cd")
    with pytest.raises(transfers.TransferError):
        transfers.receive_file({"path": str(tmp_path), "chunked": True}, source)
    assert source.read() == b""


def test_a_new_file_gets_the_umask_s_mode_and_a_replaced_one_keeps_its_own(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        new = tmp_path / "new.txt"
        transfers.receive_file({"path": str(new), "chunked": True}, frames(b"x"))
        assert stat.S_IMODE(new.stat().st_mode) == 0o640
        kept = tmp_path / "kept.sh"
        kept.write_bytes(b"old")
        kept.chmod(0o750)
        transfers.receive_file({"path": str(kept), "chunked": True}, frames(b"new"))
        assert stat.S_IMODE(kept.stat().st_mode) == 0o750 and kept.read_bytes() == b"new"
    finally:
        os.umask(previous)
