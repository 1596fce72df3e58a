"""The host's side of a sandbox's tool agent: JSON-RPC over the Unix socket in the session's run dir.

The run dir is writable from inside the sandbox, so nothing in it is trusted: the socket is opened
without following symlinks and must really be a socket before the host connects to it.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from pathlib import Path
from typing import Any

from cove.agent import protocol
from cove.errors import InvalidArgument, SandboxError

SOCKET_NAME = "agent.sock"
START_TIMEOUT_S = 10.0
"""How long a call waits for an agent that is (re)starting before it gives up."""
ANSWER_MARGIN_S = 10.0
"""Time allowed on top of a call's own timeout for the answer to arrive."""


class AgentClient:
    def __init__(self, run_dir: Path, session_id: str) -> None:
        self.run_dir = run_dir
        self.session_id = session_id

    def _open_socket_path(self) -> int:
        """An O_PATH descriptor of the agent's socket, reached without following any symlink."""
        directory = os.open(self.run_dir, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            descriptor = os.open(SOCKET_NAME, os.O_PATH | os.O_NOFOLLOW, dir_fd=directory)
        finally:
            os.close(directory)
        if not stat.S_ISSOCK(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise SandboxError(
                f"the tool agent of {self.session_id} is not available: {SOCKET_NAME} is not a socket"
            )
        return descriptor

    def connect(self) -> socket.socket:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                descriptor = self._open_socket_path()
                try:
                    # Connecting through /proc/self/fd uses the checked inode, not the path again.
                    sock.connect(f"/proc/self/fd/{descriptor}")
                finally:
                    os.close(descriptor)
                return sock
            except (FileNotFoundError, ConnectionRefusedError) as error:
                sock.close()
                if time.monotonic() > deadline:
                    raise SandboxError(
                        f"the tool agent of {self.session_id} did not start within {START_TIMEOUT_S:.0f} s "
                        f"({error.strerror}); delete the session and create a new one"
                    ) from None
                time.sleep(0.01)
            except BaseException:
                sock.close()
                raise

    def call(self, method: str, params: dict[str, Any], timeout_s: float = 60.0) -> dict[str, Any]:
        """Send one request and answer its result; JSON-RPC errors become Cove errors."""
        with self.connect() as sock:
            sock.settimeout(timeout_s + ANSWER_MARGIN_S)
            with sock.makefile("rwb") as stream:
                try:
                    protocol.write_message(stream, protocol.request(1, method, params))
                    answer = protocol.read_message(stream)
                except (TimeoutError, OSError, protocol.ProtocolError) as error:
                    raise SandboxError(
                        f"the tool agent of {self.session_id} failed to answer: {error}"
                    ) from None
        if answer is None:
            raise SandboxError(f"the tool agent of {self.session_id} closed the connection without answering")
        if "error" in answer:
            code, message = answer["error"].get("code"), str(answer["error"].get("message"))
            if code in (protocol.INVALID_PARAMS, protocol.METHOD_NOT_FOUND):
                raise InvalidArgument(message)
            raise SandboxError(f"the tool agent of {self.session_id} failed: {message}")
        result: dict[str, Any] = answer["result"]
        return result
