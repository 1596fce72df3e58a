"""The agent's upload of unknown length (agent/transfers.py): framed chunks, kept only when whole."""

from __future__ import annotations

import io
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
