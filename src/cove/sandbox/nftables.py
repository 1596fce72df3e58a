"""nftables from inside the server process, through libnftables (the library `nft` is built on).

A create changes a session's rules on its way: running `nft` would cost a fork and an exec, about
7 ms; the library takes well under one. Commands are nft's own language, one batch per call, which
the kernel applies atomically: a policy is never half replaced.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import threading
from typing import Any

from cove.errors import SandboxError

_OUTPUT_JSON = 1 << 4


class Nftables:
    """One libnftables context; calls are serialised, as the context is not thread-safe."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        try:
            library = ctypes.CDLL(name)
        except OSError as error:
            raise SandboxError(
                f"libnftables is missing ({error}); install nftables (scripts/install.sh does)"
            ) from error
        library.nft_ctx_new.restype = ctypes.c_void_p
        library.nft_ctx_new.argtypes = [ctypes.c_uint32]
        for function in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(library, function).argtypes = [ctypes.c_void_p]
        for function in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(library, function).argtypes = [ctypes.c_void_p]
            getattr(library, function).restype = ctypes.c_char_p
        library.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        library.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self._library = library
        self._context = library.nft_ctx_new(0)
        library.nft_ctx_buffer_output(self._context)
        library.nft_ctx_buffer_error(self._context)
        self._lock = threading.Lock()

    def run(self, commands: str, as_json: bool = False) -> str:
        """Run a batch of nft commands; raises SandboxError with nft's own message if one fails."""
        with self._lock:
            self._library.nft_ctx_output_set_flags(self._context, _OUTPUT_JSON if as_json else 0)
            status = self._library.nft_run_cmd_from_buffer(self._context, commands.encode())
            output = (self._library.nft_ctx_get_output_buffer(self._context) or b"").decode()
            error = (self._library.nft_ctx_get_error_buffer(self._context) or b"").decode()
        if status != 0:
            raise SandboxError(f"nftables refused the session network rules: {error.strip()}")
        return output

    def list_json(self, what: str) -> list[dict[str, Any]]:
        """`nft -j list <what>`'s objects, e.g. list_json("set inet cove_x denied")."""
        answer = json.loads(self.run(f"list {what}", as_json=True) or '{"nftables": []}')
        return list(answer.get("nftables", []))
