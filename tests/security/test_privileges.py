"""What a session's user cannot gain: no setuid files to climb through, no devices, no raw sockets,
no owners but itself. (The host not following links the sandbox plants is tried in
tests/integration/test_command_tool.py; hostile archives and images in tests/unit.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.integration.server import CoveServer

NewSession = Callable[..., dict[str, Any]]

ATTEMPTS = r"""
import json, os, socket, stat
def errno_of(action):
    try:
        action()
        return 0
    except OSError as error:
        return error.errno
open("/tmp/mine", "w").close()
print(json.dumps({
    "mknod_char_device": errno_of(lambda: os.mknod("/tmp/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))),
    "mknod_block_device": errno_of(lambda: os.mknod("/tmp/disk", stat.S_IFBLK | 0o666, os.makedev(8, 0))),
    "raw_socket": errno_of(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)),
    "chown_to_root": errno_of(lambda: os.chown("/tmp/mine", 0, 0)),
    "setuid_root": errno_of(lambda: os.setuid(0)),
    "write_image_file": errno_of(lambda: open("/etc/passwd", "a")),
    "fifo": errno_of(lambda: os.mkfifo("/tmp/fifo")),
}))
"""
EPERM, EACCES = 1, 13


def test_no_setuid_or_setgid_files_in_the_image(server: CoveServer, new_session: NewSession) -> None:
    session_id = new_session()["session_id"]
    found = server.sandbox(session_id, "find / -xdev -type f \\( -perm -4000 -o -perm -2000 \\) 2>/dev/null")
    assert found.stdout.split() == []
    # The same search does find such a file where one is: it is not blind.
    made = server.sandbox(session_id, "cp /bin/true ~/t && chmod u+s ~/t && find ~ -perm -4000")
    assert made.stdout.split() == ["/home/user/t"]


def test_devices_raw_sockets_and_other_owners_are_refused(
    server: CoveServer, new_session: NewSession
) -> None:
    result = server.sandbox(new_session()["session_id"], f"python3 -c '{ATTEMPTS}'")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "mknod_char_device": EPERM,
        "mknod_block_device": EPERM,
        "raw_socket": EPERM,
        "chown_to_root": EPERM,
        "setuid_root": EPERM,
        "write_image_file": EACCES,
        "fifo": 0,  # what is harmless still works
    }


def test_a_setuid_file_of_its_own_gives_nothing(server: CoveServer, new_session: NewSession) -> None:
    """no_new_privs: a setuid bit never raises privileges, even on a file the user may chmod."""
    script = "cp /usr/bin/id ~/id && chmod u+s ~/id && ~/id -u && grep NoNewPrivs /proc/self/status"
    result = server.sandbox(new_session()["session_id"], script)
    assert result.stdout.split() == ["1000", "NoNewPrivs:", "1"]
