"""What the host reads and keeps of gvisor sandboxes: images of paused sessions that a server kept
in the session's folder move to where they are kept now, whole, whichever step a server stopped
at before; network figures come from the Sentry's own statistics."""

from __future__ import annotations

import json
from pathlib import Path

from cove.sandbox import gvisor


def old_layout(root: Path, name: str) -> tuple[Path, Path]:
    session_dir, images_dir = root / "sessions" / "s1", root / "paused" / "s1"
    (session_dir / name).mkdir(parents=True)
    (session_dir / name / "checkpoint.img").write_bytes(b"state" * 1000)
    (session_dir / name / "pages.img").write_bytes(b"\0" * 4096)
    (root / "paused").mkdir()
    return session_dir, images_dir


def test_an_image_in_the_session_folder_moves_whole(tmp_path: Path) -> None:
    session_dir, images_dir = old_layout(tmp_path, gvisor.CHECKPOINT)
    (session_dir / gvisor.CHECKPOINT_PARTIAL).mkdir()
    gvisor.move_old_images(session_dir, images_dir)
    assert sorted(p.name for p in session_dir.iterdir()) == []
    assert sorted(p.name for p in images_dir.iterdir()) == [gvisor.CHECKPOINT]
    assert (images_dir / gvisor.CHECKPOINT / "checkpoint.img").read_bytes() == b"state" * 1000
    assert gvisor.checkpointed_state(images_dir, None) == "paused"


def test_a_move_cut_off_midway_is_done_again(tmp_path: Path) -> None:
    session_dir, images_dir = old_layout(tmp_path, gvisor.CHECKPOINT_RESTORING)
    (images_dir / f"{gvisor.CHECKPOINT_RESTORING}.moving").mkdir(parents=True)
    gvisor.move_old_images(session_dir, images_dir)
    assert sorted(p.name for p in images_dir.iterdir()) == [gvisor.CHECKPOINT_RESTORING]
    assert (images_dir / gvisor.CHECKPOINT_RESTORING / "pages.img").stat().st_size == 4096


def test_a_move_cut_off_after_the_rename_only_removes_the_old_copy(tmp_path: Path) -> None:
    session_dir, images_dir = old_layout(tmp_path, gvisor.CHECKPOINT)
    (images_dir / gvisor.CHECKPOINT).mkdir(parents=True)
    (images_dir / gvisor.CHECKPOINT / "checkpoint.img").write_bytes(b"moved")
    gvisor.move_old_images(session_dir, images_dir)
    assert not (session_dir / gvisor.CHECKPOINT).exists()
    assert (images_dir / gvisor.CHECKPOINT / "checkpoint.img").read_bytes() == b"moved"


def test_network_bytes_add_up_every_interface_loopback_included() -> None:
    stats = {
        "type": "stats",
        "id": "s1",
        "data": {
            "network_interfaces": [
                {"Name": "lo", "RxBytes": 700, "TxBytes": 700, "RxPackets": 7},
                {"Name": "eth0", "RxBytes": 1500, "TxBytes": 60, "RxPackets": 2},
            ]
        },
    }
    assert gvisor.network_bytes(json.dumps(stats)) == (2200, 760)


def test_a_sandbox_without_interfaces_has_moved_no_bytes() -> None:
    assert gvisor.network_bytes(json.dumps({"data": {"network_interfaces": None}})) == (0, 0)
    assert gvisor.network_bytes(json.dumps({"data": {}})) == (0, 0)
