"""What the host tells the agent through its run folder, before the session's first call
(sandbox/runtime.py): the session's pids limit (limits.json), its screen size (screen.json) and its
environment variables (env.json).

The environment cannot carry these: it is fixed when a prepared sandbox is made and its agent
started, before the create that takes it is known; the agent reads the files when it starts a
process or the display. The folder is writable by the sandbox, so a file is read defensively: a
link, a FIFO or an endless file there is refused rather than followed, waited on or read to its end,
and so is a file the session user owns (the host's root appears in the sandbox as an unmapped owner).
"""

from __future__ import annotations

import os
import stat

from . import wire_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

RUN_DIR = "/.cove/run"
MAX_BYTES = 4096


def read_json(path: str, max_bytes: int = MAX_BYTES) -> Any:
    """The JSON value of a file the host wrote at `path`, or None if there is none to trust (or it
    is longer than `max_bytes`)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with open(descriptor, "rb") as file:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or info.st_uid == os.getuid():
            return None
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        return None
    try:
        return wire_json.loads(data)
    except ValueError:
        return None


def whole_number(value: Any, minimum: int, maximum: int) -> int | None:
    """`value` if it is an int (not a bool) within the bounds, else None."""
    valid = isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum
    return value if valid else None
