"""A live view of the display for people (`desktop/view`): x11vnc speaking RFB over one connection.

The host sends `desktop/view {"interactive": bool}`. The agent starts the display if it is not
running, starts x11vnc in inetd mode on one end of a socket pair, answers one result line, and from
then on relays raw bytes between the host and x11vnc as a port connection is relayed (ports.py), so
the viewer opens no listening port in the session. x11vnc serves that one viewer and ends with its
connection. Without `interactive` it runs with `-viewonly`: the viewer's pointer and keys are
dropped before they reach X.
"""

from __future__ import annotations

import socket
import subprocess
from typing import Any

from . import display, process_trees, protocol
from .ports import PortError
from .tools import ToolError

LOG_PATH = f"{display.FRAMEBUFFER_DIR}/viewer.log"


def interactive(params: Any) -> bool:
    value = params.get("interactive", False) if isinstance(params, dict) else None
    if not isinstance(value, bool):
        raise PortError(protocol.INVALID_PARAMS, "interactive must be true or false")
    return value


def open_view(interactive: bool) -> socket.socket:
    """A connection to a new x11vnc serving the display (started first if it is not running)."""
    try:
        display.ensure()
    except ToolError as error:
        raise PortError(protocol.PORT_CLOSED, str(error)) from None
    ours, theirs = socket.socketpair()
    argv = ["x11vnc", "-inetd", "-q", "-display", display.DISPLAY, "-nopw", "-nossl", "-noipv6"]
    argv += ["-nolookup", "-o", LOG_PATH, *(() if interactive else ("-viewonly",))]
    try:
        process, tree = process_trees.popen(
            "viewer",
            argv,
            env=display.environment(),
            cwd="/tmp",
            stdin=theirs,
            stdout=theirs,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        ours.close()
        raise PortError(
            protocol.PORT_CLOSED,
            "x11vnc is not installed in this image; the desktop viewer needs linux_latest (one built "
            "before the viewer joined it lacks x11vnc: `cove image rm linux_latest` has it built again)",
        ) from None
    finally:
        theirs.close()
    display.release_when_done(process, tree)
    return ours
