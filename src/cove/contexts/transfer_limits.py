"""The caps every host-side transfer from a sandbox runs under: bytes per file, bytes per transfer,
and one total deadline.

What a sandbox sends is hostile: it may trickle a byte at a time (an idle timeout never fires, so
only a total deadline frees the server's thread), or offer a file far larger than it cost the
session, such as a sparse file whose holes take no disk in the sandbox but would be written out
whole on the host. A transfer that breaks a cap fails with an error naming the cap and its setting.
"""

from __future__ import annotations

import asyncio
import os
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from cove.agent.protocol import LEFT_OUT_HEADER
from cove.errors import CoveError

T = TypeVar("T")

__all__ = ["LEFT_OUT_HEADER", "TransferBudget", "TransferLimitExceeded", "TransferLimits", "sparse_reason"]


class TransferLimitExceeded(CoveError):
    """A transfer from a sandbox went past a size cap or its deadline; it was stopped there."""

    code = "TransferLimitExceeded"
    http_status = 413


@dataclass(frozen=True)
class TransferLimits:
    """The caps of the server's settings, and where transfers spool (inside DATA_DIR, never /tmp,
    so that a large transfer fills the disk the operator sized for Cove, not the host's /tmp)."""

    max_file_bytes: int
    max_total_bytes: int
    timeout_s: float
    spool_dir: Path

    def spool(self) -> IO[bytes]:
        """An anonymous temporary file in the spool folder, made if missing."""
        self.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return tempfile.TemporaryFile(dir=self.spool_dir)

    def start(self) -> TransferBudget:
        return TransferBudget(self, time.monotonic() + self.timeout_s)

    def check_file(self, name: str, size: int) -> None:
        """Refuse a single file over the per-file cap before any of it is read."""
        reason = self.file_too_large(size)
        if reason:
            raise TransferLimitExceeded(f"{name} is refused: {reason}; raise the setting to move it")

    def file_too_large(self, size: int) -> str:
        """Why a file of `size` bytes is left out, or "" if it fits the per-file cap."""
        if size <= self.max_file_bytes:
            return ""
        return f"{size} bytes, over COVE_MAX_SYNC_FILE_BYTES ({self.max_file_bytes})"


def sparse_reason(info: os.stat_result) -> str:
    """Why a file is refused as sparse, or "" if it is not.

    Sparse files are refused, not kept sparse: their holes cost the sandbox no disk, but no storage
    backend keeps holes (S3 objects are whole; a context file is later downloaded into other
    sessions), so a 128 MiB file of 4 KiB on disk would cost the host 128 MiB each time it moves.
    """
    if not stat.S_ISREG(info.st_mode) or info.st_blocks * 512 >= info.st_size:
        return ""
    return f"sparse file of {info.st_size} bytes with {info.st_blocks * 512} on disk"


@dataclass
class TransferBudget:
    """One transfer's use of its limits: bytes counted as they arrive, against one deadline."""

    limits: TransferLimits
    deadline: float
    received: int = 0

    def remaining_s(self) -> float:
        """Seconds left before the deadline; fails once it has passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.timed_out()
        return left

    def take(self, size: int) -> None:
        """Count `size` more bytes; fails past the per-transfer cap or the deadline."""
        self.received += size
        if self.received > self.limits.max_total_bytes:
            raise TransferLimitExceeded(
                f"stopped after {self.received} bytes: over COVE_MAX_SYNC_BYTES "
                f"({self.limits.max_total_bytes}) for one transfer; make the folder or file smaller "
                "or raise the setting"
            )
        self.remaining_s()

    async def count(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """`chunks`, each counted with `take` before it is passed on."""
        async for chunk in chunks:
            self.take(len(chunk))
            yield chunk

    async def within(self, work: Awaitable[T]) -> T:
        """Await `work`, cancelled at the deadline: a stream that trickles a byte at a time is cut
        then, not only when it stalls."""
        try:
            return await asyncio.wait_for(work, self.remaining_s())
        except TimeoutError:
            raise self.timed_out() from None

    def timed_out(self) -> TransferLimitExceeded:
        return TransferLimitExceeded(
            f"stopped after {self.received} bytes: not done within COVE_SYNC_TIMEOUT_S "
            f"({self.limits.timeout_s:g} s); make the transfer smaller or raise the setting"
        )
